// What a source names, for every command that reads registries by source: `gadget sync` (its
// plan, plan.ts) and `gadget verify --remote` (verify/remote.ts) walk the same sources through
// listRegistrySource, so an image, a repository's tags or a prefix's repositories (from the
// catalog) are found, filtered and failed the same way. A repository whose tags cannot be
// listed fails alone, named, and so does a prefix whose catalog cannot be read (after retries:
// a registry failing on it, or one that does not list its repositories); a source that yields
// no image fails as a whole (store/patterns.ts); credentials refused or a registry out of
// reach (exit code 2) stop the walk, since every other source of that registry would fail the
// same way.
import { GadgetError, isGadgetError, usageError } from '../../lib/errors.js';
import { isSignatureTag, parseRef, type Reference, refuseCredentials } from '../../lib/oci/reference.js';
import type { RegistryPool } from '../../lib/registry/index.js';
import { keptNoTag, noRepositoryUnder } from '../../store/patterns.js';
import type { RegistryMirror, SyncSource, TagFilter } from './config.js';
import { listTagsThroughMirrors } from './resolve.js';
import { compareVersions, parseRange, parseVersion, satisfies } from './semver.js';

/** Whether the text names a tag or digest (parseRef would otherwise add `:latest`). */
export function hasExplicitVersion(text: string): boolean {
  const name = text.split('@')[0]!;
  return text.includes('@') || name.lastIndexOf(':') > name.lastIndexOf('/');
}

/**
 * A glob as the store's patterns read it: `*`, `?`, and classes `[a-z]`, negated `[!a-z]` or
 * `[^a-z]`. As in the shell (fnmatch), a `]` first in a class (after `!`/`^`) is a member, not
 * its end: `[]]`, `[!]a]`.
 */
function globRegExp(glob: string): RegExp {
  let body = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    let end = -1;
    if (c === '[') {
      const first = glob[i + 1] === '!' || glob[i + 1] === '^' ? i + 2 : i + 1;
      end = glob.indexOf(']', glob[first] === ']' ? first + 1 : first);
    }
    if (c === '*') body += '.*';
    else if (c === '?') body += '.';
    else if (end > 0) {
      const negated = glob[i + 1] === '!' || glob[i + 1] === '^';
      const members = glob.slice(negated ? i + 2 : i + 1, end);
      // In a JS class `\`, `]` and a leading `^` need escaping; ranges (`a-z`) keep their meaning.
      body += `[${negated ? '^' : ''}${members.replace(/[\\\]^]/g, '\\$&')}]`;
      i = end;
    } else body += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${body}$`);
}

/**
 * The tags a filter keeps: include/exclude globs, a semver range, the newest N versions.
 * Signature tags (`sha256-<hex>[.sig|.att|.sbom]`) are never images: they travel with theirs.
 * Sorted newest version first when versions matter, else by name.
 */
export function filterTags(tags: string[], filter: TagFilter = {}): string[] {
  const named = byName(filter);
  let out = tags.filter((t) => !isSignatureTag(t) && named(t));
  if (filter.semver === undefined && filter.newest === undefined) return out.sort();
  const range = filter.semver === undefined ? undefined : parseRange(filter.semver);
  const versions = out.flatMap((tag) => {
    const version = parseVersion(tag);
    return version && (!range || satisfies(version, range)) ? [{ tag, version }] : [];
  });
  versions.sort((a, b) => compareVersions(b.version, a.version) || (a.tag < b.tag ? -1 : 1));
  out = versions.map((v) => v.tag);
  return filter.newest === undefined ? out : out.slice(0, filter.newest);
}

/** Whether a filter's include/exclude globs keep a tag by its name. */
function byName(filter: TagFilter): (tag: string) => boolean {
  const include = filter.include?.map(globRegExp);
  const exclude = filter.exclude?.map(globRegExp);
  return (t) => (!include || include.some((re) => re.test(t))) && !exclude?.some((re) => re.test(t));
}

/**
 * Whether a filter would keep a tag named like a signature if it were an image: by its name
 * alone; a version filter (semver, newest) keeps no such name.
 */
export function keepsSignatureNamed(tag: string, filter: TagFilter = {}): boolean {
  return filter.semver === undefined && filter.newest === undefined && byName(filter)(tag);
}

export type ParsedSource =
  | { kind: 'repository'; ref: Reference; pinned: boolean }
  | { kind: 'prefix'; registry: string; prefix: string }
  | { kind: 'store'; pattern: string }
  | { kind: 'bundle'; file: string };

/** The sources a registry is asked about. */
export type RegistrySource = Extract<ParsedSource, { kind: 'repository' | 'prefix' }>;

/** `host/a/b` (a repository), `host/a/b:tag`, `host/a/` or `host/a/*` (a prefix), `{ store }`, `{ bundle }`. */
export function parseSource(source: SyncSource): ParsedSource {
  if (typeof source !== 'string') return 'store' in source ? { kind: 'store', pattern: source.store } : { kind: 'bundle', file: source.bundle };
  refuseCredentials(source, 'reference'); // before any message quotes it
  if (source.endsWith('/') || source.endsWith('/*')) {
    const text = source.replace(/\*$/, '');
    const slash = text.indexOf('/');
    const registry = text.slice(0, slash);
    if (!/[.:]/.test(registry) && registry !== 'localhost') {
      throw usageError(`the source "${source}" must start with a registry host (e.g. ghcr.io/inspektor-gadget/)`);
    }
    parseRef(`${registry}/x`); // checks the host
    return { kind: 'prefix', registry, prefix: text.slice(slash + 1) };
  }
  return { kind: 'repository', ref: parseRef(source), pinned: hasExplicitVersion(source) };
}

/** One thing a registry source names, in listing order. */
export type Listed =
  /** An image to copy or verify. */
  | { kind: 'image'; ref: Reference }
  /**
   * What could not be listed (after retries), as messages name it: a repository whose tags
   * (`host/repo`), or a prefix whose catalog (`host/prefix/`), the registry would not give.
   * It fails alone; the source's other repositories, and the other sources, still run.
   */
  | { kind: 'unlisted'; repository: { readonly name: string }; error: GadgetError }
  /** The source yields no image: it fails as a whole. `source` names it (`host/prefix/`, `host/repo`). */
  | { kind: 'nothing'; source: string; error: GadgetError };

export interface ListOptions {
  pool: RegistryPool;
  signal?: AbortSignal;
  tags?: TagFilter;
  /** The tag filter as the user wrote it, for the message when it keeps nothing. */
  filterText?: string;
  /** A prefix's repositories (relative to it) for a registry without a catalog. */
  repositories?: string[];
  /** What leads a message about the source as a whole (`mirror set NAME`). */
  where?: string;
  /** Hints name `gadget tags REPO --all`, signature tags included (for a source without filter). */
  allTags?: boolean;
  /**
   * Registry mirrors to list a repository source's tags through, as `gadget tags` does (a
   * prefix is the catalog of the registry it names: catalogs are not mirrored).
   */
  mirrors?: Record<string, RegistryMirror>;
  /** Told of every tag named like a signature (`sha256-<hex>[.sig|.att|.sbom]`), which is never listed as an image. */
  onSignatureTag?: (ref: Reference) => void;
}

/** `mirror set NAME: ` before a message about a source of that set. */
const lead = (where?: string): string => (where ? `${where}: ` : '');

/** The images of a repository or prefix source, its repositories that fail to list, or why it yields none. */
export async function listRegistrySource(source: RegistrySource, opts: ListOptions): Promise<Listed[]> {
  let repositories: Reference[];
  if (source.kind === 'repository') {
    if (source.pinned) return [{ kind: 'image', ref: source.ref }];
    repositories = [source.ref];
  } else {
    const text = `${source.registry}/${source.prefix}`;
    let names: string[];
    if (opts.repositories) names = opts.repositories.map((r) => `${source.prefix}${r.replace(/^\/+/, '')}`);
    else {
      try {
        names = await opts.pool.catalog(source.registry, source.prefix, opts.signal);
      } catch (err) {
        // A catalog the registry fails on (after retries) or does not give fails this prefix
        // alone, named as written; a usage or access problem (exit code 2) stops the walk.
        if (opts.signal?.aborted || !isGadgetError(err) || err.exitCode !== 1) throw err;
        return [{ kind: 'unlisted', repository: { name: text }, error: new GadgetError(`${lead(opts.where)}${err.message}`, { hint: err.hint, cause: err }) }];
      }
    }
    repositories = names.map((r) => parseRef(`${source.registry}/${r}`));
    if (repositories.length === 0) return [{ kind: 'nothing', source: text, error: noRepositoryUnder(text, opts.where) }];
  }
  // Every repository's tags asked for at once (the registry client bounds requests in flight).
  const list = async (repo: Reference): Promise<string[]> =>
    source.kind === 'repository' && opts.mirrors ? (await listTagsThroughMirrors(repo, opts.pool, opts.mirrors, opts.signal)).tags : opts.pool.repository(repo, 'source').listTags(opts.signal);
  const lists = await Promise.allSettled(repositories.map(list));
  const out: Listed[] = [];
  const seen: string[] = []; // every image tag listed, for naming them when none is kept
  for (const [i, repo] of repositories.entries()) {
    const listed = lists[i]!;
    if (listed.status === 'rejected') {
      // One repository whose tags cannot be listed (after retries) fails alone, named; a
      // usage or access problem (exit code 2) stops the walk.
      const err: unknown = listed.reason;
      if (opts.signal?.aborted || !isGadgetError(err) || err.exitCode !== 1) throw err;
      out.push({ kind: 'unlisted', repository: repo, error: err });
      continue;
    }
    const images = listed.value.filter((t) => !isSignatureTag(t)).sort();
    if (opts.onSignatureTag) for (const t of listed.value) if (isSignatureTag(t)) opts.onSignatureTag(repo.withTag(t));
    seen.push(...(source.kind === 'prefix' ? images.map((t) => `${repo.repository.slice(source.prefix.length)}:${t}`) : images));
    for (const tag of filterTags(listed.value, opts.tags)) out.push({ kind: 'image', ref: repo.withTag(tag) });
  }
  // The source yields no image (and no repository of it failed to list): it fails, named. A
  // prefix is one source: a repository of it without tags is not a failure by itself.
  if (out.length === 0) {
    const n = repositories.length;
    const all = opts.allTags ? ' --all' : '';
    const [text, what, lister] = source.kind === 'prefix'
      ? [`${source.registry}/${source.prefix}`, `the ${n} ${n === 1 ? 'repository' : 'repositories'} under ${source.registry}/${source.prefix}`, `\`gadget tags ${repositories[0]!.name}${all}\` (one of them)`]
      : [repositories[0]!.name, repositories[0]!.name, `\`gadget tags ${repositories[0]!.name}${all}\``];
    out.push({ kind: 'nothing', source: text, error: keptNoTag(what, seen, opts.filterText, lister, opts.where) });
  }
  return out;
}
