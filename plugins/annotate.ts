// The annotate plugin: changes the annotations of stored gadget images without touching their
// content. Every image is planned first (read, checked, rewritten in memory: annotate/rewrite.ts);
// only when every plan is good are the new manifest and index blobs written, children first,
// and then all tags move in ONE index.json update, so an interrupted run leaves every tag on
// its old image or every tag on its new one, never half of them.
import { GadgetError, usageError } from '../lib/errors.js';
import { metadataAnnotations, parseMetadata, MAX_METADATA_BYTES } from '../lib/gadget/metadata.js';
import { isDigest } from '../lib/oci/digest.js';
import { ANN_DESCRIPTION, ANN_DOCUMENTATION, ANN_SOURCE, ANN_TITLE, ANN_URL, GADGET_CONFIG, MT_INDEX, MT_MANIFEST } from '../lib/oci/mediatypes.js';
import { isSignatureTag, parseRef } from '../lib/oci/reference.js';
import type { Descriptor } from '../lib/oci/types.js';
import { findSignatures } from '../lib/signature/find.js';
import type { SignatureKind } from '../lib/signature/types.js';
import type { Artifact, Plugin, PluginContext } from '../lib/runner/types.js';
import { matchedNothing } from '../store/patterns.js';
import { storeKey, type Store } from '../store/store.js';
import { LEVELS, mergeChange, parseLevels, parsePlatform, validateChange, type AnnotationChange, type Arch, type Level, type ResolvedChange } from './annotate/change.js';
import { storeSignatureSource } from './verify/signatures.js';
import { parseDocument, rewriteImage, rewriteTagEntry, type AnnotationDiff, type ManifestOutcome, type RewriteResult } from './annotate/rewrite.js';

export { isRFC3339, LEVELS, parseLevels, parsePlatform, parseSetPairs, validateChange } from './annotate/change.js';
export type { AnnotationChange, Arch, Level, ResolvedChange } from './annotate/change.js';
export type { AnnotationDiff, ManifestOutcome } from './annotate/rewrite.js';

export interface AnnotateImageOptions {
  /** Default: every level where ig writes annotations (with `platform`: manifest and config). */
  levels?: Level[];
  /** Change only this architecture's manifest (and its index entry). */
  platform?: Arch;
  /** Tag the new image with this reference and leave the old tag where it was. */
  tag?: string;
  /** Plan and report, write nothing. */
  dryRun?: boolean;
  signal?: AbortSignal;
  /** Called after each image is planned (for a progress bar). */
  onProgress?: (done: number, total: number, ref: string) => void;
}

/** A signature of an old digest; it does not apply to the new one. */
export interface StaleSignature {
  /** The old digest it signs. */
  subject: string;
  /** The signature manifest. */
  digest: string;
  kind: SignatureKind;
  /** How it is found: "tag sha256-<hex>.sig", "tag sha256-<hex>" (referrers fallback) or "referrers". */
  via: string;
}

export interface AnnotateResult {
  /** The reference that was annotated, normalised as the store keeps it. */
  ref: string;
  /** False when every value was already there: same digest, nothing written. */
  changed: boolean;
  dryRun: boolean;
  kind: 'index' | 'manifest';
  old: Descriptor;
  new: Descriptor;
  manifests: ManifestOutcome[];
  /** The digests of the blobs written (or, with dryRun, that would be): new manifests, then the new index. */
  written: string[];
  /** The references now pointing at `new` (none when nothing changed and no `tag` was asked). */
  tagged: string[];
  diffs: AnnotationDiff[];
  /** Signatures of the old digests that do not apply to the new ones; they are not carried over. */
  staleSignatures: StaleSignature[];
  notes: string[];
}

interface Plan {
  result: AnnotateResult;
  rewrite: RewriteResult;
  tag?: { descriptor: Descriptor; ref: string };
}

function isDescriptor(value: unknown): value is Descriptor {
  return typeof value === 'object' && value !== null && typeof (value as Descriptor).digest === 'string' && typeof (value as Descriptor).mediaType === 'string';
}

const FIVE = [ANN_TITLE, ANN_DESCRIPTION, ANN_URL, ANN_DOCUMENTATION, ANN_SOURCE];

/** The levels to touch: the ones asked for, else all of them (without the shared index when one platform is asked). */
function levelsFor(opts: AnnotateImageOptions): Set<Level> {
  if (opts.levels?.length) return new Set(opts.levels);
  return new Set(opts.platform ? LEVELS.filter((l) => l !== 'index') : LEVELS);
}

/** Title, description, url, documentation and source from the gadget.yaml in the config of the manifests that change. */
async function metadataValues(store: Store, ref: string, configs: Descriptor[]): Promise<Record<string, string>> {
  const distinct = [...new Map(configs.map((c) => [c.digest, c])).values()];
  if (distinct.length === 0) throw usageError(`${ref}: no manifest to read a gadget.yaml from`);
  if (distinct.length > 1) {
    throw usageError(`${ref}: its manifests have different configs (${distinct.map((c) => c.digest).join(', ')}), so --from-metadata cannot tell which gadget.yaml to use`, 'annotate one platform at a time with --platform');
  }
  const config = distinct[0]!;
  if (config.mediaType !== GADGET_CONFIG) {
    throw usageError(`${ref}: the image has no gadget.yaml (its config is ${config.mediaType}), so --from-metadata has nothing to read`, 'set the values with --set KEY=VALUE instead');
  }
  const bytes = await store.readBytes(config, MAX_METADATA_BYTES);
  const derived = metadataAnnotations(parseMetadata(bytes, `${ref}: gadget.yaml (config ${config.digest})`));
  return Object.fromEntries(FIVE.map((k) => [k, derived[k] ?? '']));
}

/** The signatures of the old digests that change (found as verify finds them), which the new digests do not have. */
async function staleSignatures(store: Store, rewrite: RewriteResult): Promise<StaleSignature[]> {
  const src = storeSignatureSource(store);
  const subjects = new Set<string>();
  if (rewrite.changed) subjects.add(rewrite.old.digest);
  for (const m of rewrite.manifests) if (m.changed) subjects.add(m.old.digest);
  const out: StaleSignature[] = [];
  for (const subject of subjects) {
    for (const c of (await findSignatures(src, subject)).candidates) out.push({ subject, digest: c.digest, kind: c.kind, via: c.via });
  }
  return out;
}

/**
 * Reads and rewrites one image in memory. `strict` (a named image) makes a --platform or
 * --level that does not fit the image an error; for --all such images just keep those levels.
 */
async function planImage(store: Store, input: string, explicit: ResolvedChange, fromMetadata: boolean, opts: AnnotateImageOptions, strict: boolean): Promise<Plan> {
  if (isSignatureTag(input)) throw usageError(`${input} is a signature tag, not an image`, 'annotate the image it signs');
  // A missing image is a failure found (exit 1), as for inspect and verify.
  const entry: Descriptor = store.resolveRef(input);
  const byDigest = isDigest(input) || parseRef(input).digest !== undefined;
  const ref = isDigest(input) ? input : storeKey(input);
  if (byDigest && !opts.tag && !opts.dryRun) throw usageError(`${input} names a digest, so there is no tag to move to the annotated image`, 'give -t NEWREF to tag the result');
  if (entry.mediaType !== MT_MANIFEST && entry.mediaType !== MT_INDEX) {
    throw usageError(`${ref} is a ${entry.mediaType}; only OCI indexes and OCI image manifests can be annotated (Docker media types have no annotations)`);
  }
  const levels = levelsFor(opts);
  const notes: string[] = [];
  const isIndex = entry.mediaType === MT_INDEX;
  if (!isIndex) {
    if (strict && opts.platform) throw usageError(`${ref} is a single manifest without a platform list, so --platform does not apply`, 'leave out --platform');
    if (strict && opts.levels?.includes('index')) throw usageError(`${ref} is a single manifest, it has no index to annotate`, 'use --level manifest or --level config');
    if (levels.delete('index')) notes.push('a single manifest: no index level');
  }

  const rootBytes = await store.readBytes(entry);
  const root = { descriptor: { mediaType: entry.mediaType, digest: entry.digest, size: entry.size }, bytes: rootBytes };
  // Pre-read the manifests the index lists (each verified), so the rewrite is pure.
  const manifests = new Map<string, Buffer>();
  let configs: Descriptor[] = [];
  if (isIndex) {
    const probe = rewriteImage({ root, manifests, change: { set: {}, unset: [] }, levels: new Set(), arch: opts.platform });
    const chosen = probe.manifests.filter((m) => m.selected);
    if (strict && opts.platform && chosen.length === 0) {
      throw usageError(`${ref} has no ${opts.platform} manifest`, `its platforms: ${probe.manifests.map((m) => m.platform ?? '?').join(', ') || 'none'}`);
    }
    notes.push(...probe.notes);
    for (const m of chosen) {
      if (manifests.has(m.old.digest)) continue;
      const bytes = await store.readBytes(m.old);
      manifests.set(m.old.digest, bytes);
      const config = parseDocument(bytes, `manifest ${m.old.digest}`).config;
      if (isDescriptor(config)) configs.push(config);
    }
  } else {
    const config = parseDocument(rootBytes, `manifest ${entry.digest}`).config;
    configs = isDescriptor(config) ? [config] : [];
  }

  const change = fromMetadata ? mergeChange(await metadataValues(store, ref, configs), explicit) : explicit;
  const rewrite = rewriteImage({ root, manifests, change, levels, arch: opts.platform });
  const indexLevel: Level = isIndex ? 'index' : 'manifest';
  const tagEntry = rewriteTagEntry(entry, rewrite.new, change, levels.has(indexLevel), indexLevel);
  const diffs = [...rewrite.diffs, ...tagEntry.diffs];

  const result: AnnotateResult = {
    ref,
    changed: rewrite.changed,
    dryRun: Boolean(opts.dryRun),
    kind: rewrite.kind,
    old: root.descriptor,
    new: rewrite.new,
    manifests: rewrite.manifests,
    written: rewrite.blobs.map((b) => b.descriptor.digest),
    tagged: [],
    diffs,
    staleSignatures: await staleSignatures(store, rewrite),
    notes: [...notes, ...rewrite.notes.filter((n) => !notes.includes(n))],
  };
  const plan: Plan = { result, rewrite };
  const moves = !byDigest && (rewrite.changed || tagEntry.diffs.length > 0);
  const target = opts.tag ? storeKey(opts.tag) : moves ? ref : undefined;
  if (target) {
    plan.tag = { descriptor: tagEntry.descriptor, ref: target };
    result.tagged = [target];
  }
  return plan;
}

/** Writes the planned blobs (children first, each checked) and moves every tag in one update. */
async function applyPlans(store: Store, plans: Plan[], signal?: AbortSignal): Promise<void> {
  for (const plan of plans) {
    for (const blob of plan.rewrite.blobs) {
      signal?.throwIfAborted();
      const stored = await store.putBytes(blob.bytes, blob.descriptor.mediaType);
      if (stored.digest !== blob.descriptor.digest) throw new GadgetError(`${store.name}: stored ${stored.digest} for ${blob.descriptor.digest}`);
    }
  }
  signal?.throwIfAborted();
  // A tag that another process moved while this one planned is not overwritten.
  for (const plan of plans) {
    const { ref, old } = plan.result;
    if (isDigest(ref) || parseRef(ref).digest !== undefined) continue;
    if (store.resolveRef(ref).digest !== old.digest) {
      throw new GadgetError(`${ref} was changed by another program while it was being annotated; nothing was tagged`, { hint: 'run the command again' });
    }
  }
  const items = plans.flatMap((p) =>
    p.tag ? [{ ...p.tag, expected: storeKey(p.tag.ref) === storeKey(p.result.ref) ? p.result.old.digest : undefined }] : [],
  );
  if (items.length) await store.tagMany(items);
}

/** Options from a config file get the checks the command line gives its flags. */
function checkOptions(opts: Pick<AnnotateImageOptions, 'levels' | 'platform'>): void {
  if (opts.levels !== undefined) parseLevels(opts.levels);
  if (opts.platform !== undefined) parsePlatform(opts.platform);
}

/** Changes the annotations of one stored image; see AnnotateResult for what it reports. */
export async function annotateImage(store: Store, ref: string, change: AnnotationChange, opts: AnnotateImageOptions = {}): Promise<AnnotateResult> {
  const explicit = validateChange(change);
  checkOptions(opts);
  if (opts.tag !== undefined) {
    if (isSignatureTag(opts.tag)) throw usageError(`-t ${opts.tag}: that is how signatures are tagged, not images`);
    storeKey(opts.tag); // a malformed -t fails before anything is read
  }
  const plan = await planImage(store, ref, explicit, Boolean(change.fromMetadata), opts, true);
  if (!opts.dryRun) await applyPlans(store, [plan], opts.signal);
  return plan.result;
}

/** The same change on every stored image whose reference matches the glob `pattern` (as `gadget list PATTERN`). */
export async function annotateAll(store: Store, pattern: string, change: AnnotationChange, opts: Omit<AnnotateImageOptions, 'tag'> = {}): Promise<AnnotateResult[]> {
  if ((opts as AnnotateImageOptions).tag !== undefined) throw usageError('annotate --all cannot take -t: one reference cannot name several images');
  return annotateRefs(store, store.list(pattern).map((r) => r.ref), change, opts, () => matchedNothing(pattern));
}

async function annotateRefs(store: Store, refs: string[], change: AnnotationChange, opts: AnnotateImageOptions, none: () => GadgetError): Promise<AnnotateResult[]> {
  const explicit = validateChange(change);
  checkOptions(opts);
  if (refs.length === 0) throw none();
  const plans: Plan[] = [];
  for (const ref of refs) {
    opts.signal?.throwIfAborted();
    plans.push(await planImage(store, ref, explicit, Boolean(change.fromMetadata), opts, false));
    opts.onProgress?.(plans.length, refs.length, ref);
  }
  if (!opts.dryRun) await applyPlans(store, plans, opts.signal);
  return plans.map((p) => p.result);
}

export interface AnnotateOptions extends AnnotationChange, Omit<AnnotateImageOptions, 'signal' | 'tag'> {
  /** Images to annotate instead of the previous step's artifacts. */
  refs?: string[];
  /** A glob: every stored image whose reference matches (instead of the previous step's artifacts). */
  all?: string;
  /** Tag each new image with this reference (one image), or with what the function returns for its old reference. */
  tag?: string | ((ref: string) => string);
}

/**
 * The annotate step of a task: `annotate({ set: { 'org.opencontainers.image.source': url } })`
 * annotates the images of the step before it (or `refs`, or `all`) and returns the new ones.
 */
export function annotate(options: AnnotateOptions): Plugin {
  const change: AnnotationChange = { set: options.set, unset: options.unset, fromMetadata: options.fromMetadata };
  // A bad step fails when the config loads, not in the middle of a task.
  validateChange(change);
  checkOptions(options);
  return {
    name: 'annotate',
    async run(ctx: PluginContext, input: Artifact[]): Promise<Artifact[]> {
      const refs = options.all !== undefined ? ctx.store.list(options.all).map((r) => r.ref) : options.refs ?? input.map((a) => a.ref);
      const { tag } = options;
      if (typeof tag === 'string' && refs.length !== 1) throw usageError(`annotate: tag "${tag}" can name one image, but there are ${refs.length}`, 'give `tag` as a function of the old reference');
      let bar: ReturnType<typeof ctx.progress.start> | undefined;
      const opts: AnnotateImageOptions = {
        levels: options.levels,
        platform: options.platform,
        dryRun: options.dryRun,
        signal: ctx.signal,
        onProgress: (_done, total, ref) => (bar ??= ctx.progress.start(total, 'annotate')).tick(1, ref),
      };
      let results: AnnotateResult[];
      if (tag === undefined) {
        results = await annotateRefs(ctx.store, refs, change, opts, options.all !== undefined ? () => matchedNothing(options.all!) : () => usageError('annotate: no images to annotate', 'give the step images (a build step before it) or `all`'));
      } else {
        results = [];
        for (const ref of refs) results.push(await annotateImage(ctx.store, ref, change, { ...opts, tag: typeof tag === 'string' ? tag : tag(ref) }));
      }
      bar?.done();
      for (const r of results) {
        ctx.emit({ type: 'annotate', ref: r.ref, changed: r.changed, old: r.old.digest, new: r.new.digest, tagged: r.tagged, staleSignatures: r.staleSignatures });
        ctx.log.info(`${r.ref}: ${r.changed ? `${r.old.digest} -> ${r.new.digest}` : `unchanged (${r.old.digest})`}`);
        for (const s of r.staleSignatures) ctx.log.warn(`${r.ref}: ${s.kind} signature ${s.digest} (${s.via}) signs ${s.subject}, not the annotated image; sign ${r.new.digest} again`);
      }
      // A dry run leaves the store as it was: the images are the old ones.
      return results.map((r) => ({ ref: r.tagged[0] ?? r.ref, descriptor: r.dryRun ? r.old : r.new }));
    },
  };
}
