// Reading gadget.yaml: safe YAML parsing (size and alias limits, no duplicate keys), schema
// validation, errors that name the file, the field and the line, and the OCI annotations
// that ig derives from the metadata.
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, visit, type Document, type Node, type YAMLError } from 'yaml';
import { GadgetError } from '../errors.js';
import { editDistance } from '../suggest.js';
import { ANN_DESCRIPTION, ANN_DOCUMENTATION, ANN_SOURCE, ANN_TITLE, ANN_URL } from '../oci/mediatypes.js';
import { GADGET_METADATA_SCHEMA, METADATA_TOP_LEVEL_KEYS } from './metadata-schema.js';

/** gadget.yaml files are a few KiB; anything above this is refused before parsing. */
export const MAX_METADATA_BYTES = 1024 * 1024;
/** Unknown keys worded one by one in the warnings; the rest are counted. */
const MAX_WORDED_WARNINGS = 20;
/** Alias expansions allowed while building the value ("billion laughs" guard). */
export const MAX_METADATA_ALIASES = 100;

/**
 * A validated gadget.yaml. The five descriptive fields and `annotations` hold the text ig
 * derives from them (Go's yaml.v2 turns `true` into "true", an empty value into ""); every
 * other top-level key keeps its parsed YAML value.
 */
export interface GadgetMetadata {
  name?: string;
  description?: string;
  homepageURL?: string;
  documentationURL?: string;
  sourceURL?: string;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

const TEXT_FIELDS = ['name', 'description', 'homepageURL', 'documentationURL', 'sourceURL'] as const;

let validator: ValidateFunction | undefined;

function validate(value: unknown): ErrorObject[] {
  // ajv is loaded and the schema compiled on first use: most commands never read a gadget.yaml.
  if (!validator) {
    const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
    validator = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(GADGET_METADATA_SCHEMA);
  }
  return validator(value) ? [] : [...(validator.errors ?? [])];
}

interface Context {
  file: string;
  text: string;
  doc: Document.Parsed;
  lines: LineCounter;
}

/** A key ig ignores (unknown, or a typo): reported, never fatal, as ig decodes leniently. */
export interface MetadataWarning {
  /** `gadget.yaml:3: unknown top-level key "descriptoin"`. */
  message: string;
  hint: string;
}

/** Parses and validates gadget.yaml bytes; throws one GadgetError naming file, field and line. */
export function parseMetadata(bytes: Buffer, file: string): GadgetMetadata {
  return readMetadata(bytes, file).meta;
}

/**
 * Parses gadget.yaml as ig does: unknown keys are ignored (returned as warnings) and of
 * duplicate keys the last wins. Throws for what breaks ig: invalid YAML, known keys of the
 * wrong type.
 */
export function readMetadata(bytes: Buffer, file: string): { meta: GadgetMetadata; warnings: MetadataWarning[] } {
  if (bytes.length > MAX_METADATA_BYTES) {
    throw new GadgetError(`${file}: the metadata file is ${bytes.length} bytes, more than the ${MAX_METADATA_BYTES} allowed`, {
      hint: 'gadget.yaml describes a gadget in a few KiB; check that the right file was given',
    });
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new GadgetError(`${file}: the metadata file is not valid UTF-8`, { hint: 'save gadget.yaml as UTF-8 text' });
  }

  const lines = new LineCounter();
  let doc: Document.Parsed;
  try {
    // Go's yaml decoding keeps the last of duplicate keys; so does uniqueKeys: false.
    // logLevel 'error': the library's own warnings (a key that is a list) would go to stderr; this code reports them.
    doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, merge: true, prettyErrors: false, logLevel: 'error' });
  } catch (err) {
    // The parser recurses on nesting; a hostile file can exhaust the stack.
    throw new GadgetError(`${file}: the metadata file could not be parsed as YAML`, { hint: 'check for runaway nesting', cause: err });
  }
  const ctx: Context = { file, text, doc, lines };
  checkControlCharacters(ctx);
  const syntax = doc.errors[0];
  if (syntax) throw yamlSyntaxError(ctx, syntax);

  if (!isMap(doc.contents)) {
    const what = doc.contents === null ? 'empty' : describeNode(doc.contents);
    throw new GadgetError(`${file}:${lineOf(ctx, doc.contents)}: the metadata must be a YAML mapping (name: ..., description: ...), but it is ${what}`, {
      hint: 'start gadget.yaml with top-level keys such as "name:" and "description:"',
    });
  }

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_METADATA_ALIASES });
  } catch (err) {
    if (err instanceof ReferenceError) throw aliasError(ctx, err);
    throw new GadgetError(`${file}: the metadata file could not be read: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }

  const all = validate(value);
  const errors = all.filter((e) => e.keyword !== 'additionalProperties');
  if (errors.length) throw schemaError(ctx, errors[0]!, errors);
  // Locating a key is linear in its mapping: only the first few warnings are worded, so that
  // a file of 60 000 unknown keys stays linear; the count says the rest.
  const unknown = all.filter((e) => e.keyword === 'additionalProperties');
  const warnings = unknown.slice(0, MAX_WORDED_WARNINGS).map((e) => schemaError(ctx, e, [e])).map((e) => ({ message: e.message, hint: e.hint ?? '' }));
  if (unknown.length > MAX_WORDED_WARNINGS) {
    warnings.push({ message: `${file}: ${unknown.length - MAX_WORDED_WARNINGS} more unknown keys`, hint: 'ig ignores keys it does not know' });
  }
  return { meta: typedMetadata(ctx, value as Record<string, unknown>), warnings };
}

/**
 * The annotations ig writes from gadget.yaml, in ig's order: the five OCI keys (always, ''
 * when missing), then the file's own `annotations` map, which overrides them.
 */
export function metadataAnnotations(meta: GadgetMetadata): Record<string, string> {
  const out: Record<string, string> = {
    [ANN_TITLE]: meta.name ?? '',
    [ANN_DESCRIPTION]: meta.description ?? '',
    [ANN_URL]: meta.homepageURL ?? '',
    [ANN_DOCUMENTATION]: meta.documentationURL ?? '',
    [ANN_SOURCE]: meta.sourceURL ?? '',
  };
  for (const [key, val] of Object.entries(meta.annotations ?? {})) setOwn(out, key, val);
  return out;
}

/** Assignment that also keeps a key named "__proto__" as data, as Go's maps do. */
function setOwn(target: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

// ---------------------------------------------------------------- typed result

function typedMetadata(ctx: Context, value: Record<string, unknown>): GadgetMetadata {
  const root = ctx.doc.contents as Node;
  const meta: GadgetMetadata = { ...value };
  const entries = mapEntries(ctx.doc, root);
  for (const key of TEXT_FIELDS) {
    if (!(key in value)) continue;
    const node = entries.get(key);
    meta[key] = node === undefined ? plainText(value[key]) : goText(ctx.doc, node);
  }
  if ('annotations' in value) {
    const annotations: Record<string, string> = {};
    const node = entries.get('annotations');
    const resolved = node && isAlias(node) ? node.resolve(ctx.doc) : node;
    if (resolved && isMap(resolved)) {
      for (const pair of resolved.items) {
        const key = pair.key as Node | null;
        if (key && !isScalar(key) && !isAlias(key)) {
          throw new GadgetError(`${ctx.file}:${lineOf(ctx, key)}: annotations has a key that is ${describeNode(key)}, not a string`, { hint: 'annotation keys are plain strings such as "io.inspektor-gadget.foo"' });
        }
      }
      for (const [key, val] of mapEntries(ctx.doc, resolved)) setOwn(annotations, key, goText(ctx.doc, val));
    }
    meta.annotations = annotations;
  }
  return meta;
}

/** A mapping's entries by Go key text, with `<<` merges applied (explicit keys win). */
function mapEntries(doc: Document, node: Node, seen = new Set<Node>()): Map<string, Node | null> {
  const out = new Map<string, Node | null>();
  if (!isMap(node) || seen.has(node)) return out;
  seen.add(node);
  const merged: Node[] = [];
  for (const pair of node.items) {
    const key = pair.key as Node | null;
    const val = (pair.value ?? null) as Node | null;
    if (key && isScalar(key) && typeof key.value === 'symbol') {
      if (val && isSeq(val)) merged.push(...(val.items as Node[]));
      else if (val) merged.push(val);
      continue;
    }
    out.set(key ? goText(doc, key) : '', val);
  }
  for (const source of merged) {
    const target = isAlias(source) ? source.resolve(doc) : source;
    if (!target) continue;
    for (const [k, v] of mapEntries(doc, target, seen)) if (!out.has(k)) out.set(k, v);
  }
  return out;
}

/** The string Go's yaml.v2 stores for a plain value: quoted text as is, other scalars as written. */
function goText(doc: Document, node: Node | null): string {
  const target = node && isAlias(node) ? node.resolve(doc) : node;
  if (!target || !isScalar(target)) return '';
  const v = target.value;
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  return target.source ?? String(v);
}

function plainText(v: unknown): string {
  return v === null || v === undefined ? '' : String(v);
}

// ---------------------------------------------------------------- errors

function lineAt(ctx: Context, offset: number): number {
  return ctx.lines.linePos(offset).line;
}

function lineOf(ctx: Context, node: Node | null | undefined): number {
  return node?.range ? lineAt(ctx, node.range[0]) : 1;
}

function describeNode(node: Node | null | undefined): string {
  if (!node) return 'empty';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isAlias(node)) return 'an alias';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null || v === undefined) return 'empty';
    return typeof v === 'string' ? 'a string' : `a ${typeof v} (${node.source ?? String(v)})`;
  }
  return 'another kind of value';
}

const MAX_SHOWN_PATH = 160;

/** `datasources.events.fields.pid.annotations["columns.width"]` (long paths are shortened). */
export function formatFieldPath(segments: readonly (string | number)[]): string {
  const full = segments
    .map((s, i) => {
      if (typeof s === 'number') return `[${s}]`;
      if (/^[A-Za-z0-9_-]+$/.test(s)) return i === 0 ? s : `.${s}`;
      return `[${JSON.stringify(s)}]`;
    })
    .join('');
  return full.length > MAX_SHOWN_PATH ? `${full.slice(0, MAX_SHOWN_PATH)}…` : full;
}

interface Located {
  segments: (string | number)[];
  /** The key that names the value (absent for list items and the root). */
  key?: Node | null;
  value: Node | null;
}

/** Follows a JSON pointer through the YAML nodes, as far as it leads. */
function locate(ctx: Context, pointer: string): Located {
  const parts = pointer === '' ? [] : pointer.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const found: Located = { segments: [], value: ctx.doc.contents as Node | null };
  for (const part of parts) {
    const node = found.value && isAlias(found.value) ? found.value.resolve(ctx.doc) ?? null : found.value;
    if (node && isSeq(node)) {
      const index = Number(part);
      found.segments.push(index);
      found.key = undefined;
      found.value = (node.items[index] as Node | undefined) ?? null;
      continue;
    }
    found.segments.push(part);
    // The last of duplicate keys is the one that counts (see parseDocument above).
    const pair = node && isMap(node) ? [...node.items].reverse().find((p) => goText(ctx.doc, p.key as Node) === part || String((p.key as { value?: unknown })?.value) === part) : undefined;
    found.key = (pair?.key as Node | undefined) ?? null;
    found.value = (pair?.value as Node | undefined) ?? null;
    if (!pair) break; // came through a merge: the nearest line is the best we can do
  }
  return found;
}

const CONTAINER_HINTS: Record<string, string> = {
  datasource: 'a data source holds only "annotations" and "fields"',
  field: 'a field holds only "annotations"',
};

function schemaError(ctx: Context, error: ErrorObject, all: ErrorObject[]): GadgetError {
  const extra = all.length > 1 ? ` (${all.length - 1} more problem(s) after this one)` : '';
  if (error.keyword === 'additionalProperties') {
    const name = String((error.params as { additionalProperty: string }).additionalProperty);
    const at = locate(ctx, `${error.instancePath}/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`);
    const line = lineOf(ctx, at.key ?? at.value);
    if (error.instancePath === '') {
      return new GadgetError(`${ctx.file}:${line}: unknown top-level key "${name}"${extra}`, { hint: topLevelHint(name) });
    }
    const parent = formatFieldPath(at.segments.slice(0, -1));
    const kind = at.segments.length === 3 ? 'datasource' : 'field';
    return new GadgetError(`${ctx.file}:${line}: ${parent} has an unknown key "${name}"${extra}`, {
      hint: `${CONTAINER_HINTS[kind]}; put settings under "annotations"`,
    });
  }
  const at = locate(ctx, error.instancePath);
  const line = lineOf(ctx, at.key ?? at.value);
  const path = formatFieldPath(at.segments) || 'the document';
  if (error.keyword === 'type') {
    const expected = expectedPhrase((error.params as { type: string | string[] }).type);
    const actual = describeNode(at.value);
    return new GadgetError(`${ctx.file}:${line}: ${path} must be ${expected}, but it is ${actual}${extra}`, { hint: typeHint(at.segments, expected) });
  }
  return new GadgetError(`${ctx.file}:${line}: ${path} ${error.message ?? 'is invalid'}${extra}`, {
    hint: 'see https://www.inspektor-gadget.io/docs/latest/gadget-devel/metadata',
  });
}

function expectedPhrase(type: string | string[]): string {
  const types = Array.isArray(type) ? type : [type];
  if (types.includes('string')) return 'a plain value such as a string';
  if (types.includes('array')) return 'a list';
  return 'a mapping';
}

function typeHint(segments: (string | number)[], expected: string): string {
  const last = segments[segments.length - 1];
  if (segments.includes('annotations') && last !== 'annotations') {
    return 'annotation values are strings: quote them ("...") or join a list into one string';
  }
  if (expected === 'a mapping') return 'write the entries as "key: value" lines indented under the key, not as a "- item" list';
  return 'write a single value; quote it if it contains ":" or starts with a special character';
}

function topLevelHint(name: string): string {
  const lower = name.toLowerCase();
  const close =
    METADATA_TOP_LEVEL_KEYS.find((k) => k.toLowerCase() === lower) ??
    // Lengths more than 2 apart are never near enough, so a hostile long key costs nothing.
    METADATA_TOP_LEVEL_KEYS.find((k) => Math.abs(k.length - name.length) <= 2 && editDistance(k, name) <= Math.min(2, Math.floor(k.length / 4)));
  if (close) return `did you mean "${close}"? ig ignores keys it does not know, so this value would be lost`;
  return `known keys: ${METADATA_TOP_LEVEL_KEYS.join(', ')}`;
}

/** The path to the deepest node around a byte offset, for syntax errors. */
function pathAt(ctx: Context, offset: number): string {
  const segments: (string | number)[] = [];
  let node = ctx.doc.contents as Node | null;
  const inside = (n: Node | null | undefined): boolean => !!n?.range && n.range[0] <= offset && offset < n.range[2];
  while (node) {
    let next: Node | null = null;
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = pair.key as Node | null;
        const value = pair.value as Node | null;
        if (inside(value) || inside(key)) {
          segments.push(key ? goText(ctx.doc, key) : '');
          next = inside(value) ? value : null;
          break;
        }
      }
    } else if (isSeq(node)) {
      const index = node.items.findIndex((item) => inside(item as Node));
      if (index >= 0) {
        segments.push(index);
        next = node.items[index] as Node;
      }
    }
    node = next;
  }
  return formatFieldPath(segments);
}

function yamlSyntaxError(ctx: Context, err: YAMLError): GadgetError {
  // Errors found at the end of input (an unclosed bracket) belong to the last written line.
  const offset = Math.min(err.pos[0], Math.max(0, ctx.text.trimEnd().length - 1));
  const path = pathAt(ctx, offset);
  const where = path ? ` (in ${path})` : '';
  if (err.code === 'DUPLICATE_KEY') {
    return new GadgetError(`${ctx.file}:${lineAt(ctx, offset)}: a key appears twice in the same mapping${where}`, {
      hint: 'keep one of the two entries',
    });
  }
  if (err.code === 'RESOURCE_EXHAUSTION') {
    return new GadgetError(`${ctx.file}:${lineAt(ctx, offset)}: the YAML nests too deeply to be read`, {
      hint: 'gadget.yaml needs only a few levels of nesting; check for unbalanced brackets',
    });
  }
  if (err.code === 'MULTIPLE_DOCS') {
    return new GadgetError(`${ctx.file}:${lineAt(ctx, offset)}: the metadata file holds more than one YAML document`, {
      hint: 'remove the "---" separator and merge the documents',
    });
  }
  return new GadgetError(`${ctx.file}:${lineAt(ctx, offset)}: invalid YAML${where}: ${err.message}`, {
    hint: 'fix the indentation, quotes or brackets at that line',
  });
}

/** Go's YAML reader refuses control characters (but tab, CR, LF) anywhere in the file; so does this one. */
function checkControlCharacters(ctx: Context): void {
  // eslint-disable-next-line no-control-regex
  const m = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.exec(ctx.text);
  if (!m) return;
  const path = pathAt(ctx, m.index);
  const code = `U+${m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  throw new GadgetError(`${ctx.file}:${lineAt(ctx, m.index)}: the control character ${code} is not allowed in YAML${path ? ` (in ${path})` : ''}`, {
    hint: 'remove it; write escapes such as "\\t" inside a double-quoted string instead',
  });
}

function aliasError(ctx: Context, err: Error): GadgetError {
  let first: Node | undefined;
  visit(ctx.doc, {
    Alias(_, node) {
      first = node;
      return visit.BREAK;
    },
  });
  const line = lineOf(ctx, first);
  const path = first?.range ? pathAt(ctx, first.range[0]) : '';
  const where = path ? ` (first alias in ${path})` : '';
  return new GadgetError(`${ctx.file}:${line}: the YAML expands more than ${MAX_METADATA_ALIASES} aliases (*name)${where}, which looks like a "billion laughs" attack`, {
    hint: 'write the values out instead of repeating aliases',
    cause: err,
  });
}
