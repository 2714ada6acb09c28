// Sigstore bundles (v0.1–v0.3, what `cosign sign --new-bundle-format` attaches as an OCI 1.1
// referrer). The bundle holds either a DSSE envelope whose in-toto statement names the
// image digest, or a message signature over the image manifest's bytes. Verification is
// with the given public keys only and offline: transparency-log entries and RFC 3161
// timestamps in the bundle are not checked (that needs the Sigstore trust root and, for
// Rekor, the network), and keyless bundles (Fulcio certificates) are not trusted.
import { digestHex } from '../oci/digest.js';
import { SIGSTORE_BUNDLE } from '../oci/mediatypes.js';
import { MAX_MANIFEST_BYTES } from '../oci/target.js';
import type { Manifest } from '../oci/types.js';
import { messageOf } from '../errors.js';
import { findVerifyingKey, noKeyVerifies } from './cosign.js';
import { readChecked } from './find.js';
import { decodeBase64, type PublicKeyEntry } from './keys.js';
import { INTOTO_PAYLOAD_TYPE, MAX_SIGNATURE_BYTES, type SignatureSource, type Verdict } from './types.js';

const BUNDLE_MEDIA_TYPE = /^application\/vnd\.dev\.sigstore\.bundle(?:\.v0\.[123]\+json|\+json;\s*version=0\.[123])$/;

interface Bundle {
  mediaType?: unknown;
  verificationMaterial?: { certificate?: unknown; x509CertificateChain?: unknown };
  dsseEnvelope?: { payload?: unknown; payloadType?: unknown; signatures?: unknown };
  messageSignature?: { messageDigest?: { algorithm?: unknown; digest?: unknown }; signature?: unknown };
}

/** DSSE's pre-authentication encoding: what a DSSE signature covers. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'utf8'), type,
    Buffer.from(` ${payload.length} `, 'utf8'), payload,
  ]);
}

function keylessNote(bundle: Bundle): string {
  const vm = bundle.verificationMaterial;
  return vm?.certificate !== undefined || vm?.x509CertificateChain !== undefined
    ? ' The bundle is keyless (it carries a Fulcio certificate), which this offline verifier does not trust.'
    : '';
}

function verifyDsse(bundle: Bundle, digest: string, keys: PublicKeyEntry[]): Verdict {
  const env = bundle.dsseEnvelope!;
  const payload = decodeBase64(env.payload);
  if (typeof env.payloadType !== 'string' || !payload) {
    return { ok: false, reason: 'The DSSE envelope in the Sigstore bundle has no payload or payload type.' };
  }
  const signed = pae(env.payloadType, payload);
  const signatures = Array.isArray(env.signatures) ? (env.signatures as Array<{ sig?: unknown } | null>) : [];
  let key: PublicKeyEntry | undefined;
  for (const s of signatures) {
    const sig = decodeBase64(s?.sig);
    key = sig && findVerifyingKey(keys, signed, sig);
    if (key) break;
  }
  if (!key) return { ok: false, reason: noKeyVerifies('Sigstore bundle signature', keys) + keylessNote(bundle) };
  if (env.payloadType !== INTOTO_PAYLOAD_TYPE) {
    return { ok: false, reason: `The DSSE envelope has payload type "${env.payloadType}", not "${INTOTO_PAYLOAD_TYPE}".` };
  }
  let subjects: Array<{ digest?: { sha256?: unknown } } | null> = [];
  try {
    const statement = JSON.parse(payload.toString('utf8')) as { subject?: unknown } | null;
    if (Array.isArray(statement?.subject)) subjects = statement.subject;
  } catch {
    return { ok: false, reason: 'The signed in-toto statement in the Sigstore bundle is not JSON.' };
  }
  const named = subjects.map((s) => s?.digest?.sha256).filter((h): h is string => typeof h === 'string');
  if (!named.includes(digestHex(digest))) {
    const list = named.length > 0 ? named.map((h) => `sha256:${h}`).join(', ') : 'no sha256 digest';
    return { ok: false, reason: `The signed in-toto statement names ${list}, not the image ${digest}.` };
  }
  return { ok: true, reason: `The Sigstore bundle signature of ${digest} verifies with ${key.label}.`, keyOrCert: key.label };
}

async function verifyMessageSignature(src: SignatureSource, bundle: Bundle, digest: string, keys: PublicKeyEntry[]): Promise<Verdict> {
  const ms = bundle.messageSignature!;
  const named = decodeBase64(ms.messageDigest?.digest);
  const signature = decodeBase64(ms.signature);
  if (ms.messageDigest?.algorithm !== 'SHA2_256' || !named || !signature) {
    return { ok: false, reason: 'The message signature in the Sigstore bundle lacks a SHA2_256 message digest or a signature.' };
  }
  if (named.toString('hex') !== digestHex(digest)) {
    return { ok: false, reason: `The Sigstore bundle signs sha256:${named.toString('hex')}, not the image ${digest}.` };
  }
  let signedBytes: Buffer;
  try {
    signedBytes = await readChecked(src, { digest }, 'signed image index', MAX_MANIFEST_BYTES);
  } catch (err) {
    return { ok: false, reason: messageOf(err) };
  }
  const key = findVerifyingKey(keys, signedBytes, signature);
  if (!key) return { ok: false, reason: noKeyVerifies('Sigstore bundle signature', keys) + keylessNote(bundle) };
  return { ok: true, reason: `The Sigstore bundle signature of ${digest} verifies with ${key.label}.`, keyOrCert: key.label };
}

/** Verifies a Sigstore bundle referrer of `digest` with the given public keys. */
export async function verifyBundle(src: SignatureSource, digest: string, manifest: Manifest, keys: PublicKeyEntry[]): Promise<Verdict> {
  if (keys.length === 0) return { ok: false, reason: 'No cosign public key was given to check this Sigstore bundle.' };
  const layer = manifest.layers.find((l) => l?.mediaType === SIGSTORE_BUNDLE);
  if (!layer) return { ok: false, reason: `The Sigstore bundle manifest has no ${SIGSTORE_BUNDLE} layer.` };
  let bundle: Bundle;
  try {
    const value: unknown = JSON.parse((await readChecked(src, layer, 'Sigstore bundle', MAX_SIGNATURE_BYTES)).toString('utf8'));
    if (value === null || typeof value !== 'object') return { ok: false, reason: `The Sigstore bundle ${layer.digest} is not a JSON object.` };
    bundle = value as Bundle;
  } catch (err) {
    return { ok: false, reason: err instanceof SyntaxError ? `The Sigstore bundle ${layer.digest} is not JSON.` : messageOf(err) };
  }
  if (typeof bundle.mediaType !== 'string' || !BUNDLE_MEDIA_TYPE.test(bundle.mediaType)) {
    return { ok: false, reason: `The Sigstore bundle has media type "${String(bundle.mediaType)}", which this verifier does not support.` };
  }
  if (bundle.dsseEnvelope && typeof bundle.dsseEnvelope === 'object') return verifyDsse(bundle, digest, keys);
  if (bundle.messageSignature && typeof bundle.messageSignature === 'object') return verifyMessageSignature(src, bundle, digest, keys);
  return { ok: false, reason: 'The Sigstore bundle holds neither a DSSE envelope nor a message signature.' };
}
