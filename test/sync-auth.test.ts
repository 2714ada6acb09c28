// Registries with credentials (htpasswd basic auth, and bearer tokens from the test issuer),
// `gadget login` / `logout`, and registry mirrors read before the original (containerd's
// hosts configuration). The last test greps every command's output of this file for secrets.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseRef } from '../lib/oci/reference.js';
import { mirrorRoute, pushImage } from '../plugins/sync.js';
import { openStore, type Store } from '../store/store.js';
import { registryAvailable, startRegistry, type TestRegistry } from './helpers/registry.js';
import { configSource, EXAMPLES, exampleStore, FAST_RETRY, tempDir, Transcript } from './helpers/sync.js';

const available = await registryAvailable();
const SKIP = 'docker-registry is not installed (/usr/bin/docker-registry)';
const cli = new Transcript();
const secrets: string[] = [];

describe('registries with credentials', () => {
  let basic: TestRegistry;
  let token: TestRegistry;
  let dir: string;
  let examples: Store;
  const env = (): NodeJS.ProcessEnv => ({ DOCKER_CONFIG: join(dir, 'docker'), HOME: dir });

  before(async () => {
    if (!available) return;
    [basic, token] = await Promise.all([startRegistry({ auth: 'basic' }), startRegistry({ auth: 'token' })]);
    secrets.push(basic.password!, token.password!);
    dir = await mkdtemp(join(tmpdir(), 'gadget-sync-auth-'));
    examples = await exampleStore(dir);
  });
  after(async () => {
    examples?.close();
    await basic?.stop();
    await token?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('login checks the password first; push and pull then use the stored credentials; logout removes them', async (t) => {
    if (!available) return t.skip(SKIP);
    const wrong = await cli.gadget(['login', basic.host, '-u', basic.username!, '--password-stdin'], { env: env(), input: `${basic.password}x\n` });
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /rejected the credentials/);
    await assert.rejects(readFile(join(dir, 'docker', 'config.json')), /ENOENT/, 'nothing stored after a failed login');

    const ok = await cli.gadget(['login', basic.host, '-u', basic.username!, '--password-stdin'], { env: env(), input: `${basic.password}\n` });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Login succeeded/);
    const config = JSON.parse(await readFile(join(dir, 'docker', 'config.json'), 'utf8'));
    assert.ok(config.auths[basic.host].auth, 'stored as docker does');

    const pushed = await cli.gadget(['--store', examples.root, 'push', EXAMPLES.traceOpen, `${basic.host}/private/trace_open`], { env: env() });
    assert.equal(pushed.code, 0, pushed.stderr);
    const pulled = await cli.gadget(['--store', join(dir, 'pulled'), 'pull', `${basic.host}/private/trace_open:v1`], { env: env() });
    assert.equal(pulled.code, 0, pulled.stderr);

    const out = await cli.gadget(['logout', basic.host], { env: env() });
    assert.match(out.stdout, /Removed the credentials/);
    const denied = await cli.gadget(['--store', join(dir, 'pulled2'), 'pull', `${basic.host}/private/trace_open:v1`], { env: env() });
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /requires authentication/);
    assert.match(denied.stderr, /gadget login/);
  });

  test('an --authfile (ig) is used instead of the docker config, and login writes it', async (t) => {
    if (!available) return t.skip(SKIP);
    const authfile = join(dir, 'ig-auth.json');
    const login = await cli.gadget(['login', token.host, '-u', token.username!, '--password-stdin', '--authfile', authfile], { env: env(), input: token.password! });
    assert.equal(login.code, 0, login.stderr);
    const pushed = await cli.gadget(['--store', examples.root, '--json', 'push', EXAMPLES.helloWasm, `${token.host}/tok/hello_wasm:v1`, '--authfile', authfile], { env: env() });
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(JSON.parse(pushed.stdout).images.copied, 1);
    const withoutFile = await cli.gadget(['copy', `${token.host}/tok/hello_wasm:v1`, `${token.host}/tok/copy:v1`], { env: env() });
    assert.equal(withoutFile.code, 1, 'the docker config has no credentials for it');
    const copied = await cli.gadget(['copy', `${token.host}/tok/hello_wasm:v1`, `${token.host}/tok/copy:v1`, '--authfile', authfile], { env: env() });
    assert.equal(copied.code, 0, copied.stderr);
    assert.ok(token.tokenServer!.requests.some((r) => r.user === token.username && r.granted));
  });

  test('a sync set from the token registry into the store, with the config naming the authfile', async (t) => {
    if (!available) return t.skip(SKIP);
    const work = await tempDir(t);
    const authfile = join(dir, 'ig-auth.json'); // written by the previous test's login
    await writeFile(join(work, 'gadget.config.ts'), configSource({
      registries: { authfile },
      mirrors: { tok: { source: `${token.host}/tok/hello_wasm`, destination: 'store' } },
    }));
    const synced = await cli.gadget(['--store', join(work, 's'), 'sync'], { cwd: work, env: env() });
    assert.equal(synced.code, 0, synced.stderr);
    assert.match(synced.stdout, /1 image copied/);
  });

  test('registry mirrors: read from the mirror first, fall back to the original only if allowed', async (t) => {
    if (!available) return t.skip(SKIP);
    const mirror = await startRegistry();
    const origin = await startRegistry();
    t.after(() => Promise.all([mirror.stop(), origin.stop()]));
    const wanted = `${origin.host}/gadgets/trace_open:v1`;
    await pushImage(examples, EXAMPLES.traceOpen, `${mirror.host}/cache/gadgets/trace_open:v1`, FAST_RETRY);
    await pushImage(examples, EXAMPLES.helloWasm, `${origin.host}/gadgets/hello_wasm:v1`, FAST_RETRY);
    const work = await tempDir(t);
    const write = (fallback: boolean): Promise<void> =>
      writeFile(join(work, 'gadget.config.ts'), configSource({ registries: { mirrors: { [origin.host]: { mirrors: [`${mirror.host}/cache`], fallback } } } }));

    await write(true);
    await origin.stop(); // the original is unreachable: only the mirror can serve it
    const viaMirror = await cli.gadget(['--store', join(work, 's'), 'pull', wanted], { cwd: work });
    assert.equal(viaMirror.code, 0, viaMirror.stderr);
    assert.match(viaMirror.stdout, new RegExp(`pulled ${wanted} -> store ${wanted} \\(via ${mirror.host}/cache/gadgets/trace_open:v1\\)`));
    const store = await openStore(join(work, 's'));
    t.after(() => store.close());
    assert.equal(store.resolveRef(wanted).digest, examples.resolveRef(EXAMPLES.traceOpen).digest, 'stored under its own name');

    const origin2 = await startRegistry();
    t.after(() => origin2.stop());
    await pushImage(examples, EXAMPLES.helloWasm, `${origin2.host}/gadgets/hello_wasm:v1`, FAST_RETRY);
    await writeFile(join(work, 'gadget.config.ts'), configSource({ registries: { mirrors: { [origin2.host]: { mirrors: [`${mirror.host}/cache`] } } } }));
    const fallback = await cli.gadget(['--store', join(work, 's'), 'pull', `${origin2.host}/gadgets/hello_wasm:v1`], { cwd: work });
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.doesNotMatch(fallback.stdout, /via/, 'read from the original');

    await writeFile(join(work, 'gadget.config.ts'), configSource({ registries: { mirrors: { [origin2.host]: { mirrors: [`${mirror.host}/cache`], fallback: false } } } }));
    const strict = await cli.gadget(['--store', join(work, 's'), 'pull', `${origin2.host}/gadgets/hello_wasm:v2`], { cwd: work });
    assert.equal(strict.code, 1);
    assert.match(strict.stderr, new RegExp(`${mirror.host}/cache/gadgets/hello_wasm:v2: .*not found`));
    assert.match(strict.stderr, /fallback: false/);
  });
});

test('mirror routes: the longest matching prefix wins, the path stays under the mirror prefix', () => {
  const mirrors = {
    'ghcr.io': { mirrors: ['registry.internal:5000/mirror'] },
    'ghcr.io/inspektor-gadget': { mirrors: ['registry.internal:5000/ig', 'backup.internal/ig'], fallback: false },
  };
  const ig = mirrorRoute(parseRef('trace_exec'), mirrors);
  assert.deepEqual(ig.candidates.map(String), ['registry.internal:5000/ig/gadget/trace_exec:latest', 'backup.internal/ig/gadget/trace_exec:latest']);
  assert.equal(ig.fallback, false);
  const other = mirrorRoute(parseRef('ghcr.io/myorg/x:v1'), mirrors);
  assert.deepEqual(other.candidates.map(String), ['registry.internal:5000/mirror/myorg/x:v1', 'ghcr.io/myorg/x:v1']);
  const digest = `sha256:${'a'.repeat(64)}`;
  assert.deepEqual(mirrorRoute(parseRef(`docker.io/library/x@${digest}`), mirrors).candidates.map(String), [`docker.io/library/x@${digest}`]);
});

test('no command output in this file contains a password', (t) => {
  if (!available) return t.skip(SKIP);
  assert.ok(cli.outputs.length >= 10, `${cli.outputs.length} commands were run`);
  assert.deepEqual(cli.leaks(secrets), []);
});
