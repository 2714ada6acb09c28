// A blob of the store sent as the bytes its digest names, never others: a file damaged on
// disk (same length, other bytes) must not reach a client as a complete, valid-looking body.
// A small blob is read whole and hashed before its answer starts (a damaged one is a 500 that
// names it). A large one is hashed on the way and its last piece held back until the hash is
// known: when it does not match, the connection is cut, so the client gets fewer bytes than
// Content-Length and knows the body is broken. A Range of a large blob is sent as read: it
// cannot be checked without reading the whole blob (HEAD reads nothing either).
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type TransformCallback, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GadgetError } from '../lib/errors.js';
import { sha256 } from '../lib/oci/digest.js';
import { openRegular } from '../store/regular-files.js';
import { RegistryError, send } from './http.js';

/** Blobs up to this size are read whole and checked before they are sent. */
const SMALL_BLOB_BYTES = 1 << 20;

class CorruptBlob extends GadgetError {
  constructor(digest: string) {
    super(`blob ${digest} in the store is corrupt: its content has another digest`, { hint: 'run `gadget fsck` on the server\'s store; `--repair` removes the blob, to be pushed again' });
  }
}

/** Sends the blob at `file` (GET or HEAD, with Range), checked against `digest` as above. */
export async function sendBlob(req: IncomingMessage, res: ServerResponse, file: string, digest: string, headers: Record<string, string>): Promise<void> {
  let fd: number;
  let size: number;
  // Opened before the answer starts, and only as a regular file (a FIFO would hang the read).
  try {
    ({ fd, size } = openRegular(file));
  } catch {
    throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is not in the store`);
  }
  let part: { start: number; end: number } | undefined;
  try {
    part = rangeOf(req.headers.range, size);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  const [start, end] = part ? [part.start, part.end] : [0, size - 1];
  const answer = { 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': digest, 'Accept-Ranges': 'bytes', ...headers, ...(part ? { 'Content-Range': `bytes ${start}-${end}/${size}` } : {}) };
  const status = part ? 206 : 200;
  if (req.method === 'HEAD') {
    closeSync(fd);
    return send(res, status, { ...answer, 'Content-Length': part ? end - start + 1 : size });
  }
  if (size <= SMALL_BLOB_BYTES) {
    const bytes = readWhole(fd);
    if (sha256(bytes) !== digest) throw new CorruptBlob(digest);
    return send(res, status, answer, bytes.subarray(start, end + 1));
  }
  res.writeHead(status, { ...answer, 'Content-Length': end - start + 1 });
  const stream = createReadStream('', { fd, start, end, highWaterMark: 1 << 20 });
  await pipe(part ? [stream, res] : [stream, new HeldUntilVerified(digest), res]);
}

/** The part a Range header asks for (undefined: the whole blob); 416 for one outside it. */
function rangeOf(header: string | undefined, size: number): { start: number; end: number } | undefined {
  const range = /^bytes=(\d*)-(\d*)$/.exec(header ?? '');
  if (!range || !(range[1] || range[2])) return undefined;
  const start = range[1] ? Number(range[1]) : Math.max(0, size - Number(range[2]));
  const end = range[1] && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
  if (start >= size || start > end) throw new RegistryError('BLOB_UNKNOWN', `range ${header} is outside the blob's ${size} bytes`, 416, { 'Content-Range': `bytes */${size}` });
  return { start, end };
}

function readWhole(fd: number): Buffer {
  try {
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Streams to the client; a client that goes away is no failure, a corrupt blob is. */
async function pipe(streams: [Readable, ...NodeJS.WritableStream[]]): Promise<void> {
  try {
    await pipeline(streams);
  } catch (err) {
    if (err instanceof CorruptBlob) throw err;
  }
}

/** Passes the bytes on, hashing them, and the last piece only once the whole matched the digest. */
class HeldUntilVerified extends Transform {
  private readonly hash = createHash('sha256');
  private held?: Buffer;

  constructor(private readonly digest: string) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    const previous = this.held;
    this.held = chunk;
    cb(null, previous);
  }

  override _flush(cb: TransformCallback): void {
    if (`sha256:${this.hash.digest('hex')}` !== this.digest) return cb(new CorruptBlob(this.digest));
    cb(null, this.held);
  }
}
