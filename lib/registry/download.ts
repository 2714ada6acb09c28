// A blob download that survives a dropped connection: when the body breaks off before the
// descriptor's size, the rest is asked for with `Range: bytes=<reached>-` and the stream goes
// on. A registry that ignores Range (200 instead of 206) resends everything: the bytes already
// passed on are skipped. The caller verifies the digest of the whole (DigestVerifier).
//
// A blob the registry holds shorter than its descriptor says is not a broken connection: its
// answer says how long it is (Content-Length of a 200, the total of a 206's Content-Range),
// and no Range request could bring the missing bytes. docker-registry 2.8
// accepts a manifest naming a wrong size, so this happens; it fails naming both sizes, as the
// same-registry copy does (repository.ts holdsBlob), instead of "answered HTTP 416".
import { Readable } from 'node:stream';
import { GadgetError } from '../errors.js';
import type { HttpResponse } from './http.js';

export interface ResumeOptions {
  /** How often a broken download is resumed before giving up (default 5). */
  maxResumes?: number;
  signal?: AbortSignal;
}

/**
 * Streams `size` bytes starting with `first` (a 200 answer), re-opening with `reopen(offset)`
 * after a break. `what` names the blob for messages.
 */
export function resumableBody(
  first: HttpResponse,
  size: number,
  reopen: (offset: number) => Promise<HttpResponse>,
  what: string,
  opts: ResumeOptions = {},
): Readable {
  const maxResumes = opts.maxResumes ?? 5;
  const shorter = (held: number): GadgetError =>
    new GadgetError(`${what}: the registry holds ${held} bytes under that digest, but the descriptor says ${size}`, {
      hint: 'the manifest that lists the blob names the wrong size; correct it where it was made and push it again',
    });
  /** The blob's whole length as the answer states it, when it does. */
  const heldBy = (res: HttpResponse): number | undefined => {
    const total = res.status === 200 ? res.header('content-length') : /\/(\d+)\s*$/.exec(res.header('content-range') ?? '')?.[1];
    const n = Number(total ?? NaN);
    return Number.isSafeInteger(n) ? n : undefined;
  };
  /** Refuses an answer that says the blob is shorter than the descriptor. */
  const refuseShort = (res: HttpResponse): void => {
    const held = heldBy(res);
    if (held !== undefined && held < size) {
      res.body.destroy();
      throw shorter(held);
    }
  };

  async function* chunks(): AsyncGenerator<Buffer> {
    let res = first;
    let offset = 0; // bytes passed on
    let skip = 0; // bytes of the current body already passed on earlier
    let resumes = 0;
    refuseShort(res);
    for (;;) {
      try {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          if (skip >= chunk.length) {
            skip -= chunk.length;
            continue;
          }
          const part = skip > 0 ? chunk.subarray(skip) : chunk;
          skip = 0;
          offset += part.length;
          yield part;
        }
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        if (err instanceof GadgetError) throw err;
        // A broken connection: resumed below.
      }
      if (offset >= size) return; // complete (or too long: the verifier says so)
      if (++resumes > maxResumes) {
        throw new GadgetError(`${what}: the download broke off ${maxResumes + 1} times, at byte ${offset} of ${size}`, {
          hint: 'check the network and try again',
        });
      }
      res = await reopen(offset);
      refuseShort(res);
      if (res.status === 206) {
        const range = /^bytes (\d+)-/.exec(res.header('content-range') ?? '');
        if (!range || Number(range[1]) !== offset) {
          res.body.destroy();
          throw new GadgetError(`${what}: the registry resumed the download at the wrong position`);
        }
      } else if (res.status === 200) {
        skip = offset;
      } else {
        res.body.destroy();
        throw new GadgetError(`${what}: the registry answered HTTP ${res.status} when the download was resumed at byte ${offset}`);
      }
    }
  }

  return Readable.from(chunks(), { objectMode: false });
}
