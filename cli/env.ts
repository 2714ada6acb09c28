// What every command gets: global flags, lazily opened store and config, output helpers.
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { GadgetError, usageError } from '../lib/errors.js';
import { encodeJSON } from '../lib/oci/json.js';
import type { LazyStore, Store } from '../store/store.js';
import type { LoadedConfig } from '../lib/runner/config.js';
import { createLogger, createProgress } from '../lib/runner/output.js';
import type { Logger, Progress } from '../lib/progress.js';
import type { GadgetConfig, PluginContext } from '../lib/runner/types.js';

export interface GlobalFlags {
  store?: string;
  config?: string;
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  /** Progress bars even when stderr is not a terminal. */
  progress?: boolean;
}

/** Where the store comes from when nothing chooses one (for -v and errors). */
const IG_DEFAULT = "ig's default";

/** ig's own store: /var/lib/ig/oci-store for root, ~/.ig/oci-store otherwise. */
export function defaultStoreDir(): string {
  return process.getuid?.() === 0 ? '/var/lib/ig/oci-store' : join(homedir(), '.ig', 'oci-store');
}

export class CommandEnv {
  readonly log: Logger;
  readonly progress: Progress;
  readonly controller = new AbortController();
  /** What plugins emitted (ctx.emit): `run --json` prints them, `--watch` reads their inputs. */
  readonly records: object[] = [];
  /** While a watch round runs: results and progress lines are left to the round's one summary line. */
  muted = false;
  private store?: Store;
  private loaded?: LoadedConfig;
  private fresh = false;
  /** Whether the command's one JSON document was written (an error then adds none). */
  printedJSON = false;

  constructor(
    readonly flags: GlobalFlags,
    readonly cwd = process.cwd(),
  ) {
    const out = { json: flags.json, verbose: flags.verbose, quiet: flags.quiet, progress: flags.progress };
    this.log = createLogger(out);
    this.progress = createProgress(out);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  async config(): Promise<LoadedConfig> {
    if (!this.loaded) {
      const { loadConfig } = await import('../lib/runner/config.js');
      const { withDefaultSignals } = await import('./process-guard.js');
      const loaded = await withDefaultSignals(() => loadConfig(this.cwd, this.flags.config, { fresh: this.fresh }));
      // The sync plugin's settings are checked now too: nothing runs on a config with a bad key.
      if (loaded.config.registries !== undefined || loaded.config.mirrors !== undefined) {
        const { readSyncConfig } = await import('../plugins/sync/config.js');
        readSyncConfig(loaded.config, loaded.dir, loaded.file);
      }
      this.loaded = loaded;
    }
    return this.loaded;
  }

  /**
   * Checks the folder and file flags (an empty --store or --config, a --config that does not
   * exist: usage errors even when the command would not read them), and with -v says which
   * config file is in use (the store is named when it is opened).
   */
  async describeConfig(): Promise<void> {
    for (const flag of ['store', 'config'] as const) {
      if (this.flags[flag] === '') throw usageError(`--${flag} needs a ${flag === 'store' ? 'folder' : 'file'}, but it is empty`, flag === 'store' ? 'e.g. --store ./store (without --store: $GADGET_STORE, the config\'s store, or ig\'s store)' : 'e.g. --config ./gadget.config.ts');
    }
    if (!this.flags.verbose && this.flags.config === undefined) return;
    const { findConfig } = await import('../lib/runner/config.js');
    const file = findConfig(this.cwd, this.flags.config);
    this.log.debug(file ? `config: ${file}` : `config: none (no gadget.config.ts in ${this.cwd})`);
  }

  /**
   * --store, else $GADGET_STORE, else the config's `store` (remembered per version of the
   * config's bytes, so the config is compiled once, not on every command), else ig's store.
   */
  async storeDir(): Promise<string> {
    return (await this.storeChoice()).dir;
  }

  /** The store folder and where that choice came from (for -v). */
  private async storeChoice(): Promise<{ dir: string; from: string }> {
    if (this.flags.store) return { dir: resolve(this.cwd, this.flags.store), from: '--store' };
    if (process.env.GADGET_STORE) return { dir: resolve(this.cwd, process.env.GADGET_STORE), from: '$GADGET_STORE' };
    // Set but empty is a mistake (an unset variable in a script), never "use ig's store";
    // asked only by a command that uses a store.
    if (process.env.GADGET_STORE === '') {
      throw usageError('$GADGET_STORE is set but empty', "set it to a store folder, or unset it (unset GADGET_STORE) to use the config's store or ig's");
    }
    const { findConfig } = await import('../lib/runner/config.js');
    const file = findConfig(this.cwd, this.flags.config);
    if (file) {
      const { cachedStore, rememberStore } = await import('../lib/runner/store-cache.js');
      const cached = cachedStore(file);
      if (cached !== undefined) return cached === null ? { dir: defaultStoreDir(), from: IG_DEFAULT } : { dir: resolve(dirname(file), cached), from: file };
      const { config, dir } = await this.config();
      rememberStore(file, config.store);
      if (typeof config.store === 'string') return { dir: resolve(dir, config.store), from: file };
    }
    return { dir: defaultStoreDir(), from: IG_DEFAULT };
  }

  /**
   * The store, opened once. `create`: whether the command writes new content into it (build,
   * pull, import, sync to the store, run, a serve that takes pushes) and so makes the store
   * when it is missing. A command that only reads it, or changes what is already stored,
   * creates nothing: a missing folder is an error naming it and where the choice came from
   * (exit 2), and an empty folder an empty store (see store/store.ts, OpenStoreOptions.create).
   */
  async openStore(opts: { create: boolean }): Promise<Store> {
    if (!this.store) {
      const { openStore, NoStoreError, NO_STORE_HINT } = await import('../store/store.js');
      const { dir, from } = await this.storeChoice();
      this.log.debug(`store: ${dir} (from ${from})`);
      try {
        this.store = await openStore(dir, { create: opts.create });
      } catch (err) {
        if (!(err instanceof NoStoreError)) throw err;
        const whence = from === IG_DEFAULT ? "ig's default store: no --store, $GADGET_STORE or config store was given" : `from ${from}`;
        const hint =
          from === IG_DEFAULT
            ? `nothing was stored there yet (${NO_STORE_HINT}); or choose a store with --store or $GADGET_STORE`
            : `check ${from === '--store' || from === '$GADGET_STORE' ? from : `\`store\` in ${from}`} (${NO_STORE_HINT})`;
        throw new GadgetError(`${err.message} (${whence})`, { exitCode: 2, hint });
      }
    }
    return this.store;
  }

  /**
   * For a dry run of a command that copies into the store: the store if there is one, else
   * undefined, and nothing is made (the plan goes on without it: everything would be copied).
   * A folder of other files is refused as the real run refuses it.
   */
  async storeIfThere(): Promise<Store | undefined> {
    if (this.store) return this.store;
    const { storeState } = await import('../store/store.js');
    return storeState(await this.storeDir()) === 'store' ? this.openStore({ create: false }) : undefined;
  }

  /**
   * The store of a command that writes into it, opened (and made, when missing) when first
   * used: a build or import that fails on its input first writes nothing, not even the store.
   */
  async storeOnFirstUse(): Promise<LazyStore> {
    const { Store, storeState } = await import('../store/store.js');
    const { dir, from } = await this.storeChoice();
    storeState(dir); // a --store that cannot be a store (a file, a folder of other files) is refused first
    const open = (): Store => {
      if (!this.store) {
        this.log.debug(`store: ${dir} (from ${from})`);
        this.store = Store.open(dir, { create: true });
      }
      return this.store;
    };
    return Object.assign(open, { root: dir });
  }

  /** Reads gadget.config.ts again on the next use (it changed under `--watch`). */
  forgetConfig(): void {
    this.loaded = undefined;
    this.fresh = true;
  }

  async pluginContext(): Promise<PluginContext> {
    const { config, dir } = await this.config();
    const store = await this.storeOnFirstUse();
    const { storeState } = await import('../store/store.js');
    return {
      get store() {
        return store();
      },
      storeIfThere: () => this.store ?? (storeState(store.root) === 'store' ? store() : undefined),
      log: this.muted ? { ...this.log, info: () => undefined } : this.log,
      progress: this.progress,
      signal: this.signal,
      cwd: dir,
      config: config as GadgetConfig,
      emit: (record) => void this.records.push(record),
    };
  }

  /** The command's one result document for scripts (--json; printed even with -q). */
  printJSON(value: unknown): void {
    if (this.muted) return;
    this.printedJSON = true;
    process.stdout.write(encodeJSON(value) + '\n');
  }

  /** A result line for people; -q silences it. */
  print(line = ''): void {
    if (this.muted || this.flags.quiet) return;
    process.stdout.write(line + '\n');
  }

  close(): void {
    this.store?.close();
  }
}
