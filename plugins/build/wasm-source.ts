// Wasm from source, as ig's Makefile.build compiles it: Go with
// `GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build -o OUT -buildmode=c-shared -ldflags "-w -s" FILE`
// run in the source's folder (a wasip1 reactor module needs Go 1.24 or newer), and Rust with
// `cargo build --target wasm32-wasip1 --release` run in the source's folder, then the package's
// .wasm from the target folder. Child processes get argument arrays, never a shell.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, readlink, realpath, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { GadgetError, messageOf } from '../../lib/errors.js';
import { sha256 } from '../../lib/oci/digest.js';
import { findTool, unavailable } from './compile.js';
import { tomlStrings } from './toml.js';
import { makeWorkDir, removeStaleWorkDirs } from './workdir.js';

const run = promisify(execFile);

export type WasmLanguage = 'go' | 'rust';

export interface WasmSource {
  lang: WasmLanguage;
  /** The source file build.yaml names (absolute). */
  file: string;
  /** Where the toolchain runs: the file's folder, as ig's `cd $(dir $(WASM))`. */
  dir: string;
  /** Go: the folder holding go.mod; Rust: the folder holding Cargo.toml. Its files are hashed. */
  root: string;
}

/** Go 1.24 is the first with `-buildmode=c-shared` for wasip1 (a reactor module, as ig loads it). */
export const GO_MIN = [1, 24] as const;
/** Rust 1.78 is the first with the target named wasm32-wasip1. */
export const RUST_MIN = [1, 78] as const;

const PREBUILT_HINT = 'or build the module elsewhere and give the prebuilt .wasm instead (build.yaml: wasm: program.wasm)';

function toolchainError(message: string, install: string): GadgetError {
  return new GadgetError(message, { hint: `${install}, ${PREBUILT_HINT}`, exitCode: 2 });
}

/** The language of a `wasm:` value that is not a .wasm file, or undefined when unsupported. */
export function wasmLanguage(file: string): WasmLanguage | undefined {
  if (file.endsWith('.go')) return 'go';
  if (file.endsWith('.rs')) return 'rust';
  return undefined;
}

/** The nearest folder from `start` up to `stop` (inclusive) that holds `marker`. */
export function findUp(start: string, stop: string, marker: string): string | undefined {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, marker))) return dir;
    if (dir === stop || path.dirname(dir) === dir || !dir.startsWith(stop)) return undefined;
  }
}

function versionAtLeast(found: number[], min: readonly number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    const f = found[i] ?? 0;
    if (f !== min[i]) return f > min[i]!;
  }
  return true;
}

export interface WasmToolchain {
  tool: string;
  /** For the build cache: `go version go1.24.2 linux/amd64` or `rustc 1.95.0 (...)`. */
  version: string;
}

/** Checks that the toolchain is installed and new enough; one sentence naming what is needed otherwise. */
export async function checkWasmToolchain(src: WasmSource, shown: string): Promise<WasmToolchain> {
  if (src.lang === 'go') {
    const need = `Go ${GO_MIN.join('.')} or newer (GOOS=wasip1 with -buildmode=c-shared)`;
    const go = await findTool('go');
    if (!go) throw toolchainError(`building ${shown} to wasm needs ${need}, but go is not installed`, `install Go ${GO_MIN.join('.')}+ from https://go.dev/dl`);
    const version = await output(go, ['version']);
    const found = /go(\d+)\.(\d+)/.exec(version);
    if (!found || !versionAtLeast([Number(found[1]), Number(found[2])], GO_MIN)) {
      throw toolchainError(`building ${shown} to wasm needs ${need}, but this go is ${found ? `${found[1]}.${found[2]}` : `"${version}"`}`, `install Go ${GO_MIN.join('.')}+ from https://go.dev/dl`);
    }
    return { tool: go, version };
  }
  const need = `Rust ${RUST_MIN.join('.')} or newer with the wasm32-wasip1 target`;
  const cargo = await findTool('cargo');
  const rustc = await findTool('rustc');
  if (!cargo || !rustc) throw toolchainError(`building ${shown} to wasm needs ${need}, but ${cargo ? 'rustc' : 'cargo'} is not installed`, 'install Rust with rustup and run `rustup target add wasm32-wasip1`');
  const version = await output(rustc, ['--version']);
  const found = /rustc (\d+)\.(\d+)/.exec(version);
  if (!found || !versionAtLeast([Number(found[1]), Number(found[2])], RUST_MIN)) {
    throw toolchainError(`building ${shown} to wasm needs ${need}, but this rustc is ${found ? `${found[1]}.${found[2]}` : `"${version}"`}`, 'update Rust (rustup update) and run `rustup target add wasm32-wasip1`');
  }
  const sysroot = (await output(rustc, ['--print', 'sysroot'], src.dir)).trim();
  if (!existsSync(path.join(sysroot, 'lib', 'rustlib', 'wasm32-wasip1'))) {
    throw toolchainError(`building ${shown} to wasm needs ${need}, but the wasm32-wasip1 target is not installed for rustc ${found[1]}.${found[2]}`, 'run `rustup target add wasm32-wasip1`');
  }
  return { tool: cargo, version };
}

async function output(tool: string, args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await run(tool, args, { cwd, timeout: 60_000 });
    return stdout.trim();
  } catch (err) {
    return unavailable(err);
  }
}

// Version control folders: never read by go or cargo for a build (//go:embed refuses .git),
// large, and changed by every commit; the only names hashTree skips.
const VCS_FOLDERS = new Set(['.git', '.hg', '.svn', '.bzr', '.jj']);

/**
 * Every file under `dir` (sorted, hashed) as "label path hash" lines; `skip` folders and
 * VCS_FOLDERS left out. Hidden files count (`//go:embed .config.json`, `include_bytes!`).
 * Symbolic links are followed, as go and rustc follow a linked .go or .rs file (and rustc a
 * linked module folder): the line names the link, where it leads and the target's hash, so a
 * link out of the tree counts by its target's bytes; a link that leads nowhere or round in
 * a loop, or a folder link back into a folder being walked, is a line saying so.
 * Only regular files are read (reading a FIFO would wait forever).
 */
async function hashTree(dir: string, label: string, lines: string[], skip: (full: string, name: string) => boolean, walking: Set<string> = new Set()): Promise<void> {
  let entries;
  let real: string;
  try {
    real = await realpath(dir);
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    lines.push(`${label} ${dir} <missing>`); // go or cargo will say what is wrong; a later folder is another key
    return;
  }
  if (walking.has(real)) {
    lines.push(`${label} ${dir} -> ${real} <loop>`);
    return;
  }
  walking.add(real);
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const full = path.join(dir, e.name);
    let target = '';
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      try {
        const to = await realpath(full);
        const st = await stat(to);
        target = ` -> ${to}`;
        isDir = st.isDirectory();
        isFile = st.isFile();
      } catch (err) {
        lines.push(`${label} ${full} -> ${await readlink(full).catch(() => '?')} <${(err as NodeJS.ErrnoException).code ?? 'unreadable'}>`);
        continue;
      }
    }
    if (isDir) {
      if (VCS_FOLDERS.has(e.name) || skip(full, e.name)) continue;
      if (target !== '') lines.push(`${label} ${full}${target} <folder>`);
      await hashTree(full, label, lines, skip, walking);
    } else if (isFile) {
      const bytes = await readFile(full).catch(() => undefined);
      lines.push(`${label} ${full}${target} ${bytes ? sha256(bytes) : '<unreadable>'}`);
    }
  }
  walking.delete(real);
}

async function hashFileLine(file: string, label: string, lines: string[]): Promise<void> {
  const bytes = await readFile(file).catch(() => undefined);
  lines.push(`${label} ${file} ${bytes ? sha256(bytes) : '<missing>'}`);
}

/** The folders from `dir` up to the file system's root. */
function ancestors(dir: string): string[] {
  const out = [dir];
  while (path.dirname(out[out.length - 1]!) !== out[out.length - 1]) out.push(path.dirname(out[out.length - 1]!));
  return out;
}

/** A go.mod or go.work's directives of `kind` (`replace`, `use`), one argument list each, single lines and ( ... ) blocks alike. */
export function goDirectives(text: string, kind: string): string[][] {
  const out: string[][] = [];
  let inBlock = false;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\/\/.*$/, '').trim();
    if (inBlock) {
      if (line === ')') inBlock = false;
      else if (line !== '') out.push(goWords(line));
      continue;
    }
    const m = new RegExp(`^${kind}\\s*(.*)$`).exec(line);
    if (!m) continue;
    if (m[1]!.trim() === '(') inBlock = true;
    else out.push(goWords(m[1]!));
  }
  return out;
}

function goWords(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|`([^`]*)`|(\S+)/g)].map((m) => (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2] ?? m[3]!));
}

/** A replacement that is a folder on disk, as Go tells them apart from module paths. */
function localGoPath(target: string): boolean {
  return target === '.' || target === '..' || target.startsWith('./') || target.startsWith('../') || target.startsWith('/');
}

/** The local folders a go.mod or go.work replaces modules with (`replace X => ../path`), absolute. */
function goReplaceFolders(text: string, dir: string): string[] {
  return goDirectives(text, 'replace').flatMap((words) => {
    const arrow = words.indexOf('=>');
    const target = arrow >= 0 ? words[arrow + 1] : undefined;
    return target !== undefined && localGoPath(target) ? [path.resolve(dir, target)] : [];
  });
}

/** The go.work `go build` uses from `dir` ($GOWORK, else the nearest above), or undefined. */
function goWorkFile(dir: string): string | undefined {
  const env = process.env.GOWORK;
  if (env === 'off') return undefined;
  if (env !== undefined && env !== '') return path.resolve(dir, env);
  return ancestors(dir).map((d) => path.join(d, 'go.work')).find((f) => existsSync(f));
}

/** Go's per-user settings file (`go env -w`), which sets GOFLAGS and the like. */
function goEnvFile(): string | undefined {
  if (process.env.GOENV === 'off') return undefined;
  if (process.env.GOENV) return process.env.GOENV;
  const config = process.env.XDG_CONFIG_HOME || (process.env.HOME ? path.join(process.env.HOME, '.config') : undefined);
  return config ? path.join(config, 'go', 'env') : undefined;
}

/**
 * The `path = "..."` values of a Cargo.toml or .cargo/config.toml, absolute: every key named
 * `path` in any table and however written (`dep = { path = ".." }`, `dep.path = ".."`,
 * `[dependencies.dep] path = ..`, target-specific, [patch], [replace], [workspace.dependencies],
 * [lib] and [[bin]] paths), and a config's `paths` overrides.
 */
export function cargoPaths(text: string, dir: string): string[] {
  return tomlStrings(text)
    .filter(({ key }) => key[key.length - 1] === 'path' || (key.length === 1 && key[0] === 'paths'))
    .map(({ value }) => path.resolve(dir, value));
}

/**
 * What the build cache knows of the module's inputs, as "label path hash" lines: every file
 * under the source root and, since go and cargo read outside it too, Go's local `replace`
 * targets (from go.mod and go.work), the go.work in use with its `use` folders and go.work.sum,
 * the `go env -w` file; Cargo's path dependencies (followed into their own Cargo.toml),
 * Cargo.toml, Cargo.lock, .cargo/config[.toml] and rust-toolchain[.toml] in every folder above,
 * and $CARGO_HOME's config. Not covered: files a build.rs, a proc-macro or include_bytes!
 * reads, and registry or git dependencies other than through the lock file.
 */
export async function hashWasmSources(src: WasmSource): Promise<string> {
  const lines: string[] = [];
  const seen = new Set<string>();
  // Another module's folder inside a replaced one is not part of it (Go leaves it out too).
  const goSkip = (full: string): boolean => existsSync(path.join(full, 'go.mod'));
  const cargoSkip = (full: string, name: string): boolean => name === 'target' && existsSync(path.join(path.dirname(full), 'Cargo.toml'));
  const tree = async (dir: string, label: string): Promise<void> => {
    if (seen.has(dir)) return;
    seen.add(dir);
    await hashTree(dir, label, lines, src.lang === 'go' ? (full) => full !== dir && goSkip(full) : cargoSkip);
  };
  // The module or package itself, whole: a nested module or a target folder in it is hashed too.
  await hashTree(src.root, 'source', lines, (_full, name) => src.lang === 'rust' && name === 'target');
  seen.add(src.root);
  if (src.lang === 'go') {
    const mod = await readFile(path.join(src.root, 'go.mod'), 'utf8').catch(() => '');
    for (const dir of goReplaceFolders(mod, src.root)) await tree(dir, 'go.mod replace');
    const work = goWorkFile(src.dir);
    if (work) {
      await hashFileLine(work, 'go.work', lines);
      await hashFileLine(`${work}.sum`, 'go.work.sum', lines);
      const text = await readFile(work, 'utf8').catch(() => '');
      for (const words of goDirectives(text, 'use')) if (words[0] !== undefined) await tree(path.resolve(path.dirname(work), words[0]), 'go.work use');
      for (const dir of goReplaceFolders(text, path.dirname(work))) await tree(dir, 'go.work replace');
    }
    const env = goEnvFile();
    if (env) await hashFileLine(env, 'go env', lines);
  } else {
    const configs: string[] = [];
    for (const dir of ancestors(src.dir)) {
      for (const name of ['Cargo.toml', 'Cargo.lock', '.cargo/config', '.cargo/config.toml', 'rust-toolchain', 'rust-toolchain.toml']) {
        const file = path.join(dir, name);
        if (!existsSync(file)) continue;
        await hashFileLine(file, 'cargo', lines);
        if (name.endsWith('.toml') && name !== 'rust-toolchain.toml') configs.push(file);
      }
    }
    const home = process.env.CARGO_HOME || (process.env.HOME ? path.join(process.env.HOME, '.cargo') : undefined);
    for (const name of home ? ['config', 'config.toml'] : []) {
      const file = path.join(home!, name);
      if (existsSync(file)) {
        await hashFileLine(file, 'cargo home', lines);
        configs.push(file);
      }
    }
    // Path dependencies, followed into theirs; a config's paths are relative to the folder holding .cargo.
    for (let i = 0; i < configs.length; i++) {
      const file = configs[i]!;
      const base = path.basename(path.dirname(file)) === '.cargo' ? path.dirname(path.dirname(file)) : path.dirname(file);
      for (const target of cargoPaths(await readFile(file, 'utf8').catch(() => ''), base)) {
        if (existsSync(target) && !(await stat(target)).isDirectory()) {
          await hashFileLine(target, 'cargo path', lines);
        } else if (!seen.has(target)) {
          await tree(target, 'cargo path');
          if (existsSync(path.join(target, 'Cargo.toml'))) configs.push(path.join(target, 'Cargo.toml'));
        }
      }
    }
  }
  // Settings go or cargo read from the environment (GOFLAGS, GOEXPERIMENT, RUSTFLAGS,
  // CARGO_PROFILE_*, ...), but not those the build sets itself.
  const own = new Set(['GOOS', 'GOARCH', 'CGO_ENABLED', 'CARGO_TARGET_DIR']);
  const prefix = src.lang === 'go' ? /^(GO|CGO_)/ : /^(CARGO|RUST)/;
  for (const name of Object.keys(process.env).filter((n) => prefix.test(n) && !own.has(n)).sort()) lines.push(`env ${name}=${process.env[name]}`);
  return lines.join('\n');
}

/** Compiles the module as ig does; returns its bytes. */
export async function buildWasm(src: WasmSource, toolchain: WasmToolchain, shown: string, signal?: AbortSignal): Promise<Buffer> {
  await removeStaleWorkDirs();
  const out = await makeWorkDir('wasm');
  try {
    if (src.lang === 'go') {
      const module = path.join(out, 'program.wasm');
      await runBuild(toolchain.tool, ['build', '-o', module, '-buildmode=c-shared', '-ldflags', '-w -s', path.basename(src.file)], src.dir, { GOOS: 'wasip1', GOARCH: 'wasm', CGO_ENABLED: '0' }, shown, signal);
      return await readFile(module);
    }
    await runBuild(toolchain.tool, ['build', '--target', 'wasm32-wasip1', '--release'], src.dir, { CARGO_TARGET_DIR: out }, shown, signal);
    const name = /^\s*name\s*=\s*"([^"]+)"/m.exec(await readFile(path.join(src.root, 'Cargo.toml'), 'utf8'))?.[1];
    if (!name) throw new GadgetError(`${path.join(src.root, 'Cargo.toml')} names no package`, { hint: 'add [package] name = "..."', exitCode: 2 });
    const release = path.join(out, 'wasm32-wasip1', 'release');
    // cargo writes a cdylib as the package name with "-" turned into "_".
    for (const candidate of [name, name.replace(/-/g, '_')]) {
      const file = path.join(release, `${candidate}.wasm`);
      if (existsSync(file) && (await stat(file)).isFile()) return await readFile(file);
    }
    throw new GadgetError(`cargo built ${shown} but wrote no ${name}.wasm in ${release}`, { hint: 'set crate-type = ["cdylib"] under [lib] in Cargo.toml' });
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

async function runBuild(tool: string, args: string[], cwd: string, env: Record<string, string>, shown: string, signal?: AbortSignal): Promise<void> {
  try {
    await run(tool, args, { cwd, signal, env: { ...process.env, ...env }, maxBuffer: 16 << 20, timeout: 30 * 60_000 });
  } catch (err) {
    const e = err as { stderr?: string; name?: string };
    if (e.name === 'AbortError') throw new GadgetError(`building ${shown} was cancelled`, { exitCode: 2, cause: err });
    const detail = (e.stderr ?? messageOf(err)).trim().slice(0, 8000);
    throw new GadgetError(`${path.basename(tool)} could not build ${shown} to wasm:\n${detail}`, { hint: `fix the errors above, or give a prebuilt .wasm (build.yaml: wasm: program.wasm)`, cause: err });
  }
}
