// `gadget serve`: the store as an OCI registry (/v2/, see registry.ts) and a page to look at
// it (/, see page.ts). Safe by default: loopback only unless told otherwise; another address
// needs TLS or an explicit --insecure, and writes there need an htpasswd file; limits on
// manifest size, blob size and open uploads (an upload idle for 15 minutes is closed); on
// stop, no new connections, in-flight uploads aborted and their temporary files removed.
import { readFileSync } from 'node:fs';
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { GadgetError, messageOf, usageError } from '../lib/errors.js';
import { MAX_MANIFEST_BYTES } from '../lib/oci/target.js';
import type { Logger } from '../lib/progress.js';
import type { Store } from '../store/store.js';
import { Htpasswd } from './auth.js';
import { RegistryError, internalError, logLine, send, sendError, type RegistryLimits } from './http.js';
import { errorPage, imagePage, listPage } from './page.js';
import { Registry } from './registry.js';

export interface ServeOptions {
  /** Default 127.0.0.1. */
  address?: string;
  /** Default 5000; 0 picks a free port. */
  port?: number;
  readOnly?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  /** Plain HTTP on an address other than loopback. */
  insecure?: boolean;
  /** Every request must authenticate against this htpasswd file (bcrypt). */
  htpasswd?: string;
  limits?: Partial<RegistryLimits>;
  log?: Logger;
}

export interface RunningServer {
  url: string;
  port: number;
  /** Stops accepting, aborts uploads in progress, waits for open requests (at most 5 s). */
  close(): Promise<void>;
}

export const DEFAULT_LIMITS: RegistryLimits = { manifestBytes: MAX_MANIFEST_BYTES, uploadBytes: 16 * 1024 ** 3, uploads: 64, uploadIdleMs: 15 * 60_000 };

/**
 * The limits: the defaults, then $GADGET_SERVE_UPLOAD_IDLE (seconds an upload may stay idle;
 * there for tests, which cannot wait 15 minutes, without a flag of its own), then `given`.
 */
function limitsOf(given: Partial<RegistryLimits> = {}): RegistryLimits {
  const idle = Number(process.env.GADGET_SERVE_UPLOAD_IDLE);
  const fromEnv = idle > 0 ? { uploadIdleMs: idle * 1000 } : {};
  const limits: RegistryLimits = { ...DEFAULT_LIMITS, ...fromEnv, ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) };
  // The store reads a manifest only up to MAX_MANIFEST_BYTES (store/graph.ts): a larger one
  // would be written, then counted as missing, so its tag would never take.
  if (limits.manifestBytes > MAX_MANIFEST_BYTES) {
    throw usageError(`--max-manifest-size ${limits.manifestBytes} bytes is more than the store reads of a manifest: at most ${MAX_MANIFEST_BYTES} bytes (4MiB)`, 'give 4MiB or less');
  }
  return limits;
}

export function isLoopback(address: string): boolean {
  return address === 'localhost' || address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address);
}

function checkSafety(opts: ServeOptions): void {
  const address = opts.address ?? '127.0.0.1';
  if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) throw usageError('--tls-cert and --tls-key go together');
  if (isLoopback(address)) return;
  if (!opts.tlsCert && !opts.insecure) {
    throw usageError(`serving on ${address} needs TLS`, 'give --tls-cert FILE --tls-key FILE, or --insecure to serve plain HTTP on purpose');
  }
  if (!opts.readOnly && !opts.htpasswd) {
    throw usageError(`writes on ${address} need authentication`, 'give --htpasswd FILE (bcrypt entries: htpasswd -Bbn USER PASSWORD), or --read-only');
  }
}

export async function startServer(store: Store, opts: ServeOptions = {}): Promise<RunningServer> {
  checkSafety(opts);
  const auth = opts.htpasswd ? new Htpasswd(opts.htpasswd) : undefined;
  const controller = new AbortController();
  const registry = new Registry({ store, readOnly: Boolean(opts.readOnly), limits: limitsOf(opts.limits), signal: controller.signal });
  const log = opts.log;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://server');
    try {
      if (auth && !auth.check(req.headers.authorization)) {
        throw new RegistryError('UNAUTHORIZED', 'authentication required', 401, { 'WWW-Authenticate': 'Basic realm="gadget serve"' });
      }
      if (url.pathname === '/v2' || url.pathname.startsWith('/v2/')) {
        await registry.handle(req, res, url.pathname.replace(/^\/v2\/?/, ''), url.searchParams);
      } else {
        await page(req, res, url);
      }
    } catch (err) {
      if (!(err instanceof RegistryError)) log?.warn(`serve: ${req.method} ${url.pathname}: ${logLine(err)}`);
      if (res.headersSent) return void res.destroy();
      sendError(res, err instanceof RegistryError ? err : internalError(err));
    } finally {
      log?.debug(`serve: ${req.method} ${url.pathname}${url.search} ${res.statusCode}`);
    }
  };

  /** The page: HTML, its failures too (never the registry's JSON). */
  const page = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const html = (status: number, body: string, headers: Record<string, string> = {}): void =>
      send(res, status, { 'Content-Type': 'text/html; charset=utf-8', ...headers }, body, req.method === 'HEAD');
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return html(405, errorPage('Not allowed', 'the page is read-only'), { Allow: 'GET, HEAD' });
      if (url.pathname === '/') return html(200, listPage(store, url.searchParams.get('q') ?? ''));
      if (url.pathname !== '/image') return html(404, errorPage('Not found', `there is no page ${url.pathname}`));
      const ref = url.searchParams.get('ref') ?? '';
      const found = await imagePage(store, ref);
      html(found ? 200 : 404, found ?? errorPage('Not found', `${ref} is not in the store`));
    } catch (err) {
      log?.warn(`serve: ${req.method} ${url.pathname}${url.search}: ${logLine(err)}`);
      html(500, errorPage('Cannot show this page', internalError(err).message));
    }
  };

  const listener = (req: IncomingMessage, res: ServerResponse): void => void handle(req, res);
  let server: Server;
  if (opts.tlsCert) {
    try {
      server = createHttps({ cert: readFileSync(opts.tlsCert), key: readFileSync(opts.tlsKey!) }, listener);
    } catch (err) {
      throw new GadgetError(`cannot read the TLS certificate or key: ${messageOf(err)}`, { exitCode: 2 });
    }
  } else server = createHttp(listener);
  // Long uploads are fine; a client that stops sending for a minute is not.
  server.requestTimeout = 0;
  server.timeout = 60_000;

  const address = opts.address ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new GadgetError(`cannot listen on ${address}:${opts.port ?? 5000}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.message}`, { exitCode: 2, hint: 'choose another --port (0 picks a free one)' })),
    );
    server.listen(opts.port ?? 5000, address, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `${opts.tlsCert ? 'https' : 'http'}://${host}:${port}`,
    port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      controller.abort(new Error('the server is stopping'));
      await registry.uploads.close();
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), 5000);
      await closed;
      clearTimeout(timer);
    },
  };
}
