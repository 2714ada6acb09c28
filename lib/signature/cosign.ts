// Cosign "simple signing" signatures, as the legacy `sha256-<hex>.sig` tag and as OCI 1.1
// referrers (artifactType application/vnd.dev.cosign.artifact.sig.v1+json) store them: each
// layer is a JSON payload naming the signed digest, with the base64 signature over the
// payload's exact bytes in the layer annotation dev.cosignproject.cosign/signature.
import { COSIGN_SIMPLESIGNING } from '../oci/mediatypes.js';
import type { Descriptor, Manifest } from '../oci/types.js';
import { messageOf } from '../errors.js';
import { readChecked } from './find.js';
import { isKeylessLayer, legacyLayerToBundle } from './cosign-keyless.js';
import { cosignAlgorithm, decodeBase64, verifyWith, type PublicKeyEntry } from './keys.js';
import type { KeylessTrust } from './sigstore.js';
import { COSIGN_PAYLOAD_TYPE, COSIGN_SIGNATURE_ANNOTATION, MAX_SIGNATURE_BYTES, type SignatureSource, type Verdict } from './types.js';

/** Why the key list fails, in one phrase. */
export function noKeyVerifies(what: string, keys: PublicKeyEntry[]): string {
  return keys.length === 1
    ? `the ${what} does not verify with the given public key ${keys[0]!.label}`
    : `the ${what} does not verify with any of the ${keys.length} given public keys`;
}

/** The first key whose signature over `data` checks out. */
export function findVerifyingKey(keys: PublicKeyEntry[], data: Buffer, signature: Buffer): PublicKeyEntry | undefined {
  return keys.find((k) => verifyWith(k.key, cosignAlgorithm(k.key), data, signature));
}

/**
 * Checks a simple-signing payload names `digest`. Read only after the signature has been
 * verified: an unsigned payload is not worth parsing.
 */
export function checkSimpleSigningPayload(payload: Buffer, digest: string): string | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'the signed cosign payload is not JSON';
  }
  const critical = (doc as { critical?: { type?: unknown; image?: { 'docker-manifest-digest'?: unknown } } } | null)?.critical;
  if (!critical || typeof critical !== 'object') return 'the signed cosign payload has no "critical" section';
  if (critical.type !== COSIGN_PAYLOAD_TYPE) {
    return `the signed cosign payload has type "${String(critical.type)}", not "${COSIGN_PAYLOAD_TYPE}"`;
  }
  const named = critical.image?.['docker-manifest-digest'];
  if (named !== digest) return `the signed cosign payload names ${String(named)}, not the image ${digest}`;
  return undefined;
}

/** A keyless layer: the annotations as a Sigstore bundle, verified against the trusted root. */
async function verifyKeylessLayer(layer: Descriptor, payload: Buffer, digest: string, trust: KeylessTrust): Promise<Verdict> {
  // Loaded on first use: Sigstore's libraries cost more start-up time than the rest of verify.
  const { parseBundle, verifyKeyless } = await import('./sigstore.js');
  const converted = legacyLayerToBundle(layer, payload);
  if ('problem' in converted) return { ok: false, reason: `the keyless cosign signature cannot be read: ${converted.problem}` };
  const parsed = parseBundle(converted.json);
  if (!('bundle' in parsed)) return parsed;
  const outcome = verifyKeyless(parsed.bundle, trust, payload);
  if (!outcome.ok) return outcome;
  const wrong = checkSimpleSigningPayload(payload, digest);
  if (wrong) return { ok: false, reason: wrong, rule: 'GADGET-SIGNATURE-DIGEST' };
  return { ok: true, reason: `the keyless cosign signature of ${digest} by ${outcome.who} verifies with the trusted root ${trust.source}`, keyOrCert: outcome.who };
}

async function verifyLayer(src: SignatureSource, digest: string, layer: Descriptor, keys: PublicKeyEntry[], keyless?: KeylessTrust): Promise<Verdict> {
  const signature = decodeBase64(layer.annotations?.[COSIGN_SIGNATURE_ANNOTATION]);
  if (!signature) {
    return { ok: false, reason: `the cosign layer ${layer.digest} has no base64 signature in the annotation ${COSIGN_SIGNATURE_ANNOTATION}` };
  }
  let payload: Buffer;
  try {
    payload = await readChecked(src, layer, 'cosign payload', MAX_SIGNATURE_BYTES);
  } catch (err) {
    return { ok: false, reason: messageOf(err) };
  }
  if (keyless && isKeylessLayer(layer)) return verifyKeylessLayer(layer, payload, digest, keyless);
  if (keys.length === 0) return { ok: false, reason: 'the cosign signature is signed with a key, and no cosign public key was given' };
  const key = findVerifyingKey(keys, payload, signature);
  if (!key) return { ok: false, reason: noKeyVerifies('cosign signature', keys) };
  const wrong = checkSimpleSigningPayload(payload, digest);
  if (wrong) return { ok: false, reason: wrong, rule: 'GADGET-SIGNATURE-DIGEST' };
  return { ok: true, reason: `the cosign signature of ${digest} verifies with ${key.label}`, keyOrCert: key.label };
}

/** Verifies a cosign signature manifest (legacy tag or OCI 1.1 referrer) for `digest`. */
export async function verifyCosign(src: SignatureSource, digest: string, manifest: Manifest, keys: PublicKeyEntry[], keyless?: KeylessTrust): Promise<Verdict> {
  if (keys.length === 0 && !keyless) return { ok: false, reason: 'no cosign public key was given to check this cosign signature' };
  // Cosign appends one layer per signature; any layer that verifies is enough.
  const layers = manifest.layers.filter(
    (l) => l && (l.mediaType === COSIGN_SIMPLESIGNING || l.annotations?.[COSIGN_SIGNATURE_ANNOTATION] !== undefined),
  );
  if (layers.length === 0) return { ok: false, reason: 'the cosign signature manifest has no simple-signing layer' };
  let first: Verdict | undefined;
  for (const layer of layers) {
    const verdict = await verifyLayer(src, digest, layer, keys, keyless);
    if (verdict.ok) return verdict;
    first ??= verdict;
  }
  return first!;
}
