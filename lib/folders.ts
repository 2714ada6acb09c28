// Making folders in a way that always ends (see makeFolders).
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { GadgetError } from './errors.js';

/**
 * `mkdir -p` that always ends. Node's own `mkdirSync(dir, { recursive: true })` retries for ever
 * when mkdir fails with ENOENT although the parent exists (as every mkdir in /proc does), and
 * a spinning synchronous call cannot even be interrupted. Here each missing folder, parent first,
 * is made with one plain mkdir; the races it can resolve (another process made it: EEXIST; a
 * parent removed meanwhile: ENOENT) are retried a few times, anything else is one sentence
 * naming the folder (exit 2), with `hint`. `mode`: of the folders it makes (default 0777 & ~umask).
 */
export function makeFolders(dir: string, hint = 'check that the folder is on a file system where folders can be created, and its permissions', mode?: number): void {
  const target = resolve(dir);
  for (let attempt = 1; ; attempt++) {
    // The folders to make, the deepest that exists first.
    const missing: string[] = [];
    for (let d = target; ; d = dirname(d)) {
      const st = statFolder(d, hint);
      if (st === 'folder') break;
      if (st === 'file') throw new GadgetError(`cannot create the folder ${target}: ${d} is a file, not a folder`, { exitCode: 2, hint });
      missing.unshift(d);
      if (dirname(d) === d) break;
    }
    let raced = false;
    for (const d of missing) {
      try {
        mkdirSync(d, mode);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST' && statFolder(d, hint) === 'folder') continue; // another process made it
        if (code === 'ENOENT' && statFolder(dirname(d), hint) === 'missing' && attempt < 4) {
          raced = true; // its parent was removed meanwhile: start again from what exists
          break;
        }
        if (code === 'ENOENT' || code === 'EEXIST') {
          const why = code === 'ENOENT' ? `its file system refuses new folders (mkdir fails with ENOENT although ${dirname(d)} exists)` : 'something that is not a folder is in the way';
          throw new GadgetError(`cannot create the folder ${d}: ${why}`, { exitCode: 2, hint, cause: err });
        }
        throw new GadgetError(`cannot create the folder ${d}: ${reasonOf(err)}`, { exitCode: 2, hint, cause: err });
      }
    }
    if (!raced) return;
  }
}

function statFolder(dir: string, hint: string): 'folder' | 'file' | 'missing' {
  try {
    const st = statSync(dir, { throwIfNoEntry: false });
    return st === undefined ? 'missing' : st.isDirectory() ? 'folder' : 'file';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return 'file';
    throw new GadgetError(`cannot create the folder ${dir}: ${reasonOf(err)}`, { exitCode: 2, hint, cause: err });
  }
}

/** "permission denied" of "EACCES: permission denied, mkdir '/x'" (Node's message without code and call). */
function reasonOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const text = e.message.replace(/^[A-Z0-9_]+: /, '').replace(/, \w+ '.*'$/, '');
  return e.code && text === e.message ? `${text} (${e.code})` : text;
}
