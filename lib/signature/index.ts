// Signature verification of gadget images, as ig does it: on the digest of the image index,
// with cosign public keys (legacy tag, OCI 1.1 referrer, Sigstore bundle), keyless cosign
// signatures (a trusted root and the signer's identity and issuer), and/or notation
// certificates with a trust policy. Any key or certificate that verifies any signature is
// enough. Offline, always.
import { isDigest } from '../oci/digest.js';
import { usageError } from '../errors.js';
import { verifyBundle } from './bundle.js';
import { verifyCosign } from './cosign.js';
import { findSignatures, signatureTags, type SignatureCandidate } from './find.js';
import { loadCertificates, loadPublicKeys, type PublicKeyEntry } from './keys.js';
import { verifyNotation } from './notation.js';
import type { KeylessOptions, KeylessTrust } from './sigstore.js';
import { defaultTrustPolicy, loadTrustPolicy, type TrustPolicyDocument } from './trustpolicy.js';
import type { SignatureKind, SignatureRule, SignatureSource, Verdict } from './types.js';
import type { TrustedCert } from './keys.js';

export type { SignatureKind, SignatureRule, SignatureSource, Verdict } from './types.js';
export type { KeylessOptions } from './sigstore.js';

export interface SignatureOptions {
  /** cosign public keys: PEM file paths or PEM strings */
  cosignKeys?: string[];
  /** notation trusted (root) certificates: PEM/DER file paths or PEM strings */
  notationCerts?: string[];
  /** path to a notation trust policy JSON; without it: strict, any identity the certificates vouch for */
  notationPolicy?: string;
  /** the image's reference (e.g. "ghcr.io/org/x:tag"), to pick the notation policy statement by registryScopes */
  reference?: string;
  /** keyless cosign signatures: a Sigstore trusted root and the identity and issuer that must have signed */
  keyless?: KeylessOptions;
}

export interface FoundSignature {
  kind: SignatureKind;
  /** digest of the signature manifest */
  digest: string;
  ok: boolean;
  /** one sentence */
  reason: string;
  keyOrCert?: string;
  /** why it failed, when more specific than GADGET-SIGNATURE-INVALID */
  rule?: SignatureRule;
}

export interface SignatureResult {
  verified: boolean;
  found: FoundSignature[];
  /** one sentence summing up the result (quoting the first failure's reason when none verifies) */
  reason: string;
  /** when signatures exist and none verifies: the rule of the first failure */
  rule?: SignatureRule;
}

/** Verifies the signatures of one image; the material is loaded once for many images. */
export type SignatureVerifier = (src: SignatureSource, indexDigest: string, reference?: string) => Promise<SignatureResult>;

async function check(src: SignatureSource, digest: string, c: SignatureCandidate, keys: PublicKeyEntry[],
  certs: TrustedCert[], policy: TrustPolicyDocument, reference: string | undefined, keyless: KeylessTrust | undefined): Promise<Verdict> {
  if (c.problem !== undefined || !c.manifest) return { ok: false, reason: c.problem ?? 'the signature manifest cannot be read' };
  switch (c.kind) {
    case 'cosign-legacy':
    case 'cosign-oci11':
      return verifyCosign(src, digest, c.manifest, keys, keyless);
    case 'cosign-bundle':
      return verifyBundle(src, digest, c.manifest, keys, keyless);
    case 'notation':
      return verifyNotation(src, digest, c.manifest, { certs, policy, reference });
  }
}

function summary(digest: string, found: FoundSignature[], unreadable: string[]): string {
  const good = found.find((f) => f.ok);
  if (good) return good.reason;
  if (found.length === 0) {
    const tags = signatureTags(digest);
    const missing = unreadable.length > 0 ? `; ${unreadable.length} signature manifest(s) listed for it are not in the store` : '';
    return `no signature of ${digest} was found (looked for the tags ${tags.legacy} and ${tags.fallback} and for referrers${missing})`;
  }
  const first = found[0]!;
  const why = first.reason.charAt(0).toLowerCase() + first.reason.slice(1);
  return found.length === 1
    ? `the only signature of ${digest} (${first.kind} ${first.digest}) fails: ${why}`
    : `none of the ${found.length} signatures of ${digest} verifies; the first (${first.kind} ${first.digest}) fails: ${why}`;
}

/** Loads keys, certificates and policy once; GadgetError (exit 2) when they are unusable. */
export async function createSignatureVerifier(opts: SignatureOptions): Promise<SignatureVerifier> {
  const keys = await loadPublicKeys(opts.cosignKeys ?? []);
  const certs = await loadCertificates(opts.notationCerts ?? []);
  const keyless = opts.keyless ? await (await import('./sigstore.js')).loadKeylessTrust(opts.keyless) : undefined;
  if (keys.length === 0 && certs.length === 0 && !keyless) {
    throw usageError(
      'no cosign public key and no notation certificate (nor a trusted root for keyless signatures) was given, so no signature can be verified',
      'give a cosign public key (PEM), a trusted root with the signer\'s identity and issuer, and/or a notation certificate with its trust policy',
    );
  }
  const policy = opts.notationPolicy !== undefined ? await loadTrustPolicy(opts.notationPolicy) : defaultTrustPolicy();
  return async (src, indexDigest, reference = opts.reference) => {
    if (!isDigest(indexDigest)) throw usageError(`"${indexDigest}" is not a sha256 digest, so its signatures cannot be looked up`, 'give the image by reference or by its sha256:<64 hex> digest');
    const { candidates, unreadable } = await findSignatures(src, indexDigest);
    const found: FoundSignature[] = [];
    for (const c of candidates) {
      const v = await check(src, indexDigest, c, keys, certs, policy, reference, keyless);
      found.push({
        kind: c.kind, digest: c.digest, ok: v.ok, reason: v.reason,
        ...(v.keyOrCert !== undefined ? { keyOrCert: v.keyOrCert } : {}),
        ...(!v.ok && v.rule !== undefined ? { rule: v.rule } : {}),
      });
    }
    const verified = found.some((f) => f.ok);
    const rule = verified ? undefined : found[0]?.rule;
    return { verified, found, reason: summary(indexDigest, found, unreadable), ...(rule ? { rule } : {}) };
  };
}

/** Verifies the signatures on the image index `indexDigest`: verified when any one verifies. */
export async function verifySignatures(src: SignatureSource, indexDigest: string, opts: SignatureOptions): Promise<SignatureResult> {
  return (await createSignatureVerifier(opts))(src, indexDigest, opts.reference);
}
