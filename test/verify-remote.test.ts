// `gadget verify --remote REF`: an image in a real docker-registry (started here at a free
// port and stopped) is fetched with its signature into a temporary store and verified there;
// the user's store is never written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gadget } from './helpers/cli.js';
import { registryAvailable, startRegistry } from './helpers/registry.js';
import { FIXTURE_LAYOUT, SHARED, scratch, sharedMissing } from './helpers/paths.js';

const KEYS = join(SHARED, 'fixtures', 'ig-signed-store', 'keys');

test('verify --remote checks a registry image and its signature without touching the store', async (t) => {
  const why = sharedMissing() ?? ((await registryAvailable()) ? undefined : 'docker-registry is not installed');
  if (why) return t.skip(why);
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const dir = scratch();
  const source = join(dir, 'source');
  assert.equal((await gadget(['--store', source, 'import', FIXTURE_LAYOUT])).code, 0);
  const remote = `${reg.host}/signed/legacy:v1`;
  const pushed = await gadget(['--store', source, 'push', 'ttl.sh/signed_with_cosign_legacy:latest', remote]);
  assert.equal(pushed.code, 0, pushed.stderr);

  const mine = join(dir, 'mine');
  const good = await gadget(['--store', mine, 'verify', '--remote', remote, '--profile', 'ig', '--require-signature', '--key', join(KEYS, 'cosign-good.pub'), '--json']);
  assert.equal(good.code, 0, good.stdout + good.stderr);
  const report = JSON.parse(good.stdout);
  assert.equal(report.images[0].passed, true);
  assert.equal(report.images[0].ref, remote);

  const wrong = await gadget(['--store', mine, 'verify', '--remote', remote, '--profile', 'ig', '--require-signature', '--key', join(KEYS, 'cosign-wrong.pub')]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stdout, /GADGET-SIGNATURE-INVALID/);

  const missing = await gadget(['--store', mine, 'verify', '--remote', `${reg.host}/nothing/here:v1`]);
  assert.equal(missing.code === 1 || missing.code === 2, true, missing.stderr);
  assert.match(missing.stderr, /nothing\/here/);
  assert.ok(!existsSync(mine) || readdirSync(mine).length === 0, "the user's store was not written");
});
