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
import { registryAndSource } from './helpers/fixture-registry.js';
import { registryAvailable, startFaultProxy, startRegistry, type FaultProxy, type TestRegistry } from './helpers/registry.js';
import { FIXTURE_LAYOUT, REPO, SHARED, scratch, sharedMissing } from './helpers/paths.js';

const KEYS = join(SHARED, 'fixtures', 'ig-signed-store', 'keys');

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

test('verify --remote REPOSITORY verifies an image under a tag named like a signature whose subject is no image; real signatures stay signatures', async (t) => {
  const ready = await registryAndSource(t);
  if (!ready) return;
  const { reg, source } = ready;
  const repo = `${reg.host}/hidden/x`;
  const signed = await gadget(['--store', source, 'push', 'ttl.sh/signed_with_cosign_legacy:latest', `${repo}:v1`]);
  assert.equal(signed.code, 0, signed.stderr);
  const hidden = `${repo}:sha256-${'0'.repeat(64)}`;
  const pushed = await gadget(['--store', source, 'push', 'ghcr.io/inspektor-gadget/gadget/unsigned:francis-signature-unit-tests', hidden]);
  assert.equal(pushed.code, 0, pushed.stderr);
  const r = await gadget(['--json', 'verify', '--remote', repo, '--profile', 'ig', '--require-signature', '--key', join(KEYS, 'cosign-good.pub')]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const doc = JSON.parse(r.stdout) as { images: Array<{ ref: string; digest: string; passed: boolean; findings: Array<{ rule: string }> }> };
  assert.deepEqual(doc.images.map((i) => i.ref), [`${repo}:v1`, hidden], "the image's .sig tag is a signature; the hidden image is verified");
  assert.equal(doc.images[0]!.passed, true);
  assert.ok(doc.images[1]!.findings.some((f) => f.rule === 'GADGET-SIGNATURE-MISSING'), 'and fails: it is not signed');

  // Under the name of a real image's attestation tag, whose subject is verified: read all the same.
  const other = `${reg.host}/hidden/y`;
  assert.equal((await gadget(['--store', source, 'push', 'ttl.sh/signed_with_cosign_legacy:latest', `${other}:v1`])).code, 0);
  const attTag = `${other}:sha256-${doc.images[0]!.digest.slice(7)}.att`;
  assert.equal((await gadget(['--store', source, 'push', 'ghcr.io/inspektor-gadget/gadget/unsigned:francis-signature-unit-tests', attTag])).code, 0);
  const plain = await gadget(['--json', 'verify', '--remote', other, '--profile', 'ig']);
  assert.deepEqual((JSON.parse(plain.stdout) as { images: Array<{ ref: string }> }).images.map((i) => i.ref), [`${other}:v1`, attTag], plain.stderr);
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
 * A proxy in front of the registry at `target` that passes every request on, unless `take`
 * keeps it (and answers it, or never does); `answer` may take over the registry's answer.
 */
async function startRelay(
  target: string,
  hooks: { take?: (req: http.IncomingMessage) => boolean; answer?: (req: http.IncomingMessage, res: http.ServerResponse, answer: http.IncomingMessage, server: http.Server) => boolean },
): Promise<{ host: string; close(): Promise<void> }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const server = http.createServer((req, res) => {
    if (hooks.take?.(req)) return;
    const up = http.request({ host, port, method: req.method, path: req.url, headers: req.headers, agent: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      if (!hooks.answer?.(req, res, answer, server)) answer.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((done) => {
      server.closeAllConnections();
      server.close(() => done());
      if (!server.listening) done();
    }),
  };
}

/**
 * A proxy in front of a registry that passes everything on but never answers a blob GET while
 * the test runs (the fetches hang there, as on a slow network), counting the ones it holds.
 */
async function startHoldingProxy(target: string): Promise<{ host: string; held: () => number; close(): Promise<void> }> {
  let held = 0;
  const take = (req: http.IncomingMessage): boolean => {
    if (req.method !== 'GET' || !/\/blobs\/sha256:/.test(req.url ?? '')) return false;
    held++;
    req.resume();
    return true;
  };
  return { ...(await startRelay(target, { take })), held: () => held };
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

// ---- a registry that fails in the middle of a blob -------------------------------------------

/**
 * A registry behind the fault proxy with the example trace_open (built from its prebuilt
 * objects: ig's fixture images have no layers) pushed to `victim` and `other`, two
 * repositories; `blob` is the largest layer of `victim`. Undefined when the test was skipped.
 */
async function victimAndOther(t: TestContext): Promise<{ reg: TestRegistry; dir: string; proxy: FaultProxy; victim: string; other: string; blob: { digest: string; size: number } } | undefined> {
  const ready = await registryAndSource(t);
  if (!ready) return undefined;
  const { reg, dir, source } = ready;
  const proxy = await startFaultProxy(reg.host);
  t.after(() => proxy.close());
  // A name with words a message-based classification would take for damage: the cause decides, not the text.
  const victim = `${proxy.host}/cut/digest-altered:v1`;
  const other = `${proxy.host}/cut/other:v1`;
  return { reg, dir, proxy, victim, other, blob: await twoImages(source, victim, other) };
}

async function twoImages(source: string, victim: string, other: string): Promise<{ digest: string; size: number }> {
  const built = await gadget(['--store', source, 'build', join(REPO, 'examples', 'trace_open'), '-t', 'example.com/cut/trace_open:v1']);
  assert.equal(built.code, 0, built.stderr);
  for (const ref of [victim, other]) {
    const pushed = await gadget(['--store', source, 'push', 'example.com/cut/trace_open:v1', ref]);
    assert.equal(pushed.code, 0, pushed.stderr);
  }
  const inspected = JSON.parse((await gadget(['--json', 'inspect', '--remote', victim])).stdout) as { manifests: Array<{ layers: Array<{ digest: string; size: number }> }> };
  const layers = inspected.manifests.flatMap((m) => m.layers);
  assert.ok(layers.length > 0, 'the image has layers');
  return layers.reduce((a, b) => (b.size > a.size ? b : a));
}

test('verify --remote: a blob whose transfer breaks off on every try fails its image as GADGET-REMOTE-UNREADABLE, not as missing; the others are verified', async (t) => {
  const scene = await victimAndOther(t);
  if (!scene) return;
  const { dir, proxy, victim, other, blob } = scene;
  const CUT = 64;
  assert.ok(blob.size > 20 * CUT, `the layer (${blob.size} bytes) is long enough to be cut on every try and resumption`);
  // Every GET of that blob in the victim's repository (the first request and each resumption)
  // passes 64 bytes of the body on, then drops the connection.
  proxy.cut({ method: 'GET', path: new RegExp(`/v2/cut/digest-altered/blobs/${blob.digest}$`) }, CUT, { times: 1000 });
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);

  const j = await gadget(['--json', 'verify', '--remote', victim, other, '--profile', 'ig'], { env: { TMPDIR: tmp } });
  assert.equal(j.code, 1, j.stdout + j.stderr);
  const doc = JSON.parse(j.stdout) as Doc;
  assert.deepEqual(doc.images.map((i) => [i.ref, i.passed]), [[victim, false], [other, true]], 'only the image whose blob could not be read fails');
  const findings = doc.images[0]!.findings as Array<{ rule: string; message: string; digest: string; severity: string }>;
  assert.deepEqual(findings.map((f) => [f.rule, f.severity]), [['GADGET-REMOTE-UNREADABLE', 'error']]);
  assert.match(findings[0]!.message, new RegExp(esc(blob.digest)), 'the blob is named');
  assert.match(findings[0]!.message, /broke off/);
  assert.equal(findings[0]!.digest, blob.digest);
  assert.ok(doc.images[0]!.hint, 'the failed image says what to do');
  const cuts = proxy.requests.filter((r) => r.injected && r.path.endsWith(blob.digest));
  assert.ok(cuts.length > 2, `the blob was asked for again after each break (${cuts.length} requests cut)`);

  const text = await gadget(['verify', '--remote', victim, '--profile', 'ig'], { env: { TMPDIR: tmp } });
  assert.equal(text.code, 1, text.stdout + text.stderr);
  assert.match(text.stdout, new RegExp(`^FAIL  ${esc(victim)}.*\\n\\s+error\\s+GADGET-REMOTE-UNREADABLE `, 'm'));
  assert.doesNotMatch(text.stdout, /GADGET-BLOB-MISSING/);
  assert.match(text.stderr, /^error: .*broke off.*\nhint: /m);
  assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith('gadget-remote-')), [], 'every temporary store was removed');

  const rules = await gadget(['verify', '--rules']);
  assert.equal(rules.code, 0, rules.stderr);
  assert.match(rules.stdout, /^GADGET-REMOTE-UNREADABLE +error +error /m, 'the rule is listed with its severities');
});

test('verify --remote: a blob the registry answers 404 for stays GADGET-BLOB-MISSING, wrong bytes GADGET-BLOB-DIGEST, HTTP 500 after the retries GADGET-REMOTE-UNREADABLE', async (t) => {
  const scene = await victimAndOther(t);
  if (!scene) return;
  const { reg, dir, proxy, victim, other, blob } = scene;
  const path = new RegExp(`/v2/cut/digest-altered/blobs/${blob.digest}$`);
  const work = mirrorConfig(dir, {}); // one try per request: the faults below last
  const check = async (rule: string, message: RegExp): Promise<Doc['images'][number]> => {
    const j = await gadget(['--json', 'verify', '--remote', victim, other, '--profile', 'ig'], { cwd: work });
    assert.equal(j.code, 1, j.stdout + j.stderr);
    const doc = JSON.parse(j.stdout) as Doc;
    assert.deepEqual(doc.images.map((i) => [i.ref, i.passed]), [[victim, false], [other, true]], j.stdout);
    assert.deepEqual(doc.images[0]!.findings.map((f) => f.rule), [rule]);
    assert.match(doc.images[0]!.findings[0]!.message, message);
    return doc.images[0]!;
  };

  // The registry sends other bytes, every time: wrong bytes.
  proxy.flip({ method: 'GET', path }, { times: 1000, offset: 100 });
  await check('GADGET-BLOB-DIGEST', new RegExp(`content has digest sha256:[a-f0-9]{64}, expected ${esc(blob.digest)}`));
  proxy.clear();

  // The registry fails on the blob with HTTP 500, after the retries: it could not be read, it is not missing.
  proxy.fail({ method: 'GET', path }, 500, { times: 1000 });
  const failing = await check('GADGET-REMOTE-UNREADABLE', /failed with HTTP 500/);
  assert.ok(failing.hint);
  proxy.clear();

  // The blob is gone from the registry's disk: it answers 404, and the blob is missing.
  const hex = blob.digest.slice('sha256:'.length);
  rmSync(join(reg.dataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex), { recursive: true });
  assert.equal((await fetch(`${reg.url}/v2/cut/digest-altered/blobs/${blob.digest}`)).status, 404, 'the registry answers 404 for it');
  const gone = await gadget(['--json', 'verify', '--remote', victim, '--profile', 'ig'], { cwd: work });
  assert.equal(gone.code, 1, gone.stdout + gone.stderr);
  const missing = (JSON.parse(gone.stdout) as Doc).images[0]!;
  assert.deepEqual(missing.findings.map((f) => f.rule), ['GADGET-BLOB-MISSING']);
  assert.match(missing.findings[0]!.message, new RegExp(esc(blob.digest)));
});

/**
 * A proxy in front of a registry that dies in the middle of the first GET of a blob matching
 * `path`: it passes `bytes` of the body on, then stops listening and drops every connection, so
 * that the client's resumption and every later request find the port closed.
 */
async function startDyingProxy(target: string, path: RegExp, bytes: number): Promise<{ host: string; died: () => boolean; close(): Promise<void> }> {
  let died = false;
  const answer = (req: http.IncomingMessage, res: http.ServerResponse, upstream: http.IncomingMessage, server: http.Server): boolean => {
    if (died || req.method !== 'GET' || !path.test(req.url ?? '')) return false;
    died = true;
    upstream.once('data', (chunk: Buffer) => {
      res.write(chunk.subarray(0, bytes));
      upstream.destroy();
      setImmediate(() => {
        server.close();
        server.closeAllConnections();
      });
    });
    return true;
  };
  return { ...(await startRelay(target, { answer })), died: () => died };
}

test('verify --remote: a registry that dies in the middle of a blob stops the command (exit 2), as an unreachable one does', async (t) => {
  const ready = await registryAndSource(t);
  if (!ready) return;
  const { reg, dir, source } = ready;
  const built = await gadget(['--store', source, 'build', join(REPO, 'examples', 'trace_open'), '-t', 'example.com/cut/trace_open:v1']);
  assert.equal(built.code, 0, built.stderr);
  const pushed = await gadget(['--store', source, 'push', 'example.com/cut/trace_open:v1', `${reg.host}/dies/x:v1`]);
  assert.equal(pushed.code, 0, pushed.stderr);
  const inspected = JSON.parse((await gadget(['--json', 'inspect', '--remote', `${reg.host}/dies/x:v1`])).stdout) as { manifests: Array<{ layers: Array<{ digest: string; size: number }> }> };
  const layer = inspected.manifests.flatMap((m) => m.layers).reduce((a, b) => (b.size > a.size ? b : a));
  const proxy = await startDyingProxy(reg.host, new RegExp(`/blobs/${layer.digest}$`), 100);
  t.after(() => proxy.close());
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);

  const r = await gadget(['verify', '--remote', `${proxy.host}/dies/x:v1`, '--profile', 'ig'], { cwd: mirrorConfig(dir, {}), env: { TMPDIR: tmp } });
  assert.ok(proxy.died(), 'the registry died in the middle of the blob');
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`^error: .*cannot reach the registry ${esc(proxy.host)}.*\\nhint: `, 'm'));
  assert.equal(r.stdout, '', 'no report: the command stopped');
  assert.doesNotMatch(r.stderr, /GADGET-BLOB-MISSING/);
  assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith('gadget-remote-')), [], 'every temporary store was removed');
});

test('verify --remote names a manifest with a key twice (which Go reads another way) GADGET-MANIFEST-INVALID, with the malformed hint', async (t) => {
  const ready = await registryAndSource(t);
  if (!ready) return;
  const { reg, source } = ready;
  const good = `${reg.host}/keys/x:v1`;
  assert.equal((await gadget(['--store', source, 'push', 'ghcr.io/inspektor-gadget/gadget/unsigned:francis-signature-unit-tests', good])).code, 0);
  const accept = 'application/vnd.oci.image.index.v1+json';
  const index = await (await fetch(`${reg.url}/v2/keys/x/manifests/v1`, { headers: { accept } })).text();
  // ig (Go) reads the last of two keys that differ only in case: an empty list of platforms here.
  const twice = index.replace(/}\s*$/, ',"Manifests":[]}');
  const put = await fetch(`${reg.url}/v2/keys/x/manifests/v2`, { method: 'PUT', headers: { 'content-type': accept }, body: twice });
  assert.equal(put.status, 201, await put.text());
  const r = await gadget(['--json', 'verify', '--remote', `${reg.host}/keys/x:v2`]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const report = (JSON.parse(r.stdout) as { images: Array<{ findings: Array<{ rule: string; message: string }>; hint?: string }> }).images[0]!;
  assert.equal(report.findings[0]!.rule, 'GADGET-MANIFEST-INVALID', JSON.stringify(report));
  assert.match(report.findings[0]!.message, /Manifests/);
  assert.match(report.hint ?? '', /malformed where it was made/);
});
