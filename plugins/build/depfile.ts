// clang's `-MD` dependency file, read as make reads it: `out.o: a.c b.h \` with `$$` for `$`,
// `\ ` for a space in a name, `\#` for `#`, and backslash-newline continuing the line. Names
// are bytes (a header's name need not be UTF-8), so the parser works on Buffers.
import path from 'node:path';

const SPACE = 0x20, TAB = 0x09, LF = 0x0a, CR = 0x0d, BACKSLASH = 0x5c, DOLLAR = 0x24, HASH = 0x23, COLON = 0x3a;

const isSpace = (b: number | undefined): boolean => b === SPACE || b === TAB || b === LF || b === CR;

/** The words of a depfile after make's unescaping (targets and the ':' included). */
function words(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let word: number[] = [];
  const end = (): void => {
    if (word.length > 0) out.push(Buffer.from(word));
    word = [];
  };
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === BACKSLASH) {
      let run = 1;
      while (bytes[i + run] === BACKSLASH) run++;
      const next = bytes[i + run];
      if (next === SPACE || next === TAB || next === HASH) {
        // 2n backslashes + space: n backslashes, then a separator; 2n+1: n backslashes and a literal space.
        for (let k = 0; k < Math.floor(run / 2); k++) word.push(BACKSLASH);
        i += run - 1;
        if (run % 2 === 1) {
          word.push(next);
          i++;
        }
        continue;
      }
      if (next === LF || (next === CR && bytes[i + run + 1] === LF)) {
        for (let k = 0; k < run - 1; k++) word.push(BACKSLASH);
        end();
        i += run - 1 + (next === CR ? 2 : 1);
        continue;
      }
      for (let k = 0; k < run; k++) word.push(BACKSLASH);
      i += run - 1;
      continue;
    }
    if (b === DOLLAR && bytes[i + 1] === DOLLAR) {
      word.push(DOLLAR);
      i++;
      continue;
    }
    if (isSpace(b)) {
      end();
      continue;
    }
    word.push(b);
  }
  end();
  return out;
}

/** The prerequisites of a depfile (everything after the first target's ':'), absolute, each once, sorted. */
export function parseDepfile(bytes: Buffer, cwd: string): Buffer[] {
  const all = words(bytes);
  // The target is ours (a name in the build's folder): the first word that ends in ':' closes it.
  const colon = all.findIndex((w) => w[w.length - 1] === COLON);
  const deps = colon >= 0 ? all.slice(colon + 1) : all;
  const seen = new Map<string, Buffer>();
  for (const name of deps) {
    if (name.length === 1 && name[0] === COLON) continue;
    const absolute = name[0] === 0x2f ? name : Buffer.concat([Buffer.from(path.resolve(cwd) + '/'), name]);
    seen.set(absolute.toString('latin1'), absolute);
  }
  return [...seen.values()].sort(Buffer.compare);
}
