// eBPF C -> one stripped object per architecture, the way ig's Makefile.build does it
// (clang -target bpf -g -O2 -D__TARGET_ARCH_<arch>, then llvm-strip -g), with two additions:
// the source is compiled from inside its folder under a relative name, the folder is mapped
// to "." in debug info and each include root to /usr/include (as in ig's builder image), so
// that the same sources give the same bytes wherever they are checked out; and clang writes a dependency file, so the build cache knows every header.
import { execFile } from 'node:child_process';
import { access, constants, readFile, rm, stat } from 'node:fs/promises';
import { machine } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { checkEbpfElf } from '../../lib/content/elf.js';
import { GadgetError, messageOf } from '../../lib/errors.js';
import { includeArgs, SYSTEM_INCLUDE_ROOT } from './include.js';
import { olderToolchainReason } from './toolchain.js';
import { depKey } from './cache.js';
import { parseDepfile } from './depfile.js';
import { ARCHS, type Arch } from './arch.js';
import { makeWorkDir, removeStaleWorkDirs, toolEnv } from './workdir.js';

const run = promisify(execFile);

const TARGET_ARCH: Record<Arch, string> = { amd64: 'x86', arm64: 'arm64' };

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const BITCODE_MAGIC = Buffer.from('BC\xc0\xde', 'latin1');

/** Debian packages that provide each tool, for "install X" hints. */
export const TOOL_PACKAGES: Record<string, string> = {
  clang: 'clang',
  'llvm-strip': 'llvm',
  bpftool: 'bpftool',
  xz: 'xz-utils',
};

// bpftool lives in /usr/sbin on Debian, which is not on every user's PATH.
const EXTRA_DIRS = ['/usr/sbin', '/sbin'];

/** The absolute path of `name` on PATH (then /usr/sbin, /sbin), or undefined. */
export async function findTool(name: string): Promise<string | undefined> {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const dir of [...dirs, ...EXTRA_DIRS]) {
    const candidate = path.join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function missingTool(name: string, purpose: string): GadgetError {
  const pkg = TOOL_PACKAGES[name] ?? name;
  return new GadgetError(`${name} is not installed; it is needed to ${purpose}`, {
    hint: `install the Debian package "${pkg}" (apt-get install ${pkg}) or put ${name} on PATH`,
    exitCode: 2,
  });
}

/** Like findTool, but a missing tool is a clear environment error. */
export async function requireTool(name: string, purpose: string): Promise<string> {
  const found = await findTool(name);
  if (!found) throw missingTool(name, purpose);
  return found;
}

const versions = new Map<string, Promise<string>>();

/**
 * Why a tool could not say its version, in one line: its own first line of complaint (rustup
 * without a default toolchain prints a page and a backtrace), not the whole of its output.
 */
export function unavailable(err: unknown): string {
  const stderr = (err as { stderr?: unknown }).stderr;
  const said = typeof stderr === 'string' ? stderr.split('\n').find((l) => l.trim() !== '')?.trim() : undefined;
  return `unavailable (${said ?? messageOf(err).split('\n')[0]})`;
}

/** The first line of `tool <args>` (e.g. "Debian clang version 14.0.6"), cached per process. */
export function toolVersion(tool: string, args: string[] = ['--version']): Promise<string> {
  const key = [tool, ...args].join('\0');
  let found = versions.get(key);
  if (!found) {
    found = run(tool, args, { timeout: 30_000 }).then(
      ({ stdout }) => stdout.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'unknown',
      (err) => unavailable(err),
    );
    versions.set(key, found);
  }
  return found;
}

let multiarch: Promise<string> | undefined;

/** Where Debian keeps <asm/types.h>: /usr/include/$(gcc -print-multiarch), else uname-based like ig. */
export function multiarchInclude(): Promise<string> {
  multiarch ??= run('gcc', ['-print-multiarch'], { timeout: 30_000 }).then(
    ({ stdout }) => stdout.trim(),
    () => '',
  ).then((triplet) => `/usr/include/${triplet !== '' ? triplet : `${machine()}-linux-gnu`}`);
  return multiarch;
}

export interface ClangArgsInput {
  arch: Arch;
  /** The source, relative to `dir` (clang runs in `dir`). */
  source: string;
  dir: string;
  out: string;
  depfile: string;
  multiarchInclude: string;
  /** Include roots (see include.ts); each adds -I ROOT and -I ROOT/gadget/<arch>. */
  includeRoots?: readonly string[];
  cflags: string[];
}

/** The -I folders, in order: the multiarch headers, the gadget, the user's include roots with their per-arch folders, then ig's builder image default. */
function includeFolders(i: Pick<ClangArgsInput, 'dir' | 'multiarchInclude' | 'includeRoots' | 'arch'>): string[] {
  return [i.multiarchInclude, i.dir, ...includeArgs(i.includeRoots ?? [], i.arch).map((arg) => arg.slice('-I'.length))];
}

/**
 * Where clang looks for a header of the source, in order: the source's own folder (for
 * `#include "x.h"`), our -I folders, the cflags' -I folders, CPATH's and C_INCLUDE_PATH's
 * entries (each whether it exists yet or not: one made later can shadow), then the folders
 * clang adds itself (its own and the system's). The build cache records every header name
 * looked up in each of them (probes.ts), so a header that appears or goes is a miss.
 */
async function searchFolders(clang: string, i: ClangArgsInput): Promise<string[]> {
  const listed = (name: string): string[] => (process.env[name] === undefined ? [] : process.env[name]!.split(':').map((d) => d || '.'));
  const ours = [path.dirname(path.resolve(i.dir, i.source)), ...includeFolders(i), ...cflagIncludes(i.cflags), ...listed('CPATH'), ...listed('C_INCLUDE_PATH')];
  return [...new Set([...ours.map((d) => path.resolve(i.dir, d)), ...(await clangOwnFolders(clang))])];
}

/** The folders of the cflags' -I options (`-Idir` and `-I dir`), relative ones to the gadget folder. */
function cflagIncludes(cflags: string[]): string[] {
  return cflags.flatMap((flag, n) => (flag === '-I' ? [cflags[n + 1] ?? ''] : flag.startsWith('-I') ? [flag.slice(2)] : [])).filter((d) => d !== '');
}

let ownFolders: Promise<string[]> | undefined;

/**
 * The include folders clang adds by itself for the bpf target (its resource folder, the
 * system's), from `clang -E -v` without any option of the build, which therefore cannot fail
 * it. Once per process; none when the probe fails (their headers are then not checked).
 */
function clangOwnFolders(clang: string): Promise<string[]> {
  const env = { ...process.env, LC_ALL: 'C', CPATH: undefined, C_INCLUDE_PATH: undefined };
  ownFolders ??= run(clang, ['-target', 'bpf', '-E', '-v', '-x', 'c', '/dev/null', '-o', '/dev/null'], { timeout: 30_000, env }).then(
    ({ stderr }) => {
      const lines = stderr.split('\n');
      const start = lines.findIndex((l) => l.startsWith('#include <...> search starts here'));
      const end = lines.indexOf('End of search list.');
      // Each folder is indented by one space; its name is the rest of the line, spaces included.
      return start < 0 || end < start ? [] : lines.slice(start + 1, end).filter((l) => l.startsWith(' ')).map((l) => l.slice(1).replace(/ \(framework directory\)$/, ''));
    },
    () => [],
  );
  return ownFolders;
}

/**
 * Header paths from the include roots end up in the object's BTF line info (llvm-strip -g
 * keeps .BTF.ext), so each root is mapped to /usr/include, where ig's builder image has the
 * same headers: one checkout gives one object wherever it is, and the object names the paths
 * ig's own objects name (/usr/include/gadget/...). The trailing "/" keeps /x/inc from mapping
 * /x/include2; clang 14 tries the longest prefix first, so a gadget folder inside a root stays
 * ".". A root whose path holds "=" cannot be told apart from the option's own "=": not mapped.
 */
function includeRootMaps(roots: readonly string[]): string[] {
  return roots.filter((root) => root !== SYSTEM_INCLUDE_ROOT && !root.includes('=')).map((root) => `-fdebug-prefix-map=${root}/=${SYSTEM_INCLUDE_ROOT}/`);
}

/** clang's argument list (no shell ever sees it). */
export function clangArgs(i: ClangArgsInput): string[] {
  const source = i.source.startsWith('-') ? `./${i.source}` : i.source;
  return [
    '-target', 'bpf',
    '-Wall', '-g', '-O2',
    `-D__TARGET_ARCH_${TARGET_ARCH[i.arch]}`,
    ...includeFolders(i).map((folder) => `-I${folder}`),
    // The gadget folder is "." in debug info: clang 14 maps by plain string prefix, so the
    // trailing "/" keeps a sibling /x/g-inc from becoming "./.-inc" for /x/g; the compile
    // folder, named without one, is set to "." directly. (Same bytes as mapping `${dir}=.`.)
    `-fdebug-prefix-map=${i.dir}/=./`,
    '-fdebug-compilation-dir=.',
    ...includeRootMaps(i.includeRoots ?? []),
    ...i.cflags,
    '-MD', '-MF', i.depfile,
    // A clang crash writes MBs of reproducers into TMPDIR: not wanted from a build.
    '-fno-crash-diagnostics',
    '-c', source,
    '-o', i.out,
  ];
}

let compileRuns = 0;
/** How many times this process has run clang to compile (the cache test watches it). */
export function compileCount(): number {
  return compileRuns;
}

export interface CompileInput {
  /** Gadget folder (real path). */
  dir: string;
  /** Absolute path of the eBPF source inside `dir`. */
  source: string;
  /** As the user should see it in messages (e.g. examples/x/program.bpf.c). */
  shownSource: string;
  cflags: string[];
  /** Include roots (absolute), searched in order. */
  includeRoots?: readonly string[];
  archs?: readonly Arch[];
  signal?: AbortSignal;
}

export interface CompileResult {
  objects: Partial<Record<Arch, Buffer>>;
  /** clang's warnings (stderr of successful runs), per arch. */
  warnings: Partial<Record<Arch, string>>;
  /** Every file clang read (source and headers), absolute and sorted, as cache.ts depKey()s. */
  deps: string[];
  /** Per arch, the folders searched for headers, in order (see searchFolders). */
  search: string[][];
}

function trimOutput(text: string): string {
  const t = text.trim();
  return t.length > 8000 ? t.slice(0, 8000) + '\n[... output cut]' : t;
}

async function runTool(tool: string, name: string, args: string[], opts: { cwd?: string; signal?: AbortSignal; tmp: string }): Promise<{ stderr: string }> {
  try {
    const { stderr } = await run(tool, args, { cwd: opts.cwd, signal: opts.signal, maxBuffer: 16 << 20, env: toolEnv(opts.tmp) });
    return { stderr };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; code?: string | number };
    if (e.code === 'ENOENT') throw missingTool(name, 'build eBPF objects');
    if (e.code === 'E2BIG') {
      throw new GadgetError(`the command line of ${name} is too long for the system (argument list too long): the cflags hold ${args.join(' ').length} bytes`, {
        hint: 'shorten the cflags (a long -D value belongs in a header file that the source includes)',
        exitCode: 2,
      });
    }
    if (e.name === 'AbortError') throw new GadgetError(`${name} was cancelled`, { exitCode: 2, cause: err });
    const stderr = e.stderr ?? '';
    // A crashed clang prints its own backtrace after the error: the error is what matters.
    const crash = stderr.search(/^PLEASE submit a bug report/m);
    const shown = crash >= 0 ? stderr.slice(0, crash) : stderr;
    throw Object.assign(new Error(trimOutput(shown) || messageOf(err)), { failed: true, crashed: crash >= 0 });
  }
}

/** Compiles `source` for every arch (in parallel) and strips debug info. */
export async function compileEbpf(input: CompileInput): Promise<CompileResult> {
  const clang = await requireTool('clang', `compile ${input.shownSource}`);
  const strip = await requireTool('llvm-strip', `strip the eBPF objects of ${input.shownSource}`);
  const include = await multiarchInclude();
  await removeStaleWorkDirs();
  const tmp = await makeWorkDir('build');
  // The first failure stops the other arch's tools; the folder is removed only once every
  // tool has exited (removing it under a running clang fails with ENOTEMPTY).
  const stop = new AbortController();
  const signal = input.signal ? AbortSignal.any([input.signal, stop.signal]) : stop.signal;
  const argsFor = (arch: Arch): ClangArgsInput => ({
    arch,
    source: path.relative(input.dir, input.source),
    dir: input.dir,
    out: path.join(tmp, `${arch}.bpf.o`),
    depfile: path.join(tmp, `${arch}.d`),
    multiarchInclude: include,
    includeRoots: input.includeRoots,
    cflags: input.cflags,
  });
  try {
    const archs = input.archs ?? ARCHS;
    const settled = await Promise.allSettled(
      archs.map(async (arch) => {
        const { out, depfile } = argsFor(arch);
        const args = clangArgs(argsFor(arch));
        compileRuns++;
        let warnings: string;
        try {
          warnings = (await runTool(clang, 'clang', args, { cwd: input.dir, signal, tmp })).stderr;
        } catch (err) {
          stop.abort();
          if (err instanceof GadgetError) throw err;
          const older = await olderToolchainReason(messageOf(err), await toolVersion(clang), Boolean((err as { crashed?: boolean }).crashed));
          if (older) {
            // The source is fine for ig; this machine's toolchain is the problem (exit 2: environment).
            throw new GadgetError(`clang could not compile ${input.shownSource} for ${arch}: ${older}`, {
              hint: `build with clang 18 and libbpf 1.3 headers (ig's builder image ghcr.io/inspektor-gadget/ebpf-builder has them), or give prebuilt objects (build.yaml objects: {amd64: ..., arm64: ...})`,
              exitCode: 2,
              cause: err,
            });
          }
          if ((err as { crashed?: boolean }).crashed) {
            throw new GadgetError(`clang crashed compiling ${input.shownSource} for ${arch}:\n${messageOf(err)}`, {
              hint: `this is a bug of clang; change the construct it names in ${input.shownSource}, or try another clang version`,
            });
          }
          throw new GadgetError(`clang could not compile ${input.shownSource} for ${arch}:\n${messageOf(err)}`, {
            hint: `fix the errors above in ${input.shownSource}`,
          });
        }
        // clang can exit 0 and write no object, or something else than ELF, when an option
        // stops it early (spec.ts refuses the known ones): say so, not llvm-strip's complaint
        // about a scratch file.
        const written = await readFile(out).catch(() => undefined);
        if (written === undefined || !written.subarray(0, 4).equals(ELF_MAGIC)) {
          const what = written === undefined ? 'wrote no object' : written.subarray(0, 4).equals(BITCODE_MAGIC) ? 'wrote LLVM bitcode instead of an ELF object' : 'wrote something that is not an ELF object';
          const flags = input.cflags.length > 0 ? `; check the cflags (${input.cflags.join(' ')})` : '';
          throw new GadgetError(`clang exited without an error but ${what} for ${input.shownSource} (${arch})${flags}`, {
            hint: 'remove cflags that stop clang before it writes an object (such as -fsyntax-only or -flto)',
            exitCode: 2,
          });
        }
        try {
          await runTool(strip, 'llvm-strip', ['-g', out], { signal, tmp });
        } catch (err) {
          if (err instanceof GadgetError) throw err;
          throw new GadgetError(`llvm-strip failed on the ${arch} object of ${input.shownSource}: ${messageOf(err)}`, {
            hint: 'check that llvm-strip belongs to the same LLVM as clang (Debian package "llvm")',
          });
        }
        const bytes = await readFile(out);
        const problem = checkEbpfElf(bytes, arch).find((p) => p.severity === 'error');
        if (problem) throw new GadgetError(`clang's ${arch} object for ${input.shownSource} is not a usable eBPF object: ${problem.message}`);
        const deps = parseDepfile(await readFile(depfile), input.dir).map(depKey);
        return { arch, bytes, warnings: warnings.trim(), deps };
      }),
    );
    // The first real failure, not the "cancelled" of the arch it stopped.
    const failed = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
    if (failed.length > 0) throw failed.find((e) => !(e instanceof GadgetError && /was cancelled$/.test(e.message))) ?? failed[0];
    const results = settled.map((r) => (r as PromiseFulfilledResult<{ arch: Arch; bytes: Buffer; warnings: string; deps: string[] }>).value);
    const search = await Promise.all(archs.map((arch) => searchFolders(clang, argsFor(arch))));
    const result: CompileResult = { objects: {}, warnings: {}, deps: [], search };
    const deps = new Set<string>();
    for (const r of results) {
      result.objects[r.arch] = r.bytes;
      if (r.warnings !== '') result.warnings[r.arch] = trimOutput(r.warnings);
      for (const d of r.deps) deps.add(d);
    }
    result.deps = [...deps].sort();
    return result;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
