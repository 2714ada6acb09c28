// `gadget export` as a copy destination that writes nothing until the end: copyGraph records
// what the tar will hold (blobs, tags, and the untagged entries that root OCI 1.1 referrers,
// shaped as the store shapes them, entries.ts), then the tar is streamed from the store, every
// blob checked against its digest on the way. Each byte is read once and written once: no
// staging copy of the images.
import { finished, type Readable } from 'node:stream';
import { GadgetError } from '../lib/errors.js';
import { isManifestType } from '../lib/oci/mediatypes.js';
import type { Referrer, Target } from '../lib/oci/target.js';
import type { Descriptor } from '../lib/oci/types.js';
import { indexEntry, referrerEntry, setTag } from './entries.js';
import { checkedStoreBlob, writeLayoutTar } from './layout-tar.js';
import type { Store } from './store.js';

export class ExportPlan implements Target {
  readonly name: string;
  readonly keepsGraphsWhole = true; // children are recorded before the manifest that names them
  private readonly blobs = new Map<string, Descriptor>();
  private readonly entries: Array<{ ref: string | null; descriptor: Descriptor }> = [];

  constructor(
    private readonly store: Store,
    readonly file: string,
  ) {
    this.name = `export ${file}`;
  }

  async fetch(descriptor: Descriptor): Promise<Readable> {
    return this.store.fetch(descriptor);
  }

  async exists(descriptor: Descriptor): Promise<boolean> {
    return this.blobs.has(descriptor.digest);
  }

  async pushBlob(descriptor: Descriptor): Promise<'copied' | 'skipped'> {
    if (this.blobs.has(descriptor.digest)) return 'skipped';
    this.blobs.set(descriptor.digest, descriptor);
    return 'copied';
  }

  async push(descriptor: Descriptor, content: Readable): Promise<void> {
    // A manifest's bytes (copyGraph read and checked them); the tar reads them from the store.
    content.resume();
    await new Promise<void>((resolve, reject) => finished(content, (err) => (err ? reject(err) : resolve())));
    this.blobs.set(descriptor.digest, descriptor);
    if (!isManifestType(descriptor.mediaType) || this.entries.some((e) => e.descriptor.digest === descriptor.digest)) return;
    const row = this.store.manifestRow(descriptor.digest);
    if (row?.subject) this.entries.push({ ref: null, descriptor: referrerEntry(descriptor, row.artifact_type) });
  }

  async peek(reference: string): Promise<Descriptor | undefined> {
    return this.entries.find((e) => e.ref === reference)?.descriptor;
  }

  async resolve(reference: string): Promise<Descriptor> {
    const found = await this.peek(reference);
    if (!found) throw new GadgetError(`${reference} is not in ${this.name}`);
    return found;
  }

  async tag(descriptor: Descriptor, reference: string): Promise<void> {
    setTag(this.entries, descriptor, reference);
  }

  async referrers(): Promise<Referrer[]> {
    return [];
  }

  /** Writes the tar (atomically); returns the bytes of blobs written. */
  async write(onBytes?: (n: number) => void, signal?: AbortSignal): Promise<number> {
    const blobs = [...this.blobs.values()].map((d) => checkedStoreBlob(this.store, d, onBytes));
    await writeLayoutTar(this.file, this.entries.map((e) => indexEntry(e.descriptor, e.ref)), blobs, signal);
    return blobs.reduce((sum, b) => sum + b.size, 0);
  }
}
