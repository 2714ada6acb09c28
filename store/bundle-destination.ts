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
import { existsSync, rmSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileSystemReason, GadgetError, messageOf } from '../lib/errors.js';
import { childrenOf, counted, fetchManifest } from '../lib/oci/copy.js';
import { DAMAGED_HINT, DigestVerifier } from '../lib/oci/digest.js';
import { ANN_REF_NAME, isManifestType } from '../lib/oci/mediatypes.js';
import type { Referrer, Target } from '../lib/oci/target.js';
import type { Descriptor } from '../lib/oci/types.js';
import { BundleSource } from './bundle-source.js';
import { withBundleLock } from './bundle-lock.js';
import { rootsCostBy, taggedSubject, type BundleRoot } from './bundle-roots.js';
import { referrerEntry } from './entries.js';
import { writeLayoutTar, type LayoutTarBlob } from './layout-tar.js';
import { checkOutputFile } from './output-file.js';
import { openStore, type Store } from './store.js';

/** For a blob damaged in the bundle itself, which is never carried forward. */
const DAMAGED_BUNDLE_HINT = 'the bundle itself is damaged, and a damaged bundle is never carried forward: move it away and run the sync again to make it anew';

export function stagingDir(file: string): string {
  return join(dirname(file), `.${basename(file)}.staging`);
}

export interface BundleWrite {
  /** Whether the file was written (false: this run added nothing). */
  written: boolean;
  /** Images left out (with `items`): a blob they need is damaged or gone, as the error says. */
  failed: Map<string, GadgetError>;
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
  /** Blobs found damaged or gone by the last write, with the error that said so. */
  private readonly damaged = new Map<string, GadgetError>();
  /** What the last write added (bundle-roots.ts). */
  private roots: BundleRoot[] = [];
  /** Untagged referrers left out: they need a damaged blob. */
  private readonly excluded = new Set<string>();
  /** The blobs of the tar this run relied on, each checked once (inTar). */
  private readonly checkedInTar = new Map<string, Promise<void>>();
  /** References a copy asked about: the images of this run, also those the tar already tags. */
  private readonly peeked = new Set<string>();

  /** The tar as this run first found it (undefined: there was none). */
  private readonly openedAs: Stats | undefined;
  /** The blobs of the tar this run wrote (undefined: it wrote none). */
  private wrote?: Set<string>;

  private constructor(
    readonly file: string,
    private existing: BundleSource | undefined,
    /** False for export: everything comes from the local store, nothing is staged. */
    private readonly stages: boolean,
  ) {
    this.name = `bundle ${file}`;
    this.openedAs = statSync(file, { throwIfNoEntry: false });
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

  async exists(descriptor: Descriptor, signal?: AbortSignal): Promise<boolean> {
    if ((await this.inTar(descriptor, signal)) || this.fromLocal.has(descriptor.digest)) return true;
    return this.staging ? (await this.staging).exists(descriptor) : false;
  }

  async pushBlob(descriptor: Descriptor, open: () => Promise<Readable>, signal?: AbortSignal): Promise<'copied' | 'skipped'> {
    if (await this.inTar(descriptor, signal)) return 'skipped';
    if (await this.inLocal(descriptor)) return 'copied';
    return (await this.stage(descriptor)).pushBlob(descriptor, open, signal);
  }

  async push(descriptor: Descriptor, content: Readable, signal?: AbortSignal): Promise<void> {
    if ((await this.inTar(descriptor, signal)) || (await this.inLocal(descriptor))) {
      content.resume();
      return;
    }
    await (await this.stage(descriptor)).push(descriptor, content, signal);
  }

  /**
   * Whether the tar already holds `descriptor`, its copy checked against its digest the first
   * time this run relies on it. The tar is read in full only when it is rewritten, and a run
   * that adds nothing does not rewrite it: without this check a re-sync, run to make sure a
   * bundle is whole before it is carried away, would call a damaged blob "already there" and
   * exit 0. A damaged copy fails the image that needs it, naming the blob.
   */
  private async inTar(descriptor: Descriptor, signal?: AbortSignal): Promise<boolean> {
    const existing = this.existing;
    if (!existing?.has(descriptor.digest, descriptor.size)) return false;
    let check = this.checkedInTar.get(descriptor.digest);
    if (!check) {
      check = existing.digestOf(descriptor.digest, signal).then((actual) => {
        if (actual !== descriptor.digest) {
          throw new GadgetError(`${this.name}: blob ${descriptor.digest}: content has digest ${actual}, expected ${descriptor.digest}`, { hint: DAMAGED_BUNDLE_HINT });
        }
      });
      this.checkedInTar.set(descriptor.digest, check);
      check.catch(() => signal?.aborted && this.checkedInTar.delete(descriptor.digest));
    }
    await check;
    return true;
  }

  async peek(reference: string): Promise<Descriptor | undefined> {
    this.peeked.add(reference);
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
   * Writes the bundle when this run added anything (see writeOnce). With `items` (a sync: each
   * image's tag and root digest), an image with a blob found damaged or gone as the tar is
   * written is left out, with its signatures, and returned in `failed`; the others are written.
   * Each image left out costs one more pass over the tar. Without `items` (an export: the file
   * is what was asked for, or stays as it was), the first damaged blob fails the write.
   */
  async write(signal?: AbortSignal, onBytes?: (n: number) => void, items?: Array<{ key: string; digest: string }>): Promise<BundleWrite> {
    // A sync adds to what is there, so it reads and rewrites under the lock; an export replaces
    // the file whatever it held, and needs none.
    if (!this.stages) return this.rewrite(signal, onBytes, items);
    return withBundleLock(this.file, () => this.rewrite(signal, onBytes, items), signal);
  }

  private async rewrite(signal: AbortSignal | undefined, onBytes: ((n: number) => void) | undefined, items: Array<{ key: string; digest: string }> | undefined): Promise<BundleWrite> {
    // Another writer may have rewritten the tar since this run read it: what it added is kept.
    // (Bundles only grow, so what this run found there is still there.)
    if (this.stages && !sameFile(this.openedAs, statSync(this.file, { throwIfNoEntry: false }))) {
      this.existing = existsSync(this.file) ? await BundleSource.open(this.file) : undefined;
    }
    const failed = new Map<string, GadgetError>();
    for (;;) {
      this.damaged.clear();
      try {
        return { written: await this.writeOnce(signal, onBytes), failed };
      } catch (err) {
        if (!items || signal?.aborted) throw err;
        const cost = rootsCostBy(this.roots, this.damaged);
        // Damage that costs no root, or that no image of this run can be charged with, fails
        // the write as a whole: a loss is never quiet.
        const charged = cost.size > 0 ? await this.charge(items, cost) : undefined;
        if (!charged) throw err;
        for (const [key, error] of charged) failed.set(key, error);
        for (const root of cost.keys()) {
          if (root.tagged) this.tags.delete(root.id);
          else this.excluded.add(root.id);
        }
      }
    }
  }

  /** Whether the tar, as this run leaves it (written or not), holds the blob `digest`. */
  holds(digest: string): boolean {
    return this.wrote ? this.wrote.has(digest) : this.existing?.has(digest) === true;
  }

  /** Whether the bundle already held `ref` before this run (a tag left out keeps that). */
  keeps(ref: string): boolean {
    return this.existing?.lookup(ref) !== undefined;
  }

  /** The images of `items` that the failed roots cost, with why; undefined when a failed root is no item's. */
  private async charge(items: Array<{ key: string; digest: string }>, cost: Map<BundleRoot, GadgetError>): Promise<Map<string, GadgetError> | undefined> {
    const byTag = new Map(this.roots.filter((r) => r.tagged).map((r) => [r.id, r]));
    const charged = new Map<string, GadgetError>();
    const claimed = new Set<BundleRoot>();
    for (const item of items) {
      const graph = byTag.get(item.key)?.graph ?? (await this.existingGraph(item.digest));
      for (const [root, error] of cost) {
        if (!graph.has(root.descriptor.digest) && !(root.subject !== undefined && graph.has(root.subject))) continue;
        charged.set(item.key, error);
        claimed.add(root);
      }
    }
    return claimed.size === cost.size ? charged : undefined;
  }

  /** The digests of an image the bundle already holds (this run found its tag pointing right). */
  private async existingGraph(digest: string): Promise<Set<string>> {
    const graph = new Set<string>();
    const existing = this.existing;
    const entry = existing?.entries.find((e) => e.digest === digest);
    if (!existing || !entry) return graph;
    const walk = async (d: Descriptor): Promise<void> => {
      if (graph.has(d.digest)) return;
      graph.add(d.digest);
      if (!isManifestType(d.mediaType) || !existing.has(d.digest)) return;
      const { doc } = await fetchManifest(existing, d);
      for (const child of childrenOf(d, doc)) await walk(child);
    };
    await walk(entry);
    return graph;
  }

  /**
   * Writes the bundle when this run added anything: the old index.json entries (tags moved
   * where this run moved them), new tags, and untagged entries for the OCI 1.1 referrers this
   * run copied (staged, or read from the local store); the old blobs and the new ones reachable
   * from them. Returns whether the file was written. `onBytes` counts the new blobs' bytes.
   */
  private async writeOnce(signal?: AbortSignal, onBytes?: (n: number) => void): Promise<boolean> {
    const staging = this.staging ? await this.staging : undefined;
    const entries = (this.existing?.entries ?? []).map((e) => ({ ...e }));
    const blobs = new Map<string, LayoutTarBlob>();
    const existing = this.existing;
    for (const digest of existing?.digests() ?? []) {
      const size = existing!.sizeOf(digest)!;
      // Checked as it is copied into the new tar: a damaged bundle is never carried forward.
      blobs.set(digest, { digest, size, open: async () => checked(await existing!.fetch({ mediaType: '', digest, size }), { digest, size }, `${this.name}: blob ${digest}`) });
    }
    const local = this.local;
    const children = new Map<string, Descriptor[]>();
    this.roots = [];
    // Adds `d`'s graph to `into` (what a damaged blob would cost), and its new blobs to the tar.
    const walk = async (d: Descriptor, into: Set<string>): Promise<void> => {
      if (into.has(d.digest)) return;
      into.add(d.digest);
      if (!blobs.has(d.digest)) {
        // A staged manifest may have children in the local store (a platform subset's new index).
        const from = local && this.fromLocal.has(d.digest) ? local : staging?.hasBlob(d.digest) ? staging : undefined;
        if (!from) {
          const err = new GadgetError(`${this.name}: ${d.digest} was neither in the bundle nor copied`, { hint: DAMAGED_BUNDLE_HINT });
          this.damaged.set(d.digest, err); // charged to the images that need it
          throw err;
        }
        blobs.set(d.digest, this.checkedBlob(from, from !== local, d, onBytes));
        if (isManifestType(d.mediaType)) {
          try {
            const { doc } = await fetchManifest(from, d, signal);
            children.set(d.digest, childrenOf(d, doc));
          } catch (err) {
            throw signal?.aborted ? err : this.noteDamage(from, from !== local, d, err);
          }
        }
      } else if (isManifestType(d.mediaType) && !children.has(d.digest) && existing?.has(d.digest)) {
        // A manifest the tar holds is walked too: a child the tar lacks (lost from it, or never
        // written) is added when this run copied it, and fails the image when it did not,
        // instead of a tar that still lacks it and an exit 0.
        try {
          const { doc } = await fetchManifest(existing, d, signal);
          children.set(d.digest, childrenOf(d, doc));
        } catch (err) {
          if (signal?.aborted) throw err;
          throw new GadgetError(`${this.name}: manifest ${d.digest} cannot be read from the bundle: ${messageOf(err)}`, { hint: DAMAGED_BUNDLE_HINT, cause: err });
        }
      }
      for (const child of children.get(d.digest) ?? []) await walk(child, into);
    };
    const add = async (root: Omit<BundleRoot, 'graph'>): Promise<void> => {
      const graph = new Set<string>();
      this.roots.push({ ...root, graph }); // first: damage met in the walk is charged to it
      await walk(root.descriptor, graph);
    };
    const position = new Map<string, number>();
    entries.forEach((e, i) => {
      const ref = e.annotations?.[ANN_REF_NAME];
      if (ref !== undefined) position.set(ref, i);
    });
    let changed = false;
    for (const [ref, descriptor] of [...this.tags].sort(([a], [b]) => (a < b ? -1 : 1))) {
      await add({ id: ref, descriptor, tagged: true, subject: taggedSubject(ref) });
      const entry: Descriptor = { ...descriptor, annotations: { ...(descriptor.annotations ?? {}), [ANN_REF_NAME]: ref } };
      const at = position.get(ref);
      if (at === undefined) entries.push(entry);
      else entries[at] = entry;
      changed = true;
    }
    // The images of this run that the tar already tags are walked too: a blob the tar lacks is
    // added when this run copied it (the tar is then written), and fails the image when not.
    for (const ref of [...this.peeked].sort()) {
      const at = position.get(ref);
      if (at === undefined || this.tags.has(ref) || this.excluded.has(ref)) continue;
      const before = blobs.size;
      await add({ id: ref, descriptor: entries[at]!, tagged: false, subject: taggedSubject(ref) });
      if (blobs.size > before) changed = true;
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
    const candidates = [...untagged].filter(([digest]) => !this.excluded.has(digest)).sort(([a], [b]) => (a < b ? -1 : 1));
    // Referrers this run copied that the tar already lists are walked too, as the images above:
    // a blob of one that the tar lacks is put back.
    const listed = new Set((this.existing?.entries ?? []).filter((e) => e.annotations?.[ANN_REF_NAME] === undefined).map((e) => e.digest));
    for (const [digest, { descriptor, subject }] of candidates) {
      if (!listed.has(digest) || !subject) continue;
      const before = blobs.size;
      await add({ id: digest, descriptor, tagged: false, subject });
      if (blobs.size > before) changed = true;
    }
    // A referrer's subject may be another referrer (a signature of a signature): passes in
    // digest order until one adds nothing, so that it comes after what it refers to.
    for (let added = true; added; ) {
      added = false;
      for (const [digest, { descriptor, subject }] of candidates) {
        if (present.has(digest) || !subject || !blobs.has(subject)) continue; // tagged, or a referrer of an image this bundle does not hold
        await add({ id: digest, descriptor, tagged: false, subject });
        entries.push(descriptor);
        present.add(digest);
        changed = added = true;
      }
    }
    if (!changed) return false;
    // Never into the folder of the store the tar reads from (checked again: it may have changed).
    await writeLayoutTar(this.file, entries, [...blobs.values()], signal, { store: this.local?.root });
    this.wrote = new Set(blobs.keys());
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

  /**
   * A blob of `from` for the tar, checked against its digest as it is written: the local
   * store's, and a staged one too (`staged`), which may have been damaged since an earlier run
   * staged it. Damage, or a read the store refuses, is noted and fails the tar with its own
   * error (never blamed on the file being written).
   */
  private checkedBlob(from: Store, staged: boolean, d: Descriptor, onBytes?: (n: number) => void): LayoutTarBlob {
    return {
      digest: d.digest,
      size: d.size,
      open: async () => {
        let content: Readable;
        try {
          content = await from.fetch(d);
        } catch (err) {
          throw this.noteDamage(from, staged, d, err);
        }
        const verifier = new DigestVerifier(d, `${from.name}: blob ${d.digest}`);
        content.once('error', (err) => verifier.destroy(this.noteDamage(from, staged, d, err)));
        verifier.once('error', (err) => {
          // The check's own finding; an abort or the tar's own failure is not the blob's.
          if (err instanceof GadgetError && !this.damaged.has(d.digest)) this.noteDamage(from, staged, d, err);
          content.destroy();
        });
        return counted(content.pipe(verifier), onBytes);
      },
    };
  }

  /**
   * Notes `d` as damaged (or unreadable) in `from`, and returns the error that says so. A staged
   * copy is removed, so that the next run fetches it again instead of finding it present.
   */
  private noteDamage(from: Store, staged: boolean, d: Descriptor, err: unknown): GadgetError {
    let error = err instanceof GadgetError ? err : new GadgetError(`${from.name}: blob ${d.digest} cannot be read: ${fileSystemReason(err)?.reason ?? messageOf(err)}`, { cause: err, hint: DAMAGED_HINT });
    if (staged) {
      rmSync(from.blobPath(d.digest), { force: true });
      error = new GadgetError(`the copy of ${d.digest} staged for ${this.name} is damaged (${error.message})`, { cause: err, hint: 'run the sync again: the damaged copy was removed, and the next run fetches it again' });
    }
    this.damaged.set(d.digest, error);
    return error;
  }
}

/** Whether two stats are of the same, unchanged file (both absent counts). */
function sameFile(a: Stats | undefined, b: Stats | undefined): boolean {
  if (!a || !b) return a === b;
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/** `content` through a digest check; a damaged blob fails the stream with the hint to make the bundle again. */
function checked(content: Readable, expected: { digest: string; size: number }, what: string): Readable {
  const verifier = new DigestVerifier(expected, what);
  content.once('error', (err) => verifier.destroy(err));
  verifier.once('error', () => content.destroy());
  return content.pipe(verifier);
}
