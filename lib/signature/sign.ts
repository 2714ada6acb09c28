// Signing: the bytes of the signature artifacts that cosign writes, made here so that what
// this project signs is what cosign and ig verify (and what lib/signature's verifiers accept).
// - the legacy form: a simple-signing payload naming the digest, signed (ECDSA in DER, as
//   cosign), as one layer of the `sha256-<hex>.sig` manifest with its signature in the layer
//   annotation; cosign's config lists the layers' digests as diff_ids.
// - the bundle form: a Sigstore bundle v0.3 holding a DSSE envelope (one signature) of an
//   in-toto statement whose subject is the digest, attached as an OCI 1.1 referrer.
// Builders only: plugins/sign.ts writes the results to the store or a registry.
import { createHash, sign } from 'node:crypto';
import { digestHex, sha256 } from '../oci/digest.js';
import { encodeJSONBytes } from '../oci/json.js';
import { COSIGN_SIMPLESIGNING, EMPTY_BYTES, EMPTY_DIGEST, MT_EMPTY, MT_MANIFEST, MT_OCI_CONFIG, SIGSTORE_BUNDLE } from '../oci/mediatypes.js';
import type { Descriptor } from '../oci/types.js';
import { pae } from './bundle.js';
import { cosignAlgorithm } from './keys.js';
import type { SigningKey } from './private-keys.js';
import { COSIGN_PAYLOAD_TYPE, COSIGN_SIGNATURE_ANNOTATION, INTOTO_PAYLOAD_TYPE, INTOTO_STATEMENT_V1 } from './types.js';

/** The predicate type `cosign sign --new-bundle-format` uses for an image signature. */
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

/** A blob or manifest to write, with its descriptor. */
export interface Blob {
  descriptor: Descriptor;
  bytes: Buffer;
}

export function blob(mediaType: string, bytes: Buffer): Blob {
  return { descriptor: { mediaType, digest: sha256(bytes), size: bytes.length }, bytes };
}

export const EMPTY_CONFIG: Blob = { descriptor: { mediaType: MT_EMPTY, digest: EMPTY_DIGEST, size: EMPTY_BYTES.length }, bytes: EMPTY_BYTES };

/** Signs `data` as cosign does with this key type (ECDSA/RSA over SHA-256, DER ECDSA; ed25519 plain). */
export function signBytes(key: SigningKey, data: Buffer): Buffer {
  const alg = cosignAlgorithm(key.publicKey);
  return key.privateKey.asymmetricKeyType === 'ec'
    ? sign(alg.hash, data, { key: key.privateKey, dsaEncoding: 'der' })
    : sign(alg.hash, data, key.privateKey);
}

/** A short, stable name for a public key (bundles carry it as the key hint). */
export function keyHint(key: SigningKey): string {
  return createHash('sha256').update(key.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
}

/**
 * cosign's simple-signing payload: Go's field order, `optional` holding the signer's
 * annotations (null without any), so the same digest and annotations give the same bytes.
 */
export function simpleSigningPayload(digest: string, repository: string, annotations: Record<string, string> = {}): Buffer {
  // A Go map: sorted keys.
  const keys = Object.keys(annotations).sort();
  const optional = keys.length > 0 ? Object.fromEntries(keys.map((k) => [k, annotations[k]])) : null;
  return encodeJSONBytes({
    critical: { identity: { 'docker-reference': repository }, image: { 'docker-manifest-digest': digest }, type: COSIGN_PAYLOAD_TYPE },
    optional,
  });
}

/** The `.sig` layer for a payload: the payload blob's descriptor with the signature annotation. */
export function cosignLayer(payload: Buffer, signature: Buffer): Descriptor {
  return { ...blob(COSIGN_SIMPLESIGNING, payload).descriptor, annotations: { [COSIGN_SIGNATURE_ANNOTATION]: signature.toString('base64') } };
}

/** The `.sig` manifest over these layers and its config, byte for byte as cosign writes them. */
export function cosignSignatureManifest(layers: Descriptor[]): { config: Blob; manifest: Blob } {
  const config = blob(MT_OCI_CONFIG, encodeJSONBytes({
    architecture: '',
    created: '0001-01-01T00:00:00Z',
    history: layers.map(() => ({ created: '0001-01-01T00:00:00Z' })),
    os: '',
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    config: {},
  }));
  const manifest = blob(MT_MANIFEST, encodeJSONBytes({
    schemaVersion: 2,
    mediaType: MT_MANIFEST,
    config: config.descriptor,
    layers: layers.map((l) => ({ mediaType: l.mediaType, size: l.size, digest: l.digest, annotations: l.annotations })),
  }));
  return { config, manifest };
}

/** The in-toto statement naming the image: what the bundle form signs. */
export function imageStatement(digest: string, repository: string): Buffer {
  return encodeJSONBytes({
    _type: INTOTO_STATEMENT_V1,
    subject: [{ name: repository, digest: { sha256: digestHex(digest) } }],
    predicateType: COSIGN_SIGN_PREDICATE,
    predicate: {},
  });
}

/** A Sigstore bundle v0.3: DSSE envelope of `statement`, one signature, the key named by its hint. */
export function dsseBundle(key: SigningKey, statement: Buffer): Buffer {
  const signature = signBytes(key, pae(INTOTO_PAYLOAD_TYPE, statement));
  return encodeJSONBytes({
    mediaType: SIGSTORE_BUNDLE,
    verificationMaterial: { publicKey: { hint: keyHint(key) }, tlogEntries: [], timestampVerificationData: { rfc3161Timestamps: [] } },
    dsseEnvelope: { payload: statement.toString('base64'), payloadType: INTOTO_PAYLOAD_TYPE, signatures: [{ sig: signature.toString('base64'), keyid: '' }] },
  });
}

/** The referrer manifest carrying a bundle, as cosign attaches it (artifactType = bundle type, empty config). */
export function bundleReferrerManifest(subject: Descriptor, bundle: Blob, annotations: Record<string, string> = {}): Blob {
  return blob(MT_MANIFEST, encodeJSONBytes({
    schemaVersion: 2,
    mediaType: MT_MANIFEST,
    artifactType: SIGSTORE_BUNDLE,
    config: EMPTY_CONFIG.descriptor,
    layers: [bundle.descriptor],
    annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': COSIGN_SIGN_PREDICATE, ...annotations },
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
  }));
}
