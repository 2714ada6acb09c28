// Sigstore's own client conformance cases (../shared/fixtures/sigstore-conformance/bundle-verify,
// rules in the fixtures README), every one run through `gadget verify-blob`: a folder ending
// in `_fail` must exit 1 with a rule id, any other must exit 0. The artifact, identity,
// issuer, key and trusted root come from the folder, else the suite's defaults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gadget } from './helpers/cli.js';
import { SHARED, scratch } from './helpers/paths.js';

const SUITE = path.join(SHARED, 'fixtures', 'sigstore-conformance');
const CASES = path.join(SUITE, 'bundle-verify');
const DEFAULT_IDENTITY = 'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';
const DEFAULT_ISSUER = 'https://token.actions.githubusercontent.com';

/**
 * Cases that do not behave as named, with the reason. Empty: all 35 cases of the fixture
 * behave as named. (bundle-with-root-cert_fail does so because sigstore.ts refuses a root
 * in a bundle's chain itself; @sigstore/verify 3.1 would fail it only by accident.)
 */
const EXPECTED_DEVIATIONS: Record<string, string> = {};

function args(dir: string): string[] {
  const file = (name: string): string | undefined => (existsSync(path.join(dir, name)) ? path.join(dir, name) : undefined);
  const text = (name: string, fallback: string): string => readFileSync(file(name) ?? '/dev/null', 'utf8').trim() || fallback;
  const artifact = file('artifact') ?? path.join(CASES, 'a.txt');
  const root = file('trusted_root.json') ?? path.join(SUITE, 'trusted_root.production.json');
  const material = file('key.pub')
    ? ['--key', file('key.pub')!, '--trusted-root', root]
    : ['--trusted-root', root, '--certificate-identity', text('identity', DEFAULT_IDENTITY), '--certificate-oidc-issuer', text('issuer', DEFAULT_ISSUER)];
  return ['verify-blob', artifact, '--bundle', path.join(dir, 'bundle.sigstore.json'), ...material, '--json'];
}

test('every Sigstore conformance bundle-verify case behaves as named through gadget verify-blob', { skip: !existsSync(CASES) && 'conformance fixtures absent' }, async () => {
  const names = readdirSync(CASES, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  assert.ok(names.length >= 30, `found ${names.length} cases`);
  const asNamed: string[] = [];
  const deviating: string[] = [];
  // Four at a time: each case is one `gadget` process.
  const runs = new Map<string, Awaited<ReturnType<typeof gadget>>>();
  for (let i = 0; i < names.length; i += 4) {
    await Promise.all(names.slice(i, i + 4).map(async (name) => runs.set(name, await gadget(args(path.join(CASES, name))))));
  }
  for (const name of names) {
    const mustFail = name.endsWith('_fail');
    const run = runs.get(name)!;
    assert.ok(run.code === 0 || run.code === 1, `${name}: exit ${run.code} (not a verdict): ${run.stderr}`);
    const verdict = JSON.parse(run.stdout) as { verified: boolean; rule?: string; reason: string };
    assert.equal(verdict.verified, run.code === 0, name);
    if (!verdict.verified) assert.match(verdict.rule ?? '', /^GADGET-SIGNATURE-/, `${name}: a failure names its rule`);
    assert.match(verdict.reason, /^[a-z][^\n]*[^.\s]$/, `${name}: the reason is one lowercase sentence without a full stop: ${verdict.reason}`);
    (verdict.verified === !mustFail ? asNamed : deviating).push(name);
  }
  assert.deepEqual(deviating, Object.keys(EXPECTED_DEVIATIONS).sort(), 'the cases that do not behave as named are exactly the recorded deviations');
  assert.equal(asNamed.length, names.length - deviating.length);
  // The README reports this count.
  assert.equal(`${asNamed.length}/${names.length}`, '35/35');
});

test('--key without --trusted-root: the key\'s signature is checked and the log entry left aside; another file or key still fails', { skip: !existsSync(CASES) && 'conformance fixtures absent' }, async () => {
  const dir = path.join(CASES, 'managed-key-and-trusted-root');
  const bundle = path.join(dir, 'bundle.sigstore.json');
  assert.ok((JSON.parse(readFileSync(bundle, 'utf8')) as { verificationMaterial: { tlogEntries: unknown[] } }).verificationMaterial.tlogEntries.length > 0, 'the case carries a log entry');
  const run = (file: string, key: string): ReturnType<typeof gadget> => gadget(['verify-blob', file, '--bundle', bundle, '--key', key, '--json']);
  const ok = await run(path.join(CASES, 'a.txt'), path.join(dir, 'key.pub'));
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  const otherFile = await run(path.join(SUITE, 'trusted_root.production.json'), path.join(dir, 'key.pub'));
  assert.equal(otherFile.code, 1);
  assert.equal(JSON.parse(otherFile.stdout).rule, 'GADGET-SIGNATURE-DIGEST');
  const other = path.join(scratch('gadget-conformance-'), 'other.pub');
  writeFileSync(other, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }));
  const otherKey = await run(path.join(CASES, 'a.txt'), other);
  assert.equal(otherKey.code, 1, otherKey.stdout);
  assert.match(JSON.parse(otherKey.stdout).rule, /^GADGET-SIGNATURE-/);
});
