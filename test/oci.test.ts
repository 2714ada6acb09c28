import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { encodeJSON } from '../lib/oci/json.js';
import { parseRef, isSignatureTag } from '../lib/oci/reference.js';
import { DigestVerifier, sha256 } from '../lib/oci/digest.js';
import { GadgetError } from '../lib/errors.js';

test('references are completed as ig completes them', () => {
  const cases: Array<[string, string]> = [
    ['trace_exec', 'ghcr.io/inspektor-gadget/gadget/trace_exec:latest'],
    ['trace_exec:v0.40.0', 'ghcr.io/inspektor-gadget/gadget/trace_exec:v0.40.0'],
    ['myorg/x', 'ghcr.io/myorg/x:latest'],
    ['ghcr.io/myorg/x:v1', 'ghcr.io/myorg/x:v1'],
    ['localhost:5000/x', 'localhost:5000/x:latest'],
    ['localhost/x:1', 'localhost/x:1'],
    ['ttl.sh/signed_with_cosign_legacy:latest', 'ttl.sh/signed_with_cosign_legacy:latest'],
    ['127.0.0.1:5000/a/b/c:t', '127.0.0.1:5000/a/b/c:t'],
    [`x@sha256:${'a'.repeat(64)}`, `ghcr.io/inspektor-gadget/gadget/x@sha256:${'a'.repeat(64)}`],
    [`r.io/x:t@sha256:${'b'.repeat(64)}`, `r.io/x:t@sha256:${'b'.repeat(64)}`],
  ];
  for (const [input, expected] of cases) assert.equal(parseRef(input).toString(), expected, input);
  const ref = parseRef('localhost:5000/team/gadget:v2');
  assert.equal(ref.registry, 'localhost:5000');
  assert.equal(ref.repository, 'team/gadget');
  assert.equal(ref.tag, 'v2');
  assert.equal(ref.reference, 'v2');
});

test('malformed references give a clear usage error', () => {
  for (const bad of ['', 'UPPER/Case:x', 'a b', 'x:', 'x@sha256:123', 'ghcr.io/x:' + 't'.repeat(200), 'x//y', '-x', 'reg.io:port/x']) {
    assert.throws(
      () => parseRef(bad),
      (err: unknown) => err instanceof GadgetError && err.exitCode === 2 && err.message.includes('not a valid image reference'),
      bad,
    );
  }
});

test('signature tags are recognised', () => {
  assert.ok(isSignatureTag(`sha256-${'a'.repeat(64)}.sig`));
  assert.ok(isSignatureTag(`sha256-${'a'.repeat(64)}`));
  assert.ok(!isSignatureTag('latest'));
});

test('JSON is encoded as Go encoding/json does', () => {
  assert.equal(encodeJSON({ b: 1, a: '<x>&', annotations: { z: '1', a: '2' } }), '{"b":1,"a":"\\u003cx\\u003e\\u0026","annotations":{"a":"2","z":"1"}}');
  assert.equal(encodeJSON({ s: 'line\nbreak\ttab\u0001\u2028' }), '{"s":"line\\nbreak\\ttab\\u0001\\u2028"}');
  assert.equal(encodeJSON({ u: 'é😀', skip: undefined, n: null, list: [1, true] }), '{"u":"é😀","n":null,"list":[1,true]}');
  assert.equal(encodeJSON({ lone: '\ud800' }), '{"lone":"\ufffd"}');
});

test('annotation keys are sorted by UTF-8 bytes, as Go sorts map keys (not UTF-16 order)', () => {
  // U+1F600 is F0 9F 98 80 in UTF-8 (after EE 80 80 of U+E000 and EF BF BD of U+FFFD) but
  // the surrogate D83D in UTF-16 (before E000): the two orders differ exactly here.
  const keys = { 'k\u{1F600}': '1', 'k\uE000': '2', 'k\uFFFD': '3', k: '4', 'k~': '5' };
  assert.equal(encodeJSON({ annotations: keys }), '{"annotations":{"k":"4","k~":"5","k\uE000":"2","k\uFFFD":"3","k\u{1F600}":"1"}}');
  assert.ok(Object.keys(keys).sort().indexOf('k\u{1F600}') < Object.keys(keys).sort().indexOf('k\uE000'), 'UTF-16 order would put U+1F600 first');
});

test('ig manifests re-encode to their exact bytes', async (t) => {
  const { FIXTURE_LAYOUT, sharedMissing } = await import('./helpers/paths.js');
  const why = sharedMissing();
  if (why) return t.skip(why);
  const { readFileSync, readdirSync } = await import('node:fs');
  let checked = 0;
  for (const hex of readdirSync(`${FIXTURE_LAYOUT}/blobs/sha256`)) {
    const bytes = readFileSync(`${FIXTURE_LAYOUT}/blobs/sha256/${hex}`);
    let doc: unknown;
    try {
      doc = JSON.parse(bytes.toString());
    } catch {
      continue;
    }
    if (!(doc as { schemaVersion?: number }).schemaVersion || !bytes.toString().startsWith('{"schemaVersion"')) continue;
    assert.equal(sha256(Buffer.from(encodeJSON(doc))), `sha256:${hex}`, hex);
    checked++;
  }
  assert.ok(checked >= 10, `re-encoded ${checked} manifests`);
});

async function drain(stream: Readable, verifier: DigestVerifier): Promise<void> {
  await pipeline(stream, verifier, new Writable({ write: (_c, _e, cb) => cb() }));
}

test('the digest verifier passes matching content and fails on any difference', async () => {
  const data = Buffer.from('hello gadget');
  const good = { digest: sha256(data), size: data.length };
  await drain(Readable.from([data.subarray(0, 5), data.subarray(5)]), new DigestVerifier(good, 'blob'));
  const flipped = Buffer.from(data);
  flipped[3] ^= 1;
  await assert.rejects(drain(Readable.from([flipped]), new DigestVerifier(good, 'blob')), /content has digest/);
  await assert.rejects(drain(Readable.from([data.subarray(0, 4)]), new DigestVerifier(good, 'blob')), /got 4 bytes/);
  await assert.rejects(drain(Readable.from([data, data]), new DigestVerifier(good, 'blob')), /more than/);
});
