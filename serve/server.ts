// `gadget serve`: the store as an OCI registry (/v2/, see registry.ts) and a page to look at
// it (/, see page.ts). Safe by default: loopback only unless told otherwise; another address
// needs TLS or an explicit --insecure, and writes there need an htpasswd file; limits on
// manifest size, blob size and open uploads; on stop, no new connections, in-flight uploads
// aborted and their temporary files removed.
import { readFileSync } from 'node:fs';
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { GadgetError, messageOf, usageError } from '../lib/errors.js';
import { MAX_MANIFEST_BYTES } from '../lib/oci/target.js';
import type { Logger } from '../lib/progress.js';
import type { Store } from '../store/store.js';
import { Htpasswd } from './auth.js';
import { RegistryError, send, sendError } from './http.js';
import { imagePage, listPage } from './page.js';
import { Registry, type RegistryLimits } from './registry.js';

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

export const DEFAULT_LIMITS: RegistryLimits = { manifestBytes: MAX_MANIFEST_BYTES, uploadBytes: 16 * 1024 ** 3, uploads: 64 };

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
  const registry = new Registry({ store, readOnly: Boolean(opts.readOnly), limits: { ...DEFAULT_LIMITS, ...Object.fromEntries(Object.entries(opts.limits ?? {}).filter(([, v]) => v !== undefined)) }, signal: controller.signal });
  const log = opts.log;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://server');
    try {
      if (auth && !auth.check(req.headers.authorization)) {
        throw new RegistryError('UNAUTHORIZED', 'authentication required', 401, { 'WWW-Authenticate': 'Basic realm="gadget serve"' });
      }
      if (url.pathname === '/v2' || url.pathname.startsWith('/v2/')) {
        await registry.handle(req, res, url.pathname.replace(/^\/v2\/?/, ''), url.searchParams);
      } else if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(res, 405, { 'Content-Type': 'text/plain', Allow: 'GET, HEAD' }, 'the page is read-only\n');
      } else if (url.pathname === '/') {
        send(res, 200, { 'Content-Type': 'text/html; charset=utf-8' }, listPage(store, url.searchParams.get('q') ?? ''), req.method === 'HEAD');
      } else if (url.pathname === '/image') {
        const page = await imagePage(store, url.searchParams.get('ref') ?? '');
        if (page) send(res, 200, { 'Content-Type': 'text/html; charset=utf-8' }, page, req.method === 'HEAD');
        else send(res, 404, { 'Content-Type': 'text/plain' }, 'no such image in the store\n');
      } else {
        send(res, 404, { 'Content-Type': 'text/plain' }, 'not found\n');
      }
    } catch (err) {
      if (res.headersSent) return void res.destroy();
      if (err instanceof RegistryError) return sendError(res, err);
      log?.warn(`serve: ${req.method} ${url.pathname}: ${messageOf(err)}`);
      sendError(res, new RegistryError('BLOB_UPLOAD_INVALID', messageOf(err), 500));
    } finally {
      log?.debug(`serve: ${req.method} ${url.pathname}${url.search} ${res.statusCode}`);
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
      await registry.abortUploads();
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), 5000);
      await closed;
      clearTimeout(timer);
    },
  };
}
