// Notation signatures (notaryproject "signature-envelope-jws"): a signature manifest, in the
// older form (config media type application/vnd.cncf.notary.signature) or the newer one
// (artifactType, empty config), whose one layer is a flattened JWS JSON envelope. Its payload
// names the signed artifact; the leaf certificate of the x5c chain signs it; the trust
// policy decides which failed validations fail the signature and which are only logged.
//
// Offline limits: revocation (OCSP/CRL) is not checked, and an RFC 3161 countersignature
// (io.cncf.notary.timestampSignature) is not verified, so certificate validity is judged at
// the current time, as the spec does when there is no timestamp. COSE envelopes
// (application/cose) are reported as unsupported: no fixture or ig build uses them.
import { X509Certificate } from 'node:crypto';
import type { Manifest } from '../oci/types.js';
import { messageOf } from '../errors.js';
import { readChecked } from './find.js';
import { decodeBase64, subjectLine, verifyWith, type SignatureAlgorithm, type TrustedCert } from './keys.js';
import { chainTrust, identityTrusted, isoTime, selectPolicy, validityProblem, type TrustPolicy, type TrustPolicyDocument, type Validation } from './trustpolicy.js';
import { COSE_MEDIA_TYPE, JWS_MEDIA_TYPE, MAX_SIGNATURE_BYTES, NOTATION_PAYLOAD_TYPE, type SignatureSource, type Verdict } from './types.js';

export interface NotationTrust {
  certs: TrustedCert[];
  policy: TrustPolicyDocument;
  /** The image's reference, to pick the policy statement by registryScopes. */
  reference?: string;
  /** Verification time; now unless a test says otherwise. */
  now?: Date;
}

const SCHEME = 'io.cncf.notary.signingScheme';
const EXPIRY = 'io.cncf.notary.expiry';
const AUTHENTIC_TIME = 'io.cncf.notary.authenticSigningTime';
const PLUGIN = 'io.cncf.notary.verificationPlugin';
const PLUGIN_MIN = 'io.cncf.notary.verificationPluginMinVersion';
const KNOWN_CRITICAL = new Set([SCHEME, EXPIRY, AUTHENTIC_TIME, PLUGIN, PLUGIN_MIN]);

/** JWS `alg` values notation allows, with the key each one needs. */
const ALGORITHMS: Record<string, { alg: SignatureAlgorithm; key: string }> = {
  PS256: { alg: { hash: 'sha256', rsa: 'pss' }, key: 'rsa:2048' },
  PS384: { alg: { hash: 'sha384', rsa: 'pss' }, key: 'rsa:3072' },
  PS512: { alg: { hash: 'sha512', rsa: 'pss' }, key: 'rsa:4096' },
  ES256: { alg: { hash: 'sha256', ecdsa: 'ieee-p1363' }, key: 'ec:prime256v1' },
  ES384: { alg: { hash: 'sha384', ecdsa: 'ieee-p1363' }, key: 'ec:secp384r1' },
  ES512: { alg: { hash: 'sha512', ecdsa: 'ieee-p1363' }, key: 'ec:secp521r1' },
};

function keySpec(cert: X509Certificate): string {
  const key = cert.publicKey;
  const d = key.asymmetricKeyDetails;
  return key.asymmetricKeyType === 'ec' ? `ec:${d?.namedCurve}` : `${key.asymmetricKeyType}:${d?.modulusLength}`;
}

interface Envelope {
  header: Record<string, unknown>;
  chain: X509Certificate[];
  signingInput: Buffer;
  signature: Buffer;
  payload: Buffer;
}

/** Parses a JWS envelope; a phrase when it is not one notation could have written. */
function parseJws(bytes: Buffer): Envelope | string {
  let env: { payload?: unknown; protected?: unknown; header?: { x5c?: unknown }; signature?: unknown };
  try {
    env = JSON.parse(bytes.toString('utf8')) as typeof env;
  } catch {
    return 'the JWS envelope is not JSON';
  }
  const payload = decodeBase64(env?.payload);
  const protectedBytes = decodeBase64(env?.protected);
  const signature = decodeBase64(env?.signature);
  if (!payload || !protectedBytes || !signature) return 'the JWS envelope lacks its payload, protected header or signature';
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(protectedBytes.toString('utf8')) as Record<string, unknown>;
    if (header === null || typeof header !== 'object') return 'the JWS protected header is not a JSON object';
  } catch {
    return 'the JWS protected header is not JSON';
  }
  const x5c = env.header?.x5c;
  if (!Array.isArray(x5c) || x5c.length === 0) return 'the JWS envelope has no x5c certificate chain';
  const chain: X509Certificate[] = [];
  for (const der of x5c) {
    const raw = decodeBase64(der);
    try {
      if (!raw) throw new Error('not base64');
      chain.push(new X509Certificate(raw));
    } catch {
      return 'a certificate in the x5c chain of the JWS envelope cannot be parsed';
    }
  }
  const signingInput = Buffer.from(`${String(env.protected)}.${String(env.payload)}`, 'ascii');
  return { header, chain, signingInput, signature, payload };
}

/** Checks the protected header notation requires; a phrase when something is off. */
function headerProblem(header: Record<string, unknown>): string | undefined {
  if (header.cty !== NOTATION_PAYLOAD_TYPE) return `the signed content type is "${String(header.cty)}", not "${NOTATION_PAYLOAD_TYPE}"`;
  const crit = header.crit;
  if (!Array.isArray(crit) || !crit.includes(SCHEME)) return `the protected header does not mark ${SCHEME} as critical`;
  for (const name of crit) {
    if (!KNOWN_CRITICAL.has(String(name))) return `the protected header marks "${String(name)}" as critical, which this verifier does not understand`;
    if (header[String(name)] === undefined) return `the protected header marks "${String(name)}" as critical but does not set it`;
  }
  for (const name of [EXPIRY, AUTHENTIC_TIME, PLUGIN, PLUGIN_MIN]) {
    if (header[name] !== undefined && !crit.includes(name)) return `the protected header sets ${name} without marking it critical`;
  }
  if (header[PLUGIN] !== undefined) return `the signature requires the verification plugin "${String(header[PLUGIN])}", which this verifier cannot run`;
  const scheme = header[SCHEME];
  if (scheme !== 'notary.x509' && scheme !== 'notary.x509.signingAuthority') return `the signing scheme "${String(scheme)}" is not supported`;
  if (scheme === 'notary.x509.signingAuthority' && typeof header[AUTHENTIC_TIME] !== 'string') {
    return `the signingAuthority scheme needs ${AUTHENTIC_TIME}, which the protected header lacks`;
  }
  return undefined;
}

function parseTime(value: unknown): Date | undefined {
  if (typeof value !== 'string') return undefined;
  const t = new Date(value);
  return Number.isNaN(t.getTime()) ? undefined : t;
}

/** Verifies a notation signature manifest of `digest` against the trust store and policy. */
export async function verifyNotation(src: SignatureSource, digest: string, manifest: Manifest, trust: NotationTrust): Promise<Verdict> {
  if (trust.certs.length === 0) return { ok: false, reason: 'no notation certificate was given to check this notation signature' };
  const policy: TrustPolicy | string = selectPolicy(trust.policy, trust.reference);
  if (typeof policy === 'string') return { ok: false, reason: policy };
  if (policy.level === 'skip') {
    return { ok: true, reason: `trust policy "${policy.name}" has level skip, so the notation signature was accepted without verification` };
  }
  const fail = (reason: string): Verdict => ({ ok: false, reason });

  // Integrity: always enforced.
  if (manifest.layers.length !== 1) return fail(`the notation signature manifest has ${manifest.layers.length} layers, not one envelope`);
  const layer = manifest.layers[0]!;
  if (layer.mediaType === COSE_MEDIA_TYPE) return fail('the notation signature is a COSE envelope, which this verifier does not support yet');
  if (layer.mediaType !== JWS_MEDIA_TYPE) return fail(`the notation envelope has media type "${String(layer.mediaType)}", which is not a signature envelope`);
  let bytes: Buffer;
  try {
    bytes = await readChecked(src, layer, 'notation envelope', MAX_SIGNATURE_BYTES);
  } catch (err) {
    return { ok: false, reason: messageOf(err) };
  }
  const env = parseJws(bytes);
  if (typeof env === 'string') return fail(env);
  const bad = headerProblem(env.header);
  if (bad) return fail(bad);
  const leaf = env.chain[0]!;
  const spec = ALGORITHMS[String(env.header.alg)];
  if (!spec) return fail(`the JWS algorithm "${String(env.header.alg)}" is not one notation allows`);
  if (spec.key !== keySpec(leaf)) return fail(`the JWS algorithm ${String(env.header.alg)} does not match the ${keySpec(leaf)} key of the signing certificate`);
  if (!verifyWith(leaf.publicKey, spec.alg, env.signingInput, env.signature)) {
    return fail(`the notation signature does not verify with the key of its signing certificate ${subjectLine(leaf)}`);
  }
  let target: unknown;
  try {
    target = (JSON.parse(env.payload.toString('utf8')) as { targetArtifact?: { digest?: unknown } } | null)?.targetArtifact?.digest;
  } catch {
    return fail('the signed notation payload is not JSON');
  }
  if (target !== digest) return fail(`the signed notation payload names ${String(target)}, not the image ${digest}`);

  // The other validations: enforced or logged as the policy's level says.
  const logged: string[] = [];
  const check = (validation: Validation, problem: string | undefined): Verdict | undefined => {
    if (problem === undefined || policy.actions[validation] === 'skip') return undefined;
    if (policy.actions[validation] === 'enforce') return fail(`${problem} (enforced by trust policy "${policy.name}", level ${policy.level})`);
    logged.push(problem);
    return undefined;
  };

  const authority = env.header[SCHEME] === 'notary.x509.signingAuthority';
  const storeType = authority ? 'signingAuthority:' : 'ca:';
  const trusted = chainTrust(env.chain, trust.certs);
  const authProblem = !policy.trustStores.some((s) => s.startsWith(storeType))
    ? `trust policy "${policy.name}" lists no ${storeType.slice(0, -1)} trust store for this signing scheme`
    : 'problem' in trusted ? trusted.problem
    : !identityTrusted(leaf, policy) ? `the signing identity ${subjectLine(leaf)} is not among the trusted identities of policy "${policy.name}"`
    : undefined;
  const now = trust.now ?? new Date();
  const expiry = parseTime(env.header[EXPIRY]);
  const signedAt = authority ? parseTime(env.header[AUTHENTIC_TIME]) ?? now : now;
  const failed = check('authenticity', authProblem)
    ?? check('expiry', expiry && now >= expiry ? `the notation signature expired on ${isoTime(expiry)}` : undefined)
    ?? check('authenticTimestamp', validityProblem(env.chain, signedAt));
  if (failed) return failed;

  const by = 'anchor' in trusted ? `the trusted certificate ${trusted.anchor.label}` : `the certificate ${subjectLine(leaf)}`;
  const how = `under trust policy "${policy.name}" (${policy.level})`;
  const note = logged.length > 0 ? `, which logs but does not enforce: ${logged.join('; ')}` : '';
  return { ok: true, reason: `the notation signature of ${digest} verifies with ${by} ${how}${note}`, keyOrCert: 'anchor' in trusted ? trusted.anchor.label : subjectLine(leaf) };
}
