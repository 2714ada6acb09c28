// What a push costs in requests, counted by a proxy in front of the real docker-registry:
// request counts are facts of the protocol, not timings. A cold push asks no existence
// question before an upload (the mount-or-upload POST answers it), uploads a blob shared by
// several images once per run and mounts it after, and PUTs each manifest once (the index by
// its tag); a no-change re-push is one HEAD per tag; a blob already in another repository of
// the registry is mounted, also in a later run (the store remembers where it was seen); a
// registry that refuses mounts gets an ordinary upload.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { GADGET_ARTIFACT_TYPE, GADGET_BTFGEN, GADGET_CONFIG, GADGET_EBPF, GADGET_WASM, MT_INDEX, MT_MANIFEST } from '../lib/oci/mediatypes.js';
import { parseRef } from '../lib/oci/reference.js';
import type { Descriptor } from '../lib/oci/types.js';
import { openRepository } from '../lib/registry/index.js';
import { executePlan, planPush, readSyncConfig, syncSets } from '../plugins/sync.js';
import { openStore, type Store } from '../store/store.js';
import { startCountingProxy, type CountedRequest, type CountingProxy } from './helpers/counting-proxy.js';
import { registryAvailable, startRegistry, type TestRegistry } from './helpers/registry.js';
import { FAST_RETRY } from './helpers/sync.js';

interface Image {
  ref: string;
  index: Descriptor;
  manifests: Descriptor[];
  blobs: Descriptor[];
}

/**
 * Multi-arch images shaped as ig builds them: per image a config, a wasm module and one eBPF
 * object per architecture; one btfgen blob per architecture shared by every image.
 */
async function makeImages(store: Store, refs: string[]): Promise<{ images: Image[]; shared: Descriptor[] }> {
  const btfgen: Record<string, Descriptor> = {};
  for (const arch of ['amd64', 'arm64']) btfgen[arch] = await store.putBytes(randomBytes(2048), GADGET_BTFGEN);
  const images: Image[] = [];
  for (const ref of refs) {
    const config = await store.putBytes(Buffer.from(`name: ${ref}\n`), GADGET_CONFIG);
    const wasm = await store.putBytes(randomBytes(1024), GADGET_WASM);
    const manifests: Descriptor[] = [];
    const blobs = [config, wasm];
    for (const architecture of ['amd64', 'arm64']) {
      const ebpf = await store.putBytes(randomBytes(1024), GADGET_EBPF);
      blobs.push(ebpf);
      const m = await store.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: GADGET_ARTIFACT_TYPE, config, layers: [ebpf, wasm, btfgen[architecture]!] }), MT_MANIFEST);
      manifests.push({ ...m, platform: { architecture, os: 'linux' } });
    }
    const index = await store.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_INDEX, manifests }), MT_INDEX);
    await store.tag(index, ref);
    images.push({ ref, index, manifests, blobs });
  }
  return { images, shared: Object.values(btfgen) };
}

const isUpload = (r: CountedRequest): boolean => (r.method === 'PUT' || r.method === 'PATCH') && r.path.includes('/blobs/uploads/');
const uploadedDigest = (r: CountedRequest): string | undefined => /[?&]digest=(sha256%3A[a-f0-9]{64})/.exec(r.path)?.[1]?.replace('%3A', ':');
const mountedDigest = (r: CountedRequest): string | undefined => (r.status === 201 ? /[?&]mount=(sha256%3A[a-f0-9]{64})/.exec(r.path)?.[1]?.replace('%3A', ':') : undefined);

describe('what a push costs in requests (counting proxy in front of docker-registry)', async () => {
  const available = await registryAvailable();
  const SKIP = 'docker-registry is not installed (/usr/bin/docker-registry)';
  let reg: TestRegistry;
  let proxy: CountingProxy;
  let store: Store;
  let images: Image[];
  let shared: Descriptor[];
  let dir: string | undefined;

  before(async () => {
    if (!available) return;
    reg = await startRegistry();
    proxy = await startCountingProxy(reg.host);
    dir = await mkdtemp(join(tmpdir(), 'gadget-requests-'));
    store = await openStore(join(dir, 'store'));
    // Three images in two repositories: the btfgen blobs are shared across both.
    ({ images, shared } = await makeImages(store, ['example.com/req/one:v1', 'example.com/req/one:v2', 'example.com/req/two:v1']));
  });

  after(async () => {
    store?.close();
    await proxy?.close();
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const push = (refs: string[], to: (ref: string) => string) =>
    executePlan(refs.map((ref) => planPush(ref, to(ref))), { store, label: 'push', ...FAST_RETRY });
  const cold = (ref: string): string => `${proxy.host}/cold/${parseRef(ref).repository}:${parseRef(ref).tag}`;

  test('a cold push: no HEAD before an upload, each blob uploaded once, each manifest PUT once', async (t) => {
    if (!available) return t.skip(SKIP);
    proxy.reset();
    const summary = await push(images.map((i) => i.ref), cold);
    assert.equal(summary.images.copied, 3, JSON.stringify(summary.items));
    const seen = proxy.requests;
    assert.deepEqual(seen.filter((r) => r.kind === 'HEAD blob'), [], 'no existence check of a blob');
    // Every blob's bytes went up exactly once in the whole run, shared ones included.
    const uploads = seen.filter(isUpload).map(uploadedDigest).filter(Boolean) as string[];
    assert.equal(new Set(uploads).size, uploads.length, 'no blob uploaded twice');
    const unique = new Set([...images.flatMap((i) => i.blobs.map((b) => b.digest)), ...shared.map((b) => b.digest)]);
    assert.deepEqual(new Set(uploads), unique);
    // The shared blobs went up into one repository and were mounted into the other.
    const repositoryOf = (r: CountedRequest): string => /^\/v2\/(.*?)\/blobs\//.exec(r.path)?.[1] ?? '';
    for (const b of shared) {
      const uploadedTo = seen.filter((r) => isUpload(r) && uploadedDigest(r) === b.digest).map(repositoryOf);
      const mountedInto = seen.filter((r) => mountedDigest(r) === b.digest).map(repositoryOf);
      assert.equal(uploadedTo.length, 1);
      assert.deepEqual(new Set([...uploadedTo, ...mountedInto]), new Set(['cold/req/one', 'cold/req/two']), `${b.digest} uploaded once, then mounted`);
    }
    // One PUT per manifest; the index only by its tag.
    const puts = seen.filter((r) => r.kind === 'PUT manifest');
    assert.equal(puts.length, 9);
    for (const image of images) {
      const tag = parseRef(image.ref).tag!;
      assert.equal(puts.filter((r) => r.path.endsWith(`/manifests/${image.index.digest}`)).length, 0, 'the index is not PUT by digest');
      assert.equal(puts.filter((r) => r.path.endsWith(`/manifests/${tag}`) && r.path.includes(parseRef(image.ref).repository)).length, 1);
      for (const m of image.manifests) assert.equal(puts.filter((r) => r.path.endsWith(`/manifests/${m.digest}`)).length, 1);
    }
    // Nothing is asked about manifests whose children were just uploaded: one HEAD per tag.
    assert.equal(seen.filter((r) => r.kind === 'HEAD manifest').length, 3);
    // And the result is complete: every image reads back.
    for (const image of images) {
      const repo = openRepository(parseRef(cold(image.ref)));
      assert.equal((await repo.resolve(parseRef(image.ref).tag!)).digest, image.index.digest);
    }
  });

  test('a no-change re-push is one HEAD per tag', async (t) => {
    if (!available) return t.skip(SKIP);
    proxy.reset();
    const summary = await push(images.map((i) => i.ref), cold);
    assert.equal(summary.images.skipped, 3);
    assert.deepEqual(proxy.requests.map((r) => r.kind), ['HEAD manifest', 'HEAD manifest', 'HEAD manifest']);
  });

  test('a registry mirror without change: the catalog twice, one tag list per repository, one GET of the source tag and one HEAD of the destination tag per image', async (t) => {
    if (!available) return t.skip(SKIP);
    const sets = readSyncConfig({ mirrors: { m: { source: `${proxy.host}/cold/`, destination: { registry: `${proxy.host}/mirrored` } } } }, tmpdir());
    const first = await syncSets(sets, [], FAST_RETRY);
    assert.equal(first.images.copied, 3, JSON.stringify(first.items));
    proxy.reset();
    const again = await syncSets(sets, [], FAST_RETRY);
    assert.equal(again.images.skipped, 3);
    const kinds = proxy.requests.map((r) => `${r.kind} ${/\/v2\/(.*?)\/(manifests|tags|referrers)/.exec(r.path)?.[1] ?? ''}`.trim()).sort();
    // Without the referrers API (docker-registry has none) its probe is made once per registry.
    const probes = kinds.filter((k) => k.startsWith('GET referrers'));
    assert.ok(probes.length <= 1, `referrers probes: ${probes.length}`);
    // The catalog's page is shorter than asked and has no Link: it is asked once more with
    // last= (a registry cutting pages at its own limit looks the same); the tag lists after
    // it, shorter than that page, are taken whole (lib/registry/pages.ts).
    assert.deepEqual(kinds.filter((k) => !k.startsWith('GET referrers')), [
      'GET catalog', 'GET catalog',
      'GET manifest cold/req/one', 'GET manifest cold/req/one', 'GET manifest cold/req/two',
      'GET tag list cold/req/one', 'GET tag list cold/req/two',
      'HEAD manifest mirrored/cold/req/one', 'HEAD manifest mirrored/cold/req/one', 'HEAD manifest mirrored/cold/req/two',
    ]);
  });

  test('the same image pushed to a second repository of the registry, in a later run, is mounted, not uploaded', async (t) => {
    if (!available) return t.skip(SKIP);
    const image = images[2]!;
    await push([image.ref], () => `${proxy.host}/mount/a:v1`);
    proxy.reset();
    // A new run (a new registry client): only the store's index knows where the blobs are.
    const summary = await push([image.ref], () => `${proxy.host}/mount/b:v1`);
    assert.equal(summary.images.copied, 1);
    const seen = proxy.requests;
    assert.deepEqual(seen.filter(isUpload), [], 'no upload request for the second repository');
    const mounted = seen.map(mountedDigest).filter(Boolean);
    assert.deepEqual(new Set(mounted), new Set([...image.blobs, ...shared].map((b) => b.digest)), 'every blob mounted');
    assert.ok(seen.every((r) => !r.path.includes('from=mount%2Fb')), 'mounted from repository a');
    const b = openRepository(parseRef(`${reg.host}/mount/b:v1`));
    assert.equal((await b.resolve('v1')).digest, image.index.digest);
    for (const blob of [...image.blobs, ...shared]) assert.ok(await b.exists(blob), `${blob.digest} is in mount/b`);
  });

  test('a registry that refuses the mount gets an ordinary upload (a proxy stand-in drops the mount parameters)', async (t) => {
    if (!available) return t.skip(SKIP);
    const image = images[2]!;
    proxy.reset();
    proxy.refuseMounts = true;
    try {
      const summary = await push([image.ref], () => `${proxy.host}/mount/c:v1`);
      assert.equal(summary.images.copied, 1, JSON.stringify(summary.items));
    } finally {
      proxy.refuseMounts = false;
    }
    const seen = proxy.requests;
    assert.ok(seen.some((r) => r.kind === 'POST mount (202 upload, refused by the proxy)'), 'the mount was asked for and refused');
    assert.deepEqual(seen.filter((r) => r.kind === 'POST mount (201 mounted)'), []);
    const uploads = new Set(seen.filter(isUpload).map(uploadedDigest));
    for (const blob of [...image.blobs, ...shared]) assert.ok(uploads.has(blob.digest), `${blob.digest} uploaded instead`);
    const c = openRepository(parseRef(`${reg.host}/mount/c:v1`));
    assert.equal((await c.resolve('v1')).digest, image.index.digest);
    for (const blob of [...image.blobs, ...shared]) assert.ok(await c.exists(blob), `${blob.digest} is in mount/c`);
  });
});
