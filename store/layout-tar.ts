// Writes an OCI layout tar (oci-layout, index.json, blobs/sha256/*): what `gadget export` and
// sync bundle destinations produce. Deterministic (blobs sorted by digest, fixed tar
// metadata), and atomic: a temporary file beside the target, fsynced, then renamed over it.
import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { writeTar, type TarInput } from '../lib/archive/tar.js';
import { GadgetError, messageOf } from '../lib/errors.js';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { MT_INDEX } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';

export interface LayoutTarBlob {
  digest: string;
  size: number;
  open: () => Readable | Promise<Readable>;
}

export const LAYOUT_BYTES = Buffer.from('{"imageLayoutVersion":"1.0.0"}');

export async function writeLayoutTar(outFile: string, entries: Descriptor[], blobs: LayoutTarBlob[], signal?: AbortSignal): Promise<void> {
  const sorted = [...blobs].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  const inputs: TarInput[] = [
    { path: 'oci-layout', content: LAYOUT_BYTES },
    { path: 'index.json', content: encodeJSONBytes({ schemaVersion: 2, mediaType: MT_INDEX, manifests: entries }) },
    { path: 'blobs', type: 'directory' },
    { path: 'blobs/sha256', type: 'directory' },
    ...sorted.map((b) => ({ path: `blobs/sha256/${b.digest.slice(7)}`, size: b.size, open: b.open })),
  ];
  const partial = `${outFile}.partial-${process.pid}`;
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
    await rm(partial, { force: true });
    // Our own errors (a blob missing or damaged in the source) say what failed themselves.
    if (signal?.aborted || err instanceof GadgetError) throw err;
    throw new GadgetError(`cannot write ${outFile}: ${messageOf(err)}`, { exitCode: 2 });
  }
}
