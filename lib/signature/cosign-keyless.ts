// Keyless cosign signatures in the legacy form (a `sha256-<hex>.sig` layer whose annotations
// hold the Fulcio certificate, its chain, and a Rekor "bundle": the signed entry timestamp
// over the hashedrekord log entry).
//
// Why convert rather than verify piecewise: that annotation set is exactly a Sigstore bundle
// v0.1 in other clothes (a message signature over the payload, an X.509 chain, one log entry
// with an inclusion promise), which is how cosign and sigstore-go themselves read it. Turned
// into that bundle, it goes through @sigstore/verify's one Verifier, which then checks the
// chain to the trusted root's Fulcio CA, the SCT, the SET with the trusted root's Rekor key,
// that the log entry's body names this payload's digest and signature, the certificate's
// validity at the logged time, and the signature. Calling the library's lower-level pieces
// one by one would re-create that order of checks here, where a step could be forgotten.
// Only the leaf certificate is carried over, not the chain annotation: Sigstore verifiers
// build the path from the trusted root alone, never from CAs a signature brings (and cosign
// writes the root itself into that annotation, which a bundle's chain must not hold).
import { createHash } from 'node:crypto';
import type { Descriptor } from '../oci/types.js';
import { COSIGN_BUNDLE_ANNOTATION, COSIGN_CERTIFICATE_ANNOTATION, COSIGN_SIGNATURE_ANNOTATION } from './types.js';

const PEM_CERT = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;

/** Base64 DER of each certificate in a PEM text. */
function certificatesOf(pem: string | undefined): string[] {
  return pem ? [...pem.matchAll(PEM_CERT)].map((m) => m[1]!.replace(/\s+/g, '')) : [];
}

/** Whether a cosign layer carries a keyless (certificate) signature. */
export function isKeylessLayer(layer: Descriptor): boolean {
  return typeof layer.annotations?.[COSIGN_CERTIFICATE_ANNOTATION] === 'string';
}

interface RekorBundle {
  SignedEntryTimestamp?: unknown;
  Payload?: { body?: unknown; integratedTime?: unknown; logIndex?: unknown; logID?: unknown };
}

/**
 * The Sigstore bundle v0.1 (JSON, for bundleFromJSON) equivalent to a keyless legacy layer
 * whose payload bytes are `payload`, or why the annotations cannot form one.
 */
export function legacyLayerToBundle(layer: Descriptor, payload: Buffer): { json: unknown } | { problem: string } {
  const a = layer.annotations ?? {};
  const certificates = certificatesOf(a[COSIGN_CERTIFICATE_ANNOTATION]).slice(0, 1);
  const tlogEntries: unknown[] = [];
  const raw = a[COSIGN_BUNDLE_ANNOTATION];
  if (raw !== undefined) {
    let rekor: RekorBundle;
    try {
      rekor = JSON.parse(raw) as RekorBundle;
    } catch {
      return { problem: 'the dev.sigstore.cosign/bundle annotation is not JSON' };
    }
    const p = rekor?.Payload;
    let body: { kind?: unknown; apiVersion?: unknown } = {};
    try {
      body = JSON.parse(Buffer.from(String(p?.body ?? ''), 'base64').toString('utf8')) as typeof body;
    } catch {
      return { problem: 'the Rekor entry body in the dev.sigstore.cosign/bundle annotation is not JSON' };
    }
    if (typeof p?.logID !== 'string' || !/^[0-9a-f]+$/i.test(p.logID)) return { problem: 'the Rekor log ID in the dev.sigstore.cosign/bundle annotation is not hex' };
    tlogEntries.push({
      logIndex: String(p.logIndex),
      logId: { keyId: Buffer.from(p.logID, 'hex').toString('base64') },
      kindVersion: { kind: String(body.kind), version: String(body.apiVersion) },
      integratedTime: String(p.integratedTime),
      inclusionPromise: { signedEntryTimestamp: String(rekor.SignedEntryTimestamp ?? '') },
      canonicalizedBody: String(p.body),
    });
  }
  const json = {
    mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
    verificationMaterial: {
      x509CertificateChain: { certificates: certificates.map((rawBytes) => ({ rawBytes })) },
      tlogEntries,
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    messageSignature: {
      messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(payload).digest('base64') },
      signature: a[COSIGN_SIGNATURE_ANNOTATION] ?? '',
    },
  };
  return { json };
}
