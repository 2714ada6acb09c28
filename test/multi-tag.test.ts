// Several tags at once: `push REF --tag A --tag B`, `copy SRC DST --tag ...` and
// `tag SRC [DST] --tag ...`, against the real docker-registry; the registry's tag list is read
// back with skopeo (an independent client) and with `gadget tags`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { gadget } from './helpers/cli.js';
import { registryAvailable, startRegistry, type TestRegistry } from './helpers/registry.js';
import { FIXTURE_LAYOUT, scratch, sharedMissing } from './helpers/paths.js';
import { SIGNED } from './helpers/sync.js';

const run = promisify(execFile);
const why = sharedMissing() ?? ((await registryAvailable()) ? undefined : 'docker-registry is not installed');
const LEGACY = SIGNED[0]!;
const DIGEST = 'sha256:20296fb8a8c8a97808229625945da73f5f4d5843800317ead8c203081156cc9c';

async function skopeoTags(repository: string): Promise<string[]> {
  const { stdout } = await run('skopeo', ['list-tags', '--tls-verify=false', `docker://${repository}`]);
  return (JSON.parse(stdout).Tags as string[]).sort();
}

describe('several tags at once', { skip: why }, () => {
  let reg: TestRegistry;
  let store: string;
  before(async () => {
    reg = await startRegistry();
    store = join(scratch('gadget-multi-tag-'), 'store');
    assert.equal((await gadget(['--store', store, 'import', FIXTURE_LAYOUT])).code, 0);
  });
  after(() => reg?.stop());

  test('push --tag puts the image under its own tag and every --tag, signatures once', async () => {
    // The dry run names every tag it would set, and sets none.
    const dry = await gadget(['--store', store, 'push', LEGACY, `${reg.host}/multi/legacy:v1`, '--tag', 'v1.2.3', '--tag', 'latest', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /-> .*multi\/legacy:v1 \(tags v1, v1\.2\.3, latest\)/);
    const dryJSON = JSON.parse((await gadget(['--store', store, '--json', 'push', LEGACY, `${reg.host}/multi/legacy:v1`, '--tag', 'v1.2.3', '--tag', 'latest', '--dry-run'])).stdout);
    assert.deepEqual(dryJSON.items[0].tags, ['v1', 'v1.2.3', 'latest']);
    assert.deepEqual(await skopeoTags(`${reg.host}/multi/legacy`).catch(() => []), [], 'nothing pushed by the dry runs');
    const r = await gadget(['--store', store, '--json', 'push', LEGACY, `${reg.host}/multi/legacy:v1`, '--tag', 'v1.2.3', '--tag', 'latest']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.deepEqual(doc.items[0].tags, ['v1', 'v1.2.3', 'latest']);
    assert.equal(doc.items[0].tagged, 3, 'three tags set');
    const tags = await skopeoTags(`${reg.host}/multi/legacy`);
    assert.deepEqual(tags.filter((t) => !t.startsWith('sha256-')), ['latest', 'v1', 'v1.2.3']);
    assert.equal(tags.filter((t) => t.endsWith('.sig')).length, 1, 'the signature travels once');
    for (const tag of ['v1', 'v1.2.3', 'latest']) {
      const inspected = JSON.parse((await gadget(['--json', 'inspect', '--remote', `${reg.host}/multi/legacy:${tag}`])).stdout);
      assert.equal(inspected.descriptor.digest, DIGEST, tag);
    }
    const again = await gadget(['--store', store, 'push', LEGACY, `${reg.host}/multi/legacy:v1`, '--tag', 'v1.2.3', '--tag', 'latest']);
    assert.match(again.stdout, /0 images pushed, 1 already there;/, 'nothing set when every tag points right');
    // The image is there; new tags are still work done, and the summary says so.
    const more = await gadget(['--store', store, '--json', 'push', LEGACY, `${reg.host}/multi/legacy:v1`, '--tag', 'v2', '--tag', 'stable']);
    assert.equal(JSON.parse(more.stdout).items[0].tagged, 2);
    const moreText = await gadget(['--store', store, 'push', LEGACY, `${reg.host}/multi/legacy:v1`, '--tag', 'v3']);
    assert.match(moreText.stdout, /0 images pushed, 1 already there \(1 tag set\);/);
  });

  test('copy --tag adds tags to the destination repository', async () => {
    const r = await gadget(['copy', `${reg.host}/multi/legacy:v1`, `${reg.host}/multi/copied:stable`, '--tag', 'v1', '--tag', 'v1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\(tags stable, v1\)/);
    assert.deepEqual((await gadget(['tags', `${reg.host}/multi/copied`])).stdout.trim().split('\n'), ['stable', 'v1']);
  });

  test('tag SRC [DST] --tag writes every reference in one update; a bad tag changes nothing', async () => {
    const r = await gadget(['--store', store, '--json', 'tag', LEGACY, 'example.com/x/legacy:v1', '--tag', 'v2', '--tag', 'latest']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).refs, ['example.com/x/legacy:v1', 'example.com/x/legacy:v2', 'example.com/x/legacy:latest']);
    const own = await gadget(['--store', store, 'tag', LEGACY, '--tag', 'stable']);
    assert.equal(own.code, 0, own.stderr);
    const list = JSON.parse((await gadget(['--store', store, '--json', 'list', '*legacy*'])).stdout) as Array<{ ref: string; digest: string }>;
    const refs = list.map((i) => i.ref);
    for (const ref of ['example.com/x/legacy:v1', 'example.com/x/legacy:v2', 'example.com/x/legacy:latest', 'ttl.sh/signed_with_cosign_legacy:stable']) {
      assert.ok(refs.includes(ref), ref);
    }
    assert.ok(list.every((i) => i.digest === DIGEST));
    const bad = await gadget(['--store', store, 'tag', LEGACY, 'example.com/x/legacy:v3', '--tag', 'not/a/tag']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--tag not\/a\/tag is not a tag/);
    const after = JSON.parse((await gadget(['--store', store, '--json', 'list', '*legacy*'])).stdout) as Array<{ ref: string }>;
    assert.ok(!after.some((i) => i.ref.endsWith(':v3')), 'nothing was tagged');
    assert.equal((await gadget(['--store', store, 'tag', LEGACY])).code, 2, 'SRC alone names nothing to tag');
  });
});
