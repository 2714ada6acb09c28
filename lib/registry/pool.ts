// The registries of one command: one transport (request limit, connections, tokens) per
// registry and role, and one RemoteRepository object per repository and role. A source and a
// destination never share a transport: a copy holds source downloads open while it uploads,
// and one shared request limit could then be exhausted by downloads waiting for uploads.
import type { Reference } from '../oci/reference.js';
import { listRepositories } from './catalog.js';
import { openRepository, registryClient, type OpenOptions, type RegistryClient } from './index.js';
import type { RemoteRepository } from './repository.js';

export type Role = 'source' | 'destination';

export class RegistryPool {
  private readonly clients = new Map<string, RegistryClient>();
  private readonly repositories = new Map<string, RemoteRepository>();

  constructor(readonly options: OpenOptions = {}) {}

  client(registry: string, role: Role = 'source'): RegistryClient {
    const key = `${role} ${registry}`;
    let client = this.clients.get(key);
    if (!client) {
      client = registryClient(registry, this.options);
      this.clients.set(key, client);
    }
    return client;
  }

  /**
   * The repository of `ref` (its tag or digest does not matter). With `mountFrom` (a
   * repository of the same registry), blobs pushed to it are mounted from there first: a
   * separate object, so that concurrent copies from different sources do not mix.
   */
  repository(ref: Reference, role: Role = 'source', mountFrom?: string): RemoteRepository {
    const key = `${role} ${ref.name}${mountFrom ? ` <- ${mountFrom}` : ''}`;
    let repo = this.repositories.get(key);
    if (!repo) {
      const upload = mountFrom ? { ...this.options.upload, mountFrom: [mountFrom] } : this.options.upload;
      repo = openRepository(ref, { ...this.options, upload, client: this.client(ref.registry, role) });
      this.repositories.set(key, repo);
    }
    return repo;
  }

  /** The repositories of `registry` under `prefix`, from its catalog. */
  catalog(registry: string, prefix = '', signal?: AbortSignal): Promise<string[]> {
    return listRepositories(this.client(registry, 'source'), registry, prefix, signal);
  }
}
