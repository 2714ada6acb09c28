// push, pull, copy and sync against Debian's real docker-registry (started here at a free port
// and stopped), with images the project builds from examples/ and ig's signed store with every
// signature: the signatures travel, a repeated run moves nothing, and after syncing into an
// empty store with the registry gone the signatures verify offline.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Readable } from 'node:stream';
import { sha256 } from '../lib/oci/digest.js';
import { parseRef } from '../lib/oci/reference.js';
import { openRepository } from '../lib/registry/index.js';
import { copyImage, fetchToTemporaryStore, pull, pullImage, push, pushImage, readSyncConfig, sync, syncSets } from '../plugins/sync.js';
import { verifyImages } from '../plugins/verify.js';
import { fsck } from '../store/maintenance.js';
import { openStore, type Store } from '../store/store.js';
import { registryAvailable, startFaultProxy, startRegistry, type TestRegistry } from './helpers/registry.js';
import { configSource, EXAMPLES, exampleStore, FAST_RETRY, fixtureStore, quietContext, SIGNED, tempDir, Transcript, UNSIGNED } from './helpers/sync.js';
import { SHARED, sharedMissing } from './helpers/paths.js';

const KEYS = join(SHARED, 'fixtures', 'ig-signed-store', 'keys');
const SIGNATURE_OPTIONS = {
  keys: [join(KEYS, 'cosign-good.pub')],
  notationCerts: [join(KEYS, 'notation-good.crt')],
  notationPolicy: join(KEYS, 'notation-policy.json'),
  requireSignature: true,
  profile: 'ig' as const, // ig's own images are metadata-only, which the strict spec profile refuses
};

describe('push, pull, copy and sync against docker-registry', async () => {
  const available = await registryAvailable();
  const SKIP = 'docker-registry is not installed (/usr/bin/docker-registry)';
  const cli = new Transcript();
  let reg: TestRegistry;
  let dir: string;
  let examples: Store;

  before(async () => {
    if (!available) return;
    reg = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'gadget-sync-'));
    examples = await exampleStore(dir);
  });
  after(async () => {
    examples?.close();
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('gadget push, pull and copy move the built images; a second run moves nothing', async (t) => {
    if (!available) return t.skip(SKIP);
    const store = ['--store', examples.root];
    const dest = `${reg.host}/examples/trace_open`;
    const pushed = await cli.gadget([...store, 'push', EXAMPLES.traceOpen, dest]);
    assert.equal(pushed.code, 0, pushed.stderr);
    const digest = examples.resolveRef(EXAMPLES.traceOpen).digest;
    assert.match(pushed.stdout, new RegExp(`pushed ${EXAMPLES.traceOpen} -> ${dest}:v1  ${digest}`), 'DEST without a tag keeps the tag');
    assert.equal((await openRepository(parseRef(`${dest}:v1`)).resolve('v1')).digest, digest);

    const again = await cli.gadget([...store, '--json', 'push', EXAMPLES.traceOpen, dest]);
    assert.equal(again.code, 0, again.stderr);
    const summary = JSON.parse(again.stdout);
    assert.deepEqual(summary.images, { copied: 0, skipped: 1, failed: 0 });
    assert.equal(summary.bytes, 0);

    const copied = await cli.gadget(['--json', 'copy', `${dest}:v1`, `${reg.host}/copies/trace_open:stable`]);
    assert.equal(copied.code, 0, copied.stderr);
    // Within one registry the blobs are mounted: copied, but no byte moved.
    const copiedSummary = JSON.parse(copied.stdout) as { blobs: { copied: number }; bytes: number };
    assert.ok(copiedSummary.blobs.copied > 0);
    const index = await openRepository(parseRef(`${reg.host}/copies/trace_open`)).getManifest(digest);
    const children = (JSON.parse(index!.bytes.toString()) as { manifests: Array<{ size: number }> }).manifests;
    assert.equal(copiedSummary.bytes, index!.bytes.length + children.reduce((n, m) => n + m.size, 0), "only the manifests' bytes moved");
    assert.equal((await openRepository(parseRef(`${reg.host}/copies/trace_open`)).resolve('stable')).digest, digest);

    const empty = join(dir, 'pulled');
    const pulled = await cli.gadget(['--store', empty, 'pull', `${reg.host}/copies/trace_open:stable`]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const fresh = await openStore(empty);
    t.after(() => fresh.close());
    assert.equal(fresh.resolveRef(`${reg.host}/copies/trace_open:stable`).digest, digest, 'tagged with the full reference');
    assert.deepEqual(await fresh.readBytes(digest), await examples.readBytes(digest), 'the index is byte-identical');
    assert.deepEqual(await fsck(fresh), []);
    const repeat = await cli.gadget(['--store', empty, 'pull', `${reg.host}/copies/trace_open:stable`]);
    assert.match(repeat.stdout, /0 images pulled, 1 already there; 0 blobs/);
  });

  test('copy within one registry mounts blobs instead of uploading them', async (t) => {
    if (!available) return t.skip(SKIP);
    const summary = await pushImage(examples, EXAMPLES.helloWasm, `${reg.host}/mount/src:v1`, FAST_RETRY);
    assert.equal(summary.images.copied, 1);
    const proxy = await startFaultProxy(reg.host);
    t.after(() => proxy.close());
    const result = await copyImage(`${proxy.host}/mount/src:v1`, `${proxy.host}/mount/dst:v1`, FAST_RETRY);
    assert.equal(result.images.copied, 1, JSON.stringify(result.items));
    const blobWrites = proxy.requests.filter((r) => (r.method === 'PUT' || r.method === 'PATCH') && r.path.includes('/blobs/'));
    assert.deepEqual(blobWrites, [], 'no blob was uploaded');
    assert.ok(proxy.requests.some((r) => r.method === 'POST' && /mount=sha256/.test(r.path) && r.status === 201));
  });

  test('a manifest that names a wrong size for a blob fails a copy within one registry, though the blob is mounted unread', async (t) => {
    if (!available) return t.skip(SKIP);
    // docker-registry 2.8 takes such a manifest (it checks that a child exists, not its size).
    const src = openRepository(parseRef(`${reg.host}/sizes/src:v1`));
    const blob = (text: string): { descriptor: { mediaType: string; digest: string; size: number }; bytes: Buffer } => {
      const bytes = Buffer.from(text);
      return { bytes, descriptor: { mediaType: 'application/octet-stream', digest: sha256(bytes), size: bytes.length } };
    };
    const config = blob('{"architecture":"amd64","os":"linux"}');
    const layer = blob('a layer whose size the manifest gets wrong');
    for (const b of [config, layer]) await src.push(b.descriptor, Readable.from([b.bytes]));
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { ...config.descriptor, mediaType: 'application/vnd.oci.image.config.v1+json' },
      layers: [{ ...layer.descriptor, size: layer.descriptor.size + 1 }],
    }));
    await src.putManifest('v1', manifest, 'application/vnd.oci.image.manifest.v1+json');
    const copied = await cli.gadget(['--json', 'copy', `${reg.host}/sizes/src:v1`, `${reg.host}/sizes/dst:v1`]);
    assert.equal(copied.code, 1, copied.stdout);
    const summary = JSON.parse(copied.stdout) as { items: Array<{ status: string; error?: string }> };
    assert.match(summary.items[0]!.error ?? '', new RegExp(`${layer.descriptor.digest}.*holds ${layer.descriptor.size} bytes under that digest, but the descriptor says ${layer.descriptor.size + 1}`));
    const dst = openRepository(parseRef(`${reg.host}/sizes/dst:v1`));
    assert.equal(await dst.getManifest('v1'), undefined, 'the destination tag was not made');
  });

  test("the size check of a mounted blob against a flaky registry: a few 503s are retried; a registry that keeps failing it fails the copy, never passes it", async (t) => {
    if (!available) return t.skip(SKIP);
    assert.equal((await pushImage(examples, EXAMPLES.helloWasm, `${reg.host}/flaky/src:v1`, FAST_RETRY)).images.copied, 1);
    const proxy = await startFaultProxy(reg.host);
    t.after(() => proxy.close());
    const heads = { method: 'HEAD', path: /\/blobs\/sha256:/ };
    proxy.fail(heads, 503, { times: 2 });
    const retried = await copyImage(`${proxy.host}/flaky/src:v1`, `${proxy.host}/flaky/once:v1`, FAST_RETRY);
    assert.equal(retried.images.copied, 1, JSON.stringify(retried.items));
    assert.ok(proxy.requests.some((r) => r.method === 'HEAD' && r.status === 503), 'the size checks met the 503s');
    proxy.fail(heads, 500, { times: 1000 });
    const failed = await copyImage(`${proxy.host}/flaky/src:v1`, `${proxy.host}/flaky/never:v1`, FAST_RETRY);
    proxy.clear();
    assert.equal(failed.images.failed, 1, JSON.stringify(failed.items));
    assert.equal(failed.images.copied, 0);
    assert.match(failed.items[0]!.error ?? '', /sha256:[a-f0-9]{64}/, 'the failure names the blob');
    assert.equal(await openRepository(parseRef(`${reg.host}/flaky/never:v1`)).getManifest('v1'), undefined, 'nothing tagged');
  });

  test("ig's signed store: every signature travels to a registry and back, and verifies offline", async (t) => {
    if (!available) return t.skip(SKIP);
    if (sharedMissing()) return t.skip(sharedMissing()!);
    const work = await tempDir(t);
    const source = (await fixtureStore(work))!;
    t.after(() => source.close());
    const own = await startRegistry();
    t.after(() => own.stop());
    writeFileSync(join(work, 'gadget.config.ts'), configSource({
      mirrors: {
        up: { source: { store: '*' }, destination: { registry: `${own.host}/mirror` } },
        down: { source: `${own.host}/mirror/`, destination: 'store' },
        carry: { source: `${own.host}/mirror/`, tags: { include: ['latest'] }, destination: { bundle: 'out/gadgets.tar' } },
      },
    }));
    const up = await cli.gadget(['--store', source.root, '--json', 'sync', 'up'], { cwd: work });
    assert.equal(up.code, 0, up.stderr);
    assert.deepEqual(JSON.parse(up.stdout).images, { copied: 6, skipped: 0, failed: 0 });
    // Every signature of the source is reachable in the registry.
    for (const ref of SIGNED) {
      const repo = openRepository(parseRef(`${own.host}/mirror/${parseRef(ref).repository}`));
      const referrers = await repo.referrers(await repo.resolve('latest'));
      assert.ok(referrers.length > 0, `${ref} has its signature in the registry`);
    }
    const upAgain = await cli.gadget(['--store', source.root, '--json', 'sync', 'up'], { cwd: work });
    assert.deepEqual(JSON.parse(upAgain.stdout).images, { copied: 0, skipped: 6, failed: 0 });
    assert.equal(JSON.parse(upAgain.stdout).blobs.copied, 0);

    const emptyDir = join(work, 'offline-store');
    const down = await cli.gadget(['--store', emptyDir, 'sync', 'down'], { cwd: work });
    assert.equal(down.code, 0, down.stderr);
    mkdirSync(join(work, 'out')); // a bundle's folder must exist, as for tar and cp
    const carry = await cli.gadget(['--store', emptyDir, 'sync', 'carry'], { cwd: work });
    assert.equal(carry.code, 0, carry.stderr);
    assert.ok(existsSync(join(work, 'out', 'gadgets.tar')));
    assert.ok(!existsSync(join(work, 'out', '.gadgets.tar.staging')), 'the staging store is gone after a complete run');
    await own.stop(); // the network is gone from here on

    const offline = await openStore(emptyDir);
    t.after(() => offline.close());
    const refs = [...SIGNED, UNSIGNED].map((r) => `${own.host}/mirror/${parseRef(r).repository}:${parseRef(r).tag}`);
    const reports = await verifyImages(offline, refs, SIGNATURE_OPTIONS);
    for (const [i, report] of reports.entries()) {
      const signed = i < SIGNED.length;
      assert.equal(report.signature?.verified, signed, `${report.ref}: ${JSON.stringify(report.signature)}`);
      assert.equal(report.passed, signed, `${report.ref}: ${JSON.stringify(report)}`);
    }
    // The bundle, imported on the other side of the air gap, verifies the same way.
    const far = await openStore(join(work, 'far-side'));
    t.after(() => far.close());
    const imported = await cli.gadget(['--store', far.root, 'import', join(work, 'out', 'gadgets.tar')]);
    assert.equal(imported.code, 0, imported.stderr);
    far.refreshIfChanged();
    const farReports = await verifyImages(far, refs.slice(0, SIGNED.length), SIGNATURE_OPTIONS);
    assert.ok(farReports.every((r) => r.passed && r.signature?.verified), JSON.stringify(farReports.map((r) => [r.ref, r.signature])));
  });

  test('a registry-to-registry copy keeps the fallback index byte for byte', async (t) => {
    if (!available) return t.skip(SKIP);
    if (sharedMissing()) return t.skip(sharedMissing()!);
    const work = await tempDir(t);
    const source = (await fixtureStore(work))!;
    t.after(() => source.close());
    const ref = 'ttl.sh/signed_with_cosign_oci11:latest';
    await pushImage(source, ref, `${reg.host}/fallback/a:latest`, FAST_RETRY);
    const result = await copyImage(`${reg.host}/fallback/a:latest`, `${reg.host}/fallback/b`, FAST_RETRY);
    assert.equal(result.images.failed, 0, JSON.stringify(result.items));
    const subject = source.resolveRef(ref);
    const fallback = `sha256-${subject.digest.slice(7)}`;
    const original = source.resolveRef(fallback).digest;
    for (const repo of ['a', 'b']) {
      const got = await openRepository(parseRef(`${reg.host}/fallback/${repo}`)).resolve(fallback);
      assert.equal(got.digest, original, `fallback index in ${repo}`);
    }
  });

  test('platforms: a subset is refused with the reason, and copied unsigned when allowed', async (t) => {
    if (!available) return t.skip(SKIP);
    const sets = readSyncConfig({
      mirrors: {
        amd: { source: { store: EXAMPLES.traceOpen }, platforms: ['amd64'], destination: { registry: `${reg.host}/subset` } },
        both: { source: { store: EXAMPLES.traceOpen }, platforms: ['linux/amd64', 'arm64'], destination: { registry: `${reg.host}/full` } },
      },
    }, dir);
    const refused = await syncSets(sets, ['amd'], { store: examples, ...FAST_RETRY });
    assert.equal(refused.images.failed, 1);
    assert.match(refused.items[0]!.error!, /keeping only linux\/amd64 .*another digest.*signatures/);
    assert.match(refused.items[0]!.hint!, /allowPlatformSubset/);
    const full = await syncSets(sets, ['both'], { store: examples, ...FAST_RETRY });
    assert.equal(full.items[0]!.digest, examples.resolveRef(EXAMPLES.traceOpen).digest, 'every platform kept: the same digest');
    sets.mirrors.amd!.allowPlatformSubset = true;
    const allowed = await syncSets(sets, ['amd'], { store: examples, ...FAST_RETRY });
    assert.equal(allowed.images.copied, 1);
    const index = await openRepository(parseRef(`${reg.host}/subset/gadget-oci/examples/trace_open`)).resolve('v1');
    assert.notEqual(index.digest, examples.resolveRef(EXAMPLES.traceOpen).digest);
  });

  test('--dry-run prints the plan and copies nothing; failures are each named, exit 1', async (t) => {
    if (!available) return t.skip(SKIP);
    const work = await tempDir(t);
    await pushImage(examples, EXAMPLES.traceOpen, `${reg.host}/plan/trace_open:v0.9.0`, FAST_RETRY);
    for (const tag of ['v1.0.0', 'v1.2.0', 'v2.0.0-rc.1', 'latest']) await pushImage(examples, EXAMPLES.traceOpen, `${reg.host}/plan/trace_open:${tag}`, FAST_RETRY);
    writeFileSync(join(work, 'gadget.config.ts'), configSource({
      mirrors: {
        releases: { source: `${reg.host}/plan/trace_open`, tags: { semver: '>=1.0.0 <2' }, destination: { registry: `${reg.host}/planned` } },
        broken: { source: [`${reg.host}/plan/trace_open:v1.0.0`, `${reg.host}/nowhere/x:v1`, `${reg.host}/plan/trace_open:v404`], destination: 'store' },
      },
    }));
    const dry = await cli.gadget(['--store', join(work, 's'), 'sync', 'releases', '--dry-run'], { cwd: work });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /plan\/trace_open:v1\.2\.0 -> .*planned\/plan\/trace_open:v1\.2\.0/);
    assert.match(dry.stdout, /2 images planned/);
    assert.doesNotMatch(dry.stdout, /v0\.9\.0|rc\.1|latest/);
    await assert.rejects(openRepository(parseRef(`${reg.host}/planned/plan/trace_open`)).resolve('v1.2.0'), /not found/);
    // The same set given by flags, without a config (for scripts), and run for real.
    const flags = ['--from', `${reg.host}/plan/trace_open`, '--semver', '^1', '--newest', '1', '--to', `${reg.host}/flags`];
    const adHoc = await cli.gadget(['--json', 'sync', ...flags], { cwd: work });
    assert.equal(adHoc.code, 0, adHoc.stderr);
    assert.deepEqual(JSON.parse(adHoc.stdout).items.map((i: { destination: string }) => i.destination), [`${reg.host}/flags/plan/trace_open:v1.2.0`]);
    assert.equal((await cli.gadget(['sync', 'releases', ...flags], { cwd: work })).code, 2, 'SET names and --from do not mix');

    const broken = await cli.gadget(['--store', join(work, 's'), 'sync', 'broken'], { cwd: work });
    assert.equal(broken.code, 1);
    assert.match(broken.stdout, /1 image copied, 0 already there, 2 failed/);
    assert.match(broken.stderr, new RegExp(`failed: ${reg.host}/nowhere/x:v1 -> .*not found`));
    assert.match(broken.stderr, new RegExp(`failed: ${reg.host}/plan/trace_open:v404 -> `));
  });

  test('fetchToTemporaryStore pulls into a store of its own and removes it', async (t) => {
    if (!available) return t.skip(SKIP);
    await pushImage(examples, EXAMPLES.helloWasm, `${reg.host}/remote/hello:v1`, FAST_RETRY);
    const fetched = await fetchToTemporaryStore(`${reg.host}/remote/hello:v1`, FAST_RETRY);
    assert.equal(fetched.ref, `${reg.host}/remote/hello:v1`);
    assert.equal(fetched.store.resolveRef(fetched.ref).digest, examples.resolveRef(EXAMPLES.helloWasm).digest);
    const root = fetched.store.root;
    await fetched.cleanup();
    assert.ok(!existsSync(root));
    await assert.rejects(fetchToTemporaryStore(`${reg.host}/remote/absent:v1`, FAST_RETRY), /cannot fetch .*remote\/absent:v1/);
  });

  test('plugin steps: push the previous step\'s images, then a mirror set brings them into another store', async (t) => {
    if (!available) return t.skip(SKIP);
    const input = [EXAMPLES.traceOpen, EXAMPLES.helloWasm].map((ref) => ({ ref, descriptor: examples.resolveRef(ref) }));
    const out = await push({ to: `${reg.host}/steps` }).run(quietContext(examples), input);
    assert.deepEqual(out, input, 'push passes its input on');
    const work = await tempDir(t);
    const other = await openStore(join(work, 's'));
    t.after(() => other.close());
    const ctx = { ...quietContext(other, work), config: { mirrors: { steps: { source: `${reg.host}/steps/`, destination: 'store' as const } } } };
    const synced = await sync().run(ctx, []);
    assert.deepEqual(synced.map((a) => a.descriptor.digest).sort(), input.map((a) => a.descriptor.digest).sort());
    await assert.rejects(pull({ refs: [`${reg.host}/steps/absent:v1`] }).run(ctx, []), /pull: 1 of 1 images failed:\n {2}.*steps\/absent:v1/);
  });

  test('a pull with a missing reference fails clearly without touching the store', async (t) => {
    if (!available) return t.skip(SKIP);
    const work = await tempDir(t);
    const store = await openStore(join(work, 's'));
    t.after(() => store.close());
    const summary = await pullImage(store, `${reg.host}/absent/image:v1`, FAST_RETRY);
    assert.equal(summary.images.failed, 1);
    assert.match(summary.items[0]!.error!, new RegExp(`${reg.host}/absent/image:v1`));
    assert.deepEqual(store.list(), []);
  });
});
