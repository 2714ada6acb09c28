// The pure assembly of gadget images (plugins/build/image.ts): structure, field order,
// annotations, and byte equality with images that ig itself built.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { GadgetError } from '../lib/errors.js';
import { FIXTURE_LAYOUT } from './helpers/paths.js';
import { metadataAnnotations, parseMetadata } from '../lib/gadget/metadata.js';
import { sha256 } from '../lib/oci/digest.js';
import {
  ANN_BUILDER_VERSION,
  ANN_CREATED,
  ANN_TITLE,
  EMPTY_DIGEST,
  GADGET_ARTIFACT_TYPE,
  GADGET_BTFGEN,
  GADGET_CONFIG,
  GADGET_EBPF,
  GADGET_WASM,
  MT_EMPTY,
  MT_INDEX,
  MT_MANIFEST,
} from '../lib/oci/mediatypes.js';
import type { Index, Manifest } from '../lib/oci/types.js';
import { assembleImage, createdAnnotation, formatRFC3339, gadgetAnnotations, sourceDateEpoch } from '../plugins/build/image.js';

const layout = FIXTURE_LAYOUT;

const ann = (extra: Record<string, string> = {}) =>
  gadgetAnnotations({
    metadata: metadataAnnotations({ name: 'demo', description: 'a <demo> & more' }),
    builderVersion: 'v0.45.0',
    extra: [extra],
    created: '2024-01-02T03:04:05Z',
  });

const obj = (s: string) => Buffer.from(`\x7fELF-fake-${s}`);

test('manifest, index and descriptors are encoded in Go struct field order', () => {
  const img = assembleImage({ config: Buffer.from('name: demo\n'), annotations: ann(), ebpf: { amd64: obj('a'), arm64: obj('b') }, wasm: Buffer.from('wasm') });
  const manifest = JSON.parse(img.manifests[0]!.bytes.toString()) as Manifest;
  assert.deepEqual(Object.keys(manifest), ['schemaVersion', 'artifactType', 'config', 'layers', 'annotations']);
  assert.equal(manifest.mediaType, undefined, 'ig writes no top-level mediaType in the manifest');
  assert.equal(manifest.artifactType, GADGET_ARTIFACT_TYPE);
  assert.deepEqual(Object.keys(manifest.config), ['mediaType', 'digest', 'size', 'annotations']);
  for (const layer of manifest.layers) assert.deepEqual(Object.keys(layer), ['mediaType', 'digest', 'size'], 'layers carry no annotations');
  const index = JSON.parse(img.index.bytes.toString()) as Index;
  assert.deepEqual(Object.keys(index), ['schemaVersion', 'mediaType', 'manifests', 'annotations']);
  assert.equal(index.mediaType, MT_INDEX);
  for (const entry of index.manifests) {
    assert.deepEqual(Object.keys(entry), ['mediaType', 'digest', 'size', 'annotations', 'platform']);
    assert.deepEqual(Object.keys(entry.platform!), ['architecture', 'os']);
    assert.equal(entry.mediaType, MT_MANIFEST);
  }
  assert.deepEqual(index.manifests.map((m) => m.platform), [{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux' }]);
  // Go's encoder escapes <, > and &; annotation keys are sorted.
  assert.match(img.manifests[0]!.bytes.toString(), /a \\u003cdemo\\u003e \\u0026 more/);
  const keys = Object.keys(manifest.annotations!);
  assert.deepEqual(keys, [...keys].sort());
});

test('the same annotation map is on the config descriptor, each manifest, each index entry and the index', () => {
  const annotations = ann({ 'org.example.team': 'net' });
  const img = assembleImage({ config: Buffer.from('name: demo\n'), annotations, ebpf: { amd64: obj('a'), arm64: obj('b') } });
  const index = JSON.parse(img.index.bytes.toString()) as Index;
  assert.deepEqual(index.annotations, annotations);
  assert.deepEqual(img.index.descriptor.annotations, annotations, 'the tagged index descriptor carries them, as ig tags it');
  for (const entry of index.manifests) assert.deepEqual(entry.annotations, annotations);
  for (const m of img.manifests) {
    const manifest = JSON.parse(m.bytes.toString()) as Manifest;
    assert.deepEqual(manifest.annotations, annotations);
    assert.deepEqual(manifest.config.annotations, annotations);
  }
});

test('layers are ebpf, wasm, btfgen in that order, one object and one btfgen tarball per arch', () => {
  const img = assembleImage({
    config: Buffer.from('name: demo\n'),
    annotations: ann(),
    ebpf: { amd64: obj('a'), arm64: obj('b') },
    wasm: Buffer.from('wasm'),
    btfgen: { amd64: Buffer.from('btf-x86'), arm64: Buffer.from('btf-arm') },
  });
  const [amd, arm] = img.manifests.map((m) => JSON.parse(m.bytes.toString()) as Manifest);
  assert.deepEqual(amd!.layers.map((l) => l.mediaType), [GADGET_EBPF, GADGET_WASM, GADGET_BTFGEN]);
  assert.equal(amd!.layers[0]!.digest, sha256(obj('a')));
  assert.equal(arm!.layers[0]!.digest, sha256(obj('b')));
  assert.equal(amd!.layers[1]!.digest, arm!.layers[1]!.digest, 'one wasm module for both');
  assert.equal(amd!.layers[2]!.digest, sha256(Buffer.from('btf-x86')));
  assert.equal(arm!.layers[2]!.digest, sha256(Buffer.from('btf-arm')));
  assert.equal(amd!.config.mediaType, GADGET_CONFIG);
  assert.equal(amd!.config.digest, sha256(Buffer.from('name: demo\n')));
  // Every blob once, children before parents.
  const digests = img.blobs.map((b) => b.descriptor.digest);
  assert.equal(new Set(digests).size, digests.length);
  assert.equal(digests.at(-1), img.index.descriptor.digest);
  for (const b of img.blobs) assert.equal(b.descriptor.digest, sha256(b.bytes));
});

test('without gadget.yaml the config is the OCI empty descriptor, inline data included', () => {
  const img = assembleImage({ annotations: ann(), ebpf: { amd64: obj('a'), arm64: obj('b') } });
  const manifest = JSON.parse(img.manifests[0]!.bytes.toString()) as Manifest;
  assert.deepEqual(Object.keys(manifest.config), ['mediaType', 'digest', 'size', 'annotations', 'data']);
  assert.equal(manifest.config.mediaType, MT_EMPTY);
  assert.equal(manifest.config.digest, EMPTY_DIGEST);
  assert.equal(manifest.config.size, 2);
  assert.equal(manifest.config.data, 'e30=');
  const empty = img.blobs.find((b) => b.descriptor.digest === EMPTY_DIGEST);
  assert.equal(empty?.bytes.toString(), '{}');
});

test('byte-identical manifests are listed twice under one digest (wasm-only and metadata-only gadgets)', () => {
  const img = assembleImage({ config: Buffer.from('name: demo\n'), annotations: ann(), wasm: Buffer.from('wasm') });
  const index = JSON.parse(img.index.bytes.toString()) as Index;
  assert.equal(index.manifests.length, 2);
  assert.equal(index.manifests[0]!.digest, index.manifests[1]!.digest);
  assert.deepEqual(index.manifests.map((m) => m.platform!.architecture), ['amd64', 'arm64']);
  assert.equal(img.blobs.filter((b) => b.descriptor.mediaType === MT_MANIFEST).length, 1);
  const only = assembleImage({ config: Buffer.from('name: demo\n'), annotations: ann() });
  assert.deepEqual((JSON.parse(only.manifests[0]!.bytes.toString()) as Manifest).layers, []);
});

test('prebuilt objects for one arch give an index with that arch only', () => {
  const img = assembleImage({ annotations: ann(), ebpf: { arm64: obj('b') } });
  assert.deepEqual(img.manifests.map((m) => m.arch), ['arm64']);
  assert.throws(() => assembleImage({ annotations: ann(), ebpf: { arm64: obj('b') }, btfgen: { amd64: Buffer.from('x'), arm64: Buffer.from('y') } }), GadgetError);
});

test('annotations are built in ig order: metadata, builder version, gadget.yaml annotations, extra, created', () => {
  const meta = { name: 'demo', annotations: { [ANN_TITLE]: 'from yaml', [ANN_BUILDER_VERSION]: 'yaml-builder', 'x.a': 'yaml' } };
  const a = gadgetAnnotations({
    metadata: metadataAnnotations(meta),
    metadataAnnotations: meta.annotations,
    builderVersion: 'v1',
    extra: [{ 'x.a': 'config', 'x.b': 'config' }, { 'x.b': 'cli', [ANN_CREATED]: 'ignored' }],
    created: '2024-01-02T03:04:05Z',
  });
  assert.equal(a[ANN_TITLE], 'from yaml');
  assert.equal(a[ANN_BUILDER_VERSION], 'yaml-builder', "gadget.yaml's annotations override the builder version");
  assert.equal(a['x.a'], 'config');
  assert.equal(a['x.b'], 'cli');
  assert.equal(a[ANN_CREATED], '2024-01-02T03:04:05Z', 'created is set last');
  assert.equal(a['org.opencontainers.image.url'], '', 'missing metadata fields are written as empty strings');
  // Without gadget.yaml ig writes only `created` (no builder version, no empty five).
  const none = gadgetAnnotations({ builderVersion: 'v1', created: 'c' });
  assert.deepEqual(none, { [ANN_CREATED]: 'c' });
});

test('without gadget.yaml the bytes are what ig writes: the empty config and only `created`', () => {
  const object = obj('a');
  const annotations = gadgetAnnotations({ builderVersion: 'v0.45.0', created: createdAnnotation({ SOURCE_DATE_EPOCH: '1700000000' }) });
  const img = assembleImage({ annotations, ebpf: { amd64: object } });
  // Written out by hand in the field order of ig's Go structs (image-spec v1.1), compact.
  const ann = '{"org.opencontainers.image.created":"2023-11-14T22:13:20Z"}';
  const layer = `{"mediaType":"${GADGET_EBPF}","digest":"${sha256(object)}","size":${object.length}}`;
  const manifest = `{"schemaVersion":2,"artifactType":"${GADGET_ARTIFACT_TYPE}","config":{"mediaType":"${MT_EMPTY}","digest":"${EMPTY_DIGEST}","size":2,"annotations":${ann},"data":"e30="},"layers":[${layer}],"annotations":${ann}}`;
  assert.equal(img.manifests[0]!.bytes.toString(), manifest);
  const index = `{"schemaVersion":2,"mediaType":"${MT_INDEX}","manifests":[{"mediaType":"${MT_MANIFEST}","digest":"${sha256(Buffer.from(manifest))}","size":${manifest.length},"annotations":${ann},"platform":{"architecture":"amd64","os":"linux"}}],"annotations":${ann}}`;
  assert.equal(img.index.bytes.toString(), index);
});

test('annotation keys beyond U+FFFF are ordered as Go orders them in the manifest bytes', () => {
  const img = assembleImage({ config: Buffer.from('name: demo\n'), annotations: ann({ 'x.\u{10000}': 'a', 'x.\uE000': 'b', 'x.\uFFFF': 'c' }) });
  const text = img.manifests[0]!.bytes.toString();
  const at = (k: string) => text.indexOf(JSON.stringify(k));
  assert.ok(at('x.\uE000') < at('x.\uFFFF') && at('x.\uFFFF') < at('x.\u{10000}'), 'UTF-8 byte order: U+E000 < U+FFFF < U+10000');
});

test('created follows Go time.RFC3339 and SOURCE_DATE_EPOCH', () => {
  assert.equal(createdAnnotation({ SOURCE_DATE_EPOCH: '1700000000' }), '2023-11-14T22:13:20Z');
  assert.equal(createdAnnotation({ SOURCE_DATE_EPOCH: '0' }), '1970-01-01T00:00:00Z');
  assert.equal(formatRFC3339(Date.UTC(2025, 9, 20, 12, 6, 44, 999), 120), '2025-10-20T14:06:44+02:00');
  assert.equal(formatRFC3339(Date.UTC(2025, 9, 20, 12, 6, 44), -90), '2025-10-20T10:36:44-01:30');
  assert.equal(formatRFC3339(Date.UTC(2025, 0, 1), 0), '2025-01-01T00:00:00Z');
  const now = new Date();
  assert.match(createdAnnotation({}, now), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/);
  assert.equal(sourceDateEpoch({}), undefined);
  for (const bad of ['', 'abc', '1.5', ' 12']) {
    assert.throws(() => createdAnnotation({ SOURCE_DATE_EPOCH: bad }), (e: unknown) => e instanceof GadgetError && e.exitCode === 2 && /SOURCE_DATE_EPOCH/.test(e.message));
  }
});

test('the same inputs with SOURCE_DATE_EPOCH give the same index digest', () => {
  const make = () =>
    assembleImage({
      config: Buffer.from('name: demo\n'),
      annotations: gadgetAnnotations({ builderVersion: 'v1', created: createdAnnotation({ SOURCE_DATE_EPOCH: '1700000000' }) }),
      ebpf: { amd64: obj('a'), arm64: obj('b') },
    });
  const a = make();
  const b = make();
  assert.equal(a.index.descriptor.digest, b.index.descriptor.digest);
  assert.ok(a.index.bytes.equals(b.index.bytes));
});

test("rebuilds ig's own gadget images byte for byte (fixtures/ig-signed-store)", (t) => {
  if (!existsSync(layout)) {
    t.skip(`../shared fixtures not found at ${layout}`);
    return;
  }
  const blobs = path.join(layout, 'blobs/sha256');
  const read = (digest: string) => readFileSync(path.join(blobs, digest.slice('sha256:'.length)));
  let checked = 0;
  for (const file of readdirSync(blobs)) {
    const bytes = readFileSync(path.join(blobs, file));
    let index: Index;
    try {
      index = JSON.parse(bytes.toString()) as Index;
    } catch {
      continue;
    }
    if (index.mediaType !== MT_INDEX || !index.manifests?.every((m) => m.platform)) continue;
    const manifest = JSON.parse(read(index.manifests[0]!.digest).toString()) as Manifest;
    if (manifest.artifactType !== GADGET_ARTIFACT_TYPE) continue;
    // The inputs ig had: the gadget.yaml (config blob), its version and the build time.
    const config = read(manifest.config.digest);
    const meta = parseMetadata(config, `config ${manifest.config.digest}`);
    const annotations = gadgetAnnotations({
      metadata: metadataAnnotations(meta),
      metadataAnnotations: meta.annotations,
      builderVersion: manifest.annotations![ANN_BUILDER_VERSION]!,
      created: manifest.annotations![ANN_CREATED]!,
    });
    const img = assembleImage({ config, annotations });
    assert.ok(img.manifests[0]!.bytes.equals(read(index.manifests[0]!.digest)), `manifest ${index.manifests[0]!.digest} differs`);
    assert.equal(img.index.descriptor.digest, `sha256:${file}`);
    assert.ok(img.index.bytes.equals(bytes), `index ${file} differs`);
    checked++;
  }
  // f131c96d... (arm64 and amd64 of ttl.sh/signed_with_cosign_legacy) is one of them.
  assert.ok(checked >= 1, 'no ig-built gadget index found in the fixture');
  t.diagnostic(`${checked} ig-built images rebuilt byte for byte`);
});
