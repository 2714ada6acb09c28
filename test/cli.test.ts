import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../store/store.js';
import { gadget } from './helpers/cli.js';
import { writeImage } from './helpers/images.js';
import { FIXTURE_LAYOUT, REPO, scratch, sharedMissing } from './helpers/paths.js';

const noStack = (stderr: string): void => assert.doesNotMatch(stderr, /\n\s+at .*:\d+:\d+/, 'no stack trace');

test('--version and --help', async () => {
  const version = await gadget(['--version']);
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), `gadget-oci ${JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version}`);
  const help = await gadget(['--help']);
  assert.equal(help.code, 0);
  for (const c of ['build', 'list', 'inspect', 'import', 'export', 'fsck', 'gc', 'run']) assert.match(help.stdout, new RegExp(`\\n  ${c}\\b`));
  const sub = await gadget(['export', '--help']);
  assert.match(sub.stdout, /-o, --output FILE/);
});

test('usage errors exit 2 with one clear sentence', async () => {
  const store = join(scratch(), 's');
  const cases: Array<[string[], RegExp]> = [
    [['frobnicate'], /unknown command "frobnicate"/],
    [['--store', store, 'list', '--bogus'], /unknown option --bogus/],
    [['--store', store, 'inspect', 'Not A Ref'], /not a valid image reference/],
    [['--store', store, 'tag', 'x'], /tag takes SRC and DST/],
    [['--store', store, 'tag', 'x', `y@sha256:${'a'.repeat(64)}`], /DST names a tag, not a digest/],
    [['--store', store, 'tag', 'x', `sha256:${'a'.repeat(64)}`], /DST names a tag, not a digest/],
    [['--store', store, 'tag', 'x', `y:sha256-${'a'.repeat(64)}.sig`], /that is how signatures are tagged, not images/],
    [['--store', store, 'tag', 'x', `sha256-${'a'.repeat(64)}`], /that is how signatures are tagged, not images/],
    [['--store', store, 'tag', 'x', '--tag', `sha256-${'a'.repeat(64)}.att`], /that is how signatures are tagged, not images/],
    [['--store', store, 'gc', '--grace', ''], /--grace "": expected a number of seconds/],
    [['--store', store, 'gc', '--grace', ' '], /--grace " ": expected a number of seconds/],
    [['--store', store, 'export', 'x'], /needs -o FILE/],
    [['--store', store, 'import', join(store, 'missing.tar')], /does not exist/],
    [['--store', '', 'list'], /--store needs a folder, but it is empty/],
    [['--store', store, '--config', '', 'list'], /--config needs a file, but it is empty/],
    [['--store', store, '--config', join(store, 'nope.ts'), 'list'], /config file .*nope\.ts does not exist/],
    [['--store', store, 'gc', 'extra'], /gc takes no arguments, but was given "extra"/],
    [['--store', store, 'fsck', 'extra'], /fsck takes no arguments/],
    [['--store', store, 'list', 'a', 'b'], /list takes at most one PATTERN/],
    [['--jsn', 'list'], /unknown option --jsn before the command/],
  ];
  const emptyEnv = await gadget(['list'], { env: { GADGET_STORE: '' } });
  assert.equal(emptyEnv.code, 2, emptyEnv.stdout + emptyEnv.stderr);
  assert.match(emptyEnv.stderr, /^error: \$GADGET_STORE is set but empty\nhint: /, "an empty $GADGET_STORE is not ig's store");
  const storeless = await gadget(['verify', '--rules'], { cwd: scratch(), env: { GADGET_STORE: '' } });
  assert.equal(storeless.code, 0, `a command that uses no store does not mind: ${storeless.stderr}`);
  // Nor a sync between two bundles, which reads and writes no store.
  const bundles = scratch();
  const src = await openStore(join(bundles, 's'));
  await src.tag(await writeImage(src, 'bundle'), 'example.com/bundle/x:v1');
  src.close();
  assert.equal((await gadget(['--store', join(bundles, 's'), 'export', 'example.com/bundle/x:v1', '-o', join(bundles, 'a.tar')])).code, 0);
  const copied = await gadget(['sync', '--from', join(bundles, 'a.tar'), '--to', join(bundles, 'b.tar')], { cwd: bundles, env: { GADGET_STORE: '' } });
  assert.equal(copied.code, 0, `a sync between bundles: ${copied.stderr}`);
  assert.ok(existsSync(join(bundles, 'b.tar')));
  for (const [args, message] of cases) {
    const r = await gadget(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /^error: [^\n]+\nhint: \S/, `${args.join(' ')}: one sentence and a hint`);
    noStack(r.stderr);
  }
  // None of the failures above made the store; an empty folder is an empty one.
  assert.ok(!existsSync(store), 'no usage error made the store');
  mkdirSync(store);
  const unknown = await gadget(['--store', store, 'inspect', 'nothing/here']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /ghcr\.io\/nothing\/here:latest is not in store/);
});

test('import, list, inspect, tag, rm, export, gc and fsck through the command line', async (t) => {
  const why = sharedMissing();
  if (why) return t.skip(why);
  const dir = scratch();
  const store = join(dir, 's');
  const imported = await gadget(['--store', store, 'import', FIXTURE_LAYOUT]);
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, /imported ttl\.sh\/signed_with_cosign_legacy:latest/);

  const list = await gadget(['--store', store, 'list', '--json', '*cosign*']);
  const images = JSON.parse(list.stdout);
  assert.deepEqual(images.map((i: { ref: string }) => i.ref), ['ttl.sh/signed_with_cosign_bundle:latest', 'ttl.sh/signed_with_cosign_legacy:latest', 'ttl.sh/signed_with_cosign_oci11:latest']);
  for (const i of images) {
    assert.deepEqual(Object.keys(i).sort(), ['artifactType', 'created', 'digest', 'mediaType', 'platforms', 'ref', 'size', 'title']);
    assert.deepEqual(i.platforms, ['linux/amd64', 'linux/arm64']);
  }
  const table = await gadget(['--store', store, 'list']);
  assert.match(table.stdout, /^REFERENCE\s+DIGEST\s+PLATFORMS\s+SIZE\s+CREATED\n/);

  const inspect = await gadget(['--store', store, 'inspect', '--json', 'ttl.sh/signed_with_cosign_legacy']);
  const info = JSON.parse(inspect.stdout);
  assert.equal(info.descriptor.digest, 'sha256:20296fb8a8c8a97808229625945da73f5f4d5843800317ead8c203081156cc9c');
  assert.equal(info.manifests.length, 2);
  assert.ok(info.referrers.some((r: { tag?: string }) => r.tag?.endsWith('.sig')));
  const human = await gadget(['--store', store, 'inspect', 'ttl.sh/signed_with_cosign_legacy']);
  assert.match(human.stdout, /linux\/amd64\s+sha256:f131c96d/);
  assert.match(human.stdout, /sha256-20296fb8.*\.sig/);

  assert.equal((await gadget(['--store', store, 'tag', 'ttl.sh/signed_with_cosign_legacy', 'localhost:5000/copy:v1'])).code, 0);
  const copy = JSON.parse((await gadget(['--store', store, 'list', '--json', 'localhost:5000/*'])).stdout);
  assert.equal(copy[0].digest, info.descriptor.digest);

  const exp = await gadget(['--store', store, 'export', 'localhost:5000/copy:v1', '-o', join(dir, 'one.tar')]);
  assert.equal(exp.code, 0, exp.stderr);
  const other = join(dir, 'other');
  assert.equal((await gadget(['--store', other, 'import', join(dir, 'one.tar')])).code, 0);
  const otherList = JSON.parse((await gadget(['--store', other, 'list', '--json'])).stdout);
  assert.deepEqual(otherList.map((i: { ref: string }) => i.ref), ['localhost:5000/copy:v1']);

  // Named twice (once in full, once short): untagged once.
  const rm = await gadget(['--store', store, 'rm', 'localhost:5000/copy:v1', 'ttl.sh/signed_with_cosign_legacy', 'ttl.sh/signed_with_cosign_legacy:latest']);
  assert.equal(rm.code, 0, rm.stderr);
  assert.deepEqual(rm.stdout.trim().split('\n'), ['untagged localhost:5000/copy:v1', 'untagged ttl.sh/signed_with_cosign_legacy:latest']);
  const gc = await gadget(['--store', store, 'gc', '--grace', '0', '--json']);
  assert.equal(gc.code, 0);
  assert.ok(JSON.parse(gc.stdout).removedBlobs.includes(info.descriptor.digest));
  const fsck = await gadget(['--store', store, 'fsck']);
  assert.equal(fsck.code, 0, fsck.stdout);
  assert.match(fsck.stdout, /no problems found/);
});

test('fsck names a corrupt blob, exits 1, and --repair removes it', async () => {
  const store = join(scratch(), 's');
  const { openStore } = await import('../store/store.js');
  const { putImage } = await import('./helpers/images.js');
  const s = await openStore(store);
  const index = await putImage(s, 'corrupt-me');
  await s.tag(index, 'victim');
  s.close();
  const file = join(store, 'blobs', 'sha256', index.digest.slice(7));
  const bytes = readFileSync(file);
  bytes[10] ^= 1;
  writeFileSync(file, bytes);
  const found = await gadget(['--store', store, 'fsck']);
  assert.equal(found.code, 1);
  assert.match(found.stdout, new RegExp(`corrupt-blob: blob ${index.digest} is corrupt`));
  assert.match(found.stdout, /dangling-tag: tag ghcr\.io\/inspektor-gadget\/gadget\/victim:latest/);
  const repaired = await gadget(['--store', store, 'fsck', '--repair']);
  assert.equal(repaired.code, 0);
  assert.match(repaired.stdout, /removed tag ghcr\.io\/inspektor-gadget\/gadget\/victim:latest/);
  assert.equal((await gadget(['--store', store, 'fsck'])).code, 0);
});

test('inspect and verify print what came with an image inert (no faked lines, no terminal escapes); inspect of an image missing a manifest exits 1', async () => {
  const store = join(scratch(), 's');
  const s = await openStore(store);
  const index = await writeImage(s, 'hostile');
  // An index whose annotation tries to forge an output line and to set the terminal's title.
  const doc = JSON.parse((await s.readBytes(index)).toString('utf8')) as Record<string, unknown>;
  const hostile = 'ok\n  linux/amd64  sha256:fake  (verified)\u001b]0;pwned\u0007\u001b[31mRED\u202e';
  const forged = await s.putBytes(Buffer.from(JSON.stringify({ ...doc, annotations: { 'org.opencontainers.image.description': hostile } })), 'application/vnd.oci.image.index.v1+json');
  await s.tag(forged, 'example.com/hostile:v1');
  // A manifest whose layer's media type carries escapes and a line of its own: verify quotes it.
  const layer = await s.putBytes(Buffer.from('payload'), 'application/vnd.gadget.ebpf.program.v1+binaryA\u001b[31mRED\u202eevil\nFAKE LINE\r\u0007\u009b2J');
  const config = await s.putBytes(Buffer.from('name: x\n'), 'application/vnd.gadget.config.v1+yaml');
  const manifest = await s.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.gadget.v1+binary', config, layers: [layer] })), 'application/vnd.oci.image.manifest.v1+json');
  const wrapped = await s.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ ...manifest, platform: { architecture: 'amd64', os: 'linux' } }] })), 'application/vnd.oci.image.index.v1+json');
  await s.tag(wrapped, 'example.com/hostile-layer:v1');
  const children = (doc as { manifests: Array<{ digest: string }> }).manifests;
  s.close();
  for (const args of [['inspect', 'example.com/hostile:v1'], ['verify', '--profile', 'ig', 'example.com/hostile:v1'], ['verify', '--profile', 'ig', 'example.com/hostile-layer:v1'], ['-q', 'verify', 'example.com/hostile-layer:v1']]) {
    const r = await gadget(['--store', store, ...args]);
    for (const out of [r.stdout, r.stderr]) {
      assert.doesNotMatch(out, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/, `${args.join(' ')}: no control character reaches the terminal`);
      assert.doesNotMatch(out, /^ {2}linux\/amd64 {2}sha256:fake|^FAKE LINE/m, `${args.join(' ')}: no line is faked`);
    }
  }
  const quiet = await gadget(['--store', store, '-q', 'verify', 'example.com/hostile-layer:v1']);
  assert.match(quiet.stderr, /^failed: example\.com\/hostile-layer:v1: Layer 0 .*binaryA\\e\[31mRED\\u202eevil\\nFAKE LINE\\r\\u0007\\u009b2J/m, '-q names the failure, inert');
  const inspected = await gadget(['--store', store, 'inspect', 'example.com/hostile:v1']);
  assert.equal(inspected.code, 0, inspected.stderr);
  assert.ok(inspected.stdout.includes('org.opencontainers.image.description: ok\\n  linux/amd64  sha256:fake  (verified)\\e]0;pwned\\u0007\\e[31mRED\\u202e'), inspected.stdout);

  rmSync(join(store, 'blobs', 'sha256', children[1]!.digest.slice(7)));
  for (const json of [false, true]) {
    const r = await gadget(['--store', store, ...(json ? ['--json'] : []), 'inspect', 'example.com/hostile:v1']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^error: 1 manifest of example\\.com/hostile:v1 is missing or damaged \\(${children[1]!.digest}\\)\\nhint: `, 'm'));
    if (json) assert.equal((JSON.parse(r.stdout) as { manifests: Array<{ missing?: boolean }> }).manifests[1]!.missing, true, 'the document is still printed');
    else assert.match(r.stdout, new RegExp(`${children[1]!.digest}  \\(MISSING\\)`));
  }
});
