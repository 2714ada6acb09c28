// Keys that JSON readers disagree on (lib/oci/json-keys.ts): the scanner itself, and a hostile
// image whose index carries a second, differently-cased "Manifests" list (which ig, decoding
// with Go's encoding/json, would run) refused by every reader of the project: verify, import,
// a copy into the store, sign and serve's push check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyGraph } from '../lib/oci/copy.js';
import { sha256 } from '../lib/oci/digest.js';
import { keyClash } from '../lib/oci/json-keys.js';
import { ANN_REF_NAME, GADGET_ARTIFACT_TYPE, GADGET_CONFIG, GADGET_EBPF, MT_INDEX, MT_MANIFEST } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';
import { checkPushedManifest } from '../serve/manifest-check.js';
import { openStore } from '../store/store.js';
import { importImages } from '../store/transfer.js';
import { verifyImages } from '../plugins/verify.js';
import { gadget } from './helpers/cli.js';
import { scratch } from './helpers/paths.js';

test('keyClash finds keys equal up to Go\'s case folding, and duplicates, in any object', () => {
  const cases: Array<[string, ReturnType<typeof keyClash>]> = [
    ['{"manifests":[],"Manifests":[]}', { path: '/', key: 'Manifests', earlier: 'manifests' }],
    ['{"m":[{"k":1},{"k":1,"K":2}]}', { path: '/m/1', key: 'K', earlier: 'k' }],
    // An escape spells the key; a string value that looks like a key is not one.
    ['{"s":"\\"Manifests\\" {","manifests":"x \\\\","\\u004danifests":1}', { path: '/', key: 'Manifests', earlier: 'manifests' }],
    // Go folds U+017F (long s) to "s" and U+212A (Kelvin sign) to "k".
    ['{"x":{"layer\u017f":1}}', { path: '/x', key: 'layer\u017f', earlier: 'layers', alone: true }],
    ['{"sizes\u017f":1,"sizess":2}', { path: '/', key: 'sizess', earlier: 'sizes\u017f' }],
    ['{"\u212aey":1,"key":2}', { path: '/', key: 'key', earlier: '\u212aey' }],
    ['{"a/b":{"c":1,"c":2}}', { path: '/a~1b', key: 'c', earlier: 'c' }],
    ['{"x":[1,2,{"y":"}]","Y":1}]}', { path: '/x/2', key: 'Y', earlier: 'y' }],
    // Annotations decode into a Go map, where case matters: only an exact duplicate clashes.
    ['{"annotations":{"x":"1","X":"2"}}', undefined],
    ['{"annotations":{"x":"1","x":"2"}}', { path: '/annotations', key: 'x', earlier: 'x' }],
    // Alone, a field's name in another case is that field to ig and nothing to JSON.parse.
    ['{"Annotations":{"x":"1"}}', { path: '/', key: 'Annotations', earlier: 'annotations', alone: true }],
    ['{"layers":[{"mediaType":"a","Digest":"sha256:x","size":1}]}', { path: '/layers/0', key: 'Digest', earlier: 'digest', alone: true }],
    // The same key in two objects is fine.
    ['{"a":{"k":1},"b":{"k":1},"c":[{"k":1},{"K":1}]}', undefined],
    ['[1,"a",{"b":null}]', undefined],
  ];
  for (const [text, want] of cases) assert.deepEqual(keyClash(text), want, text);
  // Deep nesting does not overflow the stack.
  assert.equal(keyClash(`${'['.repeat(200_000)}${']'.repeat(200_000)}`), undefined);
});

/** A layout (folder) with a gadget image whose index has a later "Manifests" list; returns it and the index. */
function hostileLayout(dir: string): { layout: string; index: Descriptor; text: string } {
  const layout = join(dir, 'layout');
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  const put = (bytes: Buffer | string, mediaType: string): Descriptor => {
    const b = Buffer.from(bytes);
    const digest = sha256(b);
    writeFileSync(join(layout, 'blobs', 'sha256', digest.slice(7)), b);
    return { mediaType, digest, size: b.length };
  };
  const config = put('name: t\n', GADGET_CONFIG);
  const manifest = (ebpf: string): Descriptor => put(JSON.stringify({ schemaVersion: 2, artifactType: GADGET_ARTIFACT_TYPE, config, layers: [put(ebpf, GADGET_EBPF)] }), MT_MANIFEST);
  const entries = (m: Descriptor): Descriptor[] => ['amd64', 'arm64'].map((architecture) => ({ ...m, platform: { architecture, os: 'linux' } }));
  const text = `{"schemaVersion":2,"mediaType":"${MT_INDEX}","manifests":${JSON.stringify(entries(manifest('benign')))},"Manifests":${JSON.stringify(entries(manifest('what ig runs')))}}`;
  const index = put(text, MT_INDEX);
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...index, annotations: { [ANN_REF_NAME]: 'example.com/dup:v1' } }] }));
  return { layout, index, text };
}

const CLASH = /holds both "manifests" and "Manifests" at \/, which ig \(Go's encoding\/json\) reads as one key/;

test('an index with a second "Manifests" list: verify fails it, import and a copy refuse it, sign signs nothing', async () => {
  const dir = scratch('gadget-json-keys-');
  const { layout, index, text } = hostileLayout(dir);

  // Verify, on the layout as a store (both profiles).
  const verified = await gadget(['--store', layout, '--json', 'verify', 'example.com/dup:v1', '--profile', 'ig']);
  assert.equal(verified.code, 1, verified.stdout + verified.stderr);
  const finding = (JSON.parse(verified.stdout) as { images: Array<{ findings: Array<{ rule: string; path: string; message: string }> }> }).images[0]!.findings[0]!;
  assert.equal(finding.rule, 'GADGET-MANIFEST-INVALID');
  assert.equal(finding.path, '/');
  assert.match(finding.message, CLASH);

  // Sign: the graph a signature would vouch for is not the one ig reads.
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(dir, 'sign.key')]);
  const signed = await gadget(['--store', layout, 'sign', 'example.com/dup:v1', '--key', join(dir, 'sign.key')]);
  assert.equal(signed.code, 1, signed.stderr);
  assert.match(signed.stderr, /nothing was signed: example\.com\/dup:v1 \(sha256:[0-9a-f]{64}\) cannot be followed: .*holds both "manifests" and "Manifests"/);

  // Import reads the layout's manifests before it copies anything.
  const store = await openStore(join(dir, 'store'));
  try {
    await assert.rejects(importImages(store, layout), CLASH);
    assert.deepEqual(store.list(), []);
    // A copy (pull, sync, copy) reads every manifest through fetchManifest.
    const source = await openStore(layout);
    try {
      await assert.rejects(copyGraph(source, store, index, ['example.com/dup:v1']), CLASH);
      assert.equal((await verifyImages(source, ['example.com/dup:v1'], { profile: 'spec' }))[0]!.findings[0]!.rule, 'GADGET-MANIFEST-INVALID');
    } finally {
      source.close();
    }
    // serve refuses the push (MANIFEST_INVALID) before it looks at the children.
    await assert.rejects(checkPushedManifest(store, Buffer.from(text), MT_INDEX), (err: Error & { code?: string }) => err.code === 'MANIFEST_INVALID' && CLASH.test(err.message));
  } finally {
    store.close();
  }
});
