// What to build: ig's build.yaml (ebpfsource, wasm, metadata, cflags) or the same fields in
// gadget.config.ts, plus what ig cannot take (prebuilt objects, a btfhub folder). Everything
// is resolved and checked here, before anything is compiled or written: every path must stay
// inside the gadget's folder after symlinks are followed (include folders, -I in cflags and
// the btfhub archive are outside inputs by nature), and cflags must be plain compiler options
// (they end up on clang's command line, as arguments, never through a shell).
import { constants, type Stats } from 'node:fs';
import { access, lstat, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYAML } from 'yaml';
import { GadgetError, messageOf } from '../../lib/errors.js';
import { ANN_REF_NAME } from '../../lib/oci/mediatypes.js';
import { parseRef } from '../../lib/oci/reference.js';
import { ARCHS, type Arch } from './arch.js';
import type { WasmSource } from './wasm-source.js';
import { cannotRead, MAX_BUILD_FILE_BYTES, readCapped } from './read.js';

export const BUILD_FILE = 'build.yaml';
export const DEFAULT_EBPF_SOURCE = 'program.bpf.c';
export const DEFAULT_METADATA = 'gadget.yaml';

/** One gadget to build, as gadget.config.ts or the CLI gives it. */
export interface GadgetSpec {
  /** A name for messages (default: the folder's name). */
  name?: string;
  /** The gadget's folder (relative to the config's folder). */
  dir: string;
  /** Image reference, completed like ig does (`trace_open` -> ghcr.io/inspektor-gadget/gadget/trace_open:latest). */
  ref: string;
  /** The eBPF C source, inside `dir` (default: build.yaml's, else `program.bpf.c`). */
  ebpfsource?: string;
  /** The wasm module, inside `dir` (default: build.yaml's). */
  wasm?: string;
  /** The gadget.yaml, inside `dir` (default: build.yaml's, else `gadget.yaml`). */
  metadata?: string;
  /** Prebuilt eBPF objects, used when there is no source or no clang. */
  objects?: { amd64?: string; arm64?: string };
  /** A folder laid out like btfhub-archive; enables the btfgen layer. */
  btfhub?: string;
  /** Extra clang options (`-DDEBUG`), each one argument: no shell ever sees them. */
  cflags?: string[];
  /** Include roots for this gadget (relative to the config's folder), like `gadget build --include DIR`: each adds DIR and DIR/gadget/<arch>. */
  include?: string[];
  /** Extra annotations on the index, manifests and config descriptor, applied last. */
  annotations?: Record<string, string>;
  /** Overrides the config's `igVersion` for this gadget. */
  igVersion?: string;
}

declare module '../../lib/runner/types.js' {
  interface GadgetConfig {
    /** The gadgets that the `build()` step builds. */
    gadgets?: GadgetSpec[];
  }
}

/** A spec with build.yaml merged in and every path checked and made absolute. */
export interface ResolvedGadget {
  name: string;
  /** The gadget folder, symlinks resolved. */
  dir: string;
  ref: string;
  /** build.yaml, when the folder has one. */
  buildFile?: string;
  ebpfsource?: string;
  /** A prebuilt .wasm module. */
  wasm?: string;
  /** Or the Go or Rust source ig compiles to one. */
  wasmSource?: WasmSource;
  metadata?: string;
  objects: Partial<Record<Arch, string>>;
  btfhub?: string;
  cflags: string[];
  /** The spec's `include` roots, as given (resolved with the others by include.ts). */
  include?: string[];
  annotations: Record<string, string>;
  igVersion?: string;
  /** Keys of build.yaml this program does not know (ig ignores them too). */
  unknownKeys: string[];
}

/** The fields of a build.yaml (ig's, plus `objects`, which ig ignores). */
export interface BuildFile {
  ebpfsource?: string;
  wasm?: string;
  metadata?: string;
  cflags?: string[];
  objects?: { amd64?: string; arm64?: string };
  unknownKeys: string[];
}

const BUILD_FILE_KEYS = new Set(['ebpfsource', 'wasm', 'metadata', 'cflags', 'objects']);

function badInput(message: string, hint: string): GadgetError {
  return new GadgetError(message, { hint, exitCode: 2 });
}

/** ig's build.yaml `cflags` is one string split by make; a list is accepted too, one argument per item. */
export function splitCflags(value: unknown, where: string): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return value.split(/\s+/).filter((s) => s.length > 0);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.filter((v) => v.length > 0);
  throw badInput(`${where}: field "cflags" must be a string or a list of strings`, 'e.g. cflags: "-DDEBUG -Wno-unused"');
}

export function parseBuildFile(bytes: Buffer, file: string): BuildFile {
  let doc: unknown;
  try {
    doc = parseYAML(bytes.toString('utf8'));
  } catch (err) {
    throw badInput(`${file} is not valid YAML: ${messageOf(err)}`, 'fix the syntax; see ig\'s build.yaml format (ebpfsource, wasm, metadata, cflags)');
  }
  if (doc === null || doc === undefined) return { unknownKeys: [] };
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw badInput(`${file} must be a mapping of build fields`, 'e.g. "ebpfsource: program.bpf.c"');
  }
  const fields = doc as Record<string, unknown>;
  const out: BuildFile = { unknownKeys: Object.keys(fields).filter((k) => !BUILD_FILE_KEYS.has(k)) };
  for (const key of ['ebpfsource', 'wasm', 'metadata'] as const) {
    const value = fields[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') throw badInput(`${file}: field "${key}" must be a string (a path)`, `e.g. ${key}: ${key === 'metadata' ? DEFAULT_METADATA : key === 'wasm' ? 'program.wasm' : DEFAULT_EBPF_SOURCE}`);
    out[key] = value;
  }
  if (fields.cflags !== undefined) out.cflags = splitCflags(fields.cflags, file);
  if (fields.objects !== undefined && fields.objects !== null) out.objects = parseObjects(fields.objects, file);
  return out;
}

function parseObjects(value: unknown, where: string): { amd64?: string; arm64?: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badInput(`${where}: field "objects" must map an architecture to an object file`, 'e.g. objects: {amd64: prebuilt/amd64.o, arm64: prebuilt/arm64.o}');
  }
  const out: { amd64?: string; arm64?: string } = {};
  for (const [arch, file] of Object.entries(value as Record<string, unknown>)) {
    if (arch !== 'amd64' && arch !== 'arm64') {
      throw badInput(`${where}: field "objects" has architecture "${arch}"`, 'only amd64 and arm64 are built');
    }
    if (typeof file !== 'string' || file === '') throw badInput(`${where}: objects.${arch} must be a path`, `e.g. objects.${arch}: prebuilt/${arch}.o`);
    out[arch] = file;
  }
  return out;
}

function isInside(folder: string, file: string): boolean {
  const rel = path.relative(folder, file);
  return rel === '' || (!rel.startsWith('..' + path.sep) && rel !== '..' && !path.isAbsolute(rel));
}

/** Whether `file` exists; a file that cannot be looked at (permission denied) is an error, not an absence. */
async function exists(file: string, shown = file): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw cannotRead(err, shown, 'a gadget file');
  }
}

/** The nearest folder from `start` up to `top` (both inside the gadget) that holds `marker`. */
async function findUpInside(start: string, top: string, marker: string): Promise<string | undefined> {
  for (let dir = start; isInside(top, dir); dir = path.dirname(dir)) {
    if (await exists(path.join(dir, marker))) return dir;
    if (dir === top) break;
  }
  return undefined;
}

/** The real path of `file`, or (when it does not exist) of its nearest existing parent plus the rest. */
async function realpathLoose(file: string): Promise<string> {
  try {
    return await realpath(file);
  } catch {
    const parent = path.dirname(file);
    if (parent === file) return file;
    return path.join(await realpathLoose(parent), path.basename(file));
  }
}

/**
 * Resolves `value` (a path from `where`, field `field`) against the gadget folder and checks
 * that it stays inside it. Returns the absolute real path, or undefined when the file does
 * not exist and `required` is false.
 */
async function resolveInside(
  g: { dir: string; shownDir: string },
  value: string,
  where: string,
  field: string,
  required: boolean,
  kind: 'file' | 'directory' = 'file',
): Promise<string | undefined> {
  if (value.includes('\0')) throw badInput(`${where}: field "${field}" contains a NUL byte`, 'use a plain relative path');
  const joined = path.resolve(g.dir, value);
  const real = await realpathLoose(joined);
  if (!isInside(g.dir, real)) {
    throw badInput(
      `${where}: field "${field}" ("${value}") resolves to ${real}, outside the gadget folder ${g.shownDir}`,
      'keep every file of a gadget inside its folder (copy it there instead of pointing at it or symlinking it)',
    );
  }
  if (!(await exists(real, path.join(g.shownDir, value)))) {
    if (!required) return undefined;
    throw badInput(`${where}: field "${field}" names ${value}, which does not exist in ${g.shownDir}`, `create it, or fix "${field}"`);
  }
  let info: Stats;
  try {
    info = await stat(real);
  } catch (err) {
    throw cannotRead(err, path.join(g.shownDir, value), field);
  }
  if (kind === 'file' ? !info.isFile() : !info.isDirectory()) {
    throw badInput(`${where}: field "${field}" names ${value}, which is not a ${kind}`, `point "${field}" at a ${kind}`);
  }
  return real;
}

// Options clang may take from a build file. Everything else (-Xclang, -fplugin=, -o, -Wl,...,
// @file, bare words) could run or load code, or write elsewhere, so it is refused.
const SAFE_CFLAGS: RegExp[] = [
  /^-D[A-Za-z_][A-Za-z0-9_]*(=[A-Za-z0-9_.+\-:"'/]*)?$/,
  /^-U[A-Za-z_][A-Za-z0-9_]*$/,
  /^-W(no-)?(error=)?[a-z0-9][a-z0-9-+=]*$/,
  /^-w$/,
  /^-O[0-3sz]?$/,
  /^-g[a-z0-9]*$/,
  /^-std=[a-z0-9+]+$/,
  /^-mcpu=(v[1-4]|probe|generic)$/,
  /^-f(no-)?(?!plugin|pass-plugin|profile|sanitize|crash|debug-prefix|file-prefix|macro-prefix|coverage)[a-z0-9-]+$/,
];

// Plain options that still leave clang with no eBPF object to write: nothing at all
// (-fsyntax-only, -fdriver-only), LLVM bitcode instead of ELF (-flto, -flto=...), or the
// assembly handed to an outside assembler that has no BPF target (-fno-integrated-as).
const NO_OBJECT_CFLAGS = /^-f(syntax-only|driver-only|lto(=.*)?|no-integrated-as)$/;

// Plain options that change how clang finds headers in ways the build cache's probes
// (probes.ts) do not model, so a header that appears or goes could leave a stale image:
// -fms-compatibility searches the folder of every file on the include stack for a quoted
// name, -fms-extensions allows `#pragma include_alias` (a name the scanner never sees),
// and modules and API notes read module maps, .apinotes files and a module cache.
const SEARCH_CFLAGS = /^-f(?!no-)(ms-compatibility|ms-extensions|.*modules?\b.*|.*module-map.*|apinotes.*)$/;

/**
 * Checks cflags from `where`. `-I` folders may be anywhere (a header checkout beside the
 * gadget is normal); they are resolved against the gadget folder, must exist, and are made
 * absolute. Every flag stays one argument of clang's argument array.
 */
async function checkCflags(g: { dir: string; shownDir: string }, flags: string[], where: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const flag = flags[i]!;
    if (flag === '-I' || flag.startsWith('-I')) {
      const dir = flag === '-I' ? flags[++i] : flag.slice(2);
      if (dir === undefined || dir === '') throw badInput(`${where}: cflags end with "-I" and no folder`, 'write -Iinclude or -I include');
      if (dir.includes('\0')) throw badInput(`${where}: cflags -I folder contains a NUL byte`, 'use a plain path');
      let real: string;
      try {
        real = await realpath(path.resolve(g.dir, dir));
        if (!(await stat(real)).isDirectory()) throw new Error('not a folder');
      } catch {
        throw badInput(`${where}: cflags -I${dir} names a folder that does not exist (from ${g.shownDir})`, 'fix the path; relative folders are relative to the gadget folder');
      }
      out.push(`-I${real}`);
      continue;
    }
    if (NO_OBJECT_CFLAGS.test(flag)) {
      throw badInput(`${where}: cflags option "${flag}" stops clang from writing the eBPF object the gadget is made of`, `remove "${flag}"; the build compiles with -c to one eBPF object per architecture`);
    }
    if (SEARCH_CFLAGS.test(flag)) {
      throw badInput(`${where}: cflags option "${flag}" changes where clang looks for headers in a way the build cache cannot check`, `remove "${flag}"; headers are found through -I folders and the include roots`);
    }
    if (!SAFE_CFLAGS.some((re) => re.test(flag))) {
      throw badInput(
        `${where}: cflags option "${flag}" is not allowed`,
        'cflags may hold -D, -U, -I, -W, -w, -O, -g, -std=, -mcpu= and -f options',
      );
    }
    out.push(flag);
  }
  return out;
}

/** The ref a build tags: parsed and completed, never a digest (a digest names content, it cannot be given to new content). */
export function buildRef(input: string, where: string): string {
  const ref = parseRef(input);
  if (ref.digest !== undefined) {
    throw badInput(`${where}: "${input}" names a digest; a build can only be tagged`, `use a tag, e.g. ${ref.name}:${ref.tag ?? 'v1'}`);
  }
  return ref.toString();
}

/** Extra annotations (config `annotations`, `--annotation`): string values, plain keys, and never the layout's tag. */
export function checkAnnotations(value: unknown, where: string): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badInput(`${where}: "annotations" must map names to strings`, 'e.g. annotations: {"org.example.team": "net"}');
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k === '' || typeof v !== 'string') throw badInput(`${where}: annotation "${k}" must have a non-empty name and a string value`, 'quote the value');
    if (k === ANN_REF_NAME) throw badInput(`${where}: annotation ${k} holds the tag of an image in an OCI layout and cannot be set`, 'use -t REF (or `gadget tag`) to give the image a reference');
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(k) || v.includes('\0')) throw badInput(`${where}: annotation ${JSON.stringify(k)} contains a control character`, 'annotation keys are plain text, values have no NUL byte');
    out[k] = v;
  }
  return out;
}

export interface ResolveOptions {
  /** Folder that relative `dir` values are relative to. */
  cwd: string;
  /** Where the spec came from, for messages (default "the gadget spec"). */
  source?: string;
}

/** Reads build.yaml, merges the spec over it, and checks every field. Writes nothing. */
export async function resolveGadget(spec: GadgetSpec, opts: ResolveOptions): Promise<ResolvedGadget> {
  if (typeof spec !== 'object' || spec === null || typeof spec.dir !== 'string' || spec.dir === '') {
    throw badInput(`${opts.source ?? 'the gadget spec'}: a gadget needs a "dir"`, 'e.g. { dir: "examples/trace_open", ref: "trace_open" }');
  }
  const shownDir = spec.dir;
  const source = opts.source ?? `the gadget spec for ${shownDir}`;
  let dir: string;
  try {
    dir = await realpath(path.resolve(opts.cwd, spec.dir));
    if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
  } catch {
    throw badInput(`${source}: gadget folder ${shownDir} does not exist or is not a folder`, opts.source ? 'fix "dir"' : 'give the folder of a gadget (its program.bpf.c, gadget.yaml or build.yaml)');
  }
  try {
    // Without this, an unreadable folder would look empty ("nothing to build").
    await access(dir, constants.R_OK | constants.X_OK);
  } catch (err) {
    throw cannotRead(err, shownDir, 'the gadget folder');
  }
  if (typeof spec.ref !== 'string' || spec.ref === '') {
    throw badInput(`${source}: gadget ${shownDir} has no image reference ("ref")`, 'e.g. ref: "ghcr.io/myorg/mygadget:latest" (or -t REF)');
  }
  const ref = buildRef(spec.ref, source);
  const g = { dir, shownDir };

  const buildPath = path.join(dir, BUILD_FILE);
  let file: BuildFile = { unknownKeys: [] };
  let buildFile: string | undefined;
  const shownBuild = path.join(shownDir, BUILD_FILE);
  if (await exists(buildPath, shownBuild)) {
    buildFile = await resolveInside(g, BUILD_FILE, shownBuild, 'build file', true);
    file = parseBuildFile(await readCapped(buildFile!, shownBuild, 'build file', MAX_BUILD_FILE_BYTES), shownBuild);
  }

  // Spec fields win over build.yaml; each path is checked against the file that named it.
  const pick = <K extends 'ebpfsource' | 'wasm' | 'metadata'>(key: K) =>
    spec[key] !== undefined ? { value: spec[key], where: source } : file[key] !== undefined ? { value: file[key], where: shownBuild } : undefined;

  const ebpf = pick('ebpfsource');
  if (ebpf?.value === '') throw badInput(`${ebpf.where}: field "ebpfsource" is empty`, `name the eBPF source (default ${DEFAULT_EBPF_SOURCE}) or remove the field`);
  const ebpfsource = ebpf
    ? await resolveInside(g, ebpf.value!, ebpf.where, 'ebpfsource', true)
    : await resolveInside(g, DEFAULT_EBPF_SOURCE, source, 'ebpfsource (default)', false);

  // As in ig, an empty `metadata` means "no gadget.yaml" (the OCI empty config).
  const meta = pick('metadata');
  const metadata = meta?.value === ''
    ? undefined
    : meta
    ? await resolveInside(g, meta.value!, meta.where, 'metadata', true)
    : await resolveInside(g, DEFAULT_METADATA, source, 'metadata (default)', false);

  const wasmField = pick('wasm');
  let wasm: string | undefined;
  let wasmSource: WasmSource | undefined;
  if (wasmField && wasmField.value !== '') {
    const value = wasmField.value!;
    const lang = value.endsWith('.go') ? 'go' : value.endsWith('.rs') ? 'rust' : undefined;
    if (!value.endsWith('.wasm') && !lang) {
      throw badInput(
        `${wasmField.where}: field "wasm" names ${value}, which is neither a .wasm module nor a Go (.go) or Rust (.rs) source`,
        'point "wasm" at a .wasm file, or at the Go or Rust source that ig compiles (wasm: go/program.go, wasm: rust/src/lib.rs)',
      );
    }
    const file = (await resolveInside(g, value, wasmField.where, 'wasm', true))!;
    if (!lang) {
      wasm = file;
    } else {
      // Go runs in the file's folder within its module; Rust in the file's folder within its package.
      const marker = lang === 'go' ? 'go.mod' : 'Cargo.toml';
      const root = await findUpInside(path.dirname(file), dir, marker);
      if (!root) throw badInput(`${wasmField.where}: field "wasm" names ${value}, but no ${marker} was found above it inside ${shownDir}`, `ig builds it as a ${lang === 'go' ? 'Go module' : 'Cargo package'}: add ${marker}`);
      wasmSource = { lang, file, dir: path.dirname(file), root };
    }
  } else if (!wasmField && !buildFile) {
    // No build.yaml to name it: a folder whose one module is a .wasm file is a wasm gadget.
    const modules = (await readdir(dir)).filter((name) => name.endsWith('.wasm')).sort();
    if (modules.length > 1) {
      throw badInput(`${source}: gadget folder ${shownDir} has ${modules.length} .wasm modules (${modules.join(', ')}) and no build.yaml to say which to pack`, 'add a build.yaml with "wasm: NAME.wasm"');
    }
    if (modules.length === 1) wasm = await resolveInside(g, modules[0]!, source, 'wasm (the folder\'s only module)', true);
  }

  const objects: Partial<Record<Arch, string>> = {};
  const objectsField = spec.objects !== undefined ? { value: parseObjects(spec.objects, source), where: source } : file.objects ? { value: file.objects, where: shownBuild } : undefined;
  for (const arch of ARCHS) {
    const value = objectsField?.value[arch];
    if (value !== undefined) objects[arch] = await resolveInside(g, value, objectsField!.where, `objects.${arch}`, true);
  }

  let btfhub: string | undefined;
  if (spec.btfhub !== undefined) {
    // The btfhub archive is an outside input by nature (ig takes it as --btfhub-archive).
    try {
      btfhub = await realpath(path.resolve(opts.cwd, spec.btfhub));
      if (!(await stat(btfhub)).isDirectory()) throw new Error('not a folder');
    } catch {
      throw badInput(`${source}: btfhub folder ${spec.btfhub} does not exist or is not a folder`, 'point "btfhub" at a folder laid out like btfhub-archive (<distro>/<version>/<arch>/<kernel>.btf[.tar.xz])');
    }
  }

  let cflags: string[] = [];
  if (spec.cflags !== undefined) cflags = await checkCflags(g, splitCflags(spec.cflags, source), source);
  else if (file.cflags) cflags = await checkCflags(g, file.cflags, shownBuild);

  if (!ebpfsource && !metadata && !wasm && !wasmSource && objects.amd64 === undefined && objects.arm64 === undefined) {
    throw badInput(
      `${source}: gadget folder ${shownDir} has nothing to build`,
      `add at least one of ${DEFAULT_EBPF_SOURCE}, ${DEFAULT_METADATA}, a .wasm module, or prebuilt objects`,
    );
  }
  if (spec.igVersion !== undefined && (typeof spec.igVersion !== 'string' || spec.igVersion === '')) {
    throw badInput(`${source}: "igVersion" must be a non-empty string`, 'e.g. igVersion: "v0.45.0"');
  }

  return {
    name: spec.name ?? path.basename(dir),
    dir,
    ref,
    buildFile,
    ebpfsource,
    wasm,
    ...(wasmSource ? { wasmSource } : {}),
    metadata,
    objects,
    btfhub,
    cflags,
    include: spec.include,
    annotations: checkAnnotations(spec.annotations, source),
    igVersion: spec.igVersion,
    unknownKeys: file.unknownKeys,
  };
}
