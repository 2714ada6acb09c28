// Semantic versions of tags (`v0.45.0`, `1.2.3-rc.1`) and version ranges, as npm writes them:
// comparators (`>=1.2.0 <2`), `=`, caret `^0.45`, tilde `~1.2.3`, x-ranges (`1.x`, `1.2.*`,
// `*`), hyphens (`1.2 - 1.4`) and `||`. A pre-release version matches only a
// range that names a pre-release of the same major.minor.patch, as in npm.
import { usageError } from '../../lib/errors.js';

export interface Version {
  major: number;
  minor: number;
  patch: number;
  prerelease: Array<string | number>;
}

const NUM = '0|[1-9]\\d*';
const IDENT = `(?:${NUM}|\\d*[a-zA-Z-][0-9a-zA-Z-]*)`;
const VERSION_RE = new RegExp(`^v?(${NUM})\\.(${NUM})\\.(${NUM})(?:-(${IDENT}(?:\\.${IDENT})*))?(?:\\+[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)?$`);

/** A tag as a version (a leading `v` allowed), or undefined when it is not one. */
export function parseVersion(tag: string): Version | undefined {
  const m = VERSION_RE.exec(tag);
  if (!m) return undefined;
  const nums = [m[1], m[2], m[3]].map(Number);
  if (nums.some((n) => !Number.isSafeInteger(n))) return undefined;
  const prerelease = m[4] ? m[4].split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p)) : [];
  return { major: nums[0]!, minor: nums[1]!, patch: nums[2]!, prerelease };
}

function comparePre(a: Array<string | number>, b: Array<string | number>): number {
  if (a.length === 0 || b.length === 0) return b.length - a.length; // a release sorts after its pre-releases
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x < y ? -1 : 1;
    if (typeof x === 'number') return -1; // numeric identifiers sort first
    if (typeof y === 'number') return 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

export function compareVersions(a: Version, b: Version): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch || comparePre(a.prerelease, b.prerelease);
}

type Op = '<' | '<=' | '>' | '>=' | '=';

interface Comparator {
  op: Op;
  version: Version;
  /** Bounds made up while desugaring (`<2.0.0-0`) do not let pre-releases in. */
  synthetic?: boolean;
}

/** A parsed range: any of its sets matches when all comparators of that set do. */
export type Range = Comparator[][];

interface Partial {
  major?: number;
  minor?: number;
  patch?: number;
  prerelease: Array<string | number>;
}

const v = (major: number, minor: number, patch: number, prerelease: Array<string | number> = []): Version => ({ major, minor, patch, prerelease });
const lower = (p: Partial): Version => v(p.major ?? 0, p.minor ?? 0, p.patch ?? 0, p.prerelease);
const below = (version: Version): Comparator => ({ op: '<', version: { ...version, prerelease: [0] }, synthetic: true });

function parsePartial(text: string, range: string): Partial {
  const m = /^v?(\*|x|X|\d+)(?:\.(\*|x|X|\d+)(?:\.(\*|x|X|\d+)(?:-([0-9A-Za-z.-]+))?)?)?(?:\+[0-9A-Za-z.-]+)?$/.exec(text);
  if (!m) throw badRange(range, `"${text}" is not a version`);
  const num = (s: string | undefined): number | undefined => (s === undefined || /^[*xX]$/.test(s) ? undefined : Number(s));
  const [major, minor, patch] = [num(m[1]), num(m[2]), num(m[3])];
  // Once a part is a wildcard, the parts after it are too (`1.x.3` means `1.x`).
  const out: Partial = { major, minor: major === undefined ? undefined : minor, patch: major === undefined || minor === undefined ? undefined : patch, prerelease: [] };
  if (m[4] && out.patch !== undefined) out.prerelease = m[4].split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  return out;
}

/** The comparators of an x-range: `1.2` is `>=1.2.0 <1.3.0-0`, `*` is anything. */
function xRange(p: Partial): Comparator[] {
  if (p.major === undefined) return [{ op: '>=', version: v(0, 0, 0), synthetic: true }];
  if (p.minor === undefined) return [{ op: '>=', version: v(p.major, 0, 0) }, below(v(p.major + 1, 0, 0))];
  if (p.patch === undefined) return [{ op: '>=', version: v(p.major, p.minor, 0) }, below(v(p.major, p.minor + 1, 0))];
  return [{ op: '=', version: lower(p) }];
}

function caret(p: Partial): Comparator[] {
  if (p.major === undefined) return xRange(p);
  const from: Comparator = { op: '>=', version: lower(p) };
  if (p.major > 0 || p.minor === undefined) return [from, below(v(p.major + 1, 0, 0))];
  if (p.minor > 0 || p.patch === undefined) return [from, below(v(0, p.minor + 1, 0))];
  return [from, below(v(0, 0, p.patch + 1))];
}

function tilde(p: Partial): Comparator[] {
  if (p.major === undefined) return xRange(p);
  if (p.minor === undefined) return [{ op: '>=', version: lower(p) }, below(v(p.major + 1, 0, 0))];
  return [{ op: '>=', version: lower(p) }, below(v(p.major, p.minor + 1, 0))];
}

function primitive(op: Op, p: Partial): Comparator[] {
  if (op === '=') return xRange(p);
  if (p.major === undefined) {
    // `>=*` and `<=*` match anything, `<*` and `>*` nothing.
    return op === '>=' || op === '<=' ? xRange(p) : [{ op: '<', version: v(0, 0, 0, [0]), synthetic: true }];
  }
  const exact = p.minor !== undefined && p.patch !== undefined;
  if (exact) return [{ op, version: lower(p) }];
  // The first version past the partial: `1` -> 2.0.0, `1.2` -> 1.3.0.
  const next = p.minor === undefined ? v(p.major + 1, 0, 0) : v(p.major, p.minor + 1, 0);
  switch (op) {
    case '>':
      return [{ op: '>=', version: next }];
    case '>=':
      return [{ op: '>=', version: lower(p) }];
    case '<':
      return [below(lower(p))];
    case '<=':
      return [below(next)];
  }
}

function badRange(range: string, why: string): Error {
  return usageError(`"${range}" is not a version range: ${why}`, 'write it as npm does, e.g. ">=0.40.0 <1.0.0", "^0.45", "~1.2.3", "1.x || 2.x"');
}

/** Parses a range such as `>=0.40.0 <1`, `^0.45.0 || ~1.2`, `1.2 - 1.4`. */
export function parseRange(range: string): Range {
  const text = range.trim();
  if (text.length > 1000) throw badRange(text.slice(0, 40) + '...', 'it is too long');
  return text.split('||').map((part) => {
    const set = part.trim();
    if (set === '') return xRange({ prerelease: [] });
    const hyphen = /^(\S+)\s+-\s+(\S+)$/.exec(set);
    if (hyphen) {
      const from = parsePartial(hyphen[1]!, range);
      const to = parsePartial(hyphen[2]!, range);
      return [...primitive('>=', from), ...primitive('<=', to)];
    }
    // `>= 1.2` is written with a space sometimes: glue operators to their version.
    const tokens = set.replace(/(<=|>=|<|>|=|\^|~)\s+/g, '$1').split(/\s+/);
    return tokens.flatMap((token) => {
      const m = /^(<=|>=|<|>|=|\^|~>?)?(.*)$/.exec(token)!;
      const op = m[1] ?? '';
      const p = parsePartial(m[2]!, range);
      if (op === '^') return caret(p);
      if (op === '~' || op === '~>') return tilde(p);
      if (op === '') return xRange(p);
      return primitive(op as Op, p);
    });
  });
}

function test(c: Comparator, version: Version): boolean {
  const d = compareVersions(version, c.version);
  switch (c.op) {
    case '<':
      return d < 0;
    case '<=':
      return d <= 0;
    case '>':
      return d > 0;
    case '>=':
      return d >= 0;
    case '=':
      return d === 0;
  }
}

/** Whether `version` is in `range`. */
export function satisfies(version: Version, range: Range): boolean {
  return range.some((set) => {
    if (!set.every((c) => test(c, version))) return false;
    if (version.prerelease.length === 0) return true;
    return set.some((c) => !c.synthetic && c.version.prerelease.length > 0
      && c.version.major === version.major && c.version.minor === version.minor && c.version.patch === version.patch);
  });
}
