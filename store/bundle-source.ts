// A bundle (an OCI layout tar, as `gadget export` and sync bundle destinations write it) read
// as a Target without unpacking it: its headers are indexed once (an offset per entry), then
// every blob is a ranged read of the file. Only the layout's own files are accepted (no links,
// no other paths), and nothing is ever written to the file system from it, so no entry can
// escape. Digests are verified by whoever stores the bytes (the destination's push), and by
// checkBlobs for all of them at once (import, before it writes anything).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { checkEntryPath, describeEntryType, isArchiveRoot, indexTarFile, type TarEntry } from '../lib/archive/tar.js';
import { GadgetError } from '../lib/errors.js';
import { readAll } from '../lib/oci/copy.js';
import { sha256 } from '../lib/oci/digest.js';
import { ANN_REF_NAME, isManifestType } from '../lib/oci/mediatypes.js';
import { isSignatureTag } from '../lib/oci/reference.js';
import { MAX_MANIFEST_BYTES, type Referrer, type Target } from '../lib/oci/target.js';
import type { Descriptor, Manifest } from '../lib/oci/types.js';
import { checkLayoutBytes, parseIndexBytes } from './layout.js';
import { checkManifestSize, checkedChildrenOf } from './layout-check.js';

interface Span {
  offset: number;
  size: number;
}

/** The largest oci-layout or index.json read from a layout tar. */
export const MAX_INDEX_BYTES = 64 * 1024 * 1024;

/** For a blob of a layout tar that does not match its digest. */
export const BUNDLE_DAMAGED = 'the bundle is damaged: copy or write it again';

export const NOT_A_LAYOUT = 'an OCI layout tar holds oci-layout, index.json and blobs/sha256/ only (as `gadget export` writes it): make it again';

/**
 * The entries of one layout tar, checked one by one in file order: the same rules, and the same
 * sentences with the same hints, for both readers (BundleSource.open, a plain tar read in place,
 * and transfer.ts's extractLayoutTar, a gzip tar unpacked), so a tar and its gzip copy get one
 * verdict. Only the layout's own files and folders are accepted, and each file once: with two
 * entries for one path, which copy counts would depend on the reader (GNU tar extracts the
 * last, `tar -xOf FILE index.json` prints both, a stream check meets the first), so a tar that
 * holds one path twice is refused rather than read either way.
 */
export class LayoutEntries {
  private readonly seen = new Set<string>();

  constructor(private readonly file: string) {}

  /** What the entry is (undefined: a folder of the layout, nothing to read); throws for anything else. */
  classify(entry: Pick<TarEntry, 'path' | 'type' | 'size' | 'typeflag' | 'linkpath'>): 'oci-layout' | 'index.json' | { digest: string } | undefined {
    const file = this.file;
    if (entry.type === 'directory' && isArchiveRoot(entry.path)) return undefined; // `tar cf x.tar -C LAYOUT .`
    const path = checkEntryPath(entry.path, file);
    if (entry.type === 'directory') {
      if (!['blobs', 'blobs/sha256'].includes(path)) throw new GadgetError(`${file}: unexpected folder "${path}" in an OCI layout tar`, { hint: NOT_A_LAYOUT });
      return undefined;
    }
    if (entry.type !== 'file') throw new GadgetError(`${file}: entry "${path}" is ${describeEntryType(entry)}; an OCI layout tar holds only files and folders`, { hint: NOT_A_LAYOUT });
    if (this.seen.has(path)) {
      throw new GadgetError(`${file}: the tar holds "${path}" twice, so which copy is the layout's cannot be told`, {
        hint: 'a layout tar holds each file once (`tar rf` appends a second copy): make it again with `gadget export`, or `tar cf FILE -C LAYOUT .`',
      });
    }
    this.seen.add(path);
    const blob = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(path);
    if (blob) return { digest: `sha256:${blob[1]}` };
    if (path !== 'oci-layout' && path !== 'index.json') throw new GadgetError(`${file}: unexpected entry "${path}" in an OCI layout tar`, { hint: NOT_A_LAYOUT });
    if (entry.size > MAX_INDEX_BYTES) throw new GadgetError(`${file}: ${path} is too large (${entry.size} bytes)`, { hint: NOT_A_LAYOUT });
    return path;
  }
}

export class BundleSource implements Target {
  readonly name: string;
  /** index.json's entries, in file order (tags in `org.opencontainers.image.ref.name`). */
  readonly entries: Descriptor[];
  private readonly byRef = new Map<string, Descriptor>();
  private bySubject?: Promise<Map<string, Descriptor[]>>;

  private constructor(
    readonly file: string,
    private readonly blobs: Map<string, Span>,
    entries: Descriptor[],
  ) {
    this.name = `bundle ${file}`;
    this.entries = entries;
    for (const e of entries) {
      const ref = e.annotations?.[ANN_REF_NAME];
      if (ref !== undefined) this.byRef.set(ref, e); // a later duplicate wins, as in the store
    }
  }

  /** Indexes the tar's headers and reads its oci-layout and index.json. */
  static async open(file: string): Promise<BundleSource> {
    let entries;
    try {
      entries = await indexTarFile(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new GadgetError(`the bundle ${file} does not exist`, { exitCode: 2 });
      throw err;
    }
    const blobs = new Map<string, Span>();
    let layout: Span | undefined;
    let index: Span | undefined;
    const layoutEntries = new LayoutEntries(file);
    for (const entry of entries) {
      const kind = layoutEntries.classify(entry);
      const span = { offset: entry.offset, size: entry.size };
      if (kind === undefined) continue;
      else if (kind === 'oci-layout') layout = span;
      else if (kind === 'index.json') index = span;
      else blobs.set(kind.digest, span);
    }
    const read = async (span: Span | undefined, name: string): Promise<Buffer | undefined> => {
      if (!span) return undefined;
      return readAll(rangeStream(file, span), MAX_INDEX_BYTES, `${file}: ${name}`);
    };
    checkLayoutBytes(await read(layout, 'oci-layout'), `${file}: oci-layout`, file);
    const indexBytes = await read(index, 'index.json');
    if (!indexBytes) throw new GadgetError(`${file} has no index.json, so it is not an OCI layout tar`, { exitCode: 2 });
    return new BundleSource(file, blobs, parseIndexBytes(indexBytes, `${file}: index.json`));
  }

  /** Whether the bundle holds the blob (of that size, when given). */
  has(digest: string, size?: number): boolean {
    const span = this.blobs.get(digest);
    return span !== undefined && (size === undefined || span.size === size);
  }

  /** A blob's size, or undefined when the bundle does not hold it. */
  sizeOf(digest: string): number | undefined {
    return this.blobs.get(digest)?.size;
  }

  /** Every blob's digest. */
  digests(): string[] {
    return [...this.blobs.keys()];
  }

  /** The tagged images (not signature tags), with their keys. */
  images(): Array<{ ref: string; descriptor: Descriptor }> {
    return [...this.byRef].filter(([ref]) => !isSignatureTag(ref)).map(([ref, descriptor]) => ({ ref, descriptor }));
  }

  /** The entry a tag points at, if any. */
  lookup(reference: string): Descriptor | undefined {
    return this.byRef.get(reference);
  }

  /**
   * Reads every blob once, in file order, and checks it against the digest it is named after:
   * what `gadget import` does before it writes anything, so a tampered tar changes nothing.
   */
  async checkBlobs(opts: { signal?: AbortSignal; onBlob?: (size: number) => void } = {}): Promise<void> {
    const spans = [...this.blobs].sort((a, b) => a[1].offset - b[1].offset);
    for (const [digest, span] of spans) {
      opts.signal?.throwIfAborted();
      const actual = await this.digestOf(digest, opts.signal);
      if (actual !== digest) throw new GadgetError(`${this.file}: blobs/sha256/${digest.slice(7)}: content has digest ${actual}, expected ${digest}`, { hint: BUNDLE_DAMAGED });
      opts.onBlob?.(span.size);
    }
  }

  /** The digest of what the tar holds under the blob `digest` (read and hashed now). */
  async digestOf(digest: string, signal?: AbortSignal): Promise<string> {
    const span = this.blobs.get(digest);
    if (!span) throw new GadgetError(`${this.name}: blob ${digest} is missing`);
    const hash = createHash('sha256');
    for await (const chunk of rangeStream(this.file, span, signal)) hash.update(chunk as Buffer);
    return `sha256:${hash.digest('hex')}`;
  }

  /** The children of a manifest or index of the bundle, checked (see checkedChildrenOf). `where` locates it in messages. */
  async checkedChildren(d: Descriptor, where: string): Promise<Descriptor[]> {
    const what = `${this.file}: ${d.digest} (${where})`;
    checkManifestSize(this.sizeOf(d.digest) ?? 0, what);
    return checkedChildrenOf(await readAll(await this.fetch(d), MAX_MANIFEST_BYTES, what), d, what);
  }

  async fetch(descriptor: Descriptor): Promise<Readable> {
    const span = this.blobs.get(descriptor.digest);
    if (!span) throw new GadgetError(`${this.name}: blob ${descriptor.digest} is missing`, { hint: 'the bundle is incomplete: write it again from a store or registry that holds the image' });
    return rangeStream(this.file, span);
  }

  async exists(descriptor: Descriptor): Promise<boolean> {
    return this.has(descriptor.digest, descriptor.size);
  }

  async push(): Promise<void> {
    throw new GadgetError(`${this.name} is read-only here`);
  }

  async tag(): Promise<void> {
    throw new GadgetError(`${this.name} is read-only here`);
  }

  async resolve(reference: string): Promise<Descriptor> {
    const found = this.byRef.get(reference) ?? this.entries.find((d) => d.digest === reference);
    if (!found) throw new GadgetError(`${reference} is not in ${this.name}`, { hint: 'see the tags in its index.json (`tar -xOf FILE index.json`)' });
    return found;
  }

  async peek(reference: string): Promise<Descriptor | undefined> {
    return this.byRef.get(reference);
  }

  /** As the store finds them: cosign and fallback tags, and untagged entries whose subject it is. */
  async referrers(descriptor: Descriptor): Promise<Referrer[]> {
    const out: Referrer[] = [];
    const hex = descriptor.digest.slice(7);
    for (const suffix of ['.sig', '.att', '.sbom', '']) {
      const tag = `sha256-${hex}${suffix}`;
      const found = this.byRef.get(tag);
      if (found) out.push({ descriptor: found, tag });
    }
    this.bySubject ??= this.subjects();
    for (const d of (await this.bySubject).get(descriptor.digest) ?? []) {
      if (!out.some((r) => r.descriptor.digest === d.digest)) out.push({ descriptor: d });
    }
    return out;
  }

  /** Untagged manifests by the digest of their subject (OCI 1.1 referrers are kept so). */
  private async subjects(): Promise<Map<string, Descriptor[]>> {
    const map = new Map<string, Descriptor[]>();
    for (const entry of this.entries) {
      if (entry.annotations?.[ANN_REF_NAME] !== undefined || !isManifestType(entry.mediaType) || !this.has(entry.digest, entry.size)) continue;
      const bytes = await readAll(await this.fetch(entry), MAX_MANIFEST_BYTES, `${this.name}: ${entry.digest}`);
      if (sha256(bytes) !== entry.digest) throw new GadgetError(`${this.name}: ${entry.digest} does not match its digest`);
      let subject: string | undefined;
      try {
        subject = (JSON.parse(bytes.toString('utf8')) as Manifest).subject?.digest;
      } catch {
        continue; // not JSON: copying it says so
      }
      if (typeof subject !== 'string') continue;
      const { annotations: _ignored, ...bare } = entry;
      map.set(subject, [...(map.get(subject) ?? []), bare]);
    }
    return map;
  }
}

function rangeStream(file: string, span: Span, signal?: AbortSignal): Readable {
  if (span.size === 0) return Readable.from([]);
  return createReadStream(file, { start: span.offset, end: span.offset + span.size - 1, highWaterMark: 1 << 20, signal });
}
