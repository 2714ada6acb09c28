// sha256 digests: computed on buffers, verified while streaming.
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { GadgetError } from '../errors.js';

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(value: string): boolean {
  return DIGEST_RE.test(value);
}

/** Throws a clear error unless `value` is a sha256 digest this program can store. */
export function assertDigest(value: unknown, where: string): asserts value is string {
  if (typeof value !== 'string' || !DIGEST_RE.test(value)) {
    throw new GadgetError(`${where}: "${String(value)}" is not a sha256 digest (sha256:<64 hex>)`);
  }
}

export function sha256(data: Uint8Array | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** The hex part of a digest, used as the blob's file name. */
export function digestHex(digest: string): string {
  return digest.slice('sha256:'.length);
}

/** What to do about bytes that do not match their digest (a registry's are fetched again first). */
export const DAMAGED_HINT = 'the content is damaged where it was read from: for the store, `gadget fsck` names what is damaged (`--repair` removes it, to fetch again); for a registry or a bundle, copy it again';

/**
 * A pass-through stream that hashes and counts what flows through it, and fails at the end
 * when the bytes do not match the expected digest and size. Nothing downstream may treat the
 * data as valid before this stream has ended without error.
 */
export class DigestVerifier extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;

  constructor(
    private readonly expected: { digest: string; size: number },
    private readonly what: string,
  ) {
    super();
  }

  /** Whether this stream checks exactly `expected` (its reader then need not hash it again). */
  checks(expected: { digest: string; size: number }): boolean {
    return expected.digest === this.expected.digest && expected.size === this.expected.size;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.expected.size) {
      cb(new GadgetError(`${this.what}: more than the ${this.expected.size} bytes its descriptor says`, { transient: true, hint: DAMAGED_HINT }));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const actual = 'sha256:' + this.hash.digest('hex');
    if (this.bytes !== this.expected.size) {
      cb(new GadgetError(`${this.what}: got ${this.bytes} bytes, its descriptor says ${this.expected.size}`, { transient: true, hint: DAMAGED_HINT }));
    } else if (actual !== this.expected.digest) {
      cb(new GadgetError(`${this.what}: content has digest ${actual}, expected ${this.expected.digest}`, { transient: 'once', hint: DAMAGED_HINT }));
    } else {
      cb();
    }
  }
}
