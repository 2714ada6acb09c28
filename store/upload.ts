// A blob upload that arrives in pieces (the distribution API's POST, PATCH..., PUT): the bytes
// collect in a temporary file of the store's tmp folder, hashed as they arrive. Its name
// carries this process's pid, so gc and fsck leave it alone while the process lives and the
// next writer removes it after a crash. Nothing is visible in the store until `finish`, which
// checks the digest and then stores the blob through the store's own verified, atomic push.
// A piece that fails (too large, cut short, a client gone) leaves the upload as it was before
// that piece, so the client may send it again.
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { GadgetError } from '../lib/errors.js';
import type { Descriptor } from '../lib/oci/types.js';
import { tempName } from './files.js';

export interface UploadTarget {
  readonly tmpDir: string;
  push(descriptor: Descriptor, content: Readable, signal?: AbortSignal): Promise<void>;
}

/** Why a piece or the finish was refused: a refused piece leaves the upload as it was; a wrong digest ends it. */
export type RefusedReason = 'busy' | 'too-large' | 'length' | 'closed' | 'digest';

export class UploadRefused extends GadgetError {
  constructor(
    readonly reason: RefusedReason,
    message: string,
  ) {
    super(message);
  }
}

export interface AppendOptions {
  /** The most bytes the whole upload may hold. */
  limit: number;
  /** The piece's length, when the client said it: more or fewer bytes are refused. */
  length?: number;
  signal?: AbortSignal;
}

export class BlobUpload {
  readonly id = randomUUID();
  size = 0;
  /** When a byte last arrived or a piece ended (Date.now()): idle uploads are reaped by their owner. */
  lastActive = Date.now();
  private hash: Hash = createHash('sha256');
  private readonly path: string;
  private handle?: FileHandle;
  /** The piece being received, and its stream (destroyed by abort). */
  private receiving?: { done: Promise<void>; content: Readable };
  private closed = false;

  constructor(private readonly store: UploadTarget) {
    this.path = tempName(store.tmpDir, `upload-${this.id}`);
  }

  /** Whether a piece is being received now. */
  get busy(): boolean {
    return this.receiving !== undefined;
  }

  /** Appends a piece; one that is refused or fails leaves the upload as it was before it. */
  async append(content: Readable, opts: AppendOptions): Promise<void> {
    if (this.closed) throw new UploadRefused('closed', `upload ${this.id} was closed`);
    if (this.receiving) throw new UploadRefused('busy', `upload ${this.id} is still receiving another piece`);
    if (opts.length !== undefined && this.size + opts.length > opts.limit) throw tooLarge(opts.limit);
    const done = this.receive(content, opts);
    this.receiving = { done: done.catch(() => undefined), content };
    try {
      await done;
    } finally {
      this.receiving = undefined;
      this.lastActive = Date.now();
    }
  }

  private async receive(content: Readable, { limit, length, signal }: AppendOptions): Promise<void> {
    const before = { size: this.size, hash: this.hash.copy() };
    try {
      this.handle ??= await open(this.path, 'w', 0o600);
      for await (const chunk of content as AsyncIterable<Buffer>) {
        signal?.throwIfAborted();
        if (this.closed) throw new UploadRefused('closed', `upload ${this.id} was closed`);
        if (this.size + chunk.length > limit) throw tooLarge(limit);
        // At an explicit position: after a rollback the file's own offset is past its end.
        for (let off = 0; off < chunk.length; ) off += (await this.handle.write(chunk, off, chunk.length - off, this.size + off)).bytesWritten;
        this.hash.update(chunk);
        this.size += chunk.length;
        this.lastActive = Date.now();
      }
      const got = this.size - before.size;
      if (length !== undefined && got !== length) throw new UploadRefused('length', `the piece has ${got} bytes, but the request said ${length}`);
    } catch (err) {
      this.size = before.size;
      this.hash = before.hash;
      await this.handle?.truncate(before.size).catch(() => undefined);
      throw err;
    }
  }

  /** Checks the digest and stores the blob; the upload is gone afterwards either way. */
  async finish(digest: string, signal?: AbortSignal): Promise<Descriptor> {
    try {
      this.handle ??= await open(this.path, 'w', 0o600);
      await this.handle.sync();
      await this.handle.close();
      this.handle = undefined;
      const actual = `sha256:${this.hash.digest('hex')}`;
      if (actual !== digest) throw new UploadRefused('digest', `the uploaded bytes have the digest ${actual}, not ${digest}`);
      const descriptor: Descriptor = { mediaType: 'application/octet-stream', digest, size: this.size };
      await this.store.push(descriptor, createReadStream(this.path, { highWaterMark: 1 << 20 }), signal);
      return descriptor;
    } finally {
      await this.abort();
    }
  }

  /** Ends the upload: a piece being received is cut off, the file closed and removed. */
  async abort(): Promise<void> {
    this.closed = true;
    if (this.receiving) {
      this.receiving.content.destroy(new Error(`upload ${this.id} was closed`));
      await this.receiving.done;
    }
    await this.handle?.close().catch(() => undefined);
    this.handle = undefined;
    await rm(this.path, { force: true });
  }
}

function tooLarge(limit: number): UploadRefused {
  return new UploadRefused('too-large', `the upload would be larger than the ${limit} bytes allowed`);
}
