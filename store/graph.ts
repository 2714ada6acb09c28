// "Is this whole graph in the store?": the check that tagging makes under the store's lock,
// and that Store.exists answers for a manifest (so a copy into the store heals what is
// missing, as a registry's "manifest exists" implies its children). Synchronous, so that it
// can run inside an SQLite transaction.
import { sha256 } from '../lib/oci/digest.js';
import { INDEX_TYPES, isManifestType } from '../lib/oci/mediatypes.js';
import { MAX_MANIFEST_BYTES } from '../lib/oci/target.js';
import { isValidDescriptor, type Descriptor, type Index, type Manifest } from '../lib/oci/types.js';
import { statement, type ChildRow, type DB } from './db.js';
import { blobPath } from './layout.js';
import { readRegular, regularFile } from './regular-files.js';

/** A blob's size on disk, or undefined when it is absent. */
export function blobSize(root: string, digest: string): number | undefined {
  try {
    return regularFile(blobPath(root, digest))?.size;
  } catch {
    return undefined;
  }
}

/**
 * The children of a manifest or index read from its blob, verified against its digest.
 * Undefined when the blob is absent, too large, corrupt or not a document we can follow.
 */
export function readChildrenSync(root: string, d: Descriptor): Descriptor[] | undefined {
  let bytes: Buffer;
  try {
    if ((regularFile(blobPath(root, d.digest))?.size ?? Infinity) > MAX_MANIFEST_BYTES) return undefined;
    bytes = readRegular(blobPath(root, d.digest));
  } catch {
    return undefined;
  }
  if (sha256(bytes) !== d.digest) return undefined;
  let doc: Manifest & Index;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Manifest & Index;
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return undefined;
  const children = INDEX_TYPES.has(typeof doc.mediaType === 'string' ? doc.mediaType : d.mediaType)
    ? doc.manifests ?? []
    : [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])];
  return Array.isArray(children) && children.every(isValidDescriptor) ? children : undefined;
}

/**
 * Every digest a document names as a child (manifests, config, layers, an artifact manifest's
 * blobs), read from its blob, however badly formed the rest of its descriptors are; empty
 * when the blob is absent, too large, corrupt or not JSON. For gc, which must keep whatever a
 * tag may still need: a manifest that cannot be followed keeps every blob it names.
 */
export function namedChildrenSync(root: string, digest: string): Array<{ digest: string; mediaType?: string }> {
  let doc: unknown;
  try {
    const file = blobPath(root, digest);
    if ((regularFile(file)?.size ?? Infinity) > MAX_MANIFEST_BYTES) return [];
    const bytes = readRegular(file);
    if (sha256(bytes) !== digest) return [];
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    return [];
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return [];
  const { manifests, config, layers, blobs } = doc as Record<string, unknown>;
  const out: Array<{ digest: string; mediaType?: string }> = [];
  for (const list of [manifests, [config], layers, blobs]) {
    if (!Array.isArray(list)) continue;
    for (const c of list as unknown[]) {
      const { digest: named, mediaType } = (typeof c === 'object' && c !== null ? c : {}) as { digest?: unknown; mediaType?: unknown };
      if (typeof named === 'string' && /^sha256:[a-f0-9]{64}$/.test(named)) out.push({ digest: named, mediaType: typeof mediaType === 'string' ? mediaType : undefined });
    }
  }
  return out;
}

/** A manifest's children: from the index database when it was parsed before, else from its blob. */
function childrenOf(db: DB, root: string, d: Descriptor): Descriptor[] | undefined {
  const indexed = statement(db, 'SELECT 1 FROM manifests WHERE digest = ?').pluck().get(d.digest) !== undefined;
  if (indexed) {
    const rows = statement(db, 'SELECT * FROM children WHERE parent = ? ORDER BY position').all(d.digest) as ChildRow[];
    return rows.map((r) => ({ mediaType: r.media_type, digest: r.digest, size: r.size }));
  }
  return readChildrenSync(root, d);
}

/**
 * The digests under `d` (itself included) that are absent, have the wrong size, or (for a
 * manifest) cannot be read; empty when the whole graph is there. Blobs are not re-hashed
 * (fsck does that); sizes are compared.
 */
export function graphGaps(db: DB, root: string, d: Descriptor, seen = new Set<string>()): string[] {
  if (seen.has(d.digest)) return [];
  seen.add(d.digest);
  const size = blobSize(root, d.digest);
  if (size === undefined || size !== d.size) return [d.digest];
  if (!isManifestType(d.mediaType)) return [];
  const children = childrenOf(db, root, d);
  if (!children) return [d.digest];
  return children.flatMap((child) => graphGaps(db, root, child, seen));
}
