// The HTTP transport of the registry client: node:http/https with keep-alive agents, a limit on
// requests in flight, retries (connection errors, timeouts, 408, 429 with Retry-After, 5xx)
// with exponential backoff and jitter, three timeouts (connecting, a silent connection, the
// answer to a request), and redirects followed by hand so that an Authorization header never
// travels to another origin. Bodies read whole (readJSON) fail as transient when damaged.
import { setMaxListeners } from 'node:events';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { finished, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { GadgetError, messageOf } from '../errors.js';
import { backoffDelay, DEFAULT_ATTEMPTS, retryTransient } from '../retry.js';
import { connectionError, ODD_ANSWER_HINT, redactUrl } from './errors.js';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A Buffer body can be sent again (retries, redirects, auth); a stream body only once. */
export type HttpBody = Buffer | Readable;

export interface HttpRequest {
  method: HttpMethod;
  url: URL;
  headers?: Record<string, string>;
  body?: HttpBody;
  signal?: AbortSignal;
  /** Follow redirects (default true). */
  followRedirects?: boolean;
  /** Send once, without retries (best-effort clean-up requests). */
  noRetry?: boolean;
}

export interface RetryOptions {
  /** Attempts in all, including the first (default 5). */
  attempts?: number;
  /** First backoff delay (default 250 ms); doubles with each attempt. */
  baseDelayMs?: number;
  /** Longest backoff delay (default 10 s). */
  maxDelayMs?: number;
  /** A Retry-After longer than this is not waited for; the answer is returned (default 60 s). */
  maxRetryAfterMs?: number;
}

/** Timeouts in milliseconds; a request that times out is retried like a dropped connection. */
export interface Timeouts {
  /** Opening a connection (TCP and TLS), default 30 s. */
  connectMs?: number;
  /** A connection on which nothing arrives or leaves, also while a body streams; default 60 s. */
  idleMs?: number;
  /** From sending a request to the answer's headers, default 120 s. */
  requestMs?: number;
}

export const DEFAULT_TIMEOUTS: Required<Timeouts> = { connectMs: 30_000, idleMs: 60_000, requestMs: 120_000 };

export interface HttpClientOptions {
  /** Requests in flight at once (default 8); a streamed response holds its slot until read. */
  concurrency?: number;
  userAgent?: string;
  retry?: RetryOptions;
  /** Timeouts (DEFAULT_TIMEOUTS for what is not given). */
  timeouts?: Timeouts;
  /** Hosts (host[:port]) that may be reached over plain HTTP, for redirects. */
  allowHttp?: (host: string) => boolean;
}

export class HttpResponse {
  constructor(
    readonly method: HttpMethod,
    readonly status: number,
    readonly headers: IncomingHttpHeaders,
    /** The URL that answered, after redirects. */
    readonly url: URL,
    /** Must be read to its end or destroyed: it holds a connection slot. */
    readonly body: IncomingMessage,
  ) {}

  header(name: string): string | undefined {
    const v = this.headers[name.toLowerCase()];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  /**
   * The whole body, refusing more than `max` bytes. `what` names the content for errors. A
   * body that breaks off is a transient GadgetError (asking again may work).
   */
  async read(max: number, what: string): Promise<Buffer> {
    const declared = Number(this.header('content-length'));
    if (Number.isFinite(declared) && declared > max) {
      this.body.destroy();
      throw new GadgetError(`${what}: the registry announced ${declared} bytes, more than the ${max} this program accepts`, { hint: ODD_ANSWER_HINT });
    }
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of this.body as AsyncIterable<Buffer>) {
        total += chunk.length;
        if (total > max) {
          this.body.destroy();
          throw new GadgetError(`${what}: the registry sent more than the ${max} bytes this program accepts`, { hint: ODD_ANSWER_HINT });
        }
        chunks.push(chunk);
      }
    } catch (err) {
      if (err instanceof GadgetError) throw err;
      throw new GadgetError(`${what}: the answer broke off after ${total} bytes (${messageOf(err)})`, { transient: true, cause: err });
    }
    return Buffer.concat(chunks, total);
  }

  /**
   * The body as JSON (strict UTF-8, at most `max` bytes). A body that is not JSON, or whose
   * bytes are not UTF-8, was damaged on the way: a transient GadgetError.
   */
  async readJSON(max: number, what: string): Promise<unknown> {
    return parseJSONBody(await this.read(max, what), what);
  }

  /** Reads a small error body (at most 64 KiB) for its error codes; never throws. */
  async errorBody(): Promise<Buffer> {
    try {
      return await this.read(64 * 1024, 'error body');
    } catch {
      return Buffer.alloc(0);
    }
  }

  /** Throws the body away and frees the connection. */
  discard(): void {
    this.body.resume();
    if (this.method === 'HEAD' || this.status === 204 || this.status === 304) return; // no body
    // A large body is not worth draining: closing the socket is cheaper.
    const len = Number(this.header('content-length'));
    if (!(len <= 64 * 1024)) this.body.destroy();
  }
}

/** Limits concurrent work; `acquire` resolves to the function that frees the slot. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError('concurrency must be at least 1');
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.active >= this.limit) {
      await new Promise<void>((resolve, reject) => {
        const wake = (): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const i = this.waiting.indexOf(wake);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(signal?.reason);
        };
        if (signal?.aborted) return reject(signal.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(wake);
      });
    } else {
      this.active++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next(); // the slot passes on; `active` stays the same
      else this.active--;
    };
  }
}

// One pool of kept-alive connections for the whole process; idle sockets do not keep node alive.
const AGENTS = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 64 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 64 }),
};

/** JSON from a registry body; a transient GadgetError when it is not (damaged on the way). */
export function parseJSONBody(body: Buffer, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    throw new GadgetError(`${what}: the registry answered something that is not JSON (${body.length} bytes)`, { transient: true, hint: ODD_ANSWER_HINT });
  }
}

const RETRY_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENETUNREACH', 'EHOSTUNREACH', 'EAI_AGAIN',
  'ECONNABORTED', 'GADGET_TIMEOUT', 'ERR_STREAM_PREMATURE_CLOSE',
]);

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

function isRetryableError(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  return RETRY_CODES.has(code);
}

/** Retry-After in milliseconds (delta-seconds or an HTTP date); undefined when absent or bad. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function isLoopbackHost(host: string): boolean {
  const name = hostnameOf(host);
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** host[:port] -> hostname without brackets or port. */
export function hostnameOf(host: string): string {
  const h = host.toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') < 0 ? undefined : h.indexOf(']'));
  const colon = h.indexOf(':');
  return colon >= 0 && colon === h.lastIndexOf(':') ? h.slice(0, colon) : h;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const SIGNALS = new WeakSet<AbortSignal>();
const MAX_REDIRECTS = 10;

export class HttpClient {
  private readonly slots: Semaphore;
  private readonly userAgent: string;
  private readonly attempts: number;
  private readonly baseDelay: number;
  private readonly maxDelay: number;
  private readonly maxRetryAfter: number;
  readonly timeouts: Required<Timeouts>;
  private readonly allowHttp: (host: string) => boolean;

  constructor(opts: HttpClientOptions = {}) {
    this.slots = new Semaphore(opts.concurrency ?? 8);
    this.userAgent = opts.userAgent ?? 'gadget-oci';
    this.attempts = Math.max(1, opts.retry?.attempts ?? DEFAULT_ATTEMPTS);
    this.baseDelay = opts.retry?.baseDelayMs ?? 250;
    this.maxDelay = opts.retry?.maxDelayMs ?? 10_000;
    this.maxRetryAfter = opts.retry?.maxRetryAfterMs ?? 60_000;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...definedOnly(opts.timeouts ?? {}) };
    this.allowHttp = opts.allowHttp ?? isLoopbackHost;
  }

  /**
   * Runs `work` (a request and the reading of its answer) again, with this client's attempts
   * and backoff, while it fails with a transient error: a body cut short, not JSON, or not
   * matching its digest. Connection errors and statuses are retried by send() itself.
   */
  retrying<T>(work: (attempt: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return retryTransient(work, { attempts: this.attempts, baseDelayMs: this.baseDelay, maxDelayMs: this.maxDelay, signal });
  }

  /**
   * Sends a request, retrying and following redirects. Returns every HTTP answer (callers
   * turn non-success statuses into errors); throws only when no answer came.
   */
  async send(req: HttpRequest): Promise<HttpResponse> {
    // One command's signal is shared by many concurrent requests, each listening for abort.
    if (req.signal && !SIGNALS.has(req.signal)) {
      setMaxListeners(0, req.signal);
      SIGNALS.add(req.signal);
    }
    const replayable = req.body === undefined || Buffer.isBuffer(req.body);
    const retryable = replayable && !req.noRetry;
    let url = req.url;
    let method = req.method;
    let body = req.body;
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...lowerKeys(req.headers ?? {}) };
    let attempt = 0;
    let redirects = 0;
    for (;;) {
      attempt++;
      if (req.signal?.aborted) throw req.signal.reason;
      const release = await this.slots.acquire(req.signal);
      let res: IncomingMessage;
      try {
        res = await this.once(method, url, headers, body, req.signal);
      } catch (err) {
        release();
        if (req.signal?.aborted) throw req.signal.reason;
        if (err instanceof GadgetError) throw err; // the body stream failed (e.g. a digest mismatch)
        if (retryable && attempt < this.attempts && isRetryableError(err)) {
          await sleep(this.backoff(attempt), undefined, { signal: req.signal });
          continue;
        }
        throw connectionError(err, url, attempt);
      }
      holdUntilDone(res, release);
      const response = new HttpResponse(method, res.statusCode ?? 0, res.headers, url, res);

      if (isRetryableStatus(response.status) && retryable && attempt < this.attempts) {
        const hinted = parseRetryAfter(response.header('retry-after'));
        if (hinted === undefined || hinted <= this.maxRetryAfter) {
          response.discard();
          await sleep(hinted ?? this.backoff(attempt), undefined, { signal: req.signal });
          continue;
        }
      }

      const location = response.header('location');
      if (req.followRedirects !== false && REDIRECTS.has(response.status) && location) {
        const keepMethod = response.status === 307 || response.status === 308;
        const canFollow = method === 'GET' || method === 'HEAD' || response.status === 303 || (keepMethod && replayable);
        if (!canFollow) return response;
        if (++redirects > MAX_REDIRECTS) {
          response.discard();
          throw new GadgetError(`${redactUrl(req.url)}: more than ${MAX_REDIRECTS} redirects`, { hint: 'the registry is misconfigured' });
        }
        const next = new URL(location, url);
        response.discard();
        this.checkRedirect(url, next);
        if (next.origin !== url.origin) {
          // Credentials belong to the origin they were given for.
          delete headers['authorization'];
          delete headers['cookie'];
        }
        if (response.status === 303 && method !== 'HEAD') {
          method = 'GET';
          body = undefined;
          delete headers['content-type'];
          delete headers['content-length'];
        }
        url = next;
        attempt = 0;
        continue;
      }
      return response;
    }
  }

  private checkRedirect(from: URL, to: URL): void {
    if (to.protocol !== 'https:' && to.protocol !== 'http:') {
      throw new GadgetError(`${redactUrl(from)} redirected to an unsupported ${to.protocol} URL`);
    }
    if (to.username || to.password) {
      throw new GadgetError(`${redactUrl(from)} redirected to an URL that carries credentials; refusing it`);
    }
    if (to.protocol === 'http:' && !this.allowHttp(to.host)) {
      throw new GadgetError(`${redactUrl(from)} redirected to plain HTTP at ${to.host}; refusing it`, {
        hint: `name ${to.host} with --insecure-registry only if you trust the network`,
      });
    }
  }

  private backoff(attempt: number): number {
    return backoffDelay(attempt, { baseDelayMs: this.baseDelay, maxDelayMs: this.maxDelay });
  }

  private once(method: HttpMethod, url: URL, headers: Record<string, string>, body: HttpBody | undefined, signal?: AbortSignal): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const mod = url.protocol === 'https:' ? https : http;
      const h = { ...headers };
      if (Buffer.isBuffer(body)) h['content-length'] = String(body.length);
      else if (body === undefined && (method === 'PUT' || method === 'POST' || method === 'PATCH')) h['content-length'] = '0';
      let bodyError: unknown;
      let settled = false;
      const { connectMs, idleMs, requestMs } = this.timeouts;
      const req = mod.request(url, { method, headers: h, agent: AGENTS[url.protocol as 'http:' | 'https:'], signal });
      const timeout = (message: string) => () => req.destroy(Object.assign(new Error(message), { code: 'GADGET_TIMEOUT' }));
      // The silent-connection timeout stays on the socket while the body streams.
      req.setTimeout(idleMs, timeout(`the connection was silent for ${seconds(idleMs)}`));
      const answerTimer = setTimeout(timeout(`no answer within ${seconds(requestMs)}`), requestMs);
      let connectTimer: NodeJS.Timeout | undefined;
      req.once('socket', (socket) => {
        if (!(socket as { connecting?: boolean }).connecting) return; // a kept-alive connection
        connectTimer = setTimeout(timeout(`could not connect within ${seconds(connectMs)}`), connectMs);
        socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer));
      });
      const clearTimers = (): void => {
        clearTimeout(answerTimer);
        clearTimeout(connectTimer);
      };
      req.on('response', (res) => {
        settled = true;
        clearTimers();
        // Errors after the answer (e.g. the server closes while we still send) surface on res.
        req.on('error', () => {});
        resolve(res);
      });
      req.on('error', (err) => {
        clearTimers();
        if (settled) return;
        settled = true;
        reject(bodyError ?? err);
      });
      if (body === undefined || Buffer.isBuffer(body)) {
        req.end(body);
      } else {
        // finished() also reports a body that failed or closed before it was handed over here,
        // which a plain 'error' listener would never hear of (the request would never end).
        finished(body, (err) => {
          if (!err) return;
          bodyError = err;
          req.destroy(err);
        });
        body.pipe(req);
      }
    });
  }
}

/** Frees the connection slot once the response body is finished, failed or dropped. */
function holdUntilDone(res: IncomingMessage, release: () => void): void {
  res.once('end', release);
  res.once('close', release);
  res.once('error', release);
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function lowerKeys(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

/** The `rel="next"` target of a Link header, resolved against the request URL. */
export function nextLink(link: string | undefined, base: URL): URL | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m && /;\s*rel="?next"?/i.test(m[2]!)) {
      try {
        return new URL(m[1]!, base);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}
