// Streams checked against their descriptor while they flow (DigestVerifier).
import { pipeline, type Readable } from 'node:stream';
import { DigestVerifier } from '../oci/digest.js';
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

/** Reads a whole stream (at most the descriptor's size) and checks its digest. */
export async function readVerified(content: Readable, descriptor: Descriptor, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of verified(content, descriptor, what) as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}
