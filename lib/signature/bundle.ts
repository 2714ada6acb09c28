// Sigstore bundles (v0.1–v0.3, what `cosign sign --new-bundle-format` attaches as an OCI 1.1
// referrer). The bundle holds either a DSSE envelope (exactly one signature, as ig requires)
// whose in-toto statement names the image digest, or a message signature over the image
// manifest's bytes. With public keys, verification is offline and ig's: the signature and
// the subject (log entries and timestamps are not needed). Keyless bundles (a Fulcio
// certificate) are verified with a trusted root and an identity policy (sigstore.ts).
import { digestHex } from '../oci/digest.js';
import { SIGSTORE_BUNDLE } from '../oci/mediatypes.js';
import { MAX_MANIFEST_BYTES } from '../oci/target.js';
import type { Manifest } from '../oci/types.js';
import { messageOf } from '../errors.js';
import { findVerifyingKey, noKeyVerifies } from './cosign.js';
import { readChecked } from './find.js';
import { decodeBase64, type PublicKeyEntry } from './keys.js';
import type { KeylessTrust } from './sigstore.js';
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

function isKeyless(bundle: Bundle): boolean {
  const vm = bundle.verificationMaterial;
  return vm?.certificate !== undefined || vm?.x509CertificateChain !== undefined;
}

function keylessNote(bundle: Bundle): string {
  return isKeyless(bundle)
    ? '; the bundle is keyless (it carries a Fulcio certificate), so verify it with --trusted-root, --certificate-identity and --certificate-oidc-issuer'
    : '';
}

/**
 * Checks that a signed DSSE payload is an in-toto statement naming `hex` (a sha256) among its
 * subjects; a reason (lowercase, no full stop) when not. `what` names the subject for
 * messages ("the image sha256:…").
 */
export function statementProblem(payloadType: string, payload: Buffer, hex: string, what: string): string | undefined {
  if (payloadType !== INTOTO_PAYLOAD_TYPE) return `the DSSE envelope has payload type "${payloadType}", not "${INTOTO_PAYLOAD_TYPE}"`;
  let subjects: Array<{ digest?: { sha256?: unknown } } | null> = [];
  try {
    const statement = JSON.parse(payload.toString('utf8')) as { subject?: unknown } | null;
    if (Array.isArray(statement?.subject)) subjects = statement.subject;
  } catch {
    return 'the signed in-toto statement is not JSON';
  }
  const named = subjects.map((s) => s?.digest?.sha256).filter((h): h is string => typeof h === 'string');
  if (named.includes(hex)) return undefined;
  const list = named.length > 0 ? named.map((h) => `sha256:${h}`).join(', ') : 'no sha256 digest';
  return `the signed in-toto statement names ${list}, not ${what} (digest mismatch)`;
}

function verifyDsse(bundle: Bundle, digest: string, keys: PublicKeyEntry[]): Verdict {
  const env = bundle.dsseEnvelope!;
  const payload = decodeBase64(env.payload);
  if (typeof env.payloadType !== 'string' || !payload) {
    return { ok: false, reason: 'the DSSE envelope in the Sigstore bundle has no payload or payload type' };
  }
  const signed = pae(env.payloadType, payload);
  const signatures = Array.isArray(env.signatures) ? (env.signatures as Array<{ sig?: unknown } | null>) : [];
  if (signatures.length !== 1) return { ok: false, reason: `the DSSE envelope has ${signatures.length} signatures; a Sigstore bundle has exactly one` };
  let key: PublicKeyEntry | undefined;
  for (const s of signatures) {
    const sig = decodeBase64(s?.sig);
    key = sig && findVerifyingKey(keys, signed, sig);
    if (key) break;
  }
  if (!key) return { ok: false, reason: noKeyVerifies('Sigstore bundle signature', keys) + keylessNote(bundle) };
  const wrong = statementProblem(env.payloadType, payload, digestHex(digest), `the image ${digest}`);
  if (wrong) return { ok: false, reason: wrong, rule: 'GADGET-SIGNATURE-DIGEST' };
  return { ok: true, reason: `the Sigstore bundle signature of ${digest} verifies with ${key.label}`, keyOrCert: key.label };
}

async function verifyMessageSignature(src: SignatureSource, bundle: Bundle, digest: string, keys: PublicKeyEntry[]): Promise<Verdict> {
  const ms = bundle.messageSignature!;
  const named = decodeBase64(ms.messageDigest?.digest);
  const signature = decodeBase64(ms.signature);
  if (ms.messageDigest?.algorithm !== 'SHA2_256' || !named || !signature) {
    return { ok: false, reason: 'the message signature in the Sigstore bundle lacks a SHA2_256 message digest or a signature' };
  }
  if (named.toString('hex') !== digestHex(digest)) {
    return { ok: false, reason: `the Sigstore bundle signs sha256:${named.toString('hex')}, not the image ${digest} (digest mismatch)`, rule: 'GADGET-SIGNATURE-DIGEST' };
  }
  let signedBytes: Buffer;
  try {
    signedBytes = await readChecked(src, { digest }, 'signed image index', MAX_MANIFEST_BYTES);
  } catch (err) {
    return { ok: false, reason: messageOf(err) };
  }
  const key = findVerifyingKey(keys, signedBytes, signature);
  if (!key) return { ok: false, reason: noKeyVerifies('Sigstore bundle signature', keys) + keylessNote(bundle) };
  return { ok: true, reason: `the Sigstore bundle signature of ${digest} verifies with ${key.label}`, keyOrCert: key.label };
}

/** A keyless bundle of the image `digest`: @sigstore/verify, then the subject. */
async function verifyKeylessBundle(src: SignatureSource, json: unknown, digest: string, trust: KeylessTrust): Promise<Verdict> {
  // Loaded on first use: Sigstore's libraries cost more start-up time than the rest of verify.
  const { parseBundle, verifyKeyless } = await import('./sigstore.js');
  const parsed = parseBundle(json);
  if (!('bundle' in parsed)) return parsed;
  const content = parsed.bundle.content;
  let signedIndex: Buffer | undefined;
  if (content.$case === 'messageSignature') {
    if (content.messageSignature.messageDigest?.digest.toString('hex') !== digestHex(digest)) {
      return { ok: false, reason: `the Sigstore bundle signs another digest than the image ${digest} (digest mismatch)`, rule: 'GADGET-SIGNATURE-DIGEST' };
    }
    try {
      signedIndex = await readChecked(src, { digest }, 'signed image index', MAX_MANIFEST_BYTES);
    } catch (err) {
      return { ok: false, reason: messageOf(err) };
    }
  }
  const outcome = verifyKeyless(parsed.bundle, trust, signedIndex);
  if (!outcome.ok) return outcome;
  if (content.$case === 'dsseEnvelope') {
    const env = content.dsseEnvelope;
    if (env.signatures.length !== 1) return { ok: false, reason: `the DSSE envelope has ${env.signatures.length} signatures; a Sigstore bundle has exactly one` };
    const wrong = statementProblem(env.payloadType, env.payload, digestHex(digest), `the image ${digest}`);
    if (wrong) return { ok: false, reason: wrong, rule: 'GADGET-SIGNATURE-DIGEST' };
  }
  return { ok: true, reason: `the keyless Sigstore bundle of ${digest} by ${outcome.who} verifies with the trusted root ${trust.source}`, keyOrCert: outcome.who };
}

/** Verifies a Sigstore bundle referrer of `digest` with the given public keys, or keyless with `keyless`. */
export async function verifyBundle(src: SignatureSource, digest: string, manifest: Manifest, keys: PublicKeyEntry[], keyless?: KeylessTrust): Promise<Verdict> {
  if (keys.length === 0 && !keyless) return { ok: false, reason: 'no cosign public key was given to check this Sigstore bundle' };
  const layer = manifest.layers.find((l) => l?.mediaType === SIGSTORE_BUNDLE);
  if (!layer) return { ok: false, reason: `the Sigstore bundle manifest has no ${SIGSTORE_BUNDLE} layer` };
  let bundle: Bundle;
  try {
    const value: unknown = JSON.parse((await readChecked(src, layer, 'Sigstore bundle', MAX_SIGNATURE_BYTES)).toString('utf8'));
    if (value === null || typeof value !== 'object') return { ok: false, reason: `the Sigstore bundle ${layer.digest} is not a JSON object` };
    bundle = value as Bundle;
  } catch (err) {
    return { ok: false, reason: err instanceof SyntaxError ? `the Sigstore bundle ${layer.digest} is not JSON` : messageOf(err) };
  }
  if (typeof bundle.mediaType !== 'string' || !BUNDLE_MEDIA_TYPE.test(bundle.mediaType)) {
    return { ok: false, reason: `the Sigstore bundle has media type "${String(bundle.mediaType)}", which this verifier does not support` };
  }
  if (keyless && isKeyless(bundle)) return verifyKeylessBundle(src, bundle, digest, keyless);
  if (keys.length === 0) return { ok: false, reason: 'the Sigstore bundle is signed with a key, and no cosign public key was given' };
  if (bundle.dsseEnvelope && typeof bundle.dsseEnvelope === 'object') return verifyDsse(bundle, digest, keys);
  if (bundle.messageSignature && typeof bundle.messageSignature === 'object') return verifyMessageSignature(src, bundle, digest, keys);
  return { ok: false, reason: 'the Sigstore bundle holds neither a DSSE envelope nor a message signature' };
}
