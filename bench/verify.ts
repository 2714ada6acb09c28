// verify benchmark: 1 000 and 10 000 generated gadget images in one store, and images with
// one 1 GiB layer (an ebpf layer, hashed only; a btfgen tarball, hashed and checked as a
// stream). Each measurement runs the library's verifyImages in a fresh process, so that its
// peak RSS is verify's own, and measures node's sha256 speed in that same process.
//
//   node --import tsx bench/verify.ts [IMAGES...] [--big MIB]     (default: 1000 10000 --big 1024)
//
// Stores are generated under bench/.data/ (ignored by git) and reused while their recipe is
// unchanged. They are written as an OCI layout and indexed by openStore: putBytes fsyncs
// every blob (~12 ms here), which would take 12 minutes for 60 000 blobs.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { writeTar } from '../lib/archive/tar.js';
import { sha256 } from '../lib/oci/digest.js';
import { encodeJSONBytes } from '../lib/oci/json.js';
import {
  ANN_BUILDER_VERSION, ANN_CREATED, ANN_DESCRIPTION, ANN_DOCUMENTATION, ANN_REF_NAME, ANN_SOURCE, ANN_TITLE, ANN_URL,
  GADGET_ARTIFACT_TYPE, GADGET_BTFGEN, GADGET_CONFIG, GADGET_EBPF, GADGET_WASM, MT_INDEX, MT_MANIFEST,
} from '../lib/oci/mediatypes.js';
import type { Annotations, Descriptor, Index, Manifest } from '../lib/oci/types.js';
import { blobPath, initLayout, writeIndexFile } from '../store/layout.js';
import { openStore } from '../store/store.js';
import { printTable } from './measure.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const DATA = path.join(HERE, '.data', 'verify');
const RECIPE = 'verify-bench 1';
const MIB = 1 << 20;

interface Measurement {
  images: number;
  passed: number;
  seconds: number;
  /** CPU time (user + system) of the verification: wall time is inflated on a busy machine. */
  cpuSeconds: number;
  bytes: number;
  sha256MBps: number;
  maxRssMB: number;
}

// ------------------------------------------------------------------ generation

export function writeBlob(root: string, bytes: Buffer, mediaType: string): Descriptor {
  const digest = sha256(bytes);
  const file = blobPath(root, digest);
  if (!existsSync(file)) writeFileSync(file, bytes);
  return { mediaType, digest, size: bytes.length };
}

/** A minimal little-endian BTF blob: header, no types, one empty string. */
function tinyBtf(): Buffer {
  const b = Buffer.alloc(25);
  b.writeUInt16LE(0xeb9f, 0);
  b[2] = 1;
  b.writeUInt32LE(24, 4);
  b.writeUInt32LE(0, 8);
  b.writeUInt32LE(0, 12);
  b.writeUInt32LE(0, 16);
  b.writeUInt32LE(1, 20);
  return b;
}

async function tarBytes(entries: Parameters<typeof writeTar>[0]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of writeTar(entries)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function annotationsFor(name: string): Annotations {
  return {
    [ANN_TITLE]: name,
    [ANN_DESCRIPTION]: `benchmark gadget ${name}`,
    [ANN_URL]: `https://example.com/${name}`,
    [ANN_DOCUMENTATION]: `https://example.com/${name}/docs`,
    [ANN_SOURCE]: `https://example.com/${name}/src`,
    [ANN_BUILDER_VERSION]: 'bench',
    [ANN_CREATED]: '2025-10-20T14:06:44Z',
  };
}

function gadgetYaml(name: string): Buffer {
  return Buffer.from(`name: ${name}\ndescription: benchmark gadget ${name}\nhomepageURL: https://example.com/${name}\ndocumentationURL: https://example.com/${name}/docs\nsourceURL: https://example.com/${name}/src\n`);
}

/** One gadget image as ig builds it; returns the index descriptor to tag. */
function writeImage(root: string, name: string, layers: Record<'amd64' | 'arm64', Descriptor[]>): Descriptor {
  const annotations = annotationsFor(name);
  const config = writeBlob(root, gadgetYaml(name), GADGET_CONFIG);
  const entries: Descriptor[] = [];
  for (const arch of ['amd64', 'arm64'] as const) {
    const manifest: Manifest = { schemaVersion: 2, artifactType: GADGET_ARTIFACT_TYPE, config: { ...config, annotations }, layers: layers[arch], annotations };
    const m = writeBlob(root, encodeJSONBytes(manifest), MT_MANIFEST);
    entries.push({ ...m, annotations, platform: { architecture: arch, os: 'linux' } });
  }
  const index: Index = { schemaVersion: 2, mediaType: MT_INDEX, manifests: entries, annotations };
  return { ...writeBlob(root, encodeJSONBytes(index), MT_INDEX), annotations };
}

/** `count` images, each with its own gadget.yaml and eBPF objects; wasm and btfgen shared. */
export async function generateSmall(root: string, count: number): Promise<void> {
  const objects = { amd64: readFileSync(path.join(ROOT, 'examples/trace_open/prebuilt/amd64.o')), arm64: readFileSync(path.join(ROOT, 'examples/trace_open/prebuilt/arm64.o')) };
  const wasm = writeBlob(root, readFileSync(path.join(ROOT, 'examples/hello_wasm/program.wasm')), GADGET_WASM);
  const btfgen = {
    amd64: writeBlob(root, gzipSync(await tarBytes([{ path: 'ubuntu/22.04/x86_64/5.15.0-1-generic.btf', content: tinyBtf() }])), GADGET_BTFGEN),
    arm64: writeBlob(root, gzipSync(await tarBytes([{ path: 'ubuntu/22.04/arm64/5.15.0-1-generic.btf', content: tinyBtf() }])), GADGET_BTFGEN),
  };
  const tags: Descriptor[] = [];
  for (let i = 0; i < count; i++) {
    const name = `gadget_${String(i).padStart(5, '0')}`;
    // Bytes after the section table keep the object valid and make it this image's own.
    const own = (o: Buffer): Descriptor => writeBlob(root, Buffer.concat([o, Buffer.from(`${name}\0`)]), GADGET_EBPF);
    const index = writeImage(root, name, {
      amd64: [own(objects.amd64), wasm, btfgen.amd64],
      arm64: [own(objects.arm64), wasm, btfgen.arm64],
    });
    tags.push({ ...index, annotations: { ...index.annotations, [ANN_REF_NAME]: `example.com/bench/${name}:v1` } });
  }
  writeIndexFile(root, tags);
}

/** Streams chunks into a blob file, hashing as it goes (never the whole blob in memory). */
async function writeStreamedBlob(root: string, mediaType: string, chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<Descriptor> {
  const tmp = path.join(root, 'blobs', 'sha256', `.bench-${process.pid}`);
  const hash = createHash('sha256');
  const fd = openSync(tmp, 'w');
  let size = 0;
  try {
    for await (const c of chunks) {
      hash.update(c);
      for (let w = 0; w < c.length; ) w += writeSync(fd, c, w);
      size += c.length;
    }
  } finally {
    closeSync(fd);
  }
  const digest = `sha256:${hash.digest('hex')}`;
  renameSync(tmp, blobPath(root, digest));
  return { mediaType, digest, size };
}

/** One image whose amd64 ebpf layer is `mib` MiB (past the in-memory cap: hashed only). */
async function generateBigEbpf(root: string, mib: number): Promise<void> {
  const object = readFileSync(path.join(ROOT, 'examples/trace_open/prebuilt/amd64.o'));
  const first = Buffer.alloc(4 * MIB, 0x5a);
  object.copy(first);
  const rest = Buffer.alloc(4 * MIB, 0x5a);
  const big = await writeStreamedBlob(root, GADGET_EBPF, (function* () {
    for (let i = 0; i < Math.max(1, Math.round(mib / 4)); i++) yield i === 0 ? first : rest;
  })());
  const arm = writeBlob(root, readFileSync(path.join(ROOT, 'examples/trace_open/prebuilt/arm64.o')), GADGET_EBPF);
  const index = writeImage(root, 'big_ebpf', { amd64: [big], arm64: [arm] });
  writeIndexFile(root, [{ ...index, annotations: { ...index.annotations, [ANN_REF_NAME]: 'example.com/bench/big_ebpf:v1' } }]);
}

/** One image whose amd64 btfgen layer is a plain tarball of `mib` MiB of 16 MiB BTF files. */
async function generateBigBtfgen(root: string, mib: number): Promise<void> {
  const fileSize = 16 * MIB - 512; // with its tar header, each file takes 16 MiB
  const body = Buffer.alloc(fileSize);
  tinyBtf().copy(body);
  body.writeUInt32LE(fileSize - 24, 20); // the string section spans the file
  const files = Math.max(1, Math.floor(mib / 16));
  const entries = Array.from({ length: files }, (_, i) => ({
    path: `ubuntu/22.04/x86_64/5.15.0-${i}-generic.btf`,
    size: fileSize,
    open: () => Readable.from([body]),
  }));
  const layer = await writeStreamedBlob(root, GADGET_BTFGEN, writeTar(entries) as AsyncIterable<Buffer>);
  const objects = { amd64: writeBlob(root, readFileSync(path.join(ROOT, 'examples/trace_open/prebuilt/amd64.o')), GADGET_EBPF), arm64: writeBlob(root, readFileSync(path.join(ROOT, 'examples/trace_open/prebuilt/arm64.o')), GADGET_EBPF) };
  const index = writeImage(root, 'big_btfgen', { amd64: [objects.amd64, layer], arm64: [objects.arm64] });
  writeIndexFile(root, [{ ...index, annotations: { ...index.annotations, [ANN_REF_NAME]: 'example.com/bench/big_btfgen:v1' } }]);
}

/** Creates (or reuses) the store for `kind` and returns its folder. */
export async function ensureStore(kind: string, generate: (root: string) => Promise<void>): Promise<string> {
  const root = path.join(DATA, kind);
  const marker = path.join(root, '.bench-recipe');
  if (existsSync(marker) && readFileSync(marker, 'utf8') === RECIPE) return root;
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  initLayout(root);
  const start = Date.now();
  await generate(root);
  const store = await openStore(root); // indexes every image once, like a first `gadget list`
  store.close();
  writeFileSync(marker, RECIPE);
  console.error(`bench: generated ${kind} in ${((Date.now() - start) / 1000).toFixed(1)} s`);
  return root;
}

function blobBytes(root: string): number {
  const dir = path.join(root, 'blobs', 'sha256');
  return readdirSync(dir).filter((f) => /^[a-f0-9]{64}$/.test(f)).reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);
}

// ------------------------------------------------------------------ measurement (child process)

/**
 * The measuring process, plain JavaScript so that it runs on the compiled package as the
 * `gadget` command does (tsx alone adds ~35 MB of RSS). One verifyImages run, with node's
 * sha256 over 256 MiB in 4 MiB pieces (no large allocation to inflate RSS) before and after.
 */
const CHILD = `
import { createHash } from 'node:crypto';
const [verifyUrl, storeUrl, root] = process.argv.slice(1);
const { verifyImages } = await import(verifyUrl);
const { openStore } = await import(storeUrl);
const sha256Speed = () => {
  const chunk = Buffer.alloc(4 << 20, 0xa5);
  const start = process.hrtime.bigint();
  const hash = createHash('sha256');
  for (let i = 0; i < 64; i++) hash.update(chunk);
  hash.digest();
  return 256 / (Number(process.hrtime.bigint() - start) / 1e9);
};
const before = sha256Speed();
const store = await openStore(root);
const cpu = process.cpuUsage();
const start = process.hrtime.bigint();
const reports = await verifyImages(store, 'all', { profile: 'spec' });
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const used = process.cpuUsage(cpu);
store.close();
process.stdout.write(JSON.stringify({
  images: reports.length,
  passed: reports.filter((r) => r.passed).length,
  seconds,
  cpuSeconds: (used.user + used.system) / 1e6,
  sha256MBps: Math.max(before, sha256Speed()),
  maxRssMB: process.resourceUsage().maxRSS / 1024,
}) + '\\n');
`;

/** dist/ when it is built and newer than the sources (what users run), else the sources through tsx. */
function codeUnderTest(): { args: string[]; verify: string; store: string; label: string } {
  const dist = (f: string): string => path.join(ROOT, 'dist', f);
  const sources = ['plugins/verify.ts', ...readdirSync(path.join(ROOT, 'plugins/verify')).map((f) => `plugins/verify/${f}`), 'store/store.ts'];
  const built = existsSync(dist('plugins/verify.js'))
    && sources.filter((f) => f.endsWith('.ts')).every((f) => {
      const js = dist(f.replace(/\.ts$/, '.js'));
      return existsSync(js) && statSync(path.join(ROOT, f)).mtimeMs <= statSync(js).mtimeMs;
    });
  if (built) return { args: [], verify: pathToFileURL(dist('plugins/verify.js')).href, store: pathToFileURL(dist('store/store.js')).href, label: 'compiled dist/, plain node' };
  console.error('bench: dist/ is missing or older than the sources (run `npm run build`); measuring the sources through tsx, whose loader adds ~35 MB RSS');
  return { args: ['--import', 'tsx'], verify: pathToFileURL(path.join(ROOT, 'plugins/verify.ts')).href, store: pathToFileURL(path.join(ROOT, 'store/store.ts')).href, label: 'sources through tsx' };
}

/** The best of `repeats` runs, each in a fresh process; RSS is the highest of them. */
function measureInChild(root: string, code: ReturnType<typeof codeUnderTest>, repeats: number): Measurement {
  const runs = Array.from({ length: repeats }, () => {
    const r = spawnSync(process.execPath, [...code.args, '--input-type=module', '-e', CHILD, code.verify, code.store, root], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`bench: measuring ${root} failed (${r.status}): ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Omit<Measurement, 'bytes'>;
  });
  const best = runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  return {
    ...best,
    sha256MBps: Math.max(...runs.map((r) => r.sha256MBps)),
    maxRssMB: Math.max(...runs.map((r) => r.maxRssMB)),
    bytes: blobBytes(root),
  };
}

// ------------------------------------------------------------------ main

export async function main(args: string[] = []): Promise<void> {
  const counts: number[] = [];
  let bigMiB = 1024;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--big') bigMiB = Number(args[++i]);
    else if (/^\d+$/.test(args[i]!)) counts.push(Number(args[i]));
    else throw new Error(`bench/verify.ts: unknown argument ${args[i]} (usage: [IMAGES...] [--big MIB])`);
  }
  if (!Number.isInteger(bigMiB) || bigMiB < 0) throw new Error('bench/verify.ts: --big takes a number of MiB (0 skips the large cases)');
  const sizes = counts.length ? counts : [1000, 10000];
  const code = codeUnderTest();
  const rows: Array<Array<string | number>> = [];
  const row = (label: string, m: Measurement): void => {
    const mbps = m.bytes / MIB / m.seconds;
    rows.push([label, m.images, `${m.passed}/${m.images}`, m.seconds, m.cpuSeconds, m.images / m.seconds, mbps, m.sha256MBps, `${((100 * mbps) / m.sha256MBps).toFixed(0)}%`, m.maxRssMB]);
  };
  for (const n of sizes) {
    const root = await ensureStore(`small-${n}`, (r) => generateSmall(r, n));
    row(`${n} small images`, measureInChild(root, code, 3));
  }
  if (bigMiB > 0) {
    row(`1 image, ${bigMiB} MiB ebpf layer (hashed only)`, measureInChild(await ensureStore(`big-ebpf-${bigMiB}`, (r) => generateBigEbpf(r, bigMiB)), code, 3));
    row(`1 image, ${bigMiB} MiB btfgen tarball (streamed check)`, measureInChild(await ensureStore(`big-btfgen-${bigMiB}`, (r) => generateBigBtfgen(r, bigMiB)), code, 3));
  }
  printTable(`gadget verify (library, profile spec; ${code.label}; best of 3 runs, each in a fresh process; load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} CPUs)`, ['case', 'images', 'passed', 'seconds', 'CPU s', 'images/s', 'MB/s', 'node sha256 MB/s', 'of sha256', 'peak RSS MB'], rows);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) await main(process.argv.slice(2));
