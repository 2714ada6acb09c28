// verify against Inspektor Gadget's own signed store (../shared/fixtures/ig-signed-store):
// every case of the fixture table, both profiles on its metadata-only images; plus the rule
// catalogue, the --allow patterns, the verify plugin and the command line.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GadgetError } from '../lib/errors.js';
import type { PluginContext } from '../lib/runner/types.js';
import { verify, verifyImages, RULES, storeArtifacts, type VerifyReport } from '../plugins/verify.js';
import { isAllowed, parseAllowPatterns } from '../plugins/verify/policy.js';
import { formatReport, reportsJSON } from '../plugins/verify/report.js';
import { PROFILES, severityOf } from '../plugins/verify/rules.js';
import { isRFC3339 } from '../plugins/verify/spec.js';
import { openStore, type Store } from '../store/store.js';
import { importImages } from '../store/transfer.js';
import { gadget, CLI } from './helpers/cli.js';
import { quietContext } from './helpers/context.js';
import { FIXTURE_LAYOUT, SHARED, sharedMissing } from './helpers/paths.js';

const KEYS = path.join(SHARED, 'fixtures', 'ig-signed-store', 'keys');
const key = (name: string): string => path.join(KEYS, name);
const GOOD_KEY = key('cosign-good.pub');
const WRONG_KEY = key('cosign-wrong.pub');
const GOOD_CERT = key('notation-good.crt');
const WRONG_CERT = key('notation-wrong.crt');
const POLICY = key('notation-policy.json');

const COSIGNED = ['ttl.sh/signed_with_cosign_legacy:latest', 'ttl.sh/signed_with_cosign_oci11:latest', 'ttl.sh/signed_with_cosign_bundle:latest'];
const NOTARIZED = ['ttl.sh/signed_with_notation_config_media_type_signature:latest', 'ttl.sh/signed_with_notation_config_media_type_empty:latest'];
const UNSIGNED = 'ghcr.io/inspektor-gadget/gadget/unsigned:francis-signature-unit-tests';
const ALL_IMAGES = [...COSIGNED, ...NOTARIZED, UNSIGNED];

let dir = '';
let store: Store | undefined;

before(async () => {
  if (sharedMissing()) return;
  dir = mkdtempSync(path.join(os.tmpdir(), 'gadget-verify-'));
  store = await openStore(path.join(dir, 'store'));
  const imported = await importImages(store, FIXTURE_LAYOUT);
  assert.deepEqual(imported.failed, []);
});

after(() => {
  store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A test on the imported fixture store; skipped with a reason when ../shared is absent. */
function fixtureTest(name: string, fn: (t: TestContext, s: Store) => Promise<void>): void {
  test(name, async (t) => {
    const missing = sharedMissing();
    if (missing || !store) {
      t.skip(missing ?? 'the fixture store could not be imported');
      return;
    }
    await fn(t, store);
  });
}

async function one(s: Store, ref: string, opts: Parameters<typeof verifyImages>[2]): Promise<VerifyReport> {
  const [report] = await verifyImages(s, [ref], opts);
  assert.ok(report);
  return report;
}

const rules = (r: VerifyReport, severity?: 'error' | 'warning' | 'notice'): string[] =>
  [...new Set(r.findings.filter((f) => !severity || f.severity === severity).map((f) => f.rule))].sort();

// ---- the fixture table (profile ig, so that only the signature decides) ------------------

describe('ig-signed-store: the fixture table', () => {
  for (const ref of COSIGNED) {
    fixtureTest(`good cosign key passes ${ref}`, async (_t, s) => {
      const r = await one(s, ref, { profile: 'ig', keys: [GOOD_KEY] });
      assert.equal(r.passed, true, formatReport(r).join('\n'));
      assert.equal(r.signature?.verified, true);
      assert.equal(r.findings.some((f) => f.rule.startsWith('GADGET-SIGNATURE')), false);
    });
    fixtureTest(`wrong cosign key fails ${ref}`, async (_t, s) => {
      const r = await one(s, ref, { profile: 'ig', keys: [WRONG_KEY] });
      assert.equal(r.passed, false);
      assert.deepEqual(rules(r, 'error'), ['GADGET-SIGNATURE-INVALID']);
      const f = r.findings.find((x) => x.rule === 'GADGET-SIGNATURE-INVALID')!;
      assert.equal(f.digest, r.digest, 'the signature is checked on the index digest');
      assert.equal(f.path, '/signatures');
    });
    fixtureTest(`[wrong, good] cosign keys pass ${ref}`, async (_t, s) => {
      const r = await one(s, ref, { profile: 'ig', keys: [WRONG_KEY, GOOD_KEY] });
      assert.equal(r.passed, true, formatReport(r).join('\n'));
      assert.equal(r.signature?.found.find((f) => f.ok)?.keyOrCert, GOOD_KEY);
    });
  }
  for (const ref of NOTARIZED) {
    fixtureTest(`good notation certificate (permissive policy) passes ${ref}`, async (_t, s) => {
      const r = await one(s, ref, { profile: 'ig', notationCerts: [GOOD_CERT], notationPolicy: POLICY });
      assert.equal(r.passed, true, formatReport(r).join('\n'));
      assert.equal(r.signature?.found[0]?.kind, 'notation');
    });
    fixtureTest(`wrong notation certificate fails ${ref}`, async (_t, s) => {
      const r = await one(s, ref, { profile: 'ig', notationCerts: [WRONG_CERT], notationPolicy: POLICY });
      assert.deepEqual(rules(r, 'error'), ['GADGET-SIGNATURE-INVALID']);
    });
    fixtureTest(`[wrong, good] notation certificates pass ${ref}`, async (_t, s) => {
      const r = await one(s, ref, { profile: 'ig', notationCerts: [WRONG_CERT, GOOD_CERT], notationPolicy: POLICY });
      assert.equal(r.passed, true, formatReport(r).join('\n'));
    });
    fixtureTest(`the expired notation certificate fails under the default (strict) policy: ${ref}`, async (_t, s) => {
      const r = await one(s, ref, { profile: 'ig', notationCerts: [GOOD_CERT] });
      assert.deepEqual(rules(r, 'error'), ['GADGET-SIGNATURE-INVALID']);
    });
  }
  fixtureTest('the unsigned image fails with --require-signature', async (_t, s) => {
    const r = await one(s, UNSIGNED, { profile: 'ig', keys: [GOOD_KEY], notationCerts: [GOOD_CERT], notationPolicy: POLICY, requireSignature: true });
    assert.equal(r.passed, false);
    assert.deepEqual(rules(r, 'error'), ['GADGET-SIGNATURE-MISSING']);
    assert.match(r.findings.find((f) => f.rule === 'GADGET-SIGNATURE-MISSING')!.message, /^no signature of sha256:[0-9a-f]{64} was found \(.*\)$/);
  });
  fixtureTest('without --require-signature a missing signature is a warning', async (_t, s) => {
    const r = await one(s, UNSIGNED, { profile: 'ig', keys: [GOOD_KEY] });
    assert.equal(r.passed, true);
    assert.ok(rules(r, 'warning').includes('GADGET-SIGNATURE-MISSING'));
  });
  fixtureTest('signed images pass --require-signature with all keys and certificates given', async (_t, s) => {
    const reports = await verifyImages(s, [...COSIGNED, ...NOTARIZED], {
      profile: 'ig', keys: [WRONG_KEY, GOOD_KEY], notationCerts: [GOOD_CERT], notationPolicy: POLICY, requireSignature: true,
    });
    for (const r of reports) assert.equal(r.passed, true, formatReport(r).join('\n'));
  });
  fixtureTest('without keys no signature is checked', async (_t, s) => {
    const r = await one(s, UNSIGNED, { profile: 'ig' });
    assert.equal(r.signature, undefined);
    assert.equal(r.findings.some((f) => f.rule.startsWith('GADGET-SIGNATURE')), false);
  });
});

describe('ig-signed-store: profiles', () => {
  fixtureTest('--all finds the six images (signature tags are not images)', async (_t, s) => {
    assert.deepEqual(storeArtifacts(s).map((a) => a.ref).sort(), [...ALL_IMAGES].sort());
  });
  fixtureTest('metadata-only images fail --profile spec with GADGET-EBPF-COUNT', async (_t, s) => {
    const reports = await verifyImages(s, 'all', { profile: 'spec' });
    assert.equal(reports.length, ALL_IMAGES.length);
    for (const r of reports) {
      assert.equal(r.passed, false, r.ref);
      assert.ok(rules(r, 'error').includes('GADGET-EBPF-COUNT'), `${r.ref}: ${rules(r, 'error').join(', ')}`);
      const f = r.findings.find((x) => x.rule === 'GADGET-EBPF-COUNT')!;
      assert.match(f.path, /^\/manifests\/\d$/);
      assert.match(f.message, /no ebpf layer/);
    }
  });
  fixtureTest('metadata-only images pass --profile ig with warnings', async (_t, s) => {
    const reports = await verifyImages(s, 'all', { profile: 'ig' });
    for (const r of reports) {
      assert.equal(r.passed, true, formatReport(r).join('\n'));
      assert.equal(r.errors, 0);
      assert.ok(rules(r, 'warning').includes('GADGET-NO-EBPF'), r.ref);
      // ig lists the byte-identical manifest for both platforms: a notice, never a warning.
      assert.ok(rules(r, 'notice').includes('GADGET-PLATFORM-SHARED'), r.ref);
      assert.ok(!rules(r, 'warning').includes('GADGET-PLATFORM-SHARED'), r.ref);
    }
  });
  fixtureTest('a digest can be verified as well as a reference', async (_t, s) => {
    const byRef = await one(s, UNSIGNED, { profile: 'ig' });
    const byDigest = await one(s, byRef.digest, { profile: 'ig' });
    assert.equal(byDigest.ref, byRef.digest);
    assert.deepEqual(rules(byDigest), rules(byRef));
  });
  fixtureTest('an unknown reference is a failed report of its own (GADGET-IMAGE-MISSING), the others still verified', async (_t, s) => {
    const reports = await verifyImages(s, ['ttl.sh/not-there:v1', ALL_IMAGES[0]!]);
    assert.deepEqual(reports.map((r) => r.ref), ['ttl.sh/not-there:v1', ALL_IMAGES[0]]);
    assert.equal(reports[0]!.passed, false);
    assert.equal(reports[0]!.findings[0]!.rule, 'GADGET-IMAGE-MISSING');
    assert.match(reports[0]!.findings[0]!.message, /ttl\.sh\/not-there:v1 is not in/);
    assert.ok(reports[1]!.findings.length > 0 && reports[1]!.digest.startsWith('sha256:'), 'the other image was verified');
    await assert.rejects(verifyImages(s, ['ttl.sh/BAD:v1']), (err: unknown) => err instanceof GadgetError && err.exitCode === 2, 'a malformed reference is still a usage error');
  });
  fixtureTest('the JSON document has one result per image with every finding', async (_t, s) => {
    const reports = await verifyImages(s, 'all', { profile: 'spec' });
    const doc = JSON.parse(JSON.stringify(reportsJSON(reports, 'spec'))) as ReturnType<typeof reportsJSON>;
    assert.equal(doc.summary.images, ALL_IMAGES.length);
    assert.equal(doc.summary.failed, ALL_IMAGES.length);
    assert.equal(doc.summary.passed, false);
    for (const image of doc.images) {
      assert.equal(image.findings.length, image.errors + image.warnings + image.notices);
      for (const f of image.findings) {
        assert.deepEqual(Object.keys(f).sort(), ['digest', 'message', 'path', 'rule', 'severity']);
        assert.match(f.digest, /^sha256:[a-f0-9]{64}$/);
        assert.match(f.message, /^\S.*[.)]$/s);
      }
    }
  });
});

// ---- policy: --allow ----------------------------------------------------------------------

describe('--allow patterns (ig allowed-gadgets)', () => {
  const DIGEST = `sha256:${'a'.repeat(64)}`;
  const OTHER = `sha256:${'b'.repeat(64)}`;
  const REF = 'ghcr.io/inspektor-gadget/gadget/trace_exec:v0.45.0';
  test('name@digest matches that repository at that digest only', () => {
    assert.equal(isAllowed(parseAllowPatterns([`ghcr.io/inspektor-gadget/gadget/trace_exec@${DIGEST}`]), [REF], DIGEST), true);
    assert.equal(isAllowed(parseAllowPatterns([`ghcr.io/inspektor-gadget/gadget/trace_exec@${DIGEST}`]), [REF], OTHER), false);
    assert.equal(isAllowed(parseAllowPatterns([`ghcr.io/inspektor-gadget/gadget/trace_open@${DIGEST}`]), [REF], DIGEST), false);
  });
  test('name:tag matches that tag; short names are completed as ig does', () => {
    assert.equal(isAllowed(parseAllowPatterns(['trace_exec:v0.45.0']), [REF], DIGEST), true);
    assert.equal(isAllowed(parseAllowPatterns(['trace_exec:v0.44.0']), [REF], DIGEST), false);
    assert.equal(isAllowed(parseAllowPatterns(['trace_exec']), ['ghcr.io/inspektor-gadget/gadget/trace_exec:latest'], DIGEST), true);
  });
  test('a prefix ending in * matches every reference under it', () => {
    assert.equal(isAllowed(parseAllowPatterns(['ghcr.io/inspektor-gadget/gadget/*']), [REF], DIGEST), true);
    assert.equal(isAllowed(parseAllowPatterns(['ghcr.io/myorg/*']), [REF], DIGEST), false);
    assert.equal(isAllowed(parseAllowPatterns(['ghcr.io/myorg/*', 'ghcr.io/inspektor-gadget/*']), [REF], DIGEST), true);
  });
  test('malformed patterns are usage errors', () => {
    for (const bad of ['Not A Ref', 'ghcr.io/*/x*', 'x@sha256:123']) {
      assert.throws(() => parseAllowPatterns([bad]), (err: unknown) => err instanceof GadgetError && err.exitCode === 2, bad);
    }
  });
  fixtureTest('an image outside the patterns fails with GADGET-NOT-ALLOWED', async (_t, s) => {
    const [denied, allowed] = await verifyImages(s, [UNSIGNED, COSIGNED[0]!], { profile: 'ig', allow: ['ttl.sh/*'] });
    assert.deepEqual(rules(denied!, 'error'), ['GADGET-NOT-ALLOWED']);
    assert.match(denied!.findings.find((f) => f.rule === 'GADGET-NOT-ALLOWED')!.message, /is not allowed by --allow ttl\.sh\/\*/);
    assert.equal(allowed!.passed, true);
    const [byDigest] = await verifyImages(s, [UNSIGNED], { profile: 'ig', allow: [`ghcr.io/inspektor-gadget/gadget/unsigned@${denied!.digest}`] });
    assert.equal(byDigest!.passed, true);
  });
});

// ---- the rule catalogue -----------------------------------------------------------------

describe('rule catalogue', () => {
  test('ids are unique, stable-looking, and every rule has a severity per profile and a description', () => {
    const ids = RULES.map((r) => r.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const r of RULES) {
      assert.match(r.id, /^GADGET-[A-Z0-9]+(-[A-Z0-9]+)*$/);
      for (const p of PROFILES) assert.ok(['error', 'warning', 'notice', 'off'].includes(r.severity[p]), `${r.id} ${p}`);
      assert.match(r.description, /^\S.*\.$/);
    }
  });
  test('the ig profile is never stricter than the spec profile', () => {
    const rank = { off: 0, notice: 1, warning: 2, error: 3 } as const;
    for (const r of RULES) if (r.id !== 'GADGET-NO-EBPF') assert.ok(rank[r.severity.ig] <= rank[r.severity.spec], r.id);
  });
  test('--require-signature makes a missing signature an error', () => {
    assert.equal(severityOf('GADGET-SIGNATURE-MISSING', 'spec'), 'warning');
    assert.equal(severityOf('GADGET-SIGNATURE-MISSING', 'ig', { requireSignature: true }), 'error');
    assert.equal(severityOf('GADGET-EBPF-COUNT', 'spec'), 'error');
    assert.equal(severityOf('GADGET-NO-EBPF', 'spec'), 'off');
    assert.equal(severityOf('GADGET-NO-EBPF', 'ig'), 'warning');
  });
  test('RFC 3339 times', () => {
    // As Go (and so ig) parses it: upper-case T and Z, no leap second.
    for (const ok of ['2025-10-20T14:06:44+02:00', '2025-10-20T12:42:42Z', '2024-02-29T00:00:00.123456Z']) assert.equal(isRFC3339(ok), true, ok);
    for (const bad of ['2024-02-29t00:00:00.123456z', '1990-12-31T23:59:60Z', '2025-10-20 14:06:44Z', '2025-10-20T14:06:44', '2023-02-29T00:00:00Z', '2025-13-01T00:00:00Z', '2025-10-20T24:00:00Z', 'yesterday', '2025-10-20T14:06:44+2:00']) {
      assert.equal(isRFC3339(bad), false, bad);
    }
  });
});

// ---- the plugin -------------------------------------------------------------------------

function pluginContext(s: Store, records: object[], warnings: string[]): PluginContext {
  const log = { info: () => undefined, warn: (m: string) => void warnings.push(m), debug: () => undefined };
  return quietContext(s, KEYS, { log, emit: (r) => void records.push(r) });
}

describe('verify plugin', () => {
  fixtureTest('passes its input through when every image passes, with one record each', async (_t, s) => {
    const records: object[] = [];
    const warnings: string[] = [];
    const input = storeArtifacts(s).filter((a) => COSIGNED.includes(a.ref));
    // Key paths are relative to the config's folder (here: the keys folder).
    const out = await verify({ profile: 'ig', keys: ['cosign-good.pub'], requireSignature: true }).run(pluginContext(s, records, warnings), input);
    assert.deepEqual(out, input);
    assert.equal(records.length, COSIGNED.length);
    assert.ok(records.every((r) => (r as { type?: string; passed?: boolean }).type === 'verify' && (r as { passed?: boolean }).passed));
    assert.ok(warnings.some((w) => w.includes('GADGET-NO-EBPF')));
  });
  fixtureTest('fails the task (exit code 1) when an image fails, naming it and its rule', async (_t, s) => {
    const records: object[] = [];
    await assert.rejects(verify({ all: true }).run(pluginContext(s, records, []), []), (err: unknown) => {
      assert.ok(err instanceof GadgetError);
      assert.equal(err.exitCode, 1);
      assert.match(err.message, /6 of 6 images failed verification/);
      assert.match(err.message, /GADGET-EBPF-COUNT/);
      return true;
    });
    assert.equal(records.length, 6);
  });
  fixtureTest('--require-signature without any key is a usage error', async (_t, s) => {
    await assert.rejects(verify({ requireSignature: true, all: true }).run(pluginContext(s, [], []), []), (err: unknown) => err instanceof GadgetError && err.exitCode === 2);
  });
  test('the verify step fails when it has nothing to verify: all: true on an empty store, or no input (exit 1)', async () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'gadget-verify-empty-'));
    const s = await openStore(path.join(empty, 'store'));
    try {
      await assert.rejects(verify({ all: true }).run(pluginContext(s, [], []), []), (err: unknown) => {
        assert.ok(err instanceof GadgetError);
        assert.equal(err.exitCode, 1);
        assert.match(err.message, /^no image to verify in store /);
        assert.match(err.hint ?? '', /gadget list/);
        return true;
      });
      // A step given no image by the steps before it verifies nothing: it fails too.
      await assert.rejects(verify().run(pluginContext(s, [], []), []), (err: unknown) => err instanceof GadgetError && err.exitCode === 1 && /no image to verify/.test(err.message) && err.hint !== undefined);
    } finally {
      s.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

// ---- the command line -------------------------------------------------------------------

/** Runs `gadget verify` through the compiled CLI; a missing command is a failure, never a skip. */
async function cli(_t: TestContext, args: string[]): Promise<Awaited<ReturnType<typeof gadget>> | undefined> {
  assert.ok(existsSync(CLI), `${CLI} is not built (npm run build)`);
  const r = await gadget(args);
  assert.doesNotMatch(r.stderr, /unknown command "verify"/, '`verify` must be registered in cli/gadget.ts');
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  return r;
}

describe('gadget verify (CLI)', () => {
  fixtureTest('--json: exit 1 under the spec profile, one result per image', async (t) => {
    const r = await cli(t, ['--store', path.join(dir, 'store'), '--json', 'verify', '--all']);
    if (!r) return;
    assert.equal(r.code, 1, r.stderr);
    const doc = JSON.parse(r.stdout) as ReturnType<typeof reportsJSON>;
    assert.equal(doc.images.length, 6);
    assert.ok(doc.images.every((i) => i.findings.some((f) => f.rule === 'GADGET-EBPF-COUNT')));
  });
  fixtureTest('human output: PASS lines and exit 0 under the ig profile with the good key', async (t) => {
    const r = await cli(t, ['--store', path.join(dir, 'store'), 'verify', '--profile', 'ig', '--key', GOOD_KEY, ...COSIGNED]);
    if (!r) return;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const ref of COSIGNED) assert.match(r.stdout, new RegExp(`^PASS  ${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}  sha256:[a-f0-9]{64}$`, 'm'));
    assert.match(r.stdout, /^ {2}warning  GADGET-NO-EBPF  \/manifests\/0  /m);
  });
  fixtureTest('the wrong key: FAIL and exit 1', async (t) => {
    const r = await cli(t, ['--store', path.join(dir, 'store'), 'verify', '--profile', 'ig', '--key', WRONG_KEY, COSIGNED[0]!]);
    if (!r) return;
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^FAIL {2}ttl\.sh\/signed_with_cosign_legacy:latest/m);
    assert.match(r.stdout, /^ {2}error {4}GADGET-SIGNATURE-INVALID  \/signatures  /m);
  });
  fixtureTest('usage errors exit 2 without a stack trace', async (t) => {
    const store = path.join(dir, 'store');
    for (const args of [['verify'], ['verify', '--all', UNSIGNED], ['verify', '--profile', 'strict', '--all'], ['verify', '--all', '--require-signature'], ['verify', '--all', '--key', path.join(dir, 'no-such.pub')]]) {
      const r = await cli(t, ['--store', store, ...args]);
      if (!r) return;
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error: /m);
    }
    const absent = await cli(t, ['--store', store, 'verify', 'ttl.sh/absent:v1']);
    assert.equal(absent?.code, 1, 'a missing image is a failure found, not a usage error');
    assert.match(absent!.stderr, /^error: ttl\.sh\/absent:v1 is not in /m);
  });
  fixtureTest('several references: each missing one fails by itself, named, and the others are still verified; -q names every failure', async (t) => {
    const store = path.join(dir, 'store');
    const refs = ['ttl.sh/absent:v1', COSIGNED[0]!, 'ttl.sh/absent:v2'];
    const json = await cli(t, ['--store', store, '--json', 'verify', '--profile', 'ig', '--key', WRONG_KEY, ...refs]);
    if (!json) return;
    assert.equal(json.code, 1);
    const doc = JSON.parse(json.stdout) as { summary: { images: number; failed: number }; images: Array<{ ref: string; passed: boolean; findings: Array<{ rule: string; message: string }> }> };
    assert.deepEqual(doc.images.map((i) => i.ref), ['ttl.sh/absent:v1', COSIGNED[0], 'ttl.sh/absent:v2']);
    for (const i of [0, 2]) {
      assert.equal(doc.images[i]!.findings[0]!.rule, 'GADGET-IMAGE-MISSING');
      assert.match(doc.images[i]!.findings[0]!.message, new RegExp(`${refs[i]!.replace(/[./]/g, '\\$&')} is not in store`));
    }
    assert.ok(doc.images[1]!.findings.some((f) => f.rule === 'GADGET-SIGNATURE-INVALID'), 'the image that is there was verified (and fails on the wrong key)');
    const quiet = await cli(t, ['--store', store, '-q', 'verify', '--profile', 'ig', '--key', WRONG_KEY, ...refs]);
    assert.equal(quiet!.code, 1);
    assert.equal(quiet!.stdout, '');
    for (const ref of refs) assert.ok(quiet!.stderr.includes(ref), `-q names ${ref}: ${quiet!.stderr}`);
    assert.match(quiet!.stderr, new RegExp(`^failed: ${COSIGNED[0]!.replace(/[./]/g, '\\$&')}: `, 'm'));
  });
  test('verifying nothing never passes: --all on an empty store exits 1 naming the store, with a hint; on a missing one exit 2', async (t) => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'gadget-verify-empty-'));
    t.after(() => rmSync(empty, { recursive: true, force: true }));
    mkdirSync(path.join(empty, 'new-store'));
    const missing = await cli(t, ['--store', path.join(empty, 'typo-store'), 'verify', '--all']);
    assert.equal(missing!.code, 2, 'a store that does not exist is not an empty one (a typo): exit 2');
    assert.match(missing!.stderr, /^error: there is no store at .*typo-store \(from --store\)\nhint: /);
    for (const store of [path.join(empty, 'new-store'), path.join(empty, 'new-store')]) {
      const human = await cli(t, ['--store', store, 'verify', '--all']);
      assert.equal(human!.code, 1, human!.stdout + human!.stderr);
      assert.equal(human!.stdout, '');
      assert.match(human!.stderr, new RegExp(`^error: no image to verify in store ${store.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^\n]*\nhint: .*gadget list.*--store`, 'm'));
      const quiet = await cli(t, ['--store', store, '-q', 'verify', '--all', '--profile', 'ig']);
      assert.equal(quiet!.code, 1, '`gadget -q verify --all || alert` alerts');
      const json = await cli(t, ['--store', store, '--json', 'verify', '--all']);
      assert.equal(json!.code, 1);
      // As `verify nope:v1` (an image not in the store): the error document, code 1.
      const doc = JSON.parse(json!.stdout) as { error: { message: string; hint: string; code: number } };
      assert.equal(doc.error.code, 1);
      assert.match(doc.error.message, /^no image to verify in store /);
      assert.match(doc.error.hint, /gadget list/);
    }
    // Usage errors still come first (exit 2), on an empty store as on a full one.
    const usage = await cli(t, ['--store', path.join(empty, 'new-store'), 'verify', '--all', '--key', path.join(empty, 'no-such.pub')]);
    assert.equal(usage!.code, 2, usage!.stderr);
  });
  test('--rules lists every rule with its severities', async (t) => {
    const r = await cli(t, ['verify', '--rules']);
    if (!r) return;
    assert.equal(r.code, 0);
    for (const rule of RULES) assert.match(r.stdout, new RegExp(`^${rule.id} `, 'm'));
    const json = await cli(t, ['--json', 'verify', '--rules']);
    const rows = JSON.parse(json!.stdout) as Array<{ id: string; spec: string; ig: string }>;
    assert.deepEqual(rows.map((x) => x.id), RULES.map((x) => x.id));
    assert.equal(rows.find((x) => x.id === 'GADGET-EBPF-COUNT')?.spec, 'error');
  });
});
