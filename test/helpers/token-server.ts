// A small token issuer for the registry's `auth.token` mode (docker distribution's Bearer
// token spec), for tests only. It checks Basic credentials (or an OAuth2 password /
// refresh-token grant) and returns a JWT signed ES256 with a key whose self-signed
// certificate the registry trusts (`rootcertbundle`). The JWT header names the key by its
// libtrust key id (`kid`), which distribution 2.8 looks up among the bundle's public keys.
import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface SigningKey {
  key: KeyObject;
  certPath: string;
  kid: string;
}

/**
 * A libtrust key id: SHA-256 of the DER SubjectPublicKeyInfo, truncated to 240 bits,
 * base32 (RFC 4648) in 12 groups of 4 joined by ':'.
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const hash = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of hash) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out.match(/.{4}/g)!.join(':');
}

/** An EC P-256 key and its self-signed certificate, made with openssl in `dir`. */
export async function makeSigningKey(dir: string): Promise<SigningKey> {
  try {
    await fs.access('/usr/bin/openssl');
  } catch {
    throw new Error('openssl is not installed (/usr/bin/openssl): it makes the token signing certificate');
  }
  const keyPath = path.join(dir, 'token-key.pem');
  const certPath = path.join(dir, 'token-cert.pem');
  await execFileP('/usr/bin/openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=gadget-test-token-issuer',
  ]);
  const key = createPrivateKey(await fs.readFile(keyPath));
  const cert = new X509Certificate(await fs.readFile(certPath));
  return { key, certPath, kid: libtrustKeyId(cert.publicKey) };
}

export interface TokenServerOptions {
  signing: SigningKey;
  service: string;
  issuer: string;
  users: Record<string, string>;
  /** OAuth2 refresh tokens (docker identity tokens) and the user each stands for. */
  refreshTokens?: Record<string, string>;
  /** Token lifetime in seconds (default 300). */
  expiresIn?: number;
}

/** What the issuer saw: never a password or token. */
export interface TokenRequestRecord {
  method: string;
  user?: string;
  scopes: string[];
  granted: boolean;
}

export interface TokenServer {
  /** The realm: `http://127.0.0.1:PORT/token`. */
  realm: string;
  requests: TokenRequestRecord[];
  close(): Promise<void>;
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

function parseScopes(values: string[]): { type: string; name: string; actions: string[] }[] {
  const out: { type: string; name: string; actions: string[] }[] = [];
  for (const v of values) {
    for (const scope of v.split(' ').filter(Boolean)) {
      const first = scope.indexOf(':');
      const last = scope.lastIndexOf(':');
      if (first <= 0 || last === first) continue;
      out.push({ type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean) });
    }
  }
  return out;
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const requests: TokenRequestRecord[] = [];
  const expiresIn = opts.expiresIn ?? 300;

  const issue = (user: string | undefined, scopes: string[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', kid: opts.signing.kid };
    const claims = {
      iss: opts.issuer,
      sub: user ?? '',
      aud: opts.service,
      exp: now + expiresIn,
      nbf: now - 5,
      iat: now,
      jti: randomBytes(16).toString('hex'),
      // Known users get what they ask for; anonymous callers get nothing.
      access: user ? parseScopes(scopes) : [],
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(input), { key: opts.signing.key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${b64url(signature)}`;
  };

  const basicUser = (header: string | undefined): string | null | undefined => {
    if (!header) return undefined; // anonymous
    const m = /^Basic\s+(.+)$/i.exec(header);
    if (!m) return null;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = decoded.slice(0, colon);
    return colon > 0 && Object.hasOwn(opts.users, user) && opts.users[user] === decoded.slice(colon + 1) ? user : null;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://token');
      const reply = (status: number, body: object): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (url.pathname !== '/token') return reply(404, { error: 'not found' });
      if (req.method === 'GET') {
        const scopes = url.searchParams.getAll('scope');
        const user = basicUser(req.headers.authorization);
        requests.push({ method: 'GET', user: user ?? undefined, scopes, granted: user !== null });
        if (user === null) return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] });
        const token = issue(user, scopes);
        return reply(200, { token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() });
      }
      if (req.method === 'POST') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const scopes = form.getAll('scope');
        let user: string | undefined;
        if (form.get('grant_type') === 'refresh_token') {
          user = opts.refreshTokens?.[form.get('refresh_token') ?? ''];
        } else if (form.get('grant_type') === 'password') {
          const u = form.get('username') ?? '';
          if (Object.hasOwn(opts.users, u) && opts.users[u] === form.get('password')) user = u;
        }
        requests.push({ method: 'POST', user, scopes, granted: user !== undefined });
        if (!user) return reply(401, { error: 'invalid_grant' });
        return reply(200, { access_token: issue(user, scopes), expires_in: expiresIn, scope: scopes.join(' ') });
      }
      reply(405, { error: 'method not allowed' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
