import { spawn, spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { openStore, type Store } from '../store/store.js';
import { exportImages, importImages } from '../store/transfer.js';
import { BundleSource } from '../store/bundle-source.js';
import { fsck } from '../store/maintenance.js';
import { readTar, writeTar } from '../lib/archive/tar.js';
import { ANN_REF_NAME } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';
import { FIXTURE_LAYOUT, scratch, sharedMissing } from './helpers/paths.js';
import { gadget, spawnGadget } from './helpers/cli.js';
import { exited } from './helpers/crash.js';
import { generatedImages, putImage } from './helpers/images.js';

function fixtureEntries(): Descriptor[] {
  return JSON.parse(readFileSync(join(FIXTURE_LAYOUT, 'index.json'), 'utf8')).manifests;
}

async function tarBytes(entries: Parameters<typeof writeTar>[0]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of writeTar(entries)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A scratch folder with a store `s` holding ig's signed images, closed after the test. */
async function fixtureStore(t: TestContext): Promise<{ dir: string; store: Store }> {
  const dir = scratch();
  const store = await openStore(join(dir, 's'));
  t.after(() => store.close());
  await importImages(store, FIXTURE_LAYOUT);
  return { dir, store };
}

test("importing ig's signed store keeps every digest, tag and signature", async (t) => {
  const why = sharedMissing();
  if (why) return t.skip(why);
  const store = await openStore(join(scratch(), 's'));
  const result = await importImages(store, FIXTURE_LAYOUT);
  assert.deepEqual(result.failed, []);
  for (const entry of fixtureEntries()) {
    const ref = entry.annotations?.[ANN_REF_NAME];
    if (ref) assert.equal(store.resolveRef(ref).digest, entry.digest, ref);
    else if (result.skipped.includes(entry.digest)) assert.ok(!store.hasBlob(entry.digest));
    else assert.ok(store.hasBlob(entry.digest), entry.digest);
  }
  // ig keeps two untagged entries whose content it never downloaded.
  assert.equal(result.skipped.length, 2);
  const legacy = store.resolveRef('ttl.sh/signed_with_cosign_legacy:latest');
  const sigs = await store.referrers(legacy);
  assert.ok(sigs.some((s) => s.tag === `sha256-${legacy.digest.slice(7)}.sig`), 'cosign legacy signature tag');
  const notation = store.resolveRef('ttl.sh/signed_with_notation_config_media_type_empty:latest');
  assert.ok((await store.referrers(notation)).some((s) => s.descriptor.artifactType === 'application/vnd.cncf.notary.signature'), 'notation referrer');
  assert.deepEqual(await fsck(store), []);
  store.close();
});

test('export is byte-for-byte deterministic and round-trips through import', async (t) => {
  const why = sharedMissing();
  if (why) return t.skip(why);
  const dir = scratch();
  const store = await openStore(join(dir, 's'));
  await importImages(store, FIXTURE_LAYOUT);
  const refs = store.list().map((r) => r.ref);
  await exportImages(store, refs, join(dir, 'a.tar'));
  await exportImages(store, [...refs].reverse(), join(dir, 'b.tar'));
  assert.deepEqual(readFileSync(join(dir, 'a.tar')), readFileSync(join(dir, 'b.tar')), 'same images, same bytes');
  const fresh = await openStore(join(dir, 'fresh'));
  const result = await importImages(fresh, join(dir, 'a.tar'));
  assert.deepEqual(result.failed, []);
  for (const ref of refs) assert.equal(fresh.resolveRef(ref).digest, store.resolveRef(ref).digest, ref);
  for (const ref of refs) {
    const sigsBefore = (await store.referrers(store.resolveRef(ref))).map((s) => s.descriptor.digest).sort();
    const sigsAfter = (await fresh.referrers(fresh.resolveRef(ref))).map((s) => s.descriptor.digest).sort();
    assert.deepEqual(sigsAfter, sigsBefore, `signatures of ${ref}`);
  }
  assert.deepEqual(await fsck(fresh), []);
  store.close();
  fresh.close();
});

test('export checks every blob it writes: a damaged or missing one fails naming it, and the old tar stays', async (t) => {
  const why = sharedMissing();
  if (why) return t.skip(why);
  const { dir, store } = await fixtureStore(t);
  const ref = 'ttl.sh/signed_with_cosign_legacy:latest';
  const index = await store.readJSON<{ manifests: Descriptor[] }>(store.resolveRef(ref));
  // ig's fixture images have no layers: their config blob is the one damaged.
  const layer = (await store.readJSON<{ config: Descriptor }>(index.manifests[0]!)).config;
  const out = join(dir, 'out.tar');
  writeFileSync(out, 'an earlier export');
  const file = store.blobPath(layer.digest);
  const good = readFileSync(file);
  const bad = Buffer.from(good);
  bad[bad.length >> 1]! ^= 0xff;
  writeFileSync(file, bad);
  await assert.rejects(exportImages(store, [ref], out), (err: Error) => err.message.includes(layer.digest) && /digest/.test(err.message));
  rmSync(file);
  await assert.rejects(exportImages(store, [ref], out), (err: Error) => err.message.includes(layer.digest) && /missing/.test(err.message));
  assert.equal(readFileSync(out, 'utf8'), 'an earlier export', 'the earlier tar is untouched');
  assert.deepEqual(readdirSync(dir).sort(), ['out.tar', 's'], 'no partial file is left');
  writeFileSync(file, good);
  await exportImages(store, [ref], out);
  const fresh = await openStore(join(dir, 'fresh'));
  t.after(() => fresh.close());
  assert.deepEqual((await importImages(fresh, out)).failed, []);
  assert.equal(fresh.resolveRef(ref).digest, store.resolveRef(ref).digest);
});

test('a partial tar left by a killed export is removed by the next export of that file; a running writer\'s stays', async (t) => {
  const why = sharedMissing();
  if (why) return t.skip(why);
  const { dir, store } = await fixtureStore(t);
  // What a SIGKILLed writer leaves: its partial file under its (now dead) pid.
  const dead = spawnSync('true').pid!;
  const live = spawn('sleep', ['60']);
  t.after(() => live.kill());
  writeFileSync(join(dir, `out.tar.partial-${dead}`), 'half a tar');
  writeFileSync(join(dir, `out.tar.partial-${live.pid}`), 'a tar being written');
  writeFileSync(join(dir, `other.tar.partial-${dead}`), 'another target\'s');
  await exportImages(store, ['ttl.sh/signed_with_cosign_legacy:latest'], join(dir, 'out.tar'));
  assert.deepEqual(readdirSync(dir).sort(), [`other.tar.partial-${dead}`, 'out.tar', `out.tar.partial-${live.pid}`, 's'].sort());
});

test('a layout tar made with `tar cf x.tar -C LAYOUT .` (entries under "./") imports and opens as a bundle', async (t) => {
  const why = sharedMissing();
  if (why) return t.skip(why);
  const dir = scratch();
  const tar = join(dir, 'dot.tar');
  const made = spawnSync('tar', ['cf', tar, '-C', FIXTURE_LAYOUT, '.']);
  assert.equal(made.status, 0, String(made.stderr));
  assert.match(spawnSync('tar', ['tf', tar], { encoding: 'utf8' }).stdout, /^\.\/\n/, 'GNU tar names the folder itself first');
  const store = await openStore(join(dir, 's'));
  t.after(() => store.close());
  const result = await importImages(store, tar);
  assert.deepEqual(result.failed, []);
  const tagged = fixtureEntries().filter((e) => e.annotations?.[ANN_REF_NAME]);
  for (const e of tagged) assert.equal(store.resolveRef(e.annotations![ANN_REF_NAME]!).digest, e.digest);
  const bundle = await BundleSource.open(tar);
  for (const e of tagged) assert.equal(bundle.lookup(e.annotations![ANN_REF_NAME]!)?.digest, e.digest);
});

test('a tar with unsafe or tampered entries is refused and changes nothing', async () => {
  const dir = scratch();
  const store = await openStore(join(dir, 's'));
  const indexBefore = readFileSync(join(dir, 's', 'index.json'));
  const layout = { path: 'oci-layout', content: Buffer.from('{"imageLayoutVersion":"1.0.0"}') };
  const index = { path: 'index.json', content: Buffer.from('{"schemaVersion":2,"manifests":[]}') };
  const cases: Array<[string, Buffer, RegExp]> = [
    ['tampered', await tarBytes([layout, index, { path: `blobs/sha256/${'0'.repeat(64)}`, content: Buffer.from('not this') }]), /digest/],
    ['stray', await tarBytes([layout, index, { path: 'etc/passwd', content: Buffer.from('x') }]), /unexpected entry/],
  ];
  // writeTar refuses to write unsafe names, so unsafe headers are patched in by hand.
  const patched = async (name: string, typeflag: string): Promise<Buffer> => {
    const bytes = await tarBytes([{ path: 'placeholder-name-that-is-long-enough-xx', content: Buffer.from('x') }]);
    bytes.fill(0, 0, 100);
    bytes.write(name, 0, 'utf8');
    bytes[156] = typeflag.charCodeAt(0);
    bytes.write('        ', 148, 'ascii');
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += bytes[i]!;
    bytes.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
    return bytes;
  };
  cases.push(['dotdot', await patched('../escape', '0'), /contains "\.\."/]);
  cases.push(['absolute', await patched('/etc/evil', '0'), /absolute path/]);
  cases.push(['symlink', await patched('blobs/sha256/link', '2'), /symlink/]);
  for (const [name, bytes, message] of cases) {
    const file = join(dir, `${name}.tar`);
    writeFileSync(file, bytes);
    await assert.rejects(importImages(store, file), message, name);
    assert.deepEqual(readFileSync(join(dir, 's', 'index.json')), indexBefore, `${name}: index.json unchanged`);
  }
  assert.equal(store.list().length, 0);
  store.close();
});

test('a layout or tar with no image to import: exit 1 naming the file, with a hint, and nothing changes', async () => {
  const dir = scratch();
  const storeDir = join(dir, 's');
  const store = await openStore(storeDir);
  await store.tag(await putImage(store, 'kept'), 'example.com/kept:v1');
  store.close();
  const indexBefore = readFileSync(join(storeDir, 'index.json'));
  const layoutFile = { path: 'oci-layout', content: Buffer.from('{"imageLayoutVersion":"1.0.0"}') };
  const emptyIndex = { path: 'index.json', content: Buffer.from('{"schemaVersion":2,"manifests":[]}') };
  const tar = join(dir, 'empty.tar');
  writeFileSync(tar, await tarBytes([layoutFile, emptyIndex]));
  const folder = join(dir, 'empty-layout');
  mkdirSync(folder);
  writeFileSync(join(folder, layoutFile.path), layoutFile.content);
  writeFileSync(join(folder, emptyIndex.path), emptyIndex.content);
  const gz = join(dir, 'empty.tar.gz');
  writeFileSync(gz, gzipSync(readFileSync(tar)));
  for (const source of [tar, folder, gz]) {
    const r = await gadget(['--store', storeDir, 'import', source]);
    assert.equal(r.code, 1, `${source}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, '', source);
    assert.match(r.stderr, new RegExp(`^error: there is no image in ${source.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^\\n]*\\nhint: \\S[^\\n]*\\n$`), source);
    const j = await gadget(['--store', storeDir, '--json', 'import', source]);
    assert.equal(j.code, 1, source);
    const doc = JSON.parse(j.stdout) as { error: { message: string; hint?: string; code: number } };
    assert.equal(doc.error.code, 1);
    assert.match(doc.error.message, /^there is no image in /);
    assert.ok(doc.error.hint);
    assert.deepEqual(readFileSync(join(storeDir, 'index.json')), indexBefore, `${source}: index.json unchanged`);
  }
  const after = await openStore(storeDir);
  assert.deepEqual(after.list().map((r) => r.ref), ['example.com/kept:v1']);
  assert.deepEqual(await fsck(after), []);
  after.close();
  // The same for the step: it throws, naming the file.
  const fresh = await openStore(join(dir, 'fresh'));
  await assert.rejects(importImages(fresh, tar), /there is no image in .*empty\.tar/);
  assert.deepEqual(fresh.list(), []);
  fresh.close();
});

test('an interrupted import exits 130, tags nothing, and the next import completes', { timeout: 120_000 }, async () => {
  const dir = scratch();
  const source = await openStore(join(dir, 'source'));
  const [index] = await generatedImages(source, ['example.com/big:v1'], { ebpf: 96 << 20, wasm: 1024, btfgen: 1024 });
  source.close();
  const dest = join(dir, 'dest');
  const child = spawnGadget(['--store', dest, 'import', join(dir, 'source')]);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  // Interrupted while a blob is being written (its temporary file exists).
  const tmp = join(dest, 'gadget-oci', 'tmp');
  while (!(existsSync(tmp) && readdirSync(tmp).some((f) => f.startsWith('.tmp-'))) && child.exitCode === null) await sleep(5);
  child.kill('SIGINT');
  const end = await exited(child);
  assert.equal(end.code, 130, stderr);
  assert.match(stderr, /^error: interrupted\nhint: /m);
  const interrupted = await openStore(dest);
  assert.deepEqual(interrupted.list(), [], 'nothing tagged');
  interrupted.close();
  const again = await gadget(['--store', dest, 'import', join(dir, 'source')]);
  assert.equal(again.code, 0, again.stderr);
  const done = await openStore(dest);
  assert.equal(done.resolveRef('example.com/big:v1').digest, index!.digest, 'the image is whole after the second import');
  assert.deepEqual(await fsck(done), []);
  done.close();
});

/** Each a layout folder with one thing an OCI layout tar may not hold, made into a tar by GNU tar. */
const REFUSED_ENTRIES: Array<[string, (layout: string) => void]> = [
  ['symlink', (l) => spawnSync('ln', ['-s', '/etc/passwd', join(l, 'evil-link')])],
  ['hardlink', (l) => { writeFileSync(join(l, 'blobs', 'a'), 'x'); spawnSync('ln', [join(l, 'blobs', 'a'), join(l, 'blobs', 'b')]); }],
  ['fifo', (l) => spawnSync('mkfifo', [join(l, 'blobs', 'sha256', 'f'.repeat(64))])],
  ['folder', (l) => mkdirSync(join(l, 'blobs', 'sha512'))],
  ['entry', (l) => writeFileSync(join(l, 'README'), 'not a layout file')],
  ['tampered', (l) => writeFileSync(join(l, 'blobs', 'sha256', '0'.repeat(64)), 'not these bytes')],
];

test('a plain tar and its gzip copy are refused with the same sentence and the same hint, on stderr and in --json, and make no store', async () => {
  const dir = scratch();
  for (const [name, spoil] of REFUSED_ENTRIES) {
    const layout = join(dir, name);
    mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(layout, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
    spoil(layout);
    const tar = join(dir, `${name}.tar`);
    const made = spawnSync('tar', ['cf', tar, '-C', layout, '.']);
    assert.equal(made.status, 0, String(made.stderr));
    writeFileSync(`${tar}.gz`, gzipSync(readFileSync(tar)));
    const seen: Array<{ code: number | null; stderr: string; json: { message: string; hint?: string } }> = [];
    for (const file of [tar, `${tar}.gz`]) {
      const store = join(dir, `store-${name}`);
      const r = await gadget(['--store', store, 'import', file]);
      const j = await gadget(['--store', store, '--json', 'import', file]);
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.match(r.stderr, /^error: [^\n]+\nhint: [^\n]+\n$/, `${file}: one sentence and a hint`);
      const json = (JSON.parse(j.stdout) as { error: { message: string; hint?: string } }).error;
      assert.ok(json.hint, `${file}: --json has the hint`);
      assert.ok(!existsSync(store), `${file}: no store made`);
      seen.push({ code: r.code, stderr: r.stderr.replace(file, 'FILE'), json: { ...json, message: json.message.replace(file, 'FILE') } });
    }
    assert.deepEqual(seen[1], seen[0], `${name}: the gzip copy gets the plain tar's verdict`);
  }
});

test('a tar that holds one path twice is refused, plain or gzip, with one sentence naming the tar and the path, and nothing is written', async (t) => {
  const dir = scratch();
  const source = await openStore(join(dir, 'source'));
  t.after(() => source.close());
  await source.tag(await putImage(source, 'dup'), 'example.com/dup:v1');
  const good = join(dir, 'good.tar');
  await exportImages(source, ['example.com/dup:v1'], good);
  const entries: Array<{ path: string; content: Buffer }> = [];
  for await (const e of readTar(createReadStream(good))) {
    const chunks: Buffer[] = [];
    for await (const c of e.body) chunks.push(c as Buffer);
    if (e.type === 'file') entries.push({ path: e.path, content: Buffer.concat(chunks) });
  }
  const index = entries.find((e) => e.path === 'index.json')!;
  const evil = JSON.parse(index.content.toString('utf8')) as { manifests: Descriptor[] };
  evil.manifests[0]!.annotations![ANN_REF_NAME] = 'evil.example/x:pwned';
  const blob = entries.find((e) => e.path.startsWith('blobs/sha256/'))!;
  const cases: Array<[string, Array<{ path: string; content: Buffer }>, string]> = [
    // A second index.json after the first: GNU tar extracts it, and the old reader tagged it.
    ['dupindex', [...entries, { path: 'index.json', content: Buffer.from(JSON.stringify(evil)) }], 'index.json'],
    // A bad first copy of a blob, then the good one: the old plain-tar reader took the last.
    ['dupblob', [{ path: blob.path, content: Buffer.from('garbage') }, ...entries], blob.path],
  ];
  // A store that holds something: a refused tar leaves its index.json as it was.
  const storeDir = join(dir, 'store');
  const store = await openStore(storeDir);
  await store.tag(await putImage(store, 'kept'), 'example.com/kept:v1');
  store.close();
  const indexBefore = readFileSync(join(storeDir, 'index.json'));
  for (const [name, tarEntries, path] of cases) {
    const tar = join(dir, `${name}.tar`);
    writeFileSync(tar, await tarBytes(tarEntries));
    writeFileSync(`${tar}.gz`, gzipSync(readFileSync(tar)));
    const said: string[] = [];
    for (const file of [tar, `${tar}.gz`]) {
      const missing = join(dir, `new-${name}`);
      const r = await gadget(['--store', missing, 'import', file]);
      assert.equal(r.code, 1, `${file}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stderr.split('\n')[0], `error: ${file}: the tar holds "${path}" twice, so which copy is the layout's cannot be told`);
      assert.match(r.stderr, /\nhint: a layout tar holds each file once/);
      assert.ok(!existsSync(missing), `${file}: no store made`);
      const into = await gadget(['--store', storeDir, 'import', file]);
      assert.equal(into.code, 1, `${file}: ${into.stderr}`);
      assert.deepEqual(readFileSync(join(storeDir, 'index.json')), indexBefore, `${file}: index.json unchanged`);
      said.push(r.stderr.replace(file, 'FILE'));
    }
    assert.equal(said[1], said[0], `${name}: the same sentence for the plain tar and its gzip copy`);
    // A sync reads a bundle with the same reader: refused the same way.
    await assert.rejects(BundleSource.open(tar), new RegExp(`the tar holds "${path}" twice`));
  }
  const after = await openStore(storeDir);
  assert.deepEqual(after.list().map((r) => r.ref), ['example.com/kept:v1'], 'no evil.example tag');
  after.close();
});

/**
 * A gzip layout tar of `mib` MiB, written fast: a layout whose one blob is zeros, the tar cut in
 * gzip members (gunzip reads them as one stream), the zeros' member compressed once and repeated.
 */
async function bigGzipTar(file: string, mib: number): Promise<void> {
  const MiB = Buffer.alloc(1 << 20);
  const hash = createHash('sha256');
  for (let i = 0; i < mib; i++) hash.update(MiB);
  const digest = hash.digest('hex');
  const config = Buffer.from('{}');
  const configDigest = createHash('sha256').update(config).digest('hex');
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: `sha256:${configDigest}`, size: 2 }, layers: [{ mediaType: 'application/octet-stream', digest: `sha256:${digest}`, size: mib << 20 }] }));
  const manifestDigest = createHash('sha256').update(manifest).digest('hex');
  const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${manifestDigest}`, size: manifest.length, annotations: { [ANN_REF_NAME]: 'example.com/big:v1' } }] };
  const head = await tarBytes([
    { path: 'oci-layout', content: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { path: 'index.json', content: Buffer.from(JSON.stringify(index)) },
    { path: `blobs/sha256/${configDigest}`, content: config },
    { path: `blobs/sha256/${manifestDigest}`, content: manifest },
  ]);
  // The tar without its end blocks, then the big blob's header, its zeros, and the end blocks.
  const whole = await tarBytes([{ path: `blobs/sha256/${digest}`, content: Buffer.alloc(0) }]);
  const header = Buffer.from(whole.subarray(0, 512));
  header.write((mib << 20).toString(8).padStart(11, '0') + '\0', 124, 'ascii');
  header.write('        ', 148, 'ascii');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += header[i]!;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  const zeros = gzipSync(MiB, { level: 1 });
  const parts = [gzipSync(head.subarray(0, head.length - 1024)), gzipSync(header)];
  for (let i = 0; i < mib; i++) parts.push(zeros);
  parts.push(gzipSync(Buffer.alloc(1024)));
  writeFileSync(file, Buffer.concat(parts));
}

/** The gzip import folders in `tmp` (the system's temporary folder of a child). */
const importDirs = (tmp: string): string[] => readdirSync(tmp).filter((n) => n.startsWith('gadget-import-'));

/** Spawns an import of `tar` into the missing store `store` with TMPDIR=`tmp`; resolves once it is unpacking a blob. */
async function importUnpacking(tar: string, store: string, tmp: string): Promise<{ child: ReturnType<typeof spawnGadget>; stderr: () => string }> {
  const child = spawnGadget(['--store', store, 'import', tar], { env: { TMPDIR: tmp } });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const unpacking = (): boolean => importDirs(tmp).some((d) => existsSync(join(tmp, d, '.partial')) && readdirSync(join(tmp, d, '.partial')).length > 0);
  while (!unpacking() && child.exitCode === null) await sleep(2);
  assert.equal(child.exitCode, null, `the import ended before it was caught unpacking: ${stderr}`);
  return { child, stderr: () => stderr };
}

test('Ctrl-C during a gzip import stops the unpacking: exit 130, no store made, no temporary folder left', { timeout: 120_000 }, async (t) => {
  const dir = scratch();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tar = join(dir, 'big.tar.gz');
  await bigGzipTar(tar, 512);
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const store = join(dir, 'store');
  const { child, stderr } = await importUnpacking(tar, store, tmp);
  child.kill('SIGINT');
  const end = await exited(child);
  assert.equal(end.code, 130, stderr());
  assert.match(stderr(), /^error: interrupted\n/);
  assert.ok(!existsSync(store), 'no store was made for an import that was interrupted');
  assert.deepEqual(importDirs(tmp), [], 'the unpacked copy is removed');
});

test('a gzip import killed while unpacking leaves its folder, named with its pid; the next import removes it (a live one\'s stays)', { timeout: 120_000 }, async (t) => {
  const dir = scratch();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tar = join(dir, 'big.tar.gz');
  await bigGzipTar(tar, 256);
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const { child } = await importUnpacking(tar, join(dir, 'killed'), tmp);
  child.kill('SIGKILL');
  await exited(child);
  const left = importDirs(tmp);
  assert.equal(left.length, 1, 'a SIGKILL leaves the unpacked copy');
  const namespace = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))![1]!;
  assert.match(left[0]!, new RegExp(`^gadget-import-${namespace}-${child.pid}-`), 'named after its process and its PID namespace');
  // A live process's folder of the same shape stays; so does one of another PID namespace (a
  // container sharing /tmp), whose pid means nothing here, even one that is not running here.
  const live = `gadget-import-${namespace}-${process.pid}-abcdef`;
  const elsewhere = `gadget-import-${Number(namespace) + 1}-${child.pid}-abcdef`;
  for (const name of [live, elsewhere]) mkdirSync(join(tmp, name));
  const small = join(dir, 'small.tar.gz');
  await bigGzipTar(small, 1);
  const next = await gadget(['--store', join(dir, 'next'), 'import', small], { env: { TMPDIR: tmp } });
  assert.equal(next.code, 0, next.stderr);
  assert.deepEqual(importDirs(tmp).sort(), [live, elsewhere].sort(), "the dead import's folder is gone; the live one's, and another namespace's, stay");
});
