// The file a layout tar is written to (`export -o`, a sync's bundle): the tar is written beside
// it and renamed over it, so the target must be a new or a regular file. A device, FIFO,
// socket, folder or symbolic link (the link itself, not what it points to, would be replaced)
// is refused before anything is written, as is a path inside the store's own folder.
import type { Stats } from 'node:fs';
import { lstat, readlink, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, parse, relative, sep } from 'node:path';
import { fileSystemReason, GadgetError, messageOf } from '../lib/errors.js';

export interface OutputGuard {
  /** The root of the store the tar is read from: the tar may not be written inside it. */
  store?: string;
  /**
   * A missing folder is not refused (yet): a sync to a bundle creates it with its staging store
   * beside the tar; writeLayoutTar itself checks without this.
   */
  folderMayBeMissing?: boolean;
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
    if (guard.folderMayBeMissing) return;
    throw new GadgetError(`cannot write ${outFile}: the folder ${dir} does not exist`, {
      exitCode: 2,
      hint: `create it first (mkdir -p ${dir}), or ${NEW_OR_REGULAR} in an existing folder`,
    });
  }
  if (guard.store !== undefined) {
    let inside = false;
    try {
      const target = join(await realpath(dir), basename(outFile));
      const rel = relative(await realpath(guard.store), target);
      inside = rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
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

/** An unexpected failure to look at the output path, as one sentence naming it. */
function pathError(outFile: string, err: unknown): GadgetError {
  const fs = fileSystemReason(err);
  return new GadgetError(`cannot write ${outFile}: ${fs?.reason ?? messageOf(err)}`, {
    exitCode: 2,
    cause: err,
    hint: fs?.hint ?? 'give the path of a new or regular file in a folder you can write to',
  });
}
