import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { openStore, type Store } from '../store/store.js';
import { fsck, gc } from '../store/maintenance.js';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { DigestVerifier, sha256 } from '../lib/oci/digest.js';
import { writeVerifiedFile } from '../store/files.js';
import { MT_INDEX, MT_MANIFEST, GADGET_ARTIFACT_TYPE, GADGET_CONFIG, GADGET_EBPF, ANN_REF_NAME } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';
import { scratch } from './helpers/paths.js';
import { putImage } from './helpers/images.js';

test('a new store is a plain OCI layout with ig-style tags', async () => {
  const dir = scratch();
  const store = await openStore(join(dir, 's'));
  const index = await putImage(store, 'one');
  await store.tag(index, 'myorg/one');
  const doc = JSON.parse(readFileSync(join(dir, 's', 'index.json'), 'utf8'));
  assert.equal(doc.schemaVersion, 2);
  assert.equal(doc.manifests.length, 1);
  assert.equal(doc.manifests[0].annotations[ANN_REF_NAME], 'ghcr.io/myorg/one:latest');
  assert.equal(readFileSync(join(dir, 's', 'oci-layout'), 'utf8'), '{"imageLayoutVersion":"1.0.0"}');
  assert.deepEqual(store.resolveRef('myorg/one').digest, index.digest);
  const [record] = store.list();
  assert.equal(record!.ref, 'ghcr.io/myorg/one:latest');
  assert.deepEqual(record!.platforms, ['linux/amd64', 'linux/arm64']);
  assert.equal(record!.artifactType, GADGET_ARTIFACT_TYPE);
  assert.equal(record!.title, 'one');
  store.close();
});

test('list filters by a glob on the reference', async () => {
  const store = await openStore(join(scratch(), 's'));
  for (const name of ['trace_exec', 'trace_open', 'top_file']) await store.tag(await putImage(store, name), name);
  await store.tag(await putImage(store, 'x'), 'localhost:5000/team/x:v1');
  assert.deepEqual(store.list('trace_*').map((r) => r.ref), [
    'ghcr.io/inspektor-gadget/gadget/trace_exec:latest',
    'ghcr.io/inspektor-gadget/gadget/trace_open:latest',
  ]);
  assert.deepEqual(store.list('localhost:5000/*').map((r) => r.ref), ['localhost:5000/team/x:v1']);
  // Classes, and their negation written as the shell writes it ([!...]) or as SQLite does ([^...]).
  for (const pattern of ['t[!re]*', 't[^re]*']) assert.deepEqual(store.list(pattern).map((r) => r.ref), ['ghcr.io/inspektor-gadget/gadget/top_file:latest'], pattern);
  assert.deepEqual(store.list('trace_[e]*').map((r) => r.ref), ['ghcr.io/inspektor-gadget/gadget/trace_exec:latest']);
  assert.equal(store.list().length, 4);
  assert.equal(store.list('nothing*').length, 0);
  store.close();
});

test('push verifies the digest while streaming and leaves nothing on a mismatch', async () => {
  const dir = join(scratch(), 's');
  const store = await openStore(dir);
  const data = Buffer.from('some layer bytes');
  const desc = { mediaType: GADGET_EBPF, digest: sha256(data), size: data.length };
  const bad = Buffer.from(data);
  bad[0] ^= 1;
  await assert.rejects(store.push(desc, Readable.from([bad])), /content has digest/);
  assert.equal(store.hasBlob(desc.digest), false);
  assert.deepEqual(readdirSync(store.tmpDir), [], 'no temporary file is left behind');
  await store.push(desc, Readable.from([data]));
  assert.ok(store.hasBlob(desc.digest));
  store.close();
});

test('pushBlob opens the source only for a blob the store lacks, and verifies what it writes', async () => {
  const store = await openStore(join(scratch(), 's'));
  const data = Buffer.from('an ebpf object');
  const desc = { mediaType: GADGET_EBPF, digest: sha256(data), size: data.length };
  const bad = Buffer.from(data);
  bad[0] ^= 1;
  let opened = 0;
  const open = (bytes: Buffer) => async () => (opened++, Readable.from([bytes]));
  await assert.rejects(store.pushBlob(desc, open(bad)), /content has digest/);
  assert.equal(store.hasBlob(desc.digest), false);
  assert.deepEqual(readdirSync(store.tmpDir), [], 'no temporary file is left behind');
  assert.equal(await store.pushBlob(desc, open(data)), 'copied');
  assert.ok(store.hasBlob(desc.digest));
  assert.equal(opened, 2);
  assert.equal(await store.pushBlob(desc, open(data)), 'skipped');
  assert.equal(opened, 2, 'a blob the store holds is not fetched again');
  // A file of another size under the digest's name is not the blob: it is written again.
  writeFileSync(store.blobPath(desc.digest), 'short');
  assert.equal(await store.pushBlob(desc, open(data)), 'copied');
  assert.deepEqual(readFileSync(store.blobPath(desc.digest)), data);
  store.close();
});

test('fsck --repair checks again under the lock: a blob a writer restored meanwhile, and its tag, are kept', async () => {
  const store = await openStore(join(scratch(), 's'));
  await store.tag(await putImage(store, 'kept'), 'myorg/kept:v1');
  const layer = Buffer.from('ebpf kept arm64'); // putImage's arm64 layer
  const digest = sha256(layer);
  const damaged = Buffer.from(layer);
  damaged[0] ^= 1;
  writeFileSync(store.blobPath(digest), damaged);
  // The scan hashes every blob first; when it is done, a writer (a pull of the same image)
  // puts the intact blob back, before fsck's repair starts.
  const problems = await fsck(store, {
    repair: true,
    onProgress: (done, total) => {
      if (done === total) writeFileSync(store.blobPath(digest), layer);
    },
  });
  const corrupt = problems.find((p) => p.kind === 'corrupt-blob');
  assert.equal(corrupt?.subject, digest, JSON.stringify(problems));
  assert.match(corrupt!.repaired ?? '', /^kept .*a writer stored it again meanwhile, intact$/);
  const tag = problems.find((p) => p.kind === 'dangling-tag');
  assert.match(tag?.repaired ?? '', /^kept ghcr\.io\/myorg\/kept:v1: a writer completed its image meanwhile$/, JSON.stringify(problems));
  assert.deepEqual(readFileSync(store.blobPath(digest)), layer);
  assert.equal(store.resolveRef('myorg/kept:v1').mediaType, MT_INDEX, 'the tag is still there');
  assert.deepEqual(await fsck(store), [], 'and the store is whole');
  store.close();
});

test('a download already checked against the same digest is stored without a second hash; any other is checked', async () => {
  const dir = scratch();
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const good = Buffer.from('the layer'.repeat(200_000)); // written in several batches
  const other = Buffer.from('another layer');
  const desc = (b: Buffer) => ({ digest: sha256(b), size: b.length });
  const checked = (b: Buffer, as: Buffer) => Readable.from([b]).pipe(new DigestVerifier(desc(as), 'download'));
  // Checked as the same digest: stored, byte for byte.
  await writeVerifiedFile(join(dir, 'a'), tmp, desc(good), checked(good, good), 'a');
  assert.deepEqual(readFileSync(join(dir, 'a')), good);
  // Checked as the same digest, but the bytes are wrong: the download's own check fails it.
  await assert.rejects(writeVerifiedFile(join(dir, 'b'), tmp, desc(good), checked(other, good), 'b'), /content has digest|got \d+ bytes/);
  // Checked against another digest: the store checks it against what it was asked to store.
  await assert.rejects(writeVerifiedFile(join(dir, 'c'), tmp, desc(good), checked(other, other), 'c'), /content has digest|got \d+ bytes/);
  assert.ok(!existsSync(join(dir, 'b')) && !existsSync(join(dir, 'c')), 'nothing stored on a mismatch');
  assert.deepEqual(readdirSync(tmp), [], 'no temporary file left');
});

test('cached values older than a date are forgotten, in their namespace only', async () => {
  const store = await openStore(join(scratch(), 's'));
  store.cachePut('locations', [{ key: 'a', value: ['repo/a'] }]);
  store.cachePut('build', [{ key: 'b', value: 1 }]);
  assert.equal(store.cacheForget('locations', new Date(Date.now() - 60_000)), 0, 'a fresh value is kept');
  assert.deepEqual(store.cacheGet('locations', 'a'), ['repo/a']);
  assert.equal(store.cacheForget('locations', new Date(Date.now() + 60_000)), 1);
  assert.equal(store.cacheGet('locations', 'a'), undefined);
  assert.equal(store.cacheGet('build', 'b'), 1, 'another namespace is untouched');
  store.close();
});

test('tags move, rm untags, unknown refs change nothing', async () => {
  const store = await openStore(join(scratch(), 's'));
  const a = await putImage(store, 'a');
  const b = await putImage(store, 'b');
  await store.tag(a, 'x');
  await store.tag(b, 'x');
  assert.equal(store.resolveRef('x').digest, b.digest);
  await assert.rejects(store.untag(['x', 'nope']), /nope/);
  assert.equal(store.resolveRef('x').digest, b.digest, 'nothing was untagged');
  await store.untag(['x']);
  assert.throws(() => store.resolveRef('x'), /is not in/);
  store.close();
});

test('gc keeps what tags and signatures reach and removes the rest', async () => {
  const store = await openStore(join(scratch(), 's'));
  const kept = await putImage(store, 'kept');
  const dropped = await putImage(store, 'dropped');
  await store.tag(kept, 'kept');
  await store.tag(dropped, 'dropped');
  // An OCI 1.1 referrer (a signature) of the kept image, without a tag.
  const sigLayer = await store.putBytes(Buffer.from('signature'), 'application/octet-stream');
  await store.putBytes(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json'); // children before the manifest
  const sig = await store.putBytes(
    encodeJSONBytes({ schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 }, layers: [sigLayer], subject: kept }),
    MT_MANIFEST,
  );
  assert.deepEqual((await store.referrers(kept)).map((r) => r.descriptor.digest), [sig.digest]);
  await store.untag(['dropped']);
  const result = await gc(store);
  assert.ok(result.removedBlobs.includes(dropped.digest));
  assert.ok(!store.hasBlob(dropped.digest));
  assert.ok(store.hasBlob(kept.digest) && store.hasBlob(sig.digest) && store.hasBlob(sigLayer.digest), 'the signature survives');
  assert.deepEqual(await fsck(store), []);
  const again = await gc(store);
  assert.deepEqual(again.removedBlobs, []);
  store.close();
});

test('gc within the grace period keeps the entry of a signature whose image is not tagged yet, so it survives the tag and the next gc', async () => {
  const dir = join(scratch(), 's');
  const store = await openStore(dir);
  // A writer mid-copy: the image and its OCI 1.1 signature are in, the image's tag comes last.
  const image = await putImage(store, 'image');
  const sigLayer = await store.putBytes(Buffer.from('signature of image'), 'application/octet-stream');
  await store.putBytes(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json');
  const sig = await store.putBytes(
    encodeJSONBytes({ schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 }, layers: [sigLayer], subject: image }),
    MT_MANIFEST,
  );
  const during = await gc(store, { graceSeconds: 300 });
  assert.deepEqual(during.removedEntries, [], 'the young signature keeps its entry');
  await store.tag(image, 'image');
  // Past the grace: only what a tag reaches stays, and the signature is reached through its entry.
  const old = new Date(Date.now() - 3600_000);
  for (const f of readdirSync(join(dir, 'blobs', 'sha256'))) utimesSync(join(dir, 'blobs', 'sha256', f), old, old);
  await gc(store, { graceSeconds: 300 });
  assert.deepEqual((await store.referrers(image)).map((r) => r.descriptor.digest), [sig.digest], 'the signature is still there');
  assert.ok(store.hasBlob(sigLayer.digest));
  store.close();
});

test('the index notices when another program rewrites index.json', async () => {
  const dir = join(scratch(), 's');
  const store = await openStore(dir);
  const a = await putImage(store, 'a');
  await store.tag(a, 'a');
  store.close();
  const doc = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  doc.manifests.push({ ...doc.manifests[0], annotations: { [ANN_REF_NAME]: 'other.io/by/hand:1' } });
  writeFileSync(join(dir, 'index.json'), JSON.stringify(doc));
  const reopened = await openStore(dir);
  assert.deepEqual(reopened.list().map((r) => r.ref).sort(), ['ghcr.io/inspektor-gadget/gadget/a:latest', 'other.io/by/hand:1']);
  reopened.close();
  assert.ok(existsSync(join(dir, 'gadget-oci', 'index.sqlite')));
});
