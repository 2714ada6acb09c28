// Verification material: PEM public keys (cosign) and X.509 certificates (notation), given as
// file paths or as PEM text, and the one place that checks a signature with a key.
import { createHash, createPublicKey, verify, constants, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { GadgetError, messageOf } from '../errors.js';

export interface PublicKeyEntry {
  /** The file path, or "key #N (sha256:…)" for PEM text: names the key in results. */
  label: string;
  key: KeyObject;
}

export interface TrustedCert {
  label: string;
  cert: X509Certificate;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

function isPemText(input: string): boolean {
  return input.includes('-----BEGIN ');
}

function pemBlocks(text: string): Array<{ type: string; pem: string }> {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ type: m[1]!, pem: m[0] }));
}

function shortFingerprint(der: Buffer): string {
  return 'sha256:' + createHash('sha256').update(der).digest('hex').slice(0, 16);
}

async function readInput(input: string, what: string): Promise<Buffer> {
  if (isPemText(input)) return Buffer.from(input, 'utf8');
  try {
    return await readFile(input);
  } catch (err) {
    throw new GadgetError(`cannot read the ${what} file "${input}": ${messageOf(err)}`, {
      exitCode: 2,
      hint: `give the path of a readable PEM file, or the PEM text itself`,
      cause: err,
    });
  }
}

function badMaterial(input: string, what: string, why: string, cause?: unknown): GadgetError {
  const where = isPemText(input) ? `the PEM text given as ${what}` : `"${input}"`;
  return new GadgetError(`${where} is not a usable ${what}: ${why}`, {
    exitCode: 2,
    hint: what === 'public key'
      ? 'give a PEM "PUBLIC KEY" (as written by `cosign generate-key-pair`) or a PEM certificate'
      : 'give a PEM or DER X.509 certificate (as used in a notation trust store)',
    cause,
  });
}

/** Public keys from PEM files or PEM text; a PEM certificate contributes its public key. */
export async function loadPublicKeys(inputs: string[]): Promise<PublicKeyEntry[]> {
  const out: PublicKeyEntry[] = [];
  for (const input of inputs) {
    const text = (await readInput(input, 'public key')).toString('utf8');
    const blocks = pemBlocks(text).filter((b) => b.type === 'PUBLIC KEY' || b.type === 'CERTIFICATE' || b.type.endsWith(' PUBLIC KEY'));
    if (blocks.length === 0) throw badMaterial(input, 'public key', 'it holds no PEM public key or certificate');
    for (const block of blocks) {
      let key: KeyObject;
      try {
        key = block.type === 'CERTIFICATE' ? new X509Certificate(block.pem).publicKey : createPublicKey(block.pem);
      } catch (err) {
        throw badMaterial(input, 'public key', messageOf(err), err);
      }
      const der = key.export({ type: 'spki', format: 'der' });
      const label = isPemText(input) ? `key #${out.length + 1} (${shortFingerprint(der)})` : input;
      out.push({ label, key });
    }
  }
  return out;
}

/** Certificates from PEM (one or more blocks) or DER files, or PEM text. */
export async function loadCertificates(inputs: string[]): Promise<TrustedCert[]> {
  const out: TrustedCert[] = [];
  for (const input of inputs) {
    const bytes = await readInput(input, 'certificate');
    const text = bytes.toString('latin1');
    const pems = pemBlocks(text).filter((b) => b.type === 'CERTIFICATE');
    const sources: Array<string | Buffer> = pems.length > 0 ? pems.map((b) => b.pem) : isPemText(text) ? [] : [bytes];
    if (sources.length === 0) throw badMaterial(input, 'certificate', 'it holds no PEM certificate');
    for (const source of sources) {
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(source);
      } catch (err) {
        throw badMaterial(input, 'certificate', messageOf(err), err);
      }
      const name = isPemText(input) ? `certificate #${out.length + 1}` : input;
      out.push({ label: `${name} (${subjectLine(cert)})`, cert });
    }
  }
  return out;
}

/** "CN=test.io, O=Notary, …" from node's newline-separated subject. */
export function subjectLine(cert: X509Certificate): string {
  return cert.subject.split('\n').reverse().join(', ');
}

export interface SignatureAlgorithm {
  /** Digest for the signature, or null for keys that fix their own (Ed25519). */
  hash: string | null;
  /** RSA padding; PSS uses a salt as long as the digest (RFC 7518). */
  rsa?: 'pkcs1' | 'pss';
  /** ECDSA signature encoding: DER (cosign, DSSE) or r||s (JWS). */
  ecdsa?: 'der' | 'ieee-p1363';
}

/** The algorithm cosign uses with a key of this type: SHA-256, PKCS#1 v1.5, DER ECDSA. */
export function cosignAlgorithm(key: KeyObject): SignatureAlgorithm {
  const type = key.asymmetricKeyType;
  if (type === 'ed25519' || type === 'ed448') return { hash: null };
  return { hash: 'sha256', rsa: type === 'rsa-pss' ? 'pss' : 'pkcs1', ecdsa: 'der' };
}

/** True when `signature` is a valid signature of `data` by `key`; never throws. */
export function verifyWith(key: KeyObject, alg: SignatureAlgorithm, data: Buffer, signature: Buffer): boolean {
  const type = key.asymmetricKeyType;
  try {
    if (type === 'rsa' || type === 'rsa-pss') {
      const pss = alg.rsa === 'pss';
      return verify(alg.hash, data, {
        key,
        padding: pss ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING,
        ...(pss ? { saltLength: constants.RSA_PSS_SALTLEN_DIGEST } : {}),
      }, signature);
    }
    if (type === 'ec') return verify(alg.hash, data, { key, dsaEncoding: alg.ecdsa ?? 'der' }, signature);
    return verify(null, data, key, signature);
  } catch {
    // Malformed signatures (wrong length, bad DER) are simply not valid.
    return false;
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Strict base64 (standard or URL-safe alphabet); undefined when `s` is not base64. */
export function decodeBase64(s: unknown): Buffer | undefined {
  if (typeof s !== 'string' || s.length === 0) return undefined;
  if (BASE64.test(s)) return Buffer.from(s, 'base64');
  if (BASE64URL.test(s.replace(/=+$/, ''))) return Buffer.from(s, 'base64url');
  return undefined;
}
