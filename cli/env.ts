// What every command gets: global flags, lazily opened store and config, output helpers.
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { encodeJSON } from '../lib/oci/json.js';
import type { Store } from '../store/store.js';
import type { GadgetConfig, LoadedConfig } from '../lib/runner/config.js';
import { createLogger, createProgress } from '../lib/runner/output.js';
import type { Logger, PluginContext, Progress } from '../lib/runner/plugin.js';

export interface GlobalFlags {
  store?: string;
  config?: string;
  json: boolean;
  verbose: boolean;
  quiet: boolean;
}

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

  constructor(
    readonly flags: GlobalFlags,
    readonly cwd = process.cwd(),
  ) {
    const out = { json: flags.json, verbose: flags.verbose, quiet: flags.quiet };
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
   * --store, else $GADGET_STORE, else the config's `store` (remembered per version of the
   * config's bytes, so the config is compiled once, not on every command), else ig's store.
   */
  async storeDir(): Promise<string> {
    if (this.flags.store) return resolve(this.cwd, this.flags.store);
    if (process.env.GADGET_STORE) return resolve(this.cwd, process.env.GADGET_STORE);
    const { findConfig } = await import('../lib/runner/config.js');
    const file = findConfig(this.cwd, this.flags.config);
    if (file) {
      const { cachedStore, rememberStore } = await import('../lib/runner/store-cache.js');
      const cached = cachedStore(file);
      if (cached !== undefined) return cached === null ? defaultStoreDir() : resolve(dirname(file), cached);
      const { config, dir } = await this.config();
      rememberStore(file, config.store);
      if (typeof config.store === 'string') return resolve(dir, config.store);
    }
    return defaultStoreDir();
  }

  async openStore(): Promise<Store> {
    if (!this.store) {
      const { openStore } = await import('../store/store.js');
      this.store = await openStore(await this.storeDir());
    }
    return this.store;
  }

  /** Reads gadget.config.ts again on the next use (it changed under `--watch`). */
  forgetConfig(): void {
    this.loaded = undefined;
    this.fresh = true;
  }

  async pluginContext(): Promise<PluginContext> {
    const { config, dir } = await this.config();
    return {
      store: await this.openStore(),
      log: this.muted ? { ...this.log, info: () => undefined } : this.log,
      progress: this.progress,
      signal: this.signal,
      cwd: dir,
      config: config as GadgetConfig,
      emit: (record) => void this.records.push(record),
    };
  }

  /** A result for scripts (with --json) or people. */
  printJSON(value: unknown): void {
    if (this.muted) return;
    process.stdout.write(encodeJSON(value) + '\n');
  }

  print(line = ''): void {
    if (this.muted) return;
    process.stdout.write(line + '\n');
  }

  close(): void {
    this.store?.close();
  }
}
