// What a sync will copy: mirror sets (and push, pull, copy) become plan items, one per image,
// each a source end and a destination end. Sources: a repository (its tags, filtered), a
// registry with a repository prefix (repositories from the catalog or a list), or images of
// the store. The plan is checked before anything is written: two sources for one destination
// refuse the whole plan (checkCollisions); an item that must not be copied (a repository whose
// tags could not be listed) carries its refusal, which the run reports as a failure. So does a
// source that yields no image (a prefix with no repository, a repository without tags, a store
// pattern that matches nothing, a tag filter that keeps nothing), and a source that cannot be
// read (a prefix whose catalog the registry fails on, a bundle that is damaged or not an OCI
// layout tar): one refused item for the source as a whole, named with its set and filter,
// while the set's other sources, and the other sets, still run. A bundle source that does not
// exist is a usage error (exit 2), as an import of a missing file is: no set runs. Nothing is
// copied here; `--dry-run` prints the plan.
import { statSync } from 'node:fs';
import { GadgetError, messageOf, usageError } from '../../lib/errors.js';
import { isDigest } from '../../lib/oci/digest.js';
import { isSignatureTag, parseRef, Reference, refuseCredentials } from '../../lib/oci/reference.js';
import type { RegistryPool } from '../../lib/registry/index.js';
import type { Descriptor } from '../../lib/oci/types.js';
import { storeKey, type Store } from '../../store/store.js';
import { BundleSource } from '../../store/bundle-source.js';
import { keptNoTag, matchedNothing } from '../../store/patterns.js';
import type { MirrorSet, SyncDestination, TagFilter } from './config.js';
import { renameRepository, type RenameRule } from './rename.js';
import { filterTags, hasExplicitVersion, keepsSignatureNamed, listRegistrySource, parseSource, type RegistrySource } from './sources.js';

// What a source names moved to sources.ts (shared with verify --remote); importers of plan.ts keep these.
export { filterTags, hasExplicitVersion, parseSource, type ParsedSource } from './sources.js';

export type SourceEnd =
  /** `mirrors`: read through the configured registry mirrors (pull), not for mirroring itself. */
  | { kind: 'registry'; ref: Reference; mirrors?: boolean }
  /** `descriptor`: what the key pointed at when the plan was made (spares a lookup per image). */
  | { kind: 'store'; key: string; descriptor?: Descriptor }
  | { kind: 'bundle'; file: string; key: string; descriptor?: Descriptor }
  /** A source of a set that yielded no image, as the set names it (refused items only). */
  | { kind: 'nothing'; source: string };

export type DestinationEnd =
  | { kind: 'registry'; ref: Reference }
  | { kind: 'store'; key: string }
  | { kind: 'bundle'; file: string; key: string }
  /** The set's destination as a whole ("store", `host/prefix`, `bundle FILE`), for refused sources. */
  | { kind: 'set'; destination: string };

export interface PlanItem {
  /** The mirror set it comes from (sync only). */
  set?: string;
  source: SourceEnd;
  destination: DestinationEnd;
  /** Platforms to keep; a subset changes the index digest. */
  platforms?: string[];
  allowPlatformSubset?: boolean;
  /** Copy signatures and other referrers (default true). */
  signatures?: boolean;
  /** More tags for a registry destination, beside its reference's own (`push --tag`). */
  tags?: string[];
  /** Why the plan refuses this item: the run reports it as failed and copies nothing for it. */
  refused?: { error: string; hint?: string };
  /**
   * A tag named like a signature that the set's filter keeps by name: never copied as an
   * image. The run reads it unless it names an image the run copied from its repository; a
   * gadget image under such a name fails, named (signature-named.ts).
   */
  signatureNamed?: true;
}

export interface PlanContext {
  store?: Store;
  pool: RegistryPool;
  signal?: AbortSignal;
}

export function describeSource(end: SourceEnd): string {
  if (end.kind === 'nothing') return end.source;
  if (end.kind === 'bundle') return `bundle ${end.file}: ${end.key}`;
  return end.kind === 'registry' ? end.ref.toString() : end.key;
}

export function describeDestination(end: DestinationEnd): string {
  if (end.kind === 'set') return end.destination;
  if (end.kind === 'registry') return end.ref.toString();
  if (end.kind === 'store') return `store ${end.key}`;
  return `bundle ${end.file}: ${end.key}`;
}

/**
 * The end an image of `ref` goes to: its repository path renamed by `rename` (kept without
 * rules), under a registry destination's prefix, or with its own registry in the store or a
 * bundle.
 */
export function destinationFor(ref: Reference, destination: SyncDestination, rename?: RenameRule | RenameRule[]): DestinationEnd {
  const repository = renameRepository(ref.repository, [rename ?? []].flat());
  const renamed = repository === ref.repository ? ref : new Reference(ref.registry, parseRef(`${ref.registry}/${repository}`).repository, ref.tag, ref.digest);
  if (destination === 'store') return { kind: 'store', key: storeKey(renamed.toString()) };
  if ('bundle' in destination) return { kind: 'bundle', file: destination.bundle, key: storeKey(renamed.toString()) };
  const { registry, prefix } = splitRegistryDestination(destination.registry);
  const target = parseRef(`${registry}/${prefix ? `${prefix}/` : ''}${repository}`);
  if (target.registry !== registry) throw usageError(`the destination "${destination.registry}" must start with a registry host (e.g. registry.internal:5000/mirror)`);
  return { kind: 'registry', ref: new Reference(target.registry, target.repository, ref.tag, ref.tag === undefined ? ref.digest : undefined) };
}

/** `host/a/b/` -> host and path prefix (`a/b`, or '' for the registry's root). */
function splitRegistryDestination(text: string): { registry: string; prefix: string } {
  const trimmed = text.replace(/\/+$/, '');
  const slash = trimmed.indexOf('/');
  return slash < 0 ? { registry: trimmed, prefix: '' } : { registry: trimmed.slice(0, slash), prefix: trimmed.slice(slash + 1) };
}

/** Whether `repository` lies under a prefix source's `prefix` (`''` or ending in `/`: whole segments). */
const under = (repository: string, prefix: string): boolean => `${repository}/`.startsWith(prefix);

/** A registry host as references name it (`localhost:5000`, `docker.io`), to compare two. */
function hostOf(registry: string): string | undefined {
  try {
    return parseRef(`${registry}/x`).registry;
  } catch {
    return undefined; // not a host: refused where it is used
  }
}

/**
 * A prefix source lists its repositories from the catalog, and a destination on the same
 * registry under that prefix would be listed by it too: every run would copy the previous
 * run's copies again, one level deeper (p/x -> p/mirror/p/x -> p/mirror/p/mirror/p/x ...),
 * with exit 0. Refused (exit 2) before anything is listed when the destination itself lies
 * under the prefix; `repositories` (no catalog) names what is read, so it is not refused.
 */
function refuseDestinationInSource(name: string, set: MirrorSet, source: RegistrySource): void {
  if (source.kind !== 'prefix' || set.repositories || typeof set.destination !== 'object' || !('registry' in set.destination)) return;
  const destination = splitRegistryDestination(set.destination.registry);
  if (hostOf(destination.registry) !== hostOf(source.registry) || !under(destination.prefix, source.prefix)) return;
  throw selfListing(name, `the destination ${set.destination.registry.replace(/\/+$/, '')} lies inside its source ${source.registry}/${source.prefix}`, source);
}

/**
 * The same after renaming, per image (before anything is copied): a destination repository
 * that its own prefix source would list.
 */
function refuseListedDestinations(name: string, set: MirrorSet, source: RegistrySource, items: PlanItem[]): void {
  if (source.kind !== 'prefix' || set.repositories) return;
  for (const i of items) {
    if (i.destination.kind !== 'registry' || i.source.kind !== 'registry') continue;
    const target = i.destination.ref;
    if (target.registry === hostOf(source.registry) && under(target.repository, source.prefix)) {
      throw selfListing(name, `${describeSource(i.source)} would be copied to ${target.toString()}, which its source ${source.registry}/${source.prefix} lists too`, source);
    }
  }
}

function selfListing(name: string, what: string, source: Extract<RegistrySource, { kind: 'prefix' }>): GadgetError {
  const lead = where(name);
  return usageError(
    `${lead ? `${lead}: ` : ''}${what}, so every run would copy its own copies again, one level deeper; nothing was copied`,
    `give it a destination outside ${source.registry}/${source.prefix} (another prefix or registry), or name the repositories to read (repositories: [...] in a mirror set)`,
  );
}

/** The items of a repository or prefix source, walked as verify --remote walks it (sources.ts). */
async function registryItems(name: string, set: MirrorSet, source: RegistrySource, ctx: PlanContext): Promise<PlanItem[]> {
  const signatureNamed: Reference[] = [];
  const listed = await listRegistrySource(source, {
    pool: ctx.pool,
    signal: ctx.signal,
    tags: set.tags,
    filterText: describeFilter(name, set.tags),
    repositories: set.repositories,
    where: where(name),
    onSignatureTag: (ref) => keepsSignatureNamed(ref.tag!, set.tags) && signatureNamed.push(ref),
  });
  const items = listed.map((l) => {
    if (l.kind === 'image') return item(name, set, { kind: 'registry', ref: l.ref }, l.ref);
    if (l.kind === 'unlisted') return refusedSource(name, set, l.repository.name, l.error); // a repository without a tag, or the prefix
    return refusedSource(name, set, l.source, l.error);
  });
  const all = [...items, ...signatureNamed.map((ref) => ({ ...item(name, set, { kind: 'registry', ref }, ref), signatureNamed: true as const }))];
  refuseListedDestinations(name, set, source, all);
  return all;
}

/** How the set names itself in a message: mirror sets of the config do, the command line's does not. */
function where(name: string): string | undefined {
  return name === COMMAND_LINE ? undefined : `mirror set ${name}`;
}

/** The name `gadget sync --from ... --to ...` gives its one set. */
export const COMMAND_LINE = 'command line';

/**
 * A tag filter as the user wrote it: `--include "v*" --semver ">=1"` for the command line's
 * set, `tags.include ["v*"], tags.semver ">=1"` for a set of the config; undefined when it
 * filters nothing.
 */
export function describeFilter(name: string, filter: TagFilter | undefined): string | undefined {
  if (!filter) return undefined;
  const flags = name === COMMAND_LINE;
  const parts: string[] = [];
  for (const key of ['include', 'exclude'] as const) {
    const globs = filter[key];
    // An empty include keeps nothing (the config refuses it; a caller of the API may not): named.
    if (!globs || (globs.length === 0 && key === 'exclude')) continue;
    parts.push(flags ? globs.map((g) => `--${key} ${JSON.stringify(g)}`).join(' ') : `tags.${key} ${JSON.stringify(globs)}`);
  }
  if (filter.semver !== undefined) parts.push(flags ? `--semver ${JSON.stringify(filter.semver)}` : `tags.semver ${JSON.stringify(filter.semver)}`);
  if (filter.newest !== undefined) parts.push(flags ? `--newest ${filter.newest}` : `tags.newest ${filter.newest}`);
  return parts.length ? parts.join(flags ? ' ' : ', ') : undefined;
}

/** The set's destination as a whole, for a refused source (which has no image to place). */
function setDestination(destination: SyncDestination): DestinationEnd {
  if (destination === 'store') return { kind: 'set', destination: 'store' };
  if ('bundle' in destination) return { kind: 'set', destination: `bundle ${destination.bundle}` };
  refuseCredentials(destination.registry, 'registry'); // it is quoted in the set's failures
  return { kind: 'set', destination: destination.registry.replace(/\/+$/, '') };
}

/** One refused item for a source that yields no image: the run fails it, named, and copies nothing for it. */
function refusedSource(name: string, set: MirrorSet, source: string, err: GadgetError): PlanItem {
  return { set: name, source: { kind: 'nothing', source }, destination: setDestination(set.destination), refused: { error: err.message, hint: err.hint } };
}

function storeItems(name: string, set: MirrorSet, pattern: string, ctx: PlanContext): PlanItem[] {
  if (!ctx.store) throw usageError(`mirror set ${name} reads the store, but no store is open`);
  if (set.destination === 'store') throw usageError(`mirror set ${name} copies from the store to the store`, 'give it a registry or bundle destination');
  const records = ctx.store.list(pattern);
  const text = `store:${pattern}`;
  if (records.length === 0) return [refusedSource(name, set, text, matchedNothing(text, where(name)))];
  const tags = [...new Set(records.map((r) => parseRef(r.ref).tag ?? ''))];
  const kept = new Set(filterTags(tags, set.tags));
  if (kept.size === 0) return [refusedSource(name, set, text, keptNoTag(text, tags.filter((t) => !isSignatureTag(t)).sort(), describeFilter(name, set.tags), `\`gadget list "${pattern}"\``, where(name)))];
  const entries = new Map(ctx.store.allEntries().map((e) => [e.ref, e]));
  return records
    .filter((r) => kept.has(parseRef(r.ref).tag ?? ''))
    .map((r) => {
      const e = entries.get(r.ref);
      const descriptor = e && { mediaType: e.media_type, digest: e.digest, size: e.size };
      return item(name, set, { kind: 'store', key: r.ref, descriptor }, parseRef(r.ref));
    });
}

/**
 * A bundle source that does not exist: a usage error (exit 2) naming the set and the file, as
 * `gadget import` of a missing file is. planSets checks every chosen set's bundles before it
 * lists anything, so no set runs.
 */
function refuseMissingBundle(name: string, file: string): void {
  if (statSync(file, { throwIfNoEntry: false })) return;
  const lead = where(name);
  throw usageError(`${lead ? `${lead}: ` : ''}the bundle ${file} does not exist`, `check the path${lead ? ' (a relative `source: { bundle }` is resolved against the folder of gadget.config.ts)' : ''}; \`gadget export REF... -o FILE.tar\` or a sync to FILE.tar writes a bundle`);
}

/** Why a bundle that exists cannot be read as a source (damaged, cut short, not an OCI layout tar), named with its set. */
function unreadableBundle(name: string, file: string, err: unknown): GadgetError {
  const message = messageOf(err);
  const lead = where(name);
  return new GadgetError(`${lead ? `${lead}: ` : ''}${message.includes(file) ? message : `the bundle ${file} cannot be read: ${message}`}`, {
    hint: (err instanceof GadgetError ? err.hint : undefined) ?? `the bundle is damaged or is not an OCI layout tar: copy or write it again (\`gadget export\` and a sync to FILE.tar write one); \`tar tvf ${file}\` shows what it holds`,
    cause: err,
  });
}

/** The images of a bundle, read in place; tags filtered as a store's are. */
async function bundleItems(name: string, set: MirrorSet, file: string): Promise<PlanItem[]> {
  if (typeof set.destination === 'object' && 'bundle' in set.destination && set.destination.bundle === file) {
    throw usageError(`mirror set ${name} copies the bundle ${file} into itself`);
  }
  refuseMissingBundle(name, file);
  let bundle: BundleSource;
  try {
    bundle = await BundleSource.open(file);
  } catch (err) {
    // One bundle that cannot be read fails that source of its set; the others still run.
    return [refusedSource(name, set, `bundle ${file}`, unreadableBundle(name, file, err))];
  }
  const images = bundle.images();
  const tags = [...new Set(images.map((i) => parseRef(i.ref).tag ?? ''))];
  const kept = new Set(filterTags(tags, set.tags));
  if (kept.size === 0) {
    const text = `bundle ${file}`;
    const lister = `\`gadget sync --from ${file} --to store --dry-run\``;
    return [refusedSource(name, set, text, keptNoTag(text, tags.filter((t) => !isSignatureTag(t)).sort(), describeFilter(name, set.tags), lister, where(name)))];
  }
  return images
    .filter((i) => kept.has(parseRef(i.ref).tag ?? ''))
    .sort((a, b) => (a.ref < b.ref ? -1 : 1))
    .map((i) => item(name, set, { kind: 'bundle', file, key: i.ref, descriptor: i.descriptor }, parseRef(i.ref)));
}

function item(name: string, set: MirrorSet, source: SourceEnd, ref: Reference): PlanItem {
  return {
    set: name,
    source,
    destination: destinationFor(ref, set.destination, set.rename),
    platforms: set.platforms,
    allowPlatformSubset: set.allowPlatformSubset,
    signatures: set.signatures ?? true,
  };
}

/** The items of one mirror set: its sources listed and filtered. */
export async function planMirrorSet(name: string, set: MirrorSet, ctx: PlanContext): Promise<PlanItem[]> {
  const items: PlanItem[] = [];
  for (const s of Array.isArray(set.source) ? set.source : [set.source]) {
    const source = parseSource(s);
    if (source.kind === 'store') items.push(...storeItems(name, set, source.pattern, ctx));
    else if (source.kind === 'bundle') items.push(...(await bundleItems(name, set, source.file)));
    else items.push(...(await registryItems(name, set, source, ctx)));
  }
  return withoutRepeats(items);
}

/** One image listed twice (two sources overlapping, or two sets) is copied once. */
function withoutRepeats(items: PlanItem[]): PlanItem[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    const key = `${describeSource(i.source)}\0${describeDestination(i.destination)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The items of the named sets (every set when `names` is empty), in the order given. */
export async function planSets(sets: Record<string, MirrorSet>, names: string[], ctx: PlanContext): Promise<PlanItem[]> {
  const known = Object.keys(sets);
  const chosen = names.length > 0 ? names : known;
  if (chosen.length === 0) throw usageError('there are no mirror sets', 'declare them in gadget.config.ts under `mirrors`');
  for (const n of chosen) {
    if (!Object.hasOwn(sets, n)) throw usageError(`there is no mirror set "${n}"`, known.length ? `known sets: ${known.join(', ')}` : 'declare them in gadget.config.ts under `mirrors`');
  }
  // A bundle source that does not exist, or a destination inside its own prefix source, stops
  // the run before anything is listed.
  for (const n of chosen) {
    for (const s of [sets[n]!.source].flat()) {
      if (typeof s === 'object' && 'bundle' in s) refuseMissingBundle(n, s.bundle);
      const parsed = parseSource(s);
      if (parsed.kind === 'prefix') refuseDestinationInSource(n, sets[n]!, parsed);
    }
  }
  const items: PlanItem[] = [];
  for (const n of chosen) items.push(...(await planMirrorSet(n, sets[n]!, ctx)));
  const planned = withoutRepeats(items);
  checkCollisions(planned);
  return planned;
}

/**
 * Refuses a plan in which two different sources would land on one destination reference (a
 * rename that folds two repositories into one, two sets writing one tag): nothing is copied.
 */
export function checkCollisions(items: PlanItem[]): void {
  const sources = new Map<string, string>();
  const clashes: string[] = [];
  for (const i of items) {
    if (i.refused || i.signatureNamed) continue; // copies nothing, so lands nowhere
    const destination = describeDestination(i.destination);
    const source = describeSource(i.source);
    const earlier = sources.get(destination);
    if (earlier === undefined) sources.set(destination, source);
    else if (earlier !== source) clashes.push(`${earlier} and ${source} -> ${destination}`);
  }
  if (clashes.length === 0) return;
  throw usageError(`${clashes.length} destination${clashes.length === 1 ? '' : 's'} would receive the images of two sources, so nothing was copied: ${clashes.join('; ')}`, 'change the rename rules or the sources so that every destination reference has one source');
}

/** `gadget push REF [DEST]`: a stored image to its own reference or to DEST. */
export function planPush(ref: string, dest?: string): PlanItem {
  if (isDigest(ref) && dest === undefined) throw usageError(`push ${ref}: a digest needs a DEST reference to push to`);
  const key = isDigest(ref) ? ref : storeKey(ref);
  let target = parseRef(dest ?? key);
  if (target.digest !== undefined) throw usageError(`push: the destination ${dest ?? ref} must be a tag, not a digest`, 'e.g. gadget push trace_exec registry.internal:5000/gadgets/trace_exec:v1');
  // DEST without a tag keeps the image's own tag, as `docker push` users expect.
  const own = isDigest(ref) ? undefined : parseRef(key).tag;
  if (dest !== undefined && !hasExplicitVersion(dest) && own) target = target.withTag(own);
  return { source: { kind: 'store', key }, destination: { kind: 'registry', ref: target } };
}

/** `gadget pull REF`: into the store under the full reference, as ig tags it. */
export function planPull(ref: string): PlanItem {
  const source = parseRef(ref);
  return { source: { kind: 'registry', ref: source, mirrors: true }, destination: { kind: 'store', key: storeKey(source.toString()) } };
}

/** `gadget copy SRC DST`: registry to registry; DST without a tag keeps SRC's. */
export function planCopy(src: string, dst: string): PlanItem {
  const source = parseRef(src);
  let target = parseRef(dst);
  if (target.digest !== undefined) throw usageError(`copy: the destination ${dst} must be a tag, not a digest`);
  if (!hasExplicitVersion(dst)) target = source.tag ? target.withTag(source.tag) : new Reference(target.registry, target.repository, undefined, source.digest);
  return { source: { kind: 'registry', ref: source }, destination: { kind: 'registry', ref: target } };
}
