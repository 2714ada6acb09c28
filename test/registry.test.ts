// The registry client against Debian's real docker-registry (distribution 2.8) on 127.0.0.1:
// push a small multi-arch graph, resolve, fetch, tag, list tags, referrers through the
// fallback tag, chunked uploads, cross-repository mounts. Network faults (a download cut
// mid-way, 503 and 429 answers) come from a fault-injecting proxy (test/helpers/registry.ts)
// in front of the real registry: a stand-in for a flaky network, as the tests say.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { sha256 } from '../lib/oci/digest.js';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { EMPTY_BYTES, EMPTY_DIGEST, GADGET_ARTIFACT_TYPE, GADGET_EBPF, MT_EMPTY, MT_INDEX, MT_MANIFEST } from '../lib/oci/mediatypes.js';
import { parseRef } from '../lib/oci/reference.js';
import { MAX_MANIFEST_BYTES } from '../lib/oci/target.js';
import type { Descriptor, Index } from '../lib/oci/types.js';
import { isNotFound, openRepository, type OpenOptions, type RemoteRepository } from '../lib/registry/index.js';
import { registryAvailable, startFaultProxy, startRegistry, type FaultProxy, type TestRegistry } from './helpers/registry.js';

interface Item {
  desc: Descriptor;
  bytes: Buffer;
}

const item = (bytes: Buffer, mediaType: string, extra: Partial<Descriptor> = {}): Item => ({
  desc: { mediaType, digest: sha256(bytes), size: bytes.length, ...extra },
  bytes,
});

/** A gadget-like graph: per-arch eBPF layer + empty config + manifest, and an index. */
function makeGraph(layerSize = 3000): { blobs: Item[]; manifests: Item[]; index: Item; all: Item[] } {
  const config = item(EMPTY_BYTES, MT_EMPTY);
  assert.equal(config.desc.digest, EMPTY_DIGEST);
  const blobs: Item[] = [config];
  const manifests: Item[] = [];
  for (const arch of ['amd64', 'arm64']) {
    const layer = item(randomBytes(layerSize), GADGET_EBPF);
    blobs.push(layer);
    const manifest = encodeJSONBytes({
      schemaVersion: 2,
      mediaType: MT_MANIFEST,
      artifactType: GADGET_ARTIFACT_TYPE,
      config: config.desc,
      layers: [layer.desc],
      annotations: { 'org.opencontainers.image.title': `test-${arch}` },
    });
    manifests.push(item(manifest, MT_MANIFEST, { platform: { architecture: arch, os: 'linux' } }));
  }
  const index = item(
    encodeJSONBytes({
      schemaVersion: 2,
      mediaType: MT_INDEX,
      manifests: manifests.map((m) => ({ mediaType: m.desc.mediaType, digest: m.desc.digest, size: m.desc.size, platform: m.desc.platform })),
    }),
    MT_INDEX,
  );
  return { blobs, manifests, index, all: [...blobs, ...manifests, index] };
}

/** Children first, skipping what is there: the order copyGraph uses. */
async function pushAll(repo: RemoteRepository, items: Item[]): Promise<number> {
  let pushed = 0;
  for (const it of items) {
    if (await repo.exists(it.desc)) continue;
    await repo.push(it.desc, Readable.from([it.bytes]));
    pushed++;
  }
  return pushed;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** A referrer manifest (a signature-like artifact) whose subject is `subject`. */
function makeReferrer(subject: Descriptor, artifactType: string): { blob: Item; manifest: Item } {
  const blob = item(Buffer.from(`signature of ${subject.digest} ${randomBytes(4).toString('hex')}`), 'application/octet-stream');
  const manifest = item(
    encodeJSONBytes({
      schemaVersion: 2,
      mediaType: MT_MANIFEST,
      artifactType,
      config: { mediaType: MT_EMPTY, digest: EMPTY_DIGEST, size: 2 },
      layers: [blob.desc],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      annotations: { 'org.opencontainers.image.created': '2025-01-01T00:00:00Z' },
    }),
    MT_MANIFEST,
  );
  return { blob, manifest };
}

const FAST_RETRY: OpenOptions = { retry: { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 } };

describe('registry client against docker-registry', async () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  const available = await registryAvailable();

  before(async () => {
    if (!available) return;
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.host);
  });
  after(async () => {
    await proxy?.close();
    await reg?.stop();
  });

  const open = (name: string, opts: OpenOptions = {}): RemoteRepository => openRepository(parseRef(`${reg.host}/${name}`), { ...FAST_RETRY, ...opts });
  const viaProxy = (name: string, opts: OpenOptions = {}): RemoteRepository => openRepository(parseRef(`${proxy.host}/${name}`), { ...FAST_RETRY, ...opts });

  test('pushes a multi-arch graph children first, then resolves, fetches and tags it', async (t) => {
    if (!available) return t.skip('docker-registry is not installed (/usr/bin/docker-registry)');
    const repo = open('gadgets/graph');
    assert.equal(repo.name, `${reg.host}/gadgets/graph`);
    const g = makeGraph();
    assert.equal(await pushAll(repo, g.all), g.all.length);
    assert.equal(await pushAll(repo, g.all), 0, 'a second push finds everything there');

    await repo.tag(g.index.desc, 'v1');
    const byTag = await repo.resolve('v1');
    assert.deepEqual(byTag, { mediaType: MT_INDEX, digest: g.index.desc.digest, size: g.index.desc.size });
    const byDigest = await openRepository(parseRef(`${reg.host}/gadgets/graph`)).resolve(g.index.desc.digest);
    assert.equal(byDigest.digest, g.index.desc.digest);
    assert.equal(byDigest.mediaType, MT_INDEX);

    // A fresh client (no cache) reads every node back byte for byte.
    const fresh = open('gadgets/graph');
    for (const it of g.all) {
      assert.ok(await fresh.exists(it.desc), `${it.desc.digest} exists`);
      assert.deepEqual(await readAll(await fresh.fetch(it.desc)), it.bytes);
    }
    assert.equal(await fresh.exists({ mediaType: GADGET_EBPF, digest: sha256('absent'), size: 6 }), false);
    assert.equal(await fresh.exists({ mediaType: MT_MANIFEST, digest: sha256('absent'), size: 6 }), false);

    // tag() fetches the bytes from the repository when it has not seen them.
    await fresh.tag(g.manifests[0]!.desc, 'amd64-only');
    assert.equal((await open('gadgets/graph').resolve('amd64-only')).digest, g.manifests[0]!.desc.digest);
  });

  test('lists every tag, with a page size the registry ignores', async (t) => {
    if (!available) return t.skip('docker-registry is not installed');
    const repo = open('gadgets/tags');
    const g = makeGraph(100);
    await pushAll(repo, g.all);
    const tags = ['a', 'b', 'c', 'd', 'e'];
    for (const tag of tags) await repo.tag(g.index.desc, tag);
    assert.deepEqual((await repo.listTags(undefined, 2)).sort(), tags);
    assert.deepEqual((await repo.listTags()).sort(), tags);
  });

  test('a missing tag or repository is an error that names the reference', async (t) => {
    if (!available) return t.skip('docker-registry is not installed');
    const repo = open('gadgets/graph');
    await assert.rejects(repo.resolve('no-such-tag'), (err: Error) => {
      assert.match(err.message, new RegExp(`${reg.host}/gadgets/graph:no-such-tag`));
      assert.ok(isNotFound(err));
      return true;
    });
    const missing = open('nobody/here');
    // distribution answers MANIFEST_UNKNOWN (not NAME_UNKNOWN) for a missing repository here.
    await assert.rejects(missing.resolve('v1'), new RegExp(`manifest ${reg.host}/nobody/here:v1: not found on ${reg.host}`));
    await assert.rejects(missing.listTags(), (err: Error & { hint?: string }) => {
      assert.match(err.message, /repository nobody\/here does not exist/);
      assert.ok(err.hint);
      return true;
    });
    const d = sha256('nothing');
    await assert.rejects(missing.fetch({ mediaType: GADGET_EBPF, digest: d, size: 7 }), new RegExp(`blob ${d} of ${reg.host}/nobody/here`));
  });

  test('refuses content that does not match its descriptor, and stores nothing', async (t) => {
    if (!available) return t.skip('docker-registry is not installed');
    const repo = open('gadgets/verify');
    const good = item(randomBytes(500), GADGET_EBPF);
    const lie = { ...good.desc, digest: sha256('something else') };
    await assert.rejects(repo.push(lie, Readable.from([good.bytes])), /content has digest/);
    assert.equal(await repo.exists(lie), false);
    // A large blob streams straight through (no buffering): still verified.
    const big = item(randomBytes(64 * 1024), GADGET_EBPF);
    const bigLie = { ...big.desc, digest: sha256('other') };
    await assert.rejects(repo.push(bigLie, Readable.from([big.bytes]), undefined, { bufferLimit: 1024 }), /content has digest/);
    assert.equal(await repo.exists(bigLie), false);
    await repo.push(big.desc, Readable.from([big.bytes]), undefined, { bufferLimit: 1024 });
    // Fetching with a wrong size fails the verification while streaming.
    await assert.rejects(readAll(await repo.fetch({ ...big.desc, size: big.desc.size - 1 })), /more than the/);
    await assert.rejects(repo.fetch({ ...big.desc, mediaType: MT_MANIFEST, size: MAX_MANIFEST_BYTES + 1 }), /more than the/);
  });

  test('referrers: a manifest with a subject shows up through the fallback tag, and cosign tags too', async (t) => {
    if (!available) return t.skip('docker-registry is not installed');
    const repo = open('gadgets/signed');
    const g = makeGraph(200);
    await pushAll(repo, g.all);
    await repo.tag(g.index.desc, 'latest');
    assert.deepEqual(await repo.referrers(g.index.desc), []);

    const sig1 = makeReferrer(g.index.desc, 'application/vnd.dev.cosign.artifact.sig.v1+json');
    const sig2 = makeReferrer(g.index.desc, 'application/vnd.cncf.notary.signature');
    await pushAll(repo, [sig1.blob, sig1.manifest]);
    await pushAll(repo, [sig2.blob, sig2.manifest]);
    assert.equal(repo.referrersApi, false, 'distribution 2.8 has no referrers API');

    // The fallback tag is listed as the index it points at (its entries are its children).
    const fallback = `sha256-${g.index.desc.digest.slice(7)}`;
    const indexDesc = await repo.resolve(fallback);
    assert.equal(indexDesc.mediaType, MT_INDEX);
    const refs = await open('gadgets/signed').referrers(g.index.desc);
    assert.deepEqual(refs, [{ descriptor: indexDesc, tag: fallback }]);
    const entries = (JSON.parse((await readAll(await repo.fetch(indexDesc))).toString('utf8')) as Index).manifests;
    assert.deepEqual(entries.map((d) => d.digest).sort(), [sig1.manifest.desc.digest, sig2.manifest.desc.digest].sort());
    const entry1 = entries.find((d) => d.digest === sig1.manifest.desc.digest)!;
    assert.equal(entry1.artifactType, 'application/vnd.dev.cosign.artifact.sig.v1+json');
    assert.deepEqual(entry1.annotations, { 'org.opencontainers.image.created': '2025-01-01T00:00:00Z' });

    // Pushing the same referrer again adds nothing.
    await repo.push(sig1.manifest.desc, Readable.from([sig1.manifest.bytes]));
    assert.equal((await repo.resolve(fallback)).digest, indexDesc.digest);

    // Tagging a fallback index (as a copy of referrers does) merges, never replaces: a
    // repository whose fallback index lists another referrer keeps it.
    const other = open('gadgets/signed-copy');
    const sig3 = makeReferrer(g.index.desc, 'application/vnd.dev.sigstore.bundle.v0.3+json');
    await pushAll(other, [...g.all, sig1.blob, sig2.blob, sig3.blob, sig3.manifest]);
    for (const sig of [sig1, sig2]) await other.putManifest(sig.manifest.desc.digest, sig.manifest.bytes, MT_MANIFEST);
    await other.putManifest(indexDesc.digest, await readAll(await repo.fetch(indexDesc)), MT_INDEX);
    await other.tag(indexDesc, fallback);
    const merged = await open('gadgets/signed-copy').resolve(fallback);
    assert.notEqual(merged.digest, indexDesc.digest);
    const mergedEntries = (JSON.parse((await readAll(await open('gadgets/signed-copy').fetch(merged))).toString('utf8')) as Index).manifests;
    assert.deepEqual(mergedEntries.map((d) => d.digest), [...entries.map((d) => d.digest), sig3.manifest.desc.digest]);
    // Where the destination lists nothing more, the index is put as it is: byte-identical.
    const third = open('gadgets/signed-third');
    await pushAll(third, [...g.all, sig1.blob, sig2.blob]);
    for (const sig of [sig1, sig2]) await third.push(sig.manifest.desc, Readable.from([sig.manifest.bytes]));
    await third.putManifest(indexDesc.digest, await readAll(await repo.fetch(indexDesc)), MT_INDEX);
    await third.tag(indexDesc, fallback);
    assert.equal((await open('gadgets/signed-third').resolve(fallback)).digest, indexDesc.digest);
    assert.equal((await open('gadgets/signed-third').peek(fallback))?.digest, indexDesc.digest, 'peek: one HEAD gives the digest');
    assert.equal(await open('gadgets/signed-third').peek('no-such-tag'), undefined);

    // A legacy cosign signature tag.
    const legacy = makeReferrer(g.manifests[0]!.desc, 'application/vnd.dev.cosign.simplesigning.v1+json');
    await pushAll(repo, [legacy.blob]);
    await repo.putManifest(legacy.manifest.desc.digest, legacy.manifest.bytes, MT_MANIFEST);
    await repo.tag(legacy.manifest.desc, `sha256-${g.manifests[0]!.desc.digest.slice(7)}.sig`);
    const legacyRefs = await open('gadgets/signed').referrers(g.manifests[0]!.desc);
    assert.deepEqual(legacyRefs, [{ descriptor: legacy.manifest.desc, tag: `sha256-${g.manifests[0]!.desc.digest.slice(7)}.sig` }]);
  });

  test('chunked upload when asked for, in PATCH pieces', async (t) => {
    if (!available) return t.skip('docker-registry is not installed');
    const repo = viaProxy('gadgets/chunked');
    const blob = item(randomBytes(5000), GADGET_EBPF);
    const before = proxy.requests.length;
    await repo.push(blob.desc, Readable.from([blob.bytes.subarray(0, 1234), blob.bytes.subarray(1234)]), undefined, { mode: 'chunked', chunkSize: 1000 });
    const seen = proxy.requests.slice(before);
    assert.equal(seen.filter((r) => r.method === 'PATCH').length, 5);
    assert.ok(seen.some((r) => r.method === 'PUT' && /digest=sha256/.test(r.path)));
    assert.deepEqual(await readAll(await open('gadgets/chunked').fetch(blob.desc)), blob.bytes);

    // Streaming (larger than the buffer limit) chunked upload.
    const big = item(randomBytes(40_000), GADGET_EBPF);
    await repo.push(big.desc, Readable.from([big.bytes]), undefined, { mode: 'chunked', chunkSize: 16_384, bufferLimit: 1000 });
    assert.deepEqual(await readAll(await open('gadgets/chunked').fetch(big.desc)), big.bytes);
  });

  test('uploads in chunks when the registry names OCI-Chunk-Min-Length (header injected by the proxy)', async (t) => {
    if (!available) return t.skip('docker-registry is not installed');
    const repo = viaProxy('gadgets/min-chunk');
    const blob = item(randomBytes(4000), GADGET_EBPF);
    proxy.addHeaders({ method: 'POST', path: /\/blobs\/uploads\/(\?.*)?$/ }, { 'oci-chunk-min-length': '1500' });
    const before = proxy.requests.length;
    await repo.push(blob.desc, Readable.from([blob.bytes]), undefined, { chunkSize: 100 });
    const seen = proxy.requests.slice(before);
    assert.equal(seen.filter((r) => r.method === 'PATCH').length, 3, 'chunks of at least 1500 bytes');
    assert.deepEqual(await readAll(await open('gadgets/min-chunk').fetch(blob.desc)), blob.bytes);
  });

  test('an aborted signal stops a request', async (t) => {
    if (!available) return t.skip('docker-registry is not installed');
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(open('gadgets/graph').resolve('v1', ac.signal), { name: 'AbortError' });
  });

  test('falls back to a chunked upload when the monolithic PUT fails', async (t) => {
    if (!available) return t.skip('docker-registry is not installed');
    const repo = viaProxy('gadgets/fallback');
    const blob = item(randomBytes(3000), GADGET_EBPF);
    proxy.fail({ method: 'PUT', path: /\/blobs\/uploads\/.*digest=/ }, 413, { body: 'request entity too large' });
    const before = proxy.requests.length;
    await repo.push(blob.desc, Readable.from([blob.bytes]));
    const seen = proxy.requests.slice(before);
    assert.ok(seen.some((r) => r.injected && r.status === 413), 'the monolithic PUT was refused');
    assert.ok(seen.some((r) => r.method === 'PATCH' && r.status === 202), 'then sent in chunks');
    assert.ok(await open('gadgets/fallback').exists(blob.desc));
  });

  test('mounts a blob from another repository instead of uploading it', async (t) => {
    if (!available) return t.skip('docker-registry is not installed');
    const source = open('gadgets/mount-src');
    const blob = item(randomBytes(2000), GADGET_EBPF);
    await source.push(blob.desc, Readable.from([blob.bytes]));
    const dest = viaProxy('gadgets/mount-dst');
    dest.mountFrom = ['gadgets/mount-src'];
    // Content that fails when read: a mount must not need it.
    const poisoned = new Readable({ read() { this.destroy(new Error('the content was read')); } });
    const before = proxy.requests.length;
    await dest.push(blob.desc, poisoned);
    const seen = proxy.requests.slice(before);
    assert.ok(seen.some((r) => r.method === 'POST' && /mount=sha256/.test(r.path) && r.status === 201));
    assert.ok(!seen.some((r) => r.method === 'PUT' || r.method === 'PATCH'));
    assert.deepEqual(await readAll(await open('gadgets/mount-dst').fetch(blob.desc)), blob.bytes);

    // A mount source without the blob: the registry opens a normal upload instead.
    const other = item(randomBytes(100), GADGET_EBPF);
    await dest.push(other.desc, Readable.from([other.bytes]), undefined, { mountFrom: ['gadgets/graph'] });
    assert.ok(await open('gadgets/mount-dst').exists(other.desc));
  });

  test('resumes a blob download cut mid-way with a Range request (fault injected by the proxy)', async (t) => {
    if (!available) return t.skip('docker-registry is not installed');
    const blob = item(randomBytes(200_000), GADGET_EBPF);
    await open('gadgets/resume').push(blob.desc, Readable.from([blob.bytes]));
    const repo = viaProxy('gadgets/resume');
    proxy.cut({ method: 'GET', path: new RegExp(`/blobs/${blob.desc.digest}$`) }, 70_000);
    const before = proxy.requests.length;
    const got = await readAll(await repo.fetch(blob.desc));
    assert.deepEqual(got, blob.bytes);
    const gets = proxy.requests.slice(before).filter((r) => r.method === 'GET');
    assert.equal(gets.length, 2);
    assert.equal(gets[0]!.injected, true);
    assert.match(gets[1]!.range ?? '', /^bytes=\d+-$/);
    assert.ok(Number(/\d+/.exec(gets[1]!.range!)![0]) > 0, 'resumed from the byte reached, not from 0');
    assert.equal(gets[1]!.status, 206);

    // Cut every time: gives up with a clear error.
    proxy.cut({ method: 'GET', path: new RegExp(`/blobs/${blob.desc.digest}$`) }, 10, { times: 100 });
    const flaky = viaProxy('gadgets/resume', { maxResumes: 2 });
    await assert.rejects(readAll(await flaky.fetch(blob.desc)), /broke off 3 times/);
    proxy.clear();
  });

  test('retries 503 and 429 (honouring Retry-After), and reports a lasting 429 clearly', async (t) => {
    if (!available) return t.skip('docker-registry is not installed');
    const g = makeGraph(100);
    await pushAll(open('gadgets/retry'), g.all);
    await open('gadgets/retry').tag(g.index.desc, 'v1');
    const repo = viaProxy('gadgets/retry');
    const manifestPath = /\/manifests\/v1$/;
    proxy.fail({ method: 'GET', path: manifestPath }, 503, { times: 2 });
    proxy.fail({ method: 'GET', path: manifestPath }, 429, { headers: { 'retry-after': '1' } });
    const before = proxy.requests.length;
    assert.equal((await repo.resolve('v1')).digest, g.index.desc.digest);
    const seen = proxy.requests.slice(before).filter((r) => manifestPath.test(r.path));
    assert.deepEqual(seen.map((r) => r.status), [503, 503, 429, 200]);

    proxy.fail({ method: 'GET', path: manifestPath }, 429, {
      times: 10,
      body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
      headers: { 'content-type': 'application/json' },
    });
    await assert.rejects(viaProxy('gadgets/retry').resolve('v1'), (err: Error & { hint?: string }) => {
      assert.match(err.message, /429 Too Many Requests/);
      assert.match(err.message, new RegExp(`${proxy.host}/gadgets/retry:v1`));
      assert.ok(err.hint);
      return true;
    });
    proxy.clear();
  });

  test('refuses an upload Location on another host', async (t) => {
    if (!available) return t.skip('docker-registry is not installed');
    // A fake registry whose upload session points elsewhere.
    let elsewhere = 0;
    const other = http.createServer((_req, res) => {
      elsewhere++;
      res.end();
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const otherPort = (other.address() as AddressInfo).port;
    const fake = http.createServer((req, res) => {
      if (req.method === 'POST') {
        res.writeHead(202, { location: `http://127.0.0.1:${otherPort}/upload/1` });
        return res.end();
      }
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    try {
      const repo = openRepository(parseRef(`127.0.0.1:${(fake.address() as AddressInfo).port}/x/y`), FAST_RETRY);
      const blob = item(randomBytes(10), GADGET_EBPF);
      await assert.rejects(repo.push(blob.desc, Readable.from([blob.bytes])), /another host .*refusing/);
      assert.equal(elsewhere, 0);
    } finally {
      fake.closeAllConnections();
      other.closeAllConnections();
      await new Promise((r) => fake.close(r));
      await new Promise((r) => other.close(r));
    }
  });
});
