// Sync benchmark (issue 5): 100 and 1 000 generated multi-arch gadget images (eBPF, wasm and
// btfgen layers; one btfgen blob per architecture shared by every image), written with the
// store API into bench/.data/sync. This project (`gadget sync`, one command) against
// `skopeo copy --all` run once per tag (what a skopeo user must do for an OCI layout), each to
// its own fresh local docker-registry: cold push, no-change re-sync, pull into an empty store.
// Then the peak RSS of `gadget push` of an image with a 1 GiB layer.
//
//   node --import tsx bench/sync.ts [IMAGES...] [--no-skopeo] [--big MIB]   (default: 100 1000 --big 1024)
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { GADGET_ARTIFACT_TYPE, GADGET_BTFGEN, GADGET_CONFIG, GADGET_EBPF, GADGET_WASM, MT_INDEX, MT_MANIFEST } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';
import { openStore } from '../store/store.js';
import { startRegistry, type TestRegistry } from '../test/helpers/registry.js';
import { CLI, printTable, ROOT } from './measure.js';

const DATA = join(ROOT, 'bench', '.data', 'sync');
const PROBE = join(ROOT, 'bench', 'rss-probe.mjs');
const RECIPE = 'sync-bench 1: ebpf 16 KiB x2, wasm 32 KiB, btfgen 512 KiB shared per arch, 10 tags per repository';
const KIB = 1024;
const MIB = 1024 * KIB;

/** `N` images as `bench.local/sync/gadgetR:v1.T.0`, ten tags per repository. */
function refsFor(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `bench.local/sync/gadget${Math.floor(i / 10)}:v1.${i % 10}.0`);
}

async function generate(n: number): Promise<string> {
  const dir = join(DATA, `store-${n}`);
  const marker = join(dir, 'gadget-oci', 'bench-recipe');
  if (existsSync(marker) && readFileSync(marker, 'utf8') === RECIPE) return dir;
  rmSync(dir, { recursive: true, force: true });
  const store = await openStore(dir);
  try {
    const btfgen: Record<string, Descriptor> = {};
    for (const arch of ['amd64', 'arm64']) btfgen[arch] = await store.putBytes(randomBytes(512 * KIB), GADGET_BTFGEN);
    const tags: Array<{ descriptor: Descriptor; ref: string }> = [];
    for (const [i, ref] of refsFor(n).entries()) {
      const config = await store.putBytes(Buffer.from(`name: gadget${i}\ndescription: benchmark gadget ${i}\n`), GADGET_CONFIG);
      const wasm = await store.putBytes(randomBytes(32 * KIB), GADGET_WASM);
      const manifests: Descriptor[] = [];
      for (const architecture of ['amd64', 'arm64']) {
        const ebpf = await store.putBytes(randomBytes(16 * KIB), GADGET_EBPF);
        const manifest = { schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: GADGET_ARTIFACT_TYPE, config, layers: [ebpf, wasm, btfgen[architecture]!] };
        const d = await store.putBytes(encodeJSONBytes(manifest), MT_MANIFEST);
        manifests.push({ ...d, platform: { architecture, os: 'linux' } });
      }
      const index = await store.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_INDEX, manifests }), MT_INDEX);
      tags.push({ descriptor: index, ref });
    }
    await store.tagMany(tags);
  } finally {
    store.close();
  }
  writeFileSync(marker, RECIPE);
  return dir;
}

/** A store with one image whose eBPF layer is `mib` MiB of random bytes. */
async function bigImage(mib: number): Promise<{ dir: string; ref: string }> {
  const dir = join(DATA, `big-${mib}`);
  const ref = `bench.local/sync/big:${mib}mib`;
  const marker = join(dir, 'gadget-oci', 'bench-recipe');
  if (existsSync(marker)) return { dir, ref };
  rmSync(dir, { recursive: true, force: true });
  const store = await openStore(dir);
  try {
    const file = join(DATA, 'big-layer.tmp');
    const hash = createHash('sha256');
    const fd = openSync(file, 'w');
    for (let i = 0; i < mib; i += 16) {
      const chunk = randomBytes(Math.min(16, mib - i) * MIB);
      hash.update(chunk);
      writeSync(fd, chunk);
    }
    closeSync(fd);
    const layer: Descriptor = { mediaType: GADGET_EBPF, digest: `sha256:${hash.digest('hex')}`, size: mib * MIB };
    await store.push(layer, createReadStream(file));
    rmSync(file);
    const config = await store.putBytes(Buffer.from('name: big\n'), GADGET_CONFIG);
    const m = await store.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: GADGET_ARTIFACT_TYPE, config, layers: [layer] }), MT_MANIFEST);
    const index = await store.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_INDEX, manifests: [{ ...m, platform: { architecture: 'amd64', os: 'linux' } }] }), MT_INDEX);
    await store.tag(index, ref);
  } finally {
    store.close();
  }
  writeFileSync(marker, 'big');
  return { dir, ref };
}

/**
 * Runs a command without blocking this process: the registries started here write their logs
 * to a pipe this process must keep reading (spawnSync would let the pipe fill and stall them).
 */
function run(cmd: string, args: string[], cwd = DATA): Promise<{ seconds: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${stderr.slice(0, 2000)}`));
      else resolve({ seconds: Number(process.hrtime.bigint() - start) / 1e9, stdout, stderr });
    });
  });
}

/** `gadget ARGS --json` in a folder without a config; the summary must show `expect` images. */
async function ours(args: string[], expect: { copied?: number; skipped?: number }): Promise<{ seconds: number; rssMB: number }> {
  const m = await run(process.execPath, ['--import', PROBE, CLI, '--json', '--quiet', ...args]);
  const rss = /bench-maxrss-kb=(\d+)/.exec(m.stderr);
  const summary = JSON.parse(m.stdout) as { images: { copied: number; skipped: number; failed: number } };
  for (const [k, v] of Object.entries(expect)) {
    if (summary.images[k as 'copied'] !== v) throw new Error(`gadget ${args.join(' ')}: ${JSON.stringify(summary.images)}, expected ${k} ${v}`);
  }
  return { seconds: m.seconds, rssMB: rss ? Number(rss[1]) / 1024 : NaN };
}

/** `skopeo copy --all` once per tag, as a user's loop runs it. */
async function skopeoEach(pairs: Array<[string, string]>, flag: string): Promise<number> {
  const start = process.hrtime.bigint();
  for (const [from, to] of pairs) await run('/usr/bin/skopeo', ['copy', '--all', '--quiet', flag, from, to]);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

interface Row {
  n: number;
  what: string;
  ours: number;
  skopeo?: number;
}

async function benchSize(n: number, withSkopeo: boolean, rows: Row[]): Promise<void> {
  const storeDir = await generate(n);
  const refs = refsFor(n);
  const registries: TestRegistry[] = [];
  try {
    const mine = await startRegistry();
    registries.push(mine);
    const cold = await ours(['--store', storeDir, 'sync', '--from', 'store:bench.local/sync/*', '--to', `${mine.host}/ours`], { copied: n });
    const warm = await ours(['--store', storeDir, 'sync', '--from', 'store:bench.local/sync/*', '--to', `${mine.host}/ours`], { skipped: n });
    const empty = join(DATA, `pulled-${n}`);
    rmSync(empty, { recursive: true, force: true });
    const pull = await ours(['--store', empty, 'sync', '--from', `${mine.host}/ours/`, '--to', 'store'], { copied: n });
    let theirs: { cold: number; warm: number; pull: number } | undefined;
    if (withSkopeo) {
      const reg = await startRegistry();
      registries.push(reg);
      const dest = (ref: string): string => `docker://${reg.host}/skopeo/${ref.slice('bench.local/'.length)}`;
      const pushes = refs.map((ref): [string, string] => [`oci:${storeDir}:${ref}`, dest(ref)]);
      const skopeoCold = await skopeoEach(pushes, '--dest-tls-verify=false');
      const skopeoWarm = await skopeoEach(pushes, '--dest-tls-verify=false');
      const layout = join(DATA, `skopeo-pulled-${n}`);
      rmSync(layout, { recursive: true, force: true });
      const skopeoPull = await skopeoEach(refs.map((ref): [string, string] => [dest(ref), `oci:${layout}:${ref}`]), '--src-tls-verify=false');
      theirs = { cold: skopeoCold, warm: skopeoWarm, pull: skopeoPull };
      rmSync(layout, { recursive: true, force: true });
    }
    rmSync(empty, { recursive: true, force: true });
    rows.push({ n, what: 'cold push', ours: cold.seconds, skopeo: theirs?.cold });
    rows.push({ n, what: 'no-change re-sync', ours: warm.seconds, skopeo: theirs?.warm });
    rows.push({ n, what: 'pull into an empty store', ours: pull.seconds, skopeo: theirs?.pull });
  } finally {
    for (const r of registries) await r.stop();
  }
}

async function benchBig(mib: number): Promise<Array<Array<string | number>>> {
  const { dir, ref } = await bigImage(mib);
  const reg = await startRegistry();
  try {
    const push = await ours(['--store', dir, 'push', ref, `${reg.host}/big/image`], { copied: 1 });
    const empty = join(DATA, 'big-pulled');
    rmSync(empty, { recursive: true, force: true });
    const pull = await ours(['--store', empty, 'pull', `${reg.host}/big/image:${mib}mib`], { copied: 1 });
    rmSync(empty, { recursive: true, force: true });
    return [
      [`push, ${mib} MiB layer`, push.seconds, mib / push.seconds, push.rssMB],
      [`pull, ${mib} MiB layer`, pull.seconds, mib / pull.seconds, pull.rssMB],
    ];
  } finally {
    await reg.stop();
  }
}

export async function main(argv: string[] = []): Promise<void> {
  const bigAt = argv.indexOf('--big');
  const big = bigAt >= 0 ? Number(argv[bigAt + 1]) : 1024;
  const sizes = argv.filter((a, i) => /^\d+$/.test(a) && i !== bigAt + 1).map(Number);
  const withSkopeo = !argv.includes('--no-skopeo') && existsSync('/usr/bin/skopeo');
  mkdirSync(DATA, { recursive: true });
  const rows: Row[] = [];
  for (const n of sizes.length ? sizes : [100, 1000]) await benchSize(n, withSkopeo, rows);
  printTable(
    'sync: this project (one `gadget sync` command) against `skopeo copy --all` once per tag, local docker-registry',
    ['images', 'operation', 'gadget s', 'gadget images/s', 'skopeo s', 'skopeo images/s', 'gadget / skopeo'],
    rows.map((r) => [r.n, r.what, r.ours, r.n / r.ours, r.skopeo ?? NaN, r.skopeo ? r.n / r.skopeo : NaN, r.skopeo ? r.skopeo / r.ours : NaN]),
  );
  printTable('one image with a large layer (whole `gadget` command, peak RSS of the process)', ['operation', 'seconds', 'MiB/s', 'peak RSS MB'], await benchBig(big));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(process.argv.slice(2));
