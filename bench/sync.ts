// Sync benchmark (issues 5 and 14): N generated multi-arch gadget images (per image 4 unique
// blobs: config, wasm, one eBPF object per architecture; plus one btfgen blob per architecture
// shared by every image; 3 manifests), written with the store API into bench/.data/sync. Every
// request goes through a counting proxy in front of a fresh local docker-registry, and the
// table shows, per operation and tool: wall time, requests by kind per image, the client's CPU
// seconds (its reaped processes' cutime+cstime) and idle share (1 - CPU / wall), the
// registries' CPU seconds (/proc/PID/stat), the proxies' (this process's own), and how busy the
// machine's cores were (all three CPU times over cores x wall). This project (one `gadget sync` command) against
// skopeo as its users run it: `skopeo copy --all` once per tag for push and pull, one
// `skopeo sync --all` for registry to registry. Push and pull use 10 tags per repository; the
// registry mirror N repositories of one tag. Then one image with a 1 GiB layer: push, pull,
// export to a tar, import of that tar and a sync from the store to a bundle, each with its peak
// RSS. With --profile, cold push, pull and the no-change mirror run once more under CPU
// profilers (the registries' pprof, node's --cpu-prof), and a second table shows where each
// side's CPU went (bench/profiles.ts).
//
//   node --import tsx bench/sync.ts [IMAGES...] [--no-skopeo] [--big MIB] [--profile] [--registry-gogc N]   (default: 100 --big 1024)
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { GADGET_ARTIFACT_TYPE, GADGET_CONFIG, GADGET_EBPF, MT_INDEX, MT_MANIFEST } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';
import { openStore } from '../store/store.js';
import { startCountingProxy, type CountingProxy } from '../test/helpers/counting-proxy.js';
import { generatedImages } from '../test/helpers/images.js';
import { startRegistry, type TestRegistry } from '../test/helpers/registry.js';
import { CLI, printTable, ROOT } from './measure.js';
import { breakdown, CLIENT_CATEGORIES, goProfile, nodeSamplesIn, REGISTRY_CATEGORIES, type Share } from './profiles.js';

const DATA = join(ROOT, 'bench', '.data', 'sync');
const PROBE = join(ROOT, 'bench', 'rss-probe.mjs');
const RECIPE = 'sync-bench 2: ebpf 16 KiB x2, wasm 32 KiB, btfgen 512 KiB shared per arch';
const KIB = 1024;
const MIB = 1024 * KIB;

/** `N` images as `bench.local/sync/gadgetR:v1.T.0`, `perRepository` tags per repository. */
function refsFor(n: number, perRepository: number): string[] {
  return Array.from({ length: n }, (_, i) => `bench.local/sync/gadget${Math.floor(i / perRepository)}:v1.${i % perRepository}.0`);
}

export async function generate(n: number, perRepository: number): Promise<string> {
  const dir = join(DATA, `store-${n}-${perRepository}`);
  const marker = join(dir, 'gadget-oci', 'bench-recipe');
  if (existsSync(marker) && readFileSync(marker, 'utf8') === RECIPE) return dir;
  rmSync(dir, { recursive: true, force: true });
  const store = await openStore(dir);
  try {
    await generatedImages(store, refsFor(n, perRepository), { ebpf: 16 * KIB, wasm: 32 * KIB, btfgen: 512 * KIB });
  } finally {
    store.close();
  }
  writeFileSync(marker, RECIPE);
  return dir;
}

/**
 * Forgets where earlier runs saw blobs: a fresh registry on a port an earlier one had would
 * otherwise be asked about manifests that are not there (correct, but not a cold push).
 */
async function forgetLocations(dir: string): Promise<void> {
  const store = await openStore(dir);
  try {
    store.cacheForget('registry-blob-locations', new Date(Date.now() + 1000));
  } finally {
    store.close();
  }
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
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${stderr.slice(-2000)}`));
      else resolve({ seconds: Number(process.hrtime.bigint() - start) / 1e9, stdout, stderr });
    });
  });
}

/** `gadget ARGS --json` in a folder without a config; the summary must show `expect` images. */
async function ours(args: string[], expect: { copied?: number; skipped?: number }, nodeFlags: string[] = []): Promise<{ seconds: number; rssMB: number }> {
  const m = await run(process.execPath, [...nodeFlags, '--import', PROBE, CLI, '--json', '--quiet', ...args]);
  const rss = /bench-maxrss-kb=(\d+)/.exec(m.stderr);
  const summary = JSON.parse(m.stdout) as { images: { copied: number; skipped: number; failed: number } };
  for (const [k, v] of Object.entries(expect)) {
    if (summary.images[k as 'copied'] !== v) throw new Error(`gadget ${args.join(' ')}: ${JSON.stringify(summary.images)}, expected ${k} ${v}`);
  }
  return { seconds: m.seconds, rssMB: rss ? Number(rss[1]) / 1024 : NaN };
}

/** A whole `gadget ARGS` command (exit 0 required) with its peak RSS. */
async function whole(args: string[]): Promise<{ seconds: number; rssMB: number }> {
  const m = await run(process.execPath, ['--import', PROBE, CLI, '--quiet', ...args]);
  const rss = /bench-maxrss-kb=(\d+)/.exec(m.stderr);
  return { seconds: m.seconds, rssMB: rss ? Number(rss[1]) / 1024 : NaN };
}

/** `skopeo copy --all` once per tag, as a user's loop runs it. */
async function skopeoEach(pairs: Array<[string, string]>, flag: string): Promise<void> {
  for (const [from, to] of pairs) await run('/usr/bin/skopeo', ['copy', '--all', '--quiet', flag, from, to]);
}

const TICKS = 100; // CLK_TCK on Linux
const CORES = availableParallelism();

/** CPU seconds from /proc: a process's own (utime+stime), or its reaped children's (cutime+cstime). */
function cpuSeconds(pid: number | 'self', children = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
  const at = children ? 13 : 11;
  return (Number(fields[at]) + Number(fields[at + 1])) / TICKS;
}

interface Measurement {
  seconds: number;
  /** CPU of the client processes (gadget, or every skopeo of the loop). */
  clientCpu: number;
  /** CPU of the registries involved. */
  registryCpu: number;
  /** CPU of this process, which runs the counting proxies (and otherwise waits). */
  proxyCpu: number;
  requests: Record<string, number>;
}

/** Runs `work` (child processes only) and measures wall time, CPU and requests by kind. */
async function measure(proxies: CountingProxy[], registries: TestRegistry[], work: () => Promise<unknown>): Promise<Measurement> {
  for (const p of proxies) p.reset();
  const client0 = cpuSeconds('self', true);
  const reg0 = registries.reduce((a, r) => a + cpuSeconds(r.pid), 0);
  const proxy0 = cpuSeconds('self');
  const start = process.hrtime.bigint();
  await work();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const requests: Record<string, number> = {};
  for (const p of proxies) for (const [k, v] of Object.entries(p.counts())) requests[k] = (requests[k] ?? 0) + v;
  return {
    seconds,
    clientCpu: cpuSeconds('self', true) - client0,
    registryCpu: registries.reduce((a, r) => a + cpuSeconds(r.pid), 0) - reg0,
    proxyCpu: cpuSeconds('self') - proxy0,
    requests,
  };
}

interface Profiled {
  what: string;
  client: Share[];
  registry: Share[];
}

/**
 * `work` (one `gadget` command, given the node flags to pass) once more, profiled: our CLI with
 * --cpu-prof, every registry's pprof over a window long enough for it (`seconds` measured before).
 */
async function profiled(what: string, registries: TestRegistry[], seconds: number, work: (nodeFlags: string[]) => Promise<unknown>): Promise<Profiled> {
  const dir = join(DATA, 'profile');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  const window = Math.ceil(seconds * 2) + 1;
  const registrySamples = registries.map((r) => goProfile(r.debugHost!, window));
  await work(['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  const registry = breakdown((await Promise.all(registrySamples)).flat(), REGISTRY_CATEGORIES);
  const client = breakdown(nodeSamplesIn(dir), CLIENT_CATEGORIES);
  rmSync(dir, { recursive: true, force: true });
  return { what, client, registry };
}

interface Row {
  n: number;
  what: string;
  tool: string;
  m: Measurement;
  /** The other tool's seconds for the same operation (on our rows). */
  vs?: number;
}

function total(requests: Record<string, number>): number {
  return Object.values(requests).reduce((a, b) => a + b, 0);
}

/** "HEAD manifest 1, POST upload 4, ..." per image, largest first. */
function kinds(requests: Record<string, number>, n: number): string {
  return Object.entries(requests)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${Number((v / n).toFixed(2))}`)
    .join(', ');
}

/** A YAML file for `skopeo sync --src yaml`: every tag of each repository. */
function skopeoSyncYaml(host: string, repositories: string[]): string {
  const file = join(DATA, 'skopeo-sync.yaml');
  writeFileSync(file, `${JSON.stringify(host)}:\n  tls-verify: false\n  images-by-tag-regex:\n${repositories.map((r) => `    ${JSON.stringify(r)}: ".*"`).join('\n')}\n`);
  return file;
}

async function benchSize(n: number, withSkopeo: boolean, rows: Row[], profiles?: Profiled[], registryEnv?: Record<string, string>): Promise<void> {
  const storeDir = await generate(n, 10);
  const reposDir = await generate(n, 1);
  const refs = refsFor(n, 10);
  const registries: TestRegistry[] = [];
  const proxies: CountingProxy[] = [];
  const started = async (): Promise<{ reg: TestRegistry; proxy: CountingProxy }> => {
    const reg = await startRegistry({ debug: profiles !== undefined, env: registryEnv });
    registries.push(reg);
    const proxy = await startCountingProxy(reg.host);
    proxies.push(proxy);
    return { reg, proxy };
  };
  const add = (what: string, mine: Measurement, theirs: Measurement | undefined): void => {
    rows.push({ n, what, tool: 'gadget', m: mine, vs: theirs?.seconds });
    if (theirs) rows.push({ n, what, tool: what.startsWith('registry') ? 'skopeo sync --all' : 'skopeo copy --all, per tag', m: theirs });
  };
  try {
    const src = await started();
    const ourMirror = await started();
    const theirPush = await started();
    const theirMirror = await started();
    const store = `store:bench.local/sync/*`;
    const push = (): Promise<unknown> => ours(['--store', storeDir, 'sync', '--from', store, '--to', `${src.proxy.host}/ours`], { copied: n });
    await forgetLocations(storeDir);
    const cold = await measure([src.proxy], [src.reg], push);
    const warm = await measure([src.proxy], [src.reg], () => ours(['--store', storeDir, 'sync', '--from', store, '--to', `${src.proxy.host}/ours`], { skipped: n }));
    const empty = join(DATA, `pulled-${n}`);
    rmSync(empty, { recursive: true, force: true });
    const pull = await measure([src.proxy], [src.reg], () => ours(['--store', empty, 'sync', '--from', `${src.proxy.host}/ours/`, '--to', 'store'], { copied: n }));
    rmSync(empty, { recursive: true, force: true });
    // The mirror source: n repositories of one tag each, pushed untimed.
    await ours(['--store', reposDir, 'sync', '--from', store, '--to', `${src.reg.host}/mirror-src`], { copied: n });
    const mirror = (): Promise<unknown> => ours(['sync', '--from', `${src.proxy.host}/mirror-src/`, '--to', `${ourMirror.proxy.host}/mirror`], {});
    const mirrorCold = await measure([src.proxy, ourMirror.proxy], [src.reg, ourMirror.reg], mirror);
    const mirrorWarm = await measure([src.proxy, ourMirror.proxy], [src.reg, ourMirror.reg], mirror);
    let theirs: Record<string, Measurement> | undefined;
    if (withSkopeo) {
      const dest = (ref: string): string => `docker://${theirPush.proxy.host}/skopeo/${ref.slice('bench.local/'.length)}`;
      const pushes = refs.map((ref): [string, string] => [`oci:${storeDir}:${ref}`, dest(ref)]);
      const sCold = await measure([theirPush.proxy], [theirPush.reg], () => skopeoEach(pushes, '--dest-tls-verify=false'));
      const sWarm = await measure([theirPush.proxy], [theirPush.reg], () => skopeoEach(pushes, '--dest-tls-verify=false'));
      const layout = join(DATA, `skopeo-pulled-${n}`);
      rmSync(layout, { recursive: true, force: true });
      const sPull = await measure([theirPush.proxy], [theirPush.reg], () => skopeoEach(refs.map((ref): [string, string] => [dest(ref), `oci:${layout}:${ref}`]), '--src-tls-verify=false'));
      rmSync(layout, { recursive: true, force: true });
      const yaml = skopeoSyncYaml(src.proxy.host, refsFor(n, 1).map((r) => `mirror-src/${r.slice('bench.local/'.length, r.lastIndexOf(':'))}`));
      const sync = (): Promise<unknown> => run('/usr/bin/skopeo', ['sync', '--all', '--src', 'yaml', '--dest', 'docker', '--dest-tls-verify=false', yaml, `${theirMirror.proxy.host}/mirror`]);
      const sMirrorCold = await measure([src.proxy, theirMirror.proxy], [src.reg, theirMirror.reg], sync);
      const sMirrorWarm = await measure([src.proxy, theirMirror.proxy], [src.reg, theirMirror.reg], sync);
      theirs = { cold: sCold, warm: sWarm, pull: sPull, mirrorCold: sMirrorCold, mirrorWarm: sMirrorWarm };
    }
    if (profiles) {
      const fresh = await started();
      profiles.push(await profiled('cold push', [fresh.reg], cold.seconds, (flags) => ours(['--store', storeDir, 'sync', '--from', store, '--to', `${fresh.reg.host}/ours`], { copied: n }, flags)));
      profiles.push(await profiled('pull into an empty store', [src.reg], pull.seconds, (flags) => ours(['--store', empty, 'sync', '--from', `${src.reg.host}/ours/`, '--to', 'store'], { copied: n }, flags)));
      rmSync(empty, { recursive: true, force: true });
      profiles.push(await profiled(`registry mirror, ${n} repositories, no change`, [src.reg, ourMirror.reg], mirrorWarm.seconds, (flags) =>
        ours(['sync', '--from', `${src.reg.host}/mirror-src/`, '--to', `${ourMirror.reg.host}/mirror`], {}, flags)));
    }
    add('cold push', cold, theirs?.cold);
    add('no-change re-push', warm, theirs?.warm);
    add('pull into an empty store', pull, theirs?.pull);
    add(`registry mirror, ${n} repositories, cold`, mirrorCold, theirs?.mirrorCold);
    add(`registry mirror, ${n} repositories, no change`, mirrorWarm, theirs?.mirrorWarm);
  } finally {
    for (const p of proxies) await p.close();
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
    // A plain tar is imported in place (checked, then copied): no unpacked copy.
    const tar = join(DATA, 'big.tar');
    const exported = await whole(['--store', dir, 'export', ref, '-o', tar]);
    const imported = await whole(['--store', empty, 'import', tar]);
    rmSync(empty, { recursive: true, force: true });
    rmSync(tar, { force: true });
    const bundled = await whole(['--store', dir, 'sync', '--from', `store:${ref}`, '--to', tar]);
    rmSync(tar, { force: true });
    return [
      [`push, ${mib} MiB layer`, push.seconds, mib / push.seconds, push.rssMB],
      [`pull, ${mib} MiB layer`, pull.seconds, mib / pull.seconds, pull.rssMB],
      [`export to a tar, ${mib} MiB layer`, exported.seconds, mib / exported.seconds, exported.rssMB],
      [`import of that tar, ${mib} MiB layer`, imported.seconds, mib / imported.seconds, imported.rssMB],
      [`sync from the store to a bundle, ${mib} MiB layer`, bundled.seconds, mib / bundled.seconds, bundled.rssMB],
    ];
  } finally {
    await reg.stop();
  }
}

export async function main(argv: string[] = []): Promise<void> {
  const bigAt = argv.indexOf('--big');
  const big = bigAt >= 0 ? Number(argv[bigAt + 1]) : 1024;
  // An experiment on the cause, not a setting of the benchmark: the registries' garbage
  // collector runs less often (Go's GOGC, 100 by default), so each request costs them less CPU.
  const gogcAt = argv.indexOf('--registry-gogc');
  const registryEnv = gogcAt >= 0 ? { GOGC: argv[gogcAt + 1] } : undefined;
  const flagValues = new Set([bigAt, gogcAt].filter((at) => at >= 0).map((at) => at + 1));
  const sizes = argv.filter((a, i) => /^\d+$/.test(a) && !flagValues.has(i)).map(Number);
  const withSkopeo = !argv.includes('--no-skopeo') && existsSync('/usr/bin/skopeo');
  const profiles = argv.includes('--profile') ? [] as Profiled[] : undefined;
  mkdirSync(DATA, { recursive: true });
  const rows: Row[] = [];
  for (const n of sizes.length ? sizes : [100]) await benchSize(n, withSkopeo, rows, profiles, registryEnv);
  printTable(
    `sync, requests counted by a proxy in front of each local docker-registry${registryEnv ? ` run with GOGC=${registryEnv.GOGC}` : ''} (load average ${loadavg().map((l) => l.toFixed(2)).join(' ')})`,
    ['images', 'operation', 'tool', 's', 'speed-up', 'requests / image', 'kinds / image', 'client CPU s', 'client idle', 'registry CPU s', 'proxy CPU s', `machine busy (${CORES} cores)`],
    rows.map((r) => [
      r.n, r.what, r.tool, r.m.seconds, r.vs ? `${(r.vs / r.m.seconds).toFixed(1)}×` : '',
      total(r.m.requests) / r.n, kinds(r.m.requests, r.n), r.m.clientCpu,
      `${Math.max(0, Math.round(100 * (1 - r.m.clientCpu / r.m.seconds)))}%`, r.m.registryCpu, r.m.proxyCpu,
      `${Math.round((100 * (r.m.clientCpu + r.m.registryCpu + r.m.proxyCpu)) / (CORES * r.m.seconds))}%`,
    ]),
  );
  if (profiles) {
    printTable(
      'where the CPU went in a profiled repetition (docker-registry: pprof CPU samples; gadget: node --cpu-prof samples of its main thread, idle left out)',
      ['operation', 'process', 'spent on', 'sampled s', 'share'],
      profiles.flatMap((p) => [
        ...p.registry.map((c) => [p.what, 'docker-registry', c.name, c.seconds, `${Math.round(100 * c.share)}%`]),
        ...p.client.map((c) => [p.what, 'gadget', c.name, c.seconds, `${Math.round(100 * c.share)}%`]),
      ]),
    );
  }
  if (big > 0) printTable('one image with a large layer (whole `gadget` command, peak RSS of the process)', ['operation', 'seconds', 'MiB/s', 'peak RSS MB'], await benchBig(big));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(process.argv.slice(2));
