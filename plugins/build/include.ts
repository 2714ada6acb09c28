// Header folders the way users have them: ig's builder image installs its headers as
// /usr/include (gadget/*.h, and gadget/<arch>/vmlinux.h per architecture); a user has the same
// tree somewhere else (a checkout, a package). Each include root is given to clang as -I ROOT
// plus -I ROOT/gadget/<arch> for that arch's compile, so `#include <vmlinux.h>` finds that
// architecture's file, as ig's builder does with /usr/include/gadget/<arch>.
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { GadgetError } from '../../lib/errors.js';
import type { Arch } from './arch.js';

/** Where include roots come from, in the order clang searches them. */
export interface IncludeSources {
  /** `gadget build --include DIR` (relative to the working folder). */
  cli?: readonly string[];
  /** The gadget's own `include` in gadget.config.ts (relative to the config's folder). */
  gadget?: readonly string[];
  /** The config's global `include`. */
  config?: readonly string[];
  /** $GADGET_INCLUDE, folders separated by ":" (relative to the working folder). */
  env?: string;
}

/** The folder ig's builder image keeps its per-arch headers in; searched last, as a default. */
export const SYSTEM_INCLUDE_ROOT = '/usr/include';

/**
 * Every include root, absolute and real, each once; a missing folder is an error naming its
 * source. `cwd` is the config's folder (gadget and config roots are relative to it).
 */
export async function resolveIncludeRoots(sources: IncludeSources, cwd: string): Promise<string[]> {
  const listed: Array<{ dir: string; where: string }> = [];
  const add = (dirs: readonly string[] | undefined, where: string): void => {
    if (dirs === undefined) return;
    if (!Array.isArray(dirs) || !dirs.every((d) => typeof d === 'string' && d !== '')) {
      throw new GadgetError(`${where}: "include" must be a list of folders`, { hint: 'e.g. include: ["../inspektor-gadget/include"]', exitCode: 2 });
    }
    for (const dir of dirs) listed.push({ dir, where });
  };
  add(sources.cli, '--include');
  add(sources.gadget, 'the gadget\'s "include"');
  add(sources.config, 'gadget.config.ts "include"');
  // The environment belongs to the shell the command runs in: relative to its working folder.
  if (sources.env) add(sources.env.split(path.delimiter).filter((d) => d !== '').map((d) => path.resolve(d)), '$GADGET_INCLUDE');
  const out: string[] = [];
  for (const { dir, where } of listed) {
    if (dir.includes('\0')) throw new GadgetError(`${where}: include folder contains a NUL byte`, { exitCode: 2 });
    let real: string;
    try {
      real = await realpath(path.resolve(cwd, dir));
      if (!(await stat(real)).isDirectory()) throw new Error('not a folder');
    } catch {
      throw new GadgetError(`${where}: include folder ${dir} does not exist or is not a folder`, {
        hint: "point it at a folder laid out like ig's /usr/include (gadget/*.h, gadget/amd64/vmlinux.h, gadget/arm64/vmlinux.h)",
        exitCode: 2,
      });
    }
    if (!out.includes(real)) out.push(real);
  }
  return out;
}

/** clang's -I options for one architecture's compile: each root, then its gadget/<arch> folder. */
export function includeArgs(roots: readonly string[], arch: Arch): string[] {
  const all = [...roots, ...(roots.includes(SYSTEM_INCLUDE_ROOT) ? [] : [SYSTEM_INCLUDE_ROOT])];
  return all.flatMap((root) => (root === SYSTEM_INCLUDE_ROOT ? [`-I${path.join(root, 'gadget', arch)}`] : [`-I${root}`, `-I${path.join(root, 'gadget', arch)}`]));
}
