// Signatures, checked on the image's root (index) digest as ig does, through lib/signature:
// the store seen as a SignatureSource, and the verdict turned into findings.
import { usageError } from '../../lib/errors.js';
import { createSignatureVerifier, type KeylessOptions, type SignatureVerifier } from '../../lib/signature/index.js';
import { MAX_SIGNATURE_BYTES, type SignatureSource } from '../../lib/signature/types.js';
import type { Descriptor } from '../../lib/oci/types.js';
import { descriptorOfEntry } from '../../store/db.js';
import type { Store } from '../../store/store.js';
import type { Problem, SignatureSummary } from './report.js';

export interface SignatureSettings {
  /** cosign public keys (PEM files); any key that verifies is enough. */
  keys?: string[];
  /** notation trusted certificates (PEM or DER files). */
  notationCerts?: string[];
  /** notation trust policy (JSON); without it: strict, any identity the certificates vouch for. */
  notationPolicy?: string;
  /** Keyless cosign signatures: a Sigstore trusted root and the identity and issuer that must have signed. */
  keyless?: KeylessOptions;
  /** A missing signature is an error, not a warning. */
  requireSignature?: boolean;
}

/** The store as lib/signature reads it: tags from index.json, referrers from the index. */
export function storeSignatureSource(store: Store): SignatureSource {
  return {
    read: (digest) => store.readBytes(digest, MAX_SIGNATURE_BYTES),
    async resolveTag(tag) {
      const entry = store.entryByRef(tag);
      return entry ? descriptorOfEntry(entry) : undefined;
    },
    async referrers(digest) {
      const subject: Descriptor = { mediaType: '', digest, size: 0 };
      return (await store.referrers(subject)).map((r) => r.descriptor);
    },
  };
}

/** Loads keys and certificates once, or undefined when no signature is to be checked. */
export async function loadSignatureVerifier(settings: SignatureSettings): Promise<SignatureVerifier | undefined> {
  const material = (settings.keys?.length ?? 0) + (settings.notationCerts?.length ?? 0) + (settings.keyless ? 1 : 0);
  if (material === 0) {
    if (settings.requireSignature) {
      throw usageError('--require-signature needs a key to verify with', 'give --key FILE (cosign public key), --trusted-root FILE with --certificate-identity and --certificate-oidc-issuer, and/or --notation-cert FILE');
    }
    if (settings.notationPolicy !== undefined) {
      throw usageError('--notation-policy needs at least one --notation-cert FILE', 'give the trusted certificate(s) the policy refers to');
    }
    return undefined;
  }
  return createSignatureVerifier({ cosignKeys: settings.keys, notationCerts: settings.notationCerts, notationPolicy: settings.notationPolicy, keyless: settings.keyless });
}

/** Verifies the signatures of one image; the findings name the root digest and "/signatures". */
export async function checkSignatures(
  verifier: SignatureVerifier,
  source: SignatureSource,
  digest: string,
  reference: string | undefined,
): Promise<{ problems: Problem[]; summary: SignatureSummary }> {
  const result = await verifier(source, digest, reference);
  const summary: SignatureSummary = { verified: result.verified, reason: result.reason, found: result.found };
  if (result.verified) return { problems: [], summary };
  const rule = result.found.length === 0 ? 'GADGET-SIGNATURE-MISSING' : result.rule ?? 'GADGET-SIGNATURE-INVALID';
  return { problems: [{ rule, digest, path: '/signatures', message: result.reason }], summary };
}
