// The btfgen layer: for every kernel of a btfhub-archive-like folder
// (<distro>/<version>/<x86_64|arm64>/<kernel>.btf or .btf.tar.xz), `bpftool gen min_core_btf`
// keeps only the types the object's CO-RE relocations need, and the results are packed as one
// deterministic gzip tarball per architecture with the same folder structure (what ig's
// Makefile.build.btfgen does with find/tar/bpftool).
import { execFile, spawn } from 'node:child_process';
import { createWriteStream, existsSync, type Stats } from 'node:fs';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { checkEntryPath, readTar, writeTar, type TarInput } from '../../lib/archive/tar.js';
import { btfArchDir } from '../../lib/content/btf.js';
import { GadgetError, messageOf } from '../../lib/errors.js';
import { missingTool, requireTool } from './compile.js';
import type { Arch } from './arch.js';
import { makeWorkDir, removeStaleWorkDirs, toolEnv } from './workdir.js';

const run = promisify(execFile);

/** Larger than any real kernel BTF (~5-10 MiB); a bound for what a .tar.xz may expand to. */
const MAX_BTF_BYTES = 256 << 20;

export interface KernelBtf {
  /** Path inside the layer: <distro>/<version>/<arch>/<kernel>.btf */
  path: string;
  /** The input file (.btf or .btf.tar.xz). */
  file: string;
  compressed: boolean;
  size: number;
  mtimeMs: number;
}

function btfhubError(message: string): GadgetError {
  return new GadgetError(message, { exitCode: 2, hint: 'a btfhub folder holds <distro>/<version>/<x86_64|arm64>/<kernel>.btf[.tar.xz] files with UTF-8 names' });
}

/** The entry names of `dir` (they become paths inside the layer, so they must be UTF-8). */
async function names(dir: string): Promise<string[]> {
  let raw: Buffer[];
  try {
    raw = await readdir(dir, { encoding: 'buffer' });
  } catch (err) {
    throw btfhubError(`cannot read the btfhub folder ${dir}: ${messageOf(err)}`);
  }
  return raw.map((name) => {
    const text = name.toString('utf8');
    if (!Buffer.from(text, 'utf8').equals(name)) throw btfhubError(`${dir} holds a file whose name is not UTF-8 (${JSON.stringify(name.toString('latin1'))})`);
    return text;
  }).sort();
}

/** stat that follows symlinks; a dangling one is a clear error. */
async function statIn(file: string): Promise<Stats> {
  try {
    return await stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw btfhubError(code === 'ENOENT' ? `${file} is a symbolic link to nothing` : `cannot read ${file}: ${messageOf(err)}`);
  }
}

async function subdirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await names(dir)) {
    if (name.startsWith('.')) continue;
    if ((await statIn(path.join(dir, name))).isDirectory()) out.push(name);
  }
  return out;
}

/** Every kernel BTF of `arch` in a btfhub-archive-like folder, sorted by layer path. */
export async function findKernelBtfs(btfhub: string, arch: Arch): Promise<KernelBtf[]> {
  const archDir = btfArchDir(arch);
  const out: KernelBtf[] = [];
  for (const distro of await subdirs(btfhub)) {
    for (const version of await subdirs(path.join(btfhub, distro))) {
      const dir = path.join(btfhub, distro, version, archDir);
      if (!existsSync(dir)) continue;
      for (const name of await names(dir)) {
        const compressed = name.endsWith('.btf.tar.xz');
        if (!compressed && !name.endsWith('.btf')) continue;
        const file = path.join(dir, name);
        const kernel = compressed ? name.slice(0, -'.tar.xz'.length) : name;
        if (kernel === '.btf') throw btfhubError(`${file} has no kernel name (the file name is the kernel release, e.g. 5.15.0-1-generic.btf)`);
        const info = await statIn(file);
        if (!info.isFile()) continue;
        out.push({ path: `${distro}/${version}/${archDir}/${kernel}`, file, compressed, size: info.size, mtimeMs: info.mtimeMs });
      }
    }
  }
  // A kernel present both plain and compressed is used once (the plain file).
  const seen = new Set<string>();
  return out
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : Number(a.compressed) - Number(b.compressed)))
    .filter((k) => (seen.has(k.path) ? false : (seen.add(k.path), true)));
}

/** Fails a stream that grows past `limit` bytes. */
function limit(bytes: number, what: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      seen += chunk.length;
      if (seen > bytes) cb(new GadgetError(`${what} expands to more than ${bytes} bytes`));
      else cb(null, chunk);
    },
  });
}

/**
 * Writes the .btf file inside a btfhub .btf.tar.xz to `dest`. The archive is read by our own
 * tar reader from `xz -dc`; entry names are only checked and matched, never used as paths.
 */
export async function extractBtf(archive: string, dest: string, signal?: AbortSignal): Promise<void> {
  const xz = await requireTool('xz', `decompress ${archive}`);
  const child = spawn(xz, ['-dc', '--', archive], { stdio: ['ignore', 'pipe', 'pipe'], signal });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s.slice(0, 4000)));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ENOENT' ? missingTool('xz', `decompress ${archive}`) : err));
    child.on('close', (code) => resolve(code));
  });
  // Through a PassThrough, so that child.stdout stays a plain piped stream we can drain
  // afterwards (tar files are padded past their end marker; xz must be read to EOF to close).
  const tarStream = new PassThrough();
  child.stdout.pipe(tarStream);
  let found = false;
  try {
    for await (const entry of readTar(tarStream, { gzip: false, where: archive })) {
      const name = checkEntryPath(entry.path, archive);
      if (!found && entry.type === 'file' && name.endsWith('.btf')) {
        await pipeline(entry.body, limit(MAX_BTF_BYTES, `${archive} entry ${name}`), createWriteStream(dest, { mode: 0o600 }));
        found = true;
      } else {
        for await (const _ of entry.body); // skip it
      }
    }
    child.stdout.unpipe(tarStream);
    child.stdout.resume();
  } catch (err) {
    child.stdout.unpipe(tarStream);
    child.kill();
    child.stdout.resume();
    await exited.catch(() => undefined);
    throw err instanceof GadgetError ? err : new GadgetError(`cannot read ${archive}: ${messageOf(err)}`, { cause: err });
  }
  const code = await exited;
  if (code !== 0) throw new GadgetError(`xz could not decompress ${archive}: ${stderr.trim() || `exit code ${code}`}`, { hint: 'the file may be damaged; download it again' });
  if (!found) throw new GadgetError(`${archive} holds no .btf file`, { hint: 'btfhub-archive tarballs hold one <kernel>.btf each' });
}

/** A deterministic gzip tarball of `files` (plus their parent folders), sorted by path. */
export async function packBtfTarball(files: Array<{ path: string; content: Buffer }>): Promise<Buffer> {
  const entries = new Map<string, TarInput>();
  for (const f of files) {
    const parts = checkEntryPath(f.path, 'btfgen layer').split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!entries.has(dir)) entries.set(dir, { path: dir, type: 'directory' });
    }
    entries.set(parts.join('/'), { path: parts.join('/'), content: f.content });
  }
  const sorted = [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const chunks: Buffer[] = [];
  for await (const chunk of writeTar(sorted)) chunks.push(chunk as Buffer);
  // zlib's gzip header has mtime 0 and a fixed OS byte: same tar, same bytes.
  return gzipSync(Buffer.concat(chunks), { level: 9 });
}

export interface BtfgenInput {
  btfhub: string;
  objects: Partial<Record<Arch, Buffer>>;
  signal?: AbortSignal;
  /** Called once per minimised kernel (for progress). */
  onKernel?: (arch: Arch, kernel: string) => void;
}

export interface BtfgenResult {
  layers: Partial<Record<Arch, Buffer>>;
  /** Architectures that have an object but no kernel BTF in the folder. */
  missing: Arch[];
  bpftoolVersion?: string;
}

/** Runs `work` on every item, `width` at once; after a failure no new item starts, and it throws once all have ended. */
async function pool<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const workers = Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length && !failed) {
      try {
        await work(items[next++]!);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  });
  const settled = await Promise.allSettled(workers);
  const error = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (error) throw error.reason;
}

/** Minimises every kernel BTF of each arch against that arch's object and packs the layers. */
export async function generateBtfgen(input: BtfgenInput): Promise<BtfgenResult> {
  const bpftool = await requireTool('bpftool', `generate the btfgen layer from ${input.btfhub}`);
  await removeStaleWorkDirs();
  const tmp = await makeWorkDir('btfgen');
  const result: BtfgenResult = { layers: {}, missing: [] };
  try {
    for (const arch of Object.keys(input.objects).sort() as Arch[]) {
      const object = input.objects[arch]!;
      const kernels = await findKernelBtfs(input.btfhub, arch);
      if (kernels.length === 0) {
        result.missing.push(arch);
        continue;
      }
      const objFile = path.join(tmp, `${arch}.bpf.o`);
      await writeFile(objFile, object, { mode: 0o600 });
      const minimised: Array<{ path: string; content: Buffer }> = [];
      let n = 0;
      await pool(kernels, availableParallelism(), async (k) => {
        const id = n++;
        const input_ = k.compressed ? path.join(tmp, `in-${arch}-${id}.btf`) : k.file;
        const out = path.join(tmp, `out-${arch}-${id}.btf`);
        try {
          if (k.compressed) await extractBtf(k.file, input_, input.signal);
          try {
            await run(bpftool, ['gen', 'min_core_btf', input_, out, objFile], { signal: input.signal, maxBuffer: 4 << 20, env: toolEnv(tmp) });
          } catch (err) {
            const e = err as NodeJS.ErrnoException & { stderr?: string };
            if (e.code === 'ENOENT') throw missingTool('bpftool', 'generate the btfgen layer');
            throw new GadgetError(`bpftool gen min_core_btf failed for ${k.file} (${arch}): ${(e.stderr ?? '').trim() || messageOf(err)}`, {
              hint: 'check that the file is a kernel BTF of this architecture and that the object was built with -g',
            });
          }
          minimised.push({ path: k.path, content: await readFile(out) });
          input.onKernel?.(arch, k.path);
        } finally {
          await rm(out, { force: true });
          if (k.compressed) await rm(input_, { force: true });
        }
      });
      result.layers[arch] = await packBtfTarball(minimised);
    }
    return result;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** What the cache key needs to know about a btfhub folder without hashing gigabytes. */
export async function btfhubFingerprint(btfhub: string, archs: readonly Arch[]): Promise<string> {
  const lines: string[] = [];
  for (const arch of archs) {
    for (const k of await findKernelBtfs(btfhub, arch)) lines.push(`${k.path}\t${k.compressed ? 'xz' : 'btf'}\t${k.size}\t${Math.trunc(k.mtimeMs)}`);
  }
  return lines.join('\n');
}
