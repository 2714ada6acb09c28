// The two X.509 extensions a chain check needs that node:crypto does not give: keyUsage
// (X509Certificate.keyUsage is the *extended* key usage) and basicConstraints as written
// (X509Certificate.ca is OpenSSL's view: false for a CA whose keyUsage lacks keyCertSign). Read from the certificate's DER, which
// X509Certificate has already parsed, so only the extensions' own encoding is walked here.
import type { X509Certificate } from 'node:crypto';

export interface Extensions {
  /** keyUsage bits (digitalSignature is bit 0), or undefined when the extension is absent. */
  keyUsage?: { digitalSignature: boolean; keyCertSign: boolean };
  /** basicConstraints' cA flag (node's X509Certificate.ca is also false when keyUsage lacks keyCertSign). */
  ca: boolean;
  /** basicConstraints' pathLenConstraint, when it sets one. */
  pathLen?: number;
}

interface Tlv {
  tag: number;
  start: number; // of the value
  end: number;
}

function tlv(der: Buffer, at: number): Tlv {
  const tag = der[at]!;
  let len = der[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  if (start + len > der.length) throw new Error('DER value runs past its container');
  return { tag, start, end: start + len };
}

/** The TLVs directly inside `outer`. */
function children(der: Buffer, outer: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = outer.start; at < outer.end; ) {
    const t = tlv(der, at);
    out.push(t);
    at = t.end;
  }
  return out;
}

const KEY_USAGE = Buffer.from([0x55, 0x1d, 0x0f]); // 2.5.29.15
const BASIC_CONSTRAINTS = Buffer.from([0x55, 0x1d, 0x13]); // 2.5.29.19

/** The keyUsage and basicConstraints path length of `cert`; throws on DER it cannot walk. */
export function extensionsOf(cert: X509Certificate): Extensions {
  const der = cert.raw;
  const tbs = children(der, tlv(der, 0))[0]!;
  const explicit3 = children(der, tbs).find((t) => t.tag === 0xa3);
  const out: Extensions = { ca: false };
  if (!explicit3) return out;
  for (const ext of children(der, children(der, explicit3)[0]!)) {
    const parts = children(der, ext);
    const oid = der.subarray(parts[0]!.start, parts[0]!.end);
    const value = parts[parts.length - 1]!; // OCTET STRING, after the optional critical flag
    if (oid.equals(KEY_USAGE)) {
      const bits = tlv(der, value.start); // BIT STRING: unused-bit count, then the bits
      const first = bits.end - bits.start > 1 ? der[bits.start + 1]! : 0;
      out.keyUsage = { digitalSignature: (first & 0x80) !== 0, keyCertSign: (first & 0x04) !== 0 };
    } else if (oid.equals(BASIC_CONSTRAINTS)) {
      const seq = tlv(der, value.start);
      const flag = children(der, seq).find((t) => t.tag === 0x01);
      out.ca = flag !== undefined && der[flag.start] !== 0;
      const pathLen = children(der, seq).find((t) => t.tag === 0x02);
      if (pathLen) out.pathLen = der.subarray(pathLen.start, pathLen.end).reduce((n, b) => n * 256 + b, 0);
    }
  }
  return out;
}
