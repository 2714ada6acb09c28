// An OCI image layout folder read as a Target (the source of `gadget import`): nothing is
// written to it, so a read-only folder or another tool's store can be imported as it is.
import { closeSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { GadgetError } from '../lib/errors.js';
import { ANN_REF_NAME } from '../lib/oci/mediatypes.js';
import type { Referrer, Target } from '../lib/oci/target.js';
import type { Descriptor } from '../lib/oci/types.js';
import { blobPath, checkLayoutFile, readIndexFile } from './layout.js';
import { checkManifestSize, checkedChildrenOf } from './layout-check.js';
import { openRegular, regularFile, streamRegular } from './regular-files.js';

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

  /** The children of a manifest or index of this layout, checked (see checkedChildrenOf). `where` locates it in messages. */
  checkedChildren(d: Descriptor, where: string): Descriptor[] {
    const what = `${this.name}: ${d.digest} (${where})`;
    const file = blobPath(this.root, d.digest);
    const { fd, size } = openRegular(file);
    try {
      checkManifestSize(size, what);
      return checkedChildrenOf(readFileSync(fd), d, what);
    } finally {
      closeSync(fd);
    }
  }

  has(digest: string): boolean {
    return regularFile(blobPath(this.root, digest)) !== undefined;
  }

  async fetch(descriptor: Descriptor): Promise<Readable> {
    const file = blobPath(this.root, descriptor.digest);
    if (!regularFile(file)) throw new GadgetError(`${this.name}: blob ${descriptor.digest} is missing`);
    return streamRegular(file, { highWaterMark: 1 << 20 });
  }

  async exists(descriptor: Descriptor): Promise<boolean> {
    try {
      return regularFile(blobPath(this.root, descriptor.digest))?.size === descriptor.size;
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
