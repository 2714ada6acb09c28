// The one JSON encoder: Go's encoding/json as ig uses it, so that the same inputs give the
// same bytes and digests. Compact; object keys in insertion order (build code creates objects
// in Go's struct-field order, and parsed documents keep theirs, unknown fields included);
// maps (any object under an "annotations" key) with keys sorted as Go sorts strings, by their
// UTF-8 bytes (UTF-16 order differs for characters beyond U+FFFF next to U+E000-U+FFFF); `<`, `>`, `&`, U+2028 and
// U+2029 escaped as \u00xx / \u20xx.

const MAP_KEYS = new Set(['annotations']);

export function encodeJSON(value: unknown): string {
  return encode(value, false);
}

export function encodeJSONBytes(value: unknown): Buffer {
  return Buffer.from(encodeJSON(value), 'utf8');
}

function encode(value: unknown, sortKeys: boolean): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return encodeString(value);
    case 'number':
      if (!Number.isFinite(value)) throw new Error(`cannot encode ${value} as JSON`);
      return Number.isInteger(value) ? value.toFixed(0) : String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (Array.isArray(value)) return '[' + value.map((v) => encode(v, false)).join(',') + ']';
      const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
      if (sortKeys) entries.sort(([a], [b]) => compareUTF8(a, b));
      return '{' + entries.map(([k, v]) => encodeString(k) + ':' + encode(v, MAP_KEYS.has(k))).join(',') + '}';
    }
    default:
      throw new Error(`cannot encode a ${typeof value} as JSON`);
  }
}

/** Go's string order: by UTF-8 bytes, which is code point order (not UTF-16 code units). */
export function compareUTF8(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

const ESCAPES: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
};

// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f<>&\u2028\u2029]|[\ud800-\udfff]/g;

const ESCAPE_TEST = /["\\\u0000-\u001f<>&\u2028\u2029\ud800-\udfff]/;

function encodeString(s: string): string {
  if (!ESCAPE_TEST.test(s)) return '"' + s + '"';
  return (
    '"' +
    s.replace(NEEDS_ESCAPE, (c, offset: number) => {
      const known = ESCAPES[c];
      if (known) return known;
      const code = c.charCodeAt(0);
      if (code >= 0xd800 && code <= 0xdfff) {
        // A surrogate pair is valid UTF-16 and passes unchanged; a lone half is what Go
        // would see as invalid UTF-8 and replace with U+FFFD.
        const isHigh = code <= 0xdbff;
        const next = s.charCodeAt(offset + 1);
        const prev = s.charCodeAt(offset - 1);
        if (isHigh && next >= 0xdc00 && next <= 0xdfff) return c;
        if (!isHigh && prev >= 0xd800 && prev <= 0xdbff) return c;
        return '\ufffd';
      }
      return '\\u' + code.toString(16).padStart(4, '0');
    }) +
    '"'
  );
}
