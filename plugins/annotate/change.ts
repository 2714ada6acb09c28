// What an annotate request may say, checked before anything is read or written: the keys and
// values to set or unset, the levels, and the platform. Every problem is a usage error (exit 2).
import { isRFC3339 } from '../../lib/oci/time.js';
import { usageError } from '../../lib/errors.js';
import { didYouMean } from '../../lib/suggest.js';
import { ANN_CREATED, ANN_REF_NAME } from '../../lib/oci/mediatypes.js';
import { ARCHS, type Arch } from '../build/arch.js';

/**
 * Where annotations live, named after the object they describe. ig writes one map at all of
 * them; a level covers the object's own map and the descriptors that point at it:
 * - index:    the index document, and its tag's entry in index.json when that carries annotations;
 * - manifest: each manifest document and its entry (descriptor) in the index;
 * - config:   the config descriptor inside each manifest (the config blob itself never changes).
 */
export type Level = 'index' | 'manifest' | 'config';
export const LEVELS: readonly Level[] = ['index', 'manifest', 'config'];

export type { Arch } from '../build/arch.js';

/** An annotation change as a caller states it. */
export interface AnnotationChange {
  set?: Record<string, string>;
  unset?: string[];
  /** Set title, description, url, documentation and source from the image's own gadget.yaml. */
  fromMetadata?: boolean;
}

/** A concrete change: `set` and `unset` never share a key. */
export interface ResolvedChange {
  set: Record<string, string>;
  unset: string[];
}

export { isRFC3339 };

function checkKey(key: string, flag: string): void {
  if (key.length === 0) throw usageError(`${flag}: an annotation key must not be empty`, 'write --set KEY=VALUE or --unset KEY');
  if (key === ANN_REF_NAME) {
    throw usageError(`${flag} ${key}: this annotation holds the tag of an image in an OCI layout and cannot be annotated`, 'use `gadget tag` to give the image another reference');
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) throw usageError(`${flag} ${JSON.stringify(key)}: an annotation key must not contain control characters`);
}

/** Checks a change and returns it in its concrete form; throws a usage error naming the problem. */
export function validateChange(change: AnnotationChange): ResolvedChange {
  const set = change.set ?? {};
  const unset = change.unset ?? [];
  if (typeof set !== 'object' || set === null || Array.isArray(set)) throw usageError('annotate: `set` must be a map of annotation keys to string values');
  if (!Array.isArray(unset)) throw usageError('annotate: `unset` must be a list of annotation keys');
  const entries = Object.entries(set);
  if (entries.length === 0 && unset.length === 0 && !change.fromMetadata) {
    throw usageError('annotate: nothing to change', 'give --set KEY=VALUE, --unset KEY or --from-metadata');
  }
  for (const [key, value] of entries) {
    checkKey(key, '--set');
    if (typeof value !== 'string') throw usageError(`--set ${key}: the value must be a string, not ${value === null ? 'null' : typeof value}`);
    if (key === ANN_CREATED && !isRFC3339(value)) {
      throw usageError(`--set ${key}=${value}: the creation time must be an RFC 3339 date and time`, 'e.g. 2026-01-02T15:04:05Z or 2026-01-02T16:04:05+01:00; `date -u +%Y-%m-%dT%H:%M:%SZ` prints one');
    }
  }
  for (const key of unset) {
    if (typeof key !== 'string') throw usageError('--unset: every key must be a string');
    checkKey(key, '--unset');
    if (Object.hasOwn(set, key)) throw usageError(`annotate: ${key} is both set and unset`, 'give each key once, with --set or with --unset');
  }
  return { set: Object.fromEntries(entries), unset: [...new Set(unset)] };
}

/** --set K=V pairs; the same key twice with different values is a usage error. */
export function parseSetPairs(values: string[]): Record<string, string> {
  const out = new Map<string, string>();
  for (const item of values) {
    const eq = item.indexOf('=');
    if (eq < 0) throw usageError(`--set ${item}: expected KEY=VALUE`);
    const key = item.slice(0, eq);
    const value = item.slice(eq + 1);
    checkKey(key, '--set');
    if (out.has(key) && out.get(key) !== value) throw usageError(`--set ${key} is given twice with different values`);
    out.set(key, value);
  }
  return Object.fromEntries(out);
}

/** --level values (repeatable, or comma-separated); undefined for none given. */
export function parseLevels(values: readonly string[] | undefined): Level[] | undefined {
  if (values === undefined || values.length === 0) return undefined;
  const out = new Set<Level>();
  for (const value of values.flatMap((v) => v.split(','))) {
    const level = value.trim();
    if (!(LEVELS as readonly string[]).includes(level)) {
      throw usageError(`--level ${JSON.stringify(level)}: unknown level`, `use one or more of ${LEVELS.join(', ')}`);
    }
    out.add(level as Level);
  }
  return LEVELS.filter((l) => out.has(l));
}

/** amd64 or arm64 (also written linux/amd64). */
export function parsePlatform(value: string | undefined): Arch | undefined {
  if (value === undefined) return undefined;
  const arch = value.startsWith('linux/') ? value.slice('linux/'.length) : value;
  if (!(ARCHS as readonly string[]).includes(arch)) {
    const near = didYouMean(arch, ARCHS);
    throw usageError(`--platform ${JSON.stringify(value)}: unknown platform`, `${near ? `${near} ` : ''}gadget images are built for ${ARCHS.join(' and ')}`);
  }
  return arch as Arch;
}

/** Merges derived values (from gadget.yaml) under the explicit ones: explicit set and unset win. */
export function mergeChange(derived: Record<string, string>, explicit: ResolvedChange): ResolvedChange {
  const set = new Map(Object.entries(derived).filter(([key]) => !explicit.unset.includes(key)));
  for (const [key, value] of Object.entries(explicit.set)) set.set(key, value);
  return { set: Object.fromEntries(set), unset: explicit.unset };
}

