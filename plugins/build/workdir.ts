// The build's own scratch folders (clang's objects and depfiles, btfgen's kernels, wasm), in the
// system temp folder under names that carry the owner's pid: gadget-build-<pid>-XXXXXX. A
// build that is SIGKILLed cannot remove its folder, so every build first removes the folders
// whose owner is dead. Tools run inside get TMPDIR pointing into the folder, so that nothing
// they write (clang's crash reproducers, say) lands anywhere else.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export type WorkDirKind = 'build' | 'btfgen' | 'wasm';

const STALE = /^gadget-(?:build|btfgen|wasm)-(\d+)-[A-Za-z0-9]{6}$/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A fresh scratch folder of this process. */
export function makeWorkDir(kind: WorkDirKind): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `gadget-${kind}-${process.pid}-`));
}

/** Removes the scratch folders of builds that died without cleaning up; returns how many. */
export async function removeStaleWorkDirs(): Promise<number> {
  let names: string[];
  try {
    names = await readdir(tmpdir());
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const pid = Number(STALE.exec(name)?.[1]);
    if (!pid || pid === process.pid || alive(pid)) continue;
    try {
      await rm(path.join(tmpdir(), name), { recursive: true, force: true });
      removed++;
    } catch {
      // another user's, or being removed by another build: not ours to worry about
    }
  }
  return removed;
}

/** The environment for a tool run inside `dir`: its temp files stay there. */
export function toolEnv(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, LC_ALL: 'C', TMPDIR: dir, TMP: dir, TEMP: dir };
}
