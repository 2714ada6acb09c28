// The sync settings of gadget.config.ts, checked when they are read:
//
//   registries: how registries are reached: plain-HTTP hosts, an authfile (ig's --authfile),
//               and containerd-style mirrors (read `ghcr.io/...` from a mirror first);
//   mirrors:    the mirror sets that `gadget sync [SET...]` runs.
//
// The augmentation below adds these keys to GadgetConfig (which has no index signature, so
// that typos are type errors) wherever this module is part of the program.
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { isGadgetError, usageError } from '../../lib/errors.js';
import { RegistryPool, type RetryOptions, type Timeouts } from '../../lib/registry/index.js';
import type { GadgetConfig } from '../../lib/runner/types.js';
import { readFailure } from '../../lib/runner/validate-config.js';
import { didYouMean } from '../../lib/suggest.js';
import { checkPlatform } from './platforms.js';
import { checkRename, type RenameRule } from './rename.js';

/** Where to read a registry (or a repository prefix of it) from first. */
export interface RegistryMirror {
  /** `host[:port][/repository-prefix]`, tried in order: `registry.internal:5000/mirror`. */
  mirrors: string[];
  /** Read the original when no mirror has the image (default true). */
  fallback?: boolean;
}

export interface RegistriesConfig {
  /** Hosts (`host[:port]`) reached over plain HTTP; loopback hosts always are. */
  insecure?: string[];
  /** A docker-style config.json with credentials (ig's --authfile), relative to the config. */
  authfile?: string;
  /** Key: a registry (`ghcr.io`) or a repository prefix (`ghcr.io/inspektor-gadget`). */
  mirrors?: Record<string, RegistryMirror>;
  /** Seconds: `connect` (default 30), `idle` (a silent connection, 60), `request` (until the answer, 120). */
  timeouts?: { connect?: number; idle?: number; request?: number };
  /** Tries per request (default 5): connection errors, timeouts, 408, 429, 5xx, damaged bodies. */
  retries?: number;
  /** Pages of a tag list or catalog followed at most (default 1000); more is an error. */
  maxPages?: number;
}

export interface TagFilter {
  /** Glob patterns (`*`, `?`) a tag must match one of (default: every tag). */
  include?: string[];
  /** Glob patterns that drop a tag. */
  exclude?: string[];
  /** A semantic version range: `>=0.40.0 <1`, `^0.45`, `~1.2.3`, `0.45.x`, `1.x || 2.x`. */
  semver?: string;
  /** Only the N highest versions (tags that are not versions are dropped). */
  newest?: number;
}

/**
 * A repository (`ghcr.io/inspektor-gadget/gadget/trace_exec`, optionally with `:tag` or
 * `@digest`), a registry with a repository prefix ending in `/` (`ghcr.io/inspektor-gadget/`,
 * repositories from the catalog or `repositories`), `{ store: GLOB }` for stored images, or
 * `{ bundle: 'FILE.tar' }` for the images of a bundle (read in place, not unpacked).
 */
export type SyncSource = string | { store: string } | { bundle: string };

/**
 * `'store'`; `{ registry: 'host[:port][/prefix]' }` (a source repository R lands in
 * `host/prefix/R`, as a registry mirror expects it); `{ bundle: 'FILE.tar' }` (an OCI layout
 * tar that `gadget import` reads on the other side of an air gap).
 */
export type SyncDestination = 'store' | { registry: string } | { bundle: string };

/** A platform as ig builds them, with or without the `linux/` prefix. */
export type PlatformName = 'amd64' | 'arm64' | 'linux/amd64' | 'linux/arm64';

export interface MirrorSet {
  source: SyncSource | SyncSource[];
  /** For a prefix source whose registry has no catalog: the repositories under the prefix. */
  repositories?: string[];
  tags?: TagFilter;
  /** Platforms to keep. A subset changes the index digest. */
  platforms?: PlatformName[];
  /** Copy a platform subset even though it breaks the index's signatures (default false). */
  allowPlatformSubset?: boolean;
  destination: SyncDestination;
  /** Copy signatures and other referrers (default true). */
  signatures?: boolean;
  /**
   * How repository paths are renamed on the way (default: kept, under a registry
   * destination's prefix): `{ stripPrefix: 'src/' }`, `{ from: 'a/', to: 'b/' }`, or a list
   * of such rules (the first that matches applies).
   */
  rename?: RenameRule | RenameRule[];
}

export interface SyncConfig {
  registries: RegistriesConfig;
  mirrors: Record<string, MirrorSet>;
}

declare module '../../lib/runner/types.js' {
  interface GadgetConfig {
    registries?: RegistriesConfig;
    mirrors?: Record<string, MirrorSet>;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Refuses (exit 2) the first key of `value` that is not in `known`: `${where}.${key} is not a
 * ${what}`, with "did you mean" the nearest known key (`platfroms` -> platforms), else the list.
 */
function refuseUnknownKeys(value: Record<string, unknown>, known: readonly string[], where: string, what: string): void {
  for (const k of Object.keys(value)) {
    if (known.includes(k)) continue;
    const near = didYouMean(k, known);
    throw usageError(`${where}.${k} is not ${what}`, near ? `${near} (known here: ${known.join(', ')})` : `use ${known.join(', ')}`);
  }
}

function stringList(value: unknown, where: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')) throw usageError(`${where} must be a list of non-empty strings`);
  return value as string[];
}

function checkTags(value: unknown, where: string): TagFilter | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) throw usageError(`${where} must be an object { include, exclude, semver, newest }`);
  refuseUnknownKeys(value, ['include', 'exclude', 'semver', 'newest'], where, 'a tag filter');
  if (value.semver !== undefined && typeof value.semver !== 'string') throw usageError(`${where}.semver must be a string such as ">=0.40.0"`);
  if (value.newest !== undefined && !(Number.isSafeInteger(value.newest) && (value.newest as number) > 0)) throw usageError(`${where}.newest must be a positive whole number`);
  // `include: []` would keep no tag (the default, every tag, is `include` left out): a set
  // that can never copy anything is a mistake, said here rather than as "there is no tag".
  if (Array.isArray(value.include) && value.include.length === 0) {
    throw usageError(`${where}.include is an empty list, which keeps no tag`, 'leave include out to keep every tag, or list the globs to keep (include: [\'v*\'])');
  }
  return {
    include: stringList(value.include, `${where}.include`),
    exclude: stringList(value.exclude, `${where}.exclude`),
    semver: value.semver as string | undefined,
    newest: value.newest as number | undefined,
  };
}

function checkDestination(value: unknown, where: string): SyncDestination {
  if (value === 'store') return value;
  if (isObject(value) && Object.keys(value).length === 1) {
    if (typeof value.registry === 'string' && value.registry) return { registry: value.registry };
    if (typeof value.bundle === 'string' && /\.(tar\.gz|tgz)$/i.test(value.bundle)) {
      throw usageError(`${where}.bundle ${JSON.stringify(value.bundle)}: a sync writes a bundle as a plain tar, not gzip`, `name it ${JSON.stringify(value.bundle.replace(/\.(tar\.gz|tgz)$/i, '.tar'))} (gzip it afterwards if it must be smaller; \`gadget import\` reads either)`);
    }
    if (typeof value.bundle === 'string' && value.bundle) return { bundle: value.bundle };
    // `{ regsitry: '...' }`: the key named, with the one meant.
    refuseUnknownKeys(value, ['registry', 'bundle'], where, 'a destination kind');
  }
  throw usageError(`${where} must be 'store', { registry: 'HOST[/PREFIX]' } or { bundle: 'FILE.tar' }`);
}

function checkSet(name: string, value: unknown, file: string): MirrorSet {
  const where = `${file}: mirrors.${name}`;
  if (!isObject(value)) throw usageError(`${where} must be an object { source, destination, ... }`);
  refuseUnknownKeys(value, ['source', 'repositories', 'tags', 'platforms', 'allowPlatformSubset', 'destination', 'signatures', 'rename'], where, 'a mirror set setting');
  const sources = Array.isArray(value.source) ? value.source : [value.source];
  if (sources.length === 0) throw usageError(`${where}.source is empty`);
  for (const s of sources) {
    const one = (key: string): boolean => isObject(s) && Object.keys(s).length === 1 && typeof s[key] === 'string' && s[key] !== '';
    const ok = (typeof s === 'string' && s !== '') || one('store') || one('bundle');
    if (!ok) throw usageError(`${where}.source must be a repository, a "registry/prefix/", { store: 'GLOB' } or { bundle: 'FILE.tar' }`);
  }
  for (const k of ['allowPlatformSubset', 'signatures'] as const) {
    if (value[k] !== undefined && typeof value[k] !== 'boolean') throw usageError(`${where}.${k} must be true or false`);
  }
  const platforms = stringList(value.platforms, `${where}.platforms`);
  // A platform no image can have (`amd46`) is a typo, refused here as --platform is.
  platforms?.forEach((p, i) => checkPlatform(p, `${where}.platforms[${i}]`));
  return {
    source: sources as SyncSource[],
    repositories: stringList(value.repositories, `${where}.repositories`),
    tags: checkTags(value.tags, `${where}.tags`),
    platforms: platforms as PlatformName[] | undefined,
    allowPlatformSubset: value.allowPlatformSubset as boolean | undefined,
    destination: checkDestination(value.destination, `${where}.destination`),
    signatures: value.signatures as boolean | undefined,
    rename: checkRename(value.rename, `${where}.rename`),
  };
}

function wholeNumber(value: unknown, where: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) throw usageError(`${where} must be a whole number from ${min} to ${max}`);
  return value as number;
}

/** A timeout in seconds (a flag or config value): positive, at most a day. */
export function checkSeconds(value: unknown, where: string): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0 || n > 86_400) throw usageError(`${where} must be a number of seconds above 0 (at most 86400)`);
  return n;
}

function checkTimeouts(value: unknown, where: string): RegistriesConfig['timeouts'] {
  if (value === undefined) return undefined;
  if (!isObject(value)) throw usageError(`${where} must be an object { connect, idle, request } in seconds`);
  const out: NonNullable<RegistriesConfig['timeouts']> = {};
  refuseUnknownKeys(value, ['connect', 'idle', 'request'], where, 'a timeout');
  for (const [k, v] of Object.entries(value)) out[k as 'connect' | 'idle' | 'request'] = checkSeconds(v, `${where}.${k}`);
  return out;
}

function expandHome(file: string, dir: string): string {
  if (file === '~' || file.startsWith('~/')) return resolve(homedir(), file.slice(2));
  return resolve(dir, file);
}

/** The `registries` and `mirrors` of a config, checked; `dir` resolves relative paths. */
export function readSyncConfig(config: GadgetConfig, dir: string, file = 'gadget.config.ts'): SyncConfig {
  try {
    return readSettings(config, dir, file);
  } catch (err) {
    // A getter or Proxy of the config that throws while it is read: one sentence, as at load.
    throw isGadgetError(err) ? err : readFailure(err, file);
  }
}

function readSettings(config: GadgetConfig, dir: string, file: string): SyncConfig {
  const reg: unknown = config.registries ?? {};
  if (!isObject(reg)) throw usageError(`${file}: registries must be an object { insecure, authfile, mirrors }`);
  refuseUnknownKeys(reg, ['insecure', 'authfile', 'mirrors', 'timeouts', 'retries', 'maxPages'], `${file}: registries`, 'a registry setting');
  if (reg.authfile !== undefined && (typeof reg.authfile !== 'string' || reg.authfile === '')) throw usageError(`${file}: registries.authfile must be a file name`);
  const mirrors: Record<string, RegistryMirror> = {};
  if (reg.mirrors !== undefined) {
    if (!isObject(reg.mirrors)) throw usageError(`${file}: registries.mirrors must be an object keyed by registry or repository prefix`);
    for (const [key, m] of Object.entries(reg.mirrors)) {
      const where = `${file}: registries.mirrors["${key}"]`;
      if (!isObject(m)) throw usageError(`${where} must be { mirrors: [...], fallback }`);
      refuseUnknownKeys(m, ['mirrors', 'fallback'], where, 'a registry mirror setting');
      const list = stringList(m.mirrors, `${where}.mirrors`);
      if (!list || list.length === 0) throw usageError(`${where}.mirrors must name at least one mirror`);
      if (m.fallback !== undefined && typeof m.fallback !== 'boolean') throw usageError(`${where}.fallback must be true or false`);
      mirrors[key] = { mirrors: list, fallback: m.fallback as boolean | undefined };
    }
  }
  const registries: RegistriesConfig = {
    insecure: stringList(reg.insecure, `${file}: registries.insecure`),
    authfile: typeof reg.authfile === 'string' ? expandHome(reg.authfile, dir) : undefined,
    mirrors,
    timeouts: checkTimeouts(reg.timeouts, `${file}: registries.timeouts`),
    retries: wholeNumber(reg.retries, `${file}: registries.retries`, 1, 100),
    maxPages: wholeNumber(reg.maxPages, `${file}: registries.maxPages`, 1, 1_000_000),
  };
  const sets: Record<string, MirrorSet> = {};
  const raw: unknown = config.mirrors ?? {};
  if (!isObject(raw)) throw usageError(`${file}: mirrors must be an object of named mirror sets`);
  for (const [name, set] of Object.entries(raw)) {
    const checked = checkSet(name, set, file);
    // Bundle files, like the config's other paths, are relative to the config's folder.
    if (typeof checked.destination === 'object' && 'bundle' in checked.destination) checked.destination = { bundle: expandHome(checked.destination.bundle, dir) };
    checked.source = (checked.source as SyncSource[]).map((s) => (typeof s === 'object' && 'bundle' in s ? { bundle: expandHome(s.bundle, dir) } : s));
    sets[name] = checked;
  }
  return { registries, mirrors: sets };
}

/** How registries are reached in one command: the config's settings and the command's flags. */
export interface RegistrySettings {
  /** The config's `registries` (readSyncConfig). */
  registries?: RegistriesConfig;
  /** --insecure-registry hosts, added to the config's. */
  insecure?: string[];
  /** --authfile, instead of the config's. */
  authfile?: string;
  /** Requests in flight per registry and direction (default 8). */
  concurrency?: number;
  /** For DOCKER_CONFIG, HOME and credential helpers (default process.env). */
  env?: NodeJS.ProcessEnv;
  retry?: RetryOptions;
  /** Timeouts in seconds from the command line (--connect-timeout, ...), over the config's. */
  timeouts?: { connect?: number; idle?: number; request?: number };
}

export function createPool(settings: RegistrySettings = {}): RegistryPool {
  const seconds = { ...settings.registries?.timeouts, ...settings.timeouts };
  const ms = (s: number | undefined): number | undefined => (s === undefined ? undefined : Math.round(s * 1000));
  const timeouts: Timeouts = { connectMs: ms(seconds.connect), idleMs: ms(seconds.idle), requestMs: ms(seconds.request) };
  const attempts = settings.retry?.attempts ?? settings.registries?.retries;
  return new RegistryPool({
    insecure: [...(settings.registries?.insecure ?? []), ...(settings.insecure ?? [])],
    authfile: settings.authfile ?? settings.registries?.authfile,
    concurrency: settings.concurrency,
    env: settings.env,
    retry: { ...settings.retry, attempts },
    timeouts,
    maxPages: settings.registries?.maxPages,
  });
}
