// SIGKILL campaigns against the store's writers (import, gc, tag churn), with real `gadget`
// processes on real files: each is killed at a random moment many times, and after each kill
// the next run completes, `gadget fsck` exits 0 (a dead writer's temporary files are a
// notice, removed by the next writer) and an independent check of the layout holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openStore } from '../store/store.js';
import { gc } from '../store/maintenance.js';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { GADGET_ARTIFACT_TYPE, GADGET_CONFIG, GADGET_EBPF, MT_INDEX, MT_MANIFEST } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';
import { gadget, spawnGadget } from './helpers/cli.js';
import { checkLayout, runCampaign, table, timeRun, type CampaignRow } from './helpers/campaign.js';
import { REPO, scratch } from './helpers/paths.js';

/** Writes `count` two-platform images (the first `big` with 4 MiB layers) and tags them if `prefix` is given. */
async function writeImages(dir: string, count: number, opts: { big?: number; prefix?: string; seed?: string } = {}): Promise<Array<{ ref: string; descriptor: Descriptor }>> {
  const store = await openStore(dir);
  const items: Array<{ ref: string; descriptor: Descriptor }> = [];
  for (let i = 0; i < count; i++) {
    const config = await store.putBytes(Buffer.from(`name: ${opts.seed ?? 'img'}${i}\n`), GADGET_CONFIG);
    const manifests: Descriptor[] = [];
    for (const arch of ['amd64', 'arm64']) {
      const layer = await store.putBytes(randomBytes(i < (opts.big ?? 0) ? 4 << 20 : 512 + i), GADGET_EBPF);
      const manifest = { schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: GADGET_ARTIFACT_TYPE, config, layers: [layer] };
      manifests.push({ ...(await store.putBytes(encodeJSONBytes(manifest), MT_MANIFEST)), platform: { architecture: arch, os: 'linux' } });
    }
    const descriptor = await store.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_INDEX, manifests }), MT_INDEX);
    items.push({ ref: `${opts.prefix ?? 'example.com/crash/img'}${i}:v1`, descriptor });
  }
  if (opts.prefix !== undefined) await store.tagMany(items);
  store.close();
  return items;
}

async function ok(args: string[], what: string): Promise<string> {
  const r = await gadget(args);
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r.stdout;
}

const rows: CampaignRow[] = [];
const log = (line: string): void => void process.stderr.write(`${line}\n`);

test('SIGKILL campaign: import of a tar, killed at random moments; the next import completes', async (t) => {
  const dir = scratch();
  const source = join(dir, 'src');
  const images = await writeImages(source, 10, { big: 2, prefix: 'example.com/crash/img' });
  const tar = join(dir, 'src.tar');
  await ok(['--store', source, 'export', ...images.map((i) => i.ref), '-o', tar], 'export');
  const base = join(dir, 'base');
  await writeImages(base, 2, { prefix: 'example.com/base/img' });
  const fresh = (name: string): string => {
    const store = join(dir, name);
    cpSync(base, store, { recursive: true });
    return store;
  };
  const durationMs = await timeRun(async () => ({ child: spawnGadget(['--store', fresh('calibrate'), 'import', tar]) }));
  const row = await runCampaign(
    {
      name: 'import',
      tries: 7,
      seed: 8101,
      durationMs,
      async start(i) {
        const store = fresh(`try${i}`);
        return { store, child: spawnGadget(['--store', store, 'import', tar]) };
      },
      async recover(store) {
        await ok(['--store', store, 'import', tar], 'the next import');
        const tags = checkLayout(store);
        for (const { ref, descriptor } of images) assert.equal(tags.get(ref), descriptor.digest, `${ref} is imported`);
        assert.ok(tags.has('example.com/base/img0:v1') && tags.has('example.com/base/img1:v1'), 'the tags from before survive');
      },
    },
    (line) => t.diagnostic(line),
  );
  rows.push(row);
});

test('SIGKILL campaign: gc with garbage to remove, killed at random moments; the next gc completes and keeps every tag', async (t) => {
  const dir = scratch();
  const store = join(dir, 's');
  const kept = await writeImages(store, 6, { big: 1, prefix: 'example.com/kept/img' });
  // Garbage: untagged images, some sharing the kept images' config (an old shared blob).
  const addGarbage = async (i: number): Promise<void> => {
    await writeImages(store, 40, { seed: `garbage${i}-`, big: 1 });
    await writeImages(store, 10, { seed: 'img' });
  };
  await addGarbage(-1);
  const durationMs = await timeRun(async () => ({ child: spawnGadget(['--store', store, 'gc', '--grace', '0']) }));
  const row = await runCampaign(
    {
      name: 'gc',
      tries: 6,
      seed: 8102,
      durationMs,
      async start(i) {
        await addGarbage(i);
        return { store, child: spawnGadget(['--store', store, 'gc', '--grace', '0']) };
      },
      async recover(s) {
        await ok(['--store', s, 'gc', '--grace', '0'], 'the next gc');
        const tags = checkLayout(s);
        for (const { ref, descriptor } of kept) assert.equal(tags.get(ref), descriptor.digest, `${ref} survives`);
        const opened = await openStore(s);
        try {
          assert.deepEqual((await gc(opened, { graceSeconds: 0, dryRun: true })).removedBlobs, [], 'the completed gc left no garbage');
        } finally {
          opened.close();
        }
      },
    },
    (line) => t.diagnostic(line),
  );
  rows.push(row);
});

// Tags and untags in a loop through the library, as a plugin would: argv = module, store, digest, n.
const CHURN = `
const [storeModule, dir, digest, n] = process.argv.slice(2);
const { openStore } = await import(storeModule);
const store = await openStore(dir);
const descriptor = store.resolveRef(digest);
for (let i = 0; i < Number(n); i++) {
  await store.tag(descriptor, 'example.com/churn/t' + (i % 7) + ':v1');
  if (i % 3 === 2) await store.untag(['example.com/churn/t' + ((i - 1) % 7) + ':v1']);
}
store.close();
`;

test('SIGKILL campaign: tag churn, killed at random moments; the next tag and rm work', async (t) => {
  const dir = scratch();
  const store = join(dir, 's');
  const [image] = await writeImages(store, 2, { prefix: 'example.com/churn/base' });
  const script = join(dir, 'churn.mjs');
  writeFileSync(script, CHURN);
  const storeModule = pathToFileURL(join(REPO, 'dist', 'store', 'store.js')).href;
  const startChurn = () => spawn(process.execPath, [script, storeModule, store, image!.descriptor.digest, '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const durationMs = await timeRun(async () => ({ child: startChurn() }));
  const row = await runCampaign(
    {
      name: 'tag churn',
      tries: 8,
      seed: 8103,
      durationMs,
      async start() {
        return { store, child: startChurn() };
      },
      async recover(s, i) {
        await ok(['--store', s, 'tag', image!.ref, `example.com/churn/next:t${i}`], 'the next tag');
        await ok(['--store', s, 'rm', `example.com/churn/next:t${i}`], 'the next rm');
        const tags = checkLayout(s);
        assert.equal(tags.get(image!.ref), image!.descriptor.digest);
        assert.ok(!tags.has(`example.com/churn/next:t${i}`));
      },
    },
    (line) => t.diagnostic(line),
  );
  rows.push(row);
});

test('the campaigns table', () => {
  log(table(rows));
  assert.equal(rows.length, 3);
});
