// Interop with another real client: skopeo pulls what this project pushed and pushes what this
// project pulls, and every manifest is byte-identical on both sides. The images: the example
// gadgets built by the project and ig's signed store (its images; skopeo copies no signatures).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { childrenOf } from '../lib/oci/copy.js';
import { isManifestType } from '../lib/oci/mediatypes.js';
import type { Descriptor, Index, Manifest } from '../lib/oci/types.js';
import { pullImage, pushImage } from '../plugins/sync.js';
import { openStore, type Store } from '../store/store.js';
import { registryAvailable, startRegistry, type TestRegistry } from './helpers/registry.js';
import { EXAMPLES, exampleStore, FAST_RETRY, fixtureStore, SIGNED, UNSIGNED } from './helpers/sync.js';
import { sharedMissing } from './helpers/paths.js';

const run = promisify(execFile);
const SKOPEO = '/usr/bin/skopeo';
const available = (await registryAvailable()) && existsSync(SKOPEO);
const SKIP = 'docker-registry or skopeo is not installed';

async function skopeo(args: string[]): Promise<Buffer> {
  const { stdout } = await run(SKOPEO, args, { encoding: 'buffer', maxBuffer: 64 << 20 });
  return stdout;
}

/** Every manifest and index under `root` in the store, by digest, with its bytes. */
async function manifestsOf(store: Store, root: Descriptor, out = new Map<string, Buffer>()): Promise<Map<string, Buffer>> {
  if (!isManifestType(root.mediaType) || out.has(root.digest)) return out;
  const bytes = await store.readBytes(root);
  out.set(root.digest, bytes);
  for (const child of childrenOf(root, JSON.parse(bytes.toString('utf8')) as Manifest & Index)) await manifestsOf(store, child, out);
  return out;
}

describe('interop with skopeo', () => {
  let reg: TestRegistry;
  let dir: string;
  let examples: Store;
  let fixture: Store | undefined;

  before(async () => {
    if (!available) return;
    reg = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'gadget-interop-'));
    examples = await exampleStore(dir);
    fixture = await fixtureStore(dir);
  });
  after(async () => {
    examples?.close();
    fixture?.close();
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The images to exchange: [store, ref] pairs. */
  const images = (): Array<[Store, string]> => [
    [examples, EXAMPLES.traceOpen],
    [examples, EXAMPLES.helloWasm],
    ...(fixture ? [...SIGNED, UNSIGNED].map((r): [Store, string] => [fixture!, r]) : []),
  ];

  test('skopeo reads what this project pushed, byte for byte', async (t) => {
    if (!available) return t.skip(SKIP);
    if (!fixture) t.diagnostic(`${sharedMissing()}: only the example gadgets are exchanged`);
    for (const [i, [store, ref]] of images().entries()) {
      const dest = `${reg.host}/ours/image${i}:v1`;
      const summary = await pushImage(store, ref, dest, FAST_RETRY);
      assert.equal(summary.images.failed, 0, JSON.stringify(summary.items));
      const root = store.resolveRef(ref);
      const ours = await manifestsOf(store, root);
      for (const [digest, bytes] of ours) {
        const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/ours/image${i}@${digest}`]);
        assert.deepEqual(raw, bytes, `${ref}: ${digest} as skopeo reads it`);
      }
      // And skopeo copies the whole multi-arch image out of the registry with the same digest.
      const layout = join(dir, `skopeo-out-${i}`);
      await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${dest}`, `oci:${layout}:${ref}`]);
      const theirs = await openStore(layout);
      t.after(() => theirs.close());
      assert.equal(theirs.resolveRef(ref).digest, root.digest, `${ref} in skopeo's layout`);
      assert.deepEqual(await manifestsOf(theirs, theirs.resolveRef(ref)), ours);
    }
  });

  test('this project reads what skopeo pushed, byte for byte', async (t) => {
    if (!available) return t.skip(SKIP);
    const pulled = await openStore(join(dir, 'pulled-from-skopeo'));
    t.after(() => pulled.close());
    for (const [i, [store, ref]] of images().entries()) {
      const dest = `${reg.host}/theirs/image${i}:v1`;
      await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${store.root}:${ref}`, `docker://${dest}`]);
      const summary = await pullImage(pulled, dest, FAST_RETRY);
      assert.equal(summary.images.failed, 0, JSON.stringify(summary.items));
      const root = store.resolveRef(ref);
      assert.equal(pulled.resolveRef(dest).digest, root.digest, `${ref} pushed by skopeo, pulled by us`);
      assert.deepEqual(await manifestsOf(pulled, pulled.resolveRef(dest)), await manifestsOf(store, root));
    }
  });
});
