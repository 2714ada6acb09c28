// A layout tar (what `gadget export` writes and `gadget import`, ig, skopeo and umoci read on
// the other side of an air gap) as a copy destination: the ends of `gadget export` and of a
// sync to a bundle.
//
// The bundle already there is a Target too: copyGraph skips what it holds, new blobs go to a
// staging store beside it (`.NAME.tar.staging/`) and new tags are kept in memory; at the end
// the tar is written again, old and new together, only when something is new. So a re-run
// that finds nothing new leaves the file untouched, byte for byte (its mtime too). The staging
// store stays when something failed, so that the next run only copies what is missing. What
// the local store being copied from holds is not staged: the tar reads it from there (checked
// on the way), so a copy from the store writes each byte once.
import { existsSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { GadgetError } from '../lib/errors.js';
import { childrenOf, counted, fetchManifest } from '../lib/oci/copy.js';
import { DigestVerifier } from '../lib/oci/digest.js';
import { ANN_REF_NAME, isManifestType } from '../lib/oci/mediatypes.js';
import type { Referrer, Target } from '../lib/oci/target.js';
import type { Descriptor } from '../lib/oci/types.js';
import { BundleSource } from './bundle-source.js';
import { referrerEntry } from './entries.js';
import { writeLayoutTar, type LayoutTarBlob } from './layout-tar.js';
import { checkOutputFile } from './output-file.js';
import { openStore, type Store } from './store.js';

export function stagingDir(file: string): string {
  return join(dirname(file), `.${basename(file)}.staging`);
}

export interface BundleWrite {
  /** Whether the file was written (false: this run added nothing). */
  written: boolean;
  /** Tags left out (dropDamaged): a blob of their graph is damaged or missing in the local store. */
  dropped: Map<string, GadgetError>;
}

/** A bundle file as a copy destination: the tar already there, plus what is new. */
export class BundleDestination implements Target {
  readonly name: string;
  /** Tags set in this run (copyGraph tags only what does not already point right). */
  private readonly tags = new Map<string, Descriptor>();
  private staging?: Promise<Store>;
  /** The local store this run copies from, and what of it the tar will read from there. */
  private local?: Store;
  private readonly fromLocal = new Map<string, Descriptor>();
  /** Local store blobs found damaged or missing by the last write, with the error that said so. */
  private readonly damaged = new Map<string, GadgetError>();
  /** Per tag of the last write: the digests its image and its referrers reach. */
  private readonly reach = new Map<string, Array<Set<string>>>();

  private constructor(
    readonly file: string,
    private readonly existing: BundleSource | undefined,
    /** False for export: everything comes from the local store, nothing is staged. */
    private readonly stages: boolean,
  ) {
    this.name = `bundle ${file}`;
    // An earlier run that failed left its copies here: they count as present.
    if (stages && existsSync(stagingDir(file))) this.staging = openStore(stagingDir(file));
  }

  /**
   * The bundle at `file`, to add to (and the copies a failed run left); with `replace`
   * (export), a new one that will replace whatever is there. `store`: a store whose folder the
   * bundle may not be written into.
   */
  static async open(file: string, opts: { replace?: boolean; store?: Store } = {}): Promise<BundleDestination> {
    // Before anything is read or staged: a FIFO, device, folder or symbolic link there, a
    // missing folder, or a path inside the store (`store`) is refused (output-file.ts).
    await checkOutputFile(file, { store: opts.store?.root });
    if (opts.replace) return new BundleDestination(file, undefined, false);
    return new BundleDestination(file, existsSync(file) ? await BundleSource.open(file) : undefined, true);
  }

  private stage(descriptor: Descriptor): Promise<Store> {
    if (!this.stages) throw new GadgetError(`${this.name}: ${descriptor.digest} is missing from ${this.local?.name ?? 'the store'}`, { hint: 'run `gadget fsck` to see what is damaged' });
    return (this.staging ??= openStore(stagingDir(this.file)));
  }

  /** Content this local store holds is read from it when the tar is written, not staged. */
  readsFrom(store: Store): void {
    this.local = store;
  }

  /** Whether the local store holds `descriptor` (a manifest: its whole graph); if so, noted. */
  private async inLocal(descriptor: Descriptor): Promise<boolean> {
    if (!this.local || !(await this.local.exists(descriptor))) return false;
    this.fromLocal.set(descriptor.digest, descriptor);
    return true;
  }

  async fetch(descriptor: Descriptor): Promise<Readable> {
    if (this.existing?.has(descriptor.digest)) return this.existing.fetch(descriptor);
    if (this.fromLocal.has(descriptor.digest)) return this.local!.fetch(descriptor);
    // Asked (by copyGraph's graph check) before anything was staged: nothing to open a store for.
    if (!this.staging) throw new GadgetError(`${descriptor.digest} is not in ${this.name}`);
    return (await this.staging).fetch(descriptor);
  }

  async exists(descriptor: Descriptor): Promise<boolean> {
    if (this.existing?.has(descriptor.digest, descriptor.size) || this.fromLocal.has(descriptor.digest)) return true;
    return this.staging ? (await this.staging).exists(descriptor) : false;
  }

  async pushBlob(descriptor: Descriptor, open: () => Promise<Readable>, signal?: AbortSignal): Promise<'copied' | 'skipped'> {
    if (this.existing?.has(descriptor.digest, descriptor.size)) return 'skipped';
    if (await this.inLocal(descriptor)) return 'copied';
    return (await this.stage(descriptor)).pushBlob(descriptor, open, signal);
  }

  async push(descriptor: Descriptor, content: Readable, signal?: AbortSignal): Promise<void> {
    if (this.existing?.has(descriptor.digest, descriptor.size) || (await this.inLocal(descriptor))) {
      content.resume();
      return;
    }
    await (await this.stage(descriptor)).push(descriptor, content, signal);
  }

  async peek(reference: string): Promise<Descriptor | undefined> {
    return this.tags.get(reference) ?? this.existing?.lookup(reference);
  }

  async resolve(reference: string): Promise<Descriptor> {
    const found = await this.peek(reference);
    if (!found) throw new GadgetError(`${reference} is not in ${this.name}`);
    return found;
  }

  async tag(descriptor: Descriptor, reference: string): Promise<void> {
    this.tags.set(reference, descriptor);
  }

  async referrers(descriptor: Descriptor): Promise<Referrer[]> {
    return this.existing ? this.existing.referrers(descriptor) : [];
  }

  /**
   * Writes the bundle when this run added anything (see writeOnce). With `dropDamaged` (a
   * sync), an image with a blob the local store holds damaged or no longer holds is left out
   * and named in `dropped`, and the rest is written: one bad blob does not cost a mirror every
   * other image. Without it (an export: the file is what was asked for or unchanged), the first
   * damaged blob fails the write.
   */
  async write(signal?: AbortSignal, onBytes?: (n: number) => void, opts: { dropDamaged?: boolean } = {}): Promise<BundleWrite> {
    const dropped = new Map<string, GadgetError>();
    for (;;) {
      this.damaged.clear();
      try {
        return { written: await this.writeOnce(signal, onBytes), dropped };
      } catch (err) {
        if (!opts.dropDamaged || signal?.aborted) throw err;
        const hit = this.tagsReaching(this.damaged);
        if (hit.size === 0) throw err; // not a damaged blob of an image: the write as a whole failed
        for (const [ref, why] of hit) {
          dropped.set(ref, why);
          this.tags.delete(ref);
        }
      }
    }
  }

  /** The tags of this run whose graph (their referrers' included) holds one of `damaged`, with its error. */
  private tagsReaching(damaged: Map<string, GadgetError>): Map<string, GadgetError> {
    const hit = new Map<string, GadgetError>();
    for (const [ref, sets] of this.reach) {
      for (const [digest, why] of damaged) if (sets.some((set) => set.has(digest))) hit.set(ref, why);
    }
    return hit;
  }

  /**
   * Writes the bundle when this run added anything: the old index.json entries (tags moved
   * where this run moved them), new tags, and untagged entries for the OCI 1.1 referrers this
   * run copied (staged, or read from the local store); the old blobs and the new ones reachable
   * from them. Returns whether the file was written. `onBytes` counts the local store's bytes.
   */
  private async writeOnce(signal?: AbortSignal, onBytes?: (n: number) => void): Promise<boolean> {
    const staging = this.staging ? await this.staging : undefined;
    const entries = (this.existing?.entries ?? []).map((e) => ({ ...e }));
    const blobs = new Map<string, LayoutTarBlob>();
    const existing = this.existing;
    for (const digest of existing?.digests() ?? []) {
      const size = existing!.sizeOf(digest)!;
      blobs.set(digest, { digest, size, open: () => existing!.fetch({ mediaType: '', digest, size }) });
    }
    const local = this.local;
    const children = new Map<string, Descriptor[]>();
    this.reach.clear();
    // Adds `d`'s graph to `into` (what a damaged blob would cost), and its new blobs to the tar.
    const walk = async (d: Descriptor, into: Set<string>): Promise<void> => {
      if (into.has(d.digest)) return;
      into.add(d.digest);
      if (!blobs.has(d.digest)) {
        const from = local && this.fromLocal.has(d.digest) ? local : staging && (await staging.exists(d)) ? staging : undefined;
        if (!from) throw new GadgetError(`${this.name}: ${d.digest} was neither in the bundle nor copied`);
        // Staged blobs were checked as they were staged; the local store's are checked now.
        blobs.set(d.digest, from === local ? this.checkedStoreBlob(local, d, onBytes) : { digest: d.digest, size: d.size, open: () => from.fetch(d) });
        if (isManifestType(d.mediaType)) {
          try {
            const { doc } = await fetchManifest(from, d, signal);
            children.set(d.digest, childrenOf(d, doc));
          } catch (err) {
            if (from === local && err instanceof GadgetError) this.damaged.set(d.digest, err);
            throw err;
          }
        }
      }
      for (const child of children.get(d.digest) ?? []) await walk(child, into);
    };
    const position = new Map<string, number>();
    entries.forEach((e, i) => {
      const ref = e.annotations?.[ANN_REF_NAME];
      if (ref !== undefined) position.set(ref, i);
    });
    let changed = false;
    for (const [ref, descriptor] of [...this.tags].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const graph = new Set<string>();
      this.reach.set(ref, [graph]);
      await walk(descriptor, graph);
      const entry: Descriptor = { ...descriptor, annotations: { ...(descriptor.annotations ?? {}), [ANN_REF_NAME]: ref } };
      const at = position.get(ref);
      if (at === undefined) entries.push(entry);
      else entries[at] = entry;
      changed = true;
    }
    // OCI 1.1 referrers copied without a tag are rooted by untagged entries, as in a store.
    const present = new Set(entries.map((e) => e.digest));
    const untagged = new Map<string, { descriptor: Descriptor; subject: string | null | undefined }>();
    for (const row of staging?.allEntries() ?? []) {
      if (row.ref === null) untagged.set(row.digest, { descriptor: JSON.parse(row.descriptor) as Descriptor, subject: staging!.manifestRow(row.digest)?.subject });
    }
    for (const d of this.fromLocal.values()) {
      const row = isManifestType(d.mediaType) ? local!.manifestRow(d.digest) : undefined;
      if (row?.subject) untagged.set(d.digest, { descriptor: referrerEntry(d, row.artifact_type), subject: row.subject });
    }
    for (const [digest, { descriptor, subject }] of [...untagged].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (present.has(digest) || !subject || !blobs.has(subject)) continue; // tagged, or a referrer of an image this bundle does not hold
      // A damaged signature costs the images it signs: they are not written without it.
      const graph = new Set<string>();
      for (const sets of this.reach.values()) if (sets[0]!.has(subject)) sets.push(graph);
      await walk(descriptor, graph);
      entries.push(descriptor);
      changed = true;
    }
    if (!changed) return false;
    // Never into the folder of the store the tar reads from (checked again: it may have changed).
    await writeLayoutTar(this.file, entries, [...blobs.values()], signal, { store: this.local?.root });
    return true;
  }

  close(): void {
    this.staging?.then((s) => s.close(), () => undefined);
  }

  /** Closes and removes the staging store (after a complete run). */
  async discardStaging(): Promise<void> {
    if (this.staging) (await this.staging).close();
    this.staging = undefined;
    rmSync(stagingDir(this.file), { recursive: true, force: true });
  }

  /** A blob of `store` for a tar, checked against its digest as it is written; a damaged or missing one is noted. */
  private checkedStoreBlob(store: Store, d: Descriptor, onBytes?: (n: number) => void): LayoutTarBlob {
    const noted = (err: unknown): void => {
      if (err instanceof GadgetError) this.damaged.set(d.digest, err);
    };
    return {
      digest: d.digest,
      size: d.size,
      open: async () => {
        const verifier = new DigestVerifier(d, `${store.name}: blob ${d.digest}`);
        verifier.once('error', noted);
        const content = await store.fetch(d).catch((err: unknown) => {
          noted(err); // missing from the store
          throw err;
        });
        pipeline(content, verifier, () => undefined);
        return counted(verifier, onBytes);
      },
    };
  }
}
