// Checks of the btfgen layer: a (gzip) tarball of minimised BTF files laid out like
// btfhub-archive, `<distro>/<version>/<x86_64|arm64>/<kernel>.btf`, one per kernel. The
// tarball is streamed: only each file's 24-byte header is kept, never a whole file or layer.
import type { Readable } from 'node:stream';
import { checkEntryPath, isArchiveRoot, readTar, type TarEntry } from '../archive/tar.js';
import { GadgetError } from '../errors.js';
import { contentError, contentWarning, hasContentErrors, type ContentProblem, type GadgetArch } from './problem.js';

export const BTF_MAGIC = 0xeb9f;
const BTF_HEADER_SIZE = 24;
/** A broken tarball can repeat one problem per entry; past this many we only count them. */
const MAX_PROBLEMS = 100;

/** The btfhub-archive folder name of a platform. */
export function btfArchDir(arch: GadgetArch): string {
  return arch === 'amd64' ? 'x86_64' : 'arm64';
}

/** Problems of one BTF blob (e.g. the output of `bpftool gen min_core_btf`). */
export function checkBtfFile(bytes: Buffer): ContentProblem[] {
  return checkBtfHeader(bytes.subarray(0, BTF_HEADER_SIZE), bytes.length, '');
}

/**
 * struct btf_header { u16 magic; u8 version; u8 flags; u32 hdr_len;
 *                     u32 type_off, type_len, str_off, str_len; }  (offsets after hdr_len)
 */
function checkBtfHeader(head: Buffer, size: number, name: string): ContentProblem[] {
  const where = name ? `${name}: ` : '';
  if (head.length < 2 || !((head[0] === 0x9f && head[1] === 0xeb) || (head[0] === 0xeb && head[1] === 0x9f))) {
    return [contentError('BTF-MAGIC', `${where}not a BTF file: it does not start with the BTF magic 0xeB9F (bytes 9f eb)`)];
  }
  if (head[0] === 0xeb) {
    // 0xeB9F stored big-endian: generated for a big-endian kernel.
    return [contentError('BTF-ENDIAN', `${where}the BTF is big-endian; amd64 and arm64 kernels need little-endian BTF`)];
  }
  if (size < BTF_HEADER_SIZE) {
    return [contentError('BTF-TRUNCATED', `${where}the BTF header is truncated (${size} of ${BTF_HEADER_SIZE} bytes)`)];
  }
  if (head[2] !== 1) return [contentError('BTF-VERSION', `${where}unknown BTF version ${head[2]} (expected 1)`)];
  const hdrLen = head.readUInt32LE(4);
  const typeEnd = head.readUInt32LE(8) + head.readUInt32LE(12);
  const strEnd = head.readUInt32LE(16) + head.readUInt32LE(20);
  if (hdrLen < BTF_HEADER_SIZE || hdrLen > size) {
    return [contentError('BTF-TRUNCATED', `${where}the BTF header length ${hdrLen} does not fit the ${size}-byte file`)];
  }
  if (hdrLen + Math.max(typeEnd, strEnd) > size) {
    return [contentError('BTF-TRUNCATED', `${where}the BTF type or string section ends after the end of the ${size}-byte file`)];
  }
  return [];
}

/** Type and path rules of one tar entry; the arch folder is checked when the platform is known. */
function entryProblems(entry: TarEntry, archDir: string | undefined, arch: GadgetArch | undefined): ContentProblem[] {
  const shown = JSON.stringify(entry.path);
  if (entry.type !== 'file' && entry.type !== 'directory') {
    const link = entry.linkpath !== undefined ? ` to ${JSON.stringify(entry.linkpath)}` : '';
    const kind = entry.type === 'other' ? 'a special file (device, fifo or similar)' : `a ${entry.type}${link}`;
    return [contentError('BTF-UNSAFE', `${shown} is ${kind}; a BTF tarball may hold only regular files and directories`)];
  }
  // `tar czf ... -C dir .` (ig's build) starts with the folder itself: "./".
  if (entry.type === 'directory' && isArchiveRoot(entry.path)) return [];
  let path: string;
  try {
    path = checkEntryPath(entry.path, 'btf tarball');
  } catch (err) {
    if (!(err instanceof GadgetError)) throw err;
    return [contentError('BTF-UNSAFE', `${shown} would be written outside the extraction folder (${err.message.replace(/^btf tarball: /, '')})`)];
  }
  const parts = path.split('/');
  const layout = '<distro>/<version>/<arch>/<kernel>.btf';
  if (entry.type === 'directory') {
    if (parts.length > 3) return [contentError('BTF-PATH', `directory ${shown} is deeper than ${layout} allows`)];
  } else if (parts.length === 1 && parts[0]!.endsWith('.btf') && parts[0] !== '.btf') {
    // What ig's build packs from a flat btfgen folder; ig's own reader looks for the full layout.
    return [contentWarning('BTF-FLAT', `${shown} is at the top of the tarball, not at ${layout}: ig's loader looks for the btfhub-archive layout and will not find it`)];
  } else if (parts.length !== 4 || !parts[3]!.endsWith('.btf') || parts[3] === '.btf') {
    return [contentError('BTF-PATH', `${shown} is not laid out as ${layout}`)];
  }
  if (archDir !== undefined && parts.length >= 3 && parts[2] !== archDir) {
    return [contentError('BTF-ARCH', `${shown} is in the "${parts[2]}" folder, but the ${arch} layer must hold only ${archDir} BTF files`)];
  }
  return [];
}

/** Reads a tar entry's body to its end, keeping only the first bytes (the BTF header). */
async function headOf(entry: TarEntry): Promise<{ head: Buffer; size: number }> {
  const kept: Buffer[] = [];
  let keptLength = 0;
  let size = 0;
  for await (const chunk of entry.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (keptLength < BTF_HEADER_SIZE) {
      kept.push(chunk.subarray(0, BTF_HEADER_SIZE - keptLength));
      keptLength += kept[kept.length - 1]!.length;
    }
  }
  return { head: Buffer.concat(kept), size };
}

/**
 * Problems of a btfgen layer for one platform, read as a stream (gzip or plain tar) up to the
 * tar end-of-archive marker. Never throws for bad content: a corrupt archive is 'BTF-TAR'.
 * With `arch` undefined (the platform is not known) everything but the arch folder is checked.
 */
export async function checkBtfTarball(stream: Readable, arch: GadgetArch | undefined): Promise<ContentProblem[]> {
  const archDir = arch && btfArchDir(arch);
  const problems: ContentProblem[] = [];
  let dropped = 0;
  const add = (found: ContentProblem[]): void => {
    for (const p of found) {
      if (problems.length < MAX_PROBLEMS) problems.push(p);
      else dropped++;
    }
  };
  const seen = new Set<string>();
  let files = 0;
  try {
    for await (const entry of readTar(stream, { gzip: 'auto', where: 'btf tarball' })) {
      const found = entryProblems(entry, archDir, arch);
      add(found);
      // Every body is read here (links and directories have empty ones), so the reader
      // never has to skip a half-read entry.
      const { head, size } = await headOf(entry);
      if (hasContentErrors(found) || entry.type !== 'file') continue;
      files++;
      const path = checkEntryPath(entry.path, 'btf tarball');
      if (seen.has(path)) add([contentError('BTF-PATH', `${JSON.stringify(entry.path)} appears twice in the tarball`)]);
      seen.add(path);
      add(checkBtfHeader(head, size, JSON.stringify(entry.path)));
    }
  } catch (err) {
    const reason = err instanceof Error ? err.message.replace(/^btf tarball: /, '') : String(err);
    add([contentError('BTF-TAR', `the BTF tarball is not a readable (gzip) tar archive: ${reason}`)]);
    if (dropped) problems.push(contentError('BTF-MORE', `${dropped} more problems were found`));
    return problems;
  }
  if (files === 0 && problems.length === 0) {
    add([contentWarning('BTF-EMPTY', `the BTF tarball holds no ${archDir ? `${archDir} ` : ''}BTF file`)]);
  }
  if (dropped) problems.push(contentError('BTF-MORE', `${dropped} more problems were found`));
  return problems;
}
