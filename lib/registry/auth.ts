// Registry authentication: the WWW-Authenticate challenge of a 401 tells which scheme the
// registry wants. Basic sends the stored credentials; Bearer trades them (or nothing, for
// anonymous pulls) for a token at the challenge's realm, per service and scope. Tokens are
// cached per scope set until shortly before they expire.
import { GadgetError } from '../errors.js';
import type { Credential } from './credentials.js';
import { ODD_ANSWER_HINT, redactUrl, registryError } from './errors.js';
import type { HttpClient, HttpRequest, HttpResponse } from './http.js';

export interface Challenge {
  scheme: string; // lower-case
  params: Record<string, string>; // keys lower-case
}

/** Parses a WWW-Authenticate header (RFC 7235): several challenges, quoted values with commas. */
export function parseWWWAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = (): void => {
    while (i < n && /[\s,]/.test(header[i]!)) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skipWs();
    const scheme = token();
    if (!scheme) {
      i++; // skip a stray character
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    for (;;) {
      while (i < n && /[ \t]/.test(header[i]!)) i++;
      const save = i;
      if (header[i] === ',') i++;
      while (i < n && /[ \t]/.test(header[i]!)) i++;
      const key = token();
      while (i < n && /[ \t]/.test(header[i]!)) i++;
      if (!key || header[i] !== '=') {
        i = save; // not a parameter: the next challenge starts here
        break;
      }
      i++; // '='
      while (i < n && /[ \t]/.test(header[i]!)) i++;
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++; // closing quote
      } else {
        const start = i;
        while (i < n && header[i] !== ',' && !/\s/.test(header[i]!)) i++;
        value = header.slice(start, i);
      }
      challenge.params[key.toLowerCase()] = value;
    }
  }
  return out;
}

/** Merges scopes (`repository:name:pull,push`) into a sorted, de-duplicated list. */
export function mergeScopes(scopes: Iterable<string>): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const scope of scopes) {
    for (const one of scope.split(' ')) {
      const first = one.indexOf(':');
      const last = one.lastIndexOf(':');
      if (first <= 0 || last === first) continue;
      const resource = one.slice(0, last);
      const actions = byResource.get(resource) ?? new Set<string>();
      for (const a of one.slice(last + 1).split(',')) if (a) actions.add(a);
      byResource.set(resource, actions);
    }
  }
  return [...byResource.entries()].map(([r, a]) => `${r}:${[...a].sort().join(',')}`).sort();
}

export function repositoryScope(repository: string, push: boolean): string {
  return `repository:${repository}:${push ? 'pull,push' : 'pull'}`;
}

interface CachedToken {
  header: string;
  staleAt: number;
}

interface Authorization {
  header: string;
  withCredentials: boolean;
}

export interface AuthClientOptions {
  /** host[:port] of the registry. */
  host: string;
  /** `https:` or `http:`, the registry's scheme. */
  origin: string;
  http: HttpClient;
  /** Loads the credentials for the registry (called lazily, once). */
  credentials: () => Promise<Credential | undefined>;
  /** Whether a plain-HTTP realm on this host may receive credentials. */
  allowHttp: (host: string) => boolean;
}

const MAX_TOKEN_RESPONSE = 1024 * 1024;
const TOKEN_CACHE_LIMIT = 256;

/** Sends registry requests with the authorization the registry asks for. */
export class AuthClient {
  private scheme: 'none' | 'basic' | 'bearer' | undefined;
  private realm?: string;
  private service?: string;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<Authorization>>();
  private credentialsPromise?: Promise<Credential | undefined>;

  constructor(private readonly opts: AuthClientOptions) {}

  /**
   * Sends `req` with the authorization for `scopes`; on a 401 from the registry it learns the
   * challenge, gets credentials or a token and sends once more (only a replayable body).
   * `authSent` says whether credentials were involved in the final answer.
   */
  async send(req: HttpRequest, scopes: string[]): Promise<{ res: HttpResponse; authSent: boolean }> {
    let auth = await this.current(scopes, req.signal);
    let res = await this.opts.http.send(withAuth(req, auth));
    if (res.status !== 401 || res.url.origin !== this.opts.origin) return { res, authSent: auth?.withCredentials ?? false };
    const challenges = parseWWWAuthenticate(res.header('www-authenticate') ?? '');
    const replayable = req.body === undefined || Buffer.isBuffer(req.body);
    const next = await this.learn(challenges, scopes, auth, req.signal);
    if (!next || next.header === auth?.header || !replayable) return { res, authSent: auth?.withCredentials ?? false };
    res.discard();
    auth = next;
    res = await this.opts.http.send(withAuth(req, auth));
    return { res, authSent: auth.withCredentials };
  }

  /** Runs `work` again while it fails transiently (HttpClient.retrying). */
  retrying<T>(work: (attempt: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.opts.http.retrying(work, signal);
  }

  private credentials(): Promise<Credential | undefined> {
    this.credentialsPromise ??= this.opts.credentials();
    return this.credentialsPromise;
  }

  /** The authorization known to work for these scopes, without asking the registry. */
  private async current(scopes: string[], signal?: AbortSignal): Promise<Authorization | undefined> {
    if (this.scheme === 'basic') return this.basic();
    if (this.scheme === 'bearer') return this.token(scopes, false, signal);
    return undefined;
  }

  private async basic(): Promise<Authorization | undefined> {
    const cred = await this.credentials();
    if (!cred || cred.password === undefined) return undefined;
    return { header: 'Basic ' + Buffer.from(`${cred.username ?? ''}:${cred.password}`, 'utf8').toString('base64'), withCredentials: true };
  }

  private async learn(challenges: Challenge[], scopes: string[], sent: Authorization | undefined, signal?: AbortSignal): Promise<Authorization | undefined> {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer?.params.realm) {
      this.scheme = 'bearer';
      this.realm = bearer.params.realm;
      this.service = bearer.params.service;
      const wanted = mergeScopes([...scopes, ...(bearer.params.scope ? [bearer.params.scope] : [])]);
      return this.token(wanted, sent !== undefined, signal);
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      this.scheme = 'basic';
      return this.basic();
    }
    return undefined;
  }

  private async token(scopes: string[], refresh: boolean, signal?: AbortSignal): Promise<Authorization> {
    const merged = mergeScopes(scopes);
    const key = `${this.realm}|${this.service ?? ''}|${merged.join(' ')}`;
    const cached = this.tokens.get(key);
    if (cached && !refresh && Date.now() < cached.staleAt) return { header: cached.header, withCredentials: (await this.credentials()) !== undefined };
    let inflight = this.pending.get(key);
    if (!inflight) {
      inflight = this.fetchToken(merged, signal).finally(() => this.pending.delete(key));
      this.pending.set(key, inflight);
    }
    const auth = await inflight;
    return auth;
  }

  private async fetchToken(scopes: string[], signal?: AbortSignal): Promise<Authorization> {
    const { host } = this.opts;
    let realm: URL;
    try {
      realm = new URL(this.realm!);
    } catch {
      throw new GadgetError(`the registry ${host} names an invalid token service`, { hint: 'the registry is misconfigured' });
    }
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && this.opts.allowHttp(realm.host))) {
      throw new GadgetError(`the registry ${host} asks for credentials at ${redactUrl(realm)}, which is not HTTPS; refusing to send them`, {
        exitCode: 2,
        hint: `name ${realm.host} with --insecure-registry only if you trust the network`,
      });
    }
    const cred = await this.credentials();
    const started = Date.now();
    let req: HttpRequest;
    if (cred?.identityToken) {
      // OAuth2 refresh-token grant, as docker does with an identity token.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken, client_id: 'gadget-oci' });
      if (this.service) form.set('service', this.service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      req = { method: 'POST', url: realm, body: Buffer.from(form.toString()), headers: { 'content-type': 'application/x-www-form-urlencoded' }, signal };
    } else {
      const url = new URL(realm);
      if (this.service) url.searchParams.set('service', this.service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      if (cred?.password !== undefined) {
        if (cred.username) url.searchParams.set('account', cred.username);
        headers.authorization = 'Basic ' + Buffer.from(`${cred.username ?? ''}:${cred.password}`, 'utf8').toString('base64');
      }
      req = { method: 'GET', url, headers, signal };
    }
    const what = `token for ${host} from ${redactUrl(realm)}`;
    // A token answer damaged on the way (cut short, not JSON) is asked for again.
    const parsed = await this.opts.http.retrying(async () => {
      const res = await this.opts.http.send(req);
      if (res.status < 200 || res.status >= 300) {
        const body = await res.errorBody();
        if (res.status === 401 || res.status === 403) {
          const access = scopes.length > 0 ? scopes.join(' ') : 'the registry';
          throw registryError(401, body, { what: `getting a token for ${access} from ${redactUrl(realm)}`, host, authSent: cred !== undefined });
        }
        throw registryError(res.status, body, { what, host: realm.host });
      }
      const doc = (await res.readJSON(MAX_TOKEN_RESPONSE, what)) as { token?: unknown; access_token?: unknown; expires_in?: unknown } | null;
      if (typeof doc !== 'object' || doc === null) throw new GadgetError(`${what}: the answer is not a JSON object`, { transient: true, hint: ODD_ANSWER_HINT });
      return doc;
    }, signal);
    const token = typeof parsed.token === 'string' && parsed.token ? parsed.token : typeof parsed.access_token === 'string' ? parsed.access_token : '';
    if (!token) throw new GadgetError(`${what}: the answer holds no token`);
    const expiresIn = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 60;
    // Refresh a little before expiry: a quarter of the lifetime, at most 10 s.
    const staleAt = started + (expiresIn - Math.min(10, expiresIn / 4)) * 1000;
    const header = `Bearer ${token}`;
    const key = `${this.realm}|${this.service ?? ''}|${scopes.join(' ')}`;
    if (this.tokens.size >= TOKEN_CACHE_LIMIT) this.tokens.delete(this.tokens.keys().next().value!);
    this.tokens.set(key, { header, staleAt });
    return { header, withCredentials: cred !== undefined };
  }
}

function withAuth(req: HttpRequest, auth: Authorization | undefined): HttpRequest {
  if (!auth) return req;
  return { ...req, headers: { ...req.headers, authorization: auth.header } };
}
