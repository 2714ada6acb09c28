// Object keys that JSON readers disagree on. Go's encoding/json, which ig (and oras, and
// containerd) decode manifests with, matches a key to a struct field case-insensitively and
// lets the last matching key win: in `{"manifests": [A], "Manifests": [B]}` ig runs B while
// JSON.parse gives us A. Both keep only the last of two identical keys, silently, and other
// readers keep the first. So a manifest or index that has either is read differently by
// different tools, and anything we check or copy of it may not be what ig runs: it is refused.
// JSON.parse cannot tell (it has already merged the keys), hence this small scanner.
import { GadgetError } from '../errors.js';
import { MALFORMED_MANIFEST_HINT } from './manifest-kind.js';

export interface KeyClash {
  /** JSON pointer of the object that holds both keys ("/" the document itself). */
  path: string;
  /** The later key. */
  key: string;
  /** The earlier key it clashes with (equal to `key` for a duplicate); with `alone`, the field it is read as. */
  earlier: string;
  /** A key that differs only in case from a field of the OCI documents, with no key of that field's own spelling before it. */
  alone?: true;
}

/** The fields of manifests, indexes, descriptors and platforms, by their folded form. */
const FIELDS = new Map(
  ['schemaVersion', 'mediaType', 'artifactType', 'config', 'layers', 'manifests', 'subject', 'annotations', 'digest', 'size', 'urls', 'data', 'platform', 'architecture', 'os', 'os.version', 'os.features', 'variant', 'features', 'blobs'].map((f) => [f.toLowerCase(), f]),
);

/**
 * Go folds a key with Unicode simple case folding before it looks up the field, so besides
 * ASCII case, U+017F (long s) matches "s" and U+212A (Kelvin sign) matches "k" (toLowerCase
 * maps the Kelvin sign to "k" already; the long s has no lowercase of its own).
 */
function fold(key: string): string {
  return key.replace(/\u017f/g, 's').toLowerCase();
}

interface Frame {
  path: string;
  /** Present for an object: its keys so far, by their folded form (exact form in a map). */
  keys?: Map<string, string>;
  /** An annotations map: Go decodes it into a map[string]string, where case matters. */
  exact?: boolean;
  /** The last key of an object; the position in an array. */
  key?: string;
  index: number;
}

/**
 * The first pair of keys of one object that are the same, or the same up to case outside an
 * annotations map; undefined when there is none. `text` must be valid JSON (parse it first):
 * the scanner only tracks strings and brackets. It is iterative, so deep nesting cannot
 * overflow the stack.
 */
export function keyClash(text: string): KeyClash | undefined {
  const stack: Frame[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{' || c === '[') {
      const parent = stack[stack.length - 1];
      const step = parent === undefined ? '' : `/${parent.keys ? pointerToken(parent.key ?? '') : parent.index}`;
      const exact = c === '{' && parent?.keys !== undefined && fold(parent.key ?? '') === 'annotations';
      stack.push(c === '{' ? { path: (parent?.path ?? '') + step, keys: new Map(), exact, index: 0 } : { path: (parent?.path ?? '') + step, index: 0 });
      expectKey = c === '{';
    } else if (c === '}' || c === ']') {
      stack.pop();
      expectKey = false;
    } else if (c === ',') {
      const top = stack[stack.length - 1]!;
      if (top.keys) expectKey = true;
      else top.index++;
    } else if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (expectKey) {
        const top = stack[stack.length - 1]!;
        // Escapes ("\u004danifests") are decoded as every reader decodes them.
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        const id = top.exact ? key : fold(key);
        const earlier = top.keys!.get(id);
        if (earlier !== undefined) return { path: top.path || '/', key, earlier };
        // Alone, "Annotations" is still ig's annotations, and nothing to JSON.parse's readers.
        const field = top.exact ? undefined : FIELDS.get(id);
        if (field !== undefined && field !== key) return { path: top.path || '/', key, earlier: field, alone: true };
        top.keys!.set(id, key);
        top.key = key;
        expectKey = false;
      }
      i = end;
    }
    // Anything else is whitespace, ':' or a number or literal: nothing to track.
  }
  return undefined;
}

function pointerToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The clash as the end of a sentence: "holds the key ... at /...". */
export function describeClash(clash: KeyClash): string {
  const at = `at ${clash.path}`;
  if (clash.alone) return `holds the key ${JSON.stringify(clash.key)} ${at}, which ig (Go's encoding/json) reads as ${JSON.stringify(clash.earlier)} where other readers ignore it`;
  if (clash.key === clash.earlier) return `holds the key ${JSON.stringify(clash.key)} twice ${at}, and JSON readers disagree on which one counts`;
  return `holds both ${JSON.stringify(clash.earlier)} and ${JSON.stringify(clash.key)} ${at}, which ig (Go's encoding/json) reads as one key, the last one, where other readers see two`;
}

/** Throws when the document's keys clash (see keyClash); `what` names it. `text` must be valid JSON. */
export function checkKeys(text: string, what: string): void {
  const clash = keyClash(text);
  if (clash) throw new GadgetError(`${what} ${describeClash(clash)}`, { hint: MALFORMED_MANIFEST_HINT });
}
