// NaCl's crypto_secretbox (XSalsa20-Poly1305), which cosign's encrypted private keys use.
// Node's crypto has ChaCha20-Poly1305 but no (X)Salsa20, and the project adds no
// dependencies, so the three pieces are written out here from the Salsa20 and Poly1305
// papers: the Salsa20 core (20 rounds), HSalsa20 (the XSalsa20 subkey), and Poly1305 with
// BigInt arithmetic (keys are a few hundred bytes: speed does not matter, clarity does).
// test/secretbox.test.ts checks them against the NaCl/libsodium test vectors.
import { timingSafeEqual } from 'node:crypto';

export const SECRETBOX_KEY_BYTES = 32;
export const SECRETBOX_NONCE_BYTES = 24;
export const SECRETBOX_TAG_BYTES = 16;

const SIGMA = Buffer.from('expand 32-byte k', 'ascii');

function rotl(x: number, n: number): number {
  return ((x << n) | (x >>> (32 - n))) >>> 0;
}

/** The Salsa20 double-round applied ten times to the 16-word state (in place). */
function rounds(x: Uint32Array): void {
  const qr = (a: number, b: number, c: number, d: number): void => {
    x[b] = (x[b]! ^ rotl((x[a]! + x[d]!) >>> 0, 7)) >>> 0;
    x[c] = (x[c]! ^ rotl((x[b]! + x[a]!) >>> 0, 9)) >>> 0;
    x[d] = (x[d]! ^ rotl((x[c]! + x[b]!) >>> 0, 13)) >>> 0;
    x[a] = (x[a]! ^ rotl((x[d]! + x[c]!) >>> 0, 18)) >>> 0;
  };
  for (let i = 0; i < 10; i++) {
    // columns
    qr(0, 4, 8, 12); qr(5, 9, 13, 1); qr(10, 14, 2, 6); qr(15, 3, 7, 11);
    // rows
    qr(0, 1, 2, 3); qr(5, 6, 7, 4); qr(10, 11, 8, 9); qr(15, 12, 13, 14);
  }
}

/** The initial state: constants on the diagonal, key around them, 16 bytes of input in the middle. */
function initialState(key: Buffer, input: Buffer): Uint32Array {
  const s = new Uint32Array(16);
  s[0] = SIGMA.readUInt32LE(0); s[5] = SIGMA.readUInt32LE(4); s[10] = SIGMA.readUInt32LE(8); s[15] = SIGMA.readUInt32LE(12);
  for (let i = 0; i < 4; i++) {
    s[1 + i] = key.readUInt32LE(4 * i);
    s[11 + i] = key.readUInt32LE(16 + 4 * i);
    s[6 + i] = input.readUInt32LE(4 * i);
  }
  return s;
}

/** HSalsa20: derives XSalsa20's subkey from the key and the first 16 nonce bytes. */
export function hsalsa20(key: Buffer, input16: Buffer): Buffer {
  const x = initialState(key, input16);
  rounds(x);
  const out = Buffer.alloc(32);
  [0, 5, 10, 15, 6, 7, 8, 9].forEach((w, i) => out.writeUInt32LE(x[w]!, 4 * i));
  return out;
}

/** Salsa20 keystream XORed into `data` (8-byte nonce, block counter from 0). */
function salsa20Xor(key: Buffer, nonce8: Buffer, data: Buffer): Buffer {
  const out = Buffer.alloc(data.length);
  const input = Buffer.alloc(16);
  nonce8.copy(input, 0);
  const block = Buffer.alloc(64);
  for (let offset = 0, counter = 0n; offset < data.length; offset += 64, counter++) {
    input.writeBigUInt64LE(counter, 8);
    const s = initialState(key, input);
    const x = Uint32Array.from(s);
    rounds(x);
    for (let i = 0; i < 16; i++) block.writeUInt32LE((x[i]! + s[i]!) >>> 0, 4 * i);
    const n = Math.min(64, data.length - offset);
    for (let i = 0; i < n; i++) out[offset + i] = data[offset + i]! ^ block[i]!;
  }
  return out;
}

/** XSalsa20 keystream XORed into `data`. */
export function xsalsa20Xor(key: Buffer, nonce24: Buffer, data: Buffer): Buffer {
  return salsa20Xor(hsalsa20(key, nonce24.subarray(0, 16)), nonce24.subarray(16, 24), data);
}

const P1305 = (1n << 130n) - 5n;

function leBigInt(bytes: Buffer): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

/** Poly1305 one-time authenticator of `message` under a 32-byte one-time key. */
export function poly1305(key: Buffer, message: Buffer): Buffer {
  const r = leBigInt(key.subarray(0, 16)) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
  const s = leBigInt(key.subarray(16, 32));
  let acc = 0n;
  for (let i = 0; i < message.length; i += 16) {
    const chunk = message.subarray(i, i + 16);
    acc = ((acc + leBigInt(chunk) + (1n << BigInt(8 * chunk.length))) * r) % P1305;
  }
  acc = (acc + s) & ((1n << 128n) - 1n);
  const tag = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) {
    tag[i] = Number(acc & 0xffn);
    acc >>= 8n;
  }
  return tag;
}

function checkSizes(key: Buffer, nonce: Buffer): void {
  if (key.length !== SECRETBOX_KEY_BYTES) throw new Error(`secretbox key must be ${SECRETBOX_KEY_BYTES} bytes`);
  if (nonce.length !== SECRETBOX_NONCE_BYTES) throw new Error(`secretbox nonce must be ${SECRETBOX_NONCE_BYTES} bytes`);
}

/** crypto_secretbox_easy: the 16-byte tag followed by the ciphertext (Go's secretbox.Seal). */
export function secretboxSeal(message: Buffer, nonce: Buffer, key: Buffer): Buffer {
  checkSizes(key, nonce);
  // The first 32 keystream bytes are the Poly1305 key; the message uses the rest.
  const stream = xsalsa20Xor(key, nonce, Buffer.concat([Buffer.alloc(32), message]));
  const ciphertext = stream.subarray(32);
  return Buffer.concat([poly1305(stream.subarray(0, 32), ciphertext), ciphertext]);
}

/** crypto_secretbox_open_easy: the message, or undefined when the box does not authenticate. */
export function secretboxOpen(box: Buffer, nonce: Buffer, key: Buffer): Buffer | undefined {
  checkSizes(key, nonce);
  if (box.length < SECRETBOX_TAG_BYTES) return undefined;
  const tag = box.subarray(0, SECRETBOX_TAG_BYTES);
  const ciphertext = box.subarray(SECRETBOX_TAG_BYTES);
  const polyKey = xsalsa20Xor(key, nonce, Buffer.alloc(32));
  if (!timingSafeEqual(poly1305(polyKey, ciphertext), tag)) return undefined;
  return xsalsa20Xor(key, nonce, Buffer.concat([Buffer.alloc(32), ciphertext])).subarray(32);
}
