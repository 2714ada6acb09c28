// Bundles (OCI layout tars) as sync sources and destinations, mirror naming (strip or replace
// a prefix) and collisions, against Debian's real docker-registry (started here at a free port)
// with images the project builds from examples/ and signatures made here.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { copyGraph, fetchManifest } from '../lib/oci/copy.js';
import { sha256 } from '../lib/oci/digest.js';
import { MT_EMPTY, MT_MANIFEST } from '../lib/oci/mediatypes.js';
import { parseRef } from '../lib/oci/reference.js';
import type { Descriptor } from '../lib/oci/types.js';
import { openRepository } from '../lib/registry/index.js';
import { pushImage, readSyncConfig, renameRepository } from '../plugins/sync.js';
import { BundleDestination, stagingDir } from '../store/bundle-destination.js';
import { BundleSource } from '../store/bundle-source.js';
import { exportImages } from '../store/transfer.js';
import { gzipSync } from 'node:zlib';
import { fsck } from '../store/maintenance.js';
import { openStore, type Store } from '../store/store.js';
import { gadget, type CliResult } from './helpers/cli.js';
import { FIXTURE_LAYOUT, sharedMissing } from './helpers/paths.js';
import { startCountingProxy, type CountingProxy } from './helpers/counting-proxy.js';
import { registryAvailable, startRegistry, type TestRegistry } from './helpers/registry.js';
import { configSource, EXAMPLES, exampleStore, tempDir, Transcript } from './helpers/sync.js';

const SIG_TYPE = 'application/vnd.example.signature.v1+json';

/** A signature manifest for `subject`: an OCI 1.1 referrer (untagged) or a cosign-style tagged one. */
async function sign(store: Store, subject: Descriptor, text: string, tagged: boolean): Promise<Descriptor> {
  const config = await store.putBytes(Buffer.from('{}'), MT_EMPTY);
  const layer = await store.putBytes(Buffer.from(text), SIG_TYPE);
  const manifest: Record<string, unknown> = { schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: SIG_TYPE, config, layers: [layer] };
  if (!tagged) manifest.subject = { mediaType: subject.mediaType, digest: subject.digest, size: subject.size };
  const descriptor = await store.putBytes(Buffer.from(JSON.stringify(manifest)), MT_MANIFEST);
  if (tagged) await store.tag(descriptor, `sha256-${subject.digest.slice(7)}.sig`);
  return descriptor;
}

/** A small image of its own (config, one layer, manifest), tagged `ref`. */
async function smallImage(store: Store, ref: string): Promise<Descriptor> {
  const config = await store.putBytes(Buffer.from(`name: ${ref}\n`), 'application/vnd.gadget.config.v1+yaml');
  const layer = await store.putBytes(Buffer.from(`layer of ${ref}`), 'application/vnd.gadget.ebpf.program.v1+binary');
  const manifest = await store.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT_MANIFEST, config, layers: [layer] })), MT_MANIFEST);
  await store.tag(manifest, ref);
  return manifest;
}

/** A signature of `subject` (a manifest with one payload layer): an OCI 1.1 referrer, or with `tag` a cosign tag signature. */
async function signatureOf(store: Store, subject: Descriptor, text: string, tag?: string): Promise<{ manifest: Descriptor; payload: Descriptor }> {
  const config = await store.putBytes(Buffer.from('{}'), MT_EMPTY);
  const payload = await store.putBytes(Buffer.from(text), 'application/vnd.dev.cosign.simplesigning.v1+json');
  const body = { schemaVersion: 2, mediaType: MT_MANIFEST, config, layers: [payload], ...(tag ? {} : { artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', subject }) };
  const manifest = await store.putBytes(Buffer.from(JSON.stringify(body)), MT_MANIFEST);
  if (tag) await store.tag(manifest, tag);
  return { manifest, payload };
}

/** Same size, other bytes: what bit rot does to a blob of the store. */
function damage(store: Store, blob: Descriptor): void {
  const file = store.blobPath(blob.digest);
  writeFileSync(file, Buffer.from(readFileSync(file, 'utf8').toUpperCase()));
}

interface SyncReport { images: Record<string, number>; items: Array<{ destination: string; status: string; error?: string; hint?: string }> }

/** A `--json` sync summary with its counts: blobs and bytes in all, and per image. */
interface SyncTotals extends SyncReport { blobs: { copied: number; skipped: number }; bytes: number; items: Array<SyncReport['items'][number] & { copied: number; bytes: number }> }

/** The blobs the bundle `file` holds that `before` (the bundle as it was, if any) did not: how many, and their bytes. */
async function gainedBy(file: string, before?: BundleSource): Promise<{ blobs: number; bytes: number }> {
  const tar = await BundleSource.open(file);
  const added = tar.digests().filter((d) => !before?.has(d));
  return { blobs: added.length, bytes: added.reduce((n, d) => n + tar.sizeOf(d)!, 0) };
}

/** The summary's totals, and the sums of its items' counts. */
function totalsOf(report: SyncTotals): { total: { blobs: number; bytes: number }; items: { blobs: number; bytes: number } } {
  return {
    total: { blobs: report.blobs.copied, bytes: report.bytes },
    items: report.items.reduce((n, i) => ({ blobs: n.blobs + i.copied, bytes: n.bytes + i.bytes }), { blobs: 0, bytes: 0 }),
  };
}

/** The bytes of a stream. */
async function readAllOf(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const mtime = (file: string): bigint => statSync(file, { bigint: true }).mtimeNs;

/** Every path under `dir` (folders and files, hidden ones too), sorted: what a refused command must leave as it was. */
function listing(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

/** A refused sync: exit 2, one error line naming `path` that matches `message`, one hint line matching `hint`. */
function assertRefused(r: CliResult, path: string, message: RegExp, hint: RegExp): void {
  assert.equal(r.code, 2, `${r.stdout}${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 2, `one error line and one hint line: ${r.stderr}`);
  assert.match(lines[0]!, /^error: cannot write /);
  assert.ok(lines[0]!.includes(path), `the error names ${path}: ${lines[0]}`);
  assert.match(lines[0]!, message);
  assert.match(lines[1]!, hint);
  assert.equal(r.stdout, '', 'nothing on stdout');
}

describe('bundles as sync sources and destinations, with renames', async () => {
  const available = await registryAvailable();
  const SKIP = 'docker-registry is not installed (/usr/bin/docker-registry)';
  const cli = new Transcript();
  let reg: TestRegistry;
  let dir: string;
  let examples: Store;
  let referrer: Descriptor;
  let cosignSig: Descriptor;
  /** hello_wasm, pushed to the registry as a sync source. */
  let upstream: string;

  before(async () => {
    if (!available) return;
    reg = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'gadget-bundles-'));
    examples = await exampleStore(dir);
    const subject = examples.resolveRef(EXAMPLES.helloWasm);
    referrer = await sign(examples, subject, 'an OCI 1.1 referrer', false);
    cosignSig = await sign(examples, subject, 'a cosign signature', true);
    upstream = 'up/hello_wasm';
    const pushed = await pushImage(examples, EXAMPLES.helloWasm, `${reg.host}/${upstream}:v1`);
    assert.equal(pushed.images.failed, 0, JSON.stringify(pushed.items));
  });
  after(async () => {
    examples?.close();
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('store -> bundle (replace a prefix) -> registry (strip a prefix) -> store: same digests, signatures along', async (t) => {
    if (!available) return t.skip(SKIP);
    const work = await tempDir(t);
    const bundle = join(work, 'out', 'gadgets.tar');
    mkdirSync(join(work, 'out'));
    const out = await cli.gadget(['--store', examples.root, '--json', 'sync', '--from', 'store:*', '--to', bundle, '--rename', 'gadget-oci/examples/=src/']);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout).images, { copied: 2, skipped: 0, failed: 0 });
    const written = await BundleSource.open(bundle);
    assert.deepEqual(written.images().map((i) => i.ref).sort(), ['ghcr.io/src/hello_wasm:v1', 'ghcr.io/src/trace_open:v1']);
    assert.ok(written.has(referrer.digest) && written.has(cosignSig.digest), 'both signatures are in the bundle');
    assert.ok(!existsSync(stagingDir(bundle)), 'the staging store is gone after a complete run');

    // A mirror set reads the bundle in place and strips the prefix on the way to the registry.
    writeFileSync(join(work, 'gadget.config.ts'), configSource({
      mirrors: { carry: { source: { bundle: 'out/gadgets.tar' }, rename: { stripPrefix: 'src/' }, destination: { registry: `${reg.host}/mirror` } } },
    }));
    const up = await cli.gadget(['--json', 'sync', 'carry'], { cwd: work });
    assert.equal(up.code, 0, up.stderr);
    const summary = JSON.parse(up.stdout);
    assert.deepEqual(summary.images, { copied: 2, skipped: 0, failed: 0 });
    assert.deepEqual(summary.items.map((i: { destination: string }) => i.destination).sort(), [`${reg.host}/mirror/hello_wasm:v1`, `${reg.host}/mirror/trace_open:v1`]);
    const hello = examples.resolveRef(EXAMPLES.helloWasm);
    const mirrored = openRepository(parseRef(`${reg.host}/mirror/hello_wasm`));
    assert.equal((await mirrored.resolve('v1')).digest, hello.digest);
    // docker-registry 2.8 has no referrers API: the OCI 1.1 referrer is in the fallback index.
    assert.equal((await mirrored.resolve(`sha256-${hello.digest.slice(7)}.sig`)).digest, cosignSig.digest);
    const fallback = await fetchManifest(mirrored, await mirrored.resolve(`sha256-${hello.digest.slice(7)}`));
    assert.deepEqual(fallback.doc.manifests?.map((m) => m.digest), [referrer.digest]);

    // Back into a store, replacing the registry's prefix.
    const far = join(work, 'far-store');
    const down = await cli.gadget(['--store', far, '--json', 'sync', '--from', `${reg.host}/mirror/`, '--to', 'store', '--rename', 'mirror=gadgets']);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(JSON.parse(down.stdout).images, { copied: 2, skipped: 0, failed: 0 });
    const store = await openStore(far);
    t.after(() => store.close());
    for (const [ref, name] of [[EXAMPLES.helloWasm, 'hello_wasm'], [EXAMPLES.traceOpen, 'trace_open']] as const) {
      const original = examples.resolveRef(ref);
      const got = store.resolveRef(`${reg.host}/gadgets/${name}:v1`);
      assert.equal(got.digest, original.digest, name);
      assert.deepEqual(await store.readBytes(got.digest), await examples.readBytes(original.digest));
    }
    const localReferrers = (await store.referrers(hello)).map((r) => r.descriptor.digest);
    assert.ok(localReferrers.includes(referrer.digest) && localReferrers.includes(cosignSig.digest), `signatures in the store: ${localReferrers.join(', ')}`);
    assert.deepEqual(await fsck(store), []);
  });

  /** A store holding registry.example.com/team/first:v1, and a sync of all of it to the bundle `name` beside it. */
  async function storeSyncingTo(t: TestContext, name: string): Promise<{ work: string; store: Store; first: Descriptor; bundle: string; sync: () => ReturnType<typeof cli.gadget> }> {
    const work = await tempDir(t);
    const store = await openStore(join(work, 'store'));
    t.after(() => store.close());
    const first = await smallImage(store, 'registry.example.com/team/first:v1');
    const bundle = join(work, name);
    const sync = (): ReturnType<typeof cli.gadget> => cli.gadget(['--store', store.root, '--json', 'sync', '--from', 'store:*', '--to', bundle]);
    return { work, store, first, bundle, sync };
  }

  test('a re-run with nothing new leaves the bundle byte for byte (mtime too); a new image is added incrementally', async (t) => {
    if (!available) return t.skip(SKIP);
    const { work, store, bundle, sync } = await storeSyncingTo(t, 'inc.tar');
    const first = await sync();
    assert.equal(first.code, 0, first.stderr);
    const bytes = readFileSync(bundle);
    const stamp = mtime(bundle);

    const again = await sync();
    assert.equal(again.code, 0, again.stderr);
    const repeat = JSON.parse(again.stdout);
    assert.deepEqual(repeat.images, { copied: 0, skipped: 1, failed: 0 });
    assert.equal(repeat.blobs.copied, 0);
    assert.deepEqual(repeat.bundles, [], 'the bundle was not written');
    assert.ok(readFileSync(bundle).equals(bytes), 'the same bytes');
    assert.equal(mtime(bundle), stamp, 'the same mtime: the file was not rewritten');
    const text = await cli.gadget(['--store', store.root, 'sync', '--from', 'store:*', '--to', bundle]);
    assert.match(text.stdout, /0 images copied, 1 already there/);

    const added = await smallImage(store, 'registry.example.com/team/second:v1');
    const third = await sync();
    assert.equal(third.code, 0, third.stderr);
    const grown = JSON.parse(third.stdout);
    assert.deepEqual(grown.images, { copied: 1, skipped: 1, failed: 0 });
    assert.equal(grown.blobs.copied, 3, 'only the new image\'s config, layer and manifest moved');
    const old = await BundleSource.open(join(work, 'inc.tar'));
    assert.deepEqual(old.images().map((i) => i.ref).sort(), ['registry.example.com/team/first:v1', 'registry.example.com/team/second:v1']);
    assert.equal(old.lookup('registry.example.com/team/second:v1')?.digest, added.digest);

    // The grown bundle is a plain layout tar: import reads it, every blob intact.
    const far = await openStore(join(work, 'far'));
    t.after(() => far.close());
    const imported = await cli.gadget(['--store', far.root, 'import', bundle]);
    assert.equal(imported.code, 0, imported.stderr);
    far.refreshIfChanged();
    assert.equal(far.resolveRef('registry.example.com/team/second:v1').digest, added.digest);
    assert.equal(far.resolveRef('registry.example.com/team/first:v1').digest, store.resolveRef('registry.example.com/team/first:v1').digest);
    assert.deepEqual(await fsck(far), []);
  });

  test('store -> bundle reads the store when it writes the tar, nothing staged: an image with a damaged or missing blob is left out, named, the others written', async (t) => {
    if (!available) return t.skip(SKIP);
    const { store, first, bundle, sync } = await storeSyncingTo(t, 'b.tar');
    assert.equal((await sync()).code, 0);
    const before = readFileSync(bundle);
    const second = await smallImage(store, 'registry.example.com/team/second:v1');
    const third = await smallImage(store, 'registry.example.com/team/third:v1');
    const layerOf = async (image: Descriptor): Promise<Descriptor> => (await store.readJSON<{ layers: Descriptor[] }>(image)).layers[0]!;
    const layer = await layerOf(second);
    const file = store.blobPath(layer.digest);
    const good = readFileSync(file);
    writeFileSync(file, Buffer.from(good.toString('utf8').toUpperCase())); // same size, other bytes

    const failed = await sync();
    assert.equal(failed.code, 1, failed.stderr);
    const report = JSON.parse(failed.stdout) as { images: Record<string, number>; items: Array<{ destination: string; status: string; error?: string; hint?: string }> };
    assert.deepEqual(report.images, { copied: 1, skipped: 1, failed: 1 });
    const bad = report.items.find((i) => i.status === 'failed')!;
    assert.match(bad.destination, /team\/second:v1/);
    assert.match(bad.error!, new RegExp(`left out of the bundle .*${layer.digest}`));
    assert.match(bad.hint!, /gadget fsck/);
    assert.ok(!existsSync(stagingDir(bundle)), 'nothing of the store was staged');
    let written = await BundleSource.open(bundle);
    assert.equal(written.lookup('registry.example.com/team/first:v1')?.digest, first.digest, 'the earlier image stays');
    assert.equal(written.lookup('registry.example.com/team/third:v1')?.digest, third.digest, 'the good new image is written');
    assert.equal(written.lookup('registry.example.com/team/second:v1'), undefined, 'the damaged image is not');
    assert.ok(!written.has(layer.digest), 'nor its damaged blob');
    assert.ok(!readFileSync(bundle).equals(before));
    const text = await cli.gadget(['--store', store.root, 'sync', '--from', 'store:*', '--to', bundle]);
    assert.equal(text.code, 1);
    assert.match(text.stdout + text.stderr, new RegExp(`failed: \\S+second:v1 .*left out of the bundle.*${layer.digest}`), 'the text report names the image and the blob');

    // Gone from the store is the same: named, left out (third is in the bundle already).
    rmSync(file);
    const missing = await sync();
    assert.equal(missing.code, 1, missing.stderr);
    assert.deepEqual(JSON.parse(missing.stdout).images, { copied: 0, skipped: 2, failed: 1 });
    assert.match(JSON.parse(missing.stdout).items.find((i: { status: string }) => i.status === 'failed').error, new RegExp(`${layer.digest} is missing`));

    writeFileSync(file, good);
    const repaired = await sync();
    assert.equal(repaired.code, 0, repaired.stderr);
    written = await BundleSource.open(bundle);
    for (const [ref, image] of [['first', first], ['second', second], ['third', third]] as const) {
      assert.equal(written.lookup(`registry.example.com/team/${ref}:v1`)?.digest, image.digest);
    }
  });

  test('store -> bundle: a damaged signature leaves out the image it signs, not the others, and neither is counted (an OCI 1.1 referrer, a cosign tag)', async (t) => {
    if (!available) return t.skip(SKIP);
    for (const kind of ['referrer', 'cosign tag'] as const) {
      const work = await tempDir(t);
      const store = await openStore(join(work, 'store'));
      t.after(() => store.close());
      const signed = await smallImage(store, 'registry.example.com/team/signed:v1');
      const plain = await smallImage(store, 'registry.example.com/team/plain:v1');
      // The store keeps cosign tag signatures as ig does: a bare `sha256-<hex>.sig` tag.
      const tag = kind === 'cosign tag' ? `sha256-${signed.digest.slice(7)}.sig` : undefined;
      const signature = await signatureOf(store, signed, 'a signature payload', tag);
      if (tag) assert.equal(store.resolveRef(tag).digest, signature.manifest.digest, 'the cosign tag is in the store');
      else assert.equal((await store.referrers(signed)).length, 1, 'the store knows the referrer');
      damage(store, signature.payload);
      const bundle = join(work, 'b.tar');
      const r = await cli.gadget(['--store', store.root, '--json', 'sync', '--from', 'store:*', '--to', bundle]);
      assert.equal(r.code, 1, `${kind}: ${r.stderr}`);
      const report = JSON.parse(r.stdout) as SyncReport;
      assert.deepEqual(report.images, { copied: 1, skipped: 0, failed: 1 }, kind);
      const failed = report.items.find((i) => i.status === 'failed')!;
      assert.match(failed.destination, /team\/signed:v1/);
      assert.match(failed.error!, new RegExp(`left out of the bundle .*${signature.payload.digest}`));
      const written = await BundleSource.open(bundle);
      assert.equal(written.lookup('registry.example.com/team/plain:v1')?.digest, plain.digest, kind);
      assert.equal(written.lookup('registry.example.com/team/signed:v1'), undefined, `${kind}: never without its signature`);
      assert.ok(!written.has(signature.manifest.digest) && !written.has(signature.payload.digest), kind);
      if (tag) assert.equal(written.lookup(tag), undefined);
      // Neither the image left out nor its signature is counted: the summary is what the tar gained.
      const gained = await gainedBy(bundle);
      const plainManifest = await store.readJSON<{ config: Descriptor; layers: Descriptor[] }>(plain);
      assert.deepEqual(gained, { blobs: 3, bytes: plain.size + plainManifest.config.size + plainManifest.layers[0]!.size }, `${kind}: only the plain image is in the tar`);
      const { total, items } = totalsOf(JSON.parse(r.stdout) as SyncTotals);
      assert.deepEqual(total, gained, `${kind}: the summary counts what the tar holds`);
      assert.deepEqual(items, gained, `${kind}: and the images' own counts add up to it`);
    }
  });

  test('store -> bundle: a new damaged signature of an image the bundle holds fails that image only; two damaged images are both named', async (t) => {
    if (!available) return t.skip(SKIP);
    const work = await tempDir(t);
    const store = await openStore(join(work, 'store'));
    t.after(() => store.close());
    const a = await smallImage(store, 'registry.example.com/team/a:v1');
    const bundle = join(work, 'b.tar');
    const sync = async (): Promise<SyncReport & { code: number }> => {
      const r = await cli.gadget(['--store', store.root, '--json', 'sync', '--from', 'store:*', '--to', bundle]);
      return { code: r.code ?? -1, ...(JSON.parse(r.stdout) as SyncReport) };
    };
    assert.equal((await sync()).code, 0);
    const signature = await signatureOf(store, a, 'a new signature of a');
    const b = await smallImage(store, 'registry.example.com/team/b:v1');
    const c = await smallImage(store, 'registry.example.com/team/c:v1');
    const d = await smallImage(store, 'registry.example.com/team/d:v1');
    damage(store, signature.payload);
    damage(store, (await store.readJSON<{ layers: Descriptor[] }>(c)).layers[0]!);
    damage(store, (await store.readJSON<{ layers: Descriptor[] }>(d)).layers[0]!);
    const r = await sync();
    assert.equal(r.code, 1);
    assert.deepEqual(r.images, { copied: 1, skipped: 0, failed: 3 });
    const failed = Object.fromEntries(r.items.filter((i) => i.status === 'failed').map((i) => [i.destination.replace(/.*team\//, ''), i.error!]));
    assert.deepEqual(Object.keys(failed).sort(), ['a:v1', 'c:v1', 'd:v1']);
    assert.match(failed['a:v1']!, new RegExp(`which keeps what it held as registry.example.com/team/a:v1: .*${signature.payload.digest}`));
    const written = await BundleSource.open(bundle);
    assert.equal(written.lookup('registry.example.com/team/a:v1')?.digest, a.digest, 'a stays as it was');
    assert.ok(!written.has(signature.manifest.digest), 'without the damaged signature');
    assert.equal(written.lookup('registry.example.com/team/b:v1')?.digest, b.digest, 'the good new image is written');
    assert.equal(written.lookup('registry.example.com/team/c:v1'), undefined);
    assert.equal(written.lookup('registry.example.com/team/d:v1'), undefined);
    await written.checkBlobs({});
  });

  test('store -> bundle: an image left out of the tar is failed, and its blobs and bytes are not counted as copied: the totals are what the tar gained', async (t) => {
    if (!available) return t.skip(SKIP);
    const { store, bundle, sync } = await storeSyncingTo(t, 'sum.tar');
    assert.equal((await sync()).code, 0);
    const before = await BundleSource.open(bundle);
    // Two new images sharing a layer; the config of one is damaged: that one is left out, and
    // the shared layer goes into the tar with the other (whichever of the two copied it).
    const second = await smallImage(store, 'registry.example.com/team/second:v1');
    const { config, layers } = await store.readJSON<{ config: Descriptor; layers: Descriptor[] }>(second);
    const ownConfig = await store.putBytes(Buffer.from('name: third\n'), config.mediaType);
    const third = await store.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT_MANIFEST, config: ownConfig, layers })), MT_MANIFEST);
    await store.tag(third, 'registry.example.com/team/third:v1');
    damage(store, config);

    const r = await sync();
    assert.equal(r.code, 1, r.stderr);
    const report = JSON.parse(r.stdout) as SyncTotals;
    assert.deepEqual(report.images, { copied: 1, skipped: 1, failed: 1 });
    const left = report.items.find((i) => i.status === 'failed')!;
    assert.match(left.destination, /team\/second:v1/);
    assert.match(left.error!, new RegExp(`left out of the bundle .*${config.digest}`));
    const written = await BundleSource.open(bundle);
    assert.equal(written.lookup('registry.example.com/team/second:v1'), undefined, 'the damaged image is not in the tar');
    assert.equal(written.lookup('registry.example.com/team/third:v1')?.digest, third.digest, 'the good one is');
    const gained = await gainedBy(bundle, before);
    assert.deepEqual(gained, { blobs: 3, bytes: ownConfig.size + layers[0]!.size + third.size }, "third's config, the shared layer and third's manifest");
    const { total, items } = totalsOf(report);
    assert.deepEqual(total, gained, 'the summary counts what the tar gained, not what was left out');
    assert.deepEqual(items, gained, "and the images' own counts add up to it");

    // Again, as text: nothing new reaches the tar, and the summary line says so.
    const text = await cli.gadget(['--store', store.root, 'sync', '--from', 'store:*', '--to', bundle]);
    assert.equal(text.code, 1, text.stderr);
    assert.match(text.stdout, /^0 images copied, 2 already there, 1 failed; 0 blobs \(0 B\) moved in /m);
  });

  test('a signature of a signature travels to a bundle and into an export, whatever the order of their digests', async (t) => {
    if (!available) return t.skip(SKIP);
    const work = await tempDir(t);
    const store = await openStore(join(work, 'store'));
    t.after(() => store.close());
    const image = await smallImage(store, 'registry.example.com/team/signed:v1');
    const first = await signatureOf(store, image, 'a signature');
    // A second-level signature whose digest sorts before the first's (the bundle lists referrers by digest).
    let second: Awaited<ReturnType<typeof signatureOf>> | undefined;
    for (let i = 0; !second || second.manifest.digest > first.manifest.digest; i++) second = await signatureOf(store, first.manifest, `a countersignature ${i}`);
    const bundle = join(work, 'b.tar');
    const synced = await cli.gadget(['--store', store.root, 'sync', '--from', 'store:*', '--to', bundle]);
    assert.equal(synced.code, 0, synced.stderr);
    const exported = join(work, 'e.tar');
    const exp = await cli.gadget(['--store', store.root, 'export', 'registry.example.com/team/signed:v1', '-o', exported]);
    assert.equal(exp.code, 0, exp.stderr);
    for (const file of [bundle, exported]) {
      const written = await BundleSource.open(file);
      assert.ok(written.has(first.manifest.digest) && written.has(second.manifest.digest), `${file}: both signatures`);
      const order = written.entries.map((e) => e.digest);
      assert.ok(order.indexOf(first.manifest.digest) < order.indexOf(second.manifest.digest), 'a referrer comes after what it refers to');
    }
  });

  test('a staged blob damaged since an earlier run is found, named, removed, and fetched again by the next run', async (t) => {
    if (!available) return t.skip(SKIP);
    const work = await tempDir(t);
    const src = await openStore(join(work, 'src'));
    t.after(() => src.close());
    const image = await smallImage(src, 'registry.example.com/team/a:v1');
    const layer = (await src.readJSON<{ layers: Descriptor[] }>(image)).layers[0]!;
    const bundle = join(work, 'b.tar');
    // Another store than the one of the run, as a registry is: its blobs are staged beside the bundle.
    const stage = async (): Promise<BundleDestination> => {
      const destination = await BundleDestination.open(bundle);
      await copyGraph(src, destination, image, ['registry.example.com/team/a:v1']);
      return destination;
    };
    const first = await stage();
    first.close();
    const staged = join(stagingDir(bundle), 'blobs', 'sha256', layer.digest.slice(7));
    writeFileSync(staged, Buffer.from(readFileSync(staged, 'utf8').toUpperCase())); // bit rot while it waited
    const second = await stage();
    const outcome = await second.write(undefined, undefined, [{ key: 'registry.example.com/team/a:v1', digest: image.digest }]);
    second.close();
    assert.equal(outcome.written, false, 'nothing else to write');
    const why = outcome.failed.get('registry.example.com/team/a:v1');
    assert.match(why?.message ?? '', new RegExp(`the copy of ${layer.digest} staged for bundle .* is damaged`));
    assert.match(why?.hint ?? '', /run the sync again/);
    assert.ok(!existsSync(bundle) && !existsSync(staged), 'no tar with bad bytes; the damaged copy is gone');
    const third = await stage();
    const done = await third.write(undefined, undefined, [{ key: 'registry.example.com/team/a:v1', digest: image.digest }]);
    third.close();
    assert.equal(done.written, true);
    assert.equal(done.failed.size, 0);
    await (await BundleSource.open(bundle)).checkBlobs({});
  });

  test('two syncs into one bundle at once: each waits for the other, and the tar holds the images of both', async (t) => {
    if (!available) return t.skip(SKIP);
    const work = await tempDir(t);
    const store = await openStore(join(work, 'store'));
    t.after(() => store.close());
    const refs = Array.from({ length: 8 }, (_, i) => `registry.example.com/${i % 2 ? 'odd' : 'even'}/image${i}:v1`);
    for (const ref of refs) await smallImage(store, ref);
    for (let round = 0; round < 3; round++) {
      const bundle = join(work, `race${round}.tar`);
      const runs = await Promise.all(['even', 'odd'].map((side) => cli.gadget(['--store', store.root, '--json', 'sync', '--from', `store:registry.example.com/${side}/*`, '--to', bundle])));
      for (const r of runs) assert.equal(r.code, 0, r.stderr);
      const written = await BundleSource.open(bundle);
      assert.deepEqual(refs.filter((ref) => !written.lookup(ref)), [], `round ${round}: no image lost`);
      await written.checkBlobs({});
      assert.ok(existsSync(join(work, `.race${round}.tar.lock`)), 'the lock file stays beside the tar');
    }
  });

  test('adding to a damaged bundle fails, naming the blob, and leaves the tar as it was', async (t) => {
    if (!available) return t.skip(SKIP);
    const { store, bundle, sync } = await storeSyncingTo(t, 'b.tar');
    assert.equal((await sync()).code, 0);
    // Bit rot inside the tar: the first layer's bytes, same size.
    const tar = readFileSync(bundle);
    const at = tar.indexOf('layer of registry.example.com/team/first:v1');
    assert.ok(at > 0);
    tar.write('LAYER', at);
    writeFileSync(bundle, tar);
    await smallImage(store, 'registry.example.com/team/second:v1');
    const r = await sync();
    assert.equal(r.code, 1, r.stderr);
    const report = JSON.parse(r.stdout) as SyncReport;
    assert.deepEqual(report.images, { copied: 0, skipped: 0, failed: 2 });
    // The image whose blob it is fails as it is copied (what the tar holds is checked before it
    // counts as there); the other, when the tar would be rewritten, carrying the damage forward.
    const byRef = (ref: string): string => report.items.find((i) => i.destination.includes(ref))!.error!;
    assert.match(byRef('team/first:v1'), /^bundle .*b\.tar: blob sha256:[0-9a-f]{64}: content has digest/);
    assert.match(byRef('team/second:v1'), /writing the bundle .*: bundle .*b\.tar: blob sha256:[0-9a-f]{64}: content has digest/);
    assert.deepEqual(totalsOf(report as SyncTotals), { total: { blobs: 0, bytes: 0 }, items: { blobs: 0, bytes: 0 } }, 'no tar was written: nothing was copied into one');
    assert.ok(readFileSync(bundle).equals(tar), 'the damaged tar is as it was, not carried forward into a new one');
  });

  test('a re-sync into a bundle damaged in the tar (a manifest, a layer, a signature) fails the image naming the blob, says nothing was copied, and leaves the tar', async (t) => {
    if (!available) return t.skip(SKIP);
    const work = await tempDir(t);
    const good = join(work, 'good.tar');
    const from = ['sync', '--from', `${reg.host}/${upstream}`, '--include', 'v1'];
    const made = await cli.gadget([...from, '--to', good]);
    assert.equal(made.code, 0, made.stderr);
    const tar = await BundleSource.open(good);
    const root = tar.lookup(`${reg.host}/${upstream}:v1`)!;
    const walk = async (d: Descriptor): Promise<Descriptor[]> => {
      if (!/manifest|index/.test(d.mediaType)) return [d];
      const doc = JSON.parse((await readAllOf(await tar.fetch(d))).toString('utf8')) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
      const children = [...(doc.manifests ?? []), ...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])];
      return [d, ...(await Promise.all(children.map(walk))).flat()];
    };
    const graph = await walk(root);
    const manifest = graph.find((d) => d.digest !== root.digest && /manifest/.test(d.mediaType))!;
    const layer = graph.find((d) => d.size > 16 && !/manifest|index|json/.test(d.mediaType))!;
    const signature = (await tar.referrers(root)).find((r) => r.tag?.endsWith('.sig'))!.descriptor;
    for (const [what, blob] of [['a manifest', manifest], ['a layer', layer], ['a cosign signature', signature]] as const) {
      // Bit rot inside the tar: one byte of the blob flipped, the same size.
      const bytes = readFileSync(good);
      const content = await readAllOf(await tar.fetch(blob));
      const at = bytes.indexOf(content);
      assert.ok(at > 0, what);
      bytes[at + Math.floor(content.length / 2)] ^= 1;
      const bundle = join(work, `damaged-${blob.digest.slice(7, 15)}.tar`);
      writeFileSync(bundle, bytes);
      const r = await cli.gadget(['--json', ...from, '--to', bundle]);
      assert.equal(r.code, 1, `${what}: ${r.stdout}${r.stderr}`);
      const report = JSON.parse(r.stdout) as SyncTotals & { bundles: string[] };
      assert.deepEqual(report.images, { copied: 0, skipped: 0, failed: 1 }, what);
      assert.match(report.items[0]!.error!, new RegExp(`bundle .*${bundle.split('/').pop()}: blob ${blob.digest}: content has digest`), what);
      assert.match(report.items[0]!.hint!, /move it away and run the sync again/, what);
      assert.deepEqual(report.bundles, [], `${what}: nothing written`);
      const text = await cli.gadget([...from, '--to', bundle]);
      assert.equal(text.code, 1, what);
      assert.doesNotMatch(text.stdout, /^copied /m, `${what}: nothing said to be copied`);
      assert.match(text.stderr, new RegExp(`failed: .*blob ${blob.digest}`), what);
      assert.ok(readFileSync(bundle).equals(bytes), `${what}: the tar is as it was`);
    }
    // The intact bundle still re-syncs as complete: nothing copied, nothing written.
    const again = await cli.gadget(['--json', ...from, '--to', good]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout).images, { copied: 0, skipped: 1, failed: 0 });
  });

  test('a re-sync into a bundle that lacks a blob of an image it tags puts the blob back when the source has it, and fails the image naming it when not: never an exit 0 with the tar still lacking it', async (t) => {
    if (!available) return t.skip(SKIP);
    const work = await tempDir(t);
    const good = join(work, 'good.tar');
    const from = ['sync', '--from', `${reg.host}/${upstream}`, '--include', 'v1'];
    assert.equal((await cli.gadget([...from, '--to', good])).code, 0);
    const tar = await BundleSource.open(good);
    const root = tar.lookup(`${reg.host}/${upstream}:v1`)!;
    const index = JSON.parse((await readAllOf(await tar.fetch(root))).toString('utf8')) as { manifests: Descriptor[] };
    const manifest = JSON.parse((await readAllOf(await tar.fetch(index.manifests[0]!))).toString('utf8')) as { layers: Descriptor[] };
    const layer = manifest.layers[0]!;
    // The same layout, written by tar(1) without that blob.
    const dir = join(work, 'layout');
    mkdirSync(dir);
    execFileSync('tar', ['xf', good, '-C', dir]);
    rmSync(join(dir, 'blobs', 'sha256', layer.digest.slice(7)));
    const lacking = join(work, 'lacking.tar');
    execFileSync('tar', ['cf', lacking, '-C', dir, '.']);
    // The source still has it: the re-sync copies it and writes the tar, which holds it again.
    const r = await cli.gadget(['--json', ...from, '--to', lacking]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { bundles: string[] }).bundles, [lacking]);
    const mended = await BundleSource.open(lacking);
    assert.ok(mended.has(layer.digest), `the layer is in the tar again: ${r.stdout}`);
    await mended.checkBlobs({});
    const again = await cli.gadget(['--json', ...from, '--to', lacking]);
    assert.deepEqual(JSON.parse(again.stdout).images, { copied: 0, skipped: 1, failed: 0 }, 'then it is complete');

    // From a source that lacks it too (a bundle copy of the damaged tar): the image fails, named.
    rmSync(lacking);
    execFileSync('tar', ['cf', lacking, '-C', dir, '.']);
    const copy = join(work, 'copy.tar');
    execFileSync('tar', ['cf', copy, '-C', dir, '.']);
    const none = await cli.gadget(['--json', 'sync', '--from', copy, '--to', lacking]);
    assert.equal(none.code, 1, none.stdout + none.stderr);
    const failed = (JSON.parse(none.stdout) as SyncTotals).items.find((i) => i.status === 'failed');
    assert.match(failed?.error ?? '', new RegExp(layer.digest), none.stdout);
  });

  test('a platform subset from the store into a bundle: the new index is staged, its platform read from the store', async (t) => {
    if (!available) return t.skip(SKIP);
    const work = await tempDir(t);
    const bundle = join(work, 'sub.tar');
    const r = await cli.gadget(['--store', examples.root, '--json', 'sync', '--from', `store:${EXAMPLES.traceOpen}`, '--to', bundle, '--platform', 'amd64', '--allow-subset']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const written = await BundleSource.open(bundle);
    const root = written.lookup(EXAMPLES.traceOpen)!;
    const index = JSON.parse((await readAllOf(await written.fetch(root))).toString('utf8')) as { manifests: Array<{ platform?: { architecture: string } }> };
    assert.deepEqual(index.manifests.map((m) => m.platform?.architecture), ['amd64']);
    await written.checkBlobs({});
    assert.ok(!existsSync(stagingDir(bundle)), 'the staging store is gone after the complete run');
  });

  test('two sources renamed onto one destination are refused before anything is written', async (t) => {
    if (!available) return t.skip(SKIP);
    const work = await tempDir(t);
    const folding = ['--rename', 'gadget-oci/examples/trace_open=one/x', '--rename', 'gadget-oci/examples/hello_wasm=one/x'];
    const bundle = join(work, 'c.tar');
    const toBundle = await cli.gadget(['--store', examples.root, 'sync', '--from', 'store:*', '--to', bundle, ...folding]);
    assert.equal(toBundle.code, 2, toBundle.stderr);
    assert.match(toBundle.stderr, /error: 1 destination would receive the images of two sources, so nothing was copied/);
    assert.match(toBundle.stderr, new RegExp(`${EXAMPLES.helloWasm}.*${EXAMPLES.traceOpen}|${EXAMPLES.traceOpen}.*${EXAMPLES.helloWasm}`));
    assert.match(toBundle.stderr, /ghcr\.io\/one\/x:v1/);
    assert.ok(!existsSync(bundle) && !existsSync(stagingDir(bundle)), 'no bundle and no staging store');

    const toRegistry = await cli.gadget(['--store', examples.root, '--json', 'sync', '--from', 'store:*', '--to', `${reg.host}/collide`, ...folding]);
    assert.equal(toRegistry.code, 2, toRegistry.stderr);
    const catalog = (await (await fetch(`${reg.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.deepEqual(catalog.repositories.filter((r) => r.startsWith('collide/')), [], 'nothing was pushed');
  });

  /** A store with one image, a bundle of it (a bundle source) and a counting proxy in front of the registry: a refusal must come before its first request. */
  async function refusalSetup(t: TestContext): Promise<{ work: string; store: Store; source: string; proxy: CountingProxy }> {
    const { work, store, bundle: source, sync } = await storeSyncingTo(t, 'source.tar');
    const made = await sync();
    assert.equal(made.code, 0, made.stderr);
    const proxy = await startCountingProxy(reg.host);
    t.after(() => proxy.close());
    return { work, store, source, proxy };
  }

  test('a bundle in a missing folder is refused before anything is fetched, from a registry, the store, a bundle or a mirror set', async (t) => {
    if (!available) return t.skip(SKIP);
    const { work, store, source, proxy } = await refusalSetup(t);
    writeFileSync(join(work, 'gadget.config.ts'), configSource({
      mirrors: {
        fromRegistry: { source: `${proxy.host}/${upstream}`, destination: { bundle: 'missing/set.tar' } },
        fromStore: { source: { store: '*' }, destination: { bundle: 'missing/deeper/set.tar' } },
      },
    }));
    const index = readFileSync(join(store.root, 'index.json'));
    const before = listing(work);
    const missing = join(work, 'missing');
    const runs: Array<[string[], string, string]> = [
      [['sync', '--from', `${proxy.host}/${upstream}:v1`, '--to', join(missing, 'x.tar')], join(missing, 'x.tar'), missing],
      [['sync', '--from', `${proxy.host}/${upstream}`, '--to', join(missing, 'x.tar'), '--dry-run'], join(missing, 'x.tar'), missing],
      [['sync', '--from', 'store:*', '--to', join(missing, 'deeper', 'x.tar')], join(missing, 'deeper', 'x.tar'), join(missing, 'deeper')],
      [['sync', '--from', source, '--to', join(missing, 'x.tar')], join(missing, 'x.tar'), missing],
      [['sync', 'fromRegistry'], join(missing, 'set.tar'), missing],
      [['sync', 'fromStore'], join(missing, 'deeper', 'set.tar'), join(missing, 'deeper')],
    ];
    for (const [args, file, folder] of runs) {
      const r = await cli.gadget(['--store', store.root, ...args], { cwd: work });
      assertRefused(r, file, new RegExp(`: the folder ${folder} does not exist$`), new RegExp(`^hint: create it first: mkdir -p ${folder}$`));
    }
    const json = await cli.gadget(['--store', store.root, '--json', 'sync', '--from', `${proxy.host}/${upstream}:v1`, '--to', join(missing, 'x.tar')]);
    assert.equal(json.code, 2, json.stderr);
    assert.match((JSON.parse(json.stdout) as { error: { message: string } }).error.message, /the folder .*missing does not exist/);
    assert.deepEqual(proxy.requests, [], 'nothing was asked of the registry');
    assert.ok(!existsSync(missing), 'no folder was created');
    assert.deepEqual(listing(work), before, 'no staging store, no partial file, nothing else');
    assert.deepEqual(readFileSync(join(store.root, 'index.json')), index, 'the store is unchanged');
  });

  test("a bundle inside the store's folder is refused before anything is fetched, whatever the source", async (t) => {
    if (!available) return t.skip(SKIP);
    const work = await tempDir(t);
    const store = await openStore(join(work, 'store'));
    t.after(() => store.close());
    await smallImage(store, 'registry.example.com/team/first:v1');
    symlinkSync('store', join(work, 'store-link'));
    const proxy = await startCountingProxy(reg.host);
    t.after(() => proxy.close());
    // A set that writes the store opens it, so a set from a registry runs with the store open.
    writeFileSync(join(work, 'gadget.config.ts'), configSource({
      mirrors: {
        keep: { source: `${proxy.host}/${upstream}`, destination: 'store' },
        leak: { source: `${proxy.host}/${upstream}`, destination: { bundle: 'store/leak.tar' } },
      },
    }));
    const index = readFileSync(join(store.root, 'index.json'));
    const before = listing(work);
    const inside = /: it is inside the store's own folder/;
    const hint = /^hint: give the path of a new or regular file outside the store's folder$/;
    for (const [args, file] of [
      [['sync', '--from', 'store:*', '--to', join(store.root, 'x.tar')], join(store.root, 'x.tar')],
      [['sync', '--from', 'store:*', '--to', join(work, 'store-link', 'blobs', 'x.tar')], join(work, 'store-link', 'blobs', 'x.tar')],
      [['sync'], join(store.root, 'leak.tar')],
      [['sync', '--dry-run'], join(store.root, 'leak.tar')],
    ] as const) {
      const r = await cli.gadget(['--store', store.root, ...args], { cwd: work });
      assertRefused(r, file, inside, hint);
    }
    assert.deepEqual(proxy.requests, [], 'nothing was asked of the registry');
    assert.deepEqual(listing(work), before, 'nothing was added to the store\'s folder or beside it');
    assert.deepEqual(readFileSync(join(store.root, 'index.json')), index, 'the store is unchanged');
    assert.deepEqual(await fsck(store), []);
  });

  test("a bundle inside the store's folder is refused from a registry or a bundle, the store given by --store or $GADGET_STORE", async (t) => {
    if (!available) return t.skip(SKIP);
    const { work, store, source, proxy } = await refusalSetup(t);
    const index = readFileSync(join(store.root, 'index.json'));
    const before = listing(work);
    const file = join(store.root, 'x.tar');
    for (const [args, env] of [
      [['--store', store.root, 'sync', '--from', `${proxy.host}/${upstream}:v1`, '--to', file], {}],
      [['--store', store.root, 'sync', '--from', source, '--to', file], {}],
      [['sync', '--from', `${proxy.host}/${upstream}:v1`, '--to', file], { GADGET_STORE: store.root }],
    ] as const) {
      const r = await cli.gadget([...args], { cwd: work, env });
      assertRefused(r, file, /: it is inside the store's own folder/, /^hint: give the path of a new or regular file outside the store's folder$/);
    }
    assert.deepEqual(proxy.requests, [], 'nothing was asked of the registry');
    assert.deepEqual(listing(work), before, 'nothing was added to the store\'s folder');
    assert.deepEqual(readFileSync(join(store.root, 'index.json')), index, 'the store is unchanged');
  });

  test('a bundle with a link, or a path outside the layout, is refused when opened', async (t) => {
    const work = await tempDir(t);
    const layout = join(work, 'layout');
    mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(layout, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
    symlinkSync('/etc/passwd', join(layout, 'blobs', 'sha256', sha256(Buffer.from('x')).slice(7)));
    execFileSync('tar', ['-cf', join(work, 'link.tar'), '-C', layout, 'oci-layout', 'index.json', 'blobs']);
    await assert.rejects(BundleSource.open(join(work, 'link.tar')), /is a symbolic link to "\/etc\/passwd"; an OCI layout tar holds only files and folders/);
    // -P keeps the "../" that tar would otherwise strip.
    execFileSync('tar', ['-cPf', join(work, 'escape.tar'), 'oci-layout', '../layout/index.json'], { cwd: layout });
    await assert.rejects(BundleSource.open(join(work, 'escape.tar')), /"\.\.\/layout\/index\.json" contains "\.\.", which would escape its folder/);
  });
});

test('rename rules: strip or replace whole leading path segments; the first matching rule applies', () => {
  assert.equal(renameRepository('src/team/x', [{ stripPrefix: 'src/' }]), 'team/x');
  assert.equal(renameRepository('src/team/x', [{ stripPrefix: 'src' }]), 'team/x');
  assert.equal(renameRepository('srcs/x', [{ stripPrefix: 'src/' }]), 'srcs/x', 'a prefix is whole segments');
  assert.equal(renameRepository('a/b/x', [{ from: 'a/b/', to: 'c/' }]), 'c/x');
  assert.equal(renameRepository('a/x', [{ from: 'a', to: 'c/d' }, { stripPrefix: 'a' }]), 'c/d/x');
  assert.equal(renameRepository('a/x', [{ from: 'a/x', to: 'y' }]), 'y', 'a whole repository may be renamed');
  assert.equal(renameRepository('other/x', [{ from: 'a/', to: 'b/' }]), 'other/x', 'no rule matches: kept');
  assert.throws(() => renameRepository('src', [{ stripPrefix: 'src/' }]), /leaves no repository name/);

  const checked = readSyncConfig({ mirrors: { m: { source: { bundle: 'in.tar' }, rename: [{ stripPrefix: 'src/' }, { from: 'a/', to: 'b/' }], destination: { registry: 'r.example:5000/m' } } } }, '/configs');
  assert.deepEqual(checked.mirrors.m!.rename, [{ stripPrefix: 'src/' }, { from: 'a/', to: 'b/' }]);
  assert.deepEqual(checked.mirrors.m!.source, [{ bundle: '/configs/in.tar' }], 'a bundle source is relative to the config');
  for (const rename of [{ stripPrefix: '' }, { strip: 'x' }, { from: 'a/' }, 'src/', [{ from: 'a', to: 'b', stripPrefix: 'c' }]]) {
    assert.throws(() => readSyncConfig({ mirrors: { m: { source: 'r.example/x', rename, destination: 'store' } } } as never, '/configs'), /rename.* must be \{ stripPrefix/, JSON.stringify(rename));
  }
});

test("import of a tar that lacks a blob names the image: its own blob (its signature is then not tagged either), its cosign tag signature's, its OCI 1.1 referrer's, a countersignature's", async (t) => {
  const work = await tempDir(t);
  const store = await openStore(join(work, 'store'));
  t.after(() => store.close());
  const REF = 'registry.example.com/myorg/x:v1';
  const image = await smallImage(store, REF);
  const tag = `sha256-${image.digest.slice(7)}.sig`;
  const cosign = await signatureOf(store, image, 'a cosign tag signature', tag);
  const referrer = await signatureOf(store, image, 'an OCI 1.1 referrer');
  const counter = await signatureOf(store, referrer.manifest, 'a countersignature');
  const exported = join(work, 'x.tar');
  const exp = await gadget(['--store', store.root, 'export', REF, '-o', exported]);
  assert.equal(exp.code, 0, exp.stderr);
  const layout = join(work, 'layout');
  mkdirSync(layout);
  execFileSync('tar', ['-xf', exported, '-C', layout]);
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  assert.ok(index.manifests.some((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag), 'the export keeps the bare cosign tag');

  const layer = (await store.readJSON<{ layers: Descriptor[] }>(image)).layers[0]!;
  const cases = [
    // Its signature is whole, but is not tagged without the image (as a pull never copies it).
    { lacks: layer, name: REF, imported: [], orphans: [`${REF}'s signature ${tag}`] },
    { lacks: cosign.payload, name: `${REF}'s signature ${tag}`, imported: [REF] },
    { lacks: referrer.payload, name: `${REF}'s signature ${referrer.manifest.digest}`, imported: [REF, tag] },
    { lacks: counter.payload, name: `${REF}'s signature ${referrer.manifest.digest}'s signature ${counter.manifest.digest}`, imported: [REF, tag] },
  ];
  for (const [i, c] of cases.entries()) {
    const folder = join(work, `lacks${i}`);
    cpSync(layout, folder, { recursive: true });
    rmSync(join(folder, 'blobs', 'sha256', c.lacks.digest.slice(7)));
    for (const gzip of [false, true]) {
      const tar = join(work, `lacks${i}.tar${gzip ? '.gz' : ''}`);
      execFileSync('tar', [gzip ? '-czf' : '-cf', tar, '-C', folder, 'oci-layout', 'index.json', 'blobs']);
      const far = join(work, `far${i}${gzip ? 'gz' : ''}`);
      const r = await gadget(['--store', far, 'import', tar]);
      assert.equal(r.code, 1, r.stderr);
      // The same sentence for an image and for a signature, which is named as the image's.
      const where = gzip ? tar : `bundle ${tar}`;
      const orphans = (c.orphans ?? []).map((o) => `failed: ${o}: not imported: the image it belongs to failed`);
      assert.deepEqual(r.stderr.trimEnd().split('\n').filter((l) => l.startsWith('failed: ')), [`failed: ${c.name}: ${where}: blob ${c.lacks.digest} is missing`, ...orphans], `${c.name}${gzip ? ' (gzip)' : ''}`);
      // As before: what is whole is imported, each failure by itself.
      assert.deepEqual(r.stdout.split('\n').filter((l) => l.startsWith('imported ')).sort(), c.imported.map((ref) => `imported ${ref}`).sort());
    }
    const json = await gadget(['--store', join(work, `far${i}json`), '--json', 'import', join(work, `lacks${i}.tar`)]);
    assert.equal(json.code, 1, json.stderr);
    const failed = (JSON.parse(json.stdout) as { failed: Array<{ entry: string; name?: string }> }).failed;
    assert.deepEqual(failed.map((f) => f.name ?? f.entry), [c.name, ...(c.orphans ?? [])], 'the JSON names it the same way');
    assert.ok(failed.every((f) => f.entry.startsWith('sha256') || /:/.test(f.entry)) && !failed.some((f) => f.entry.includes(' ')), `entry stays the tag or digest: ${JSON.stringify(failed)}`);
  }
});

test('--from and --to: .tar, .tar.gz and .tgz in any case, and paths, are files; a gzip bundle is refused by name, never looked up in a registry; a value that reads both ways is refused', async (t) => {
  const work = await tempDir(t);
  const store = await openStore(join(work, 'store'));
  t.after(() => store.close());
  await smallImage(store, 'registry.example.com/team/x:v1');
  await exportImages(store, ['registry.example.com/team/x:v1'], join(work, 'ev.tar'));
  writeFileSync(join(work, 'ev.tar.gz'), gzipSync(readFileSync(join(work, 'ev.tar'))));
  cpSync(join(work, 'ev.tar'), join(work, 'EV.TAR'));
  mkdirSync(join(work, 'sub'));
  cpSync(join(work, 'ev.tar'), join(work, 'sub', 'bundle'));
  const sync = (args: string[]): Promise<CliResult> => gadget(['--store', store.root, 'sync', ...args, '--dry-run'], { cwd: work });
  const fromStore = ['--from', 'store:*'];
  const before = listing(work);

  // Written as a plain tar: a gzip name is refused (it was a push to a registry host "out.tgz").
  for (const name of ['out.tgz', 'OUT.TAR.GZ']) {
    const r = await gadget(['--store', store.root, 'sync', ...fromStore, '--to', name], { cwd: work });
    assert.equal(r.code, 2, `${name}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^error: --to ${name}: sync writes a bundle as a plain tar, not gzip\nhint: name it \\S+\\.tar `));
  }
  const upper = await sync([...fromStore, '--to', 'OUT.TAR']);
  assert.equal(upper.code, 0, upper.stderr);
  assert.match(upper.stdout, new RegExp(`-> bundle ${join(work, 'OUT.TAR')}`));

  // Sources: each a bundle, never a reference completed to ghcr.io.
  for (const from of ['EV.TAR', `${work}/EV.TAR`, './sub/bundle', 'sub/bundle']) {
    const r = await sync(['--from', from, '--to', 'store']);
    assert.equal(r.code, 0, `${from}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /^\[command line\] bundle \S+: registry\.example\.com\/team\/x:v1 -> store/m, from);
  }
  const gz = await sync(['--from', 'ev.tar.gz', '--to', 'store']);
  assert.equal(gz.code, 1, gz.stderr);
  assert.match(gz.stderr, new RegExp(`${join(work, 'ev.tar.gz')} is compressed \\(gzip\\)\nhint: decompress it first \\(gunzip\\), or \`gadget import\` it`));
  assert.doesNotMatch(gz.stdout + gz.stderr, /ghcr\.io|registry/);

  // Both readings possible: refused, with the spelling of the file.
  for (const [args, value] of [[['--from', 'store:*', '--to', 'ghcr.io/x/out.tar'], 'ghcr.io/x/out.tar'], [['--from', 'localhost:5000/x.tgz', '--to', 'store'], 'localhost:5000/x.tgz']] as const) {
    const r = await sync([...args]);
    assert.equal(r.code, 2, `${value}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^error: --(from|to) ${value.replace(/\./g, '\\.')} could be a file or an image reference in the registry \\S+\nhint: write \\./${value.replace(/\./g, '\\.')} for the file`));
  }
  const folder = await sync(['--from', './sub', '--to', 'store']);
  assert.equal(folder.code, 2, folder.stderr);
  assert.match(folder.stderr, /^error: --from \.\/sub is a folder; sync reads a bundle, an OCI layout tar\nhint: `gadget import \.\/sub`/);
  assert.deepEqual(listing(work), before, 'nothing was written');
});

test("a re-sync into a bundle that lacks an OCI 1.1 signature it lists puts the signature back from the store (ig's signed images)", async (t) => {
  const why = sharedMissing();
  if (why) return t.skip(why);
  const work = await mkdtemp(join(tmpdir(), 'gadget-bundle-referrer-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const store = join(work, 'store');
  assert.equal((await gadget(['--store', store, 'import', FIXTURE_LAYOUT])).code, 0);
  const good = join(work, 'good.tar');
  assert.equal((await gadget(['--store', store, 'sync', '--from', 'store:*', '--to', good])).code, 0);
  // A referrer index.json lists without a tag, its manifest taken out of the tar by tar(1).
  const dir = join(work, 'layout');
  mkdirSync(dir);
  execFileSync('tar', ['xf', good, '-C', dir]);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const referrer = index.manifests.find((e) => e.annotations?.['org.opencontainers.image.ref.name'] === undefined)!;
  assert.ok(referrer, 'the bundle lists an untagged referrer');
  rmSync(join(dir, 'blobs', 'sha256', referrer.digest.slice(7)));
  const lacking = join(work, 'lacking.tar');
  execFileSync('tar', ['cf', lacking, '-C', dir, '.']);
  const r = await gadget(['--store', store, '--json', 'sync', '--from', 'store:*', '--to', lacking]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { bundles: string[] }).bundles, [lacking], 'the tar was written');
  const mended = await BundleSource.open(lacking);
  assert.ok(mended.has(referrer.digest), 'the signature is in the tar again');
  await mended.checkBlobs({});
});
