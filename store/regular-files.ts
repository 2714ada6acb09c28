// The files of a store or a layout folder (blobs, index.json, oci-layout) are read only when
// they are regular files. Anything else under such a name (a FIFO, a device, a folder) is as
// good as missing and is never waited on: opening a FIFO for reading blocks until a writer
// comes, for ever, and a thread stuck there keeps the process from exiting, Ctrl-C included.
// Files are opened non-blocking (no effect on a regular file) and checked on the open
// descriptor, so nothing swapped in between the check and the read is read either.
import { closeSync, constants, createReadStream, fstatSync, openSync, readFileSync, statSync, type ReadStream, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** The file's stats when it is a regular file (a symbolic link is followed); else undefined. */
export function regularFile(file: string): Stats | undefined {
  const st = statSync(file, { throwIfNoEntry: false });
  return st?.isFile() ? st : undefined;
}

/** The size of a regular file (throws ENOENT, saying what is there, for anything else). */
export function regularSize(file: string): number {
  const st = statSync(file);
  if (!st.isFile()) throw notRegular(file, st);
  return st.size;
}

/** What a non-regular file is, for messages: "a folder", "a FIFO", ... */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/** An error like a missing file's (code ENOENT), saying what is there instead. */
function notRegular(file: string, st: Stats): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${file} is ${fileKind(st)}, not a file`);
  err.code = 'ENOENT';
  err.path = file;
  return err;
}

/** Opens a regular file for reading (throws ENOENT for anything else) and returns its descriptor and size. */
export function openRegular(file: string): { fd: number; size: number } {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw notRegular(file, st);
    return { fd, size: st.size };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** openRegular through the thread pool: a FileHandle of a regular file. */
export async function openRegularHandle(file: string): Promise<FileHandle> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw notRegular(file, st);
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** readFileSync of a regular file only. */
export function readRegular(file: string): Buffer {
  const { fd } = openRegular(file);
  try {
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** createReadStream of a regular file only (the check happens now, the reads later). */
export function streamRegular(file: string, opts: { highWaterMark?: number; start?: number; end?: number } = {}): ReadStream {
  return createReadStream(file, { ...opts, fd: openRegular(file).fd });
}
