// The file a layout tar is written to (`export -o`, a sync's bundle): the tar is written beside
// it and renamed over it, so the target must be a new or a regular file in an existing folder.
// A device, FIFO, socket, folder or symbolic link (the link itself, not what it points to,
// would be replaced) is refused before anything is written, as are a missing folder (as tar and
// cp refuse it: a typo must not become a new tree) and a path inside the store's own folder.
// This is the one rule for every command that writes a bundle.
import type { Stats } from 'node:fs';
import { lstat, readlink, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, parse, relative, sep } from 'node:path';
import { fileSystemReason, GadgetError, messageOf } from '../lib/errors.js';

export interface OutputGuard {
  /** The store's folder (whether or not the tar reads from it): the tar may not be written inside it. */
  store?: string;
}

const NEW_OR_REGULAR = 'give the path of a new or regular file';

/**
 * Refuses, before anything is written, an output path that writing a tar there (a temporary
 * file beside it, renamed over it) would misuse: an existing file that is not a regular file
 * (a device, FIFO, socket or folder would be replaced by a regular file; so would a symbolic
 * link, never what it points to), a path whose folder does not exist or is not a folder, and a
 * path inside the store's own folder (compared by real paths, so symlinked folders count).
 * Every refusal is a GadgetError with a hint and exit code 2.
 */
export async function checkOutputFile(outFile: string, guard: OutputGuard = {}): Promise<void> {
  if (outFile === '' || outFile.endsWith('/') || outFile.endsWith(sep)) {
    throw new GadgetError(`cannot write "${outFile}": it names a folder, not a file`, { exitCode: 2, hint: `${NEW_OR_REGULAR} (e.g. out/gadgets.tar)` });
  }
  const st = await statIfThere(() => lstat(outFile), outFile);
  if (st && !st.isFile()) {
    if (st.isSymbolicLink()) {
      const to = await readlink(outFile).catch(() => '?');
      throw new GadgetError(`cannot write ${outFile}: it is a symbolic link (to ${to}), which the tar would replace, not what it points to`, {
        exitCode: 2,
        hint: `${NEW_OR_REGULAR}; to write where the link points, give that path`,
      });
    }
    const what = st.isDirectory() ? 'it is a folder, not a file' : `it is ${describeKind(st)}, not a regular file, and the tar would replace it`;
    throw new GadgetError(`cannot write ${outFile}: ${what}`, {
      exitCode: 2,
      hint: st.isDirectory() ? `${NEW_OR_REGULAR} (e.g. ${join(outFile, 'gadgets.tar')})` : NEW_OR_REGULAR,
    });
  }
  const dir = dirname(outFile);
  const dirStat = await statIfThere(() => stat(dir), outFile);
  if (!dirStat?.isDirectory()) {
    const notFolder = await firstNonFolder(dir);
    if (notFolder !== undefined) {
      throw new GadgetError(`cannot write ${outFile}: ${notFolder} is not a folder`, { exitCode: 2, hint: `${NEW_OR_REGULAR} in an existing folder` });
    }
    throw new GadgetError(`cannot write ${outFile}: the folder ${dir} does not exist`, { exitCode: 2, hint: `create it first: mkdir -p ${shellWord(dir)}` });
  }
  if (guard.store !== undefined) {
    let inside: boolean;
    try {
      inside = await isInside(guard.store, join(await realpath(dir), basename(outFile)));
    } catch (err) {
      throw pathError(outFile, err);
    }
    if (inside) {
      throw new GadgetError(`cannot write ${outFile}: it is inside the store's own folder (${guard.store}), and the tar would replace or add to the store's files`, {
        exitCode: 2,
        hint: `${NEW_OR_REGULAR} outside the store's folder`,
      });
    }
  }
}

/** Whether the real path `target` is `folder` or inside it (by `folder`'s real path too). */
async function isInside(folder: string, target: string): Promise<boolean> {
  let real: string;
  try {
    real = await realpath(folder);
  } catch (err) {
    // A store not created yet holds no folder the tar could be written into.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  const rel = relative(real, target);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** What `look` finds, or undefined when nothing is there (a missing path, or a file where a folder should be). */
async function statIfThere(look: () => Promise<Stats>, outFile: string): Promise<Stats | undefined> {
  try {
    return await look();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw pathError(outFile, err);
  }
}

function describeKind(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** The first ancestor folder of `dir` (from the root down) that exists but is not a folder. */
async function firstNonFolder(dir: string): Promise<string | undefined> {
  const parts: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    parts.unshift(d);
    if (dirname(d) === d || d === parse(d).root) break;
  }
  for (const d of parts) {
    const st = await stat(d).catch(() => undefined);
    if (!st) return undefined; // missing: the caller says so
    if (!st.isDirectory()) return d;
  }
  return undefined;
}

/** `path` as one shell word, for a hint to paste. */
function shellWord(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}

/** An unexpected failure to look at the output path, as one sentence naming it. */
function pathError(outFile: string, err: unknown): GadgetError {
  const fs = fileSystemReason(err);
  return new GadgetError(`cannot write ${outFile}: ${fs?.reason ?? messageOf(err)}`, {
    exitCode: 2,
    cause: err,
    hint: fs?.hint ?? 'give the path of a new or regular file in a folder you can write to',
  });
}
