// `gadget list --json` (one JSON array) and `--jsonl` (a line per record) are written as they
// are read: the output must still be exactly what the store holds, in reference order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MT_INDEX, MT_MANIFEST } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';
import { openStore, type ImageRecord } from '../store/store.js';
import { gadget } from './helpers/cli.js';
import { tempDir } from './helpers/sync.js';

const TAGS = 300;

test('list --json is one valid array and --jsonl one record per line, for a store with hundreds of tags', async (t) => {
  const dir = await tempDir(t, 'gadget-list-');
  const store = await openStore(dir);
  t.after(() => store.close());
  // A few images (a two-platform index among them), each under many tags.
  const images: Descriptor[] = [];
  for (const name of ['a', 'b', 'c']) {
    const config = await store.putBytes(Buffer.from(`name: ${name}\n`), 'application/vnd.gadget.config.v1+yaml');
    const manifest = await store.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT_MANIFEST, config, layers: [] })), MT_MANIFEST);
    images.push(manifest);
  }
  const platforms = ['amd64', 'arm64'].map((architecture, i) => ({ ...images[i]!, platform: { architecture, os: 'linux' } }));
  images.push(await store.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT_INDEX, manifests: platforms, annotations: { 'org.opencontainers.image.title': 'multi <&>' } })), MT_INDEX));
  await store.tagMany(Array.from({ length: TAGS }, (_, i) => ({ descriptor: images[i % images.length]!, ref: `registry.example.com/team${i % 7}/gadget${i}:v${i % 3}` })));
  const expected: ImageRecord[] = store.list();
  assert.equal(expected.length, TAGS);
  assert.ok(expected.some((r) => r.platforms.length === 2 && r.title === 'multi <&>'), 'the index is listed with its platforms and title');

  const json = await gadget(['--store', dir, 'list', '--json']);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout), expected, 'the same records, in reference order');
  const refs = expected.map((r) => r.ref);
  assert.deepEqual(refs, [...refs].sort(), 'sorted by reference');

  const jsonl = await gadget(['--store', dir, 'list', '--jsonl']);
  assert.equal(jsonl.code, 0, jsonl.stderr);
  assert.ok(jsonl.stdout.endsWith('\n'));
  const lines = jsonl.stdout.slice(0, -1).split('\n');
  assert.equal(lines.length, TAGS);
  assert.deepEqual(lines.map((l) => JSON.parse(l)), expected);
  // Byte for byte what JSON.stringify gives (member order included): the store serializes
  // what tags share once per manifest, and that must not show.
  assert.deepEqual(lines, expected.map((r) => JSON.stringify(r)));

  const filtered = await gadget(['--store', dir, 'list', '--jsonl', 'registry.example.com/team3/*']);
  assert.deepEqual(filtered.stdout.trim().split('\n').map((l) => JSON.parse(l)), expected.filter((r) => r.ref.startsWith('registry.example.com/team3/')));

  const both = await gadget(['--store', dir, '--json', 'list', '--jsonl']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /error: give --json .* or --jsonl .*, not both/);
});

test('list --json of an empty store is an empty array, --jsonl prints nothing', async (t) => {
  const dir = await tempDir(t, 'gadget-list-');
  (await openStore(dir)).close();
  const json = await gadget(['--store', dir, 'list', '--json']);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout), []);
  const jsonl = await gadget(['--store', dir, 'list', '--jsonl']);
  assert.equal(jsonl.code, 0, jsonl.stderr);
  assert.equal(jsonl.stdout, '');
});
