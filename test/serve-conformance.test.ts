// The distribution spec's pull, push, content-discovery and content-management workflows,
// walked against `gadget serve` and, in the same run, against Debian's docker-registry 2.8 for
// the parts it implements (it has no referrers API, ignores n/last, refuses DELETE by tag and
// answers a monolithic POST with 202). Each check asserts status codes, headers and error codes.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { startServe, type TestServe } from './helpers/serve.js';
import { scratch } from './helpers/paths.js';
import { join } from 'node:path';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const ACCEPT = `${OCI_INDEX}, ${OCI_MANIFEST}`;

interface Parts {
  monolithicPost: boolean;
  /** A PATCH whose Content-Range does not continue the upload is refused (416). */
  rangeCheck: boolean;
  pagination: boolean;
  referrers: boolean;
  deleteByTag: boolean;
  /** A manifest that names a blob with another size than the blob's is refused (MANIFEST_INVALID). */
  sizeCheck: boolean;
  /** `{}` as a manifest and a child digest that is not sha256 are refused as invalid (docker-registry answers 500). */
  manifestChecks: boolean;
  /** A repository never pushed to is NAME_UNKNOWN (docker-registry: MANIFEST_UNKNOWN, BLOB_UNKNOWN). */
  nameUnknown: boolean;
}

const digestOf = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json().catch(() => undefined)) as { errors?: Array<{ code: string }> } | undefined;
  return body?.errors?.[0]?.code;
}

function conformance(name: string, base: () => string, parts: Parts): void {
  const repo = 'example.com/conformance/one';
  const other = 'example.com/conformance/two';
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layerA = Buffer.from('first chunk of a layer|');
  const layerB = Buffer.from('second chunk of a layer');
  const layer = Buffer.concat([layerA, layerB]);
  const url = (path: string): string => `${base()}${path}`;
  const abs = (location: string): string => (location.startsWith('http') ? location : url(location));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length }],
  }));

  describe(`${name}: pull and push`, () => {
    test('GET /v2/ answers 200', async () => {
      assert.equal((await fetch(url('/v2/'))).status, 200);
    });

    test('monolithic upload: POST, then PUT with the body and the digest', async () => {
      const post = await fetch(url(`/v2/${repo}/blobs/uploads/`), { method: 'POST' });
      assert.equal(post.status, 202);
      const location = post.headers.get('location');
      assert.ok(location, 'Location');
      const put = await fetch(`${abs(location!)}${location!.includes('?') ? '&' : '?'}digest=${digestOf(config)}`, { method: 'PUT', body: config, headers: { 'Content-Type': 'application/octet-stream' } });
      assert.equal(put.status, 201);
      assert.equal(put.headers.get('docker-content-digest'), digestOf(config));
      assert.ok(put.headers.get('location'));
    });

    if (parts.monolithicPost) {
      test('monolithic upload in one POST with the digest', async () => {
        const blob = Buffer.from('one POST');
        const res = await fetch(url(`/v2/${repo}/blobs/uploads/?digest=${digestOf(blob)}`), { method: 'POST', body: blob, headers: { 'Content-Type': 'application/octet-stream' } });
        assert.equal(res.status, 201);
        assert.equal((await fetch(url(`/v2/${repo}/blobs/${digestOf(blob)}`), { method: 'HEAD' })).status, 200);
      });
    }

    test(`chunked upload: POST, PATCH, PATCH, PUT${parts.rangeCheck ? '; a chunk out of order is 416' : ''}`, async () => {
      const post = await fetch(url(`/v2/${repo}/blobs/uploads/`), { method: 'POST' });
      assert.equal(post.status, 202);
      let location = abs(post.headers.get('location')!);
      const first = await fetch(location, { method: 'PATCH', body: layerA, headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${layerA.length - 1}` } });
      assert.equal(first.status, 202);
      assert.equal(first.headers.get('range'), `0-${layerA.length - 1}`);
      location = abs(first.headers.get('location')!);
      if (parts.rangeCheck) {
        const wrong = await fetch(location, { method: 'PATCH', body: layerB, headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${layerB.length - 1}` } });
        assert.equal(wrong.status, 416);
        const longer = await fetch(location, { method: 'PATCH', body: layerB, headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${layerA.length}-${layer.length + 9}` } });
        assert.equal(longer.status, 416, 'a piece of another length than its Content-Range');
      }
      const status = await fetch(location);
      assert.equal(status.status, 204);
      assert.equal(status.headers.get('range'), `0-${layerA.length - 1}`, 'the rejected chunk changed nothing');
      const second = await fetch(abs(status.headers.get('location') ?? location), { method: 'PATCH', body: layerB, headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${layerA.length}-${layer.length - 1}` } });
      assert.equal(second.status, 202);
      location = abs(second.headers.get('location')!);
      const put = await fetch(`${location}${location.includes('?') ? '&' : '?'}digest=${digestOf(layer)}`, { method: 'PUT' });
      assert.equal(put.status, 201);
      assert.equal(put.headers.get('docker-content-digest'), digestOf(layer));
    });

    test('an upload whose bytes do not match the digest is refused with DIGEST_INVALID', async () => {
      const post = await fetch(url(`/v2/${repo}/blobs/uploads/`), { method: 'POST' });
      const location = abs(post.headers.get('location')!);
      const put = await fetch(`${location}${location.includes('?') ? '&' : '?'}digest=${digestOf('something else')}`, { method: 'PUT', body: Buffer.from('these bytes'), headers: { 'Content-Type': 'application/octet-stream' } });
      assert.equal(put.status, 400);
      assert.equal(await errorCode(put), 'DIGEST_INVALID');
      assert.equal((await fetch(url(`/v2/${repo}/blobs/${digestOf('something else')}`), { method: 'HEAD' })).status, 404);
    });

    test('blobs: HEAD and GET with headers, Range, and BLOB_UNKNOWN', async () => {
      const head = await fetch(url(`/v2/${repo}/blobs/${digestOf(layer)}`), { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(layer.length));
      assert.equal(head.headers.get('docker-content-digest'), digestOf(layer));
      const get = await fetch(url(`/v2/${repo}/blobs/${digestOf(layer)}`));
      assert.deepEqual(Buffer.from(await get.arrayBuffer()), layer);
      const ranged = await fetch(url(`/v2/${repo}/blobs/${digestOf(layer)}`), { headers: { Range: 'bytes=6-10' } });
      assert.equal(ranged.status, 206);
      assert.equal(ranged.headers.get('content-range'), `bytes 6-10/${layer.length}`);
      assert.equal(Buffer.from(await ranged.arrayBuffer()).toString(), layer.subarray(6, 11).toString());
      const missing = await fetch(url(`/v2/${repo}/blobs/${digestOf('absent')}`));
      assert.equal(missing.status, 404);
      assert.equal(await errorCode(missing), 'BLOB_UNKNOWN');
    });

    test('cross-repository mount answers 201 with the blob\'s location', async () => {
      const res = await fetch(url(`/v2/${other}/blobs/uploads/?mount=${digestOf(layer)}&from=${repo}`), { method: 'POST' });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('docker-content-digest'), digestOf(layer));
      assert.equal((await fetch(url(`/v2/${other}/blobs/${digestOf(layer)}`), { method: 'HEAD' })).status, 200);
    });

    test('manifests: PUT by tag, GET by tag and digest, MANIFEST_UNKNOWN, MANIFEST_BLOB_UNKNOWN', async () => {
      const put = await fetch(url(`/v2/${repo}/manifests/v1`), { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST } });
      assert.equal(put.status, 201);
      assert.equal(put.headers.get('docker-content-digest'), digestOf(manifest));
      for (const ref of ['v1', digestOf(manifest)]) {
        const get = await fetch(url(`/v2/${repo}/manifests/${ref}`), { headers: { Accept: ACCEPT } });
        assert.equal(get.status, 200);
        assert.equal(get.headers.get('content-type'), OCI_MANIFEST);
        assert.equal(get.headers.get('docker-content-digest'), digestOf(manifest));
        assert.deepEqual(Buffer.from(await get.arrayBuffer()), manifest);
      }
      const head = await fetch(url(`/v2/${repo}/manifests/v1`), { method: 'HEAD', headers: { Accept: ACCEPT } });
      assert.equal(head.headers.get('content-length'), String(manifest.length));
      const unknown = await fetch(url(`/v2/${repo}/manifests/nope`), { headers: { Accept: ACCEPT } });
      assert.equal(unknown.status, 404);
      assert.equal(await errorCode(unknown), 'MANIFEST_UNKNOWN');
      const dangling = Buffer.from(JSON.stringify({ ...JSON.parse(manifest.toString()), layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf('never pushed'), size: 12 }] }));
      const bad = await fetch(url(`/v2/${repo}/manifests/dangling`), { method: 'PUT', body: dangling, headers: { 'Content-Type': OCI_MANIFEST } });
      assert.equal(bad.status, 400);
      assert.equal(await errorCode(bad), 'MANIFEST_BLOB_UNKNOWN');
      const wrongSize = Buffer.from(JSON.stringify({ ...JSON.parse(manifest.toString()), layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length - 1 }] }));
      const sized = await fetch(url(`/v2/${repo}/manifests/wrong-size`), { method: 'PUT', body: wrongSize, headers: { 'Content-Type': OCI_MANIFEST } });
      if (parts.sizeCheck) {
        assert.equal(sized.status, 400);
        assert.equal(await errorCode(sized), 'MANIFEST_INVALID');
        assert.equal((await fetch(url(`/v2/${repo}/manifests/wrong-size`), { method: 'HEAD', headers: { Accept: ACCEPT } })).status, 404, 'nothing tagged');
      } else {
        assert.equal(sized.status, 201, 'docker-registry 2.8 checks that a child exists, not its size');
      }
    });

    test('a manifest that is not what its Content-Type or mediaType says, or names no valid child, is refused and nothing is tagged', async () => {
      const doc = JSON.parse(manifest.toString()) as Record<string, unknown>;
      const cases: Array<[string, string, unknown, string | undefined]> = [
        ['a manifest sent as an index', OCI_INDEX, { ...doc, annotations: { 'org.example.case': 'refused' } }, 'MANIFEST_INVALID'],
        ['an index sent as a manifest', OCI_MANIFEST, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }, 'MANIFEST_INVALID'],
        ['an index whose manifests are not a list', OCI_INDEX, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: { a: 1 } }, 'MANIFEST_INVALID'],
        ['an index body labelled a manifest in its mediaType', OCI_MANIFEST, { schemaVersion: 2, mediaType: OCI_MANIFEST, manifests: [] }, parts.manifestChecks ? 'MANIFEST_INVALID' : undefined],
        ['{}', OCI_MANIFEST, {}, parts.manifestChecks ? 'MANIFEST_INVALID' : undefined],
        ['a config digest that is a path', OCI_MANIFEST, { ...doc, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'sha256:../../etc/passwd', size: 1 } }, parts.manifestChecks ? 'DIGEST_INVALID' : undefined],
        ['a layer that is not a descriptor', OCI_MANIFEST, { ...doc, layers: [{ digest: 42 }] }, parts.manifestChecks ? 'MANIFEST_INVALID' : undefined],
      ];
      for (const [what, contentType, body, code] of cases) {
        if (!code) continue;
        const res = await fetch(url(`/v2/${repo}/manifests/refused`), { method: 'PUT', body: JSON.stringify(body), headers: { 'Content-Type': contentType } });
        assert.equal(res.status, 400, what);
        const text = await res.text();
        assert.equal((JSON.parse(text) as { errors: Array<{ code: string }> }).errors[0]!.code, code, `${what}: ${text}`);
        assert.doesNotMatch(text, /Cannot read|is not iterable|undefined|TypeError/, `${what}: no JavaScript internals`);
        assert.equal((await fetch(url(`/v2/${repo}/manifests/refused`), { method: 'HEAD', headers: { Accept: ACCEPT } })).status, 404, `${what}: nothing tagged`);
        assert.equal((await fetch(url(`/v2/${repo}/manifests/${digestOf(JSON.stringify(body))}`), { method: 'HEAD', headers: { Accept: ACCEPT } })).status, 404, `${what}: nothing stored`);
      }
    });

    test('a method an endpoint does not take is 405 with Allow', async () => {
      const post = await fetch(url(`/v2/${repo}/manifests/v1`), { method: 'POST', headers: { Accept: ACCEPT } });
      assert.equal(post.status, 405);
      assert.match(post.headers.get('allow') ?? '', /GET/);
      assert.doesNotMatch(post.headers.get('allow') ?? '', /POST/);
      const patch = await fetch(url(`/v2/${repo}/blobs/${digestOf(layer)}`), { method: 'PATCH', body: 'x' });
      assert.equal(patch.status, 405);
      assert.match(patch.headers.get('allow') ?? '', /GET/);
      assert.doesNotMatch(patch.headers.get('allow') ?? '', /PATCH/);
    });

    test(`a repository never pushed to is 404${parts.nameUnknown ? ' NAME_UNKNOWN' : ''}, even for a digest the registry holds`, async () => {
      for (const path of [`manifests/${digestOf(manifest)}`, `blobs/${digestOf(layer)}`, 'manifests/v1']) {
        const res = await fetch(url(`/v2/example.com/conformance/never/${path}`), { headers: { Accept: ACCEPT } });
        assert.equal(res.status, 404, path);
        if (parts.nameUnknown) assert.equal(await errorCode(res), 'NAME_UNKNOWN', path);
        else await res.arrayBuffer();
      }
    });

    test('an index of the manifest is served as an index', async () => {
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: digestOf(manifest), size: manifest.length, platform: { architecture: 'amd64', os: 'linux' } }] }));
      assert.equal((await fetch(url(`/v2/${repo}/manifests/multi`), { method: 'PUT', body: index, headers: { 'Content-Type': OCI_INDEX } })).status, 201);
      const get = await fetch(url(`/v2/${repo}/manifests/multi`), { headers: { Accept: ACCEPT } });
      assert.equal(get.headers.get('content-type'), OCI_INDEX);
    });
  });

  describe(`${name}: content discovery`, () => {
    test('tags/list lists the repository\'s tags', async () => {
      const res = await fetch(url(`/v2/${repo}/tags/list`));
      assert.equal(res.status, 200);
      const body = (await res.json()) as { tags: string[] };
      assert.ok(['multi', 'v1'].every((t) => body.tags.includes(t)), JSON.stringify(body));
    });

    if (parts.pagination) {
      test('tags/list and the catalog page with n, last and Link', async () => {
        const first = await fetch(url(`/v2/${repo}/tags/list?n=1`));
        assert.deepEqual(((await first.json()) as { tags: string[] }).tags, ['multi']);
        const link = first.headers.get('link');
        assert.match(link ?? '', /<\/v2\/.+\/tags\/list\?n=1&last=multi>; rel="next"/);
        const second = await fetch(url(/<([^>]+)>/.exec(link!)![1]!));
        assert.deepEqual(((await second.json()) as { tags: string[] }).tags, ['v1']);
        // containerd's mirror requests name the upstream registry in ?ns=: the next page does too.
        const mirrored = await fetch(url(`/v2/${repo.replace('example.com/', '')}/tags/list?ns=example.com&n=1`));
        assert.deepEqual(((await mirrored.json()) as { tags: string[] }).tags, ['multi']);
        const mirroredNext = await fetch(url(/<([^>]+)>/.exec(mirrored.headers.get('link') ?? '')?.[1] ?? '/no-link'));
        assert.equal(mirroredNext.status, 200, 'the Link keeps ns');
        assert.deepEqual(((await mirroredNext.json()) as { tags: string[] }).tags, ['v1']);
        assert.equal((await fetch(url(`/v2/${other}/manifests/listed`), { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST } })).status, 201);
        const catalog = await fetch(url('/v2/_catalog?n=1'));
        assert.equal(((await catalog.json()) as { repositories: string[] }).repositories.length, 1);
        assert.match(catalog.headers.get('link') ?? '', /rel="next"/);
      });
    }

    test('the catalog lists the repositories', async () => {
      const body = (await (await fetch(url('/v2/_catalog'))).json()) as { repositories: string[] };
      assert.ok(body.repositories.includes(repo), JSON.stringify(body));
    });

    if (parts.referrers) {
      test('referrers: a manifest with a subject is listed, filtered by artifactType', async () => {
        const empty = Buffer.from('{}');
        assert.equal((await fetch(url(`/v2/${repo}/blobs/uploads/?digest=${digestOf(empty)}`), { method: 'POST', body: empty })).status, 201);
        const sig = Buffer.from(JSON.stringify({
          schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.signature',
          config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(empty), size: 2 }, layers: [],
          subject: { mediaType: OCI_MANIFEST, digest: digestOf(manifest), size: manifest.length },
          annotations: { 'org.example.kind': 'test' },
        }));
        const put = await fetch(url(`/v2/${repo}/manifests/${digestOf(sig)}`), { method: 'PUT', body: sig, headers: { 'Content-Type': OCI_MANIFEST } });
        assert.equal(put.status, 201);
        assert.equal(put.headers.get('oci-subject'), digestOf(manifest));
        const all = await fetch(url(`/v2/${repo}/referrers/${digestOf(manifest)}`));
        assert.equal(all.status, 200);
        assert.equal(all.headers.get('content-type'), OCI_INDEX);
        const listed = ((await all.json()) as { manifests: Array<{ digest: string; artifactType: string; annotations: Record<string, string> }> }).manifests;
        assert.deepEqual(listed.map((m) => [m.digest, m.artifactType, m.annotations['org.example.kind']]), [[digestOf(sig), 'application/vnd.example.signature', 'test']]);
        const filtered = await fetch(url(`/v2/${repo}/referrers/${digestOf(manifest)}?artifactType=application/vnd.other`));
        assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
        assert.deepEqual(((await filtered.json()) as { manifests: unknown[] }).manifests, []);
      });
    }
  });

  describe(`${name}: content management`, () => {
    if (parts.deleteByTag) {
      test('DELETE of a tag removes the tag', async () => {
        assert.equal((await fetch(url(`/v2/${repo}/manifests/multi`), { method: 'DELETE' })).status, 202);
        assert.equal((await fetch(url(`/v2/${repo}/manifests/multi`), { headers: { Accept: ACCEPT } })).status, 404);
      });
    }

    test('DELETE of a manifest by digest: its tag no longer resolves', async () => {
      for (const blob of [config, layer]) assert.equal((await fetch(url(`/v2/${other}/blobs/uploads/?mount=${digestOf(blob)}&from=${repo}`), { method: 'POST' })).status, 201);
      const put = await fetch(url(`/v2/${other}/manifests/gone`), { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST } });
      assert.equal(put.status, 201);
      assert.equal((await fetch(url(`/v2/${other}/manifests/${digestOf(manifest)}`), { method: 'DELETE' })).status, 202);
      assert.equal((await fetch(url(`/v2/${other}/manifests/gone`), { headers: { Accept: ACCEPT } })).status, 404);
    });

    if (parts.referrers) {
      test('DELETE of a referrer by digest: GET is then 404, the referrers API drops it, a second DELETE is 404', async () => {
        const empty = Buffer.from('{}');
        const sig = Buffer.from(JSON.stringify({
          schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.deleted',
          config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(empty), size: 2 }, layers: [],
          subject: { mediaType: OCI_MANIFEST, digest: digestOf(manifest), size: manifest.length },
        }));
        assert.equal((await fetch(url(`/v2/${repo}/manifests/${digestOf(sig)}`), { method: 'PUT', body: sig, headers: { 'Content-Type': OCI_MANIFEST } })).status, 201);
        const listed = async (): Promise<string[]> => ((await (await fetch(url(`/v2/${repo}/referrers/${digestOf(manifest)}`))).json()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest);
        assert.ok((await listed()).includes(digestOf(sig)));
        assert.equal((await fetch(url(`/v2/${repo}/manifests/${digestOf(sig)}`), { method: 'DELETE' })).status, 202);
        assert.equal((await fetch(url(`/v2/${repo}/manifests/${digestOf(sig)}`), { headers: { Accept: ACCEPT } })).status, 404);
        assert.ok(!(await listed()).includes(digestOf(sig)), 'the referrers API no longer lists it');
        const again = await fetch(url(`/v2/${repo}/manifests/${digestOf(sig)}`), { method: 'DELETE' });
        assert.equal(again.status, 404);
        assert.equal(await errorCode(again), 'MANIFEST_UNKNOWN');
        // A blob is no manifest to delete; the manifest that another tag still names stays.
        assert.equal((await fetch(url(`/v2/${repo}/manifests/${digestOf(config)}`), { method: 'DELETE' })).status, 404);
        assert.equal((await fetch(url(`/v2/${repo}/manifests/v1`), { headers: { Accept: ACCEPT } })).status, 200);
      });
    }
  });
}

let serve: TestServe;
let registry: TestRegistry;
before(async () => {
  [serve, registry] = await Promise.all([startServe(join(scratch('gadget-serve-conf-'), 'store')), startRegistry()]);
});
after(async () => {
  await serve?.stop();
  await registry?.stop();
});

conformance('gadget serve', () => serve.url, { monolithicPost: true, rangeCheck: true, pagination: true, referrers: true, deleteByTag: true, sizeCheck: true, manifestChecks: true, nameUnknown: true });
conformance('docker-registry 2.8', () => registry.url, { monolithicPost: false, rangeCheck: false, pagination: false, referrers: false, deleteByTag: false, sizeCheck: false, manifestChecks: false, nameUnknown: false });
