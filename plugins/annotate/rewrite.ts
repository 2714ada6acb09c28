// The pure bottom-up rewrite of an image's graph: a changed config descriptor gives new
// manifest bytes, a changed manifest gives a new index entry (digest, size, inline data), and
// a changed entry or index map gives new index bytes. Only `annotations` maps change; every
// other field keeps its value and its place (unknown fields too), and a document without a
// change keeps its original bytes. Config and layer blobs are only ever referred to.
import { GadgetError } from '../../lib/errors.js';
import { sha256 } from '../../lib/oci/digest.js';
import { encodeJSONBytes } from '../../lib/oci/json.js';
import { ANN_REF_NAME, MT_INDEX, MT_MANIFEST } from '../../lib/oci/mediatypes.js';
import type { Annotations, Descriptor } from '../../lib/oci/types.js';
import type { Level, ResolvedChange } from './change.js';

// Go's struct field order (image-spec v1.1): a map added where there was none goes here.
const DESCRIPTOR_FIELDS = ['mediaType', 'digest', 'size', 'urls', 'annotations', 'data', 'platform', 'artifactType'];
const MANIFEST_FIELDS = ['schemaVersion', 'mediaType', 'artifactType', 'config', 'layers', 'subject', 'annotations'];
const INDEX_FIELDS = ['schemaVersion', 'mediaType', 'artifactType', 'manifests', 'subject', 'annotations'];

type Json = Record<string, unknown>;

export interface Blob {
  descriptor: Descriptor;
  bytes: Buffer;
}

/** One annotation that changes at one place. */
export interface AnnotationDiff {
  level: Level;
  /** The place: "index", "index entry linux/amd64", "manifest linux/amd64", "config descriptor linux/amd64", "tag entry". */
  at: string;
  key: string;
  from: string | null;
  to: string | null;
}

export interface ManifestOutcome {
  /** "linux/amd64"; undefined for an image that is a single manifest. */
  platform?: string;
  old: Descriptor;
  new: Descriptor;
  changed: boolean;
  /** False when --platform or the media type kept this entry out of the change. */
  selected: boolean;
  /** The config and layer blobs, kept as they are by the old and the new manifest. */
  config?: Descriptor;
  layers: Descriptor[];
}

export interface RewriteInput {
  root: Blob;
  /** The bytes of every manifest the index lists that may change (verified by the caller). */
  manifests: ReadonlyMap<string, Buffer>;
  change: ResolvedChange;
  levels: ReadonlySet<Level>;
  /** Only the index entries of this architecture (and their manifests) change. */
  arch?: string;
}

export interface RewriteResult {
  kind: 'index' | 'manifest';
  old: Descriptor;
  new: Descriptor;
  changed: boolean;
  manifests: ManifestOutcome[];
  /** New manifest and index blobs, children before parents, each once. */
  blobs: Blob[];
  diffs: AnnotationDiff[];
  /** Entries left alone for a reason other than --platform (nested indexes, Docker types). */
  notes: string[];
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parseDocument(bytes: Buffer, what: string): Json {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new GadgetError(`${what} is not valid JSON`, { hint: 'run `gadget fsck` on the store' });
  }
  if (!isObject(doc)) throw new GadgetError(`${what} is not a JSON object`);
  return doc;
}

/** `obj` with `key` set to `value` (deleted when undefined): in place if present, else at its Go position. */
function withField(obj: Json, key: string, value: unknown, order: readonly string[]): Json {
  if (value === undefined) {
    const { [key]: _dropped, ...rest } = obj;
    return rest;
  }
  const entries = Object.entries(obj);
  const at = entries.findIndex(([k]) => k === key);
  if (at >= 0) entries[at] = [key, value];
  else {
    // Right after the last field that Go writes before it; unknown fields keep following.
    const rank = order.indexOf(key);
    let after = -1;
    entries.forEach(([k], i) => {
      const r = order.indexOf(k);
      if (r >= 0 && r < rank) after = i;
    });
    entries.splice(after + 1, 0, [key, value]);
  }
  return Object.fromEntries(entries);
}

/** Applies the change to `obj.annotations`; an emptied map is dropped, as Go's omitempty does. */
function changeMap(obj: Json, change: ResolvedChange, order: readonly string[], where: string): { obj: Json; diffs: Array<Omit<AnnotationDiff, 'level' | 'at'>> } {
  const current = obj.annotations;
  if (current !== undefined && !isObject(current)) throw new GadgetError(`${where}: "annotations" is not a map`);
  const map = new Map(Object.entries(current ?? {}));
  const diffs: Array<Omit<AnnotationDiff, 'level' | 'at'>> = [];
  for (const key of change.unset) {
    if (!map.has(key)) continue;
    diffs.push({ key, from: String(map.get(key)), to: null });
    map.delete(key);
  }
  for (const [key, value] of Object.entries(change.set)) {
    if (map.get(key) === value) continue;
    diffs.push({ key, from: map.has(key) ? String(map.get(key)) : null, to: value });
    map.set(key, value);
  }
  if (diffs.length === 0) return { obj, diffs };
  return { obj: withField(obj, 'annotations', map.size ? Object.fromEntries(map) : undefined, order), diffs };
}

function blobOf(mediaType: string, bytes: Buffer): Blob {
  return { descriptor: { mediaType, digest: sha256(bytes), size: bytes.length }, bytes };
}

interface ManifestRewrite {
  blob: Blob;
  changed: boolean;
  config?: Descriptor;
  layers: Descriptor[];
}

function rewriteManifest(bytes: Buffer, old: Descriptor, input: RewriteInput, label: string, diffs: AnnotationDiff[]): ManifestRewrite {
  const what = `manifest ${old.digest}`;
  let doc = parseDocument(bytes, what);
  const config = doc.config;
  if (!isObject(config)) throw new GadgetError(`${what} has no config descriptor, so it is not an image manifest`);
  const layers = Array.isArray(doc.layers) ? (doc.layers as Descriptor[]) : [];
  let changed = false;
  if (input.levels.has('config')) {
    const r = changeMap(config, input.change, DESCRIPTOR_FIELDS, `${what}: config descriptor`);
    if (r.diffs.length) {
      doc = withField(doc, 'config', r.obj, MANIFEST_FIELDS);
      diffs.push(...r.diffs.map((d) => ({ level: 'config' as const, at: `config descriptor${label}`, ...d })));
      changed = true;
    }
  }
  if (input.levels.has('manifest')) {
    const r = changeMap(doc, input.change, MANIFEST_FIELDS, what);
    if (r.diffs.length) {
      doc = r.obj;
      diffs.push(...r.diffs.map((d) => ({ level: 'manifest' as const, at: `manifest${label}`, ...d })));
      changed = true;
    }
  }
  const blob = changed ? blobOf(old.mediaType, encodeJSONBytes(doc)) : { descriptor: { mediaType: old.mediaType, digest: old.digest, size: old.size }, bytes };
  return { blob, changed, config: config as unknown as Descriptor, layers };
}

function platformOf(entry: Json): string | undefined {
  const p = entry.platform;
  return isObject(p) && typeof p.architecture === 'string' ? `${typeof p.os === 'string' ? p.os : '?'}/${p.architecture}${typeof p.variant === 'string' ? `/${p.variant}` : ''}` : undefined;
}

/** Rewrites an image (an index, or a single manifest) with `input.change`. Reads nothing, writes nothing. */
export function rewriteImage(input: RewriteInput): RewriteResult {
  const old = input.root.descriptor;
  const base = { old, notes: [] as string[] };
  if (old.mediaType === MT_MANIFEST) {
    const diffs: AnnotationDiff[] = [];
    const m = rewriteManifest(input.root.bytes, old, input, '', diffs);
    const outcome: ManifestOutcome = { old, new: m.blob.descriptor, changed: m.changed, selected: true, config: m.config, layers: m.layers };
    return { ...base, kind: 'manifest', new: m.blob.descriptor, changed: m.changed, manifests: [outcome], blobs: m.changed ? [m.blob] : [], diffs };
  }
  if (old.mediaType !== MT_INDEX) throw new GadgetError(`${old.digest} is a ${old.mediaType}, neither an OCI index nor an OCI image manifest`);

  const what = `index ${old.digest}`;
  let doc = parseDocument(input.root.bytes, what);
  if (!Array.isArray(doc.manifests)) throw new GadgetError(`${what} has no "manifests" list`);
  const entries = doc.manifests as unknown[];
  const selected = entries.map((entry, i) => {
    if (!isObject(entry) || typeof entry.digest !== 'string' || typeof entry.mediaType !== 'string') throw new GadgetError(`${what}: entry ${i} is not a descriptor`);
    if (entry.mediaType !== MT_MANIFEST) {
      base.notes.push(`entry ${i} (${entry.mediaType}) is not an OCI image manifest: left unchanged`);
      return false;
    }
    return input.arch === undefined || (isObject(entry.platform) && entry.platform.architecture === input.arch);
  });
  // A manifest listed twice (ig lists one digest for both platforms when they are equal) is
  // rewritten once and named by all its platforms.
  const labels = new Map<string, string[]>();
  entries.forEach((entry, i) => {
    if (!selected[i]) return;
    const e = entry as Json;
    labels.set(e.digest as string, [...(labels.get(e.digest as string) ?? []), platformOf(e) ?? `entry ${i}`]);
  });

  const diffs: AnnotationDiff[] = [];
  const rewritten = new Map<string, ManifestRewrite>();
  const blobs: Blob[] = [];
  const outcomes: ManifestOutcome[] = [];
  let entriesChanged = false;
  const touchManifests = input.levels.has('manifest') || input.levels.has('config');
  const newEntries = entries.map((raw, i) => {
    let entry = raw as Json;
    const oldDesc: Descriptor = { mediaType: entry.mediaType as string, digest: entry.digest as string, size: entry.size as number };
    const platform = platformOf(entry);
    if (!selected[i] || !touchManifests) {
      outcomes.push({ platform, old: oldDesc, new: oldDesc, changed: false, selected: Boolean(selected[i]), layers: [] });
      return entry;
    }
    let m = rewritten.get(oldDesc.digest);
    if (!m) {
      const bytes = input.manifests.get(oldDesc.digest);
      if (!bytes) throw new GadgetError(`${what} lists manifest ${oldDesc.digest}, which is missing`, { hint: 'run `gadget fsck`, or pull the image again' });
      m = rewriteManifest(bytes, oldDesc, input, ` ${labels.get(oldDesc.digest)!.join('+')}`, diffs);
      rewritten.set(oldDesc.digest, m);
      if (m.changed) blobs.push(m.blob);
    }
    let changed = m.changed;
    if (m.changed) {
      entry = withField(entry, 'digest', m.blob.descriptor.digest, DESCRIPTOR_FIELDS);
      entry = withField(entry, 'size', m.blob.descriptor.size, DESCRIPTOR_FIELDS);
      // Inline content must stay the content the digest names.
      if (entry.data !== undefined) entry = withField(entry, 'data', m.blob.bytes.toString('base64'), DESCRIPTOR_FIELDS);
    }
    if (input.levels.has('manifest')) {
      const r = changeMap(entry, input.change, DESCRIPTOR_FIELDS, `${what}: entry ${i}`);
      if (r.diffs.length) {
        entry = r.obj;
        diffs.push(...r.diffs.map((d) => ({ level: 'manifest' as const, at: `index entry ${platform ?? `entry ${i}`}`, ...d })));
        changed = true;
      }
    }
    entriesChanged ||= changed;
    outcomes.push({ platform, old: oldDesc, new: m.blob.descriptor, changed: m.changed, selected: true, config: m.config, layers: m.layers });
    return entry;
  });
  if (entriesChanged) doc = withField(doc, 'manifests', newEntries, INDEX_FIELDS);
  let indexChanged = entriesChanged;
  if (input.levels.has('index')) {
    const r = changeMap(doc, input.change, INDEX_FIELDS, what);
    if (r.diffs.length) {
      doc = r.obj;
      diffs.push(...r.diffs.map((d) => ({ level: 'index' as const, at: 'index', ...d })));
      indexChanged = true;
    }
  }
  const root = indexChanged ? blobOf(old.mediaType, encodeJSONBytes(doc)) : input.root;
  if (indexChanged) blobs.push(root);
  return { ...base, kind: 'index', new: root.descriptor, changed: indexChanged, manifests: outcomes, blobs, diffs };
}

/**
 * The index.json entry that tags the new root. ig's builds put the image's annotations on it;
 * an entry that carries them gets the same change (as a descriptor of the root), one that
 * carries only the tag stays that way.
 */
export function rewriteTagEntry(entry: Descriptor, root: Descriptor, change: ResolvedChange, apply: boolean, level: Level): { descriptor: Descriptor; diffs: AnnotationDiff[] } {
  const annotations: Annotations = Object.fromEntries(Object.entries(entry.annotations ?? {}).filter(([k]) => k !== ANN_REF_NAME));
  const descriptor: Descriptor = { mediaType: root.mediaType, digest: root.digest, size: root.size };
  if (entry.platform) descriptor.platform = entry.platform;
  if (entry.artifactType) descriptor.artifactType = entry.artifactType;
  if (Object.keys(annotations).length === 0) return { descriptor, diffs: [] };
  const r = apply ? changeMap({ annotations }, change, DESCRIPTOR_FIELDS, 'index.json entry') : { obj: { annotations }, diffs: [] };
  if (r.obj.annotations) descriptor.annotations = r.obj.annotations as Annotations;
  return { descriptor, diffs: r.diffs.map((d) => ({ level, at: 'tag entry', ...d })) };
}
