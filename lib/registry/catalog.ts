// The registry's catalog (`GET /v2/_catalog`): the repositories it holds, for mirror sets that
// name a registry and a repository prefix. Paged with `n`/`last` and the Link header, like
// tags/list. Many public registries (ghcr.io, Docker Hub) refuse it: the caller then needs an
// explicit list of repositories.
import { GadgetError } from '../errors.js';
import { registryError } from './errors.js';
import { nextLink, type HttpResponse } from './http.js';
import type { RegistryClient } from './index.js';

const MAX_PAGES = 10_000;

/** Every repository of the registry whose name starts with `prefix` (all when empty). */
export async function listRepositories(client: RegistryClient, registry: string, prefix = '', signal?: AbortSignal, pageSize = 1000): Promise<string[]> {
  const origin = new URL(`${client.scheme}//${registry}`).origin;
  const what = `the repository list (catalog) of ${registry}`;
  const seen = new Set<string>();
  let url: URL | undefined = new URL(`${origin}/v2/_catalog?n=${pageSize}`);
  for (let page = 0; url && page < MAX_PAGES; page++) {
    const { res, authSent }: { res: HttpResponse; authSent: boolean } = await client.auth.send({ method: 'GET', url, signal }, ['registry:catalog:*']);
    if (res.status !== 200) {
      const body = await res.errorBody();
      const err = registryError(res.status, body, { what, host: registry, authSent });
      throw new GadgetError(err.message, {
        exitCode: err.exitCode,
        hint: `${err.hint ? `${err.hint}; ` : ''}if ${registry} does not list its repositories, name them in the mirror set (repositories: [...])`,
      });
    }
    const body = await res.read(16 * 1024 * 1024, what);
    let list: unknown;
    try {
      list = (JSON.parse(body.toString('utf8')) as { repositories?: unknown }).repositories;
    } catch {
      throw new GadgetError(`${what}: the registry answered something that is not JSON`);
    }
    const names = Array.isArray(list) ? list.filter((r): r is string => typeof r === 'string') : [];
    const before = seen.size;
    for (const name of names) seen.add(name);
    const next = nextLink(res.header('link'), url);
    if (next && next.origin === origin) url = next;
    else if (names.length >= pageSize && seen.size > before) url = new URL(`${origin}/v2/_catalog?n=${pageSize}&last=${encodeURIComponent(names[names.length - 1]!)}`);
    else url = undefined;
  }
  return [...seen].filter((name) => name.startsWith(prefix)).sort();
}
