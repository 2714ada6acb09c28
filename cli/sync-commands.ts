// Registry commands: push, pull, copy, sync (mirror sets of gadget.config.ts), login, logout.
// Each builds a plan and runs it (plugins/sync.ts); the summary goes to stdout (JSON with
// --json), every failure is named, and the exit code is 1 when anything failed.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { usageError } from '../lib/errors.js';
import { parseTags, wholeNumberFlag, type Options, type ParsedArgs } from './args.js';
import type { Command } from './command.js';
import type { CommandEnv } from './env.js';
import type { MirrorSet, PlanItem, SyncConfig, SyncDestination, SyncOptions, SyncSource, SyncSummary } from '../plugins/sync.js';
import type { Store } from '../store/store.js';
import { renameFromFlags } from '../plugins/sync/rename.js';

export const REGISTRY_OPTIONS: Options = {
  'insecure-registry': { type: 'list', value: 'HOST', description: 'reach HOST over plain HTTP (loopback registries always are)' },
  authfile: { type: 'string', value: 'FILE', description: 'credentials file (docker config.json format), as ig\'s --authfile', default: '$DOCKER_CONFIG/config.json or ~/.docker/config.json' },
};

const COPY_OPTIONS: Options = {
  ...REGISTRY_OPTIONS,
  concurrency: { type: 'string', value: 'N', description: 'transfers at once (default 8)' },
  'dry-run': { type: 'boolean', description: 'print what would be copied, copy nothing' },
  platform: { type: 'list', value: 'PLATFORM', description: 'copy only this platform (amd64, linux/arm64)', default: 'every platform' },
  'allow-subset': { type: 'boolean', description: 'allow copying a subset of the platforms (a new, unsigned index)' },
  'connect-timeout': { type: 'string', value: 'SECONDS', description: 'give up connecting after SECONDS (default 30; registries.timeouts.connect)' },
  'idle-timeout': { type: 'string', value: 'SECONDS', description: 'give up on a connection silent for SECONDS, also mid-download (default 60; registries.timeouts.idle)' },
  'request-timeout': { type: 'string', value: 'SECONDS', description: 'give up when a request has no answer after SECONDS (default 120; registries.timeouts.request)' },
};

export async function syncConfig(env: CommandEnv, required: boolean): Promise<SyncConfig> {
  const { findConfig } = await import('../lib/runner/config.js');
  const { readSyncConfig } = await import('../plugins/sync.js');
  if (!findConfig(env.cwd, env.flags.config)) {
    if (required) throw usageError(`there is no gadget.config.ts in ${env.cwd}`, 'declare mirror sets under `mirrors` in gadget.config.ts, or use --config FILE');
    return { registries: {}, mirrors: {} };
  }
  const { config, dir, file } = await env.config();
  return readSyncConfig(config, dir, file);
}

/** The registries of a command that only reads them (tags, repos, inspect --remote). */
export async function readerPool(env: CommandEnv, flags: ParsedArgs['flags']): Promise<{ pool: import('../lib/registry/index.js').RegistryPool; config: SyncConfig }> {
  const { createPool } = await import('../plugins/sync.js');
  const config = await syncConfig(env, false);
  const pool = createPool({
    registries: config.registries,
    insecure: flags['insecure-registry'] as string[] | undefined,
    authfile: typeof flags.authfile === 'string' ? resolve(env.cwd, flags.authfile) : undefined,
  });
  return { pool, config };
}

type SyncLib = typeof import('../plugins/sync.js');

function options(env: CommandEnv, flags: ParsedArgs['flags'], config: SyncConfig, lib: SyncLib): SyncOptions {
  const concurrency = wholeNumberFlag(flags.concurrency, 'concurrency', { max: 256, expected: 'whole number from 1 to 256' });
  const timeouts: NonNullable<SyncOptions['timeouts']> = {};
  for (const k of ['connect', 'idle', 'request'] as const) {
    const flag = flags[`${k}-timeout`];
    if (flag !== undefined) timeouts[k] = lib.checkSeconds(flag, `--${k}-timeout`);
  }
  return {
    registries: config.registries,
    timeouts,
    insecure: flags['insecure-registry'] as string[] | undefined,
    authfile: typeof flags.authfile === 'string' ? resolve(env.cwd, flags.authfile) : undefined,
    concurrency,
    signal: env.signal,
    progress: env.progress,
    log: env.log,
    dryRun: Boolean(flags['dry-run']),
  };
}

/**
 * The --platform values, each checked (plugins/sync/platforms.ts): one that no OCI image can
 * have (`amd46`) is a usage error before any request, with its "did you mean".
 */
async function platformFlag(flags: ParsedArgs['flags']): Promise<string[] | undefined> {
  const platforms = flags.platform as string[] | undefined;
  if (!platforms) return undefined;
  const { checkPlatform } = await import('../plugins/sync/platforms.js');
  for (const p of platforms) checkPlatform(p, '--platform');
  return platforms;
}

/** --platform and --allow-subset applied to the items of push, pull and copy. */
function withPlatforms(item: PlanItem, flags: ParsedArgs['flags'], platforms: string[] | undefined): PlanItem {
  if (flags['allow-subset'] && !platforms) throw usageError('--allow-subset needs --platform');
  return platforms ? { ...item, platforms, allowPlatformSubset: Boolean(flags['allow-subset']) } : item;
}

async function print(env: CommandEnv, summary: SyncSummary, verb: string, dryRun: boolean): Promise<number> {
  const { formatSyncSummary } = await import('../plugins/sync.js');
  const failed = summary.items.filter((i) => i.status === 'failed');
  if (env.flags.json) {
    const planned = summary.items.map(({ set, source, destination, tags, status, error, hint }) => ({ set, source, destination, tags, ...(status === 'failed' ? { refused: error, hint } : {}) }));
    env.printJSON(dryRun ? { dryRun: true, items: planned } : summary);
    return failed.length ? 1 : 0;
  }
  if (dryRun) {
    // Exactly what the run would do: the refused items are listed as the run would fail them.
    for (const i of summary.items) {
      const line = `${i.set ? `[${i.set}] ` : ''}${i.source} -> ${i.destination}${i.tags && i.tags.length > 1 ? ` (tags ${i.tags.join(', ')})` : ''}`;
      env.print(i.status === 'failed' ? `refused: ${line}: ${i.error}` : line);
    }
    const n = summary.items.length - failed.length;
    env.print(`${n} image${n === 1 ? '' : 's'} planned, ${failed.length} refused (dry run: nothing copied)`);
    for (const f of failed) process.stderr.write(`refused: ${f.source} -> ${f.destination}: ${f.error}\n${f.hint ? `hint: ${f.hint}\n` : ''}`);
    return failed.length ? 1 : 0;
  }
  for (const i of summary.items) {
    const also = i.tags && i.tags.length > 1 ? ` (tags ${i.tags.join(', ')})` : '';
    if (i.status === 'copied') env.print(`${verb} ${i.source} -> ${i.destination}${also}${i.via ? ` (via ${i.via})` : ''}  ${i.digest}`);
    else if (i.status === 'skipped') env.log.debug(`up to date: ${i.source} -> ${i.destination}  ${i.digest}`);
  }
  for (const b of summary.bundles) env.print(`wrote ${b}`);
  env.print(formatSyncSummary(summary, verb));
  for (const f of failed) process.stderr.write(`failed: ${f.source} -> ${f.destination}: ${f.error}\n${f.hint ? `hint: ${f.hint}\n` : ''}`);
  return failed.length ? 1 : 0;
}

/**
 * The store of a command that reads it (it must exist) or copies into it (made when missing,
 * except by a dry run, which writes nothing and plans without it).
 */
async function openStoreFor(env: CommandEnv, use: 'reads' | 'writes', dryRun: boolean): Promise<Store | undefined> {
  if (use === 'writes' && dryRun) return env.storeIfThere();
  return env.openStore({ create: use === 'writes' });
}

/** push, pull and copy: one planned item through the one plan executor. */
const TAG_OPTION: Options = {
  tag: { type: 'list', value: 'TAG', description: 'also tag the image TAG in the destination repository' },
};

/** --tag: more tags in the destination repository. */
function withTags(item: PlanItem, flags: ParsedArgs['flags'], command: string): PlanItem {
  const tags = parseTags(flags.tag, command);
  return tags.length ? { ...item, tags } : item;
}

async function runOne(
  env: CommandEnv,
  flags: ParsedArgs['flags'],
  plan: (lib: typeof import('../plugins/sync.js')) => PlanItem,
  label: string,
  verb: string,
  /** Whether the command reads the store (push) or writes into it (pull: creates it if missing). */
  usesStore: 'reads' | 'writes' | false,
): Promise<number> {
  const lib = await import('../plugins/sync.js');
  const platforms = await platformFlag(flags);
  const config = await syncConfig(env, false);
  const item = withTags(withPlatforms(plan(lib), flags, platforms), flags, label);
  const opts = options(env, flags, config, lib);
  const store = usesStore ? { store: await openStoreFor(env, usesStore, Boolean(opts.dryRun)) } : {};
  return print(env, await lib.executePlan([item], { ...opts, ...store, label }), verb, Boolean(opts.dryRun));
}

export const pushCommand: Command = {
  name: 'push',
  usage: 'push REF [DEST] [--tag TAG]...',
  summary: 'Push a stored image with its signatures to its registry, or to DEST (a DEST without a tag keeps the image\'s tag); --tag adds more tags there.',
  options: { ...COPY_OPTIONS, ...TAG_OPTION },
  async run(env, { positionals, flags }) {
    if (positionals.length < 1 || positionals.length > 2) throw usageError('push takes REF and an optional DEST');
    return runOne(env, flags, (lib) => lib.planPush(positionals[0]!, positionals[1]), 'push', 'pushed', 'reads');
  },
};

export const pullCommand: Command = {
  name: 'pull',
  usage: 'pull REF',
  summary: 'Pull an image with its signatures into the store, tagged with its full reference (through the registry mirrors of gadget.config.ts).',
  options: COPY_OPTIONS,
  async run(env, { positionals, flags }) {
    if (positionals.length !== 1) throw usageError('pull takes exactly one REF');
    return runOne(env, flags, (lib) => lib.planPull(positionals[0]!), 'pull', 'pulled', 'writes');
  },
};

export const copyCommand: Command = {
  name: 'copy',
  usage: 'copy SRC DST [--tag TAG]...',
  summary: 'Copy an image with its signatures from one registry to another, streamed (nothing is written to the store); within one registry, blobs are mounted. --tag adds more tags to DST\'s repository.',
  options: { ...COPY_OPTIONS, ...TAG_OPTION },
  async run(env, { positionals, flags }) {
    if (positionals.length !== 2) throw usageError('copy takes SRC and DST');
    return runOne(env, flags, (lib) => lib.planCopy(positionals[0]!, positionals[1]!), 'copy', 'copied', false);
  },
};

/** The names `gadget import` and `export` users give bundles: a tar, or a gzip tar (any case). */
const BUNDLE_NAME = /\.(tar|tar\.gz|tgz)$/i;
const GZIP_NAME = /\.(tar\.gz|tgz)$/i;

/**
 * The file a --from or --to value names, or undefined for a registry reference. A file is a
 * value written as a path (`/`, `./`, `../`), one named like a bundle (FILE.tar, .tar.gz, .tgz,
 * in any case), or one with a `/` that names an existing file here. A value that reads both ways
 * (a host-like first segment, `ghcr.io/x/out.tar` or `localhost:5000/x` with such a file here)
 * is refused: taken as a reference, a file would be pushed to or pulled from the network by
 * surprise; taken as a file, a registry would silently be left alone.
 */
function fileOf(value: string, cwd: string, flag: '--from' | '--to'): string | undefined {
  const path = resolve(cwd, value);
  if (/^\.{1,2}(\/|$)|^\//.test(value)) return path;
  const existing = value.includes('/') && statSync(path, { throwIfNoEntry: false })?.isFile() === true;
  if (!BUNDLE_NAME.test(value) && !existing) return undefined;
  const first = value.split('/')[0]!;
  if (value.includes('/') && (/[.:]/.test(first) || first === 'localhost')) {
    throw usageError(
      `${flag} ${value} could be a file or an image reference in the registry ${first}`,
      existing ? `write ./${value} for the file; for the registry, run the sync from another folder` : `write ./${value} for the file (a repository named like a bundle file can be synced by a mirror set of gadget.config.ts)`,
    );
  }
  return path;
}

/** A mirror set from --from/--to and the filter flags, for scripts without a config file. */
function adHocSet(flags: ParsedArgs['flags'], cwd: string, platforms: string[] | undefined): MirrorSet {
  const from = (flags.from as string[] | undefined) ?? [];
  const to = flags.to;
  if (from.length === 0 || typeof to !== 'string') throw usageError('sync needs --from SOURCE and --to DESTINATION together', 'e.g. gadget sync --from ghcr.io/inspektor-gadget/gadget/trace_exec --to registry.internal:5000/mirror');
  const newest = wholeNumberFlag(flags.newest, 'newest');
  const bundle = to === 'store' ? undefined : fileOf(to, cwd, '--to');
  // A bundle is written as a plain tar, so that it can be read in place (by a sync from it too).
  if (bundle && GZIP_NAME.test(bundle)) throw usageError(`--to ${to}: sync writes a bundle as a plain tar, not gzip`, `name it ${to.replace(GZIP_NAME, '.tar')} (gzip it afterwards if it must be smaller; \`gadget import\` reads either)`);
  const destination: SyncDestination = to === 'store' ? 'store' : bundle ? { bundle } : { registry: to };
  const source = (f: string): SyncSource => {
    if (f.startsWith('store:')) return { store: f.slice('store:'.length) || '*' };
    const file = fileOf(f, cwd, '--from');
    if (file && statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw usageError(`--from ${f} is a folder; sync reads a bundle, an OCI layout tar`, `\`gadget import ${f}\` reads a layout folder into the store`);
    return file ? { bundle: file } : f;
  };
  return {
    source: from.map(source),
    rename: renameFromFlags(flags['strip-prefix'] as string[] | undefined, flags.rename as string[] | undefined),
    tags: { include: flags.include as string[] | undefined, exclude: flags.exclude as string[] | undefined, semver: flags.semver as string | undefined, newest },
    platforms: platforms as MirrorSet['platforms'],
    allowPlatformSubset: Boolean(flags['allow-subset']),
    destination,
  };
}

export const syncCommand: Command = {
  name: 'sync',
  usage: 'sync [SET...] | sync --from SOURCE... --to DESTINATION',
  summary: 'Run the mirror sets of gadget.config.ts (all, or the named ones), or one given by flags: images and signatures into the store, a registry or a bundle tar. Repeated runs copy only what is missing.',
  options: {
    ...COPY_OPTIONS,
    from: { type: 'list', value: 'SOURCE', description: 'a repository, a "registry/prefix/", store:GLOB, or a bundle: FILE.tar, or ./PATH (instead of the config\'s sets)' },
    to: { type: 'string', value: 'DEST', description: '"store", a registry "host[:port][/prefix]", or a bundle: FILE.tar, or ./PATH (a plain tar)' },
    include: { type: 'list', value: 'GLOB', description: 'with --from: copy the tags matching GLOB', default: 'every tag' },
    exclude: { type: 'list', value: 'GLOB', description: 'with --from: skip the tags matching GLOB' },
    semver: { type: 'string', value: 'RANGE', description: 'with --from: copy the versions in RANGE (">=0.40.0 <1", "^0.45")' },
    newest: { type: 'string', value: 'N', description: 'with --from: copy the N highest versions' },
    'strip-prefix': { type: 'list', value: 'PREFIX', description: 'with --from: drop PREFIX from repository paths (src/x -> x)' },
    rename: { type: 'list', value: 'FROM=TO', description: 'with --from: replace the repository prefix FROM by TO (src/x -> mirror/x)' },
    'allow-subset': { type: 'boolean', description: 'allow platform subsets (new, unsigned indexes)' },
  },
  async run(env, { positionals, flags }) {
    const lib = await import('../plugins/sync.js');
    const adHoc = flags.from !== undefined || flags.to !== undefined;
    if (adHoc && positionals.length) throw usageError('give SET names or --from/--to, not both');
    const platforms = adHoc ? await platformFlag(flags) : undefined;
    const config = await syncConfig(env, !adHoc);
    if (adHoc) config.mirrors = { 'command line': adHocSet(flags, env.cwd, platforms) };
    else {
      for (const f of ['include', 'exclude', 'semver', 'newest', 'platform', 'strip-prefix', 'rename'] as const) if (flags[f] !== undefined) throw usageError(`--${f} goes with --from/--to; a mirror set of the config has its own filters`);
      if (flags['allow-subset']) for (const set of Object.values(config.mirrors)) set.allowPlatformSubset = true;
    }
    const opts = options(env, flags, config, lib);
    // The store is opened only when a set reads or writes it, and made (when missing) only
    // when a set copies into it: sets that only read it need it to exist.
    const { parseSource } = await import('../plugins/sync/plan.js');
    const chosen = (positionals.length ? positionals : Object.keys(config.mirrors)).map((n) => (Object.hasOwn(config.mirrors, n) ? config.mirrors[n] : undefined)).filter((set) => set !== undefined);
    const writesStore = chosen.some((set) => set.destination === 'store');
    const readsStore = !writesStore && chosen.some((set) => (Array.isArray(set.source) ? set.source : [set.source]).some((s) => parseSource(s).kind === 'store'));
    const store = writesStore || readsStore ? await openStoreFor(env, writesStore ? 'writes' : 'reads', Boolean(opts.dryRun)) : undefined;
    // The store's folder only keeps a bundle from being written inside it: no store chosen, nothing to keep.
    const storeDir = await env.storeDir().catch((err: unknown) => (store ? Promise.reject(err) : undefined));
    return print(env, await lib.syncSets(config, positionals, { ...opts, store, storeDir }), 'copied', Boolean(opts.dryRun));
  },
};

async function readPassword(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024) throw usageError('the password on stdin is longer than 64 KiB');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export const loginCommand: Command = {
  name: 'login',
  usage: 'login REGISTRY -u USER --password-stdin',
  summary: 'Check credentials against REGISTRY, then store them (docker config.json, a credential helper, or --authfile).',
  options: {
    ...REGISTRY_OPTIONS,
    username: { type: 'string', short: 'u', value: 'USER', description: 'the user name' },
    'password-stdin': { type: 'boolean', description: 'read the password (or token) from stdin' },
  },
  async run(env, { positionals, flags }) {
    if (positionals.length !== 1) throw usageError('login takes exactly one REGISTRY', 'e.g. echo "$TOKEN" | gadget login ghcr.io -u me --password-stdin');
    const { normalizeRegistryHost, pingRegistry, login } = await import('../lib/registry/index.js');
    // Parsed first: a name that carries a password is refused before any message could quote it.
    const registry = normalizeRegistryHost(positionals[0]!);
    if (typeof flags.username !== 'string' || flags.username === '') throw usageError('login needs -u USER', `e.g. echo "$TOKEN" | gadget login ${registry} -u me --password-stdin`);
    if (!flags['password-stdin']) throw usageError('login reads the password from stdin only', `e.g. echo "$TOKEN" | gadget login ${registry} -u ${flags.username} --password-stdin`);
    const password = await readPassword();
    if (password === '') throw usageError('the password on stdin is empty');
    const config = await syncConfig(env, false);
    const insecure = [...(config.registries.insecure ?? []), ...((flags['insecure-registry'] as string[] | undefined) ?? [])];
    await pingRegistry(registry, { insecure, credentials: { username: flags.username, password } }, env.signal);
    const authfile = typeof flags.authfile === 'string' ? resolve(env.cwd, flags.authfile) : config.registries.authfile;
    const result = await login(registry, flags.username, password, { authfile });
    const where = result.helper ? `the credential helper docker-credential-${result.helper}` : result.file;
    if (env.flags.json) env.printJSON({ registry, username: flags.username, stored: where });
    else env.print(`Login succeeded: the credentials for ${registry} are stored in ${where}`);
    return 0;
  },
};

export const logoutCommand: Command = {
  name: 'logout',
  usage: 'logout REGISTRY',
  summary: 'Remove the stored credentials of REGISTRY.',
  options: { authfile: REGISTRY_OPTIONS.authfile! },
  async run(env, { positionals, flags }) {
    if (positionals.length !== 1) throw usageError('logout takes exactly one REGISTRY');
    const { normalizeRegistryHost, logout } = await import('../lib/registry/index.js');
    const registry = normalizeRegistryHost(positionals[0]!);
    const config = await syncConfig(env, false);
    const authfile = typeof flags.authfile === 'string' ? resolve(env.cwd, flags.authfile) : config.registries.authfile;
    const removed = await logout(registry, { authfile });
    if (env.flags.json) env.printJSON({ registry, removed });
    else env.print(removed ? `Removed the credentials for ${registry}` : `No credentials were stored for ${registry}`);
    return 0;
  },
};

export const syncCommands: Command[] = [pushCommand, pullCommand, copyCommand, syncCommand, loginCommand, logoutCommand];
