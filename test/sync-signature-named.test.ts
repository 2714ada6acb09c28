// "Exit 0 means complete" for a tag named like a signature (`sha256-<hex>[.sig|.att|.sbom]`):
// a sync never copies such a tag as an image (a signature travels with the image it signs),
// so one that holds a gadget image fails the sync, named, and is not left behind with exit 0.
// Real signatures, and an orphan signature whose image is gone, are not images. Against
// Debian's real docker-registry, with ig's signed and unsigned images from ../shared.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { gadget } from './helpers/cli.js';
import { registryAndSource } from './helpers/fixture-registry.js';

const SIGNED = 'ttl.sh/signed_with_cosign_legacy:latest';
const UNSIGNED = 'ghcr.io/inspektor-gadget/gadget/unsigned:francis-signature-unit-tests';

interface Item { source: string; destination: string; status: string; error?: string; hint?: string }
interface Summary { images: { copied: number; skipped: number; failed: number }; items: Item[] }

test('a sync of a repository fails, naming it, on a gadget image under a tag named like a signature; signatures, orphan ones too, are no failure', async (t) => {
  const ready = await registryAndSource(t);
  if (!ready) return;
  const { reg, dir, source } = ready;
  const repo = `${reg.host}/hidden/x`;
  assert.equal((await gadget(['--store', source, 'push', SIGNED, `${repo}:v1`])).code, 0, 'v1 and its .sig tag');
  const signature = JSON.parse((await gadget(['--json', 'tags', repo, '--all'])).stdout) as { tags: string[] };
  const sigTag = signature.tags.find((tag) => tag.endsWith('.sig'));
  assert.ok(sigTag, `v1's signature is tagged: ${signature.tags.join(', ')}`);

  // An orphan signature: v1's signature copied under the name of a digest no image has.
  const orphan = `${repo}:sha256-${'1'.repeat(64)}.sig`;
  const copied = await gadget(['copy', `${repo}:${sigTag}`, orphan]);
  assert.equal(copied.code, 0, copied.stderr);

  // Only signatures besides v1: the sync copies v1 with its signature and exits 0.
  const clean = await gadget(['--store', join(dir, 'clean'), '--json', 'sync', '--from', repo, '--to', 'store']);
  assert.equal(clean.code, 0, clean.stdout + clean.stderr);
  const cleanDoc = JSON.parse(clean.stdout) as Summary;
  assert.deepEqual(cleanDoc.items.map((i) => [i.source, i.status]), [[`${repo}:v1`, 'copied']], 'signatures are no images of their own');

  // A gadget image under a signature's name: the sync copies v1 and fails the hidden one, named.
  const hidden = `${repo}:sha256-${'0'.repeat(64)}`;
  assert.equal((await gadget(['--store', source, 'push', UNSIGNED, hidden])).code, 0);
  const store = join(dir, 'store');
  const r = await gadget(['--store', store, '--json', 'sync', '--from', repo, '--to', 'store']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const doc = JSON.parse(r.stdout) as Summary;
  assert.deepEqual(doc.images, { copied: 1, skipped: 0, failed: 1 });
  const failed = doc.items.find((i) => i.status === 'failed');
  assert.equal(failed?.source, hidden);
  assert.match(failed?.error ?? '', /gadget image under a name cosign gives signatures/);
  assert.match(failed?.hint ?? '', /tag of its own/);
  const list = JSON.parse((await gadget(['--store', store, '--json', 'list'])).stdout) as Array<{ ref: string }>;
  assert.deepEqual(list.map((e) => e.ref), [`${repo}:v1`], 'v1 is in the store; the hidden image is not');

  // The human output names it too; a dry run fails the same way and writes nothing.
  const human = await gadget(['--store', join(dir, 'human'), 'sync', '--from', repo, '--to', 'store']);
  assert.equal(human.code, 1);
  assert.ok((human.stdout + human.stderr).includes(hidden), human.stdout + human.stderr);
  const dry = await gadget(['--store', join(dir, 'dry'), '--json', 'sync', '--from', repo, '--to', 'store', '--dry-run']);
  assert.equal(dry.code, 1, dry.stdout + dry.stderr);
  const planned = JSON.parse(dry.stdout) as { items: Array<{ source: string; refused?: string }> };
  assert.deepEqual(planned.items.map((i) => [i.source, Boolean(i.refused)]), [[`${repo}:v1`, false], [hidden, true]]);

  // A filter that keeps only v* never reads the signature-named tags: exit 0.
  const filtered = await gadget(['--store', join(dir, 'filtered'), '--json', 'sync', '--from', repo, '--to', 'store', '--include', 'v*']);
  assert.equal(filtered.code, 0, filtered.stdout + filtered.stderr);
});
