// Writes an OCI layout tar (oci-layout, index.json, blobs/sha256/*): what `gadget export` and
// sync bundle destinations produce. Deterministic (blobs sorted by digest, fixed tar
// metadata), and atomic: a temporary file beside the target, fsynced, then renamed over it.
// The temporary file's name carries the writer's pid: one left by a writer killed midway is
// removed by the next write of the same target.
// What may be written over is checked first (output-file.ts).
import { createWriteStream } from 'node:fs';
import { open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { writeTar, type TarInput } from '../lib/archive/tar.js';
import { fileSystemReason, GadgetError, messageOf } from '../lib/errors.js';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { MT_INDEX } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';
import { checkOutputFile, type OutputGuard } from './output-file.js';
import { processAlive } from './temps.js';

export interface LayoutTarBlob {
  digest: string;
  size: number;
  open: () => Readable | Promise<Readable>;
}

export const LAYOUT_BYTES = Buffer.from('{"imageLayoutVersion":"1.0.0"}');


export async function writeLayoutTar(outFile: string, entries: Descriptor[], blobs: LayoutTarBlob[], signal?: AbortSignal, guard: OutputGuard = {}): Promise<void> {
  await checkOutputFile(outFile, { store: guard.store });
  const sorted = [...blobs].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  const inputs: TarInput[] = [
    { path: 'oci-layout', content: LAYOUT_BYTES },
    { path: 'index.json', content: encodeJSONBytes({ schemaVersion: 2, mediaType: MT_INDEX, manifests: entries }) },
    { path: 'blobs', type: 'directory' },
    { path: 'blobs/sha256', type: 'directory' },
    ...sorted.map((b) => ({ path: `blobs/sha256/${b.digest.slice(7)}`, size: b.size, open: b.open })),
  ];
  const partial = `${outFile}.partial-${process.pid}`;
  await removeDeadPartials(outFile);
  try {
    await pipeline(writeTar(inputs), createWriteStream(partial), { signal });
    const handle = await open(partial, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(partial, outFile);
  } catch (err) {
    // The failure to report is the write's, not this clean-up's.
    await rm(partial, { force: true }).catch(() => undefined);
    // Our own errors (a blob missing or damaged in the source) say what failed themselves.
    if (signal?.aborted || err instanceof GadgetError) throw err;
    const fs = fileSystemReason(err);
    // The folder exists (checked first): ENOENT is a file system that makes no files there (/proc).
    const noFiles = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `no file can be made in ${dirname(outFile)}` : undefined;
    throw new GadgetError(`cannot write ${outFile}: ${fs?.reason ?? noFiles ?? messageOf(err)}`, {
      exitCode: 2,
      cause: err,
      hint: fs?.hint ?? 'give the path of a new or regular file in a folder you can write to',
    });
  }
}

/** Removes `FILE.partial-PID` files beside `outFile` whose writer is no longer running. */
async function removeDeadPartials(outFile: string): Promise<void> {
  const prefix = `${basename(outFile)}.partial-`;
  const names = await readdir(dirname(outFile)).catch(() => [] as string[]);
  for (const name of names) {
    const pid = name.startsWith(prefix) ? Number(name.slice(prefix.length)) : NaN;
    if (Number.isSafeInteger(pid) && pid > 0 && !processAlive(pid)) await rm(join(dirname(outFile), name), { force: true });
  }
}
