// Streams checked against their descriptor while they flow (DigestVerifier).
import { createHash } from 'node:crypto';
import { pipeline, type Readable } from 'node:stream';
import { GadgetError } from '../errors.js';
import { DAMAGED_HINT, DigestVerifier } from '../oci/digest.js';
import type { Descriptor } from '../oci/types.js';

/**
 * `content` passed through a DigestVerifier. Either end failing or being destroyed destroys
 * the other, so an abandoned download frees its connection.
 */
export function verified(content: Readable, descriptor: Descriptor, what: string): Readable {
  const verifier = new DigestVerifier(descriptor, what);
  pipeline(content, verifier, () => {});
  return verifier;
}

/**
 * Reads a whole stream (at most the descriptor's size) and checks its digest. Hashes as it
 * reads, without a verifier stream in between: small blobs are read this way by the thousand.
 */
export async function readVerified(content: Readable, descriptor: Descriptor, what: string): Promise<Buffer> {
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of content as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > descriptor.size) throw new GadgetError(`${what}: more than the ${descriptor.size} bytes its descriptor says`);
      hash.update(chunk);
      chunks.push(chunk);
    }
  } finally {
    content.destroy();
  }
  if (total !== descriptor.size) throw new GadgetError(`${what}: got ${total} bytes, its descriptor says ${descriptor.size}`);
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== descriptor.digest) throw new GadgetError(`${what}: content has digest ${actual}, expected ${descriptor.digest}`, { hint: DAMAGED_HINT });
  return Buffer.concat(chunks, total);
}
