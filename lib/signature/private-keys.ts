// Signing keys: cosign's encrypted private key format (what `cosign generate-key-pair`
// writes: JSON naming scrypt parameters, a salt, a NaCl secretbox nonce and the sealed
// PKCS#8 key, in PEM armour), and plain PEM keys (PKCS#8, SEC1 "EC PRIVATE KEY", ed25519).
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, scryptSync, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { GadgetError, messageOf } from '../errors.js';
import { secretboxOpen, secretboxSeal } from './secretbox.js';

export const COSIGN_KEY_PEM_TYPE = 'ENCRYPTED SIGSTORE PRIVATE KEY';
/** Older cosign releases wrote this label over the same JSON. */
const LEGACY_COSIGN_KEY_PEM_TYPE = 'ENCRYPTED COSIGN PRIVATE KEY';
/** cosign's parameters (go-securesystemslib "encrypted"): scrypt N=2^16, r=8, p=1, 32-byte key. */
const SCRYPT = { N: 65536, r: 8, p: 1 } as const;

export interface SigningKey {
  /** The file, for messages. */
  label: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

interface EncryptedKeyDocument {
  kdf: { name: string; params: { N: number; r: number; p: number }; salt: string };
  cipher: { name: string; nonce: string };
  ciphertext: string;
}

function pem(type: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join('\n')}\n-----END ${type}-----\n`;
}

function scrypt(password: string, salt: Buffer, params: { N: number; r: number; p: number }): Buffer {
  // 128·N·r bytes of memory; node's default limit (32 MiB) is below cosign's 64 MiB.
  return scryptSync(Buffer.from(password, 'utf8'), salt, 32, { ...params, maxmem: 256 * 1024 * 1024 });
}

/** A new ECDSA P-256 key pair (cosign's default) as cosign writes it: encrypted private key and PEM public key. */
export function generateCosignKeyPair(password: string): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privatePem: encryptCosignKey(privateKey, password), publicPem: publicKeyPem(publicKey) };
}

export function publicKeyPem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

/** Seals a private key (PKCS#8 DER) in cosign's encrypted format. */
export function encryptCosignKey(key: KeyObject, password: string): string {
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const der = key.export({ type: 'pkcs8', format: 'der' });
  const doc: EncryptedKeyDocument = {
    kdf: { name: 'scrypt', params: { ...SCRYPT }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: secretboxSeal(der, nonce, scrypt(password, salt, SCRYPT)).toString('base64'),
  };
  return pem(COSIGN_KEY_PEM_TYPE, Buffer.from(JSON.stringify(doc), 'utf8'));
}

/** Opens cosign's encrypted format; a phrase saying why when it cannot. */
export function decryptCosignKey(json: Buffer, password: string): KeyObject | string {
  let doc: EncryptedKeyDocument;
  try {
    doc = JSON.parse(json.toString('utf8')) as EncryptedKeyDocument;
  } catch {
    return 'its encrypted key is not JSON';
  }
  const params = doc?.kdf?.params;
  if (doc?.kdf?.name !== 'scrypt' || doc.cipher?.name !== 'nacl/secretbox' || !params) {
    return `it uses ${String(doc?.kdf?.name)} and ${String(doc?.cipher?.name)}, not scrypt and nacl/secretbox`;
  }
  const ok = (n: unknown, max: number): boolean => Number.isSafeInteger(n) && (n as number) > 0 && (n as number) <= max;
  if (!ok(params.N, 1 << 20) || !ok(params.r, 32) || !ok(params.p, 16) || (params.N & (params.N - 1)) !== 0) {
    return 'its scrypt parameters are out of range';
  }
  const salt = Buffer.from(String(doc.kdf.salt ?? ''), 'base64');
  const nonce = Buffer.from(String(doc.cipher.nonce ?? ''), 'base64');
  if (nonce.length !== 24) return 'its secretbox nonce is not 24 bytes';
  const der = secretboxOpen(Buffer.from(String(doc.ciphertext ?? ''), 'base64'), nonce, scrypt(password, salt, params));
  if (!der) return 'the password is wrong (the key does not decrypt)';
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch (err) {
    return `the decrypted key is not PKCS#8: ${messageOf(err)}`;
  }
}

function keyError(file: string, why: string, hint: string): GadgetError {
  return new GadgetError(`the signing key "${file}" cannot be used: ${why}`, { exitCode: 2, hint });
}

/**
 * Returns `value` when it may be the path of a key file; throws (exit 2) for key material given
 * where a path belongs (PEM, or a PEM body's base64 alone), never quoting it: messages and logs
 * would carry it. Check the value as given, before it is resolved against `folder` (a folder
 * whose path is all base64 characters would otherwise hide the key text in a path).
 */
export function refuseKeyText(value: string, folder = '.'): string {
  const base64 = value.length >= 64 && /^[A-Za-z0-9+/]+=*$/.test(value) && !existsSync(resolve(folder, value)); // a file of that name is a path
  if (/-----BEGIN|[\r\n]/.test(value) || base64) {
    throw new GadgetError('the signing key was given as its text, not as the path of a file (the text is not repeated here)', {
      exitCode: 2,
      hint: 'save the key in a file only you can read (chmod 600) and give its path',
    });
  }
  return value;
}

/**
 * Reads a private key: cosign's encrypted format (password from `password`), or PEM
 * PKCS#8 / SEC1 EC / PKCS#1 RSA / encrypted PKCS#8. GadgetError (exit 2) naming the file.
 */
export async function loadSigningKey(file: string, password: () => Promise<string>): Promise<SigningKey> {
  refuseKeyText(file);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new GadgetError(`cannot read the signing key "${file}": ${messageOf(err)}`, { exitCode: 2, hint: 'give the path of cosign.key (see `gadget generate-key-pair`) or of a PEM private key file', cause: err });
  }
  const block = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
  if (!block) throw keyError(file, 'it holds no PEM block', 'give cosign.key (see `gadget generate-key-pair`) or a PEM private key');
  const type = block[1]!;
  let privateKey: KeyObject;
  if (type === COSIGN_KEY_PEM_TYPE || type === LEGACY_COSIGN_KEY_PEM_TYPE) {
    const opened = decryptCosignKey(Buffer.from(block[2]!.replace(/\s+/g, ''), 'base64'), await password());
    if (typeof opened === 'string') throw keyError(file, opened, 'set $COSIGN_PASSWORD to the password the key was made with');
    privateKey = opened;
  } else if (type.endsWith('PRIVATE KEY')) {
    try {
      privateKey = type === 'ENCRYPTED PRIVATE KEY'
        ? createPrivateKey({ key: block[0], format: 'pem', passphrase: await password() })
        : createPrivateKey(block[0]);
    } catch (err) {
      throw keyError(file, messageOf(err).replace(/\.$/, ''), 'give an unencrypted PEM private key, or cosign.key with $COSIGN_PASSWORD');
    }
  } else {
    throw keyError(file, `its PEM block is "${type}", not a private key`, 'give cosign.key (the private half), not cosign.pub');
  }
  const kind = privateKey.asymmetricKeyType;
  if (kind !== 'ec' && kind !== 'rsa' && kind !== 'ed25519') throw keyError(file, `${String(kind)} keys are not supported`, 'use an ECDSA P-256, RSA or ed25519 key');
  return { label: file, privateKey, publicKey: createPublicKey(privateKey) };
}
