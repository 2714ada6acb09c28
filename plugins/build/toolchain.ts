// When clang fails on a gadget that ig builds: is it the gadget, or this machine's toolchain?
// ig builds with clang 18 and libbpf 1.3 headers; older ones (Debian 12 has clang 14 and
// libbpf 1.1) lack macros such as BPF_UPROBE or 6-argument BPF_KPROBE, and clang 14's BPF
// backend rejects some CO-RE builtins. Read from clang's own diagnostics, so that the message
// can say "your toolchain is older than ig's" instead of pointing at correct source.
import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** What ig's builder image has (its Dockerfile). */
export const IG_TOOLCHAIN = 'clang 18 and libbpf 1.3';

// libbpf's naming: macros and helpers from bpf_tracing.h / bpf_helpers.h / bpf_core_read.h.
const LIBBPF_NAME = /^(BPF_[A-Z0-9_]+|___?bpf_[a-z0-9_]+|PT_REGS_[A-Z0-9_]+|bpf_[a-z0-9_]+)$/;

/** Names the diagnostics say are missing: implicit functions, undeclared names, unknown macros at an error. */
export function missingNames(stderr: string): string[] {
  const names = new Set<string>();
  const lines = stderr.split('\n');
  lines.forEach((line, i) => {
    const implicit = /implicit declaration of function '([A-Za-z0-9_]+)'/.exec(line) ?? /use of undeclared identifier '([A-Za-z0-9_]+)'/.exec(line);
    if (implicit) names.add(implicit[1]!);
    // "expected identifier" where the source line calls an ALL-CAPS macro: the macro is unknown.
    if (/: error: expected (identifier|expression)/.test(line)) {
      for (const m of (lines[i + 1] ?? '').matchAll(/\b([A-Z][A-Z0-9_]{3,})\s*\(/g)) names.add(m[1]!);
    }
  });
  return [...names].filter((n) => LIBBPF_NAME.test(n));
}

/** True when clang's BPF backend itself failed (a crash, or a builtin it cannot lower). */
export function backendFailed(stderr: string): boolean {
  return /PLEASE submit a bug report|error in backend|fatal error: error in backend|cannot compile inline asm|unsupported .*builtin|__builtin_preserve_[a-z_]+.*(invalid|unsupported)/i.test(stderr);
}

/** The libbpf headers' version (`1.1`), from the folder clang's diagnostics name or /usr/include/bpf. */
export async function libbpfVersion(stderr: string): Promise<string | undefined> {
  const seen = /(\/[^\s:]*\/bpf)\/bpf_(?:tracing|helpers|core_read)\.h/.exec(stderr)?.[1];
  for (const dir of [seen, '/usr/include/bpf']) {
    if (!dir) continue;
    try {
      const text = await readFile(path.join(dir, 'libbpf_version.h'), 'utf8');
      const major = /LIBBPF_MAJOR_VERSION\s+(\d+)/.exec(text)?.[1];
      const minor = /LIBBPF_MINOR_VERSION\s+(\d+)/.exec(text)?.[1];
      if (major && minor) return `${major}.${minor}`;
    } catch {
      // not there
    }
  }
  return undefined;
}

/** Is `name` defined by the libbpf headers clang used? */
async function libbpfDefines(name: string, stderr: string): Promise<boolean> {
  const dir = /(\/[^\s:]*\/bpf)\/bpf_(?:tracing|helpers|core_read)\.h/.exec(stderr)?.[1] ?? '/usr/include/bpf';
  for (const file of ['bpf_tracing.h', 'bpf_helpers.h', 'bpf_core_read.h', 'bpf_helper_defs.h']) {
    try {
      const text = await readFile(path.join(dir, file), 'utf8');
      if (new RegExp(`(#define\\s+${name}\\b|\\b${name}\\s*\\)?\\s*\\()`).test(text)) return true;
    } catch {
      // not there
    }
  }
  return false;
}

/**
 * One sentence when clang's failure comes from a toolchain older than ig's, else undefined.
 * `clangVersion` is clang's first --version line.
 */
export async function olderToolchainReason(stderr: string, clangVersion: string, crashed = false): Promise<string | undefined> {
  const clang = /clang version (\d+(?:\.\d+)*)/.exec(clangVersion)?.[1];
  const here = async (): Promise<string> => `this machine has clang ${clang ?? '(unknown version)'} and libbpf ${(await libbpfVersion(stderr)) ?? '(unknown version)'} headers`;
  const missing: string[] = [];
  for (const name of missingNames(stderr)) if (!(await libbpfDefines(name, stderr))) missing.push(name);
  if (missing.length > 0) {
    const list = missing.slice(0, 3).join(', ');
    return `it uses ${list}, which the libbpf headers here do not define: ig builds with ${IG_TOOLCHAIN}, ${await here()}`;
  }
  if ((crashed || backendFailed(stderr)) && clang && Number(clang.split('.')[0]) < 18) {
    return `clang's BPF backend failed on it: ig builds with ${IG_TOOLCHAIN}, ${await here()}`;
  }
  return undefined;
}
