// Runtime validation of gadget.config.ts, before anything runs: every value has the type its
// key needs (a number is a finite positive integer where one is meant), unknown keys are
// errors with a "did you mean", `dependsOn` names existing tasks, and two gadgets never share
// a ref. Messages name the key's path (`gadgets[0].ref`). The keys known are all in SCHEMA.
import { GadgetError, isGadgetError, messageOf } from '../errors.js';
import { parseRef } from '../oci/reference.js';
import { closest } from '../suggest.js';

type Check = (value: unknown, path: string) => void;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : `the number ${value}`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value)}`;
  if (typeof value === 'function') return 'a function';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function invalid(path: string, expected: string, value: unknown, hint: string): GadgetError {
  return new GadgetError(`${path} must be ${expected}, but it is ${describe(value)}`, { exitCode: 2, hint });
}

const text = (hint: string): Check => (v, p) => {
  if (typeof v !== 'string' || v === '') throw invalid(p, 'a non-empty string', v, hint);
};

const anyText = (hint: string): Check => (v, p) => {
  if (typeof v !== 'string') throw invalid(p, 'a string', v, hint);
};

const positiveInteger = (hint: string): Check => (v, p) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw invalid(p, 'a finite positive integer', v, hint);
};

const stringOrList = (hint: string): Check => (v, p) => {
  if (typeof v === 'string') return;
  if (!Array.isArray(v)) throw invalid(p, 'a string or a list of strings', v, hint);
  v.forEach((item, i) => {
    if (typeof item !== 'string') throw invalid(`${p}[${i}]`, 'a string', item, hint);
  });
};

const stringMap = (hint: string): Check => (v, p) => {
  if (!isObject(v)) throw invalid(p, 'a mapping of names to strings', v, hint);
  for (const [k, item] of Object.entries(v)) {
    if (k === '') throw new GadgetError(`${p} has an empty name`, { exitCode: 2, hint });
    if (typeof item !== 'string') throw invalid(`${p}[${JSON.stringify(k)}]`, 'a string', item, hint);
  }
};

const object = (fields: Record<string, Check>, opts: { required?: string[]; what: string; hint: string }): Check => (v, p) => {
  if (!isObject(v)) throw invalid(p, opts.what, v, opts.hint);
  checkKeys(v, p, fields);
  for (const key of opts.required ?? []) {
    if (v[key] === undefined) throw new GadgetError(`${p}.${key} is missing`, { exitCode: 2, hint: opts.hint });
  }
  for (const [key, check] of Object.entries(fields)) if (v[key] !== undefined) check(v[key], `${p}.${key}`);
};

const listOf = (item: Check, hint: string): Check => (v, p) => {
  if (!Array.isArray(v)) throw invalid(p, 'a list', v, hint);
  v.forEach((x, i) => item(x, `${p}[${i}]`));
};

const plugin: Check = (v, p) => {
  if (!isObject(v) || typeof v.name !== 'string' || typeof v.run !== 'function') {
    throw invalid(p, 'a plugin (an object with a name and a run function)', v, 'use a plugin such as build() or verify(), or write { name, run(ctx, input) }');
  }
};

const GADGET_HINT = 'e.g. gadgets: [{ dir: "examples/trace_open", ref: "myorg/trace_open:v1" }]';
const PATH_HINT = 'a path relative to the gadget folder';

const INCLUDE_HINT = 'include roots: folders such as "ig/include"';

const GADGET_FIELDS: Record<string, Check> = {
  name: text('a short name for messages'),
  dir: text('the gadget folder, relative to gadget.config.ts'),
  ref: text('an image reference, e.g. "myorg/trace_open:v1"'),
  ebpfsource: text(PATH_HINT),
  wasm: text(PATH_HINT),
  metadata: anyText(`${PATH_HINT}; "" for none`),
  objects: object({ amd64: text(PATH_HINT), arm64: text(PATH_HINT) }, { what: 'a mapping of architectures to object files', hint: 'e.g. objects: { amd64: "prebuilt/amd64.o", arm64: "prebuilt/arm64.o" }' }),
  btfhub: text('a folder laid out like btfhub-archive'),
  cflags: stringOrList('e.g. cflags: ["-DDEBUG"]'),
  include: listOf(text(INCLUDE_HINT), INCLUDE_HINT),
  annotations: stringMap('e.g. annotations: { "org.example.team": "net" }'),
  igVersion: text('e.g. igVersion: "v0.45.0"'),
};

const TASK_HINT = 'a task is a list of plugin steps, or { description, dependsOn, steps }';

const task: Check = (v, p) => {
  if (Array.isArray(v)) return listOf(plugin, TASK_HINT)(v, p);
  object(
    { description: anyText(TASK_HINT), dependsOn: listOf(text('the name of another task'), TASK_HINT), steps: listOf(plugin, TASK_HINT) },
    { required: ['steps'], what: 'a list of steps or a task definition', hint: TASK_HINT },
  )(v, p);
};

const settings = (hint: string): Check => (v, p) => {
  if (!isObject(v)) throw invalid(p, 'a mapping', v, hint);
};

/** Every key gadget.config.ts may have; `registries` and `mirrors` are checked in depth by the sync plugin. */
export const SCHEMA: Record<string, Check> = {
  store: text('the store folder, relative to gadget.config.ts'),
  gadgets: listOf(object(GADGET_FIELDS, { required: ['dir', 'ref'], what: 'a gadget ({ dir, ref, ... })', hint: GADGET_HINT }), GADGET_HINT),
  igVersion: text('e.g. igVersion: "v0.45.0"'),
  concurrency: positiveInteger('e.g. concurrency: 4 (gadgets built at once)'),
  include: listOf(text(INCLUDE_HINT), INCLUDE_HINT),
  tasks: (v, p) => {
    if (!isObject(v)) throw invalid(p, 'a mapping of task names to tasks', v, TASK_HINT);
    for (const [name, def] of Object.entries(v)) task(def, `${p}.${name}`);
  },
  registries: settings('see "Push, pull, copy and mirror" in the README'),
  mirrors: settings('see "Push, pull, copy and mirror" in the README'),
};

function checkKeys(value: Record<string, unknown>, path: string, fields: Record<string, unknown>): void {
  const known = Object.keys(fields);
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const near = closest(key, known);
    const where = path === '' ? key : `${path}.${key}`;
    throw new GadgetError(`${where} is not a known setting`, { exitCode: 2, hint: near ? `did you mean "${near}"?` : `known here: ${known.join(', ')}` });
  }
}

/** Throws one GadgetError (exit 2) naming the key path of the first problem; `file` prefixes messages. */
export function validateConfig(config: unknown, file: string): void {
  try {
    if (!isObject(config)) throw invalid('the default export', 'an object (defineConfig({ ... }))', config, 'end the file with `export default defineConfig({ ... })`');
    checkKeys(config, '', SCHEMA);
    for (const [key, check] of Object.entries(SCHEMA)) if (config[key] !== undefined) check(config[key], key);
    checkDependsOn(config);
    checkDuplicateRefs((config.gadgets ?? []) as Array<{ ref: string; dir: string }>);
  } catch (err) {
    if (isOurs(err)) throw new GadgetError(`${file}: ${err.message}`, { exitCode: 2, hint: err.hint });
    throw readFailure(err, file);
  }
}

/** A getter or Proxy trap of the config that threw while the config was read, as one sentence (exit 2). */
export function readFailure(err: unknown, file: string): GadgetError {
  return new GadgetError(`cannot load ${file}${lineIn(err, file)}: reading its default export threw: ${firstLine(textOf(err))}`, {
    exitCode: 2,
    hint: 'a getter or Proxy of the config threw when gadget-oci read it: export plain values, or fix the code that threw',
  });
}

// What a config threw can be anything, a Proxy whose every trap throws too: describing it must not throw.

/** Whatever was thrown, as text. */
export function textOf(err: unknown): string {
  try {
    return messageOf(err);
  } catch {
    return 'a value that cannot be shown as text';
  }
}

/** Whether `err` is a GadgetError (a check's own refusal), never throwing. */
export function isOurs(err: unknown): err is GadgetError {
  try {
    return isGadgetError(err);
  } catch {
    return false;
  }
}

/** ":LINE: MESSAGE" for what the config threw (LINE: of its first stack frame in `file`, when there is one). */
export function thrownText(err: unknown, file: string): string {
  return `${lineIn(err, file)}: ${firstLine(textOf(err))}`;
}

/** ":LINE" of the first stack frame in `file` (the line of the config that threw), else "". */
function lineIn(err: unknown, file: string): string {
  let stack = '';
  try {
    stack = err instanceof Error ? String(err.stack ?? '') : '';
  } catch {
    return '';
  }
  for (const line of stack.split('\n')) {
    const at = line.indexOf(file);
    if (at < 0) continue;
    const m = /^:(\d+)(?::\d+)?/.exec(line.slice(at + file.length));
    if (m) return `:${m[1]}`;
  }
  return '';
}

/**
 * The line that says what is wrong: Node's module errors append a "Require stack" listing, and
 * esbuild's "Transform failed with 1 error:" is followed by it, after its location.
 */
export function firstLine(message: string): string {
  const lines = message.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const first = lines[0] ?? '';
  if (/failed with \d+ errors?:$/.test(first) && lines[1]) return lines[1].replace(/^.*?:\d+:\d+: ERROR: /, '');
  return first;
}

function checkDependsOn(config: Record<string, unknown>): void {
  const tasks = (config.tasks ?? {}) as Record<string, unknown>;
  for (const [name, def] of Object.entries(tasks)) {
    if (Array.isArray(def)) continue;
    ((def as { dependsOn?: string[] }).dependsOn ?? []).forEach((dep, i) => {
      if (!Object.hasOwn(tasks, dep)) {
        const near = closest(dep, Object.keys(tasks));
        throw new GadgetError(`tasks.${name}.dependsOn[${i}] names "${dep}", which is not a task`, { exitCode: 2, hint: near ? `did you mean "${near}"?` : `known tasks: ${Object.keys(tasks).join(', ')}` });
      }
    });
  }
}

/** Each gadget's ref once (the config's `gadgets`, and build({ gadgets })): a second would replace the first. */
export function checkDuplicateRefs(gadgets: Array<{ ref: string; dir: string }>): void {
  const seen = new Map<string, number>();
  gadgets.forEach((g, i) => {
    const ref = parseRef(g.ref).toString();
    const first = seen.get(ref);
    if (first !== undefined) {
      const a = gadgets[first]!;
      throw new GadgetError(`gadgets[${first}] (${a.dir}) and gadgets[${i}] (${g.dir}) have the same ref ${ref}`, { exitCode: 2, hint: 'give each gadget its own ref; the second would silently replace the first' });
    }
    seen.set(ref, i);
  });
}
