// Types and constants shared by the signature verifiers. The verifiers read through a
// SignatureSource so that the same code works on the local store and on a registry.
import type { Descriptor } from '../oci/types.js';

export interface SignatureSource {
  /** bytes of a blob/manifest by digest (verified); throws if absent */
  read(digest: string): Promise<Buffer>;
  /** descriptor tagged `tag` (bare tag like 'sha256-<hex>.sig' or 'sha256-<hex>'), or undefined */
  resolveTag(tag: string): Promise<Descriptor | undefined>;
  /** manifests whose `subject` is `digest` (OCI 1.1 referrers), may be [] */
  referrers(digest: string): Promise<Descriptor[]>;
}

export type SignatureKind = 'cosign-legacy' | 'cosign-oci11' | 'cosign-bundle' | 'notation';

/**
 * Why a signature failed, as the rule id `gadget verify` reports (plugins/verify/rules.ts
 * describes each): a bad signature, the wrong signer identity or issuer, a certificate that
 * does not chain to a trusted CA, one that was not valid at signing time, a transparency-log
 * entry that does not prove inclusion, or a signature over another digest.
 */
export type SignatureRule =
  | 'GADGET-SIGNATURE-INVALID'
  | 'GADGET-SIGNATURE-IDENTITY'
  | 'GADGET-SIGNATURE-UNTRUSTED'
  | 'GADGET-SIGNATURE-EXPIRED'
  | 'GADGET-SIGNATURE-TLOG'
  | 'GADGET-SIGNATURE-DIGEST';

/** The outcome of checking one signature manifest. */
export interface Verdict {
  ok: boolean;
  /** One sentence, lowercase and without a full stop ("the cosign signature of … verifies with …"). */
  reason: string;
  /** Set when !ok and the failure is more specific than GADGET-SIGNATURE-INVALID. */
  rule?: SignatureRule;
  /** Which key or trusted certificate verified it (set when ok). */
  keyOrCert?: string;
}

// Signature formats that lib/oci/mediatypes.ts does not list (only the verifiers need them).
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const COSIGN_PAYLOAD_TYPE = 'cosign container image signature';
export const JWS_MEDIA_TYPE = 'application/jose+json';
export const COSE_MEDIA_TYPE = 'application/cose';
export const NOTATION_PAYLOAD_TYPE = 'application/vnd.cncf.notary.payload.v1+json';
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const INTOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
// Keyless cosign signatures in the legacy `.sig` form carry their material in annotations.
export const COSIGN_CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
export const COSIGN_CHAIN_ANNOTATION = 'dev.sigstore.cosign/chain';
export const COSIGN_BUNDLE_ANNOTATION = 'dev.sigstore.cosign/bundle';

/** The largest signature blob (payload, bundle, envelope) read into memory. */
export const MAX_SIGNATURE_BYTES = 4 * 1024 * 1024;
