// A request-counting HTTP proxy in front of a real registry: what a transfer costs in requests,
// by kind (HEAD manifest, POST mount, PUT blob, ...). The tests assert request kinds with it
// and bench/sync.ts prints them per image. It keeps the Host header, so the registry's upload
// Locations point back at the proxy, and keeps connections to the registry alive.
//
// With `refuseMounts`, it is a stand-in for a registry without cross-repository mounts: a
// `POST .../blobs/uploads/?mount=&from=` reaches the registry without its mount parameters,
// so the registry answers a plain 202 upload start, as such a registry does.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CountedRequest {
  method: string;
  path: string;
  status: number;
  kind: string;
}

export interface CountingProxy {
  /** 127.0.0.1:PORT, to use instead of the registry's host. */
  host: string;
  /** Every request seen, in order (answered ones have a status). */
  requests: CountedRequest[];
  /** Requests by kind since the last reset. */
  counts(): Record<string, number>;
  reset(): void;
  /** Turn mount POSTs into plain upload starts (a registry that refuses mounts). */
  refuseMounts: boolean;
  close(): Promise<void>;
}

/** The kind of a distribution API request: "HEAD manifest", "POST mount", "PUT blob", ... */
export function requestKind(method: string, path: string, status = 0): string {
  const p = path.split('?')[0]!;
  const query = path.includes('?') ? path.slice(path.indexOf('?')) : '';
  if (p === '/v2/' || p === '/v2') return `${method} /v2/`;
  if (p.endsWith('/_catalog')) return `${method} catalog`;
  if (/\/tags\/list$/.test(p)) return `${method} tag list`;
  if (/\/referrers\//.test(p)) return `${method} referrers`;
  if (/\/manifests\//.test(p)) return `${method} manifest`;
  if (/\/blobs\/uploads\/?$/.test(p) && method === 'POST') {
    if (/[?&]mount=/.test(query)) return status === 201 ? 'POST mount (201 mounted)' : 'POST mount (202 upload)';
    return 'POST upload';
  }
  if (/\/blobs\/uploads\//.test(p)) return `${method} upload`;
  if (/\/blobs\//.test(p)) return `${method} blob`;
  return `${method} other`;
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const colon = target.lastIndexOf(':');
  const targetHost = target.slice(0, colon);
  const targetPort = Number(target.slice(colon + 1));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const requests: CountedRequest[] = [];
  let counts: Record<string, number> = {};
  const proxy: CountingProxy = {
    host: '',
    requests,
    counts: () => ({ ...counts }),
    reset() {
      counts = {};
      requests.length = 0;
    },
    refuseMounts: false,
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    let path = req.url ?? '/';
    if (proxy.refuseMounts && method === 'POST' && /[?&]mount=/.test(path)) {
      const url = new URL(path, 'http://proxy');
      url.searchParams.delete('mount');
      url.searchParams.delete('from');
      path = url.pathname + url.search;
    }
    const record: CountedRequest = { method, path: req.url ?? '/', status: 0, kind: '' };
    requests.push(record);
    const upstream = http.request({ host: targetHost, port: targetPort, method, path, headers: req.headers, agent }, (up) => {
      record.status = up.statusCode ?? 0;
      record.kind = requestKind(method, record.path, record.status);
      if (proxy.refuseMounts && record.kind === 'POST mount (202 upload)') record.kind = 'POST mount (202 upload, refused by the proxy)';
      counts[record.kind] = (counts[record.kind] ?? 0) + 1;
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
