// Wasm from source, as ig's Makefile.build compiles it: Go with
// `GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build -o OUT -buildmode=c-shared -ldflags "-w -s" FILE`
// run in the source's folder (a wasip1 reactor module needs Go 1.24 or newer), and Rust with
// `cargo build --target wasm32-wasip1 --release` run in the source's folder, then the package's
// .wasm from the target folder. Child processes get argument arrays, never a shell.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { GadgetError, messageOf } from '../../lib/errors.js';
import { sha256 } from '../../lib/oci/digest.js';
import { findTool, unavailable } from './compile.js';
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

/** Every file under the source root (sorted, hashed) for the build cache; build output and hidden folders skipped. */
export async function hashWasmSources(src: WasmSource): Promise<string> {
  const lines: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith('.') || (e.isDirectory() && e.name === 'target')) continue;
      const full = path.join(dir, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile()) lines.push(`${path.relative(src.root, full)} ${sha256(await readFile(full))}`);
    }
  };
  await walk(src.root);
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
