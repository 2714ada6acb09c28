// A blob upload that arrives in pieces (the distribution API's POST, PATCH..., PUT): the bytes
// collect in a temporary file of the store's tmp folder, hashed as they arrive. Its name
// carries this process's pid, so gc and fsck leave it alone while the process lives and the
// next writer removes it after a crash. Nothing is visible in the store until `finish`, which
// checks the digest and then stores the blob through the store's own verified, atomic push.
import { createHash, randomUUID } from 'node:crypto';
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

export class BlobUpload {
  readonly id = randomUUID();
  size = 0;
  private readonly hash = createHash('sha256');
  private readonly path: string;
  private handle?: FileHandle;
  private busy = false;

  constructor(private readonly store: UploadTarget) {
    this.path = tempName(store.tmpDir, `upload-${this.id}`);
  }

  /** Appends `content`; more than `limit` bytes in all is refused (and the upload stays as it was up to there). */
  async append(content: Readable, limit: number, signal?: AbortSignal): Promise<void> {
    if (this.busy) throw new GadgetError(`upload ${this.id} is already receiving data`);
    this.busy = true;
    try {
      this.handle ??= await open(this.path, 'w', 0o600);
      for await (const chunk of content as AsyncIterable<Buffer>) {
        signal?.throwIfAborted();
        if (this.size + chunk.length > limit) throw new GadgetError(`the upload is larger than the ${limit} bytes allowed`);
        let off = 0;
        while (off < chunk.length) off += (await this.handle.write(chunk, off, chunk.length - off)).bytesWritten;
        this.hash.update(chunk);
        this.size += chunk.length;
      }
    } finally {
      this.busy = false;
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
      if (actual !== digest) throw new GadgetError(`the uploaded bytes have the digest ${actual}, not ${digest}`);
      const descriptor: Descriptor = { mediaType: 'application/octet-stream', digest, size: this.size };
      await this.store.push(descriptor, createReadStream(this.path, { highWaterMark: 1 << 20 }), signal);
      return descriptor;
    } finally {
      await this.abort();
    }
  }

  async abort(): Promise<void> {
    await this.handle?.close().catch(() => undefined);
    this.handle = undefined;
    await rm(this.path, { force: true });
  }
}
