// Locating the signatures of a digest, the three ways ig and cosign/notation store them:
// the cosign tag `sha256-<hex>.sig`, the OCI 1.1 referrers fallback tag `sha256-<hex>` (an
// index listing referrers) and the referrers of the digest. Each signature manifest is
// classified by its own content, not by the descriptor that pointed at it: cosign writes
// the empty media type as artifactType into fallback indexes for bundles.
import { sha256, digestHex, isDigest } from '../oci/digest.js';
import { COSIGN_SIG_ARTIFACT, INDEX_TYPES, MANIFEST_TYPES, NOTATION_SIGNATURE, SIGSTORE_BUNDLE } from '../oci/mediatypes.js';
import { MAX_MANIFEST_BYTES } from '../oci/target.js';
import type { Descriptor, Index, Manifest } from '../oci/types.js';
import { messageOf } from '../errors.js';
import type { SignatureKind, SignatureSource } from './types.js';

export interface SignatureCandidate {
  kind: SignatureKind;
  /** Digest of the signature manifest. */
  digest: string;
  /** How it was found, for messages: "tag sha256-….sig", "referrers". */
  via: string;
  manifest?: Manifest;
  /** Set when the candidate cannot be verified at all (unreadable, wrong subject). */
  problem?: string;
}

export interface FoundSignatures {
  candidates: SignatureCandidate[];
  /** Signature manifests listed by a fallback index or referrers that could not be read (ig leaves some out). */
  unreadable: string[];
}

/** Cosign's legacy signature tag and the referrers fallback tag of a digest. */
export function signatureTags(digest: string): { legacy: string; fallback: string } {
  const fallback = `sha256-${digestHex(digest)}`;
  return { legacy: `${fallback}.sig`, fallback };
}

/**
 * Reads a blob, refusing one larger than `max` and checking its digest (and size when the
 * descriptor gives one) whatever the source promises. Throws an Error whose message is one
 * sentence in the house style (lowercase, no full stop): it becomes a verdict's reason.
 */
export async function readChecked(src: SignatureSource, desc: Pick<Descriptor, 'digest'> & { size?: number }, what: string, max: number): Promise<Buffer> {
  if (!isDigest(desc.digest)) throw new Error(`the ${what} has the unusable digest "${String(desc.digest)}"`);
  if (desc.size !== undefined && (!Number.isSafeInteger(desc.size) || desc.size < 0 || desc.size > max)) {
    throw new Error(`the ${what} ${desc.digest} declares ${desc.size} bytes, more than the ${max} this verifier reads`);
  }
  let bytes: Buffer;
  try {
    bytes = await src.read(desc.digest);
  } catch (err) {
    throw new Error(`the ${what} ${desc.digest} cannot be read: ${messageOf(err).replace(/\.$/, '')}`);
  }
  if (bytes.length > max) throw new Error(`the ${what} ${desc.digest} is larger than the ${max} bytes this verifier reads`);
  if (sha256(bytes) !== desc.digest) throw new Error(`the content of the ${what} ${desc.digest} does not match its digest`);
  if (desc.size !== undefined && bytes.length !== desc.size) {
    throw new Error(`the ${what} ${desc.digest} has ${bytes.length} bytes, but its descriptor says ${desc.size}`);
  }
  return bytes;
}

function parseObject(bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function asManifest(doc: Record<string, unknown> | undefined): Manifest | undefined {
  if (!doc || !Array.isArray(doc.layers) || doc.config === null || typeof doc.config !== 'object') return undefined;
  if (doc.mediaType !== undefined && !MANIFEST_TYPES.has(String(doc.mediaType))) return undefined;
  return doc as unknown as Manifest;
}

/** The kind of signature a manifest holds, or undefined for other referrers (SBOMs, …). */
export function classify(m: Manifest): Exclude<SignatureKind, 'cosign-legacy'> | undefined {
  const type = m.artifactType ?? m.config.mediaType;
  if (type === NOTATION_SIGNATURE || m.config.mediaType === NOTATION_SIGNATURE) return 'notation';
  if (type === SIGSTORE_BUNDLE || m.layers.some((l) => l?.mediaType === SIGSTORE_BUNDLE)) return 'cosign-bundle';
  if (type === COSIGN_SIG_ARTIFACT || m.config.mediaType === COSIGN_SIG_ARTIFACT) return 'cosign-oci11';
  return undefined;
}

/** Every signature manifest of `digest` that `src` knows, each once. */
export async function findSignatures(src: SignatureSource, digest: string): Promise<FoundSignatures> {
  const tags = signatureTags(digest);
  const candidates: SignatureCandidate[] = [];
  const unreadable: string[] = [];
  const seen = new Set<string>();

  // The legacy tag names its image only through the payload, which the verifier checks.
  const legacy = await src.resolveTag(tags.legacy);
  if (legacy) {
    seen.add(legacy.digest);
    const via = `tag ${tags.legacy}`;
    try {
      const manifest = asManifest(parseObject(await readChecked(src, legacy, 'signature manifest', MAX_MANIFEST_BYTES)));
      candidates.push(manifest
        ? { kind: 'cosign-legacy', digest: legacy.digest, via, manifest }
        : { kind: 'cosign-legacy', digest: legacy.digest, via, problem: `the manifest tagged ${tags.legacy} is not an OCI image manifest` });
    } catch (err) {
      candidates.push({ kind: 'cosign-legacy', digest: legacy.digest, via, problem: messageOf(err) });
    }
  }

  const listed: Array<{ desc: Descriptor; via: string }> = [];
  const fallback = await src.resolveTag(tags.fallback);
  if (fallback && INDEX_TYPES.has(fallback.mediaType)) {
    try {
      const index = parseObject(await readChecked(src, fallback, 'referrers index', MAX_MANIFEST_BYTES)) as Partial<Index> | undefined;
      for (const desc of Array.isArray(index?.manifests) ? index.manifests : []) listed.push({ desc, via: `tag ${tags.fallback}` });
    } catch {
      // An unreadable fallback index hides nothing the referrers below cannot show.
    }
  }
  for (const desc of await src.referrers(digest)) listed.push({ desc, via: 'referrers' });

  for (const { desc, via } of listed) {
    if (!desc || typeof desc.digest !== 'string' || seen.has(desc.digest)) continue;
    seen.add(desc.digest);
    if (desc.mediaType !== undefined && !MANIFEST_TYPES.has(desc.mediaType)) continue;
    let manifest: Manifest | undefined;
    try {
      manifest = asManifest(parseObject(await readChecked(src, desc, 'signature manifest', MAX_MANIFEST_BYTES)));
    } catch {
      // ig's store lists referrers it never pulled: absent entries are skipped, not failures.
      unreadable.push(desc.digest);
      continue;
    }
    const kind = manifest && classify(manifest);
    if (!manifest || !kind) continue;
    const subject = manifest.subject?.digest;
    const problem = subject !== undefined && subject !== digest
      ? `the signature manifest's subject is ${String(subject)}, not the image ${digest}`
      : undefined;
    candidates.push({ kind, digest: desc.digest, via, manifest, ...(problem ? { problem } : {}) });
  }
  return { candidates, unreadable };
}
