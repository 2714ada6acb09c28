// An OCI image layout folder read as a Target (the source of `gadget import`): nothing is
// written to it, so a read-only folder or another tool's store can be imported as it is.
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { GadgetError } from '../lib/errors.js';
import { sha256 } from '../lib/oci/digest.js';
import { ANN_REF_NAME, INDEX_TYPES, MANIFEST_TYPES } from '../lib/oci/mediatypes.js';
import { MAX_MANIFEST_BYTES, type Referrer, type Target } from '../lib/oci/target.js';
import { isValidDescriptor, type Descriptor, type Index, type Manifest } from '../lib/oci/types.js';
import { blobPath, checkLayoutFile, readIndexFile } from './layout.js';

export class LayoutSource implements Target {
  readonly name: string;
  readonly entries: Descriptor[];

  /** `label` names the layout in messages: the tar it was unpacked from, or the folder. */
  constructor(
    readonly root: string,
    label?: string,
  ) {
    this.name = label ?? `layout ${root}`;
    checkLayoutFile(root, label);
    this.entries = readIndexFile(root, label).entries;
  }

  /**
   * The children of a manifest or index of this layout, after checking that its content is
   * what its descriptor says: its digest and size, JSON, and the kind of document its media
   * type names (a "manifest" that is an index is refused). `where` locates it in messages.
   */
  checkedChildren(d: Descriptor, where: string): Descriptor[] {
    const what = `${this.name}: ${d.digest} (${where})`;
    const file = blobPath(this.root, d.digest);
    if (statSync(file).size > MAX_MANIFEST_BYTES) throw new GadgetError(`${what} is larger than ${MAX_MANIFEST_BYTES} bytes, too large for a manifest`);
    const bytes = readFileSync(file);
    if (bytes.length !== d.size || sha256(bytes) !== d.digest) throw new GadgetError(`${what}: the content does not match its digest or size`);
    let doc: Manifest & Index;
    try {
      doc = JSON.parse(bytes.toString('utf8')) as Manifest & Index;
    } catch {
      throw new GadgetError(`${what} is labelled ${d.mediaType} but is not valid JSON`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new GadgetError(`${what} is labelled ${d.mediaType} but is not a JSON object`);
    const wantIndex = INDEX_TYPES.has(d.mediaType);
    const looksIndex = Array.isArray(doc.manifests) && doc.config === undefined;
    const looksManifest = doc.config !== undefined && doc.manifests === undefined;
    if (typeof doc.mediaType === 'string' ? doc.mediaType !== d.mediaType : wantIndex ? !looksIndex : !looksManifest) {
      const is = typeof doc.mediaType === 'string' ? doc.mediaType : looksIndex ? 'an index' : looksManifest ? 'a manifest' : 'neither a manifest nor an index';
      throw new GadgetError(`${what} is labelled ${wantIndex ? 'an index' : 'a manifest'} (${d.mediaType}) but its content is ${is}`, {
        hint: 'the descriptor that names it must carry the media type of its content',
      });
    }
    const children = wantIndex ? doc.manifests : [doc.config, ...(Array.isArray(doc.layers) ? doc.layers : [])];
    if (!MANIFEST_TYPES.has(d.mediaType) && !wantIndex) return [];
    if (!Array.isArray(children) || !children.every(isValidDescriptor) || (!wantIndex && !Array.isArray(doc.layers))) {
      throw new GadgetError(`${what}: a child is not a valid descriptor (media type, sha256 digest and size are required)`);
    }
    return children;
  }

  has(digest: string): boolean {
    return existsSync(blobPath(this.root, digest));
  }

  async fetch(descriptor: Descriptor): Promise<Readable> {
    const file = blobPath(this.root, descriptor.digest);
    if (!existsSync(file)) throw new GadgetError(`${this.name}: blob ${descriptor.digest} is missing`);
    return createReadStream(file, { highWaterMark: 1 << 20 });
  }

  async exists(descriptor: Descriptor): Promise<boolean> {
    try {
      return statSync(blobPath(this.root, descriptor.digest)).size === descriptor.size;
    } catch {
      return false;
    }
  }

  async push(): Promise<void> {
    throw new GadgetError(`${this.name} is read-only here`);
  }

  async tag(): Promise<void> {
    throw new GadgetError(`${this.name} is read-only here`);
  }

  async resolve(reference: string): Promise<Descriptor> {
    const found = this.entries.find((d) => d.annotations?.[ANN_REF_NAME] === reference || d.digest === reference);
    if (!found) throw new GadgetError(`${reference} is not in ${this.name}`);
    return found;
  }

  /** Referrers are whole index.json entries here; import copies every entry anyway. */
  async referrers(): Promise<Referrer[]> {
    return [];
  }
}
