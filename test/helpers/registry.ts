// Real registries for tests: Debian's docker-registry (CNCF distribution 2.8) on 127.0.0.1 at
// a free port, without auth, with htpasswd (bcrypt) Basic auth, or with Bearer tokens from the
// small issuer in token-server.ts. Also a fault-injecting HTTP proxy to put in front of one.
//
//   const reg = await startRegistry({ auth: 'basic' });
//   after(() => reg.stop());
//   openRepository(parseRef(`${reg.host}/x/y:v1`), { credentials: { username: reg.username, password: reg.password } })
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { seededRandom } from './random.js';
import { makeSigningKey, startTokenServer, type TokenServer } from './token-server.js';

const execFileP = promisify(execFile);
export const REGISTRY_BIN = '/usr/bin/docker-registry';
export const TOKEN_SERVICE = 'gadget-test-registry';
export const TOKEN_ISSUER = 'gadget-test-issuer';

export interface StartRegistryOptions {
  auth?: 'none' | 'basic' | 'token';
  /** User -> password (default: one user "gadget" with a random password). */
  users?: Record<string, string>;
  /** Serve Go's pprof on a second port (bench/sync.ts --profile reads the registry's CPU profile). */
  debug?: boolean;
  /** Environment added to the registry's (bench/sync.ts --registry-gogc sets Go's GOGC). */
  env?: Record<string, string>;
  /** Token lifetime in seconds (token auth). */
  tokenExpiresIn?: number;
  /** OAuth2 refresh tokens the issuer accepts, and their users (token auth). */
  refreshTokens?: Record<string, string>;
}

export interface TestRegistry {
  /** 127.0.0.1:PORT */
  host: string;
  /** http://127.0.0.1:PORT */
  url: string;
  dataDir: string;
  /** The registry's process id (bench/sync.ts reads its CPU time from /proc). */
  pid: number;
  /** 127.0.0.1:PORT of the debug server (/debug/pprof/), with `debug`. */
  debugHost?: string;
  /** The first user and its password (basic and token auth). */
  username?: string;
  password?: string;
  /** The token issuer (token auth): its realm and the requests it saw. */
  tokenServer?: TokenServer;
  stop(): Promise<void>;
}

/** Whether the real registry is installed; tests skip with a message when not. */
export async function registryAvailable(): Promise<boolean> {
  try {
    await fs.access(REGISTRY_BIN);
    return true;
  } catch {
    return false;
  }
}

/** A port that was free a moment ago (the caller retries if it is taken meanwhile). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Resolves when GET /v2/ answers (any status); rejects if the process exits first. */
async function waitReady(child: ChildProcess, port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('the registry exited');
    const answered = await new Promise<boolean>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/v2/', agent: false }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
      req.setTimeout(1000, () => req.destroy());
    });
    if (answered) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`the registry did not answer on port ${port} within ${timeoutMs} ms`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const mode = opts.auth ?? 'none';
  const users = opts.users ?? { gadget: `pw-${randomBytes(9).toString('hex')}` };
  const [username, password] = Object.entries(users)[0] ?? [];
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'gadget-registry-'));
  const dataDir = path.join(tmp, 'data');
  let tokenServer: TokenServer | undefined;
  try {
    let authYaml = '';
    if (mode === 'basic') {
      const lines: string[] = [];
      for (const [u, p] of Object.entries(users)) {
        // distribution accepts bcrypt entries only (-B).
        const { stdout } = await execFileP('/usr/bin/htpasswd', ['-Bbn', u, p]);
        lines.push(stdout.trim());
      }
      const htpasswd = path.join(tmp, 'htpasswd');
      await fs.writeFile(htpasswd, lines.join('\n') + '\n', { mode: 0o600 });
      authYaml = `auth:\n  htpasswd:\n    realm: gadget-test\n    path: ${JSON.stringify(htpasswd)}\n`;
    } else if (mode === 'token') {
      const signing = await makeSigningKey(tmp);
      tokenServer = await startTokenServer({
        signing, service: TOKEN_SERVICE, issuer: TOKEN_ISSUER, users, refreshTokens: opts.refreshTokens, expiresIn: opts.tokenExpiresIn,
      });
      authYaml = `auth:\n  token:\n    realm: ${JSON.stringify(tokenServer.realm)}\n    service: ${TOKEN_SERVICE}\n    issuer: ${TOKEN_ISSUER}\n    rootcertbundle: ${JSON.stringify(signing.certPath)}\n`;
    }

    let lastError = '';
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort();
      const debugHost = opts.debug ? `127.0.0.1:${await freePort()}` : undefined;
      const config = path.join(tmp, 'config.yml');
      await fs.writeFile(
        config,
        'version: 0.1\n' +
          'log: {level: error, accesslog: {disabled: true}}\n' +
          `storage: {filesystem: {rootdirectory: ${JSON.stringify(dataDir)}}, delete: {enabled: true}}\n` +
          `http: {addr: "127.0.0.1:${port}", secret: ${JSON.stringify(randomBytes(16).toString('hex'))}${debugHost ? `, debug: {addr: "${debugHost}"}` : ''}}\n` +
          authYaml,
      );
      const child = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } });
      live.add(child);
      let stderr = '';
      child.stderr!.on('data', (b: Buffer) => {
        if (stderr.length < 8192) stderr += b.toString('utf8');
      });
      child.once('exit', () => live.delete(child));
      try {
        await waitReady(child, port);
      } catch (err) {
        await stopChild(child);
        lastError = `${(err as Error).message}: ${stderr.trim().slice(0, 2000)}`;
        continue; // most likely the port was taken meanwhile
      }
      const host = `127.0.0.1:${port}`;
      return {
        host,
        url: `http://${host}`,
        dataDir,
        pid: child.pid!,
        debugHost,
        username,
        password: mode === 'none' ? undefined : password,
        tokenServer,
        async stop() {
          await stopChild(child);
          await tokenServer?.close();
          await fs.rm(tmp, { recursive: true, force: true });
        },
      };
    }
    throw new Error(`docker-registry did not start: ${lastError}`);
  } catch (err) {
    await tokenServer?.close();
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

// --- a fault-injecting proxy ---------------------------------------------------------------

export interface ProxyMatch {
  method?: string;
  /** Tested against the request path with its query. */
  path: RegExp;
}

export interface ProxyRecord {
  method: string;
  path: string;
  range?: string;
  status: number;
  injected: boolean;
  /** The kind of fault chaos() injected, if any. */
  fault?: string;
  /** When the request arrived (Date.now()). */
  at: number;
}

export interface FaultProxy {
  /** 127.0.0.1:PORT, to use instead of the registry's host. */
  host: string;
  /** Every request seen, in order. */
  requests: ProxyRecord[];
  /** Answers the next `times` matching requests itself with `status` (and headers). */
  fail(match: ProxyMatch, status: number, opts?: { times?: number; headers?: Record<string, string>; body?: string }): void;
  /** Passes the next `times` matching answers on but drops the connection after `bytes` body bytes. */
  cut(match: ProxyMatch, bytes: number, opts?: { times?: number }): void;
  /** Adds headers to the next `times` matching answers of the registry. */
  addHeaders(match: ProxyMatch, headers: Record<string, string>, opts?: { times?: number }): void;
  /** Passes the next `times` matching answers on with the body byte at `offset` (default 0) flipped. */
  flip(match: ProxyMatch, opts?: { times?: number; offset?: number }): void;
  /** Drops the connection of the next `times` matching requests without any answer. */
  reset(match: ProxyMatch, opts?: { times?: number }): void;
  /**
   * From now on, a `rate` share of all requests (0..1) meets a random fault, drawn from a PRNG
   * seeded with `seed` (the same seed gives the same sequence of decisions): a reset before or
   * after the registry answered, 500, 503, 429 with Retry-After, a body cut off mid-way, a body
   * shortened with a matching Content-Length (a wrong length), one byte flipped. `rate: 0` stops.
   */
  chaos(opts: { rate: number; seed: number; retryAfter?: string }): void;
  /** How many faults chaos() injected since it was last started, by kind. */
  chaosCounts: Record<string, number>;
  /** Forgets the rules not used up yet. */
  clear(): void;
  close(): Promise<void>;
}

interface Rule {
  match: ProxyMatch;
  times: number;
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  cutAfter?: number;
  addHeaders?: Record<string, string>;
  flipAt?: number;
  reset?: boolean;
}

type RuleKind = 'fail' | 'cut' | 'headers' | 'flip' | 'reset';

const CHAOS_KINDS = ['reset-before', 'reset-after', '500', '503', '429', 'cut', 'short', 'flip'] as const;
type ChaosKind = (typeof CHAOS_KINDS)[number];

/**
 * An HTTP proxy in front of `target` (host:port) that injects faults: a stand-in for a
 * flaky network or an overloaded registry. It keeps the Host header, so the registry's
 * upload Locations point back at the proxy.
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const [targetHost, targetPort] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const rules: Rule[] = [];
  const requests: ProxyRecord[] = [];
  const kindOf = (r: Rule): RuleKind =>
    r.reset ? 'reset' : r.flipAt !== undefined ? 'flip' : r.cutAfter !== undefined ? 'cut' : r.addHeaders ? 'headers' : 'fail';
  const take = (method: string, p: string, kind: RuleKind): Rule | undefined => {
    const rule = rules.find((r) => r.times > 0 && kindOf(r) === kind
      && (!r.match.method || r.match.method === method) && r.match.path.test(p));
    if (rule) rule.times--;
    return rule;
  };
  let chaos: { rate: number; random: () => number; retryAfter: string } | undefined;
  const chaosCounts: Record<string, number> = {};
  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const p = req.url ?? '/';
    const record: ProxyRecord = { method, path: p, range: req.headers.range, status: 0, injected: false, at: Date.now() };
    requests.push(record);
    let fault: ChaosKind | undefined;
    if (chaos && chaos.random() < chaos.rate) {
      fault = CHAOS_KINDS[Math.floor(chaos.random() * CHAOS_KINDS.length)]!;
      record.injected = true;
      record.fault = fault;
      chaosCounts[fault] = (chaosCounts[fault] ?? 0) + 1;
    }
    if (fault === 'reset-before') {
      req.socket.destroy();
      return;
    }
    if (fault === '500' || fault === '503' || fault === '429') {
      req.resume();
      req.on('end', () => {
        record.status = Number(fault);
        res.writeHead(record.status, { 'content-type': 'text/plain', ...(fault === '429' ? { 'retry-after': chaos!.retryAfter } : {}) });
        res.end(`injected ${fault}`);
      });
      return;
    }
    if (fault) {
      const at = chaos!.random();
      const upstream = http.request({ host: targetHost, port: targetPort, method, path: p, headers: req.headers, agent: false }, (up) => {
        record.status = up.statusCode ?? 0;
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('error', () => res.destroy());
        up.on('end', () => {
          let body = Buffer.concat(chunks);
          const headers = { ...up.headers };
          if (fault === 'reset-after' || (body.length === 0 && fault !== 'flip')) {
            // The registry did the work; the client never learns it.
            res.socket?.destroy();
            return;
          }
          if (fault === 'flip' && body.length > 0) {
            body = Buffer.from(body);
            const i = Math.floor(at * body.length);
            body[i] = body[i]! ^ 0xff;
          } else if (fault === 'short') {
            body = body.subarray(0, Math.floor(at * body.length));
            headers['content-length'] = String(body.length);
            delete headers['transfer-encoding'];
          } else if (fault === 'cut') {
            res.writeHead(up.statusCode ?? 502, headers);
            res.write(body.subarray(0, Math.floor(at * body.length)));
            setImmediate(() => res.socket?.destroy());
            return;
          }
          res.writeHead(up.statusCode ?? 502, headers);
          res.end(method === 'HEAD' ? undefined : body);
        });
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
      return;
    }
    if (take(method, p, 'reset')) {
      record.injected = true;
      req.socket.destroy();
      return;
    }
    const failure = take(method, p, 'fail');
    if (failure) {
      req.resume();
      req.on('end', () => {
        record.status = failure.status!;
        record.injected = true;
        res.writeHead(failure.status!, { 'content-type': 'text/plain', ...failure.headers });
        res.end(failure.body ?? '');
      });
      return;
    }
    const upstream = http.request({ host: targetHost, port: targetPort, method, path: p, headers: req.headers, agent: false }, (up) => {
      record.status = up.statusCode ?? 0;
      const cut = take(method, p, 'cut');
      const extra = take(method, p, 'headers');
      const flip = cut ? undefined : take(method, p, 'flip');
      if (extra) record.injected = true;
      res.writeHead(up.statusCode ?? 502, { ...up.headers, ...extra?.addHeaders });
      if (flip) {
        record.injected = true;
        let seen = 0;
        up.on('data', (chunk: Buffer) => {
          const at = flip.flipAt! - seen;
          seen += chunk.length;
          if (at >= 0 && at < chunk.length) {
            chunk = Buffer.from(chunk);
            chunk[at] = chunk[at]! ^ 0xff;
          }
          res.write(chunk);
        });
        up.on('end', () => res.end());
        return;
      }
      if (!cut) {
        up.pipe(res);
        return;
      }
      record.injected = true;
      let sent = 0;
      up.on('data', (chunk: Buffer) => {
        if (sent >= cut.cutAfter!) return;
        const part = chunk.subarray(0, cut.cutAfter! - sent);
        sent += part.length;
        res.write(part);
        if (sent >= cut.cutAfter!) {
          up.destroy();
          // Let the bytes leave, then drop the connection mid-body.
          setImmediate(() => res.socket?.destroy());
        }
      });
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    fail(match, status, opts = {}) {
      rules.push({ match, times: opts.times ?? 1, status, headers: opts.headers, body: opts.body });
    },
    cut(match, bytes, opts = {}) {
      rules.push({ match, times: opts.times ?? 1, cutAfter: bytes });
    },
    addHeaders(match, headers, opts = {}) {
      rules.push({ match, times: opts.times ?? 1, addHeaders: headers });
    },
    flip(match, opts = {}) {
      rules.push({ match, times: opts.times ?? 1, flipAt: opts.offset ?? 0 });
    },
    reset(match, opts = {}) {
      rules.push({ match, times: opts.times ?? 1, reset: true });
    },
    chaos(opts) {
      if (opts.rate > 0) for (const k of Object.keys(chaosCounts)) delete chaosCounts[k];
      chaos = opts.rate > 0 ? { rate: opts.rate, random: seededRandom(opts.seed), retryAfter: opts.retryAfter ?? '1' } : undefined;
    },
    chaosCounts,
    clear() {
      rules.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
