// Sigstore verification, offline, through the Sigstore project's own JavaScript verifier
// (@sigstore/verify): the certificate chain to a Fulcio CA of the trusted root, the SCTs,
// the transparency-log entry (inclusion proof with its signed checkpoint, or the signed
// entry timestamp; Rekor v1 and v2 bodies), RFC 3161 timestamps, validity windows and the
// signature. Everything comes from the trusted root file and the bundle: no network.
// This file adds what the library leaves to its caller: loading the trusted root, the
// identity policy (exact or regular-expression identity and issuer, as cosign's flags),
// and one sentence with a rule id for each way verification fails.
import { X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
// A dependency of @sigstore/bundle and @sigstore/verify (always installed with them): the
// generated TrustedRoot type is the one parser of trusted_root.json that toTrustMaterial accepts.
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { Verifier, toSignedEntity, toTrustMaterial, type Signer, type TrustMaterial } from '@sigstore/verify';
import { GadgetError, messageOf, usageError } from '../errors.js';
import type { SignatureRule } from './types.js';

export interface IdentityPolicy {
  identity?: string;
  identityRegexp?: RegExp;
  issuer?: string;
  issuerRegexp?: RegExp;
}

/** What keyless verification needs: a trusted root and who must have signed. */
export interface KeylessTrust {
  /** The trusted root file, for messages. */
  source: string;
  material: TrustMaterial;
  policy: IdentityPolicy;
}

export interface KeylessOptions {
  trustedRoot: string;
  identity?: string;
  identityRegexp?: string;
  issuer?: string;
  issuerRegexp?: string;
}

export type SigstoreOutcome =
  | { ok: true; signer: Signer; bundle: Bundle; who: string }
  | { ok: false; reason: string; rule: SignatureRule };

const EMPTY_ROOT = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] };

/** Reads a Sigstore trusted_root.json; GadgetError (exit 2) naming the file when unusable. */
export async function loadTrustedRoot(file: string, keys?: KeyObject[]): Promise<TrustMaterial> {
  let root: TrustedRoot;
  try {
    root = TrustedRoot.fromJSON(JSON.parse(await readFile(file, 'utf8')));
  } catch (err) {
    throw new GadgetError(`the trusted root "${file}" cannot be read: ${messageOf(err).replace(/\.$/, '')}`, {
      exitCode: 2, hint: 'give a Sigstore trusted_root.json (e.g. from `cosign trusted-root create` or the TUF repository), carried across the air gap', cause: err,
    });
  }
  if (root.certificateAuthorities.length === 0 && root.tlogs.length === 0 && !keys?.length) {
    throw usageError(`the trusted root "${file}" lists no certificate authority and no transparency log`, 'give a complete Sigstore trusted_root.json');
  }
  try {
    return toTrustMaterial(root, keys ? keyFinder(keys) : undefined);
  } catch (err) {
    throw usageError(`the trusted root "${file}" holds an unusable key or certificate: ${messageOf(err).replace(/\.$/, '')}`, 'give a Sigstore trusted_root.json');
  }
}

/** Trust material with only public keys (our own bundles carry no log entry). */
export function keyOnlyMaterial(keys: KeyObject[]): TrustMaterial {
  return toTrustMaterial(EMPTY_ROOT as unknown as TrustedRoot, keyFinder(keys));
}

// Bundles name their key by a free-form hint; with keys given on the command line, the one
// that verifies is the one: each candidate is tried by verifyWithKeys below.
function keyFinder(keys: KeyObject[]): (hint: string) => { publicKey: KeyObject; validFor: () => boolean } {
  return () => ({ publicKey: keys[0]!, validFor: () => true });
}

function compile(pattern: string | undefined, flag: string): RegExp | undefined {
  if (pattern === undefined) return undefined;
  try {
    return new RegExp(pattern);
  } catch (err) {
    throw usageError(`${flag} "${pattern}" is not a valid regular expression: ${messageOf(err).replace(/\.$/, '')}`, 'a JavaScript regular expression, unanchored as in cosign (e.g. ^https://github\\.com/myorg/)');
  }
}

/** Loads the trusted root and the identity policy; usage errors (exit 2) when incomplete. */
export async function loadKeylessTrust(opts: KeylessOptions): Promise<KeylessTrust> {
  if ((opts.identity === undefined) === (opts.identityRegexp === undefined) || (opts.issuer === undefined) === (opts.issuerRegexp === undefined)) {
    throw usageError(
      'keyless verification needs exactly one of --certificate-identity / --certificate-identity-regexp and one of --certificate-oidc-issuer / --certificate-oidc-issuer-regexp',
      'e.g. --certificate-identity you@example.com --certificate-oidc-issuer https://github.com/login/oauth',
    );
  }
  const policy: IdentityPolicy = {
    identity: opts.identity,
    identityRegexp: compile(opts.identityRegexp, '--certificate-identity-regexp'),
    issuer: opts.issuer,
    issuerRegexp: compile(opts.issuerRegexp, '--certificate-oidc-issuer-regexp'),
  };
  return { source: opts.trustedRoot, material: await loadTrustedRoot(opts.trustedRoot), policy };
}

/** A phrase when the signer does not match the policy (cosign's matching: exact, or an unanchored Go-style regexp). */
export function identityProblem(signer: Signer, policy: IdentityPolicy): { reason: string } | undefined {
  const san = signer.identity?.subjectAlternativeName;
  const issuer = signer.identity?.extensions?.issuer;
  const matches = (value: string | undefined, exact?: string, re?: RegExp): boolean =>
    value !== undefined && (exact !== undefined ? value === exact : re !== undefined ? re.test(value) : true);
  if (!matches(san, policy.identity, policy.identityRegexp)) {
    const wanted = policy.identity !== undefined ? `"${policy.identity}"` : `one matching /${policy.identityRegexp!.source}/`;
    return { reason: `the signing certificate's identity is "${san ?? '(none)'}", not ${wanted} (wrong identity)` };
  }
  if (!matches(issuer, policy.issuer, policy.issuerRegexp)) {
    const wanted = policy.issuer !== undefined ? `"${policy.issuer}"` : `one matching /${policy.issuerRegexp!.source}/`;
    return { reason: `the signing certificate's OIDC issuer is "${issuer ?? '(none)'}", not ${wanted} (wrong issuer)` };
  }
  return undefined;
}

/** One sentence and a rule for an error of @sigstore/verify or @sigstore/bundle. */
export function explainFailure(err: unknown, rootSource: string): { reason: string; rule: SignatureRule } {
  const e = err as { code?: string; message?: string; cause?: { message?: string } };
  const detail = [e.message, e.cause?.message].filter(Boolean).join(': ');
  const root = rootSource ? ` of ${rootSource}` : '';
  switch (e.code) {
    case 'CERTIFICATE_ERROR':
      if (/not valid or expired/.test(detail)) {
        return { rule: 'GADGET-SIGNATURE-EXPIRED', reason: 'the signing certificate was not valid at the time the signature was logged (expired or not yet valid)' };
      }
      if (/SCT/.test(detail)) {
        return { rule: 'GADGET-SIGNATURE-UNTRUSTED', reason: `the certificate's signed certificate timestamp does not verify with a CT log${root} (${detail})` };
      }
      return { rule: 'GADGET-SIGNATURE-UNTRUSTED', reason: `the signing certificate does not chain to a certificate authority${root} (untrusted CA: ${detail})` };
    case 'TLOG_INCLUSION_PROOF_ERROR':
      return { rule: 'GADGET-SIGNATURE-TLOG', reason: `the transparency log inclusion proof is invalid (${detail})` };
    case 'TLOG_INCLUSION_PROMISE_ERROR':
      return { rule: 'GADGET-SIGNATURE-TLOG', reason: `the transparency log's signed entry timestamp does not verify with a log key${root} (inclusion proof invalid)` };
    case 'TLOG_MISSING_INCLUSION_ERROR':
    case 'TLOG_ERROR':
    case 'TIMESTAMP_ERROR':
      return { rule: 'GADGET-SIGNATURE-TLOG', reason: `the signature's transparency log entry or timestamp cannot be verified (${detail})` };
    case 'TLOG_BODY_ERROR':
      return /digest|hash/.test(detail)
        ? { rule: 'GADGET-SIGNATURE-DIGEST', reason: `the transparency log entry records another digest than the signed content (digest mismatch: ${detail})` }
        : { rule: 'GADGET-SIGNATURE-INVALID', reason: `the transparency log entry does not match the signature (${detail})` };
    case 'SIGNATURE_ERROR':
    case 'PUBLIC_KEY_ERROR':
      return { rule: 'GADGET-SIGNATURE-INVALID', reason: `the signature does not verify (${detail})` };
    default:
      if (/checkpoint/i.test(detail)) return { rule: 'GADGET-SIGNATURE-TLOG', reason: `the transparency log checkpoint is invalid (${detail})` };
      return { rule: 'GADGET-SIGNATURE-INVALID', reason: `the Sigstore bundle is malformed or does not verify (${detail || messageOf(err)})` };
  }
}

function isSelfSigned(der: Buffer): boolean {
  try {
    const cert = new X509Certificate(der);
    return cert.subject === cert.issuer && cert.verify(cert.publicKey);
  } catch {
    return false;
  }
}

function who(signer: Signer): string {
  const id = signer.identity;
  return id?.subjectAlternativeName ? `${id.subjectAlternativeName} (issuer ${id.extensions?.issuer ?? 'unknown'})` : 'the given public key';
}

/** Parses a bundle's JSON; a failure outcome when it is not a valid bundle. */
export function parseBundle(json: unknown): { bundle: Bundle } | { ok: false; reason: string; rule: SignatureRule } {
  try {
    return { bundle: bundleFromJSON(json) };
  } catch (err) {
    return { ok: false, rule: 'GADGET-SIGNATURE-INVALID', reason: `the Sigstore bundle is malformed (${messageOf(err).replace(/\.$/, '')})` };
  }
}

/**
 * Verifies a keyless bundle (certificate, log entry, timestamps, signature) against the
 * trusted root and the identity policy. `artifact` is the signed bytes of a message
 * signature; DSSE envelopes carry their own payload.
 */
export function verifyKeyless(bundle: Bundle, trust: KeylessTrust, artifact?: Buffer): SigstoreOutcome {
  const vm = bundle.verificationMaterial.content;
  if (vm.$case === 'publicKey') {
    return { ok: false, rule: 'GADGET-SIGNATURE-INVALID', reason: 'the Sigstore bundle is signed with a public key, not a certificate: verify it with --key' };
  }
  if (vm.$case === 'x509CertificateChain' && vm.x509CertificateChain.certificates.slice(1).some((c) => isSelfSigned(c.rawBytes))) {
    // Roots come from the trusted root only; a bundle that ships one is refused (Sigstore's
    // conformance suite requires it; @sigstore/verify 3.1 does not check it).
    return { ok: false, rule: 'GADGET-SIGNATURE-UNTRUSTED', reason: 'the bundle\'s certificate chain includes a root certificate, which only the trusted root may provide (untrusted CA)' };
  }
  let signer: Signer;
  try {
    signer = new Verifier(trust.material).verify(toSignedEntity(bundle, artifact));
  } catch (err) {
    return { ok: false, ...explainFailure(err, `"${trust.source}"`) };
  }
  const wrong = identityProblem(signer, trust.policy);
  if (wrong) return { ok: false, rule: 'GADGET-SIGNATURE-IDENTITY', reason: wrong.reason };
  return { ok: true, signer, bundle, who: who(signer) };
}

/**
 * Verifies a bundle with public keys (any that verifies): offline and without a log entry
 * unless `material` (a trusted root with these keys) is given, which then requires one.
 */
/** The bundle without its transparency log entries and timestamps. */
function withoutLogProofs(bundle: Bundle): Bundle {
  return { ...bundle, verificationMaterial: { ...bundle.verificationMaterial, tlogEntries: [], timestampVerificationData: { rfc3161Timestamps: [] } } };
}

export async function verifyWithKeys(bundle: Bundle, keys: KeyObject[], artifact?: Buffer, rootFile?: string): Promise<SigstoreOutcome> {
  if (bundle.verificationMaterial.content.$case !== 'publicKey') {
    return { ok: false, rule: 'GADGET-SIGNATURE-INVALID', reason: 'the Sigstore bundle carries a certificate, not a public-key hint: verify it with --certificate-identity and --certificate-oidc-issuer' };
  }
  // Without a trusted root there is no log key to check a log entry or timestamp with: the
  // key's signature is what is verified, and the bundle's log entries are left aside (as an
  // image's bundle is verified with --key), instead of failing on a key the caller lacks.
  const checked = rootFile ? bundle : withoutLogProofs(bundle);
  let first: SigstoreOutcome | undefined;
  for (const key of keys) {
    const material = rootFile ? await loadTrustedRoot(rootFile, [key]) : keyOnlyMaterial([key]);
    const offline = rootFile ? {} : { tlogThreshold: 0, timestampThreshold: 0, ctlogThreshold: 0 };
    try {
      const signer = new Verifier(material, offline).verify(toSignedEntity(checked, artifact));
      return { ok: true, signer, bundle, who: who(signer) };
    } catch (err) {
      first ??= { ok: false, ...explainFailure(err, rootFile ? `"${rootFile}"` : '') };
    }
  }
  return first ?? { ok: false, rule: 'GADGET-SIGNATURE-INVALID', reason: 'no public key was given' };
}
