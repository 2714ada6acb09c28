// Authentication against the real docker-registry: htpasswd Basic auth and Bearer tokens
// from the small issuer in test/helpers/token-server.ts; credentials from DOCKER_CONFIG,
// ig's --authfile and a credential helper (a real executable written to a temp folder);
// login/logout; no Authorization across origins; no secret in any error.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { sha256 } from '../lib/oci/digest.js';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { EMPTY_BYTES, GADGET_EBPF, MT_EMPTY, MT_MANIFEST } from '../lib/oci/mediatypes.js';
import { parseRef } from '../lib/oci/reference.js';
import type { Descriptor } from '../lib/oci/types.js';
import {
  login, logout, mergeScopes, nextLink, normalizeRegistryHost, openRepository, parseRetryAfter, parseWWWAuthenticate, pingRegistry, plainHttpAllowed,
  readCredentials, type OpenOptions, type RemoteRepository,
} from '../lib/registry/index.js';
import { registryAvailable, startRegistry, type TestRegistry } from './helpers/registry.js';

const SKIP = 'docker-registry is not installed (/usr/bin/docker-registry)';
const available = await registryAvailable();
const FAST: OpenOptions = { retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 } };

/** Every secret used in this file; no error may contain one, raw or base64-encoded. */
const secrets = new Set<string>();
const errorsSeen: unknown[] = [];

function assertNoSecret(err: unknown): void {
  errorsSeen.push(err);
  checkNoSecret(err);
}

function checkNoSecret(err: unknown): void {
  const e = err as { message?: string; hint?: string; stack?: string; cause?: unknown };
  const text = [e.message, e.hint, e.stack, String(e.cause ?? ''), JSON.stringify(err)].join('\n');
  for (const s of secrets) {
    assert.ok(!text.includes(s), `an error message contains a secret: ${e.message}`);
  }
}

async function rejectsWithoutSecret(p: Promise<unknown>, pattern: RegExp): Promise<Error & { hint?: string }> {
  try {
    await p;
  } catch (err) {
    assertNoSecret(err);
    assert.match((err as Error).message, pattern);
    return err as Error & { hint?: string };
  }
  assert.fail(`expected a rejection matching ${pattern}`);
}

function remember(user: string, password: string): void {
  secrets.add(password);
  secrets.add(Buffer.from(`${user}:${password}`).toString('base64'));
}

const blobItem = (bytes: Buffer): { desc: Descriptor; bytes: Buffer } => ({ desc: { mediaType: GADGET_EBPF, digest: sha256(bytes), size: bytes.length }, bytes });

/** Pushes config, layer and manifest, tags it, and reads the manifest back. */
async function roundTrip(repo: RemoteRepository, tag = 'v1'): Promise<void> {
  const config = { desc: { mediaType: MT_EMPTY, digest: sha256(EMPTY_BYTES), size: 2 }, bytes: EMPTY_BYTES };
  const layer = blobItem(randomBytes(300));
  const manifestBytes = encodeJSONBytes({ schemaVersion: 2, mediaType: MT_MANIFEST, config: config.desc, layers: [layer.desc] });
  const manifest = { desc: { mediaType: MT_MANIFEST, digest: sha256(manifestBytes), size: manifestBytes.length }, bytes: manifestBytes };
  for (const it of [config, layer, manifest]) {
    if (!(await repo.exists(it.desc))) await repo.push(it.desc, Readable.from([it.bytes]));
  }
  await repo.tag(manifest.desc, tag);
  assert.equal((await repo.resolve(tag)).digest, manifest.desc.digest);
}

let tmpRoot: string;
before(async () => {
  tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'gadget-auth-test-'));
});
after(async () => {
  await fs.rm(tmpRoot, { recursive: true, force: true });
});

/** An isolated environment: its own DOCKER_CONFIG and HOME, PATH extended with `bin`. */
async function isolatedEnv(config?: object): Promise<{ env: NodeJS.ProcessEnv; dir: string; bin: string }> {
  const dir = await fs.mkdtemp(path.join(tmpRoot, 'env-'));
  const bin = path.join(dir, 'bin');
  await fs.mkdir(bin);
  if (config) await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
  return { env: { DOCKER_CONFIG: dir, HOME: dir, PATH: `${bin}:${process.env.PATH ?? ''}` }, dir, bin };
}

/** A real docker-credential-test helper (node script) keeping its secrets in a JSON file. */
async function installHelper(bin: string, name = 'test'): Promise<string> {
  const store = path.join(bin, 'helper-store.json');
  const script = `#!${process.execPath}
const fs = require('fs');
const file = ${JSON.stringify(store)};
const load = () => { try { return JSON.parse(fs.readFileSync(file, 'utf8')); } catch { return {}; } };
let input = '';
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const db = load();
  const action = process.argv[2];
  if (action === 'get') {
    const e = db[input.trim()];
    if (!e) { process.stdout.write('credentials not found in native keychain'); process.exit(1); }
    process.stdout.write(JSON.stringify({ ServerURL: input.trim(), Username: e.Username, Secret: e.Secret }));
  } else if (action === 'store') {
    const c = JSON.parse(input);
    db[c.ServerURL] = { Username: c.Username, Secret: c.Secret };
    fs.writeFileSync(file, JSON.stringify(db));
  } else if (action === 'erase') {
    if (!db[input.trim()]) { process.stdout.write('credentials not found in native keychain'); process.exit(1); }
    delete db[input.trim()];
    fs.writeFileSync(file, JSON.stringify(db));
  } else { process.exit(2); }
});
`;
  const file = path.join(bin, `docker-credential-${name}`);
  await fs.writeFile(file, script, { mode: 0o755 });
  return store;
}

describe('parsing', () => {
  test('WWW-Authenticate: several challenges, quoted values with commas and escapes', () => {
    const c = parseWWWAuthenticate(
      'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push repository:c:pull", Basic realm="x\\"y", Negotiate',
    );
    assert.deepEqual(c, [
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push repository:c:pull' } },
      { scheme: 'basic', params: { realm: 'x"y' } },
      { scheme: 'negotiate', params: {} },
    ]);
    assert.deepEqual(parseWWWAuthenticate('Basic realm=plain'), [{ scheme: 'basic', params: { realm: 'plain' } }]);
  });

  test('scopes merge per resource; Retry-After; Link; registry keys; plain HTTP hosts', () => {
    assert.deepEqual(mergeScopes(['repository:a:pull', 'repository:a:push', 'repository:b:pull repository:a:pull']), ['repository:a:pull,push', 'repository:b:pull']);
    assert.equal(parseRetryAfter('3'), 3000);
    assert.equal(parseRetryAfter(new Date(Date.now() + 10_000).toUTCString(), Date.now())! > 8000, true);
    assert.equal(parseRetryAfter('soon'), undefined);
    const base = new URL('https://r.example/v2/a/tags/list?n=2');
    assert.equal(nextLink('</v2/a/tags/list?n=2&last=b>; rel="next"', base)?.href, 'https://r.example/v2/a/tags/list?n=2&last=b');
    assert.equal(nextLink('<https://x/>; rel="prev"', base), undefined);
    assert.equal(normalizeRegistryHost('https://index.docker.io/v1/'), 'docker.io');
    assert.equal(normalizeRegistryHost('http://127.0.0.1:5000/v1/'), '127.0.0.1:5000');
    const allow = plainHttpAllowed(['registry.lan', 'other.lan:5000']);
    for (const h of ['localhost:5000', '127.0.0.1:1', '[::1]:5000', 'registry.lan', 'registry.lan:443', 'other.lan:5000']) assert.ok(allow(h), h);
    for (const h of ['ghcr.io', 'other.lan:5001', '10.0.0.1:5000', 'registry.lan.evil.com']) assert.ok(!allow(h), h);
    assert.equal(openRepository(parseRef('ghcr.io/a/b:v1')).origin, 'https://ghcr.io');
    assert.equal(openRepository(parseRef('registry.lan/a/b'), { insecure: ['registry.lan'] }).origin, 'http://registry.lan');
    assert.equal(openRepository(parseRef('localhost:5000/a/b')).origin, 'http://localhost:5000');
  });
});

describe('basic auth (htpasswd)', () => {
  let reg: TestRegistry;
  before(async () => {
    if (!available) return;
    reg = await startRegistry({ auth: 'basic' });
    remember(reg.username!, reg.password!);
  });
  after(() => reg?.stop());
  const ref = (name: string) => parseRef(`${reg.host}/${name}`);

  test('the right password works; a wrong one is a clear error without the password', async (t) => {
    if (!available) return t.skip(SKIP);
    await roundTrip(openRepository(ref('gadgets/basic'), { ...FAST, credentials: { username: reg.username, password: reg.password } }));

    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    remember(reg.username!, wrong);
    const err = await rejectsWithoutSecret(
      openRepository(ref('gadgets/basic'), { ...FAST, credentials: { username: reg.username, password: wrong } }).resolve('v1'),
      /rejected the credentials/,
    );
    assert.match(err.message, new RegExp(`${reg.host}/gadgets/basic:v1`));
    assert.match(err.hint ?? '', new RegExp(`gadget login ${reg.host}`));

    const { env } = await isolatedEnv();
    const anon = await rejectsWithoutSecret(openRepository(ref('gadgets/basic'), { ...FAST, env }).resolve('v1'), /requires authentication/);
    assert.match(anon.hint ?? '', new RegExp(`gadget login ${reg.host}`));
  });

  test('credentials from a DOCKER_CONFIG folder: auth, username/password, and ig --authfile', async (t) => {
    if (!available) return t.skip(SKIP);
    const auth = Buffer.from(`${reg.username}:${reg.password}`).toString('base64');
    const a = await isolatedEnv({ auths: { [`http://${reg.host}/v1/`]: { auth } } });
    await roundTrip(openRepository(ref('gadgets/cfg'), { ...FAST, env: a.env }), 'from-auth');
    const b = await isolatedEnv({ auths: { [reg.host]: { username: reg.username, password: reg.password } } });
    assert.deepEqual(await readCredentials(reg.host, { env: b.env }), { username: reg.username, password: reg.password });
    await roundTrip(openRepository(ref('gadgets/cfg'), { ...FAST, env: b.env }), 'from-fields');

    const empty = await isolatedEnv();
    const authfile = path.join(empty.dir, 'ig-auth.json');
    await fs.writeFile(authfile, JSON.stringify({ auths: { [reg.host]: { auth } } }));
    await roundTrip(openRepository(ref('gadgets/cfg'), { ...FAST, env: empty.env, authfile }), 'from-authfile');
    assert.equal(await readCredentials(reg.host, { env: empty.env }), undefined);
  });

  test('a credential helper (credHelpers and credsStore) gets, stores and erases', async (t) => {
    if (!available) return t.skip(SKIP);
    const { env, dir, bin } = await isolatedEnv({ credHelpers: { [reg.host]: 'test' } });
    const store = await installHelper(bin);
    assert.equal(await readCredentials(reg.host, { env }), undefined);

    const result = await login(reg.host, reg.username!, reg.password!, { env });
    assert.equal(result.helper, 'test');
    const config = JSON.parse(await fs.readFile(path.join(dir, 'config.json'), 'utf8')) as { auths?: unknown };
    assert.equal(config.auths, undefined, 'the secret went to the helper, not the file');
    assert.ok(JSON.parse(await fs.readFile(store, 'utf8'))[reg.host]);
    await roundTrip(openRepository(ref('gadgets/helper'), { ...FAST, env }));

    assert.equal(await logout(reg.host, { env }), true);
    assert.equal(await readCredentials(reg.host, { env }), undefined);
    assert.equal(await logout(reg.host, { env }), false);

    // credsStore serves every host.
    const other = await isolatedEnv({ credsStore: 'test' });
    await installHelper(other.bin);
    await login(reg.host, reg.username!, reg.password!, { env: other.env });
    assert.deepEqual(await readCredentials(reg.host, { env: other.env }), { username: reg.username, password: reg.password });

    // A helper name from the file never reaches a command line unchecked.
    const evil = await isolatedEnv({ credsStore: '../../bin/sh' });
    await rejectsWithoutSecret(readCredentials(reg.host, { env: evil.env }), /invalid credential helper/);
    const absent = await isolatedEnv({ credsStore: 'absent' });
    await rejectsWithoutSecret(readCredentials(reg.host, { env: absent.env }), /docker-credential-absent .*not installed/);
  });

  test('login writes config.json atomically with mode 0600 and keeps other settings; logout removes the entry', async (t) => {
    if (!available) return t.skip(SKIP);
    const { env, dir } = await isolatedEnv({ auths: { 'other.example': { auth: 'eDp5' } }, psFormat: 'table' });
    await fs.chmod(path.join(dir, 'config.json'), 0o644);
    const result = await login(reg.host, reg.username!, reg.password!, { env });
    const file = path.join(dir, 'config.json');
    assert.equal(result.file, file);
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
    const written = JSON.parse(await fs.readFile(file, 'utf8')) as { auths: Record<string, { auth: string }>; psFormat: string };
    assert.equal(written.psFormat, 'table');
    assert.equal(written.auths['other.example']!.auth, 'eDp5');
    assert.equal(Buffer.from(written.auths[reg.host]!.auth, 'base64').toString(), `${reg.username}:${reg.password}`);
    assert.deepEqual((await fs.readdir(dir)).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left');
    await pingRegistry(reg.host, { ...FAST, env });
    await roundTrip(openRepository(ref('gadgets/login'), { ...FAST, env }));

    // A fresh folder: login creates it.
    const fresh = path.join(dir, 'new', 'config.json');
    await login(reg.host, reg.username!, reg.password!, { env, authfile: fresh });
    assert.equal((await fs.stat(fresh)).mode & 0o777, 0o600);

    assert.equal(await logout(reg.host, { env }), true);
    const after = JSON.parse(await fs.readFile(file, 'utf8')) as { auths: Record<string, unknown> };
    assert.deepEqual(Object.keys(after.auths), ['other.example']);
    assert.equal(await logout(reg.host, { env }), false);
  });

  test('pingRegistry accepts the right credentials and rejects wrong ones', async (t) => {
    if (!available) return t.skip(SKIP);
    await pingRegistry(reg.host, { ...FAST, credentials: { username: reg.username, password: reg.password } });
    const bad = `bad-${randomBytes(6).toString('hex')}`;
    remember(reg.username!, bad);
    await rejectsWithoutSecret(pingRegistry(reg.host, { ...FAST, credentials: { username: reg.username, password: bad } }), /rejected the credentials/);
  });
});

describe('token auth (Bearer, real registry + test issuer)', () => {
  let reg: TestRegistry;
  const refresh = `refresh-${randomBytes(8).toString('hex')}`;
  before(async () => {
    if (!available) return;
    secrets.add(refresh);
    reg = await startRegistry({ auth: 'token', refreshTokens: { [refresh]: 'gadget' } });
    remember(reg.username!, reg.password!);
  });
  after(() => reg?.stop());
  const ref = (name: string) => parseRef(`${reg.host}/${name}`);
  const creds = () => ({ ...FAST, credentials: { username: reg.username, password: reg.password } });

  test('push and pull with a token for the repository scope; one token per scope set', async (t) => {
    if (!available) return t.skip(SKIP);
    const before = reg.tokenServer!.requests.length;
    await roundTrip(openRepository(ref('gadgets/token'), creds()));
    const seen = reg.tokenServer!.requests.slice(before);
    assert.ok(seen.length >= 1 && seen.length <= 3, `token requests: ${seen.length}`);
    assert.ok(seen.every((r) => r.user === 'gadget' && r.granted));
    assert.ok(seen.some((r) => r.scopes.includes('repository:gadgets/token:pull,push')));

    // Pull by a fresh client: a pull-only token works.
    const reader = openRepository(ref('gadgets/token'), creds());
    await reader.resolve('v1');
    assert.ok(reg.tokenServer!.requests.at(-1)!.scopes.includes('repository:gadgets/token:pull'));
  });

  test('a cross-repository mount asks for pull on the source repository too', async (t) => {
    if (!available) return t.skip(SKIP);
    const blob = blobItem(randomBytes(500));
    await openRepository(ref('gadgets/src'), creds()).push(blob.desc, Readable.from([blob.bytes]));
    const dest = openRepository(ref('gadgets/dst'), creds());
    const before = reg.tokenServer!.requests.length;
    await dest.push(blob.desc, new Readable({ read() { this.destroy(new Error('the content was read')); } }), undefined, { mountFrom: ['gadgets/src'] });
    assert.ok(await dest.exists(blob.desc));
    const scopes = reg.tokenServer!.requests.slice(before).flatMap((r) => r.scopes);
    assert.ok(scopes.some((s) => s.includes('repository:gadgets/src:pull')), scopes.join(' | '));
  });

  test('wrong password and anonymous access fail clearly, without secrets', async (t) => {
    if (!available) return t.skip(SKIP);
    const wrong = `nope-${randomBytes(6).toString('hex')}`;
    remember(reg.username!, wrong);
    const err = await rejectsWithoutSecret(
      openRepository(ref('gadgets/token'), { ...FAST, credentials: { username: reg.username, password: wrong } }).resolve('v1'),
      /rejected the credentials/,
    );
    assert.match(err.hint ?? '', new RegExp(`gadget login ${reg.host}`));
    const { env } = await isolatedEnv();
    const anon = await rejectsWithoutSecret(openRepository(ref('gadgets/token'), { ...FAST, env }).resolve('v1'), /requires authentication/);
    assert.match(anon.hint ?? '', new RegExp(`gadget login ${reg.host}`));
    await rejectsWithoutSecret(pingRegistry(reg.host, { ...FAST, credentials: { username: reg.username, password: wrong } }), /rejected the credentials/);
    await pingRegistry(reg.host, creds());
  });

  test('an identity token from config.json is exchanged with the OAuth2 refresh-token grant', async (t) => {
    if (!available) return t.skip(SKIP);
    const { env } = await isolatedEnv({ auths: { [reg.host]: { auth: '', identitytoken: refresh } } });
    const before = reg.tokenServer!.requests.length;
    await openRepository(ref('gadgets/token'), { ...FAST, env }).resolve('v1');
    const seen = reg.tokenServer!.requests.slice(before);
    assert.ok(seen.some((r) => r.method === 'POST' && r.user === 'gadget'));
  });

  test('a token is fetched again when it is about to expire', async (t) => {
    if (!available) return t.skip(SKIP);
    const short = await startRegistry({ auth: 'token', tokenExpiresIn: 1 });
    remember(short.username!, short.password!);
    try {
      const repo = openRepository(parseRef(`${short.host}/gadgets/exp`), { ...FAST, credentials: { username: short.username, password: short.password } });
      await roundTrip(repo);
      const count = short.tokenServer!.requests.length;
      await repo.resolve('v1');
      await sleep(1100);
      await repo.resolve('v1');
      assert.ok(short.tokenServer!.requests.length > count, 'a new token after expiry');
    } finally {
      await short.stop();
    }
  });
});

describe('redirects and realms (small local servers)', () => {
  const servers: http.Server[] = [];
  const listen = async (handler: http.RequestListener): Promise<number> => {
    const s = http.createServer(handler);
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return (s.address() as AddressInfo).port;
  };
  after(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  test('a redirect to another origin does not carry the Authorization header', async () => {
    const content = randomBytes(1000);
    const digest = sha256(content);
    const password = `redirect-${randomBytes(6).toString('hex')}`;
    remember('u', password);
    const expected = 'Basic ' + Buffer.from(`u:${password}`).toString('base64');
    let storageAuth: string | undefined = 'not called';
    const storagePort = await listen((req, res) => {
      storageAuth = req.headers.authorization;
      res.writeHead(200, { 'content-length': String(content.length) });
      res.end(content);
    });
    let registryAuth: string | undefined;
    const registryPort = await listen((req, res) => {
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' });
        return res.end();
      }
      registryAuth = req.headers.authorization;
      res.writeHead(307, { location: `http://127.0.0.1:${storagePort}/storage/${digest}?sig=abc` });
      res.end();
    });
    const repo = openRepository(parseRef(`127.0.0.1:${registryPort}/x/y`), { ...FAST, credentials: { username: 'u', password } });
    const chunks: Buffer[] = [];
    for await (const c of (await repo.fetch({ mediaType: GADGET_EBPF, digest, size: content.length })) as AsyncIterable<Buffer>) chunks.push(c);
    assert.deepEqual(Buffer.concat(chunks), content);
    assert.equal(registryAuth, expected, 'the registry got the credentials');
    assert.equal(storageAuth, undefined, 'the other origin did not');
  });

  test('credentials are never sent to a plain-HTTP token realm on a remote host', async () => {
    const password = `realm-${randomBytes(6).toString('hex')}`;
    remember('u', password);
    const port = await listen((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://192.0.2.1/token",service="x"' });
      res.end();
    });
    const repo = openRepository(parseRef(`127.0.0.1:${port}/x/y`), { ...FAST, credentials: { username: 'u', password } });
    await rejectsWithoutSecret(repo.resolve('v1'), /not HTTPS; refusing to send them/);
  });

  test('a refused connection is an environment error naming the host', async () => {
    // A port that was just free: nothing listens there.
    const s = http.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const { port } = s.address() as AddressInfo;
    await new Promise((r) => s.close(r));
    const repo = openRepository(parseRef(`127.0.0.1:${port}/x/y`), { retry: { attempts: 2, baseDelayMs: 1 } });
    const err = await rejectsWithoutSecret(repo.resolve('v1'), new RegExp(`cannot reach the registry 127.0.0.1:${port}.*connection refused after 2 attempts`));
    assert.equal((err as { exitCode?: number }).exitCode, 2);
  });
});

test('no error seen in this file contains a secret', (t) => {
  if (!available) return t.skip(SKIP);
  assert.ok(errorsSeen.length >= 10, `errors checked: ${errorsSeen.length}`);
  for (const err of errorsSeen) checkNoSecret(err);
});
