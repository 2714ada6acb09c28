// Integrity: every blob of a graph is re-hashed and its size checked against its descriptor,
// each distinct blob once per run (images share configs and layers). Blobs are read straight
// from the layout: small ones whole, large ones streamed in chunks with the next read in
// flight while the current chunk is hashed, so hashing runs at node's sha256 speed and
// memory stays flat whatever the blob size. Content checks ride on the same read.
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { isDigest } from '../../lib/oci/digest.js';
import type { Descriptor } from '../../lib/oci/types.js';
import { openRegular, openRegularHandle, readRegular, regularSize } from '../../store/regular-files.js';
import type { Store } from '../../store/store.js';
import type { Problem } from './report.js';

/** Files up to this size are read with one synchronous call (cheaper than a stream). */
const SMALL_FILE = 1 << 20;
/** Chunk size of hash-only reads (two buffers, reused): large enough to keep sha256 busy. */
const CHUNK = 4 << 20;
/** Chunk size when a content check reads along: each chunk is new, so keep them small. */
const SHARED_CHUNK = 1 << 20;

/** What a content check wants from the same read: the bytes (up to a cap) or a stream. */
export interface ContentReader<T> {
  /** Hand over the whole blob as one buffer when it is at most this many bytes. */
  keep?: number;
  /** Consume the blob as a stream (it may stop early; the rest is still hashed). */
  consume?: (stream: Readable) => Promise<T>;
}

export interface BlobRead<T> {
  problems: Problem[];
  /** The content matches the descriptor's digest: only then are bytes and results given. */
  trusted: boolean;
  present: boolean;
  /** The file's size (undefined when missing). */
  size?: number;
  bytes?: Buffer;
  consumed?: T;
}

/** Checks a descriptor's own fields; a problem means the blob cannot even be looked up. */
export function descriptorProblem(desc: unknown, path: string, owner: string): Problem | undefined {
  const d = desc as Partial<Descriptor> | null;
  const what = path.endsWith('/config') ? 'config descriptor' : /\/layers\/\d+$/.test(path) ? 'layer descriptor' : 'descriptor';
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return { rule: 'GADGET-DESCRIPTOR', digest: owner, path, message: `The ${what} is not a JSON object.` };
  if (typeof d.mediaType !== 'string' || d.mediaType === '') return { rule: 'GADGET-DESCRIPTOR', digest: owner, path, message: `The ${what} has no mediaType.` };
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) {
    return { rule: 'GADGET-DESCRIPTOR', digest: owner, path, message: `The ${what} has the digest ${JSON.stringify(d.digest ?? null)}, not sha256:<64 lower-case hex>.` };
  }
  if (!Number.isSafeInteger(d.size) || (d.size as number) < 0) {
    return { rule: 'GADGET-DESCRIPTOR', digest: owner, path, message: `The ${what} of ${d.digest} has the size ${JSON.stringify(d.size ?? null)}, not a non-negative integer.` };
  }
  return undefined;
}

/**
 * A file's size, and its bytes when it has at most `max`. One read into `scratch` usually
 * holds the whole file (manifests, configs, objects), which spares the fstat.
 */
function readSmall(file: string, max: number, scratch: Buffer): { size: number; bytes?: Buffer } {
  const { fd } = openRegular(file);
  try {
    const first = readSync(fd, scratch, 0, scratch.length, 0);
    if (first < scratch.length) return first <= max ? { size: first, bytes: Buffer.from(scratch.subarray(0, first)) } : { size: first };
    const size = fstatSync(fd).size;
    if (size > max) return { size };
    const bytes = Buffer.allocUnsafe(size);
    scratch.copy(bytes, 0, 0, first);
    let off = first;
    while (off < size) {
      const n = readSync(fd, bytes, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return { size: off, bytes: off === size ? bytes : bytes.subarray(0, off) };
  } finally {
    closeSync(fd);
  }
}

export class BlobReader {
  /**
   * A blob is hashed once per run: digest -> null when its content matches, else the digest
   * the content really has. (Ten thousand images make 60 000 entries: kept small.)
   */
  private readonly hashed = new Map<string, string | null>();

  private readonly dir: string;
  private readonly scratch = Buffer.allocUnsafe(64 * 1024);

  constructor(store: Store) {
    this.dir = join(store.root, 'blobs', 'sha256');
  }

  /** The blob's file; the digest was checked (descriptorProblem), this keeps the path safe anyway. */
  private file(digest: string): string {
    if (!isDigest(digest)) throw new Error(`"${digest}" is not a sha256 digest`);
    return `${this.dir}/${digest.slice(7)}`;
  }

  /**
   * The fast path for a small blob wanted whole (manifests, configs, objects): synchronous,
   * no promise. Undefined when the blob is larger than SMALL_FILE: then use read().
   */
  readWhole(desc: Descriptor, path: string, keep: number): BlobRead<never> | undefined {
    let small: { size: number; bytes?: Buffer };
    try {
      small = readSmall(this.file(desc.digest), Math.min(keep, SMALL_FILE), this.scratch);
    } catch (err) {
      return this.missing(desc, path, err);
    }
    if (!small.bytes) return undefined;
    if (!this.hashed.has(desc.digest)) this.remember(desc.digest, createHash('sha256').update(small.bytes).digest('hex'));
    return this.verdict<never>(desc, path, small.bytes.length, small.bytes, undefined);
  }

  /**
   * Reads the blob of `desc` (found at `path`) once: integrity problems, plus the bytes or
   * the stream result that `content` asks for. Never throws for a damaged or missing blob.
   */
  async read<T = never>(desc: Descriptor, path: string, content: ContentReader<T> = {}): Promise<BlobRead<T>> {
    if (content.keep !== undefined && !content.consume) {
      const fast = this.readWhole(desc, path, content.keep);
      if (fast) return fast;
    }
    const known = this.hashed.has(desc.digest);
    let size: number;
    let bytes: Buffer | undefined;
    let consumed: T | undefined;
    try {
      const file = this.file(desc.digest);
      size = regularSize(file);
      if (content.keep !== undefined && size <= content.keep) {
        bytes = readRegular(file);
        size = bytes.length;
        if (!known) this.remember(desc.digest, createHash('sha256').update(bytes).digest('hex'));
      } else if (content.consume || !known) {
        const result = await this.stream(file, !known, content.consume);
        if (result.hash !== undefined) this.remember(desc.digest, result.hash);
        consumed = result.consumed;
        size = result.size;
      }
    } catch (err) {
      return this.missing(desc, path, err);
    }
    return this.verdict(desc, path, size, bytes, consumed);
  }

  private missing(desc: Descriptor, path: string, err: unknown): BlobRead<never> {
    const message = (err as NodeJS.ErrnoException).code === 'ENOENT'
      ? `The blob ${desc.digest} (${desc.mediaType}, ${desc.size} bytes) is not in the store.`
      // Unreadable (permissions, I/O error): as good as missing, and said so.
      : `The blob ${desc.digest} cannot be read: ${err instanceof Error ? err.message : String(err)}.`;
    return { problems: [{ rule: 'GADGET-BLOB-MISSING', digest: desc.digest, path, message }], trusted: false, present: false };
  }

  /** Size and digest against the descriptor; only content that matches its digest is handed on. */
  private verdict<T>(desc: Descriptor, path: string, size: number, bytes: Buffer | undefined, consumed: T | undefined): BlobRead<T> {
    const out: BlobRead<T> = { problems: [], trusted: false, present: true, size };
    if (size !== desc.size) {
      out.problems.push({ rule: 'GADGET-BLOB-SIZE', digest: desc.digest, path, message: `The blob ${desc.digest} has ${size} bytes, but its descriptor says ${desc.size}.` });
    }
    const actual = this.hashed.get(desc.digest);
    if (actual) {
      out.problems.push({ rule: 'GADGET-BLOB-DIGEST', digest: desc.digest, path, message: `The blob ${desc.digest} is corrupt: its content hashes to ${actual}.` });
      return out;
    }
    out.trusted = true;
    if (bytes) out.bytes = bytes;
    if (consumed !== undefined) out.consumed = consumed;
    return out;
  }

  private remember(digest: string, hex: string): void {
    this.hashed.set(digest, digest === `sha256:${hex}` ? null : `sha256:${hex}`);
  }

  /** Streams a file through the hash (when `hash`) and into `consume` (when given). */
  private async stream<T>(file: string, hash: boolean, consume?: (s: Readable) => Promise<T>): Promise<{ size: number; hash?: string; consumed?: T }> {
    const hasher = hash ? createHash('sha256') : undefined;
    const handle = await openRegularHandle(file);
    // The consumer reads at its own pace; when it stops early, the rest is only hashed.
    let pass: PassThrough | undefined;
    let consumerDone = false;
    let consumed: Promise<T> | undefined;
    if (consume) {
      const p = new PassThrough({ highWaterMark: SHARED_CHUNK });
      // The consumer reports its own problems; a stream torn down under it is not one more.
      p.on('error', () => undefined);
      pass = p;
      consumed = consume(p).finally(() => {
        consumerDone = true;
        p.destroy();
      });
      consumed.catch(() => undefined);
    }
    // Two buffers when nobody else keeps them: one is hashed while the other fills.
    const reuse = !pass;
    const buffers = reuse ? [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)] : [];
    let turn = 0;
    let size = 0;
    const next = (): Promise<{ bytesRead: number; buffer: Buffer }> => {
      const buffer = reuse ? buffers[turn]! : Buffer.allocUnsafe(SHARED_CHUNK);
      turn ^= 1;
      return handle.read(buffer, 0, buffer.length, size);
    };
    let pending = next();
    try {
      for (;;) {
        const { bytesRead, buffer } = await pending;
        if (bytesRead === 0) break;
        const chunk = buffer.subarray(0, bytesRead);
        size += bytesRead;
        pending = next();
        hasher?.update(chunk);
        if (pass && !consumerDone && !pass.write(chunk)) {
          await Promise.race([new Promise((resolve) => pass!.once('drain', resolve)), consumed]);
        }
      }
    } finally {
      await pending.catch(() => undefined);
      await handle.close();
      if (pass && !consumerDone) pass.end();
    }
    return { size, hash: hasher?.digest('hex'), consumed: consumed ? await consumed : undefined };
  }
}
