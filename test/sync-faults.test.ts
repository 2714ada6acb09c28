// Faults between the client and the real registry, injected by the proxy of
// test/helpers/registry.ts: connection resets, 500, 503, 429 with Retry-After, bodies cut
// short and bytes flipped. A sync either completes with the right content or fails naming what
// failed; a blob whose digest does not match is never stored. And SIGKILL during a pull leaves
// a store that fsck finds clean (after removing the dead process's temporary files), and the
// next pull completes.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { GADGET_ARTIFACT_TYPE, GADGET_CONFIG, GADGET_EBPF, GADGET_WASM, MT_INDEX, MT_MANIFEST } from '../lib/oci/mediatypes.js';
import { parseRef } from '../lib/oci/reference.js';
import type { Descriptor } from '../lib/oci/types.js';
import { openRepository } from '../lib/registry/index.js';
import { pullImage, pushImage } from '../plugins/sync.js';
import { fsck, gc } from '../store/maintenance.js';
import { openStore, type Store } from '../store/store.js';
import { gadget, spawnGadget } from './helpers/cli.js';
import { exited, freezeWhen } from './helpers/crash.js';
import { registryAvailable, startFaultProxy, startRegistry, type FaultProxy, type TestRegistry } from './helpers/registry.js';
import { configSource, FAST_RETRY, tempDir, Transcript } from './helpers/sync.js';

const available = await registryAvailable();
const SKIP = 'docker-registry is not installed (/usr/bin/docker-registry)';

/** A two-platform gadget image with random eBPF layers of `size` bytes and a shared wasm layer. */
async function randomImage(store: Store, ref: string, size: number): Promise<{ index: Descriptor; layers: Descriptor[] }> {
  const config = await store.putBytes(Buffer.from(`name: ${ref}\n`), GADGET_CONFIG);
  const wasm = await store.putBytes(randomBytes(Math.max(1000, size >> 2)), GADGET_WASM);
  const manifests: Descriptor[] = [];
  const layers: Descriptor[] = [wasm];
  for (const architecture of ['amd64', 'arm64']) {
    const ebpf = await store.putBytes(randomBytes(size), GADGET_EBPF);
    layers.push(ebpf);
    const m = await store.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: GADGET_ARTIFACT_TYPE, config, layers: [ebpf, wasm] }), MT_MANIFEST);
    manifests.push({ ...m, platform: { architecture, os: 'linux' } });
  }
  const index = await store.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_INDEX, manifests }), MT_INDEX);
  await store.tag(index, ref);
  return { index, layers };
}

const blobPath = (d: Descriptor): RegExp => new RegExp(`/blobs/${d.digest}$`);
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('faults between the client and docker-registry', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let dir: string;
  let source: Store;
  let image: { index: Descriptor; layers: Descriptor[] };
  const REF = 'example.com/faults/image:v1';

  before(async () => {
    if (!available) return;
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.host);
    dir = await mkdtemp(join(tmpdir(), 'gadget-sync-faults-'));
    source = await openStore(join(dir, 'source'));
    image = await randomImage(source, REF, 300_000);
    const pushed = await pushImage(source, REF, `${reg.host}/faults/image:v1`, FAST_RETRY);
    assert.equal(pushed.images.copied, 1);
  });
  after(async () => {
    source?.close();
    await proxy?.close();
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('resets, 500, 503, 429 with Retry-After, cut and flipped bodies: the pull completes with the right content', async (t) => {
    if (!available) return t.skip(SKIP);
    const store = await openStore(join(await tempDir(t), 's'));
    t.after(() => store.close());
    const [wasm, amd, arm] = image.layers as [Descriptor, Descriptor, Descriptor];
    proxy.reset({ method: 'GET', path: /\/manifests\/v1$/ }, { times: 2 });
    proxy.fail({ method: 'GET', path: /\/manifests\/v1$/ }, 429, { headers: { 'retry-after': '1' } });
    proxy.fail({ method: 'GET', path: blobPath(wasm) }, 500);
    proxy.fail({ method: 'GET', path: blobPath(amd) }, 503, { times: 2 });
    proxy.cut({ method: 'GET', path: blobPath(amd) }, 100_000);
    proxy.flip({ method: 'GET', path: blobPath(arm) }, { offset: 12_345 });
    const summary = await pullImage(store, `${proxy.host}/faults/image:v1`, FAST_RETRY);
    assert.equal(summary.images.failed, 0, JSON.stringify(summary.items));
    const injected = proxy.requests.filter((r) => r.injected);
    assert.equal(injected.length, 8, 'every fault was met');
    assert.ok(proxy.requests.some((r) => r.range && blobPath(amd).test(r.path)), 'the cut download resumed with Range');
    assert.equal(store.resolveRef(`${proxy.host}/faults/image:v1`).digest, image.index.digest);
    for (const layer of image.layers) assert.deepEqual(await store.readBytes(layer, 1 << 20), await source.readBytes(layer, 1 << 20));
    assert.deepEqual(await fsck(store), []);
    proxy.clear();
  });

  test('bytes flipped every time: the image fails after a second read, naming the blob, and nothing bad is stored', async (t) => {
    if (!available) return t.skip(SKIP);
    const store = await openStore(join(await tempDir(t), 's'));
    t.after(() => store.close());
    const arm = image.layers[2]!;
    proxy.flip({ method: 'GET', path: blobPath(arm) }, { times: 100, offset: 7 });
    const before = proxy.requests.length;
    const summary = await pullImage(store, `${proxy.host}/faults/image:v1`, FAST_RETRY);
    assert.equal(summary.images.failed, 1);
    assert.match(summary.items[0]!.error!, new RegExp(arm.digest));
    // Whole but wrong bytes are read once more (altered on the way?), not five times per try of the image.
    const reads = proxy.requests.slice(before).filter((r) => r.method === 'GET' && blobPath(arm).test(r.path));
    assert.equal(reads.length, 2, 'the blob was read twice');
    assert.ok(!store.hasBlob(arm.digest), 'the corrupt blob was not stored');
    assert.deepEqual(store.list(), [], 'nothing was tagged');
    assert.deepEqual(await fsck(store), [], 'no temporary file is left behind');
    proxy.clear();
    const again = await pullImage(store, `${proxy.host}/faults/image:v1`, FAST_RETRY);
    assert.equal(again.images.failed, 0, 'the next run completes');
    assert.ok(again.items[0]!.copied < 8, 'and copies only what was missing');
    assert.deepEqual(await fsck(store), []);
  });

  test('a manifest cut short or corrupted is read again; a lasting 500 fails naming the reference', async (t) => {
    if (!available) return t.skip(SKIP);
    const store = await openStore(join(await tempDir(t), 's'));
    t.after(() => store.close());
    proxy.cut({ method: 'GET', path: /\/manifests\/v1$/ }, 100);
    proxy.flip({ method: 'GET', path: /\/manifests\/sha256:/ }, { offset: 20 });
    const ok = await pullImage(store, `${proxy.host}/faults/image:v1`, FAST_RETRY);
    assert.equal(ok.images.failed, 0, JSON.stringify(ok.items));
    proxy.clear();
    // A manifest whose bytes are wrong on every read: two reads, then the image fails, naming it.
    const amd64 = (JSON.parse((await source.readBytes(image.index)).toString()) as { manifests: Descriptor[] }).manifests[0]!;
    const child = new RegExp(`/manifests/${amd64.digest}$`);
    proxy.flip({ method: 'GET', path: child }, { times: 100, offset: 20 });
    const before = proxy.requests.length;
    const fresh = await openStore(join(await tempDir(t), 'd'));
    t.after(() => fresh.close());
    const damaged = await pullImage(fresh, `${proxy.host}/faults/image:v1`, FAST_RETRY);
    assert.equal(damaged.images.failed, 1);
    assert.match(damaged.items[0]!.error!, new RegExp(amd64.digest));
    const reads = proxy.requests.slice(before).filter((r) => r.method === 'GET' && child.test(r.path));
    assert.equal(reads.length, 2, 'two reads of the damaged manifest');
    proxy.clear();
    proxy.fail({ method: 'GET', path: /\/manifests\/v2$/ }, 500, { times: 50 });
    const failed = await pullImage(store, `${proxy.host}/faults/image:v2`, FAST_RETRY);
    assert.equal(failed.images.failed, 1);
    assert.match(failed.items[0]!.error!, new RegExp(`${proxy.host}/faults/image:v2: the registry ${proxy.host} failed with HTTP 500`));
    proxy.clear();
  });

  test('an index whose child is labelled a manifest but is an index: the pull fails naming it, nothing is tagged', async (t) => {
    if (!available) return t.skip(SKIP);
    // Made with plain HTTP, as a careless tool would push it: docker-registry accepts it.
    const liar = encodeJSONBytes({ schemaVersion: 2, mediaType: MT_INDEX, manifests: [{ mediaType: MT_MANIFEST, digest: image.index.digest, size: image.index.size, platform: { architecture: 'amd64', os: 'linux' } }] });
    // A repository of its own: the other tests sync every tag of faults/image.
    assert.equal((await pushImage(source, REF, `${reg.host}/faults/liar:v1`, FAST_RETRY)).images.copied, 1);
    const put = await fetch(`${reg.url}/v2/faults/liar/manifests/liar`, { method: 'PUT', headers: { 'content-type': MT_INDEX }, body: new Uint8Array(liar) });
    assert.equal(put.status, 201, await put.text());
    const store = await openStore(join(await tempDir(t), 's'));
    t.after(() => store.close());
    const summary = await pullImage(store, `${reg.host}/faults/liar:liar`, FAST_RETRY);
    assert.equal(summary.images.failed, 1);
    assert.match(summary.items[0]!.error!, new RegExp(`${image.index.digest} is labelled a manifest \\(${esc(MT_MANIFEST)}\\) but its content is ${esc(MT_INDEX)}`));
    assert.ok(summary.items[0]!.hint, 'with a hint');
    assert.deepEqual(store.list(), [], 'nothing was tagged');
  });

  test("a pull that fails on the new image's signature leaves the store's tag on the image it had", async (t) => {
    if (!available) return t.skip(SKIP);
    const store = await openStore(join(await tempDir(t), 's'));
    t.after(() => store.close());
    const ref = `${proxy.host}/faults/moved:v1`;
    assert.equal((await pushImage(source, REF, `${reg.host}/faults/moved:v1`, FAST_RETRY)).images.copied, 1);
    assert.equal((await pullImage(store, ref, FAST_RETRY)).images.failed, 0);
    // The tag moves to a new image with two cosign tag artifacts: a signature that copies, then
    // an attestation whose payload the registry cannot serve.
    const NEW = 'example.com/faults/moved:v2';
    const moved = await randomImage(source, NEW, 1000);
    const config = await source.putBytes(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json');
    const artifact = async (text: string, suffix: string): Promise<Descriptor> => {
      const layer = await source.putBytes(Buffer.from(text), 'application/vnd.dev.cosign.simplesigning.v1+json');
      await source.tag(await source.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_MANIFEST, config, layers: [layer] }), MT_MANIFEST), `sha256-${moved.index.digest.slice(7)}.${suffix}`);
      return layer;
    };
    const goodSignature = `sha256-${moved.index.digest.slice(7)}.sig`;
    await artifact('{"critical":{"good":true}}', 'sig');
    const payload = await artifact('{"critical":{}}', 'att');
    assert.equal((await pushImage(source, NEW, `${reg.host}/faults/moved:v1`, FAST_RETRY)).images.copied, 1);
    proxy.fail({ method: 'GET', path: blobPath(payload) }, 404, { times: 100 });
    const summary = await pullImage(store, ref, FAST_RETRY);
    proxy.clear();
    assert.equal(summary.images.failed, 1);
    assert.match(summary.items[0]!.error!, new RegExp(payload.digest));
    assert.equal(summary.items[0]!.tagged, undefined, 'no tag was set');
    assert.equal(store.resolveRef(ref).digest, image.index.digest, 'the tag stays on the image it had');
    assert.throws(() => store.resolveRef(goodSignature), /is not in store/, "the signature that copied is not tagged either: the image's tree failed");
    const again = await pullImage(store, ref, FAST_RETRY);
    assert.equal(again.images.failed, 0, 'the next run completes');
    assert.equal(store.resolveRef(ref).digest, moved.index.digest, 'and moves the tag');
    assert.ok(store.resolveRef(goodSignature), 'and tags the signature');
  });

  test('an answer the distribution API does not allow (HTML for a tag list): one sentence naming it, and a hint', async (t) => {
    if (!available) return t.skip(SKIP);
    proxy.fail({ method: 'GET', path: /\/tags\/list/ }, 200, { times: 100, body: '<html>a login page</html>', headers: { 'content-type': 'text/html' } });
    try {
      for (const json of [false, true]) {
        const r = await gadget([...(json ? ['--json'] : []), 'tags', `${proxy.host}/faults/image`]);
        assert.equal(r.code, 1, r.stderr);
        if (json) assert.match(JSON.parse(r.stdout).error.hint, /does not answer as the distribution API says/);
        else assert.match(r.stderr, /^error: [^\n]*the registry answered something that is not JSON \(\d+ bytes\)\nhint: the registry \(or a proxy in front of it\) does not answer as the distribution API says/);
      }
    } finally {
      proxy.clear();
    }
  });

  test('a blob shorter than its descriptor says: the pull fails naming both sizes, with a hint, and asks for no Range', async (t) => {
    if (!available) return t.skip(SKIP);
    // docker-registry 2.8 accepts a manifest that names its 16-byte layer as 9999 bytes.
    const upload = async (bytes: Buffer): Promise<Descriptor> => {
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      const started = await fetch(`${reg.url}/v2/short/src/blobs/uploads/`, { method: 'POST' });
      const location = new URL(started.headers.get('location')!, reg.url);
      location.searchParams.set('digest', digest);
      const put = await fetch(location, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(put.status, 201);
      return { mediaType: GADGET_EBPF, digest, size: bytes.length };
    };
    const config = await upload(Buffer.from('name: short\n'));
    const layer = await upload(Buffer.from('layer-bytes-1234'));
    const manifest = encodeJSONBytes({ schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: GADGET_ARTIFACT_TYPE, config: { ...config, mediaType: GADGET_CONFIG }, layers: [{ ...layer, size: 9999 }] });
    const put = await fetch(`${reg.url}/v2/short/src/manifests/v1`, { method: 'PUT', body: new Uint8Array(manifest), headers: { 'content-type': MT_MANIFEST } });
    assert.equal(put.status, 201, await put.text());
    const before = proxy.requests.length;
    const r = await gadget(['--store', join(await tempDir(t), 's'), '--json', 'pull', `${proxy.host}/short/src:v1`]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const item = (JSON.parse(r.stdout) as { items: Array<{ error: string; hint?: string }> }).items[0]!;
    assert.equal(item.error, `blob ${layer.digest} of ${proxy.host}/short/src: the registry holds 16 bytes under that digest, but the descriptor says 9999`);
    assert.match(item.hint ?? '', /names the wrong size/);
    assert.ok(!proxy.requests.slice(before).some((q) => q.range), 'no Range request for bytes that do not exist');
  });

  test('a push through resets and 5xx answers arrives complete', async (t) => {
    if (!available) return t.skip(SKIP);
    const local = await openStore(join(await tempDir(t), 's'));
    t.after(() => local.close());
    const other = await randomImage(local, 'example.com/faults/pushed:v1', 50_000);
    proxy.reset({ method: 'POST', path: /\/blobs\/uploads\/(\?.*)?$/ }, { times: 2 });
    proxy.fail({ method: 'PUT', path: /\/blobs\/uploads\/.*digest=/ }, 500, { times: 1 });
    proxy.fail({ method: 'PUT', path: /\/manifests\// }, 503, { times: 2 });
    proxy.fail({ method: 'HEAD', path: /\/blobs\// }, 429, { headers: { 'retry-after': '0' } });
    const summary = await pushImage(local, 'example.com/faults/pushed:v1', `${proxy.host}/faults/pushed:v1`, FAST_RETRY);
    assert.equal(summary.images.failed, 0, JSON.stringify(summary.items));
    assert.ok(proxy.requests.filter((r) => r.injected).length >= 5);
    const fresh = openRepository(parseRef(`${reg.host}/faults/pushed`));
    assert.equal((await fresh.resolve('v1')).digest, other.index.digest);
    for (const layer of other.layers) assert.ok(await fresh.exists(layer), layer.digest);
    proxy.clear();
  });

  // The proxy answers every catalog request (`/v2/_catalog`, any page) with 500: a registry
  // whose repository list fails after the retries. That prefix is one failed source (sync) or
  // input (verify --remote), named with the error and its hint; the others still run.
  test('a prefix whose catalog fails with HTTP 500 fails alone, named; the other sources, sets and inputs still run', async (t) => {
    if (!available) return t.skip(SKIP);
    const work = await tempDir(t);
    const cli = new Transcript();
    const prefix = `${proxy.host}/faults/`;
    const repo = `${proxy.host}/faults/image`;
    // Two tries per request keep the lasting 500 quick (the default is 5, with backoff).
    writeFileSync(join(work, 'gadget.config.ts'), configSource({
      registries: { retries: 2 },
      mirrors: { listed: { source: prefix, destination: 'store' }, named: { source: repo, destination: 'store' } },
    }));
    proxy.fail({ method: 'GET', path: /^\/v2\/_catalog/ }, 500, { times: 1000 });
    t.after(() => proxy.clear());
    const catalog = /the repository list \(catalog\) of .*HTTP 500/;
    const stored = async (root: string): Promise<string[]> => {
      const s = await openStore(root);
      try {
        return s.list().map((r) => r.ref);
      } finally {
        s.close();
      }
    };

    const one = join(work, 'one');
    const r = await cli.gadget(['--store', one, 'sync', '--from', prefix, '--from', repo, '--to', 'store'], { cwd: work });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`^failed: ${esc(prefix)} -> store: ${catalog.source}[^\\n]*\\nhint: \\S`, 'm'));
    assert.match(r.stdout, /1 image copied, 0 already there, 1 failed/);
    assert.deepEqual(await stored(one), [`${repo}:v1`], 'the other source was copied');

    const json = await cli.gadget(['--store', one, '--json', 'sync', '--dry-run', '--from', prefix, '--from', repo, '--to', 'store'], { cwd: work });
    assert.equal(json.code, 1, json.stdout + json.stderr);
    const items = (JSON.parse(json.stdout) as { items: Array<{ source: string; refused?: string; hint?: string }> }).items;
    assert.deepEqual(items.map((i) => [i.source, Boolean(i.refused)]), [[prefix, true], [`${repo}:v1`, false]]);
    assert.match(items[0]!.refused!, catalog);
    assert.ok(items[0]!.hint);

    // Mirror sets: the set whose prefix cannot be listed fails, named; the other set runs.
    const sets = join(work, 'sets');
    const s = await cli.gadget(['--store', sets, 'sync'], { cwd: work });
    assert.equal(s.code, 1, s.stdout + s.stderr);
    assert.match(s.stderr, new RegExp(`^failed: ${esc(prefix)} -> store: mirror set listed: ${catalog.source}[^\\n]*\\nhint: \\S`, 'm'));
    assert.deepEqual(await stored(sets), [`${repo}:v1`]);

    // verify --remote: the prefix is a failed entry of its own, the image is still verified.
    const v = await cli.gadget(['--json', 'verify', '--remote', prefix, `${repo}:v1`, '--profile', 'ig'], { cwd: work });
    assert.equal(v.code, 1, v.stdout + v.stderr);
    const doc = JSON.parse(v.stdout) as { images: Array<{ ref: string; passed: boolean; hint?: string; findings: Array<{ rule: string; message: string }> }> };
    assert.deepEqual(doc.images.map((i) => i.ref), [prefix, `${repo}:v1`], v.stdout);
    assert.deepEqual(doc.images[0]!.findings.map((f) => f.rule), ['GADGET-REMOTE-UNLISTED']);
    assert.match(doc.images[0]!.findings[0]!.message, catalog);
    assert.ok(doc.images[0]!.hint);
    assert.ok(!doc.images[1]!.findings.some((f) => /^GADGET-REMOTE-/.test(f.rule)), 'the image was fetched and verified');
  });

  // The wrapped tagMany stands in for another process's `gc --grace 0` that lands between a
  // pull's copy and its tag (a real one cannot be timed to that moment).
  for (const [gcs, outcome] of [[1, 'copied again and tagged'], [100, 'fails by name after 4 tries']] as const) {
    test(`a gc that empties a pulled image before its tag (${gcs === 1 ? 'once' : 'every time'}): ${outcome}`, async (t) => {
      if (!available) return t.skip(SKIP);
      const store = await openStore(join(await tempDir(t), 's'));
      t.after(() => store.close());
      const tagMany = store.tagMany.bind(store);
      let collected = 0;
      store.tagMany = async (items) => {
        if (collected < gcs && items.length > 0) {
          collected++;
          assert.ok((await gc(store, { graceSeconds: 0 })).removedBlobs.length > 0, 'the gc removed the copied content');
        }
        return tagMany(items);
      };
      const ref = `${reg.host}/faults/image:v1`;
      const summary = await pullImage(store, ref, FAST_RETRY);
      if (gcs === 1) {
        assert.equal(summary.images.failed, 0, JSON.stringify(summary.items));
        assert.equal(store.resolveRef(ref).digest, image.index.digest);
        assert.deepEqual(await fsck(store), [], 'the whole image is there');
      } else {
        assert.equal(collected, 4, 'four tries');
        assert.equal(summary.images.failed, 1);
        assert.match(summary.items[0]!.error!, /removed from .* \(by a concurrent gc\) after it was copied, 4 times/);
        assert.deepEqual(store.list(), [], 'nothing was tagged');
      }
    });
  }

  // A small blob is read whole and a large one streamed (Store.fetch): both are checked.
  for (const [kind, size] of [['small', 40_000], ['large', 3 << 20]] as const) {
    test(`a ${kind} blob damaged in the store is never pushed: the image fails naming it`, async (t) => {
      if (!available) return t.skip(SKIP);
      const local = await openStore(join(await tempDir(t), 's'));
      t.after(() => local.close());
      const ref = `example.com/faults/damaged-${kind}:v1`;
      const damaged = await randomImage(local, ref, size);
      const amd = damaged.layers[1]!;
      const file = local.blobPath(amd.digest);
      const bytes = readFileSync(file);
      bytes[bytes.length >> 1] ^= 0xff; // same size, other content
      writeFileSync(file, bytes);
      const summary = await pushImage(local, ref, `${reg.host}/faults/damaged-${kind}:v1`, FAST_RETRY);
      assert.equal(summary.images.failed, 1, JSON.stringify(summary.items));
      assert.match(summary.items[0]!.error!, new RegExp(amd.digest));
      const remote = openRepository(parseRef(`${reg.host}/faults/damaged-${kind}`));
      assert.equal(await remote.exists(amd), false, 'the damaged blob is not on the registry');
      assert.equal(await remote.peek('v1'), undefined, 'nor is the tag');
    });
  }

  test('SIGKILL during a pull: fsck is clean once the dead temporary files are removed, and the next pull completes', async (t) => {
    if (!available) return t.skip(SKIP);
    const work = await tempDir(t);
    const big = await randomImage(source, 'example.com/faults/big:v1', 48 * 1024 * 1024);
    await pushImage(source, 'example.com/faults/big:v1', `${reg.host}/faults/big:v1`, FAST_RETRY);
    const storeDir = join(work, 'store');
    const cli = new Transcript();
    // The store exists before the pull (its creation is not what this test is about).
    (await openStore(storeDir)).close();
    const child = spawnGadget(['--store', storeDir, 'pull', `${reg.host}/faults/big:v1`]);
    const tmp = join(storeDir, 'gadget-oci', 'tmp');
    const writing = (): boolean => existsSync(tmp) && readdirSync(tmp).some((f) => f.startsWith('.tmp-') && f.endsWith('-blob'));
    const frozen = await freezeWhen(child, writing);
    if (frozen) child.kill('SIGKILL');
    await exited(child);
    assert.ok(frozen, 'the pull was caught while writing a blob');

    const check = await cli.gadget(['--store', storeDir, '--json', 'fsck']);
    const problems = JSON.parse(check.stdout).problems as Array<{ kind: string }>;
    assert.ok(problems.every((p) => p.kind === 'stray-temp'), JSON.stringify(problems));
    if (problems.length) assert.equal((await cli.gadget(['--store', storeDir, 'fsck', '--repair'])).code, 0);
    const clean = await cli.gadget(['--store', storeDir, 'fsck']);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    const store = await openStore(storeDir);
    t.after(() => store.close());
    assert.deepEqual(store.list(), [], 'nothing half-pulled is tagged');

    const rerun = await cli.gadget(['--store', storeDir, 'pull', `${reg.host}/faults/big:v1`]);
    assert.equal(rerun.code, 0, rerun.stderr);
    store.refreshIfChanged();
    assert.equal(store.resolveRef(`${reg.host}/faults/big:v1`).digest, big.index.digest);
    assert.equal((await cli.gadget(['--store', storeDir, 'fsck'])).code, 0);
  });
});
