// Temporary files and folders of writers (blobs being written, index.json being replaced,
// import work folders). Their names carry the writer's pid (files.ts tempName):
// once that process is gone, nothing can own them, so the next writer or gc removes them and
// fsck reports them as a notice, not as damage. A live pid (or a pid reused by another live
// process) keeps them: removing a live writer's file is the one thing never done.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseTempName } from './files.js';
import { OWN_DIR } from './layout.js';

export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * The temporary files in the layout whose owner is dead: every entry of gadget-oci/tmp that
 * is not a live writer's, and `.tmp-<pid>-` files elsewhere in the layout (older versions wrote
 * some beside their target).
 */
export function staleTemps(root: string): string[] {
  const out: string[] = [];
  const tmp = join(root, OWN_DIR, 'tmp');
  for (const name of list(tmp)) {
    const owner = parseTempName(name);
    if (!owner || !processAlive(owner.pid)) out.push(join(tmp, name));
  }
  for (const dir of [root, join(root, 'blobs', 'sha256')]) {
    for (const name of list(dir)) {
      const owner = parseTempName(name);
      if (owner && !processAlive(owner.pid)) out.push(join(dir, name));
    }
  }
  return out;
}

/** Removes the stale temporary files; returns what was removed. */
export function removeStaleTemps(root: string): string[] {
  const removed: string[] = [];
  for (const path of staleTemps(root)) {
    try {
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch {
      // Another writer removed it first, or it is not ours to remove: fsck will say.
    }
  }
  return removed;
}
