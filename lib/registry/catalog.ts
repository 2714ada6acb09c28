// The registry's catalog (`GET /v2/_catalog`): the repositories it holds, for mirror sets that
// name a registry and a repository prefix. Paged like tags/list (pages.ts). Many public
// registries (ghcr.io, Docker Hub) refuse it: the caller then needs an explicit list of
// repositories.
import { GadgetError } from '../errors.js';
import { registryError } from './errors.js';
import type { RegistryClient } from './client.js';
import { listAllPages } from './pages.js';

const REPOSITORY_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/** Every repository of the registry whose name starts with `prefix` (all when empty). */
export async function listRepositories(client: RegistryClient, registry: string, prefix = '', signal?: AbortSignal, pageSize = 1000, maxPages?: number): Promise<string[]> {
  const origin = new URL(`${client.scheme}//${registry}`).origin;
  const what = `the repository list (catalog) of ${registry}`;
  const names = await listAllPages({
    what,
    origin,
    first: new URL(`${origin}/v2/_catalog?n=${pageSize}`),
    after: (last) => new URL(`${origin}/v2/_catalog?n=${pageSize}&last=${encodeURIComponent(last)}`),
    key: 'repositories',
    valid: (name) => name.length <= 255 && REPOSITORY_RE.test(name),
    pageSize,
    maxPages,
    get: async (url) => {
      const { res, authSent } = await client.auth.send({ method: 'GET', url, signal }, ['registry:catalog:*']);
      if (res.status === 200) return res;
      const body = await res.errorBody();
      const err = registryError(res.status, body, { what, host: registry, authSent });
      throw new GadgetError(err.message, {
        exitCode: err.exitCode,
        hint: `${err.hint ? `${err.hint}; ` : ''}if ${registry} does not list its repositories, name each repository instead of the prefix (in a mirror set: repositories: [...])`,
      });
    },
    retrying: (work) => client.auth.retrying(work, signal),
    facts: client.facts,
  });
  return names.filter((name) => name.startsWith(prefix)).sort();
}
