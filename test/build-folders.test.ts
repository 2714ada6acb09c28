// Folders without build.yaml, as `gadget build --help` promises them: a lone .wasm module is
// a wasm-only gadget, a lone gadget.yaml a metadata-only one (ig builds and runs both).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GADGET_CONFIG, GADGET_WASM, MT_EMPTY } from '../lib/oci/mediatypes.js';
import { openStore } from '../store/store.js';
import { gadget } from './helpers/cli.js';
import { REPO, scratch } from './helpers/paths.js';

const WASM = join(REPO, 'examples', 'hello_wasm', 'program.wasm');
const YAML = join(REPO, 'examples', 'hello_wasm', 'gadget.yaml');

async function manifestsOf(storeDir: string, ref: string): Promise<Array<{ config: { mediaType: string; digest: string }; layers: Array<{ mediaType: string }> }>> {
  const store = await openStore(storeDir);
  try {
    const index = JSON.parse((await store.readBytes(store.resolveRef(ref))).toString('utf8')) as { manifests: Array<{ digest: string; mediaType: string; size: number }> };
    return Promise.all(index.manifests.map(async (d) => JSON.parse((await store.readBytes(d)).toString('utf8'))));
  } finally {
    store.close();
  }
}

test('a folder with only a .wasm module builds a wasm-only image', async () => {
  const dir = join(scratch(), 'lone_wasm');
  mkdirSync(dir);
  copyFileSync(WASM, join(dir, 'module.wasm'));
  const store = join(dir, '..', 'store');
  const built = await gadget(['--store', store, 'build', dir, '-t', 'example.com/lone/wasm:v1']);
  assert.equal(built.code, 0, built.stderr);
  const manifests = await manifestsOf(store, 'example.com/lone/wasm:v1');
  assert.equal(manifests.length, 2);
  for (const m of manifests) {
    assert.deepEqual(m.layers.map((l) => l.mediaType), [GADGET_WASM]);
    assert.equal(m.config.mediaType, MT_EMPTY, 'no gadget.yaml: the OCI empty config, as ig');
  }
  copyFileSync(WASM, join(dir, 'other.wasm'));
  const two = await gadget(['--store', store, 'build', dir, '-t', 'example.com/lone/wasm:v2']);
  assert.equal(two.code, 2);
  assert.match(two.stderr, /2 \.wasm modules \(module\.wasm, other\.wasm\) and no build\.yaml/);
});

test('a folder with only gadget.yaml builds a metadata-only image', async () => {
  const dir = join(scratch(), 'lone_yaml');
  mkdirSync(dir);
  copyFileSync(YAML, join(dir, 'gadget.yaml'));
  const store = join(dir, '..', 'store');
  const built = await gadget(['--store', store, 'build', dir, '-t', 'example.com/lone/meta:v1']);
  assert.equal(built.code, 0, built.stderr);
  const manifests = await manifestsOf(store, 'example.com/lone/meta:v1');
  const storeHandle = await openStore(store);
  try {
    for (const m of manifests) {
      assert.deepEqual(m.layers, []);
      assert.equal(m.config.mediaType, GADGET_CONFIG);
      assert.deepEqual(await storeHandle.readBytes(m.config as never), readFileSync(YAML), 'gadget.yaml\'s bytes, unchanged');
    }
  } finally {
    storeHandle.close();
  }
});
