// The parts of sync that need no registry: version ranges, tag filters, the config's checks,
// and how push, pull, copy and mirror sets name their sources and destinations.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRef } from '../lib/oci/reference.js';
import { filterTags, parseRange, parseVersion, planCopy, planPull, planPush, readSyncConfig, satisfies } from '../plugins/sync.js';
import { destinationFor, describeDestination, parseSource } from '../plugins/sync/plan.js';

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
  assert.deepEqual(filterTags(tags, { exclude: ['*-rc.*', 'main'] }), ['latest', 'v0.44.0', 'v0.45.0', 'v0.45.1', 'v1.0.0']);
  assert.deepEqual(filterTags(tags, { semver: '^0.45' }), ['v0.45.1', 'v0.45.0']);
  assert.deepEqual(filterTags(tags, { newest: 2 }), ['v1.0.0', 'v0.46.0-rc.1']);
  assert.deepEqual(filterTags(tags, { newest: 2, exclude: ['*-rc*'], semver: '<1' }), ['v0.45.1', 'v0.45.0']);
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
