// gadget annotate: the bottom-up rewrite on images built by the project and on ig's own signed
// images, checked with skopeo, fsck and the command line (bad input, output, SIGKILL).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GadgetError } from '../lib/errors.js';
import { encodeJSON, encodeJSONBytes } from '../lib/oci/json.js';
import {
  ANN_CREATED,
  ANN_REF_NAME,
  ANN_SOURCE,
  ANN_TITLE,
  ANN_URL,
  GADGET_ARTIFACT_TYPE,
  GADGET_CONFIG,
  GADGET_EBPF,
  MT_DOCKER_LIST,
  MT_INDEX,
  MT_MANIFEST,
} from '../lib/oci/mediatypes.js';
import type { Descriptor, Index, Manifest } from '../lib/oci/types.js';
import type { PluginContext } from '../lib/runner/types.js';
import { runSteps } from '../lib/runner/tasks.js';
import { annotate, annotateAll, annotateImage, isRFC3339, parseLevels, parsePlatform } from '../plugins/annotate.js';
import { build, buildGadget } from '../plugins/build.js';
import { assembleImage } from '../plugins/build/image.js';
import { fsck } from '../store/maintenance.js';
import { openStore, type Store } from '../store/store.js';
import { importImages } from '../store/transfer.js';
import { CLI, gadget, spawnGadget } from './helpers/cli.js';
import { quietContext } from './helpers/context.js';
import { exited, freezeWhen, killAt, type KillPoint } from './helpers/crash.js';
import { putImage } from './helpers/images.js';
import { FIXTURE_LAYOUT, REPO, sharedMissing } from './helpers/paths.js';

const execFileP = promisify(execFile);
const EXAMPLES = join(REPO, 'examples');
const URL_VALUE = 'https://example.com/gadgets';
const noStack = (stderr: string): void => assert.doesNotMatch(stderr, /\n\s+at .*:\d+:\d+/, 'no stack trace');

function tempDir(t: TestContext, prefix = 'gadget-annotate-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function newStore(t: TestContext): Promise<{ store: Store; dir: string }> {
  const dir = join(tempDir(t), 'store');
  const store = await openStore(dir);
  t.after(() => store.close());
  return { store, dir };
}

function context(store: Store): PluginContext & { records: object[] } {
  const records: object[] = [];
  return { ...quietContext(store, REPO, { emit: (r) => records.push(r) }), records };
}

/** Runs `fn` with SOURCE_DATE_EPOCH set, so that two builds of one gadget are equal. */
async function withEpoch<T>(fn: () => Promise<T>): Promise<T> {
  const old = process.env.SOURCE_DATE_EPOCH;
  process.env.SOURCE_DATE_EPOCH = '1700000000';
  try {
    return await fn();
  } finally {
    if (old === undefined) delete process.env.SOURCE_DATE_EPOCH;
    else process.env.SOURCE_DATE_EPOCH = old;
  }
}

/** Builds one of examples/ with the build plugin (clang, or the prebuilt objects). */
async function buildExample(store: Store, name: string, ref: string, annotations?: Record<string, string>): Promise<Descriptor> {
  return withEpoch(async () => (await buildGadget(context(store), { dir: join(EXAMPLES, name), ref }, { igVersion: 'v0.45.0', annotations, noCache: true })).descriptor);
}

interface Graph {
  indexBytes: Buffer;
  index: Index;
  manifests: Array<{ entry: Descriptor; bytes: Buffer; doc: Manifest }>;
}

async function readGraph(store: Store, digest: string): Promise<Graph> {
  const indexBytes = await store.readBytes(digest);
  const index = JSON.parse(indexBytes.toString()) as Index;
  const manifests = [];
  for (const entry of index.manifests) {
    const bytes = await store.readBytes(entry);
    manifests.push({ entry, bytes, doc: JSON.parse(bytes.toString()) as Manifest });
  }
  return { indexBytes, index, manifests };
}

/** A document without its annotation maps (and, for index entries, without digest, size and data), keys in order. */
function skeleton(value: unknown, dropDescriptorIdentity = false): string {
  return JSON.stringify(value, function (this: unknown, key, v) {
    if (key === 'annotations') return undefined;
    if (dropDescriptorIdentity && (key === 'digest' || key === 'size' || key === 'data') && this !== value) return undefined;
    return v;
  });
}

function blobCount(dir: string): number {
  return readdirSync(join(dir, 'blobs', 'sha256')).length;
}

/** The annotation map at every place ig writes one: index, index entries, manifests, config descriptors. */
function places(g: Graph): Array<[string, Record<string, string> | undefined]> {
  return [
    ['index', g.index.annotations],
    ...g.index.manifests.map((e) => [`entry ${e.platform?.architecture}`, e.annotations] as [string, Record<string, string> | undefined]),
    ...g.manifests.map((m) => [`manifest ${m.entry.platform?.architecture}`, m.doc.annotations] as [string, Record<string, string> | undefined]),
    ...g.manifests.map((m) => [`config ${m.entry.platform?.architecture}`, m.doc.config.annotations] as [string, Record<string, string> | undefined]),
  ];
}

function assertCanonical(bytes: Buffer, what: string): void {
  assert.equal(encodeJSON(JSON.parse(bytes.toString())), bytes.toString(), `${what} is encoded as ig encodes`);
}

/** Checks that only annotations differ between two graphs, and that config and layer blobs are shared. */
function assertOnlyAnnotationsChanged(before: Graph, after: Graph): void {
  assert.equal(skeleton(after.index, true), skeleton(before.index, true), 'the index differs only in annotations and entry digests');
  assert.equal(after.manifests.length, before.manifests.length);
  after.manifests.forEach((m, i) => {
    const old = before.manifests[i]!;
    assert.equal(skeleton(m.doc), skeleton(old.doc), 'a manifest differs only in annotations');
    assert.equal(m.doc.config.digest, old.doc.config.digest, 'the config blob is shared');
    assert.deepEqual(m.doc.layers, old.doc.layers, 'the layers are shared, descriptors and all');
    assertCanonical(m.bytes, `manifest ${m.entry.digest}`);
  });
  assertCanonical(after.indexBytes, 'the new index');
}

// ------------------------------------------------------------------ pure checks

test('created values are checked as Go reads RFC 3339; levels and platforms are checked', () => {
  for (const ok of ['2026-01-02T15:04:05Z', '2025-10-20T14:06:44+02:00', '2024-02-29T00:00:00.123456789-07:30', '1999-12-31T23:59:59Z']) assert.ok(isRFC3339(ok), ok);
  for (const bad of ['yesterday', '2026-01-02', '2026-01-02 15:04:05Z', '2026-02-30T00:00:00Z', '2023-02-29T00:00:00Z', '2026-13-01T00:00:00Z', '2026-01-02T24:00:00Z', '2026-01-02T15:04:60Z', '2026-01-02T15:04:05', '2026-01-02T15:04:05+2:00', '2026-01-02t15:04:05z', '2026-01-02T15:04:05+24:00']) {
    assert.ok(!isRFC3339(bad), bad);
  }
  assert.deepEqual(parseLevels(['config', 'index']), ['index', 'config']);
  assert.deepEqual(parseLevels(['manifest,config']), ['manifest', 'config']);
  assert.equal(parseLevels(undefined), undefined);
  assert.throws(() => parseLevels(['layer']), (e: GadgetError) => e.exitCode === 2 && /unknown level/.test(e.message));
  assert.equal(parsePlatform('linux/arm64'), 'arm64');
  assert.throws(() => parsePlatform('riscv64'), (e: GadgetError) => e.exitCode === 2 && /unknown platform/.test(e.message));
  assert.throws(() => parsePlatform('amd46'), (e: GadgetError) => e.exitCode === 2 && e.hint === 'did you mean amd64? gadget images are built for amd64 and arm64');
});

// ------------------------------------------------------------------ images built by the project

test('a built image: the map changes at index, entries, manifests and config descriptors; content is shared', async (t) => {
  const { store, dir } = await newStore(t);
  const old = await buildExample(store, 'trace_open', 'example.com/gadgets/trace_open:v1');
  const before = await readGraph(store, old.digest);
  const r = await annotateImage(store, 'example.com/gadgets/trace_open:v1', { set: { [ANN_URL]: URL_VALUE } });

  assert.equal(r.changed, true);
  assert.equal(r.old.digest, old.digest);
  assert.notEqual(r.new.digest, old.digest);
  assert.deepEqual(r.tagged, ['example.com/gadgets/trace_open:v1']);
  assert.equal(store.resolveRef('example.com/gadgets/trace_open:v1').digest, r.new.digest, 'the tag moved');
  assert.equal(r.manifests.length, 2);
  for (const m of r.manifests) assert.ok(m.changed && m.old.digest !== m.new.digest, `${m.platform} has a new digest`);
  assert.deepEqual(r.written, [...r.manifests.map((m) => m.new.digest), r.new.digest], 'new manifests first, then the index');
  assert.deepEqual(r.staleSignatures, []);

  const after = await readGraph(store, r.new.digest);
  assertOnlyAnnotationsChanged(before, after);
  for (const [where, map] of places(after)) assert.equal(map?.[ANN_URL], URL_VALUE, where);
  const oldPlaces = places(before);
  places(after).forEach(([where, map], i) => {
    const { [ANN_URL]: _u, ...rest } = map!;
    const { [ANN_URL]: _o, ...oldRest } = oldPlaces[i]![1]!;
    assert.deepEqual(rest, oldRest, `${where}: the other annotations are kept`);
  });
  assert.deepEqual(after.index.manifests.map((e) => e.digest), r.manifests.map((m) => m.new.digest));
  // The old graph is intact (it is what the old digest and its signatures name).
  for (const m of before.manifests) assert.ok(store.hasBlob(m.entry.digest));
  // The build tags with the image's annotations on the index.json entry, as ig does; they follow.
  const entry = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')).manifests.find((d: Descriptor) => d.annotations?.[ANN_REF_NAME] === 'example.com/gadgets/trace_open:v1');
  assert.equal(entry.digest, r.new.digest);
  assert.equal(entry.annotations[ANN_URL], URL_VALUE);
  assert.ok(r.diffs.some((d) => d.at === 'tag entry'));
  assert.deepEqual(await fsck(store), []);
});

test('the same annotate twice is idempotent; a value already there changes nothing', async (t) => {
  const { store, dir } = await newStore(t);
  await buildExample(store, 'hello_wasm', 'example.com/gadgets/hello:v1');
  const first = await annotateImage(store, 'example.com/gadgets/hello:v1', { set: { [ANN_SOURCE]: 'https://git.example.com/hello' } });
  assert.equal(first.changed, true);
  const indexJson = readFileSync(join(dir, 'index.json'));
  const blobs = blobCount(dir);
  const second = await annotateImage(store, 'example.com/gadgets/hello:v1', { set: { [ANN_SOURCE]: 'https://git.example.com/hello' } });
  assert.equal(second.changed, false);
  assert.equal(second.new.digest, first.new.digest);
  assert.deepEqual(second.written, []);
  assert.deepEqual(second.tagged, []);
  assert.deepEqual(second.diffs, []);
  assert.equal(blobCount(dir), blobs, 'no new blob');
  assert.deepEqual(readFileSync(join(dir, 'index.json')), indexJson, 'index.json is untouched');
  // The title is already the gadget's name: nothing to do on the first try either.
  const title = (await readGraph(store, first.new.digest)).index.annotations![ANN_TITLE]!;
  const same = await annotateImage(store, 'example.com/gadgets/hello:v1', { set: { [ANN_TITLE]: title }, unset: ['not.there'] });
  assert.equal(same.changed, false);
  assert.equal(same.new.digest, first.new.digest);
});

test('setting a value back gives back the original digests (the encoding is canonical)', async (t) => {
  const { store } = await newStore(t);
  const old = await buildExample(store, 'trace_open', 'example.com/gadgets/trace_open:v1');
  const before = await readGraph(store, old.digest);
  const original = before.index.annotations![ANN_URL]!;
  const changed = await annotateImage(store, 'example.com/gadgets/trace_open:v1', { set: { [ANN_URL]: 'https://wrong.example.com/<&>' } });
  assert.notEqual(changed.new.digest, old.digest);
  assert.match((await store.readBytes(changed.new.digest)).toString(), /wrong\.example\.com\/\\u003c\\u0026\\u003e/, 'escaped as Go escapes');
  const back = await annotateImage(store, 'example.com/gadgets/trace_open:v1', { set: { [ANN_URL]: original } });
  assert.equal(back.new.digest, old.digest);
  assert.deepEqual(back.manifests.map((m) => m.new.digest), before.manifests.map((m) => m.entry.digest));
});

test('--from-metadata restores the five values from the gadget.yaml in the config', async (t) => {
  const { store } = await newStore(t);
  const good = await buildExample(store, 'trace_open', 'example.com/gadgets/good:v1');
  const wrong = await buildExample(store, 'trace_open', 'example.com/gadgets/wrong:v1', { [ANN_TITLE]: 'a wrong title', [ANN_URL]: 'https://wrong.example.com' });
  assert.notEqual(wrong.digest, good.digest);
  const r = await annotateImage(store, 'example.com/gadgets/wrong:v1', { fromMetadata: true });
  assert.equal(r.changed, true);
  assert.equal(r.new.digest, good.digest, 'the same bytes as the build that had the right values');
  assert.ok(r.diffs.every((d) => d.key === ANN_TITLE || d.key === ANN_URL));
  // Explicit values win over the file's.
  const both = await annotateImage(store, 'example.com/gadgets/good:v1', { fromMetadata: true, set: { [ANN_TITLE]: 'override' }, unset: [ANN_URL] }, { dryRun: true });
  assert.ok(both.diffs.some((d) => d.key === ANN_TITLE && d.to === 'override'));
  assert.ok(both.diffs.some((d) => d.key === ANN_URL && d.to === null));
  assert.equal(store.resolveRef('example.com/gadgets/good:v1').digest, good.digest, 'a dry run moves nothing');

  // An image without gadget.yaml (the OCI empty config) has nothing to read.
  const image = assembleImage({ annotations: { [ANN_TITLE]: 'x' } });
  for (const b of image.blobs) await store.putBytes(b.bytes, b.descriptor.mediaType);
  await store.tag(image.index.descriptor, 'example.com/gadgets/empty:v1');
  await assert.rejects(annotateImage(store, 'example.com/gadgets/empty:v1', { fromMetadata: true }), (e: GadgetError) => e.exitCode === 2 && /has no gadget\.yaml/.test(e.message));
});

test('--level limits the change to the index, the manifests (and their entries) or the config descriptors', async (t) => {
  const { store } = await newStore(t);
  const old = await buildExample(store, 'trace_open', 'example.com/gadgets/t:v1');
  const before = await readGraph(store, old.digest);
  const ref = 'example.com/gadgets/t:v1';
  const value = (level: string) => `https://${level}.example.com`;

  const config = await annotateImage(store, ref, { set: { [ANN_URL]: value('config') } }, { levels: ['config'], tag: 'example.com/gadgets/t:config' });
  const c = await readGraph(store, config.new.digest);
  for (const [where, map] of places(c)) assert.equal(map?.[ANN_URL] === value('config'), where.startsWith('config'), where);
  assert.ok(config.manifests.every((m) => m.changed), 'a changed config descriptor gives new manifests');

  const index = await annotateImage(store, ref, { set: { [ANN_URL]: value('index') } }, { levels: ['index'], tag: 'example.com/gadgets/t:index' });
  const i = await readGraph(store, index.new.digest);
  for (const [where, map] of places(i)) assert.equal(map?.[ANN_URL] === value('index'), where === 'index', where);
  assert.deepEqual(index.manifests.map((m) => m.new.digest), before.manifests.map((m) => m.entry.digest), 'the manifests are the old ones');

  const manifest = await annotateImage(store, ref, { set: { [ANN_URL]: value('manifest') } }, { levels: ['manifest'], tag: 'example.com/gadgets/t:manifest' });
  const m = await readGraph(store, manifest.new.digest);
  for (const [where, map] of places(m)) assert.equal(map?.[ANN_URL] === value('manifest'), where.startsWith('manifest') || where.startsWith('entry'), where);
  for (const g of [c, i, m]) assertOnlyAnnotationsChanged(before, g);

  assert.equal(store.resolveRef(ref).digest, old.digest, '-t leaves the old tag where it was');
  assert.equal(store.resolveRef('example.com/gadgets/t:index').digest, index.new.digest);
});

test('--platform changes one architecture and leaves the shared index map alone', async (t) => {
  const { store } = await newStore(t);
  const old = await buildExample(store, 'trace_open', 'example.com/gadgets/t:v1');
  const before = await readGraph(store, old.digest);
  const r = await annotateImage(store, 'example.com/gadgets/t:v1', { set: { 'com.example.arm64-note': 'tested on graviton' } }, { platform: 'arm64' });
  const after = await readGraph(store, r.new.digest);
  assert.deepEqual(r.manifests.map((m) => [m.platform, m.changed, m.selected]), [['linux/amd64', false, false], ['linux/arm64', true, true]]);
  assert.equal(after.index.manifests[0]!.digest, before.index.manifests[0]!.digest);
  assert.notEqual(after.index.manifests[1]!.digest, before.index.manifests[1]!.digest);
  assert.deepEqual(after.index.annotations, before.index.annotations);
  assert.equal(after.manifests[1]!.doc.annotations!['com.example.arm64-note'], 'tested on graviton');
  assert.equal(after.manifests[1]!.doc.config.annotations!['com.example.arm64-note'], 'tested on graviton');
  assert.equal(after.index.manifests[1]!.annotations!['com.example.arm64-note'], 'tested on graviton');
  assert.equal(after.manifests[0]!.doc.annotations!['com.example.arm64-note'], undefined);
  assertOnlyAnnotationsChanged(before, after);
  const explicit = await annotateImage(store, 'example.com/gadgets/t:v1', { set: { a: 'b' } }, { platform: 'arm64', levels: ['index'] });
  assert.deepEqual(explicit.diffs.map((d) => d.at).filter((at) => at !== 'tag entry'), ['index'], 'an explicit --level index with --platform is allowed');
});

test('unset removes a key everywhere; an emptied map disappears; a new map goes where Go puts it; unknown fields stay', async (t) => {
  const { store } = await newStore(t);
  // An index whose entry carries inline data and unknown fields, a config without annotations.
  const config = await store.putBytes(Buffer.from('name: odd\n'), GADGET_CONFIG);
  const layer = await store.putBytes(Buffer.from('ebpf odd'), GADGET_EBPF);
  const manifestBytes = encodeJSONBytes({ schemaVersion: 2, artifactType: GADGET_ARTIFACT_TYPE, config: { ...config, 'x-config-extra': 1 }, layers: [layer], annotations: { [ANN_TITLE]: 'odd' }, 'x-manifest-extra': { keep: true } });
  const m = await store.putBytes(manifestBytes, MT_MANIFEST);
  const indexDoc = {
    schemaVersion: 2,
    mediaType: MT_INDEX,
    'x-index-extra': ['kept'],
    manifests: [{ ...m, data: manifestBytes.toString('base64'), platform: { architecture: 'amd64', os: 'linux' }, 'x-entry-extra': 'kept' }],
    annotations: { [ANN_TITLE]: 'odd' },
  };
  const index = await store.putBytes(encodeJSONBytes(indexDoc), MT_INDEX);
  await store.tag(index, 'example.com/odd:v1');

  const added = await annotateImage(store, 'example.com/odd:v1', { set: { 'com.example.k': 'v' } });
  const g = await readGraph(store, added.new.digest);
  assert.deepEqual(Object.keys(g.manifests[0]!.doc.config), ['mediaType', 'digest', 'size', 'annotations', 'x-config-extra'], 'annotations after size, before the rest');
  assert.deepEqual((g.manifests[0]!.doc as unknown as Record<string, unknown>)['x-manifest-extra'], { keep: true });
  assert.deepEqual(Object.keys(g.index), ['schemaVersion', 'mediaType', 'x-index-extra', 'manifests', 'annotations']);
  const entry = g.index.manifests[0]! as Descriptor & Record<string, unknown>;
  assert.deepEqual(Object.keys(entry), ['mediaType', 'digest', 'size', 'annotations', 'data', 'platform', 'x-entry-extra']);
  assert.equal(entry.data, g.manifests[0]!.bytes.toString('base64'), 'inline data is the new manifest');

  const removed = await annotateImage(store, 'example.com/odd:v1', { unset: ['com.example.k', ANN_TITLE] });
  const h = await readGraph(store, removed.new.digest);
  for (const [where, map] of places(h)) assert.equal(map, undefined, `${where}: no annotations left, so no map`);
  assert.equal(encodeJSON(h.manifests[0]!.doc).includes('"annotations"'), false);
  assert.equal(skeleton(h.index, true), skeleton(indexDoc, true));
});

test('an image that is a single manifest is annotated as one', async (t) => {
  const { store } = await newStore(t);
  const index = await putImage(store, 'single');
  const doc = await store.readJSON<Index>(index);
  const manifest = { mediaType: MT_MANIFEST, digest: doc.manifests[0]!.digest, size: doc.manifests[0]!.size };
  await store.tag(manifest, 'example.com/single:v1');
  const r = await annotateImage(store, 'example.com/single:v1', { set: { [ANN_URL]: URL_VALUE } });
  assert.equal(r.kind, 'manifest');
  assert.ok(r.changed);
  assert.equal(store.resolveRef('example.com/single:v1').digest, r.new.digest);
  const oldDoc = await store.readJSON<Manifest>(manifest);
  const newDoc = await store.readJSON<Manifest>(r.new);
  assert.equal(newDoc.annotations![ANN_URL], URL_VALUE);
  assert.equal(newDoc.config.annotations![ANN_URL], URL_VALUE);
  assert.equal(skeleton(newDoc), skeleton(oldDoc));
  assert.deepEqual(newDoc.layers, oldDoc.layers);
  await assert.rejects(annotateImage(store, 'example.com/single:v1', { set: { a: 'b' } }, { levels: ['index'] }), (e: GadgetError) => e.exitCode === 2 && /single manifest/.test(e.message));
  await assert.rejects(annotateImage(store, 'example.com/single:v1', { set: { a: 'b' } }, { platform: 'amd64' }), (e: GadgetError) => e.exitCode === 2 && /--platform/.test(e.message));
});

test('bad input is refused with a usage error and changes nothing', async (t) => {
  const { store, dir } = await newStore(t);
  await store.tag(await putImage(store, 'a'), 'example.com/a:v1');
  const amd64Only = assembleImage({ config: Buffer.from('name: x\n'), annotations: { [ANN_TITLE]: 'x' }, ebpf: { amd64: Buffer.from('ebpf') } });
  for (const b of amd64Only.blobs) await store.putBytes(b.bytes, b.descriptor.mediaType);
  await store.tag(amd64Only.index.descriptor, 'example.com/amd64-only:v1');
  const dockerList = await store.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_DOCKER_LIST, manifests: [] }), MT_DOCKER_LIST);
  await store.tag(dockerList, 'example.com/docker:v1');
  const digest = store.resolveRef('example.com/a:v1').digest;
  const indexJson = readFileSync(join(dir, 'index.json'));
  const blobs = blobCount(dir);
  const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
    ['empty key', () => annotateImage(store, 'example.com/a:v1', { set: { '': 'x' } }), /must not be empty/],
    ['empty unset key', () => annotateImage(store, 'example.com/a:v1', { unset: [''] }), /must not be empty/],
    ['ref.name', () => annotateImage(store, 'example.com/a:v1', { set: { [ANN_REF_NAME]: 'x' } }), /holds the tag/],
    ['unset ref.name', () => annotateImage(store, 'example.com/a:v1', { unset: [ANN_REF_NAME] }), /holds the tag/],
    ['created', () => annotateImage(store, 'example.com/a:v1', { set: { [ANN_CREATED]: 'last tuesday' } }), /RFC 3339/],
    ['created date', () => annotateImage(store, 'example.com/a:v1', { set: { [ANN_CREATED]: '2026-02-30T10:00:00Z' } }), /RFC 3339/],
    ['set and unset', () => annotateImage(store, 'example.com/a:v1', { set: { k: 'v' }, unset: ['k'] }), /both set and unset/],
    ['nothing', () => annotateImage(store, 'example.com/a:v1', {}), /nothing to change/],
    ['unknown platform', () => annotateImage(store, 'example.com/a:v1', { set: { k: 'v' } }, { platform: 'riscv64' as 'amd64' }), /unknown platform/],
    ['unknown level', () => annotateImage(store, 'example.com/a:v1', { set: { k: 'v' } }, { levels: ['layers' as 'index'] }), /unknown level/],
    ['absent platform', () => annotateImage(store, 'example.com/amd64-only:v1', { set: { k: 'v' } }, { platform: 'arm64' }), /has no arm64 manifest/],
    ['digest without -t', () => annotateImage(store, digest, { set: { k: 'v' } }), /names a digest/],
    ['signature tag', () => annotateImage(store, `sha256-${digest.slice(7)}.sig`, { set: { k: 'v' } }), /signature tag/],
    ['bad -t', () => annotateImage(store, 'example.com/a:v1', { set: { k: 'v' } }, { tag: 'Not A Ref' }), /not a valid image reference/],
    ['signature -t', () => annotateImage(store, 'example.com/a:v1', { set: { k: 'v' } }, { tag: `sha256-${digest.slice(7)}.sig` }), /how signatures are tagged/],
    ['docker list', () => annotateImage(store, 'example.com/docker:v1', { set: { k: 'v' } }), /Docker media types/],
  ];
  for (const [name, fn, message] of cases) {
    await assert.rejects(fn(), (e: unknown) => {
      assert.ok(e instanceof GadgetError, `${name}: a GadgetError`);
      assert.equal(e.exitCode, 2, `${name}: exit code 2 (${e.message})`);
      assert.match(e.message, message, name);
      return true;
    });
  }
  // A missing image is a failure found (1), not a usage error, as for inspect and verify.
  await assert.rejects(annotateImage(store, 'example.com/missing:v1', { set: { k: 'v' } }), (e: unknown) => e instanceof GadgetError && e.exitCode === 1 && /is not in store/.test(e.message));
  // So is a pattern that matches nothing (as for list and sync).
  await assert.rejects(annotateAll(store, 'nothing*', { set: { k: 'v' } }), (e: unknown) => e instanceof GadgetError && e.exitCode === 1 && /the pattern "nothing\*" matched no image/.test(e.message));
  assert.deepEqual(readFileSync(join(dir, 'index.json')), indexJson, 'index.json is untouched');
  assert.equal(blobCount(dir), blobs, 'no blob was written');
});

test('the annotate plugin step annotates what the build step produced', async (t) => {
  const { store } = await newStore(t);
  const ctx = context(store);
  const steps = [
    build({ gadgets: [{ dir: join(EXAMPLES, 'hello_wasm'), ref: 'example.com/gadgets/hello:v2' }], igVersion: 'v0.45.0' }),
    annotate({ set: { 'com.example.release': '2.0.0' } }),
  ];
  const out = await withEpoch(() => runSteps(ctx, steps));
  assert.equal(out.length, 1);
  assert.equal(out[0]!.ref, 'example.com/gadgets/hello:v2');
  assert.equal(store.resolveRef('example.com/gadgets/hello:v2').digest, out[0]!.descriptor.digest);
  const g = await readGraph(store, out[0]!.descriptor.digest);
  for (const [where, map] of places(g)) assert.equal(map?.['com.example.release'], '2.0.0', where);
  assert.ok(ctx.records.some((r) => (r as { type?: string }).type === 'annotate'));
  assert.throws(() => annotate({ set: { [ANN_REF_NAME]: 'x' } }), /holds the tag/, 'a bad step fails when the config loads');
  assert.throws(() => annotate({ set: { k: 'v' }, platform: 'mips' as 'amd64' }), /unknown platform/);
});

// ------------------------------------------------------------------ ig's own images

const SIGNED: Record<string, string> = {
  'ttl.sh/signed_with_cosign_legacy:latest': 'cosign-legacy',
  'ttl.sh/signed_with_cosign_oci11:latest': 'cosign-oci11',
  'ttl.sh/signed_with_cosign_bundle:latest': 'cosign-bundle',
  'ttl.sh/signed_with_notation_config_media_type_signature:latest': 'notation',
  'ttl.sh/signed_with_notation_config_media_type_empty:latest': 'notation',
  'ghcr.io/inspektor-gadget/gadget/unsigned:francis-signature-unit-tests': '',
};

async function fixtureStore(t: TestContext): Promise<{ store: Store; dir: string } | undefined> {
  const why = sharedMissing();
  if (why) {
    t.skip(why);
    return undefined;
  }
  const s = await newStore(t);
  const imported = await importImages(s.store, FIXTURE_LAYOUT);
  assert.deepEqual(imported.failed, []);
  return s;
}

test("ig's signed images: new digests read by skopeo, blobs shared, signatures listed and not carried over", async (t) => {
  const s = await fixtureStore(t);
  if (!s) return;
  const { store, dir } = s;
  const before = new Map<string, Graph>();
  for (const ref of Object.keys(SIGNED)) before.set(ref, await readGraph(store, store.resolveRef(ref).digest));

  const results = await annotateAll(store, '*', { set: { [ANN_URL]: URL_VALUE, [ANN_CREATED]: '2026-01-02T03:04:05Z' } });
  assert.deepEqual(results.map((r) => r.ref).sort(), Object.keys(SIGNED).sort());
  const out = join(tempDir(t), 'copy');
  for (const r of results) {
    assert.ok(r.changed, r.ref);
    assert.equal(store.resolveRef(r.ref).digest, r.new.digest);
    const after = await readGraph(store, r.new.digest);
    assertOnlyAnnotationsChanged(before.get(r.ref)!, after);
    for (const [where, map] of places(after)) {
      assert.equal(map?.[ANN_URL], URL_VALUE, `${r.ref} ${where}`);
      assert.equal(map?.[ANN_CREATED], '2026-01-02T03:04:05Z', `${r.ref} ${where}`);
    }
    // ig lists one manifest for both platforms when they are equal: one new manifest for both.
    assert.equal(new Set(r.manifests.map((m) => m.new.digest)).size, new Set(r.manifests.map((m) => m.old.digest)).size);

    const raw = await execFileP('skopeo', ['inspect', '--raw', `oci:${dir}:${r.ref}`], { encoding: 'buffer', maxBuffer: 1 << 24 });
    assert.deepEqual(raw.stdout, after.indexBytes, `skopeo reads the new index of ${r.ref}`);
    // A copy reads and verifies every blob of the new graph.
    await execFileP('skopeo', ['copy', '--all', '--quiet', `oci:${dir}:${r.ref}`, `oci:${out}:${r.ref}`]);

    const kinds = r.staleSignatures.map((sig) => sig.kind);
    assert.deepEqual(kinds, SIGNED[r.ref] ? [SIGNED[r.ref]] : [], `${r.ref}: the signature of the old index is named`);
    for (const sig of r.staleSignatures) assert.equal(sig.subject, r.old.digest);
    assert.deepEqual(await store.referrers(r.new), [], 'no signature is carried over to the new digest');
  }
  const copied = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as Index;
  assert.deepEqual(copied.manifests.map((d) => d.digest).sort(), results.map((r) => r.new.digest).sort());

  const again = await annotateAll(store, '*', { set: { [ANN_URL]: URL_VALUE, [ANN_CREATED]: '2026-01-02T03:04:05Z' } });
  assert.ok(again.every((r) => !r.changed), 'the same change again changes nothing');
  assert.deepEqual(again.map((r) => r.new.digest), results.map((r) => r.new.digest));
  assert.deepEqual(await fsck(store), []);
});

test("ig's image with one manifest for both platforms: --platform splits it", async (t) => {
  const s = await fixtureStore(t);
  if (!s) return;
  const ref = 'ghcr.io/inspektor-gadget/gadget/unsigned:francis-signature-unit-tests';
  const before = await readGraph(s.store, s.store.resolveRef(ref).digest);
  assert.equal(before.index.manifests[0]!.digest, before.index.manifests[1]!.digest, 'the fixture lists one digest twice');
  const r = await annotateImage(s.store, ref, { set: { 'com.example.arch-note': 'amd64 only' } }, { platform: 'amd64' });
  const after = await readGraph(s.store, r.new.digest);
  assert.notEqual(after.index.manifests[0]!.digest, before.index.manifests[0]!.digest);
  assert.equal(after.index.manifests[1]!.digest, before.index.manifests[1]!.digest);
  assertOnlyAnnotationsChanged(before, after);
  // ig's tag entry for this image carries the index's map: it follows only when the index changes.
  assert.deepEqual(s.store.resolveRef(ref).annotations?.[ANN_TITLE], 'unsigned');
  assert.equal(s.store.resolveRef(ref).annotations?.['com.example.arch-note'], undefined);
});

test('gadget verify --profile ig passes on the annotated images; their old signatures do not carry over', async (t) => {
  const s = await fixtureStore(t);
  if (!s) return;
  const { verifyImages } = await import('../plugins/verify.js');
  const keys = join(FIXTURE_LAYOUT, '..', 'keys');
  const signatures = { keys: [join(keys, 'cosign-good.pub')], notationCerts: [join(keys, 'notation-good.crt')], notationPolicy: join(keys, 'notation-policy.json') };
  const signed = Object.keys(SIGNED).filter((ref) => SIGNED[ref]);
  const before = await verifyImages(s.store, signed, { profile: 'ig', ...signatures, requireSignature: true });
  for (const r of before) assert.ok(r.passed, `${r.ref} passes before: ${JSON.stringify(r.findings)}`);

  const results = await annotateAll(s.store, '*', { set: { [ANN_URL]: URL_VALUE, 'com.example.release': 'r1' } });
  const reports = await verifyImages(s.store, 'all', { profile: 'ig' });
  assert.equal(reports.length, Object.keys(SIGNED).length);
  for (const r of reports) {
    assert.ok(r.passed, `${r.ref} passes --profile ig: ${JSON.stringify(r.findings.filter((f) => f.severity === 'error'))}`);
    assert.equal(r.digest, results.find((x) => x.ref === r.ref)!.new.digest, 'verify checked the new digest');
  }
  const resigned = await verifyImages(s.store, signed, { profile: 'ig', ...signatures, requireSignature: true });
  for (const r of resigned) {
    assert.equal(r.passed, false, `${r.ref}: the signature of the old digest does not vouch for the new one`);
    assert.ok(r.findings.some((f) => f.rule === 'GADGET-SIGNATURE-MISSING'), r.ref);
  }
});

// ------------------------------------------------------------------ the command line

/** The command must be there: a missing command is a failure, never a skip. */
async function assertCli(): Promise<void> {
  assert.ok(existsSync(CLI), `${CLI} is missing: run \`npm run build\` first`);
  const help = await gadget(['annotate', '--help']);
  assert.equal(help.code, 0, `the annotate command is not registered in cli/gadget.ts (or dist/ is stale: run \`npm run build\`): ${help.stderr}`);
}

test('gadget annotate prints every old and new digest, --json too; a second run says unchanged', async (t) => {
  await assertCli();
  const { store, dir } = await newStore(t);
  await store.tag(await putImage(store, 'cli'), 'example.com/cli:v1');
  store.close();
  const human = await gadget(['--store', dir, 'annotate', 'example.com/cli:v1', '--set', `${ANN_URL}=${URL_VALUE}`, '--set', 'com.example.k=v']);
  assert.equal(human.code, 0, human.stderr);
  const reopened = await openStore(dir);
  t.after(() => reopened.close());
  const now = reopened.resolveRef('example.com/cli:v1');
  const g = await readGraph(reopened, now.digest);
  const digests = [now.digest, ...g.manifests.map((m) => m.entry.digest)];
  for (const d of digests) assert.ok(human.stdout.includes(d), `the output names ${d}`);
  assert.match(human.stdout, /index\s+sha256:[a-f0-9]{64} -> sha256:[a-f0-9]{64}/);
  assert.match(human.stdout, /linux\/amd64\s+sha256:[a-f0-9]{64} -> /);
  assert.match(human.stdout, /tag example\.com\/cli:v1 now points at/);

  const json = await gadget(['--store', dir, '--json', 'annotate', 'example.com/cli:v1', '--set', 'com.example.k=w', '--level', 'index']);
  assert.equal(json.code, 0, json.stderr);
  const result = JSON.parse(json.stdout);
  assert.equal(result.old.digest, now.digest);
  assert.equal(result.changed, true);
  assert.deepEqual(result.diffs, [{ level: 'index', at: 'index', key: 'com.example.k', from: 'v', to: 'w' }]);

  const again = await gadget(['--store', dir, 'annotate', 'example.com/cli:v1', '--set', 'com.example.k=w', '--level', 'index']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, new RegExp(`example\\.com/cli:v1  ${result.new.digest}  unchanged`));

  const dry = await gadget(['--store', dir, 'annotate', '--all', '*', '--unset', 'com.example.k', '--dry-run']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /dry run: nothing written/);
  assert.match(dry.stdout, /1 images: 1 would change/);
});

test('gadget annotate: each bad input exits 2 with a clear error and leaves index.json as it was', async (t) => {
  await assertCli();
  const { store, dir } = await newStore(t);
  await store.tag(await putImage(store, 'bad'), 'example.com/bad:v1');
  store.close();
  const indexJson = readFileSync(join(dir, 'index.json'));
  const blobs = blobCount(dir);
  const ref = 'example.com/bad:v1';
  const cases: Array<[string[], RegExp]> = [
    [[ref, '--set', '=value'], /annotation key must not be empty/],
    [[ref, '--unset', ''], /annotation key must not be empty/],
    [[ref, '--set', `${ANN_REF_NAME}=x`], /org\.opencontainers\.image\.ref\.name: this annotation holds the tag/],
    [[ref, '--set', `${ANN_CREATED}=2026-01-02`], /RFC 3339/],
    [[ref, '--set', 'k=v', '--level', 'layer'], /--level "layer": unknown level/],
    [[ref, '--set', 'k=v', '--platform', 's390x'], /--platform "s390x": unknown platform/],
    [[ref, '--set', 'k=v', '--unset', 'k'], /k is both set and unset/],
    [[ref, '--set', 'k=v', '--set', 'k=w'], /given twice/],
    [[ref], /nothing to change/],
    [['--all', '*', '--set', 'k=v', '-t', 'example.com/x:v2'], /cannot take -t/],
    [[ref, '--all', '*', '--set', 'k=v'], /either REF or --all/],
  ];
  for (const [args, message] of cases) {
    const r = await gadget(['--store', dir, 'annotate', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.match(r.stderr, /^error: /);
    noStack(r.stderr);
    assert.deepEqual(readFileSync(join(dir, 'index.json')), indexJson, `${args.join(' ')}: index.json is untouched`);
  }
  const missing = await gadget(['--store', dir, 'annotate', 'example.com/nothing:v1', '--set', 'k=v']);
  assert.equal(missing.code, 1, 'a missing image is a failure found');
  assert.match(missing.stderr, /^error: example\.com\/nothing:v1 is not in store/);
  const unmatched = await gadget(['--store', dir, 'annotate', '--all', 'nothing*', '--set', 'k=v']);
  assert.equal(unmatched.code, 1, 'a pattern that matches nothing is a failure found');
  assert.match(unmatched.stderr, /^error: the pattern "nothing\*" matched no image\nhint: /);
  assert.deepEqual(readFileSync(join(dir, 'index.json')), indexJson, 'index.json is untouched');
  assert.equal(blobCount(dir), blobs);
});

interface FsckProblem {
  kind: string;
  subject: string;
}

async function cliFsck(store: string, ...flags: string[]): Promise<{ code: number | null; problems: FsckProblem[] }> {
  const r = await gadget(['--store', store, '--json', 'fsck', ...flags]);
  assert.ok(r.code === 0 || r.code === 1, r.stderr);
  return { code: r.code, problems: (JSON.parse(r.stdout) as { problems: FsckProblem[] }).problems };
}

test('SIGKILL in the middle of gadget annotate --all leaves every tag resolving and gadget fsck clean', async (t) => {
  await assertCli();
  const base = tempDir(t);
  const template = join(base, 'template');
  const store = await openStore(template);
  const N = 12;
  const refs: string[] = [];
  for (let i = 0; i < N; i++) {
    refs.push(`example.com/crash/g${i}:v1`);
    await store.tag(await putImage(store, `crash-${i}`), refs[i]!);
  }
  const oldDigests = refs.map((r) => store.resolveRef(r).digest);
  store.close();
  const initialBlobs = blobCount(template);
  const newBlobs = N * 3; // two manifests and an index per image

  let current = '';
  const indexStat = (): string => {
    try {
      const st = statSync(join(current, 'index.json'), { bigint: true });
      return `${st.ino}:${st.mtimeNs}`;
    } catch {
      return '';
    }
  };
  let initialIndex = '';
  const points: KillPoint[] = [
    { delayMs: 0 },
    { delayMs: 150 },
    { label: 'a temporary file exists', when: () => readdirSync(join(current, 'gadget-oci', 'tmp')).some((f) => f.startsWith('.tmp-')) },
    { label: 'the first new blob', when: () => blobCount(current) > initialBlobs },
    { label: 'half of the new blobs', when: () => blobCount(current) >= initialBlobs + newBlobs / 2 },
    { label: 'every new blob', when: () => blobCount(current) >= initialBlobs + newBlobs },
    { label: 'index.json replaced', when: () => indexStat() !== initialIndex },
  ];
  const outcomes: string[] = [];
  for (const [i, point] of points.entries()) {
    const label = 'delayMs' in point ? `after ${point.delayMs} ms` : `when ${point.label}`;
    // The kill must land while annotate runs: a run that finished first proves nothing, so it
    // is tried again (a few times) and the test fails if the kill never lands.
    let killed = false;
    for (let attempt = 0; attempt < 3 && !killed; attempt++) {
      current = join(base, `run${i}-${attempt}`);
      cpSync(template, current, { recursive: true });
      initialIndex = indexStat();
      const child = spawnGadget(['--store', current, 'annotate', '--all', 'example.com/crash/*', '--set', `${ANN_URL}=${URL_VALUE}`]);
      child.stdout!.resume();
      child.stderr!.resume();
      if ('delayMs' in point) killed = await killAt(child, point);
      else {
        // Stopped (SIGSTOP) exactly when the condition holds, then killed: the moment is certain.
        killed = await freezeWhen(child, point.when);
        if (killed) child.kill('SIGKILL');
      }
      await exited(child);
      if (killed) assert.equal(child.signalCode, 'SIGKILL', `${label}: annotate died of the kill`);
    }
    assert.ok(killed, `${label}: the kill landed while annotate was running`);

    const reopened = await openStore(current);
    let moved: number;
    try {
      const now = refs.map((r) => reopened.resolveRef(r).digest);
      moved = now.filter((d, k) => d !== oldDigests[k]).length;
      assert.ok(moved === 0 || moved === N, `${label}: the tags move all together (moved ${moved} of ${N})`);
      for (const d of now) assert.equal((await readGraph(reopened, d)).manifests.length, 2, `${label}: every tag resolves to a complete image`);
    } finally {
      reopened.close();
    }
    // A dead writer's temporary files are a notice, not damage: fsck exits 0 at once.
    const check = await cliFsck(current);
    assert.deepEqual(check.problems, [], `${label}: gadget fsck is clean`);
    assert.equal(check.code, 0);
    const temps = readdirSync(join(current, 'gadget-oci', 'tmp')).length;
    outcomes.push(`${label}: killed, ${moved ? 'new' : 'old'} tags, ${temps} temporary files left`);

    // Running the command again finishes the job and removes what the dead one left.
    const rerun = await gadget(['--store', current, 'annotate', '--all', 'example.com/crash/*', '--set', `${ANN_URL}=${URL_VALUE}`]);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.deepEqual(readdirSync(join(current, 'gadget-oci', 'tmp')), [], `${label}: the re-run removed the temporary files`);
    const done = await openStore(current);
    const final = refs.map((r) => done.resolveRef(r).digest);
    done.close();
    assert.ok(final.every((d, k) => d !== oldDigests[k]), `${label}: a second run moves every tag`);
    rmSync(current, { recursive: true, force: true });
  }
  t.diagnostic(outcomes.join('; '));
});
