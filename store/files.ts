// Crash-safe file operations: everything becomes visible by rename only after it is complete,
// fsynced and (for blobs) verified.
import { closeSync, fsync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { finished, pipeline, type Readable } from 'node:stream';
import { promisify } from 'node:util';
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

const WRITE_BATCH = 1 << 20;
/** Blobs up to this size are collected and written in one go (see writeWhole). */
const WHOLE_FILE_BYTES = 1 << 20;
const fsyncFd = promisify(fsync);

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
  // A download already checked against this digest and size (the registry client's verifier)
  // is not hashed a second time: it fails the loop below, as our own verifier would, when it
  // ends wrong; a large pull hashes each byte once.
  const reuse = content instanceof DigestVerifier && content.checks(expected);
  const verifier = reuse ? content : new DigestVerifier(expected, what);
  // Listeners before the first await, and pipeline, not pipe: content that fails while the
  // file is being opened (a small download whose digest check already failed) must fail the
  // loop below, not go uncaught, nor leave it waiting forever with the process unsettled.
  if (reuse) finished(verifier, () => undefined);
  else pipeline(content, verifier, () => undefined);
  const tmp = tempName(tmpDir, 'blob');
  if (expected.size <= WHOLE_FILE_BYTES) return writeWhole(dest, tmp, content, verifier, signal);
  let handle: FileHandle;
  try {
    handle = await open(tmp, 'w', 0o644);
  } catch (err) {
    content.destroy();
    verifier.destroy();
    throw err;
  }
  try {
    // Downloads arrive in chunks of 16-64 KiB: written a MiB at a time, a large blob costs
    // 16 times fewer system calls.
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      const bytes = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      let off = 0;
      while (off < bytes.length) off += (await handle.write(bytes, off, bytes.length - off)).bytesWritten;
    };
    for await (const chunk of verifier) {
      signal?.throwIfAborted();
      pending.push(chunk as Buffer);
      pendingBytes += (chunk as Buffer).length;
      if (pendingBytes >= WRITE_BATCH) await flush();
    }
    if (pendingBytes > 0) await flush();
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

/**
 * A small blob: collected through its check (a wrong one never reaches the disk), then written
 * with synchronous calls around one fsync in the thread pool. As a stream it would take five
 * trips through the pool (open, write, fsync, close, rename), each costing more CPU than its
 * system call; the fsync, which waits for the disk, stays off the event loop.
 */
async function writeWhole(dest: string, tmp: string, content: Readable, verifier: DigestVerifier, signal?: AbortSignal): Promise<void> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of verifier) {
      signal?.throwIfAborted();
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    content.destroy();
    throw err;
  }
  const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  const fd = openSync(tmp, 'w', 0o644);
  let fdOpen = true;
  try {
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    await fsyncFd(fd);
    fdOpen = false;
    closeSync(fd);
    renameSync(tmp, dest);
  } catch (err) {
    if (fdOpen) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
}
