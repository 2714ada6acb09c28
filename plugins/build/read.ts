// Reading a build's input files: the size is checked with stat before anything is read (a
// 2 GiB file is refused, never loaded), big inputs are hashed as streams, and every failure
// (permission denied, a folder where a file belongs, a file that changed while read) is one
// sentence naming the file.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { GadgetError, messageOf } from '../../lib/errors.js';

/** Caps, far above any real input: eBPF objects are KiBs to a few MiBs, Go wasm modules tens of MiBs. */
export const MAX_SOURCE_BYTES = 16 << 20;
export const MAX_OBJECT_BYTES = 64 << 20;
export const MAX_WASM_BYTES = 128 << 20;
export const MAX_BUILD_FILE_BYTES = 64 << 10;

const MiB = (n: number): string => (n >= 1 << 20 ? `${n / (1 << 20)} MiB` : `${n / 1024} KiB`);

/** The error for a file that cannot be read. */
export function cannotRead(err: unknown, shown: string, what: string): GadgetError {
  if (err instanceof GadgetError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') {
    const user = process.getuid?.();
    return new GadgetError(`cannot read ${shown} (${what}): permission denied`, { exitCode: 2, hint: `make it readable by the user running the build${user === undefined ? '' : ` (uid ${user})`}` });
  }
  if (code === 'ENOENT') return new GadgetError(`${shown} (${what}) does not exist`, { exitCode: 2, hint: 'a symbolic link may point at nothing' });
  return new GadgetError(`cannot read ${shown} (${what}): ${messageOf(err)}`, { exitCode: 2, hint: 'check that it is a regular, readable file' });
}

/** The size of `file`, refused above `max`. */
export async function checkSize(file: string, shown: string, what: string, max: number): Promise<number> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (err) {
    throw cannotRead(err, shown, what);
  }
  if (size > max) {
    throw new GadgetError(`${shown} (${what}) is ${size} bytes, more than the ${MiB(max)} allowed`, { exitCode: 2, hint: 'check that the right file was given' });
  }
  return size;
}

/** The whole file, after its size was checked against `max`. */
export async function readCapped(file: string, shown: string, what: string, max: number): Promise<Buffer> {
  await checkSize(file, shown, what, max);
  try {
    const bytes = await readFile(file);
    if (bytes.length > max) throw new GadgetError(`${shown} (${what}) grew past ${MiB(max)} while it was read`, { exitCode: 2 });
    return bytes;
  } catch (err) {
    throw cannotRead(err, shown, what);
  }
}

/** sha256 of the file, streamed, after its size was checked against `max`. */
export async function hashCapped(file: string, shown: string, what: string, max: number): Promise<string> {
  await checkSize(file, shown, what, max);
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  } catch (err) {
    throw cannotRead(err, shown, what);
  }
  return 'sha256:' + hash.digest('hex');
}
