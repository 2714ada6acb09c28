// Crash-safe file operations: everything becomes visible by rename only after it is complete,
// fsynced and (for blobs) verified.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline, type Readable } from 'node:stream';
import { DigestVerifier } from '../lib/oci/digest.js';

/** A temporary name that says which process made it, so fsck can tell live from stray. */
export function tempName(dir: string, base: string): string {
  return join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}-${base}`);
}

export function parseTempName(file: string): { pid: number } | undefined {
  const match = /^\.tmp-(\d+)-[0-9a-f]{12}-/.exec(file);
  return match ? { pid: Number(match[1]) } : undefined;
}

export function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replaces `file` with `data` atomically (temp + fsync + rename + directory fsync). */
export function writeFileAtomicSync(file: string, data: Buffer | string, tmpDir = dirname(file)): void {
  const tmp = tempName(tmpDir, 'file');
  const fd = openSync(tmp, 'w', 0o644);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDirSync(dirname(file));
}

/**
 * Streams `content` into `dest` through a digest check. The bytes land in a temporary file
 * in `tmpDir` (same file system) and are renamed into place only when digest and size match.
 */
export async function writeVerifiedFile(
  dest: string,
  tmpDir: string,
  expected: { digest: string; size: number },
  content: Readable,
  what: string,
  signal?: AbortSignal,
): Promise<void> {
  const tmp = tempName(tmpDir, 'blob');
  const handle = await open(tmp, 'w', 0o644);
  const verifier = new DigestVerifier(expected, what);
  try {
    // pipeline, not pipe: content that failed or closed before this point (a small download
    // whose digest check already failed while the store was opening the file) must fail the
    // verifier too, or the loop below would wait forever and the process end with it unsettled.
    pipeline(content, verifier, () => undefined);
    for await (const chunk of verifier) {
      signal?.throwIfAborted();
      let off = 0;
      while (off < chunk.length) off += (await handle.write(chunk, off, chunk.length - off)).bytesWritten;
    }
    await handle.sync();
    await handle.close();
    await rename(tmp, dest);
  } catch (err) {
    content.destroy();
    await handle.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}
