// SIGKILL campaigns against commands that write the store from elsewhere: pull (from the real
// docker-registry, started here) and annotate. After each kill the next run completes,
// `gadget fsck` exits 0 and an independent check of the layout holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../store/store.js';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { GADGET_ARTIFACT_TYPE, GADGET_CONFIG, GADGET_EBPF, MT_INDEX, MT_MANIFEST } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';
import { gadget, spawnGadget } from './helpers/cli.js';
import { checkLayout, runCampaign, table, timeRun, type CampaignRow } from './helpers/campaign.js';
import { registryAvailable, startRegistry } from './helpers/registry.js';
import { scratch } from './helpers/paths.js';

async function writeImages(dir: string, count: number, layerBytes: number): Promise<Array<{ ref: string; descriptor: Descriptor }>> {
  const store = await openStore(dir);
  const items: Array<{ ref: string; descriptor: Descriptor }> = [];
  for (let i = 0; i < count; i++) {
    const config = await store.putBytes(Buffer.from(`name: writer${i}\n`), GADGET_CONFIG);
    const manifests: Descriptor[] = [];
    for (const arch of ['amd64', 'arm64']) {
      const layer = await store.putBytes(randomBytes(layerBytes), GADGET_EBPF);
      const manifest = { schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: GADGET_ARTIFACT_TYPE, config, layers: [layer] };
      manifests.push({ ...(await store.putBytes(encodeJSONBytes(manifest), MT_MANIFEST)), platform: { architecture: arch, os: 'linux' } });
    }
    const descriptor = await store.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_INDEX, manifests }), MT_INDEX);
    items.push({ ref: `example.com/crash/img${i}:v1`, descriptor });
  }
  await store.tagMany(items);
  store.close();
  return items;
}

const rows: CampaignRow[] = [];

test('SIGKILL campaign: pull from docker-registry, killed at random moments; the next pull completes', async (t) => {
  assert.ok(await registryAvailable(), 'docker-registry is installed (npm test installs it)');
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const dir = scratch();
  const source = join(dir, 'src');
  const images = await writeImages(source, 3, 3 << 20);
  const remote = images.map(({ descriptor }, i) => ({ ref: `${registry.host}/crash/img${i}:v1`, descriptor }));
  for (const [i, { ref }] of images.entries()) {
    const pushed = await gadget(['--store', source, 'push', ref, remote[i]!.ref]);
    assert.equal(pushed.code, 0, pushed.stderr);
  }
  const durationMs = await timeRun(async () => ({ child: spawnGadget(['--store', join(dir, 'calibrate'), 'pull', remote[0]!.ref]) }));
  const row = await runCampaign(
    {
      name: 'pull',
      tries: 10,
      seed: 8201,
      durationMs,
      async start(i) {
        const store = join(dir, `try${i}`);
        return { store, child: spawnGadget(['--store', store, 'pull', remote[i % remote.length]!.ref]) };
      },
      async recover(store, i) {
        const { ref, descriptor } = remote[i % remote.length]!;
        const r = await gadget(['--store', store, 'pull', ref]);
        assert.equal(r.code, 0, `the next pull: ${r.stderr}`);
        assert.equal(checkLayout(store).get(ref), descriptor.digest, `${ref} is pulled whole`);
      },
    },
    (line) => t.diagnostic(line),
  );
  rows.push(row);
});

test('SIGKILL campaign: annotate --all, killed at random moments; the next run completes', async (t) => {
  const dir = scratch();
  const store = join(dir, 's');
  const images = await writeImages(store, 8, 2048);
  const annotate = (i: number): string[] => ['--store', store, 'annotate', '--all', 'example.com/crash/*', '--set', `org.example.try=${i}`];
  const durationMs = await timeRun(async () => ({ child: spawnGadget(annotate(-1)) }));
  const row = await runCampaign(
    {
      name: 'annotate',
      tries: 10,
      seed: 8202,
      durationMs,
      async start(i) {
        return { store, child: spawnGadget(annotate(i)) };
      },
      async recover(s, i) {
        const r = await gadget(annotate(i));
        assert.equal(r.code, 0, `the next annotate: ${r.stderr}`);
        const tags = checkLayout(s);
        for (const { ref } of images) {
          const digest = tags.get(ref);
          assert.ok(digest, `${ref} is still tagged`);
          const index = JSON.parse(readFileSync(join(s, 'blobs', 'sha256', digest.slice(7)), 'utf8')) as { annotations?: Record<string, string> };
          assert.equal(index.annotations?.['org.example.try'], String(i), `${ref} carries the annotation of try ${i}`);
        }
      },
    },
    (line) => t.diagnostic(line),
  );
  rows.push(row);
});

test('the campaigns table (writers)', () => {
  process.stderr.write(`${table(rows)}\n`);
  assert.equal(rows.length, 2);
});
