// The registries of one command: one transport (request limit, connections, tokens) per
// registry and role, and one RemoteRepository object per repository and role. A source and a
// destination never share a transport: a copy holds source downloads open while it uploads,
// and one shared request limit could then be exhausted by downloads waiting for uploads.
import type { Reference } from '../oci/reference.js';
import { listRepositories } from './catalog.js';
import { openRepository, registryClient, type OpenOptions, type RegistryClient } from './client.js';
import { BlobLocations, type LocationRecords } from './locations.js';
import type { RemoteRepository } from './repository.js';

export type Role = 'source' | 'destination';

export class RegistryPool {
  private readonly clients = new Map<string, RegistryClient>();
  private readonly repositories = new Map<string, RemoteRepository>();
  /** Per registry, shared by both roles: a blob read from a repository can be mounted from it. */
  private readonly locations = new Map<string, BlobLocations>();
  private records: LocationRecords | undefined;

  constructor(readonly options: OpenOptions = {}) {}

  client(registry: string, role: Role = 'source'): RegistryClient {
    const key = `${role} ${registry}`;
    let client = this.clients.get(key);
    if (!client) {
      // Both roles share what is known of the registry: a blob read from a repository can be
      // mounted from it, and the referrers API is probed once.
      const sibling = this.clients.get(`${role === 'source' ? 'destination' : 'source'} ${registry}`);
      client = { ...registryClient(registry, this.options), blobs: this.locationsOf(registry), facts: sibling?.facts ?? {} };
      this.clients.set(key, client);
    }
    return client;
  }

  /** Where blobs were seen on `registry`, backed by the records given to keepLocations. */
  locationsOf(registry: string): BlobLocations {
    let known = this.locations.get(registry);
    if (!known) {
      known = new BlobLocations();
      if (this.records) known.records = { registry, store: this.records };
      this.locations.set(registry, known);
    }
    return known;
  }

  /** Recalls blob locations from `records` and keeps what is learnt there (saveLocations). */
  keepLocations(records: LocationRecords): void {
    this.records = records;
    for (const [registry, known] of this.locations) known.records = { registry, store: records };
  }

  /** Writes the locations learnt since the last call to the records. */
  saveLocations(): void {
    for (const known of this.locations.values()) known.save();
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
    return listRepositories(this.client(registry, 'source'), registry, prefix, signal, undefined, this.options.maxPages);
  }
}
