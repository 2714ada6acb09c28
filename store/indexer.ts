// Fills the SQLite index from the layout: index.json entries, and every manifest and index
// reachable from them (parsed once: a digest's content never changes).
import { sha256 } from '../lib/oci/digest.js';
import { ANN_CREATED, ANN_REF_NAME, ANN_TITLE, INDEX_TYPES, isManifestType } from '../lib/oci/mediatypes.js';
import { MAX_MANIFEST_BYTES } from '../lib/oci/target.js';
import { isValidDescriptor, type Descriptor, type Index, type Manifest } from '../lib/oci/types.js';
import type { DB } from './db.js';
import { blobPath } from './layout.js';
import { readRegular, regularFile } from './regular-files.js';

interface ParsedNode {
  mediaType: string;
  artifactType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/**
 * Reads a manifest or index blob if it is present, intact and small enough; else undefined.
 * `written`: its bytes, verified, when the caller just stored them (no second read).
 */
function readNode(root: string, desc: Descriptor, written?: Buffer): ParsedNode | undefined {
  let bytes = written;
  if (!bytes) {
    const file = blobPath(root, desc.digest);
    if ((regularFile(file)?.size ?? Infinity) > MAX_MANIFEST_BYTES) return undefined;
    bytes = readRegular(file);
    if (sha256(bytes) !== desc.digest) return undefined;
  }
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as Manifest & Index;
    if (typeof doc !== 'object' || doc === null) return undefined;
    // Hostile or broken documents are left unindexed (verify and fsck name them).
    const children = [...(doc.manifests ?? []), ...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])];
    if (!children.every(isValidDescriptor) || (doc.subject !== undefined && !isValidDescriptor(doc.subject))) return undefined;
    if (doc.annotations !== undefined && (typeof doc.annotations !== 'object' || doc.annotations === null)) return undefined;
    return { ...doc, mediaType: typeof doc.mediaType === 'string' ? doc.mediaType : desc.mediaType };
  } catch {
    return undefined;
  }
}

export class Indexer {
  private readonly insertManifest;
  private readonly insertChild;
  private readonly insertAnnotation;
  private readonly known;
  private readonly graphSizeOf;

  constructor(
    private readonly db: DB,
    private readonly root: string,
  ) {
    this.insertManifest = db.prepare(
      `INSERT OR REPLACE INTO manifests (digest, media_type, artifact_type, config_media_type, subject, size, graph_size, created, title)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertChild = db.prepare(
      `INSERT OR REPLACE INTO children (parent, position, role, digest, media_type, size, arch, os) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertAnnotation = db.prepare(`INSERT OR REPLACE INTO annotations (digest, key, value) VALUES (?, ?, ?)`);
    this.known = db.prepare(`SELECT 1 FROM manifests WHERE digest = ?`).pluck();
    this.graphSizeOf = db.prepare(`SELECT graph_size FROM manifests WHERE digest = ?`).pluck();
  }

  isIndexed(digest: string): boolean {
    return this.known.get(digest) !== undefined;
  }

  /**
   * Indexes a manifest or index and, for an index, its children. Returns false when the
   * content is missing or unreadable (fsck reports that; the index simply lacks the node).
   * `written` is the node's verified bytes when the caller has just stored them.
   */
  index(desc: Descriptor, written?: Buffer): boolean {
    if (!isManifestType(desc.mediaType)) return true;
    if (this.isIndexed(desc.digest)) return true;
    const node = readNode(this.root, desc, written);
    if (!node) return false;
    const isIndex = INDEX_TYPES.has(node.mediaType);
    const children = isIndex ? node.manifests ?? [] : [...(node.config ? [node.config] : []), ...(node.layers ?? [])];
    for (const child of children) if (isIndex) this.index(child);

    const digests = new Map<string, number>([[desc.digest, desc.size]]);
    for (const child of children) digests.set(child.digest, child.size);
    let graphSize = [...digests.values()].reduce((a, b) => a + b, 0);
    if (isIndex) {
      // Children's own graphs; a blob shared by two platforms is counted once per platform.
      const seen = new Set<string>();
      for (const child of children) {
        if (seen.has(child.digest)) continue;
        seen.add(child.digest);
        const size = this.graphSizeOf.get(child.digest) as number | null | undefined;
        if (typeof size === 'number') graphSize += size - child.size;
      }
    }
    const annotations = node.annotations ?? {};
    const first = isIndex ? children[0] : undefined;
    const firstAnnotations = first?.annotations ?? {};
    const artifactType = node.artifactType ?? (isIndex ? first?.artifactType ?? this.childArtifactType(first) : undefined);
    this.db.transaction(() => {
      this.insertManifest.run(
        desc.digest,
        node.mediaType,
        artifactType ?? null,
        node.config?.mediaType ?? null,
        node.subject?.digest ?? null,
        desc.size,
        graphSize,
        annotations[ANN_CREATED] ?? firstAnnotations[ANN_CREATED] ?? null,
        annotations[ANN_TITLE] ?? firstAnnotations[ANN_TITLE] ?? null,
      );
      children.forEach((child, position) => {
        const role = isIndex ? 'manifest' : position === 0 ? 'config' : 'layer';
        this.insertChild.run(desc.digest, position, role, child.digest, child.mediaType, child.size, child.platform?.architecture ?? null, child.platform?.os ?? null);
      });
      for (const [key, value] of Object.entries(annotations)) {
        if (key !== ANN_REF_NAME && typeof value === 'string') this.insertAnnotation.run(desc.digest, key, value);
      }
    })();
    return true;
  }

  private childArtifactType(child: Descriptor | undefined): string | undefined {
    if (!child) return undefined;
    const row = this.db.prepare(`SELECT artifact_type FROM manifests WHERE digest = ?`).pluck().get(child.digest);
    return typeof row === 'string' ? row : undefined;
  }
}
