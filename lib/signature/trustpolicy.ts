// The notation trust policy (notaryproject "trust-store-trust-policy" spec): which statement
// applies to an image, what its verification level enforces or only logs, which signing
// identities it trusts, and whether a certificate chain leads to a trusted certificate.
// The trust store is the list of certificates the caller gives (as ig does, every named store
// of the policy is that one list).
import type { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { GadgetError, messageOf } from '../errors.js';
import { parseRef } from '../oci/reference.js';
import { subjectLine, type TrustedCert } from './keys.js';
import { extensionsOf, type Extensions } from './x509-extensions.js';

export type Validation = 'integrity' | 'authenticity' | 'authenticTimestamp' | 'expiry' | 'revocation';
export type Action = 'enforce' | 'log' | 'skip';
export type Level = 'strict' | 'permissive' | 'audit' | 'skip';

/** What each level does with a failed validation (the spec's table). */
const LEVELS: Record<Level, Record<Validation, Action>> = {
  strict: { integrity: 'enforce', authenticity: 'enforce', authenticTimestamp: 'enforce', expiry: 'enforce', revocation: 'enforce' },
  permissive: { integrity: 'enforce', authenticity: 'enforce', authenticTimestamp: 'log', expiry: 'log', revocation: 'log' },
  audit: { integrity: 'enforce', authenticity: 'log', authenticTimestamp: 'log', expiry: 'log', revocation: 'log' },
  skip: { integrity: 'skip', authenticity: 'skip', authenticTimestamp: 'skip', expiry: 'skip', revocation: 'skip' },
};
/** A registry scope other than "*": REGISTRY[:PORT]/REPOSITORY, as notation takes it. */
const REPOSITORY_SCOPE = /^[A-Za-z0-9.-]+(?::\d+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+$/;

const OVERRIDABLE: Record<string, Action[]> = {
  authenticity: ['enforce', 'log'],
  authenticTimestamp: ['enforce', 'log'],
  expiry: ['enforce', 'log'],
  revocation: ['enforce', 'log', 'skip'],
};

export interface TrustPolicy {
  name: string;
  registryScopes: string[];
  level: Level;
  actions: Record<Validation, Action>;
  /** "ca:name", "signingAuthority:name", "tsa:name" */
  trustStores: string[];
  /** "*" or parsed `x509.subject:` distinguished names */
  trustedIdentities: Array<'*' | Map<string, string>>;
}

export interface TrustPolicyDocument {
  /** For messages: the file the policy came from, or "the default policy". */
  source: string;
  policies: TrustPolicy[];
}

/** Used when certificates but no policy are given: strict, any identity the certificates vouch for. */
export function defaultTrustPolicy(): TrustPolicyDocument {
  return {
    source: 'the default trust policy (strict, any identity)',
    policies: [{
      name: 'default', registryScopes: ['*'], level: 'strict', actions: { ...LEVELS.strict },
      trustStores: ['ca:default', 'signingAuthority:default'], trustedIdentities: ['*'],
    }],
  };
}

/** Splits a distinguished name on unescaped commas; `\,` `\;` `\\` and `\ ` are escapes. */
export function parseDN(dn: string): Map<string, string> | undefined {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i]!;
    if (c === '\\' && i + 1 < dn.length) cur += dn[++i];
    else if (c === ',') { parts.push(cur); cur = ''; }
    else cur += c;
  }
  parts.push(cur);
  const out = new Map<string, string>();
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    const key = part.slice(0, eq).trim().toUpperCase();
    if (out.has(key)) return undefined;
    out.set(key, part.slice(eq + 1).trim());
  }
  return out;
}

function invalid(source: string, why: string): GadgetError {
  return new GadgetError(`the notation trust policy ${source} is invalid: ${why}`, {
    exitCode: 2,
    hint: 'see the notaryproject trust policy format: {"version":"1.0","trustPolicies":[{"name","registryScopes","signatureVerification":{"level"},"trustStores","trustedIdentities"}]}',
  });
}

function parseStatement(raw: unknown, source: string): TrustPolicy {
  const s = raw as Record<string, unknown> | null;
  if (!s || typeof s !== 'object' || typeof s.name !== 'string' || s.name === '') throw invalid(source, 'a statement has no name');
  const where = `statement "${s.name}"`;
  const scopes = s.registryScopes;
  if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((x) => typeof x === 'string' && x !== '')) {
    throw invalid(source, `${where} needs a non-empty "registryScopes" list`);
  }
  if (scopes.includes('*') && scopes.length > 1) throw invalid(source, `${where} mixes the global scope "*" with other scopes`);
  // A scope is "*" or a whole repository (notation allows no other wildcard): anything else would never match.
  const odd = (scopes as string[]).find((x) => x !== '*' && !REPOSITORY_SCOPE.test(x));
  if (odd !== undefined) throw invalid(source, `${where} has the registry scope "${odd}" (use "*" or a whole repository, REGISTRY/REPOSITORY, without tag or wildcard)`);
  const sv = s.signatureVerification as { level?: unknown; override?: unknown } | undefined;
  const level = sv?.level;
  if (typeof level !== 'string' || !Object.hasOwn(LEVELS, level)) {
    throw invalid(source, `${where} has level "${String(level)}" (use strict, permissive, audit or skip)`);
  }
  const actions = { ...LEVELS[level as Level] };
  if (sv!.override !== undefined) {
    if (level === 'skip' || typeof sv!.override !== 'object' || sv!.override === null) throw invalid(source, `${where} has an override that is not allowed here`);
    for (const [key, value] of Object.entries(sv!.override as Record<string, unknown>)) {
      if (!Object.hasOwn(OVERRIDABLE, key) || !OVERRIDABLE[key]!.includes(value as Action)) throw invalid(source, `${where} overrides "${key}" with "${String(value)}"`);
      actions[key as Validation] = value as Action;
    }
  }
  const stores = s.trustStores ?? [];
  const identities = s.trustedIdentities ?? [];
  if (!Array.isArray(stores) || !Array.isArray(identities)) throw invalid(source, `${where} needs "trustStores" and "trustedIdentities" lists`);
  if (level !== 'skip' && (stores.length === 0 || identities.length === 0)) {
    throw invalid(source, `${where} needs at least one trust store and one trusted identity`);
  }
  for (const store of stores) {
    if (typeof store !== 'string' || !/^(ca|signingAuthority|tsa):[A-Za-z0-9_.-]+$/.test(store)) {
      throw invalid(source, `${where} names the trust store "${String(store)}" (use ca:NAME, signingAuthority:NAME or tsa:NAME)`);
    }
  }
  const trustedIdentities = identities.map((id): '*' | Map<string, string> => {
    if (id === '*') return '*';
    const dn = typeof id === 'string' && id.startsWith('x509.subject:') ? parseDN(id.slice('x509.subject:'.length)) : undefined;
    if (!dn || !dn.has('C') || !dn.has('ST') || !dn.has('O')) {
      throw invalid(source, `${where} trusts "${String(id)}" (use "*" or "x509.subject: C=…, ST=…, O=…[, …]")`);
    }
    return dn;
  });
  if (trustedIdentities.includes('*') && trustedIdentities.length > 1) throw invalid(source, `${where} mixes "*" with other identities`);
  return { name: s.name, registryScopes: scopes as string[], level: level as Level, actions, trustStores: stores as string[], trustedIdentities };
}

/** Reads and validates a trust policy JSON file; GadgetError (exit 2) when it is unusable. */
export async function loadTrustPolicy(path: string): Promise<TrustPolicyDocument> {
  let doc: { version?: unknown; trustPolicies?: unknown };
  try {
    doc = JSON.parse(await readFile(path, 'utf8')) as typeof doc;
  } catch (err) {
    throw new GadgetError(`cannot read the notation trust policy "${path}": ${messageOf(err)}`, {
      exitCode: 2, hint: 'give the path of a notation trustpolicy.json file', cause: err,
    });
  }
  const source = `"${path}"`;
  if (!doc || doc.version !== '1.0') throw invalid(source, `its version is "${String(doc?.version)}", not "1.0"`);
  if (!Array.isArray(doc.trustPolicies) || doc.trustPolicies.length === 0) throw invalid(source, 'it has no "trustPolicies"');
  const policies = doc.trustPolicies.map((p) => parseStatement(p, source));
  const names = new Set(policies.map((p) => p.name));
  if (names.size !== policies.length) throw invalid(source, 'two statements share a name');
  if (policies.filter((p) => p.registryScopes.includes('*')).length > 1) throw invalid(source, 'more than one statement has the global scope "*"');
  const scopes = policies.flatMap((p) => p.registryScopes.filter((x) => x !== '*'));
  const twice = scopes.find((x, i) => scopes.indexOf(x) !== i);
  if (twice !== undefined) throw invalid(source, `the registry scope "${twice}" is in more than one statement`);
  return { source, policies };
}

/** The statement for an image: the one whose scope names its repository, else the global one. */
export function selectPolicy(doc: TrustPolicyDocument, reference?: string): TrustPolicy | string {
  let repository: string | undefined;
  if (reference !== undefined) {
    try {
      repository = parseRef(reference).name;
    } catch {
      repository = undefined;
    }
  }
  const exact = repository === undefined ? undefined : doc.policies.find((p) => p.registryScopes.includes(repository!));
  const chosen = exact ?? doc.policies.find((p) => p.registryScopes.includes('*'));
  if (chosen) return chosen;
  return repository === undefined
    ? `no statement of the trust policy ${doc.source} applies: it has no global scope "*" and no image reference was given`
    : `no statement of the trust policy ${doc.source} applies to ${repository}`;
}

/** Whether the leaf certificate's subject matches one of the policy's trusted identities. */
export function identityTrusted(leaf: X509Certificate, policy: TrustPolicy): boolean {
  const subject = new Map<string, string>();
  for (const line of leaf.subject.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) subject.set(line.slice(0, eq).trim().toUpperCase(), line.slice(eq + 1).trim());
  }
  return policy.trustedIdentities.some((id) => id === '*' || [...id].every(([k, v]) => subject.get(k) === v));
}

const CODE_SIGNING = '1.3.6.1.5.5.7.3.3';

/**
 * Checks that `chain` (leaf first) is linked, ends with a self-signed root, has a
 * code-signing leaf, and holds one of the trusted certificates. Returns the trusted
 * certificate found, or a phrase saying what is wrong.
 */
export function chainTrust(chain: X509Certificate[], trusted: TrustedCert[]): { anchor: TrustedCert } | { problem: string } {
  const leaf = chain[0]!;
  let extensions: Extensions[];
  try {
    extensions = chain.map(extensionsOf);
  } catch {
    return { problem: 'the certificate chain cannot be read: its extensions are not valid DER' };
  }
  // As notation requires of the signing certificate: no CA (unless it is its own root), the
  // code-signing usage when it lists extended usages, and digitalSignature when it lists usages.
  if (chain.length > 1 && (leaf.ca || extensions[0]!.ca)) return { problem: `the signing certificate ${subjectLine(leaf)} is a certificate authority, not a signing certificate` };
  if (leaf.keyUsage !== undefined && leaf.keyUsage.length > 0 && !leaf.keyUsage.includes(CODE_SIGNING)) {
    return { problem: `the signing certificate ${subjectLine(leaf)} is not a code-signing certificate` };
  }
  if (extensions[0]!.keyUsage && !extensions[0]!.keyUsage.digitalSignature) {
    return { problem: `the signing certificate ${subjectLine(leaf)} may not make digital signatures (its keyUsage lacks digitalSignature)` };
  }
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey)) {
      return { problem: `the certificate chain is broken: ${subjectLine(chain[i]!)} is not issued by ${subjectLine(chain[i + 1]!)}` };
    }
    // checkIssued() compares names, key ids and keyUsage, not basicConstraints: without this,
    // any code-signing leaf could issue a certificate claiming any subject.
    if (!chain[i + 1]!.ca) {
      return { problem: `the certificate chain is broken: ${subjectLine(chain[i + 1]!)} issued ${subjectLine(chain[i]!)} but is not a certificate authority (its basicConstraints do not say CA:TRUE)` };
    }
    // An issuer's pathLenConstraint bounds the CA certificates below it (the leaf not counted).
    const pathLen = extensions[i + 1]!.pathLen;
    if (pathLen !== undefined && i > pathLen) {
      return { problem: `the certificate chain is broken: ${subjectLine(chain[i + 1]!)} allows ${pathLen} certificate authorit${pathLen === 1 ? 'y' : 'ies'} below it, and the chain has ${i}` };
    }
  }
  const root = chain[chain.length - 1]!;
  // checkIssued() also wants keyCertSign, which a self-signed leaf may lack: compare names.
  if (root.subject !== root.issuer || !root.verify(root.publicKey)) {
    return { problem: `the certificate chain ends with ${subjectLine(root)}, which is not a self-signed root` };
  }
  const anchor = trusted.find((t) => chain.some((c) => c.raw.equals(t.cert.raw)));
  if (!anchor) {
    const which = trusted.length === 1 ? `the given trusted certificate ${trusted[0]!.label}` : `any of the ${trusted.length} given trusted certificates`;
    return { problem: `the certificate chain of the signing certificate ${subjectLine(leaf)} does not lead to ${which}` };
  }
  return { anchor };
}

export function isoTime(d: Date): string {
  return d.toISOString().replace(/\.000Z$/, 'Z');
}

/** A phrase when a certificate of the chain is not valid at `at`. */
export function validityProblem(chain: X509Certificate[], at: Date): string | undefined {
  for (const cert of chain) {
    const from = new Date(cert.validFrom);
    const to = new Date(cert.validTo);
    const which = cert === chain[0] ? 'the signing certificate' : 'the chain certificate';
    if (at > to) return `${which} ${subjectLine(cert)} expired on ${isoTime(to)}`;
    if (at < from) return `${which} ${subjectLine(cert)} is not valid before ${isoTime(from)}`;
  }
  return undefined;
}
