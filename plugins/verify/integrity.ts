// Integrity: every blob of a graph is re-hashed and its size checked against its descriptor,
// each distinct blob once per run (images share configs and layers). Blobs are read straight
// from the layout: small ones whole, large ones streamed in chunks with the next read in
// flight while the current chunk is hashed, so hashing runs at node's sha256 speed and
// memory stays flat whatever the blob size. Content checks ride on the same read.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { isDigest } from '../../lib/oci/digest.js';
import type { Descriptor } from '../../lib/oci/types.js';
import type { Store } from '../../store/store.js';
import type { Problem } from './report.js';

/** Files up to this size are read with one synchronous call (cheaper than a stream). */
const SMALL_FILE = 1 << 20;
/** Chunk size of streamed reads. */
const CHUNK = 4 << 20;

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

interface Hashed {
  size: number;
  digest: string;
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

export class BlobReader {
  /** digest -> what the file really holds; a blob is hashed once per run. */
  private readonly hashed = new Map<string, Hashed>();
  bytesHashed = 0;

  constructor(private readonly store: Store) {}

  /**
   * Reads the blob of `desc` (found at `path`) once: integrity problems, plus the bytes or
   * the stream result that `content` asks for. Never throws for a damaged or missing blob.
   */
  async read<T = never>(desc: Descriptor, path: string, content: ContentReader<T> = {}): Promise<BlobRead<T>> {
    const file = this.store.blobPath(desc.digest);
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      return {
        problems: [{ rule: 'GADGET-BLOB-MISSING', digest: desc.digest, path, message: `The blob ${desc.digest} (${desc.mediaType}, ${desc.size} bytes) is not in the store.` }],
        trusted: false,
        present: false,
      };
    }
    const out: BlobRead<T> = { problems: [], trusted: false, present: true, size };
    const known = this.hashed.get(desc.digest);
    const keep = content.keep !== undefined && size <= content.keep;
    try {
      if (keep) {
        const bytes = size <= SMALL_FILE ? readFileSync(file) : await readFile(file);
        if (!known) this.remember(desc.digest, bytes.length, createHash('sha256').update(bytes).digest('hex'));
        out.bytes = bytes;
        out.size = size = bytes.length;
      } else if (content.consume || !known) {
        const result = await this.stream(file, !known, content.consume);
        if (result.hash !== undefined) this.remember(desc.digest, result.size, result.hash);
        out.consumed = result.consumed;
        out.size = size = result.size;
      }
    } catch (err) {
      // Unreadable (permissions, I/O error): as good as missing, and said so.
      const reason = err instanceof Error ? err.message : String(err);
      return { problems: [{ rule: 'GADGET-BLOB-MISSING', digest: desc.digest, path, message: `The blob ${desc.digest} cannot be read: ${reason}.` }], trusted: false, present: false };
    }
    const actual = this.hashed.get(desc.digest)!;
    if (size !== desc.size) {
      out.problems.push({ rule: 'GADGET-BLOB-SIZE', digest: desc.digest, path, message: `The blob ${desc.digest} has ${size} bytes, but its descriptor says ${desc.size}.` });
    }
    if (actual.digest !== desc.digest) {
      out.problems.push({ rule: 'GADGET-BLOB-DIGEST', digest: desc.digest, path, message: `The blob ${desc.digest} is corrupt: its content hashes to ${actual.digest}.` });
    } else {
      out.trusted = true;
    }
    if (!out.trusted) {
      delete out.bytes;
      delete out.consumed;
    }
    return out;
  }

  private remember(digest: string, size: number, hex: string): void {
    this.hashed.set(digest, { size, digest: `sha256:${hex}` });
    this.bytesHashed += size;
  }

  /** Streams a file through the hash (when `hash`) and into `consume` (when given). */
  private async stream<T>(file: string, hash: boolean, consume?: (s: Readable) => Promise<T>): Promise<{ size: number; hash?: string; consumed?: T }> {
    const hasher = hash ? createHash('sha256') : undefined;
    const handle = await open(file, 'r');
    // The consumer reads at its own pace; when it stops early, the rest is only hashed.
    let pass: PassThrough | undefined;
    let consumerDone = false;
    let consumed: Promise<T> | undefined;
    if (consume) {
      const p = new PassThrough({ highWaterMark: CHUNK });
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
      const buffer = reuse ? buffers[turn]! : Buffer.allocUnsafe(CHUNK);
      turn ^= 1;
      return handle.read(buffer, 0, CHUNK, size);
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
