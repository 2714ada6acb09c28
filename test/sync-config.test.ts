// The parts of sync that need no registry: version ranges, tag filters, the config's checks,
// and how push, pull, copy and mirror sets name their sources and destinations.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { isGadgetError } from '../lib/errors.js';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { GADGET_ARTIFACT_TYPE, GADGET_CONFIG, GADGET_EBPF, MT_INDEX, MT_MANIFEST, MT_OCI_CONFIG } from '../lib/oci/mediatypes.js';
import { parseRef } from '../lib/oci/reference.js';
import { filterTags, parseRange, parseVersion, planCopy, planPull, planPush, readSyncConfig, satisfies } from '../plugins/sync.js';
import { describeFilter, destinationFor, describeDestination, parseSource } from '../plugins/sync/plan.js';
import { checkPlatform, OCI_ARCHITECTURES } from '../plugins/sync/platforms.js';
import { openStore } from '../store/store.js';
import { gadget } from './helpers/cli.js';
import { generatedImages, putImage } from './helpers/images.js';
import { scratch } from './helpers/paths.js';

const inRange = (version: string, range: string): boolean => satisfies(parseVersion(version)!, parseRange(range));

test('versions: a leading v, pre-releases and build metadata; other tags are not versions', () => {
  assert.deepEqual(parseVersion('v0.45.0'), { major: 0, minor: 45, patch: 0, prerelease: [] });
  assert.deepEqual(parseVersion('1.2.3-rc.1+build.5'), { major: 1, minor: 2, patch: 3, prerelease: ['rc', 1] });
  for (const tag of ['latest', 'v1.2', '01.2.3', '1.2.3.4', 'main-abc', 'sha256-abc']) assert.equal(parseVersion(tag), undefined, tag);
});

test('semver ranges: comparators, caret, tilde, x-ranges, hyphens and ||', () => {
  const cases: Array<[string, string[], string[]]> = [
    ['>=0.40.0 <1', ['0.40.0', '0.45.2', '0.99.99'], ['0.39.9', '1.0.0', '1.0.0-rc.1']],
    ['^0.45', ['0.45.0', '0.45.9'], ['0.46.0', '0.44.9']],
    ['^1.2.3', ['1.2.3', '1.9.0'], ['2.0.0', '1.2.2']],
    ['^0.0.3', ['0.0.3'], ['0.0.4', '0.1.0']],
    ['~1.2.3', ['1.2.3', '1.2.9'], ['1.3.0']],
    ['~1', ['1.0.0', '1.9.9'], ['2.0.0']],
    ['1.x || 3.1.*', ['1.0.0', '1.5.5', '3.1.4'], ['2.0.0', '3.2.0']],
    ['*', ['0.0.1', '9.9.9'], ['1.0.0-beta']],
    ['1.2 - 1.4', ['1.2.0', '1.4.9'], ['1.5.0', '1.1.9']],
    ['> 1.2', ['1.3.0'], ['1.2.9']],
    ['<=1.2', ['1.2.9', '0.1.0'], ['1.3.0']],
    ['=2.0.0', ['2.0.0'], ['2.0.1']],
    ['>=1.0.0-rc.1 <1.0.0', ['1.0.0-rc.1', '1.0.0-rc.2'], ['1.0.0', '1.0.1-rc.1']],
  ];
  for (const [range, yes, no] of cases) {
    for (const v of yes) assert.ok(inRange(v, range), `${v} in ${range}`);
    for (const v of no) assert.ok(!inRange(v, range), `${v} not in ${range}`);
  }
  assert.throws(() => parseRange('>=banana'), /not a version range: "banana" is not a version/);
});

test('tag filters: include and exclude globs, a range, the newest N; signature tags never', () => {
  const tags = ['latest', 'v0.44.0', 'v0.45.0', 'v0.45.1', 'v0.46.0-rc.1', 'v1.0.0', 'main', `sha256-${'a'.repeat(64)}`, `sha256-${'b'.repeat(64)}.sig`];
  assert.deepEqual(filterTags(tags), ['latest', 'main', 'v0.44.0', 'v0.45.0', 'v0.45.1', 'v0.46.0-rc.1', 'v1.0.0']);
  assert.deepEqual(filterTags(tags, { include: ['v0.45.*', 'lat?st'] }), ['latest', 'v0.45.0', 'v0.45.1']);
  assert.deepEqual(filterTags(tags, { include: ['v0.4[56].*'], exclude: ['*-rc*'] }), ['v0.45.0', 'v0.45.1']);
  assert.deepEqual(filterTags(tags, { include: ['v0.4[!5].[0-9]'] }), ['v0.44.0']);
  assert.deepEqual(filterTags(['a.b', 'axb'], { include: ['a.b'] }), ['a.b'], 'a dot is a dot');
  assert.deepEqual(filterTags(tags, { exclude: ['*-rc.*', 'main'] }), ['latest', 'v0.44.0', 'v0.45.0', 'v0.45.1', 'v1.0.0']);
  assert.deepEqual(filterTags(tags, { semver: '^0.45' }), ['v0.45.1', 'v0.45.0']);
  assert.deepEqual(filterTags(tags, { newest: 2 }), ['v1.0.0', 'v0.46.0-rc.1']);
  assert.deepEqual(filterTags(tags, { newest: 2, exclude: ['*-rc*'], semver: '<1' }), ['v0.45.1', 'v0.45.0']);
});

test('tag filters: a "]" first in a glob class is a member, as in the shell', () => {
  const tags = ['a]b', 'a[b', 'axb', 'v1'];
  assert.deepEqual(filterTags(tags, { include: ['*[]]*'] }), ['a]b']);
  assert.deepEqual(filterTags(tags, { include: ['a[]x]b'] }), ['a]b', 'axb']);
  assert.deepEqual(filterTags(tags, { include: ['a[!]]b'] }), ['a[b', 'axb']);
  assert.deepEqual(filterTags(tags, { include: ['a[^]x]b'] }), ['a[b']);
  assert.deepEqual(filterTags(tags, { include: ['a[b'] }), ['a[b'], 'an unclosed [ is itself');
  assert.deepEqual(filterTags(tags, { include: ['v[0-9]'] }), ['v1'], 'ranges still work');
});

test('tags.include: [] is refused in the config (it would keep no tag), and a filter that keeps nothing is named', () => {
  const r = refusal(() => readSyncConfig({ mirrors: { a: { source: 'r.example/p/x', tags: { include: [] }, destination: 'store' } } } as never, '/c', 'F'));
  assert.equal(r.exitCode, 2);
  assert.equal(r.message, 'F: mirrors.a.tags.include is an empty list, which keeps no tag');
  assert.match(r.hint ?? '', /^leave include out to keep every tag/);
  assert.doesNotThrow(() => readSyncConfig({ mirrors: { a: { source: 'r.example/p/x', tags: { exclude: [] }, destination: 'store' } } } as never, '/c', 'F'), 'an empty exclude excludes nothing');
  // Through the API, where no config check ran: the message says which filter kept nothing.
  assert.equal(describeFilter('a', { include: [] }), 'tags.include []');
  assert.equal(describeFilter('a', { exclude: [] }), undefined);
});

test('--newest takes digits only: 1e3, " 2" and 0x10 are refused before anything is read', async () => {
  const store = join(scratch(), 'store');
  for (const value of ['1e3', ' 2', '0x10', '2.0']) {
    const r = await gadget(['--store', store, 'sync', '--dry-run', '--from', '127.0.0.1:9/x', '--to', 'store', '--newest', value]);
    assert.equal(r.code, 2, `${value}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`--newest ${value.replace(/[.+]/g, '\\$&')}: expected a positive whole number`), value);
  }
});

test('the config: mirror sets, registries and mirrors are checked with messages naming the key', () => {
  const ok = readSyncConfig({
    registries: { insecure: ['registry.internal:5000'], authfile: 'auth.json', mirrors: { 'ghcr.io': { mirrors: ['registry.internal:5000/mirror'], fallback: false } } },
    mirrors: { ig: { source: 'ghcr.io/inspektor-gadget/gadget/', repositories: ['trace_exec'], tags: { semver: '>=0.40' }, destination: { bundle: 'out/ig.tar' } } },
  }, '/configs');
  assert.equal(ok.registries.authfile, '/configs/auth.json');
  assert.deepEqual(ok.mirrors.ig!.destination, { bundle: '/configs/out/ig.tar' });
  assert.equal(ok.mirrors.ig!.signatures, undefined);
  const bad: Array<[unknown, RegExp]> = [
    [{ mirrors: { x: { source: 'a/b' } } }, /mirrors\.x\.destination must be 'store'/],
    [{ mirrors: { x: { source: 'a/b', destination: { bundle: 'out.TGZ' } } } }, /mirrors\.x\.destination\.bundle "out\.TGZ": a sync writes a bundle as a plain tar, not gzip/],
    [{ mirrors: { x: { source: 'a/b', destination: { bundle: 'out.tar.gz' } } } }, /a sync writes a bundle as a plain tar, not gzip/],
    [{ mirrors: { x: { source: 'a/b', destination: 'store', tag: {} } } }, /mirrors\.x\.tag is not a mirror set setting/],
    [{ mirrors: { x: { source: [], destination: 'store' } } }, /mirrors\.x\.source is empty/],
    [{ mirrors: { x: { source: 'a', destination: 'store', tags: { newest: 0 } } } }, /tags\.newest must be a positive whole number/],
    [{ registries: { mirrors: { 'ghcr.io': { mirrors: [] } } } }, /registries\.mirrors\["ghcr\.io"\]\.mirrors must name at least one mirror/],
    [{ registries: { proxy: 'x' } }, /registries\.proxy is not a registry setting/],
  ];
  for (const [config, message] of bad) assert.throws(() => readSyncConfig(config as never, '/c'), message);
});

test('ends: push, pull and copy name their sources and destinations as ig and docker users expect', () => {
  const push = planPush('trace_exec', 'registry.internal:5000/gadgets/trace_exec');
  assert.deepEqual(push.source, { kind: 'store', key: 'ghcr.io/inspektor-gadget/gadget/trace_exec:latest' });
  assert.equal(describeDestination(push.destination), 'registry.internal:5000/gadgets/trace_exec:latest');
  assert.equal(describeDestination(planPush('myorg/x:v2', 'localhost:5000/y').destination), 'localhost:5000/y:v2', 'DEST without a tag keeps the tag');
  assert.equal(describeDestination(planPush('myorg/x:v2').destination), 'ghcr.io/myorg/x:v2');
  assert.throws(() => planPush('myorg/x:v2', `localhost:5000/y@sha256:${'a'.repeat(64)}`), /must be a tag/);
  assert.deepEqual(planPull('trace_exec').destination, { kind: 'store', key: 'ghcr.io/inspektor-gadget/gadget/trace_exec:latest' });
  assert.equal(describeDestination(planCopy('ghcr.io/a/b:v1', 'localhost:5000/c').destination), 'localhost:5000/c:v1');
  const digest = `sha256:${'c'.repeat(64)}`;
  assert.equal(describeDestination(planCopy(`ghcr.io/a/b@${digest}`, 'localhost:5000/c').destination), `localhost:5000/c@${digest}`);
  // A mirror destination keeps the repository path under its prefix, as registry mirrors expect.
  const ref = parseRef('ghcr.io/inspektor-gadget/gadget/trace_exec:v0.45.0');
  assert.equal(describeDestination(destinationFor(ref, { registry: 'registry.internal:5000/mirror' })), 'registry.internal:5000/mirror/inspektor-gadget/gadget/trace_exec:v0.45.0');
  assert.equal(describeDestination(destinationFor(ref, 'store')), 'store ghcr.io/inspektor-gadget/gadget/trace_exec:v0.45.0');
  assert.deepEqual(parseSource('ghcr.io/inspektor-gadget/*'), { kind: 'prefix', registry: 'ghcr.io', prefix: 'inspektor-gadget/' });
  assert.deepEqual(parseSource({ store: 'ttl.sh/*' }), { kind: 'store', pattern: 'ttl.sh/*' });
  assert.throws(() => parseSource('inspektor-gadget/'), /must start with a registry host/);
});

// ---- platforms that no image can have, and keys that are not settings ------------------------

/** What `fn` throws: a GadgetError's message, hint and exit code. */
function refusal(fn: () => unknown): { message: string; hint?: string; exitCode: number } {
  try {
    fn();
  } catch (err) {
    assert.ok(isGadgetError(err), `a GadgetError, not ${String(err)}`);
    return { message: err.message, hint: err.hint, exitCode: err.exitCode };
  }
  assert.fail('nothing was thrown');
}

test('platforms: Go\'s architectures and systems pass; a typo is a usage error naming it, with "did you mean"', () => {
  for (const ok of ['amd64', 'arm64', 'linux/amd64', 'linux/arm64/v8', 'linux/arm/v7', 'riscv64', 'linux/s390x', 'windows/amd64', 'loong64', 'linux/ppc64le', 'linux/mips64le']) {
    assert.doesNotThrow(() => checkPlatform(ok, '--platform'), ok);
  }
  for (const arch of ['amd64', 'arm64', 'arm', '386', 'ppc64le', 's390x', 'riscv64', 'mips64le', 'loong64']) assert.ok(OCI_ARCHITECTURES.includes(arch), arch);
  const cases: Array<[string, RegExp, string | undefined]> = [
    ['amd46', /"amd46" is not an architecture OCI images use/, 'amd64'],
    ['arm46', /"arm46" is not an architecture/, 'arm64'],
    ['linux/amd46', /"amd46" is not an architecture/, 'linux/amd64'],
    ['lniux/arm64', /"lniux" is not an operating system/, 'linux/arm64'],
    ['AMD64', /"AMD64" is not an architecture/, 'amd64'],
    ['x86_64', /"x86_64" is not an architecture/, 'amd64'],
    ['linux/aarch64', /"aarch64" is not an architecture/, 'linux/arm64'],
    ['linux/armv7', /"armv7" is not an architecture/, 'linux/arm/v7'],
    ['armv7', /"armv7" is not an architecture/, 'linux/arm/v7'],
    ['amd64/linux', /the operating system comes first/, 'linux/amd64'],
    ['linux/amd64/v8/extra', /write it ARCH or OS\/ARCH\[\/VARIANT\]/, 'linux/amd64/v8'],
    ['linux//amd64', /write it ARCH or OS\/ARCH/, 'linux/amd64'],
    ['', /write it ARCH or OS\/ARCH/, undefined],
    ['banana', /"banana" is not an architecture/, undefined],
    ['linux/amd64/V 8', /"V 8" is not a variant/, undefined],
  ];
  for (const [value, why, suggestion] of cases) {
    const r = refusal(() => checkPlatform(value, '--platform'));
    assert.equal(r.exitCode, 2, value);
    assert.ok(r.message.startsWith(`--platform ${JSON.stringify(value)} is not a platform: `), r.message);
    assert.match(r.message, why, value);
    assert.ok(r.hint, `${value}: a hint`);
    if (suggestion) {
      assert.ok(r.hint!.startsWith(`did you mean ${suggestion}? `), `${value}: ${r.hint}`);
      checkPlatform(suggestion, '--platform'); // what is suggested is itself a platform
    } else assert.doesNotMatch(r.hint!, /did you mean/, value);
  }
});

test('the config: a mirror set\'s platforms are checked as --platform is, the file and key named', () => {
  const set = (platforms: unknown): unknown => ({ mirrors: { gadgets: { source: 'ghcr.io/a/b', destination: 'store', platforms } } });
  const checked = readSyncConfig(set(['linux/amd64', 'arm64', 'linux/riscv64']) as never, '/c', '/c/gadget.config.ts');
  assert.deepEqual(checked.mirrors.gadgets!.platforms, ['linux/amd64', 'arm64', 'linux/riscv64'], 'a platform ig does not build is still a platform: an image lacking it fails alone');
  const r = refusal(() => readSyncConfig(set(['amd64', 'amd46']) as never, '/c', '/c/gadget.config.ts'));
  assert.equal(r.exitCode, 2);
  assert.equal(r.message, '/c/gadget.config.ts: mirrors.gadgets.platforms[1] "amd46" is not a platform: "amd46" is not an architecture OCI images use');
  assert.match(r.hint!, /^did you mean amd64\? /);
});

test('the config: an unknown key of a mirror set or a registries entry gets its "did you mean"', () => {
  const cases: Array<[unknown, RegExp, string]> = [
    [{ mirrors: { x: { source: 'a/b', destination: 'store', platfroms: ['amd64'] } } }, /^F: mirrors\.x\.platfroms is not a mirror set setting$/, 'platforms'],
    [{ mirrors: { x: { source: 'a/b', destination: 'store', allowPlatformSubst: true } } }, /mirrors\.x\.allowPlatformSubst is not a mirror set setting/, 'allowPlatformSubset'],
    [{ mirrors: { x: { source: 'a/b', destination: 'store', tags: { incldue: ['v*'] } } } }, /mirrors\.x\.tags\.incldue is not a tag filter/, 'include'],
    [{ mirrors: { x: { source: 'a/b', destination: { regsitry: 'r:5000/m' } } } }, /mirrors\.x\.destination\.regsitry is not a destination kind/, 'registry'],
    [{ registries: { mirros: {} } }, /^F: registries\.mirros is not a registry setting$/, 'mirrors'],
    [{ registries: { timeouts: { conect: 3 } } }, /registries\.timeouts\.conect is not a timeout/, 'connect'],
    [{ registries: { mirrors: { 'ghcr.io': { mirrors: ['r:5000/m'], fallbak: false } } } }, /registries\.mirrors\["ghcr\.io"\]\.fallbak is not a registry mirror setting/, 'fallback'],
  ];
  for (const [config, message, meant] of cases) {
    const r = refusal(() => readSyncConfig(config as never, '/c', 'F'));
    assert.equal(r.exitCode, 2);
    assert.match(r.message, message);
    assert.ok(r.hint?.startsWith(`did you mean ${meant}? `), `${r.message}: ${r.hint}`);
  }
  // Nothing near: the known keys, as before.
  const far = refusal(() => readSyncConfig({ mirrors: { x: { source: 'a/b', destination: 'store', zzzzzzzzzz: 1 } } } as never, '/c', 'F'));
  assert.match(far.hint!, /^use source, repositories, tags, platforms, /);
});

/** A server that counts the requests it gets (a registry that must not be asked anything). */
async function countingServer(t: { after(fn: () => unknown): void }): Promise<{ host: string; requests: () => number }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    res.writeHead(500);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
}

test('--platform amd46 is a usage error before any request (push, pull, copy, sync); a platform an image lacks fails that image', async (t) => {
  const dir = scratch();
  const store = join(dir, 'store');
  const s = await openStore(store);
  try {
    await generatedImages(s, ['ghcr.io/myorg/x:v1'], 256);
  } finally {
    s.close();
  }
  const registry = await countingServer(t);
  const runs: string[][] = [
    ['sync', '--from', 'store:myorg/x:v1', '--to', `${registry.host}/x`, '--platform', 'amd46'],
    ['sync', '--dry-run', '--from', 'store:myorg/x:v1', '--to', `${registry.host}/x`, '--platform', 'amd64', '--platform', 'amd46'],
    ['push', 'ghcr.io/myorg/x:v1', `${registry.host}/x:v1`, '--platform', 'amd46'],
    ['pull', `${registry.host}/x:v1`, '--platform', 'amd46'],
    ['copy', `${registry.host}/x:v1`, `${registry.host}/y:v1`, '--platform', 'amd46'],
  ];
  for (const args of runs) {
    const r = await gadget(['--store', store, ...args], { cwd: dir });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr, 'error: --platform "amd46" is not a platform: "amd46" is not an architecture OCI images use\nhint: did you mean amd64? (a platform is ARCH or OS/ARCH[/VARIANT] in Go\'s names, e.g. amd64, linux/arm64 or linux/arm/v7; gadget images are built for amd64 and arm64)\n', args.join(' '));
    assert.equal(r.stdout, '');
  }
  const json = await gadget(['--store', store, '--json', ...runs[0]!], { cwd: dir });
  assert.equal(json.code, 2);
  const doc = JSON.parse(json.stdout) as { error: { message: string; hint: string; code: number } };
  assert.equal(doc.error.code, 2);
  assert.match(doc.error.message, /"amd46"/);
  assert.match(doc.error.hint, /^did you mean amd64\?/);
  assert.equal(registry.requests(), 0, 'no request reached the registry');

  // A platform that exists but the image lacks: that image fails (exit 1), as before.
  const bundle = join(dir, 'out.tar');
  const lacking = await gadget(['--store', store, 'sync', '--from', 'store:ghcr.io/myorg/x:v1', '--to', bundle, '--platform', 's390x'], { cwd: dir });
  assert.equal(lacking.code, 1, lacking.stdout + lacking.stderr);
  assert.match(lacking.stderr, /^failed: ghcr\.io\/myorg\/x:v1 -> .*has none of the platforms s390x \(it has linux\/amd64, linux\/arm64\)/m);
  assert.ok(!existsSync(bundle), 'no bundle of nothing');
});

test('gadget sync: a mirror set with platforms: [\'amd46\'] stops before any request, naming the config file', async (t) => {
  const dir = scratch();
  const registry = await countingServer(t);
  const work = join(dir, 'work');
  mkdirSync(work);
  const file = join(work, 'gadget.config.ts');
  writeFileSync(file, `export default ${JSON.stringify({ mirrors: { gadgets: { source: `${registry.host}/myorg/x`, destination: 'store', platforms: ['arm64', 'amd46'] } } })};\n`);
  const r = await gadget(['--store', join(dir, 'store'), 'sync'], { cwd: work });
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /^error: \S*gadget\.config\.ts: mirrors\.gadgets\.platforms\[1\] "amd46" is not a platform: "amd46" is not an architecture OCI images use\nhint: did you mean amd64\? /);
  assert.equal(registry.requests(), 0, 'no request reached the registry');

  writeFileSync(file, `export default ${JSON.stringify({ mirrors: { gadgets: { source: `${registry.host}/myorg/x`, destination: 'store', platfroms: ['arm64'] } } })};\n`);
  const typo = await gadget(['--store', join(dir, 'store'), 'sync'], { cwd: work });
  assert.equal(typo.code, 2, typo.stdout + typo.stderr);
  assert.match(typo.stderr, /^error: \S*gadget\.config\.ts: mirrors\.gadgets\.platfroms is not a mirror set setting\nhint: did you mean platforms\? /);
  assert.equal(registry.requests(), 0);

  // A getter of the config that throws while the sync settings are read: one sentence, no stack.
  for (const [body, args] of [
    ["{ mirrors: { m: { source: 'ghcr.io/x/y', get destination() { throw new Error('deep2'); } } } }", ['sync', 'm', '--dry-run']],
    ["{ registries: { get timeouts() { throw new Error('deep2'); } } }", ['pull', `${registry.host}/myorg/x:v1`, '--dry-run']],
  ] as const) {
    writeFileSync(file, `export default ${body};\n`);
    const r3 = await gadget(['--store', join(dir, 'store'), ...args], { cwd: work });
    assert.equal(r3.code, 2, r3.stdout + r3.stderr);
    assert.match(r3.stderr, /^error: cannot load \S*gadget\.config\.ts(:\d+)?: reading its default export threw: deep2\nhint: /);
    assert.doesNotMatch(r3.stderr, /unexpected failure|\n\s+at /);
  }
  assert.equal(registry.requests(), 0);

  // A set is looked up among the config's own: names every object has are no sets.
  writeFileSync(file, `export default ${JSON.stringify({ mirrors: { gadgets: { source: `${registry.host}/myorg/x`, destination: 'store' } } })};\n`);
  for (const name of ['constructor', 'toString', '__proto__']) {
    const r2 = await gadget(['--store', join(dir, 'store'), 'sync', name, '--dry-run'], { cwd: work });
    assert.equal(r2.code, 2, r2.stdout + r2.stderr);
    assert.match(r2.stderr, new RegExp(`^error: there is no mirror set "${name}"\\nhint: known sets: gadgets`), name);
  }
  assert.equal(registry.requests(), 0);
});

test('--platform is checked for an index nested in an index and for a single manifest, never ignored', async () => {
  const dir = scratch();
  const store = join(dir, 'store');
  const s = await openStore(store);
  try {
    const perArch = await putImage(s, 'nested'); // an index of linux/amd64 and linux/arm64
    const outer = await s.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_INDEX, manifests: [perArch] }), MT_INDEX);
    await s.tag(outer, 'example.com/odd/nested:v1');
    const layer = await s.putBytes(Buffer.from('ebpf single'), GADGET_EBPF);
    const gadgetConfig = await s.putBytes(Buffer.from('name: single\n'), GADGET_CONFIG);
    await s.tag(await s.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: GADGET_ARTIFACT_TYPE, config: gadgetConfig, layers: [layer] }), MT_MANIFEST), 'example.com/odd/single:v1');
    // A gadget config descriptor that names its platform, as verify reads it.
    const placed = { ...gadgetConfig, platform: { os: 'linux', architecture: 'arm64' } };
    await s.tag(await s.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: GADGET_ARTIFACT_TYPE, config: placed, layers: [layer] }), MT_MANIFEST), 'example.com/odd/placed:v1');
    const imageConfig = await s.putBytes(encodeJSONBytes({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }), MT_OCI_CONFIG);
    await s.tag(await s.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_MANIFEST, config: imageConfig, layers: [layer] }), MT_MANIFEST), 'example.com/odd/arm:v1');
  } finally {
    s.close();
  }
  const sync = async (from: string, ...platform: string[]) => {
    const bundle = join(dir, `out-${Math.random().toString(36).slice(2)}.tar`);
    const r = await gadget(['--store', store, 'sync', '--from', `store:${from}`, '--to', bundle, ...platform.flatMap((p) => ['--platform', p])]);
    return { ...r, written: existsSync(bundle) };
  };
  const refused = async (r: Awaited<ReturnType<typeof sync>>, message: RegExp) => {
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /^hint: /m);
    assert.ok(!r.written, 'nothing written');
  };
  // A nested index is walked: a platform it lacks fails the image; splitting it is refused, even with --allow-subset.
  await refused(await sync('example.com/odd/nested:v1', 's390x'), /failed: .*nested:v1 .*has none of the platforms s390x \(it has linux\/amd64, linux\/arm64\)/);
  await refused(await sync('example.com/odd/nested:v1', 'amd64'), /keeping only linux\/amd64 of its platforms \(linux\/amd64, linux\/arm64\) would split the index sha256:[0-9a-f]{64} nested in it/);
  const allowed = await gadget(['--store', store, 'sync', '--from', 'store:example.com/odd/nested:v1', '--to', join(dir, 'split.tar'), '--platform', 'amd64', '--allow-subset']);
  assert.equal(allowed.code, 1, allowed.stderr);
  assert.match(allowed.stderr, /would split the index/);
  const whole = await sync('example.com/odd/nested:v1', 'amd64', 'linux/arm64');
  assert.equal(whole.code, 0, whole.stderr);
  // A single manifest: its image config names its platform; a gadget config names none, so a filter cannot be checked.
  await refused(await sync('example.com/odd/single:v1', 'amd64'), /single:v1 is a single manifest that names no platform, so the platforms filter \(amd64\) cannot be checked/);
  await refused(await sync('example.com/odd/arm:v1', 'amd64'), /arm:v1 has none of the platforms amd64 \(it has linux\/arm64\)/);
  const arm = await sync('example.com/odd/arm:v1', 'arm64');
  assert.equal(arm.code, 0, arm.stderr);
  assert.equal((await sync('example.com/odd/single:v1')).code, 0, 'without a filter it is copied');
  // The config descriptor's platform counts, as it does for verify.
  await refused(await sync('example.com/odd/placed:v1', 'amd64'), /placed:v1 has none of the platforms amd64 \(it has linux\/arm64\)/);
  assert.equal((await sync('example.com/odd/placed:v1', 'arm64')).code, 0);
});
