// Reading a registry without a store: `gadget tags`, `repos`, `inspect --remote` and
// `referrers --remote` (alias `discover`) against the real docker-registry with htpasswd auth,
// on ig's signed images (cosign legacy tag, OCI 1.1 fallback tag, Sigstore bundle, notation)
// pushed there by `gadget push`. Nothing is written to a store by the remote reads.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { registryAvailable, startRegistry, type TestRegistry } from './helpers/registry.js';
import { FIXTURE_LAYOUT, scratch, sharedMissing } from './helpers/paths.js';
import { SIGNED, Transcript } from './helpers/sync.js';

const why = sharedMissing() ?? ((await registryAvailable()) ? undefined : 'docker-registry is not installed');
const cli = new Transcript();

describe('remote reading', { skip: why }, () => {
  let reg: TestRegistry;
  let dir: string;
  let store: string;
  let auth: string[];
  // short name in the registry -> the fixture reference it was pushed from
  const pushed: Record<string, string> = {
    legacy: SIGNED[0]!,
    oci11: SIGNED[1]!,
    bundle: SIGNED[2]!,
    notation: SIGNED[3]!,
  };
  const remote = (name: string): string => `${reg.host}/signed/${name}:v1`;

  before(async () => {
    reg = await startRegistry({ auth: 'basic' });
    dir = scratch('gadget-remote-read-');
    store = join(dir, 'store');
    const authfile = join(dir, 'auth.json');
    writeFileSync(authfile, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.username}:${reg.password}`).toString('base64') } } }));
    auth = ['--authfile', authfile];
    const imported = await cli.gadget(['--store', store, 'import', FIXTURE_LAYOUT]);
    assert.equal(imported.code, 0, imported.stderr);
    for (const [name, ref] of Object.entries(pushed)) {
      const r = await cli.gadget(['--store', store, 'push', ref, remote(name), ...auth]);
      assert.equal(r.code, 0, r.stderr);
    }
    // A second tag and an unsigned repository beside them, and one outside the prefix.
    assert.equal((await cli.gadget(['--store', store, 'push', pushed.legacy!, `${reg.host}/signed/legacy:v2`, ...auth])).code, 0);
    assert.equal((await cli.gadget(['--store', store, 'push', 'ghcr.io/inspektor-gadget/gadget/unsigned:francis-signature-unit-tests', `${reg.host}/signedness/unsigned:v1`, ...auth])).code, 0);
  });
  after(() => reg?.stop());

  test('tags lists a repository\'s tags; signature tags only with --all', async () => {
    const human = await cli.gadget(['tags', `${reg.host}/signed/legacy`, ...auth]);
    assert.equal(human.code, 0, human.stderr);
    assert.deepEqual(human.stdout.trim().split('\n'), ['v1', 'v2']);
    const json = await cli.gadget(['--json', 'tags', '--all', `${reg.host}/signed/legacy`, ...auth]);
    const doc = JSON.parse(json.stdout);
    assert.equal(doc.repository, `${reg.host}/signed/legacy`);
    assert.deepEqual(doc.tags, ['sha256-20296fb8a8c8a97808229625945da73f5f4d5843800317ead8c203081156cc9c.sig', 'v1', 'v2']);
    const withTag = await cli.gadget(['tags', `${reg.host}/signed/legacy:v1`, ...auth]);
    assert.equal(withTag.code, 2, 'a tag is not a repository');
    const missing = await cli.gadget(['--json', 'tags', `${reg.host}/signed/nothing`, ...auth]);
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(JSON.parse(missing.stdout).error.message, /signed\/nothing/);
    const noAuth = await cli.gadget(['--json', 'tags', `${reg.host}/signed/legacy`], { env: { DOCKER_CONFIG: dir, HOME: dir } });
    assert.equal(noAuth.code, 2, 'authentication is an environment error');
    assert.match(JSON.parse(noAuth.stdout).error.hint, /gadget login/);
  });

  test('repos lists the catalog, or the repositories under a prefix', async () => {
    const all = JSON.parse((await cli.gadget(['--json', 'repos', reg.host, ...auth])).stdout);
    assert.deepEqual(all.repositories, ['signed/bundle', 'signed/legacy', 'signed/notation', 'signed/oci11', 'signedness/unsigned']);
    const under = await cli.gadget(['repos', `${reg.host}/signed`, ...auth]);
    assert.equal(under.code, 0, under.stderr);
    assert.deepEqual(under.stdout.trim().split('\n'), ['bundle', 'legacy', 'notation', 'oci11'].map((r) => `${reg.host}/signed/${r}`), '"signed" is not "signedness"');
    const bad = await cli.gadget(['--json', 'repos', 'notahost']);
    assert.equal(bad.code, 2);
    assert.match(JSON.parse(bad.stdout).error.message, /registry host/);
  });

  test('inspect --remote gives what inspect gives for the stored image', async () => {
    for (const [name, ref] of Object.entries(pushed)) {
      const local = JSON.parse((await cli.gadget(['--store', store, '--json', 'inspect', ref])).stdout);
      const r = await cli.gadget(['--store', join(dir, 'unused'), '--json', 'inspect', '--remote', remote(name), ...auth]);
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout);
      assert.equal(doc.ref, remote(name));
      assert.deepEqual(doc.descriptor, { mediaType: local.descriptor.mediaType, digest: local.descriptor.digest, size: local.descriptor.size });
      assert.deepEqual(doc.manifests, local.manifests, name);
      const { 'org.opencontainers.image.ref.name': _, ...annotations } = local.annotations;
      assert.deepEqual(doc.annotations, annotations, name);
      // The same signatures (found in other ways: the store also by their subject, the
      // registry by the fallback tag that the push wrote for it).
      const shape = (x: { descriptor: object; artifactType?: string }): object => ({ descriptor: x.descriptor, artifactType: x.artifactType });
      assert.equal(doc.referrers.length, 1, name);
      assert.deepEqual(doc.referrers.map(shape), local.referrers.map(shape), `${name}: the same signatures`);
    }
    const human = await cli.gadget(['inspect', '--remote', remote('legacy'), ...auth]);
    assert.match(human.stdout, /linux\/amd64\s+sha256:f131c96d/);
    assert.match(human.stdout, /sha256-20296fb8.*\.sig/);
    assert.ok(!existsSync(join(dir, 'unused')), 'no store was opened');
  });

  test('a ref in the store stays local unless --remote; a missing one exits 1 with a hint', async () => {
    const local = await cli.gadget(['--store', store, '--json', 'inspect', `${reg.host}/signed/legacy:v1`]);
    assert.equal(local.code, 1, 'pushing does not store the destination reference');
    const doc = JSON.parse(local.stdout);
    assert.equal(doc.error.code, 1);
    assert.match(doc.error.message, /signed\/legacy:v1 is not in store/);
    assert.match(doc.error.hint, /--remote/);
    const missing = await cli.gadget(['--json', 'inspect', '--remote', `${reg.host}/signed/legacy:v9`, ...auth]);
    assert.equal(missing.code, 1);
    assert.match(JSON.parse(missing.stdout).error.message, /signed\/legacy:v9: not found/);
  });

  test('referrers --remote finds each kind of signature the way it was published', async () => {
    const expect: Record<string, { artifactType: string; found: string; tag: RegExp }> = {
      legacy: { artifactType: 'application/vnd.oci.image.config.v1+json', found: 'cosign-tag', tag: /^sha256-[a-f0-9]{64}\.sig$/ },
      oci11: { artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', found: 'fallback-tag', tag: /^sha256-[a-f0-9]{64}$/ },
      bundle: { artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json', found: 'fallback-tag', tag: /^sha256-[a-f0-9]{64}$/ },
      notation: { artifactType: 'application/vnd.cncf.notary.signature', found: 'fallback-tag', tag: /^sha256-[a-f0-9]{64}$/ },
    };
    for (const [name, want] of Object.entries(expect)) {
      const r = await cli.gadget(['--json', 'referrers', '--remote', remote(name), ...auth]);
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout);
      assert.equal(doc.referrers.length, 1, `${name}: ${r.stdout}`);
      const [sig] = doc.referrers;
      assert.equal(sig.artifactType, want.artifactType, name);
      assert.deepEqual(sig.found, [want.found], name);
      assert.match(sig.tag, want.tag, name);
      assert.equal(sig.tag.slice(7, 71), doc.digest.slice(7), `${name}: the tag names the image's digest`);
      // The same signatures as in the store, where they were imported from.
      const local = JSON.parse((await cli.gadget(['--store', store, '--json', 'discover', pushed[name]!])).stdout);
      assert.deepEqual(local.referrers.map((x: { digest: string }) => x.digest), [sig.digest], name);
    }
    const tree = await cli.gadget(['discover', '--remote', remote('oci11'), ...auth]);
    assert.match(tree.stdout, /^└── application\/vnd\.dev\.cosign\.artifact\.sig\.v1\+json {2}sha256:[a-f0-9]{64} {2}\(fallback tag sha256-/m);
    const none = await cli.gadget(['referrers', '--remote', `${reg.host}/signedness/unsigned:v1`, ...auth]);
    assert.equal(none.code, 0);
    assert.match(none.stdout, /nothing refers to it/);
  });

  test('no credentials in any output', () => {
    assert.deepEqual(cli.leaks([reg.password!]), []);
  });
});

// `gadget tags` reads through registries.mirrors, as pull does: in an air-gapped network the
// mirror's tags are what can be pulled (and verified) under the original's name.
test('tags lists through registries.mirrors: the mirror first, the original only with fallback', { skip: why }, async (t) => {
  const [mirror, origin] = await Promise.all([startRegistry(), startRegistry()]);
  t.after(() => Promise.all([mirror.stop(), origin.stop()]));
  const dir = scratch('gadget-remote-read-');
  const store = join(dir, 'store');
  assert.equal((await cli.gadget(['--store', store, 'import', FIXTURE_LAYOUT])).code, 0);
  for (const ref of [`${mirror.host}/cache/myorg/x:v1`, `${mirror.host}/cache/myorg/x:v2`, `${origin.host}/myorg/x:v1`, `${origin.host}/myorg/x:v3`, `${origin.host}/myorg/only_origin:v1`]) {
    const pushed = await cli.gadget(['--store', store, 'push', SIGNED[0]!, ref]);
    assert.equal(pushed.code, 0, pushed.stderr);
  }
  const config = (name: string, fallback?: boolean): string => {
    const work = join(dir, name);
    mkdirSync(work);
    writeFileSync(join(work, 'gadget.config.ts'), `export default ${JSON.stringify({ registries: { retries: 1, mirrors: { [origin.host]: { mirrors: [`${mirror.host}/cache`], fallback } } } })};\n`);
    return work;
  };
  const lenient = config('lenient', true);
  const strict = config('strict', false);

  const viaMirror = await cli.gadget(['tags', `${origin.host}/myorg/x`], { cwd: lenient });
  assert.equal(viaMirror.code, 0, viaMirror.stderr);
  assert.deepEqual(viaMirror.stdout.trim().split('\n'), ['v1', 'v2'], 'the mirror\'s tags, as pull reads them');
  assert.match(viaMirror.stderr, new RegExp(`listed the tags of ${origin.host}/myorg/x from the mirror ${mirror.host}/cache/myorg/x`));
  const json = JSON.parse((await cli.gadget(['--json', 'tags', `${origin.host}/myorg/x`], { cwd: lenient })).stdout);
  assert.deepEqual(json, { repository: `${origin.host}/myorg/x`, tags: ['v1', 'v2'], via: `${mirror.host}/cache/myorg/x` });

  // A repository the mirror lacks: the original, with fallback; an error naming the mirror without.
  const fallback = await cli.gadget(['--json', 'tags', `${origin.host}/myorg/only_origin`], { cwd: lenient });
  assert.equal(fallback.code, 0, fallback.stderr);
  assert.deepEqual(JSON.parse(fallback.stdout), { repository: `${origin.host}/myorg/only_origin`, tags: ['v1'] });
  const refused = await cli.gadget(['--json', 'tags', `${origin.host}/myorg/only_origin`], { cwd: strict });
  assert.equal(refused.code, 1, refused.stdout + refused.stderr);
  const error = JSON.parse(refused.stdout).error;
  assert.match(error.message, new RegExp(`${mirror.host}/cache/myorg/only_origin.*fallback: false|fallback: false.*${mirror.host}/cache/myorg/only_origin`));
  assert.ok(error.hint);

  // The original out of reach: the mirror still answers; without a mirror it is exit 2.
  await origin.stop();
  const airGapped = await cli.gadget(['tags', `${origin.host}/myorg/x`], { cwd: strict });
  assert.equal(airGapped.code, 0, airGapped.stderr);
  assert.deepEqual(airGapped.stdout.trim().split('\n'), ['v1', 'v2']);
  const unmirrored = await cli.gadget(['tags', `${origin.host}/myorg/x`], { cwd: dir });
  assert.equal(unmirrored.code, 2, unmirrored.stderr);
  assert.match(unmirrored.stderr, /cannot reach the registry/);
});
