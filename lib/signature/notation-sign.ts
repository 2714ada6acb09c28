// Notation signing (notaryproject "signature-envelope-jws", scheme notary.x509): a flattened
// JWS JSON envelope whose payload names the image descriptor, signed by the leaf of the
// given certificate chain, in the newer manifest form (artifactType
// application/vnd.cncf.notary.signature, the empty config) that notation 1.x writes and ig
// and notation.ts here verify.
import { X509Certificate, createHash, sign, constants } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { GadgetError, messageOf } from '../errors.js';
import { encodeJSONBytes } from '../oci/json.js';
import { MT_MANIFEST, NOTATION_SIGNATURE } from '../oci/mediatypes.js';
import type { Descriptor } from '../oci/types.js';
import type { SigningKey } from './private-keys.js';
import { blob, EMPTY_CONFIG, type Blob } from './sign.js';
import { JWS_MEDIA_TYPE, NOTATION_PAYLOAD_TYPE } from './types.js';
import { packageVersion } from '../version.js';

const THUMBPRINTS = 'io.cncf.notary.x509chain.thumbprint#S256';

/** The JWS algorithm notation uses for a key: ES256/384/512 by curve, PS256/384/512 by RSA size. */
function algorithmFor(key: SigningKey): { alg: string; hash: string } | undefined {
  const d = key.publicKey.asymmetricKeyDetails;
  if (key.publicKey.asymmetricKeyType === 'ec') {
    return ({ prime256v1: { alg: 'ES256', hash: 'sha256' }, secp384r1: { alg: 'ES384', hash: 'sha384' }, secp521r1: { alg: 'ES512', hash: 'sha512' } } as Record<string, { alg: string; hash: string }>)[d?.namedCurve ?? ''];
  }
  if (key.publicKey.asymmetricKeyType === 'rsa') {
    return ({ 2048: { alg: 'PS256', hash: 'sha256' }, 3072: { alg: 'PS384', hash: 'sha384' }, 4096: { alg: 'PS512', hash: 'sha512' } } as Record<number, { alg: string; hash: string }>)[d?.modulusLength ?? 0];
  }
  return undefined;
}

/** Reads a PEM certificate chain, leaf first; the leaf must hold the signing key's public half. */
export async function loadCertificateChain(file: string, key: SigningKey): Promise<X509Certificate[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new GadgetError(`cannot read the notation certificate chain "${file}": ${messageOf(err)}`, { exitCode: 2, hint: 'give the PEM chain: the signing certificate first, then its CAs', cause: err });
  }
  const chain = [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => new X509Certificate(m[0]));
  if (chain.length === 0) throw new GadgetError(`the notation certificate chain "${file}" holds no PEM certificate`, { exitCode: 2, hint: 'give the PEM chain: the signing certificate first, then its CAs' });
  if (!chain[0]!.checkPrivateKey(key.privateKey)) {
    throw new GadgetError(`the first certificate of "${file}" is not the certificate of the notation key ${key.label}`, { exitCode: 2, hint: 'the chain must start with the signing (leaf) certificate of that key' });
  }
  return chain;
}

/** The notation signature manifest of `subject` and its envelope blob. */
export function notationSignature(subject: Descriptor, key: SigningKey, chain: X509Certificate[], at = new Date()): { envelope: Blob; manifest: Blob } {
  const algorithm = algorithmFor(key);
  if (!algorithm) throw new GadgetError(`the notation key ${key.label} is neither ECDSA P-256/384/521 nor RSA 2048/3072/4096`, { exitCode: 2, hint: 'notation signs with those keys only' });
  const b64url = (b: Buffer): string => b.toString('base64url');
  const protectedHeader = b64url(encodeJSONBytes({
    alg: algorithm.alg,
    crit: ['io.cncf.notary.signingScheme'],
    cty: NOTATION_PAYLOAD_TYPE,
    'io.cncf.notary.signingScheme': 'notary.x509',
    'io.cncf.notary.signingTime': at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
  }));
  const payload = b64url(encodeJSONBytes({ targetArtifact: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size } }));
  const input = Buffer.from(`${protectedHeader}.${payload}`, 'ascii');
  const signature = algorithm.alg.startsWith('ES')
    ? sign(algorithm.hash, input, { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
    : sign(algorithm.hash, input, { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
  const envelope = blob(JWS_MEDIA_TYPE, encodeJSONBytes({
    payload,
    protected: protectedHeader,
    header: { x5c: chain.map((c) => c.raw.toString('base64')), 'io.cncf.notary.signingAgent': `gadget-oci/${packageVersion()}` },
    signature: b64url(signature),
  }));
  const thumbprints = JSON.stringify(chain.map((c) => createHash('sha256').update(c.raw).digest('hex')));
  const manifest = blob(MT_MANIFEST, encodeJSONBytes({
    schemaVersion: 2,
    mediaType: MT_MANIFEST,
    artifactType: NOTATION_SIGNATURE,
    config: EMPTY_CONFIG.descriptor,
    layers: [envelope.descriptor],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { [THUMBPRINTS]: thumbprints },
  }));
  return { envelope, manifest };
}
