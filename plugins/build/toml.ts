// A lenient TOML reader for the build cache: Cargo.toml and .cargo/config.toml name the folders
// cargo reads (path dependencies) in any of TOML's spellings, which a regular expression misses.
/**
 * The string values of a TOML document with their full key paths (table header, dotted key,
 * inline table keys; an array's strings under the array's key), read leniently: a line that
 * does not parse is skipped, so that a broken file (which cargo refuses anyway) yields what
 * it can. Enough to find every `path = "..."` however it is written.
 */
export function tomlStrings(text: string): Array<{ key: string[]; value: string }> {
  const out: Array<{ key: string[]; value: string }> = [];
  let i = 0;
  const n = text.length;
  const fail = (): never => {
    throw new SyntaxError(`TOML at ${i}`);
  };
  const ws = (): void => {
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  // Whitespace, newlines and comments (inside arrays and, leniently, inline tables).
  const wsAll = (): void => {
    for (;;) {
      ws();
      if (text[i] === '#') while (i < n && text[i] !== '\n') i++;
      else if (text[i] === '\n' || text[i] === '\r') i++;
      else return;
    }
  };
  const basicEscape = (): string => {
    const c = text[i + 1];
    i += 2;
    const simple: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', e: '\x1b', '"': '"', '\\': '\\' };
    if (c !== undefined && c in simple) return simple[c]!;
    const len = c === 'u' ? 4 : c === 'U' ? 8 : c === 'x' ? 2 : 0;
    if (len === 0) fail();
    const hex = text.slice(i, i + len);
    if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) fail();
    i += len;
    return String.fromCodePoint(parseInt(hex, 16));
  };
  const str = (): string => {
    const q = text[i]!;
    if (text.startsWith(q.repeat(3), i)) {
      i += 3;
      if (text[i] === '\n') i++;
      else if (text.startsWith('\r\n', i)) i += 2;
      let s = '';
      for (;;) {
        if (i >= n) fail();
        if (text.startsWith(q.repeat(3), i)) {
          // Up to two more quotes just before the closing three belong to the string.
          let extra = 0;
          while (extra < 2 && text[i + 3 + extra] === q) extra++;
          s += q.repeat(extra);
          i += 3 + extra;
          return s;
        }
        if (q === '"' && text[i] === '\\') {
          if (/^\\[ \t]*\r?\n/.test(text.slice(i, i + 200))) {
            i++;
            while (i < n && /[ \t\r\n]/.test(text[i]!)) i++;
          } else s += basicEscape();
        } else s += text[i++];
      }
    }
    i++;
    let s = '';
    for (;;) {
      if (i >= n || text[i] === '\n') fail();
      if (text[i] === q) {
        i++;
        return s;
      }
      if (q === '"' && text[i] === '\\') s += basicEscape();
      else s += text[i++];
    }
  };
  const key = (): string[] => {
    const parts: string[] = [];
    for (;;) {
      ws();
      if (text[i] === '"' || text[i] === "'") parts.push(str());
      else {
        const m = /^[A-Za-z0-9_-]+/.exec(text.slice(i, i + 256));
        if (!m) fail();
        parts.push(m![0]);
        i += m![0].length;
      }
      ws();
      if (text[i] !== '.') return parts;
      i++;
    }
  };
  const value = (at: string[]): void => {
    const c = text[i];
    if (c === '"' || c === "'") out.push({ key: at, value: str() });
    else if (c === '{') {
      i++;
      for (;;) {
        wsAll();
        if (text[i] === '}') {
          i++;
          return;
        }
        const k = key();
        if (text[i] !== '=') fail();
        i++;
        ws();
        value([...at, ...k]);
        wsAll();
        if (text[i] === ',') i++;
        else if (text[i] !== '}') fail();
      }
    } else if (c === '[') {
      i++;
      for (;;) {
        wsAll();
        if (text[i] === ']') {
          i++;
          return;
        }
        value(at);
        wsAll();
        if (text[i] === ',') i++;
        else if (text[i] !== ']') fail();
      }
    } else {
      // A number, boolean or date: up to what ends a value.
      const start = i;
      while (i < n && !/[,\]}\n#]/.test(text[i]!)) i++;
      if (i === start) fail();
    }
  };
  let table: string[] = [];
  while (i < n) {
    try {
      wsAll();
      if (i >= n) break;
      if (text[i] === '[') {
        const double = text[i + 1] === '[';
        i += double ? 2 : 1;
        const k = key();
        if (!text.startsWith(double ? ']]' : ']', i)) fail();
        i += double ? 2 : 1;
        table = k;
      } else {
        const k = key();
        if (text[i] !== '=') fail();
        i++;
        ws();
        value([...table, ...k]);
      }
      ws();
      if (text[i] === '#') while (i < n && text[i] !== '\n') i++;
      if (i < n && text[i] !== '\n' && text[i] !== '\r') fail();
    } catch {
      // Not TOML here: go on from the next line.
      while (i < n && text[i] !== '\n') i++;
    }
  }
  return out;
}
