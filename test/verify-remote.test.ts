// `gadget verify --remote REF`: an image in a real docker-registry (started here at a free
// port and stopped) is fetched with its signature into a temporary store and verified there;
// the user's store is never written.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gadget, spawnGadget } from './helpers/cli.js';
import { exited } from './helpers/crash.js';
import { registryAvailable, startRegistry, type TestRegistry } from './helpers/registry.js';
import { FIXTURE_LAYOUT, SHARED, scratch, sharedMissing } from './helpers/paths.js';

const KEYS = join(SHARED, 'fixtures', 'ig-signed-store', 'keys');

/** A registry, and a store holding ig's signed images to push to it; undefined when the test skipped. */
async function registryAndSource(t: TestContext): Promise<{ reg: TestRegistry; dir: string; source: string } | undefined> {
  const why = sharedMissing() ?? ((await registryAvailable()) ? undefined : 'docker-registry is not installed');
  if (why) {
    t.skip(why);
    return undefined;
  }
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const dir = scratch();
  const source = join(dir, 'source');
  assert.equal((await gadget(['--store', source, 'import', FIXTURE_LAYOUT])).code, 0);
  return { reg, dir, source };
}

test('verify --remote checks a registry image and its signature without touching the store', async (t) => {
  const ready = await registryAndSource(t);
  if (!ready) return;
  const { reg, dir, source } = ready;
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
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stdout, /^FAIL  .*nothing\/here:v1/m);
  assert.match(missing.stdout, /GADGET-BLOB-MISSING .*nothing\/here/);
  assert.ok(!existsSync(mine) || readdirSync(mine).length === 0, "the user's store was not written");
});

test('verify --remote over a prefix: ten images, one tampered in the registry, exit 1 naming it', async (t) => {
  const ready = await registryAndSource(t);
  if (!ready) return;
  const { reg, dir, source } = ready;
  // Ten distinct images (each its own index and manifests) from one of ig's, in two repositories
  // each under the prefix, plus one outside it.
  const refs: string[] = [];
  for (let i = 0; i < 10; i++) {
    const ref = `${reg.host}/fleet/${i < 5 ? 'a' : 'b'}/img${i}:v1`;
    const annotated = await gadget(['--store', source, 'annotate', 'ttl.sh/signed_with_cosign_legacy:latest', '--set', `org.example.n=${i}`, '-t', ref]);
    assert.equal(annotated.code, 0, annotated.stderr);
    const pushed = await gadget(['--store', source, 'push', ref]);
    assert.equal(pushed.code, 0, pushed.stderr);
    refs.push(ref);
  }
  assert.equal((await gadget(['--store', source, 'push', 'ghcr.io/inspektor-gadget/gadget/unsigned:francis-signature-unit-tests', `${reg.host}/elsewhere/x:v1`])).code, 0);

  // The temporary stores go to a folder of this test's own, checked empty at the end.
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const clean = await gadget(['--json', 'verify', '--remote', `${reg.host}/fleet/`, '--profile', 'ig'], { env: { TMPDIR: tmp } });
  assert.equal(clean.code, 0, clean.stdout + clean.stderr);
  const all = JSON.parse(clean.stdout);
  assert.deepEqual(all.images.map((i: { ref: string }) => i.ref).sort(), [...refs].sort(), 'every tag of every repository under the prefix, nothing else');
  assert.equal(all.summary.images, 10);

  // Tamper with img7's amd64 manifest where the registry keeps it: the registry still serves it
  // under its digest, the bytes no longer match.
  const inspected = JSON.parse((await gadget(['--json', 'inspect', '--remote', refs[7]!])).stdout);
  const victim = inspected.manifests[0].descriptor.digest.slice('sha256:'.length);
  const file = join(reg.dataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', victim.slice(0, 2), victim, 'data');
  const bytes = readFileSync(file);
  writeFileSync(file, Buffer.from(bytes.toString('utf8').replace('"org.example.n":"7"', '"org.example.n":"X"')));
  assert.notDeepEqual(readFileSync(file), bytes, 'the manifest was changed on the registry\'s disk');

  const tampered = await gadget(['--json', 'verify', '--remote', `${reg.host}/fleet/`, '--profile', 'ig'], { env: { TMPDIR: tmp } });
  assert.equal(tampered.code, 1, tampered.stderr);
  const doc = JSON.parse(tampered.stdout);
  const failed = doc.images.filter((i: { passed: boolean }) => !i.passed);
  assert.deepEqual(failed.map((i: { ref: string }) => i.ref), [refs[7]], 'that one image is named, the other nine pass');
  assert.equal(failed[0].findings[0].rule, 'GADGET-BLOB-DIGEST');
  assert.match(failed[0].findings[0].message, new RegExp(victim));
  assert.equal(doc.images.length, 10);

  const human = await gadget(['verify', '--remote', `${reg.host}/fleet/b/`, '--profile', 'ig']);
  assert.equal(human.code, 1);
  assert.match(human.stdout, new RegExp(`^FAIL  ${refs[7]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'));
  assert.equal((human.stdout.match(/^PASS /gm) ?? []).length, 4, 'the other images under fleet/b/ pass');
  const repository = await gadget(['--json', 'verify', '--remote', `${reg.host}/fleet/a/img1`, '--profile', 'ig']);
  assert.equal(repository.code, 0, repository.stderr);
  assert.deepEqual(JSON.parse(repository.stdout).images.map((i: { ref: string }) => i.ref), [refs[1]], 'a repository: every tag');
  assert.match(human.stderr, /5 images/);
  assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith('gadget-remote-')), [], 'every temporary store was removed');
});

// A listing failure of one input (a repository that does not exist, one under a prefix whose tag
// list fails) is a failed report of its own, as sync fails only that source: the other inputs are
// verified and the run exits 1, naming it ("exit 0 means complete").
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
interface Doc { summary: { passed: boolean; images: number; failed: number }; images: Array<{ ref: string; passed: boolean; hint?: string; findings: Array<{ rule: string; message: string }> }> }

test('verify --remote: a repository that does not exist fails by itself, named; the other inputs are verified, exit 1', async (t) => {
  const ready = await registryAndSource(t);
  if (!ready) return;
  const { reg, dir, source } = ready;
  const image = `${reg.host}/good/a:v1`;
  const repo = `${reg.host}/good/b`;
  for (const ref of [image, `${repo}:v1`]) {
    const pushed = await gadget(['--store', source, 'push', 'ttl.sh/signed_with_cosign_legacy:latest', ref]);
    assert.equal(pushed.code, 0, pushed.stderr);
  }
  const missing = `${reg.host}/missing/repo`;
  assert.equal((await fetch(`${reg.url}/v2/missing/repo/tags/list`)).status, 404, 'the registry does not know the repository');

  const j = await gadget(['--json', 'verify', '--remote', image, missing, repo, '--profile', 'ig']);
  assert.equal(j.code, 1, j.stdout + j.stderr);
  const doc = JSON.parse(j.stdout) as Doc;
  assert.deepEqual(doc.images.map((i) => [i.ref, i.passed]), [[image, true], [missing, false], [`${repo}:v1`, true]], 'the inputs after the missing one are verified too');
  assert.equal(doc.summary.failed, 1);
  const failed = doc.images[1]!;
  assert.deepEqual(failed.findings.map((f) => f.rule), ['GADGET-REMOTE-UNLISTED']);
  assert.match(failed.findings[0]!.message, /repository missing\/repo does not exist/);
  assert.ok(failed.hint, 'the failed input says what to do');

  const text = await gadget(['verify', '--remote', image, missing, repo, '--profile', 'ig']);
  assert.equal(text.code, 1, text.stdout + text.stderr);
  assert.equal((text.stdout.match(/^PASS /gm) ?? []).length, 2, text.stdout);
  assert.match(text.stdout, new RegExp(`^FAIL  ${esc(missing)}\\s*$\\n\\s+error\\s+GADGET-REMOTE-UNLISTED `, 'm'));
  assert.match(text.stderr, new RegExp(`^error: .*${esc('missing/repo')} does not exist.*\\nhint: `, 'm'));

  // Credentials refused still stop the run as a whole (every image would fail the same way), as sync does.
  const locked = await startRegistry({ auth: 'basic' });
  t.after(() => locked.stop());
  const refused = await gadget(['--json', 'verify', '--remote', `${locked.host}/any/repo`, `${locked.host}/other/repo`]);
  assert.equal(refused.code, 2, refused.stdout + refused.stderr);
  assert.match(refused.stderr, /requires authentication/);
});

test('verify --remote over a prefix: a repository whose tags cannot be listed fails by itself, named, the others are verified', async (t) => {
  const ready = await registryAndSource(t);
  if (!ready) return;
  const { reg, dir, source } = ready;
  const good = `${reg.host}/fleet/a/img:v1`;
  for (const ref of [good, `${reg.host}/fleet/b/img:v1`]) {
    const pushed = await gadget(['--store', source, 'push', 'ttl.sh/signed_with_cosign_legacy:latest', ref]);
    assert.equal(pushed.code, 0, pushed.stderr);
  }
  // fleet/b/img loses its tag folder on the registry's disk: the catalog still lists it (it has
  // _manifests), its tag list answers 404 NAME_UNKNOWN, as a repository deleted meanwhile does.
  rmSync(join(reg.dataDir, 'docker', 'registry', 'v2', 'repositories', 'fleet', 'b', 'img', '_manifests', 'tags'), { recursive: true });
  assert.deepEqual(((await (await fetch(`${reg.url}/v2/_catalog`)).json()) as { repositories: string[] }).repositories, ['fleet/a/img', 'fleet/b/img']);
  assert.equal((await fetch(`${reg.url}/v2/fleet/b/img/tags/list`)).status, 404);
  const broken = `${reg.host}/fleet/b/img`;

  const j = await gadget(['--json', 'verify', '--remote', `${reg.host}/fleet/`, '--profile', 'ig']);
  assert.equal(j.code, 1, j.stdout + j.stderr);
  const doc = JSON.parse(j.stdout) as Doc;
  assert.deepEqual(doc.images.map((i) => [i.ref, i.passed]), [[good, true], [broken, false]]);
  assert.deepEqual(doc.images[1]!.findings.map((f) => f.rule), ['GADGET-REMOTE-UNLISTED']);
  assert.match(doc.images[1]!.findings[0]!.message, /fleet\/b\/img does not exist/);
  assert.ok(doc.images[1]!.hint);

  // Its only repository failing to list is that failure alone, not also "no tag in" the prefix.
  const alone = await gadget(['verify', '--remote', `${reg.host}/fleet/b/`]);
  assert.equal(alone.code, 1, alone.stdout + alone.stderr);
  assert.match(alone.stdout, new RegExp(`^FAIL  ${esc(broken)}\\s*$`, 'm'));
  assert.doesNotMatch(alone.stdout, /GADGET-REMOTE-EMPTY/);

  // sync's plan walks the same sources the same way: it refuses that repository, and only it.
  const plan = await gadget(['--store', join(dir, 'unused'), '--json', 'sync', '--dry-run', '--from', `${reg.host}/fleet/`, '--to', 'store']);
  assert.equal(plan.code, 1, plan.stdout + plan.stderr);
  const items = (JSON.parse(plan.stdout) as { items: Array<{ source: string; refused?: string }> }).items;
  assert.deepEqual(items.map((i) => Boolean(i.refused)), [false, true]);
  assert.equal(items[0]!.source, good);
  assert.equal(items[1]!.source, broken, 'named as the repository, without a tag');
  assert.match(items[1]!.refused!, /fleet\/b\/img does not exist/);
});

// ---- interrupted, mirrors, an unreachable registry -------------------------------------------

/**
 * A proxy in front of a registry that passes everything on but never answers a blob GET while
 * the test runs (the fetches hang there, as on a slow network), counting the ones it holds.
 */
async function startHoldingProxy(target: string): Promise<{ host: string; held: () => number; close(): Promise<void> }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  let held = 0;
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '')) {
      held++;
      req.resume();
      return;
    }
    const up = http.request({ host, port, method: req.method, path: req.url, headers: req.headers, agent: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    held: () => held,
    close: () => new Promise<void>((done) => {
      server.closeAllConnections();
      server.close(() => done());
    }),
  };
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`verify --remote interrupted (${signal}) while blobs are fetched: exit 130 with the hint, no temporary store left`, { timeout: 60_000 }, async (t) => {
    const ready = await registryAndSource(t);
    if (!ready) return;
    const { reg, dir, source } = ready;
    for (const name of ['hello', 'a', 'b', 'c', 'd']) {
      const pushed = await gadget(['--store', source, 'push', 'ttl.sh/signed_with_cosign_legacy:latest', `${reg.host}/prefix/${name}:v1`]);
      assert.equal(pushed.code, 0, pushed.stderr);
    }
    const proxy = await startHoldingProxy(reg.host);
    t.after(() => proxy.close());
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    const child = spawnGadget(['verify', '--remote', `${proxy.host}/prefix/`, '--profile', 'ig'], { env: { TMPDIR: tmp } });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.resume();
    child.stdin!.end();
    // Every worker (four at a time) waits for a blob in its temporary store.
    const temporary = (): string[] => readdirSync(tmp).filter((f) => f.startsWith('gadget-remote-'));
    while (child.exitCode === null && (proxy.held() < 4 || temporary().length < 4)) await sleep(10);
    assert.equal(child.exitCode, null, `still fetching: ${stderr}`);
    child.kill(signal);
    const end = await exited(child);
    assert.equal(end.code, 130, stderr);
    assert.match(stderr, /^error: interrupted\nhint: /m);
    assert.deepEqual(temporary(), [], 'every temporary store was removed before the command ended');
  });
}

/** A config file of a folder of its own naming registry mirrors (and one try per request: the tests stop registries). */
function mirrorConfig(dir: string, mirrors: Record<string, { mirrors: string[]; fallback?: boolean }>): string {
  const work = join(dir, `work-${Math.random().toString(36).slice(2)}`);
  mkdirSync(work);
  writeFileSync(join(work, 'gadget.config.ts'), `export default ${JSON.stringify({ registries: { mirrors, retries: 1 } })};\n`);
  return work;
}

test('verify --remote reads through registries.mirrors as pull does; fallback: false is respected', async (t) => {
  const why = sharedMissing() ?? ((await registryAvailable()) ? undefined : 'docker-registry is not installed');
  if (why) return t.skip(why);
  const [mirror, origin] = await Promise.all([startRegistry(), startRegistry()]);
  t.after(() => Promise.all([mirror.stop(), origin.stop()]));
  const dir = scratch();
  const source = join(dir, 'source');
  assert.equal((await gadget(['--store', source, 'import', FIXTURE_LAYOUT])).code, 0);
  const wanted = `${origin.host}/myorg/trace_open:v1`;
  const mirrored = `${mirror.host}/cache/myorg/trace_open:v1`;
  for (const ref of [mirrored, `${origin.host}/myorg/only_origin:v1`]) {
    const pushed = await gadget(['--store', source, 'push', 'ttl.sh/signed_with_cosign_legacy:latest', ref]);
    assert.equal(pushed.code, 0, pushed.stderr);
  }
  const key = ['--key', join(KEYS, 'cosign-good.pub'), '--require-signature', '--profile', 'ig'];

  // fallback: false, the image only on the original: not read from there.
  const strict = mirrorConfig(dir, { [origin.host]: { mirrors: [`${mirror.host}/cache`], fallback: false } });
  const refused = await gadget(['--json', 'verify', '--remote', `${origin.host}/myorg/only_origin:v1`, ...key], { cwd: strict });
  assert.equal(refused.code, 1, refused.stdout + refused.stderr);
  const doc = JSON.parse(refused.stdout) as Doc;
  assert.equal(doc.images[0]!.passed, false);
  assert.match(doc.images[0]!.findings[0]!.message, /fallback: false/);
  assert.match(doc.images[0]!.findings[0]!.message, new RegExp(esc(`${mirror.host}/cache/myorg/only_origin:v1`)));

  // The original out of reach: the mirror serves the image (and its signature), named as the original.
  await origin.stop();
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  for (const fallback of [true, false]) {
    const work = mirrorConfig(dir, { [origin.host]: { mirrors: [`${mirror.host}/cache`], fallback } });
    const viaMirror = await gadget(['--json', 'verify', '--remote', wanted, ...key], { cwd: work, env: { TMPDIR: tmp } });
    assert.equal(viaMirror.code, 0, viaMirror.stdout + viaMirror.stderr);
    assert.match(viaMirror.stderr, new RegExp(`read ${esc(wanted)} from the mirror ${esc(mirrored)}`), 'as inspect --remote says it');
    const report = JSON.parse(viaMirror.stdout) as Doc;
    assert.deepEqual(report.images.map((i) => [i.ref, i.passed]), [[wanted, true]]);
  }
  // A repository is listed through the mirror too, as `gadget tags` lists it.
  const repository = await gadget(['--json', 'verify', '--remote', `${origin.host}/myorg/trace_open`, ...key], { cwd: mirrorConfig(dir, { [origin.host]: { mirrors: [`${mirror.host}/cache`] } }) });
  assert.equal(repository.code, 0, repository.stdout + repository.stderr);
  assert.deepEqual((JSON.parse(repository.stdout) as Doc).images.map((i) => i.ref), [wanted]);
  assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith('gadget-remote-')), []);
});

test('verify --remote: an unreachable registry stops the command (exit 2), for an image as for a repository', async (t) => {
  if (!(await registryAvailable())) return t.skip('docker-registry is not installed');
  const gone = await startRegistry();
  await gone.stop(); // its port is now closed: connection refused
  const work = mirrorConfig(scratch(), {});
  for (const input of [`${gone.host}/myorg/x:v1`, `${gone.host}/myorg/x`]) {
    const human = await gadget(['verify', '--remote', input], { cwd: work });
    assert.equal(human.code, 2, `${input}: ${human.stdout}${human.stderr}`);
    assert.match(human.stderr, new RegExp(`^error: .*cannot reach the registry ${esc(gone.host)}.*\\nhint: `, 'm'));
    assert.equal(human.stdout, '', 'no report: the command stopped');
    const json = await gadget(['--json', 'verify', '--remote', input], { cwd: work });
    assert.equal(json.code, 2);
    assert.equal(JSON.parse(json.stdout).error.code, 2);
  }
});
