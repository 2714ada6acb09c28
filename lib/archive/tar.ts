// The one tar implementation: a deterministic writer (same entries, same bytes) and a
// streaming reader that reports every entry as it is. Policy (which entries are allowed)
// belongs to the caller; checkEntryPath is the shared guard against escaping a folder.
import { closeSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { posix } from 'node:path';
import { GadgetError } from '../errors.js';

const BLOCK = 512;

export interface TarInput {
  path: string;
  type?: 'file' | 'directory';
  content?: Buffer;
  size?: number;
  open?: () => Readable | Promise<Readable>;
  mode?: number;
}

export interface TarEntry {
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';
  size: number;
  mode: number;
  /** The header's type flag ('0' file, '2' symlink, '6' FIFO...), for messages. */
  typeflag: string;
  linkpath?: string;
  body: Readable;
}

/** What to do about a tar that ends early. */
const CUT_SHORT = 'the file ends early (an interrupted copy or download?): copy or download it again';
const DAMAGED = 'the archive is damaged or is not a tar: copy or write it again';
const OUTSIDE = 'entries that would land outside their folder are refused: make the archive again without them';

const TYPE_WORDS: Record<string, string> = {
  '0': 'a regular file', '\0': 'a regular file', '7': 'a regular file', '1': 'a hard link', '2': 'a symbolic link',
  '3': 'a character device', '4': 'a block device', '5': 'a folder', '6': 'a FIFO',
};

/** An entry's type in words, for messages: "a FIFO", "a symbolic link to x". */
export function describeEntryType(entry: Pick<TarEntry, 'typeflag' | 'linkpath'>): string {
  const words = TYPE_WORDS[entry.typeflag] ?? `an entry of unknown type ${JSON.stringify(entry.typeflag)}`;
  return entry.linkpath && (entry.typeflag === '1' || entry.typeflag === '2') ? `${words} to "${entry.linkpath}"` : words;
}

/** Whether an entry names the archive's own folder: `./`, as `tar cf x.tar -C DIR .` starts. */
export function isArchiveRoot(name: string): boolean {
  return /^(\.\/?)+$/.test(name);
}

/** A normalised relative path, or a GadgetError when the entry would leave its folder. */
export function checkEntryPath(path: string, where: string): string {
  if (path.length === 0 || path.includes('\0')) throw new GadgetError(`${where}: an entry has an empty or invalid name`, { hint: DAMAGED });
  if (path.startsWith('/') || /^[a-zA-Z]:[\\/]/.test(path)) {
    throw new GadgetError(`${where}: entry "${path}" has an absolute path`, { hint: OUTSIDE });
  }
  if (path.split(/[\\/]/).includes('..')) {
    throw new GadgetError(`${where}: entry "${path}" contains "..", which would escape its folder`, { hint: OUTSIDE });
  }
  const normal = posix.normalize(path).replace(/\/+$/, '');
  if (normal === '.' || normal === '') throw new GadgetError(`${where}: an entry names the folder itself`, { hint: DAMAGED });
  return normal.replace(/^\.\//, '');
}

// ---------------------------------------------------------------- writer

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, size: number, mode: number, typeflag: string, prefix = ''): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii'); // mtime: 0 for reproducible output
  h.write('        ', 148, 'ascii'); // checksum placeholder
  h.write(typeflag, 156, 'ascii');
  h.write('ustar\0' + '00', 257, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(octal(sum, 7) + ' ', 148, 'ascii');
  return h;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

/** ustar name/prefix split, or undefined when a pax header is needed. */
function splitName(path: string): { name: string; prefix: string } | undefined {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  return undefined;
}

function entryHeaders(path: string, size: number, mode: number, typeflag: string): Buffer[] {
  const split = splitName(path);
  if (split && size < 8 ** 11) return [header(split.name, size, mode, typeflag, split.prefix)];
  const records = Buffer.from(paxRecord('path', path) + (size >= 8 ** 11 ? paxRecord('size', String(size)) : ''));
  return [
    header('PaxHeader', records.length, 0o644, 'x'),
    pad(records),
    header(path.slice(0, 99), size >= 8 ** 11 ? 0 : size, mode, typeflag),
  ];
}

function pad(data: Buffer): Buffer {
  const rest = data.length % BLOCK;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(BLOCK - rest)]);
}

/** A deterministic ustar stream of the given entries, in the given order. */
export function writeTar(entries: Iterable<TarInput> | AsyncIterable<TarInput>): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    for await (const entry of entries) {
      const path = checkEntryPath(entry.path, 'tar');
      if (entry.type === 'directory') {
        yield* entryHeaders(path + '/', 0, entry.mode ?? 0o755, '5');
        continue;
      }
      const size = entry.content?.length ?? entry.size;
      if (size === undefined) throw new Error(`tar entry ${path} has neither content nor size`);
      yield* entryHeaders(path, size, entry.mode ?? 0o644, '0');
      if (entry.content) {
        yield entry.content;
      } else if (entry.open) {
        let written = 0;
        for await (const chunk of await entry.open()) {
          written += (chunk as Buffer).length;
          if (written > size) throw new GadgetError(`tar entry ${path} is larger than its declared ${size} bytes`);
          yield chunk as Buffer;
        }
        if (written !== size) throw new GadgetError(`tar entry ${path} has ${written} bytes, expected ${size}`);
      }
      if (size % BLOCK) yield Buffer.alloc(BLOCK - (size % BLOCK));
    }
    yield Buffer.alloc(BLOCK * 2);
  }
  return Readable.from(generate(), { objectMode: false });
}

// ---------------------------------------------------------------- reader

/** Pulls exact byte counts out of a stream without buffering more than a chunk ahead. */
class ByteReader {
  private buffered: Buffer[] = [];
  private length = 0;
  private done = false;
  private readonly iterator: AsyncIterator<Buffer>;

  constructor(source: AsyncIterable<Buffer>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.iterator.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    this.buffered.push(chunk);
    this.length += chunk.length;
    return true;
  }

  /** Exactly n bytes, or fewer at end of input. */
  async read(n: number): Promise<Buffer> {
    while (this.length < n && (await this.fill()));
    return this.take(Math.min(n, this.length));
  }

  /** Up to n bytes, as soon as any are available (for streaming bodies). */
  async readSome(n: number): Promise<Buffer> {
    if (this.length === 0) await this.fill();
    return this.take(Math.min(n, this.length));
  }

  private take(n: number): Buffer {
    const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.buffered = rest.length ? [rest] : [];
    this.length = rest.length;
    return out;
  }
}

function field(h: Buffer, start: number, len: number): string {
  const raw = h.subarray(start, start + len);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? len : end).toString('utf8');
}

function number(h: Buffer, start: number, len: number, where: string): number {
  if (h[start]! & 0x80) {
    // GNU base-256 for sizes of 8 GiB and more.
    let value = 0;
    for (let i = start + 1; i < start + len; i++) value = value * 256 + h[i]!;
    return value;
  }
  const text = field(h, start, len).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new GadgetError(`${where}: corrupt tar header (bad number "${text}")`, { hint: DAMAGED });
  return parseInt(text, 8);
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const len = parseInt(data.subarray(pos, space).toString('ascii'), 10);
    if (!(len > 0) || pos + len > data.length) break;
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

const TYPES: Record<string, TarEntry['type']> = { '0': 'file', '\0': 'file', '7': 'file', '5': 'directory', '2': 'symlink', '1': 'hardlink' };

const EXTENDED = new Set(['x', 'g', 'L', 'K']);

/** The checksum-verified type flag and size of a 512-byte header. */
function checkHeader(h: Buffer, where: string): { typeflag: string; size: number } {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  if (sum !== number(h, 148, 8, where)) throw new GadgetError(`${where}: corrupt tar header (checksum mismatch)`, { hint: DAMAGED });
  return { typeflag: String.fromCharCode(h[156]!), size: number(h, 124, 12, where) };
}

/** pax and GNU long-name headers, applied to the entry that follows them. */
class ExtendedHeaders {
  private pax: Record<string, string> = {};
  private longName?: string;
  private longLink?: string;

  add(typeflag: string, data: Buffer): void {
    if (typeflag === 'x') this.pax = { ...this.pax, ...parsePax(data) };
    if (typeflag === 'L') this.longName = data.toString('utf8').replace(/\0+$/, '');
    if (typeflag === 'K') this.longLink = data.toString('utf8').replace(/\0+$/, '');
  }

  /** The entry of header `h`, with the extended headers seen before it (then forgotten). */
  entry(h: Buffer, typeflag: string, size: number, where: string): Omit<TarEntry, 'body'> {
    const prefix = h.subarray(257, 262).toString('ascii') === 'ustar' ? field(h, 345, 155) : '';
    const path = this.pax.path ?? this.longName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    const linkpath = this.pax.linkpath ?? this.longLink ?? (field(h, 157, 100) || undefined);
    if (this.pax.size !== undefined) size = Number(this.pax.size);
    this.pax = {};
    this.longName = this.longLink = undefined;
    const type = TYPES[typeflag] ?? 'other';
    return { path, type, size, mode: number(h, 100, 8, where), typeflag, linkpath: type === 'file' ? undefined : linkpath };
  }
}

/** Bytes of body that follow an entry's header (links and folders have none). */
function bodySizeOf(entry: Omit<TarEntry, 'body'>): number {
  return entry.type === 'file' || entry.type === 'other' ? entry.size : 0;
}

const padded = (size: number): number => size + ((BLOCK - (size % BLOCK)) % BLOCK);

/** Whether bytes begin with gzip's magic number. */
function startsGzip(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** Whether a file is gzip-compressed (a tar that cannot be read in place). */
export function isGzipFile(file: string): boolean {
  const head = Buffer.alloc(2);
  const fd = openSync(file, 'r');
  try {
    return startsGzip(head.subarray(0, readSync(fd, head, 0, 2, 0)));
  } finally {
    closeSync(fd);
  }
}

async function peekGzip(input: Readable): Promise<{ gzip: boolean; stream: AsyncIterable<Buffer> }> {
  const iterator = input[Symbol.asyncIterator]();
  const asBuffer = (chunk: unknown): Buffer => (Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  // The two magic bytes may arrive in separate chunks (a stream with a tiny highWaterMark).
  let head: Buffer = Buffer.alloc(0);
  while (head.length < 2) {
    const next = await iterator.next();
    if (next.done) break;
    head = Buffer.concat([head, asBuffer(next.value)]);
  }
  async function* rest(): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield asBuffer(next.value);
    }
  }
  return { gzip: startsGzip(head), stream: rest() };
}

/** The input's own errors (a cut gzip stream, an unreadable file) as one sentence naming it. */
async function* failClearly(source: AsyncIterable<Buffer>, where: string): AsyncGenerator<Buffer> {
  try {
    yield* source;
  } catch (err) {
    if (err instanceof GadgetError) throw err;
    const e = err as NodeJS.ErrnoException;
    const why = e.code?.startsWith('Z_') || /unexpected end of file|incorrect header check|invalid/.test(e.message) ? `its gzip stream is damaged or cut short (${e.message})` : e.message;
    throw new GadgetError(`${where}: cannot read the archive: ${why}`, { hint: DAMAGED });
  }
}

/**
 * Streams the entries of a tar (plain or gzip). Each entry's body must be consumed (or
 * resumed) before the next entry is produced. Throws GadgetError on a corrupt archive.
 */
export async function* readTar(input: Readable, opts: { gzip?: 'auto' | boolean; where?: string } = {}): AsyncGenerator<TarEntry> {
  const where = opts.where ?? 'tar';
  let source: AsyncIterable<Buffer> = input;
  if (opts.gzip !== false) {
    const peeked = await peekGzip(input);
    const gzip = opts.gzip === true || peeked.gzip;
    if (gzip) {
      // pipeline, not pipe: an error of the input must reach the reader, not crash the process.
      const gunzip = createGunzip();
      pipeline(Readable.from(peeked.stream), gunzip).catch((err) => gunzip.destroy(err));
      source = gunzip;
    } else {
      source = peeked.stream;
    }
  }
  const reader = new ByteReader(failClearly(source, where));
  const extended = new ExtendedHeaders();
  for (;;) {
    const h = await reader.read(BLOCK);
    if (h.length === 0) throw new GadgetError(`${where}: the archive ends without an end-of-archive marker`, { hint: CUT_SHORT });
    if (h.length < BLOCK) throw new GadgetError(`${where}: the archive is truncated`, { hint: CUT_SHORT });
    if (h.every((b) => b === 0)) {
      // Read what follows the end marker (tar pads to a record size), so that a digest check
      // on the same stream sees every byte.
      while ((await reader.readSome(1 << 20)).length > 0);
      return;
    }
    const { typeflag, size } = checkHeader(h, where);
    if (EXTENDED.has(typeflag)) {
      if (size > 1024 * 1024) throw new GadgetError(`${where}: an extended tar header is larger than 1 MiB`, { hint: DAMAGED });
      const data = await reader.read(padded(size));
      if (data.length < size) throw new GadgetError(`${where}: the archive is truncated`, { hint: CUT_SHORT });
      extended.add(typeflag, data.subarray(0, size));
      continue;
    }
    const entry = extended.entry(h, typeflag, size, where);
    const path = entry.path;
    const bodySize = bodySizeOf(entry);
    let remaining = bodySize;
    async function* body(): AsyncGenerator<Buffer> {
      while (remaining > 0) {
        const chunk = await reader.readSome(Math.min(remaining, 1 << 20));
        if (chunk.length === 0) throw new GadgetError(`${where}: entry "${path}" is truncated`, { hint: CUT_SHORT });
        remaining -= chunk.length;
        yield chunk;
      }
    }
    const stream = Readable.from(body(), { objectMode: false });
    let finished = false;
    stream.on('end', () => (finished = true));
    yield { ...entry, body: stream };
    if (!finished) {
      // The consumer did not read the body: skip what is left of it.
      stream.destroy();
      while (remaining > 0) {
        const chunk = await reader.readSome(Math.min(remaining, 1 << 20));
        if (chunk.length === 0) throw new GadgetError(`${where}: entry "${path}" is truncated`, { hint: CUT_SHORT });
        remaining -= chunk.length;
      }
    }
    const padding = (BLOCK - (bodySize % BLOCK)) % BLOCK;
    if (padding && (await reader.read(padding)).length < padding) throw new GadgetError(`${where}: the archive is truncated`, { hint: CUT_SHORT });
  }
}

// ---------------------------------------------------------------- index of a tar file

export interface TarIndexEntry extends Omit<TarEntry, 'body'> {
  /** Where the entry's body starts in the file. */
  offset: number;
}

/**
 * The entries of a plain (uncompressed) tar file and where their bodies start, from its
 * headers alone: positioned reads of 512 bytes per entry, bodies skipped, so that a caller
 * can read any entry later with a ranged read. Throws GadgetError on a gzip or corrupt file.
 */
export async function indexTarFile(file: string, where = file): Promise<TarIndexEntry[]> {
  const handle = await open(file, 'r');
  try {
    const fileSize = (await handle.stat()).size;
    const read = async (position: number, length: number): Promise<Buffer> => {
      const buffer = Buffer.alloc(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await handle.read(buffer, got, length - got, position + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buffer.subarray(0, got);
    };
    const entries: TarIndexEntry[] = [];
    const extended = new ExtendedHeaders();
    for (let position = 0; ; ) {
      const h = await read(position, BLOCK);
      if (position === 0 && startsGzip(h)) {
        throw new GadgetError(`${where} is compressed (gzip)`, { exitCode: 2, hint: `decompress it first (gunzip), or \`gadget import\` it` });
      }
      if (h.length === 0) throw new GadgetError(`${where}: the archive ends without an end-of-archive marker`, { hint: CUT_SHORT });
      if (h.length < BLOCK) throw new GadgetError(`${where}: the archive is truncated`, { hint: CUT_SHORT });
      if (h.every((b) => b === 0)) return entries;
      const { typeflag, size } = checkHeader(h, where);
      position += BLOCK;
      if (EXTENDED.has(typeflag)) {
        if (size > 1024 * 1024) throw new GadgetError(`${where}: an extended tar header is larger than 1 MiB`, { hint: DAMAGED });
        const data = await read(position, size);
        if (data.length < size) throw new GadgetError(`${where}: the archive is truncated`, { hint: CUT_SHORT });
        extended.add(typeflag, data);
        position += padded(size);
        continue;
      }
      const entry = extended.entry(h, typeflag, size, where);
      const bodySize = bodySizeOf(entry);
      if (position + bodySize > fileSize) throw new GadgetError(`${where}: entry "${entry.path}" is truncated`, { hint: CUT_SHORT });
      entries.push({ ...entry, offset: position });
      position += padded(bodySize);
    }
  } finally {
    await handle.close();
  }
}
