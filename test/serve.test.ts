// `gadget serve` with real clients: skopeo copies gadget images in and out byte for byte;
// gadget itself moves ig's signed images docker-registry -> gadget serve -> docker-registry
// with their signatures (cosign legacy, OCI 1.1 referrers, Sigstore bundle, notation) and
// verifies them remotely against the server; safe defaults, htpasswd, TLS, read-only, a
// SIGTERM in the middle of an upload, and a SIGKILL in the middle of 8 transfers.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { request } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { openStore } from '../store/store.js';
import { gadget, spawnGadget } from './helpers/cli.js';
import { FIXTURE_LAYOUT, REPO, SHARED, scratch } from './helpers/paths.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { startServe, type TestServe } from './helpers/serve.js';
import { EXAMPLES, exampleStore, fixtureStore, SIGNED } from './helpers/sync.js';
import { writeImage } from './helpers/images.js';
import type { Descriptor } from '../lib/oci/types.js';

const run = promisify(execFile);
const KEYS = join(SHARED, 'fixtures', 'ig-signed-store', 'keys');
const ACCEPT = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';

async function skopeo(args: string[]): Promise<void> {
  await run('skopeo', ['--insecure-policy', ...args], { maxBuffer: 1 << 24 });
}

function indexDigest(layout: string, ref: string): string {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  return index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref)!.digest;
}

const EMPTY = Buffer.from('{}');
const digestOf = (bytes: Buffer | string): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** A blob pushed in one POST; asserts the 201. */
async function pushBlob(url: string, repo: string, bytes: Buffer): Promise<string> {
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digestOf(bytes)}`, { method: 'POST', body: new Uint8Array(bytes) });
  assert.equal(res.status, 201, await res.text());
  return digestOf(bytes);
}

/** An image manifest with the empty config and no layers (push EMPTY first), `extra` merged in. */
function smallManifest(extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(EMPTY), size: 2 }, layers: [], ...extra }));
}

async function putManifest(url: string, path: string, bytes: Buffer, mediaType = 'application/vnd.oci.image.manifest.v1+json'): Promise<Response> {
  return fetch(`${url}/v2/${path}`, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'Content-Type': mediaType } });
}

/** A response's status, and its first error's code and message. */
async function answer(res: Response): Promise<{ status: number; code?: string; message?: string }> {
  const body = (await res.json().catch(() => undefined)) as { errors?: Array<{ code: string; message: string }> } | undefined;
  const error = body?.errors?.[0];
  return error ? { status: res.status, code: error.code, message: error.message } : { status: res.status };
}

describe('gadget serve with real clients', () => {
  let dir: string;
  let examples: string;
  let serve: TestServe;

  before(async () => {
    dir = scratch('gadget-serve-');
    (await exampleStore(dir)).close();
    examples = join(dir, 'examples-store');
    serve = await startServe(join(dir, 'served'));
  });
  after(async () => serve?.stop());

  test('skopeo copies gadget images into and out of the server byte for byte', async () => {
    for (const ref of [EXAMPLES.traceOpen, EXAMPLES.helloWasm]) {
      await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${examples}:${ref}`, `docker://${serve.host}/${ref}`]);
      const out = join(dir, `out-${ref.split('/').pop()!.replace(':', '-')}`);
      await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${serve.host}/${ref}`, `oci:${out}:${ref}`]);
      const digest = indexDigest(examples, ref);
      assert.equal(indexDigest(out, ref), digest, 'the same index digest after the round trip');
      for (const blob of readdirSync(join(out, 'blobs', 'sha256'))) {
        assert.deepEqual(readFileSync(join(out, 'blobs', 'sha256', blob)), readFileSync(join(examples, 'blobs', 'sha256', blob)), `blob ${blob}`);
      }
    }
    const listed = await gadget(['--store', join(dir, 'served'), 'list', '--json']);
    assert.deepEqual((JSON.parse(listed.stdout) as { ref: string }[]).map((i) => i.ref).sort(), [EXAMPLES.helloWasm, EXAMPLES.traceOpen].sort(), 'pushes are in the store at once');
  });

  test('containerd\'s mirror requests (?ns=ghcr.io) find the store\'s ghcr.io images', async () => {
    const path = EXAMPLES.traceOpen.replace('ghcr.io/', '').replace(':v1', '');
    const res = await fetch(`${serve.url}/v2/${path}/manifests/v1?ns=ghcr.io`, { headers: { Accept: ACCEPT } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), indexDigest(examples, EXAMPLES.traceOpen));
  });

  test('the last gadget verify of an image is on its page', async () => {
    const verified = await gadget(['--store', join(dir, 'served'), 'verify', EXAMPLES.traceOpen]);
    assert.equal(verified.code, 0, verified.stdout);
    const page = await (await fetch(`${serve.url}/image?ref=${encodeURIComponent(EXAMPLES.traceOpen)}`)).text();
    assert.match(page, /<span class="pass">PASS<\/span>/);
  });
});

describe('signatures through gadget serve and docker-registry, both ways', () => {
  let dir: string;
  let registry: TestRegistry;
  let serve: TestServe;

  before(async () => {
    dir = scratch('gadget-serve-sig-');
    (await fixtureStore(dir))!.close();
    [registry, serve] = await Promise.all([startRegistry(), startServe(join(dir, 'served'))]);
  });
  after(async () => {
    await serve?.stop();
    await registry?.stop();
  });

  test('store -> docker-registry -(gadget sync)-> gadget serve -(gadget copy)-> docker-registry, then verified remotely with their signatures', async () => {
    const fixture = join(dir, 'fixture-store');
    for (const ref of SIGNED) {
      const path = ref.replace(':latest', '');
      const pushed = await gadget(['--store', fixture, 'push', ref, `${registry.host}/in/${path}:latest`]);
      assert.equal(pushed.code, 0, pushed.stderr);
      const toServe = await gadget(['--store', join(dir, 'sync-store'), 'sync', '--from', `${registry.host}/in/${path}`, '--to', serve.host, '--strip-prefix', 'in/']);
      assert.equal(toServe.code, 0, toServe.stdout + toServe.stderr);
      const back = await gadget(['copy', `${serve.host}/${path}:latest`, `${registry.host}/out/${path}:latest`]);
      assert.equal(back.code, 0, back.stderr);
    }
    for (const target of [serve.host, `${registry.host}/out`]) {
      for (const ref of SIGNED) {
        const remote = `${target}/${ref}`;
        const keys = ref.includes('notation')
          ? ['--notation-cert', join(KEYS, 'notation-good.crt'), '--notation-policy', join(KEYS, 'notation-policy.json')]
          : ['--key', join(KEYS, 'cosign-good.pub')];
        const verified = await gadget(['--store', join(dir, 'scratch-store'), 'verify', '--remote', remote, '--profile', 'ig', '--require-signature', ...keys]);
        assert.equal(verified.code, 0, `${remote}: ${verified.stdout}${verified.stderr}`);
      }
    }
  });

  test('the referrers API lists the notation and cosign OCI 1.1 signatures', async () => {
    const found = new Set<string>();
    for (const ref of SIGNED) {
      const path = ref.replace(':latest', '');
      const digest = (await fetch(`${serve.url}/v2/${path}/manifests/latest`, { method: 'HEAD', headers: { Accept: ACCEPT } })).headers.get('docker-content-digest');
      const body = (await (await fetch(`${serve.url}/v2/${path}/referrers/${digest}`)).json()) as { manifests: Array<{ artifactType?: string }> };
      for (const m of body.manifests) found.add(m.artifactType ?? '');
    }
    for (const type of ['application/vnd.cncf.notary.signature', 'application/vnd.dev.cosign.artifact.sig.v1+json', 'application/vnd.dev.sigstore.bundle.v0.3+json']) {
      assert.ok(found.has(type), `${type} among ${[...found].join(', ')}`);
    }
  });
});

test('DELETE by digest or tag removes only what the repository names: never another repository\'s signatures, never a manifest an image lists', async (t) => {
  const dir = scratch('gadget-serve-delete-');
  (await fixtureStore(dir))!.close();
  const serve = await startServe(join(dir, 'fixture-store'));
  t.after(() => serve.stop());
  const legacy = 'ttl.sh/signed_with_cosign_legacy';
  const bundled = 'ttl.sh/signed_with_cosign_bundle';
  const head = async (path: string): Promise<Response> => fetch(`${serve.url}/v2/${path}`, { method: 'HEAD', headers: { Accept: ACCEPT } });
  const del = async (path: string): Promise<{ status: number; code?: string }> => {
    const res = await fetch(`${serve.url}/v2/${path}`, { method: 'DELETE' });
    const body = (await res.json().catch(() => undefined)) as { errors?: Array<{ code: string }> } | undefined;
    return { status: res.status, code: body?.errors?.[0]?.code };
  };
  const image = (await head(`${bundled}/manifests/latest`)).headers.get('docker-content-digest')!;
  const referrers = async (): Promise<string[]> => ((await (await fetch(`${serve.url}/v2/${bundled}/referrers/${image}`)).json()) as { manifests: Array<{ digest: string; artifactType?: string }> }).manifests.filter((m) => m.artifactType === 'application/vnd.dev.sigstore.bundle.v0.3+json').map((m) => m.digest);
  const [bundle] = await referrers();
  assert.ok(bundle, 'the bundle image has a Sigstore bundle referrer');

  assert.deepEqual(await del(`no/such/manifests/${bundle}`), { status: 404, code: 'NAME_UNKNOWN' }, 'an unknown repository deletes nothing');
  assert.deepEqual(await del(`${legacy}/manifests/${bundle}`), { status: 404, code: 'MANIFEST_UNKNOWN' }, "another repository does not name the bundle's signature");
  assert.deepEqual(await referrers(), [bundle], 'the signature is still there');

  const legacyImage = (await head(`${legacy}/manifests/latest`)).headers.get('docker-content-digest')!;
  const sigTag = `sha256-${legacyImage.slice(7)}.sig`;
  assert.deepEqual(await del(`${bundled}/manifests/${sigTag}`), { status: 404, code: 'MANIFEST_UNKNOWN' }, "a cosign tag is its image's repository's only");
  const sig = (await head(`${legacy}/manifests/${sigTag}`)).headers.get('docker-content-digest')!;
  assert.equal((await del(`${legacy}/manifests/${sigTag}`)).status, 202, "the legacy signature, by its tag, in its image's repository");
  const tags = ((await (await fetch(`${serve.url}/v2/${legacy}/tags/list`)).json()) as { tags: string[] }).tags;
  assert.ok(!tags.includes(sigTag), 'its tag is gone from the list');
  assert.equal((await head(`${legacy}/manifests/${sig}`)).status, 404, 'and the manifest with it');

  // A signature of an image another repository tags too is theirs as well: neither may delete it.
  const oci11 = 'ttl.sh/signed_with_cosign_oci11';
  const store = join(dir, 'fixture-store');
  assert.equal((await gadget(['--store', store, 'tag', `${oci11}:latest`, 'example.com/other/oci11:latest'])).code, 0);
  const oci11Image = (await head(`${oci11}/manifests/latest`)).headers.get('docker-content-digest')!;
  const shared = ((await (await fetch(`${serve.url}/v2/${oci11}/referrers/${oci11Image}`)).json()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest);
  assert.ok(shared.length > 0);
  for (const repo of ['example.com/other/oci11', oci11]) assert.deepEqual(await del(`${repo}/manifests/${shared[0]}`), { status: 409, code: 'DENIED' }, repo);
  assert.equal((await head(`${oci11}/manifests/${shared[0]}`)).status, 200, 'the shared signature stays');

  // A signature of the bundle signature, pushed by digest: deletable through the image's repository.
  const empty = Buffer.from('{}');
  assert.equal((await fetch(`${serve.url}/v2/${bundled}/blobs/uploads/?digest=sha256:${createHash('sha256').update(empty).digest('hex')}`, { method: 'POST', body: empty })).status, 201);
  const sigOfSig = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.example.countersign',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: `sha256:${createHash('sha256').update(empty).digest('hex')}`, size: 2 }, layers: [],
    subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: bundle, size: Number((await head(`${bundled}/manifests/${bundle}`)).headers.get('content-length')) },
  }));
  const counter = `sha256:${createHash('sha256').update(sigOfSig).digest('hex')}`;
  assert.equal((await fetch(`${serve.url}/v2/${bundled}/manifests/${counter}`, { method: 'PUT', body: sigOfSig, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } })).status, 201);
  assert.deepEqual(await del(`${legacy}/manifests/${counter}`), { status: 404, code: 'MANIFEST_UNKNOWN' }, 'not through another repository');
  assert.equal((await del(`${bundled}/manifests/${counter}`)).status, 202, "a signature's signature, through its image's repository");
  assert.equal((await head(`${bundled}/manifests/${counter}`)).status, 404);

  const index = (await (await fetch(`${serve.url}/v2/${legacy}/manifests/latest`, { headers: { Accept: ACCEPT } })).json()) as { manifests: Array<{ digest: string }> };
  const child = index.manifests[0]!.digest;
  assert.deepEqual(await del(`${legacy}/manifests/${child}`), { status: 409, code: 'DENIED' }, 'a manifest the image lists stays');
  assert.equal((await head(`${legacy}/manifests/${child}`)).status, 200);

  assert.equal((await del(`${bundled}/manifests/${bundle}`)).status, 202, 'the bundle, in its own repository');
  assert.deepEqual(await referrers(), [], 'the referrers API drops it');
  assert.equal((await head(`${bundled}/manifests/latest`)).status, 200, 'the image itself stays');
  // A referrer whose subject is not in the store, pushed into one repository: another deletes nothing.
  const dangling = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.example.dangling',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: `sha256:${createHash('sha256').update(empty).digest('hex')}`, size: 2 }, layers: [],
    subject: { mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 100 },
  }));
  const danglingDigest = `sha256:${createHash('sha256').update(dangling).digest('hex')}`;
  assert.equal((await fetch(`${serve.url}/v2/${oci11}/manifests/${danglingDigest}`, { method: 'PUT', body: dangling, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } })).status, 201);
  assert.deepEqual(await del(`${legacy}/manifests/${danglingDigest}`), { status: 404, code: 'MANIFEST_UNKNOWN' });
  assert.equal((await head(`${oci11}/manifests/${danglingDigest}`)).status, 200);
  const fsck = await gadget(['--store', store, 'fsck']);
  assert.equal(fsck.code, 0, `the store stays whole: ${fsck.stdout}`);
});

test('two servers on one store deleting the referrers of one image at once: each 202 is a referrer gone, the fallback index with them', async (t) => {
  const dir = scratch('gadget-serve-two-');
  const storeDir = join(dir, 'store');
  const s = await openStore(storeDir);
  const image = await writeImage(s, 'two-servers');
  await s.tag(image, 'example.com/two/x:v1');
  const empty = await s.putBytes(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json');
  const referrers: Descriptor[] = [];
  for (let i = 0; i < 10; i++) {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: `application/vnd.example.r${i}`, config: empty, layers: [], subject: image }));
    referrers.push({ ...(await s.putBytes(bytes, 'application/vnd.oci.image.manifest.v1+json')), artifactType: `application/vnd.example.r${i}` });
  }
  // The fallback tag index a client of a registry without the referrers API writes.
  const fallback = `sha256-${image.digest.slice(7)}`;
  await s.tag(await s.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: referrers })), 'application/vnd.oci.image.index.v1+json'), fallback);
  s.close();
  const servers = await Promise.all([startServe(storeDir), startServe(storeDir)]);
  t.after(() => Promise.all(servers.map((x) => x.stop())));
  const statuses = await Promise.all(referrers.map(async (r, i) => (await fetch(`${servers[i % 2]!.url}/v2/example.com/two/x/manifests/${r.digest}`, { method: 'DELETE' })).status));
  assert.deepEqual(statuses, referrers.map(() => 202), 'every DELETE succeeded');
  for (const server of servers) {
    const listed = (await (await fetch(`${server.url}/v2/example.com/two/x/referrers/${image.digest}`)).json()) as { manifests: unknown[] };
    assert.deepEqual(listed.manifests, [], 'no referrer is left');
  }
  const after = await openStore(storeDir);
  t.after(() => after.close());
  assert.throws(() => after.resolveRef(fallback), /is not in store/, 'the emptied fallback index lost its tag');
  const fsck = await gadget(['--store', storeDir, 'fsck']);
  assert.equal(fsck.code, 0, fsck.stdout);
});

test('DELETE: a manifest pushed by digest goes; a signature of a shared image\'s signature is refused; a referrer in two fallback indexes leaves both', async (t) => {
  const dir = scratch('gadget-serve-delete2-');
  const storeDir = join(dir, 'store');
  const s = await openStore(storeDir);
  const image = await writeImage(s, 'delete-two');
  await s.tag(image, 'example.com/del/a:v1');
  await s.tag(image, 'example.com/del/b:v1'); // the same image in a second repository
  const empty = await s.putBytes(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json');
  const referrer = async (subject: Descriptor, kind: string): Promise<Descriptor> =>
    ({ ...(await s.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: kind, config: empty, layers: [], subject })), 'application/vnd.oci.image.manifest.v1+json')), artifactType: kind });
  // R1 signs the image, R2 signs R1: both untagged entries, as serve keeps OCI 1.1 referrers.
  const r1 = await referrer(image, 'application/vnd.example.r1');
  const r2 = await referrer(r1, 'application/vnd.example.r2');
  s.close();
  const serve = await startServe(storeDir);
  t.after(() => serve.stop());
  const put = async (repo: string, bytes: Buffer, mediaType: string): Promise<string> => {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const res = await fetch(`${serve.url}/v2/${repo}/manifests/${digest}`, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'Content-Type': mediaType } });
    assert.equal(res.status, 201, await res.text());
    return digest;
  };
  const status = async (method: string, path: string): Promise<number> => (await fetch(`${serve.url}/v2/${path}`, { method, headers: { Accept: ACCEPT } })).status;
  const store = await openStore(storeDir);
  t.after(() => store.close());
  const bytesOf = async (d: Descriptor): Promise<Buffer> => store.readBytes(d);

  // Pushed by digest (no tag, no subject): its repository deletes it, another does not.
  const plain = await put('example.com/del/a', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.gadget.v1+binary', config: empty, layers: [] })), 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(await status('DELETE', `example.com/del/b/manifests/${plain}`), 404);
  assert.equal(await status('DELETE', `example.com/del/a/manifests/${plain}`), 202);
  assert.equal(await status('GET', `example.com/del/a/manifests/${plain}`), 404);

  // R1 and R2 pushed as referrers; R2 signs R1, which signs an image both repositories tag.
  await put('example.com/del/a', await bytesOf(r1), 'application/vnd.oci.image.manifest.v1+json');
  await put('example.com/del/a', await bytesOf(r2), 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(await status('DELETE', `example.com/del/a/manifests/${r2.digest}`), 409, "a signature's signature of a shared image is the other repository's too");
  assert.equal(await status('GET', `example.com/del/a/manifests/${r2.digest}`), 200);

  // A referrer of the child manifest listed in the fallback indexes of the image and of the child, in a repository of its own.
  const solo = await writeImage(store, 'delete-solo');
  await store.tag(solo, 'example.com/del/solo:v1');
  const soloChild = (await store.readJSON<{ manifests: Descriptor[] }>(solo)).manifests[0]!;
  const rd = { ...(await store.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.example.rd', config: empty, layers: [], subject: soloChild })), 'application/vnd.oci.image.manifest.v1+json')), artifactType: 'application/vnd.example.rd' };
  for (const of of [solo, soloChild]) {
    await store.tag(await store.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [rd] })), 'application/vnd.oci.image.index.v1+json'), `sha256-${of.digest.slice(7)}`);
  }
  assert.equal(await status('DELETE', `example.com/del/solo/manifests/${rd.digest}`), 202);
  assert.equal(await status('GET', `example.com/del/solo/manifests/${rd.digest}`), 404, 'gone, from both indexes');
  store.refreshIfChanged();
  for (const of of [solo, soloChild]) assert.throws(() => store.resolveRef(`sha256-${of.digest.slice(7)}`), /is not in store/, 'each emptied fallback index lost its tag');
  const fsck = await gadget(['--store', storeDir, 'fsck']);
  assert.equal(fsck.code, 0, fsck.stdout);
});

test('a signature tag is pushed only into the repository of the image it signs, and never drops what another repository of that image relies on', async (t) => {
  const dir = scratch('gadget-serve-sigtag-');
  (await fixtureStore(dir))!.close();
  const store = join(dir, 'fixture-store');
  const serve = await startServe(store);
  t.after(() => serve.stop());
  const legacy = 'ttl.sh/signed_with_cosign_legacy';
  const head = async (path: string): Promise<Response> => fetch(`${serve.url}/v2/${path}`, { method: 'HEAD', headers: { Accept: ACCEPT } });
  const image = (await head(`${legacy}/manifests/latest`)).headers.get('docker-content-digest')!;
  const sigTag = `sha256-${image.slice(7)}.sig`;
  const sig = (await head(`${legacy}/manifests/${sigTag}`)).headers.get('docker-content-digest')!;
  const verified = async (): Promise<void> => {
    const res = await gadget(['--store', join(dir, 'scratch-store'), 'verify', '--remote', `${serve.host}/${legacy}`, '--profile', 'ig', '--key', join(KEYS, 'cosign-good.pub'), '--require-signature']);
    assert.equal(res.code, 0, res.stdout + res.stderr);
  };

  // Another repository takes neither the image's cosign tag nor its fallback tag.
  await pushBlob(serve.url, 'evil/x', EMPTY);
  for (const tag of [sigTag, `sha256-${image.slice(7)}`]) {
    const got = await answer(await putManifest(serve.url, `evil/x/manifests/${tag}`, smallManifest()));
    assert.deepEqual([got.status, got.code], [403, 'DENIED'], JSON.stringify(got));
    assert.match(got.message ?? '', /is not an image of ghcr\.io\/evil\/x: push the signature into the repository of the image it signs/);
  }
  assert.equal((await head(`${legacy}/manifests/${sigTag}`)).headers.get('docker-content-digest'), sig, 'the signature tag is unchanged');
  await verified();

  // Tagged in a second repository too, the image has one signature tag for both: a push there
  // that drops the signature is refused; cosign's way, the old layers and one more, is taken.
  assert.equal((await gadget(['--store', store, 'tag', `${legacy}:latest`, 'example.com/other/legacy:latest'])).code, 0);
  const current = await fetch(`${serve.url}/v2/${legacy}/manifests/${sigTag}`, { headers: { Accept: ACCEPT } });
  const mediaType = current.headers.get('content-type')!;
  const old = (await current.json()) as { layers: unknown[] };
  const payload = Buffer.from('{"critical":{"identity":{},"image":{},"type":"cosign container image signature"}}');
  await pushBlob(serve.url, 'example.com/other/legacy', payload);
  const added = { mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: digestOf(payload), size: payload.length, annotations: { 'dev.cosignproject.cosign/signature': 'bm90IGEgc2lnbmF0dXJl' } };
  const dropping = await answer(await putManifest(serve.url, `example.com/other/legacy/manifests/${sigTag}`, Buffer.from(JSON.stringify({ ...old, layers: [added] })), mediaType));
  assert.deepEqual([dropping.status, dropping.code], [409, 'DENIED'], JSON.stringify(dropping));
  assert.match(dropping.message ?? '', /signs sha256:[0-9a-f]{64} in ttl\.sh\/signed_with_cosign_legacy too .* drops \d+ of the signature layers it holds/);
  const appended = Buffer.from(JSON.stringify({ ...old, layers: [...old.layers, added] }));
  const put = await putManifest(serve.url, `example.com/other/legacy/manifests/${sigTag}`, appended, mediaType);
  assert.equal(put.status, 201, await put.text());
  assert.equal((await head(`${legacy}/manifests/${sigTag}`)).headers.get('docker-content-digest'), digestOf(appended));
  await verified();

  // A shared fallback index replaced by a manifest whose layers are the index's referrers keeps
  // none of them for readers of the fallback tag: refused as dropping them all.
  const oci11 = 'ttl.sh/signed_with_cosign_oci11';
  assert.equal((await gadget(['--store', store, 'tag', `${oci11}:latest`, 'example.com/other/oci11:latest'])).code, 0);
  const subject = (await head(`${oci11}/manifests/latest`)).headers.get('docker-content-digest')!;
  const fallback = `sha256-${subject.slice(7)}`;
  const index = (await (await fetch(`${serve.url}/v2/${oci11}/manifests/${fallback}`, { headers: { Accept: ACCEPT } })).json()) as { manifests: unknown[] };
  assert.ok(index.manifests.length > 0, 'the fallback index lists referrers');
  await pushBlob(serve.url, 'example.com/other/oci11', EMPTY);
  const asManifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(EMPTY), size: EMPTY.length }, layers: index.manifests }));
  const swapped = await answer(await putManifest(serve.url, `example.com/other/oci11/manifests/${fallback}`, asManifest, 'application/vnd.oci.image.manifest.v1+json'));
  assert.deepEqual([swapped.status, swapped.code], [409, 'DENIED'], JSON.stringify(swapped));
  assert.match(swapped.message ?? '', /drops \d+ of the referrers it holds/);
});

describe('safe defaults, authentication, TLS, read-only, stopping', () => {
  test('another address than loopback needs TLS (or --insecure), and writes there need --htpasswd', async () => {
    const store = join(scratch(), 's');
    const tls = await gadget(['--store', store, 'serve', '--address', '0.0.0.0', '--port', '0']);
    assert.equal(tls.code, 2);
    assert.match(tls.stderr, /serving on 0\.0\.0\.0 needs TLS/);
    const auth = await gadget(['--store', store, 'serve', '--address', '0.0.0.0', '--port', '0', '--insecure']);
    assert.equal(auth.code, 2);
    assert.match(auth.stderr, /writes on 0\.0\.0\.0 need authentication/);
  });

  test('--max-manifest-size above what the store reads (4 MiB) is a usage error; a manifest over the limit is 413 and writes nothing', async () => {
    const dir = scratch();
    const big = await gadget(['--store', join(dir, 's'), 'serve', '--port', '0', '--max-manifest-size', '8MiB'], { killAfterMs: 20_000 });
    assert.equal(big.code, 2, big.stdout + big.stderr);
    assert.match(big.stderr, /--max-manifest-size 8388608 bytes is more than the store reads of a manifest: at most 4194304 bytes/);
    const serve = await startServe(join(dir, 's'), ['--max-manifest-size', '4MiB']);
    try {
      await pushBlob(serve.url, 'a/big', EMPTY);
      const manifest = smallManifest({ annotations: { pad: 'x'.repeat(4 * 1024 * 1024) } });
      const got = await answer(await putManifest(serve.url, 'a/big/manifests/v1', manifest));
      assert.deepEqual([got.status, got.code], [413, 'SIZE_INVALID'], JSON.stringify(got));
      assert.ok(!existsSync(join(dir, 's', 'blobs', 'sha256', digestOf(manifest).slice(7))), 'nothing written');
    } finally {
      await serve.stop();
    }
  });

  test('--htpasswd: no credentials is 401 with a Basic challenge; skopeo with them pushes', async () => {
    const dir = scratch();
    const { stdout } = await run('htpasswd', ['-Bbn', 'ci', 'secret-pw']);
    writeFileSync(join(dir, 'htpasswd'), stdout);
    const serve = await startServe(join(dir, 's'), ['--htpasswd', join(dir, 'htpasswd')]);
    try {
      const anonymous = await fetch(`${serve.url}/v2/`);
      assert.equal(anonymous.status, 401);
      assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic realm=/);
      const wrong = await fetch(`${serve.url}/v2/`, { headers: { Authorization: `Basic ${Buffer.from('ci:nope').toString('base64')}` } });
      assert.equal(wrong.status, 401);
      const ok = await fetch(`${serve.url}/v2/`, { headers: { Authorization: `Basic ${Buffer.from('ci:secret-pw').toString('base64')}` } });
      assert.equal(ok.status, 200);
      const examples = scratch();
      (await exampleStore(examples)).close();
      await skopeo(['copy', '--all', '--dest-tls-verify=false', '--dest-creds', 'ci:secret-pw', `oci:${join(examples, 'examples-store')}:${EXAMPLES.helloWasm}`, `docker://${serve.host}/${EXAMPLES.helloWasm}`]);
      assert.doesNotMatch(serve.stderr(), /secret-pw/, 'the password never reaches the log');
    } finally {
      await serve.stop();
    }
  });

  test('--tls-cert/--tls-key serve HTTPS', async () => {
    const dir = scratch();
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
    const serve = await startServe(join(dir, 's'), ['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')]);
    try {
      assert.match(serve.url, /^https:/);
      const status = await new Promise<number>((resolve, reject) => {
        request(`${serve.url}/v2/`, { ca: readFileSync(join(dir, 'cert.pem')) }, (res) => resolve(res.statusCode ?? 0)).on('error', reject).end();
      });
      assert.equal(status, 200);
    } finally {
      await serve.stop();
    }
  });

  test('--read-only serves pulls and refuses pushes with UNSUPPORTED', async () => {
    const dir = scratch();
    (await exampleStore(dir)).close();
    const serve = await startServe(join(dir, 'examples-store'), ['--read-only']);
    try {
      const path = EXAMPLES.traceOpen.replace(':v1', '');
      assert.equal((await fetch(`${serve.url}/v2/${path}/manifests/v1`, { headers: { Accept: ACCEPT } })).status, 200);
      const push = await fetch(`${serve.url}/v2/${path}/blobs/uploads/`, { method: 'POST' });
      assert.equal(push.status, 405);
      assert.equal(((await push.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'UNSUPPORTED');
      assert.equal((await fetch(`${serve.url}/v2/${path}/manifests/v1`, { method: 'DELETE' })).status, 405);
    } finally {
      await serve.stop();
    }
  });

  test('SIGTERM during an upload: exit 0, the upload\'s temporary file removed, fsck clean', async () => {
    const dir = scratch();
    const store = join(dir, 's');
    const serve = await startServe(store);
    const post = await fetch(`${serve.url}/v2/example.com/x/blobs/uploads/`, { method: 'POST' });
    const location = post.headers.get('location')!;
    assert.equal((await fetch(`${serve.url}${location}`, { method: 'PATCH', body: Buffer.alloc(1 << 20, 7), headers: { 'Content-Type': 'application/octet-stream' } })).status, 202);
    assert.ok(readdirSync(join(store, 'gadget-oci', 'tmp')).some((f) => f.includes('upload-')), 'the upload is in progress');
    assert.equal((await gadget(['--store', store, 'gc', '--grace', '0'])).code, 0);
    assert.ok(readdirSync(join(store, 'gadget-oci', 'tmp')).some((f) => f.includes('upload-')), 'gc leaves an upload in progress alone');
    assert.equal(await serve.stop(), 0);
    assert.deepEqual(readdirSync(join(store, 'gadget-oci', 'tmp')).filter((f) => f.includes('upload-')), []);
    const fsck = await gadget(['--store', store, 'fsck']);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
  });

  test('a SIGKILL in the middle of 8 pushes and pulls leaves the store fsck-clean, and the next server finishes them', async () => {
    const dir = scratch();
    (await exampleStore(dir)).close();
    const source = join(dir, 'examples-store');
    const store = join(dir, 'served');
    let serve = await startServe(store);
    const transfers = (host: string): Array<Promise<unknown>> =>
      Array.from({ length: 8 }, (_, i) =>
        i % 2 === 0
          ? skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${source}:${i % 4 === 0 ? EXAMPLES.traceOpen : EXAMPLES.helloWasm}`, `docker://${host}/example.com/k/g${i}:v1`]).catch((e: Error) => e)
          : skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${host}/${EXAMPLES.traceOpen}`, `oci:${join(dir, `pulled-${i}`)}:x`]).catch((e: Error) => e),
      );
    await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${source}:${EXAMPLES.traceOpen}`, `docker://${serve.host}/${EXAMPLES.traceOpen}`]);
    const first = transfers(serve.host);
    // Killed while an upload is in progress (its temporary file is there), not after a fixed
    // delay: on a quick machine every transfer may be done by then.
    const tmp = join(store, 'gadget-oci', 'tmp');
    for (let i = 0; i < 2000 && !(existsSync(tmp) && readdirSync(tmp).some((f) => f.includes('upload-'))); i++) await new Promise((r) => setTimeout(r, 5));
    serve.child.kill('SIGKILL');
    await serve.stop();
    assert.ok((await Promise.all(first)).some((r) => r instanceof Error), 'the kill interrupted transfers');
    const afterKill = await gadget(['--store', store, 'fsck']);
    assert.equal(afterKill.code, 0, afterKill.stdout + afterKill.stderr);
    serve = await startServe(store);
    try {
      const again = await Promise.all(transfers(serve.host));
      assert.deepEqual(again.filter((r) => r instanceof Error), [], 'every transfer completes on the next server');
    } finally {
      await serve.stop();
    }
    const fsck = await gadget(['--store', store, 'fsck']);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    const s = await openStore(store);
    try {
      assert.equal(s.list('example.com/k/*').length, 4);
    } finally {
      s.close();
    }
    assert.ok(existsSync(join(dir, 'pulled-1', 'index.json')));
  });
});

const OCTETS = { 'Content-Type': 'application/octet-stream' };

/** Waits for `check` (a hang guard of 30 s, not a timing assertion). */
async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what}: not after 30 s`);
}

/** A PATCH of `length` bytes whose body the test writes (and may cut off) itself. */
function openPatch(location: string, length: number): { req: ClientRequest; answer: Promise<{ status: number; range?: string }> } {
  const req = httpRequest(location, { method: 'PATCH', headers: { ...OCTETS, 'Content-Length': length } });
  const answer = new Promise<{ status: number; range?: string }>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, range: res.headers.range }));
    });
    req.on('error', reject);
  });
  req.flushHeaders();
  return { req, answer };
}

async function openUpload(serve: TestServe, repository = 'example.com/x'): Promise<string> {
  const post = await fetch(`${serve.url}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  assert.equal(post.status, 202);
  return `${serve.url}${post.headers.get('location')!}`;
}

async function rangeOf(location: string): Promise<string | null> {
  return (await fetch(location)).headers.get('range');
}

const uploadFiles = (store: string): string[] => {
  const tmp = join(store, 'gadget-oci', 'tmp');
  return existsSync(tmp) ? readdirSync(tmp).filter((f) => f.includes('upload-')) : [];
};

describe('uploads that misbehave', () => {
  test('idle uploads expire: their slots and temporary files are given back, a client cut off mid-PATCH included', async () => {
    const store = join(scratch(), 's');
    const serve = await startServe(store, ['--max-uploads', '2'], { GADGET_SERVE_UPLOAD_IDLE: '1' });
    try {
      const left = await openUpload(serve);
      assert.equal((await fetch(left, { method: 'PATCH', body: randomBytes(1000), headers: OCTETS })).status, 202);
      const cut = await openUpload(serve);
      const patch = openPatch(cut, 100_000);
      patch.req.write(randomBytes(1000));
      await until('the piece is being received', async () => (await rangeOf(cut)) !== '0-0');
      patch.req.destroy();
      await patch.answer.catch(() => undefined);
      await until('both uploads expired and their temporary files are removed', () => uploadFiles(store).length === 0);
      for (const gone of [left, cut]) {
        const res = await fetch(gone);
        assert.equal(res.status, 404);
        assert.equal(((await res.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'BLOB_UPLOAD_UNKNOWN');
      }
      await openUpload(serve);
      await openUpload(serve);
    } finally {
      await serve.stop();
    }
  });

  test('with every upload slot taken, 429 says in Retry-After when the first one expires', async () => {
    const serve = await startServe(join(scratch(), 's'), ['--max-uploads', '1']);
    try {
      await openUpload(serve);
      const refused = await fetch(`${serve.url}/v2/example.com/x/blobs/uploads/`, { method: 'POST' });
      assert.equal(refused.status, 429);
      const wait = Number(refused.headers.get('retry-after'));
      assert.ok(wait > 60 && wait <= 15 * 60, `Retry-After ${wait}: an idle upload expires after 15 minutes`);
    } finally {
      await serve.stop();
    }
  });

  test('a second PATCH while the first is still arriving is refused (416), and the first completes', async () => {
    const serve = await startServe(join(scratch(), 's'));
    try {
      const at = await openUpload(serve);
      const blob = randomBytes(256 * 1024);
      const first = openPatch(at, blob.length);
      first.req.write(blob.subarray(0, 1000));
      await until('the first piece is being received', async () => (await rangeOf(at)) !== '0-0');
      const second = await fetch(at, { method: 'PATCH', body: Buffer.from('x'), headers: OCTETS });
      assert.equal(second.status, 416);
      first.req.end(blob.subarray(1000));
      assert.deepEqual(await first.answer, { status: 202, range: `0-${blob.length - 1}` });
      assert.equal((await fetch(`${at}?digest=${digestOf(blob)}`, { method: 'PUT' })).status, 201);
      assert.deepEqual(Buffer.from(await (await fetch(`${serve.url}/v2/example.com/x/blobs/${digestOf(blob)}`)).arrayBuffer()), blob);
    } finally {
      await serve.stop();
    }
  });

  test('a PATCH cut off by its client leaves the upload as it was before it', async () => {
    const serve = await startServe(join(scratch(), 's'));
    try {
      const at = await openUpload(serve);
      const blob = randomBytes(5000);
      assert.equal((await fetch(at, { method: 'PATCH', body: blob.subarray(0, 1000), headers: OCTETS })).status, 202);
      const cut = openPatch(at, 100_000);
      cut.req.write(randomBytes(2000));
      await until('the piece is being received', async () => (await rangeOf(at)) !== '0-999');
      cut.req.destroy();
      await cut.answer.catch(() => undefined);
      await until('the cut piece is dropped', async () => (await rangeOf(at)) === '0-999');
      const rest = await fetch(at, { method: 'PATCH', body: blob.subarray(1000), headers: { ...OCTETS, 'Content-Range': `1000-${blob.length - 1}` } });
      assert.equal(rest.status, 202);
      assert.equal((await fetch(`${at}?digest=${digestOf(blob)}`, { method: 'PUT' })).status, 201);
    } finally {
      await serve.stop();
    }
  });

  test('a piece past --max-upload-size is 413 SIZE_INVALID and the upload stays as it was', async () => {
    const serve = await startServe(join(scratch(), 's'), ['--max-upload-size', '1KiB']);
    try {
      const at = await openUpload(serve);
      const blob = randomBytes(1024);
      assert.equal((await fetch(at, { method: 'PATCH', body: blob.subarray(0, 600), headers: { ...OCTETS, 'Content-Range': '0-599' } })).status, 202);
      const over = await fetch(at, { method: 'PATCH', body: randomBytes(600), headers: { ...OCTETS, 'Content-Range': '600-1199' } });
      assert.equal(over.status, 413);
      assert.equal(((await over.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'SIZE_INVALID');
      assert.equal(await rangeOf(at), '0-599');
      assert.equal((await fetch(at, { method: 'PATCH', body: blob.subarray(600), headers: { ...OCTETS, 'Content-Range': '600-1023' } })).status, 202);
      assert.equal((await fetch(`${at}?digest=${digestOf(blob)}`, { method: 'PUT' })).status, 201);
    } finally {
      await serve.stop();
    }
  });
});

test('a blob reused by a cross-repository mount or a HEAD is young again: a default-grace gc before the manifest spares it', async (t) => {
  const dir = scratch('gadget-serve-reuse-');
  const store = join(dir, 'store');
  const serve = await startServe(store);
  t.after(() => serve.stop());
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = randomBytes(5000);
  const unused = randomBytes(100);
  for (const blob of [config, layer, unused]) await pushBlob(serve.url, 'a/img', blob);
  // Stored an hour ago and named by nothing: gc's default --grace (300 s) no longer spares them.
  const hourAgo = new Date(Date.now() - 3600_000);
  for (const blob of [config, layer, unused]) utimesSync(join(store, 'blobs', 'sha256', digestOf(blob).slice(7)), hourAgo, hourAgo);
  const mount = await fetch(`${serve.url}/v2/b/img/blobs/uploads/?mount=${digestOf(config)}&from=a/img`, { method: 'POST' });
  assert.equal(mount.status, 201);
  assert.equal((await fetch(`${serve.url}/v2/b/img/blobs/${digestOf(layer)}`, { method: 'HEAD' })).status, 200, 'skopeo\'s way to find a blob it need not push');
  const gc = await gadget(['--store', store, 'gc']);
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, /removed 1 blobs/, 'the blob nobody reused goes');
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length }],
  }));
  const put = await putManifest(serve.url, 'b/img/manifests/v1', manifest);
  assert.equal(put.status, 201, await put.text());
});

describe('a damaged store', () => {
  test('a blob whose file holds other bytes is never served as whole: a small one is a 500 that names it, a large one is cut off', async () => {
    const store = join(scratch(), 's');
    const serve = await startServe(store);
    try {
      const small = randomBytes(1000);
      const large = randomBytes(3 * 1024 * 1024 + 5);
      const url = (b: Buffer): string => `${serve.url}/v2/example.com/damaged/blobs/${digestOf(b)}`;
      for (const blob of [small, large]) {
        const push = await fetch(`${serve.url}/v2/example.com/damaged/blobs/uploads/?digest=${digestOf(blob)}`, { method: 'POST', body: blob, headers: OCTETS });
        assert.equal(push.status, 201);
      }
      assert.deepEqual(Buffer.from(await (await fetch(url(large))).arrayBuffer()), large, 'a sound large blob is sent whole');
      for (const blob of [small, large]) {
        const file = join(store, 'blobs', 'sha256', digestOf(blob).slice(7));
        chmodSync(file, 0o644);
        writeFileSync(file, randomBytes(blob.length));
      }
      const bad = await fetch(url(small));
      assert.equal(bad.status, 500);
      const error = ((await bad.json()) as { errors: Array<{ code: string; message: string }> }).errors[0]!;
      assert.equal(error.code, 'UNKNOWN');
      assert.match(error.message, new RegExp(`${digestOf(small)} in the store is corrupt.*gadget fsck`));
      await assert.rejects(async () => (await fetch(url(large))).arrayBuffer(), 'the body of a large damaged blob ends early');
    } finally {
      await serve.stop();
    }
  });
});

test('serve() as a task step: build, then serve until Ctrl-C', async () => {
  const dir = scratch('gadget-serve-step-');
  writeFileSync(
    join(dir, 'gadget.config.ts'),
    `import { defineConfig, build, serve } from '${join(REPO, 'index.ts')}';
export default defineConfig({
  store: 'store',
  gadgets: [{ dir: '${join(REPO, 'examples', 'hello_wasm')}', ref: 'example.com/step/hello:v1' }],
  tasks: { demo: { steps: [build(), serve({ port: 0 })] } },
});
`,
  );
  const child = spawnGadget(['--json', 'run', 'demo'], { cwd: dir, env: { XDG_CACHE_HOME: join(dir, 'cache') } });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no serve line: ${stderr}`)), 60_000);
    child.stderr!.on('data', () => {
      const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  const catalog = (await (await fetch(`${url}/v2/_catalog`)).json()) as { repositories: string[] };
  assert.deepEqual(catalog.repositories, ['example.com/step/hello']);
  child.kill('SIGINT');
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  assert.equal(code, 0, `a clean stop: ${stderr}`);
});

describe('names: what the server lists is what it reads', () => {
  test('?ns= with a port is NAME_INVALID for a push, a pull and the tag list, and writes nothing', async (t) => {
    const dir = scratch('gadget-serve-ns-');
    const serve = await startServe(join(dir, 'store'));
    t.after(() => serve.stop());
    await pushBlob(serve.url, 'x', EMPTY);
    const manifest = smallManifest();
    for (const res of [
      await putManifest(serve.url, 'x/manifests/v1?ns=localhost:5000', manifest),
      await fetch(`${serve.url}/v2/x/manifests/v1?ns=localhost:5000`, { headers: { Accept: ACCEPT } }),
      await fetch(`${serve.url}/v2/x/tags/list?ns=localhost:5000`),
    ]) {
      const got = await answer(res);
      assert.equal(got.status, 400, JSON.stringify(got));
      assert.equal(got.code, 'NAME_INVALID');
      assert.match(got.message ?? '', /\?ns=localhost:5000 names a registry with a port/);
    }
    const listed = JSON.parse((await gadget(['--store', join(dir, 'store'), 'list', '--json'])).stdout || '[]') as Array<{ ref: string }>;
    assert.deepEqual(listed.map((i) => i.ref), [], 'nothing was tagged');
    // A namespace without a port is read and listed alike.
    assert.equal((await putManifest(serve.url, 'x/manifests/v1?ns=example.com', manifest)).status, 201);
    assert.deepEqual(await (await fetch(`${serve.url}/v2/x/tags/list?ns=example.com`)).json(), { name: 'x', tags: ['v1'] });
    assert.equal((await fetch(`${serve.url}/v2/x/manifests/v1?ns=example.com`, { headers: { Accept: ACCEPT } })).status, 200);
  });
  test('a short tag another tool wrote (skopeo\'s oci:STORE:g0001) is pulled, by skopeo, under the name the catalog lists it by, and deleted under it', async (t) => {
    const dir = scratch('gadget-serve-short-');
    const store = join(dir, 'store');
    const signed = 'ttl.sh/signed_with_cosign_oci11:latest';
    await skopeo(['copy', '--all', `oci:${FIXTURE_LAYOUT}:${signed}`, `oci:${store}:g0001`]);
    const digest = indexDigest(FIXTURE_LAYOUT, signed);
    const serve = await startServe(store);
    t.after(() => serve.stop());
    const full = 'ghcr.io/inspektor-gadget/gadget/g0001';
    assert.deepEqual(await (await fetch(`${serve.url}/v2/_catalog`)).json(), { repositories: [full] });
    for (const name of [full, 'g0001']) {
      assert.deepEqual(await (await fetch(`${serve.url}/v2/${name}/tags/list`)).json(), { name, tags: ['latest'] });
      const got = await fetch(`${serve.url}/v2/${name}/manifests/latest`, { headers: { Accept: ACCEPT } });
      assert.equal(got.status, 200, `${name}: ${await got.text()}`);
      assert.equal(got.headers.get('docker-content-digest'), digest);
      assert.equal((await fetch(`${serve.url}/v2/${name}/manifests/${digest}`, { method: 'HEAD', headers: { Accept: ACCEPT } })).status, 200, 'by digest too');
    }
    const out = join(dir, 'out');
    await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${serve.host}/g0001:latest`, `oci:${out}:g0001`]);
    assert.equal(indexDigest(out, 'g0001'), digest, 'skopeo pulls the same image');
    assert.equal((await fetch(`${serve.url}/v2/g0001/manifests/latest`, { method: 'DELETE' })).status, 202);
    assert.equal((await answer(await fetch(`${serve.url}/v2/${full}/tags/list`))).code, 'NAME_UNKNOWN', 'the tag is gone from the list');
    assert.ok(!readFileSync(join(store, 'index.json'), 'utf8').includes('"g0001"'), 'and from index.json');
  });
});
