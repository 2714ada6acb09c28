// Where content was seen on one registry: digest -> the repositories that hold it. A blob pushed
// to another repository of the registry is then mounted from one of them, not uploaded again;
// a manifest never seen in a repository is pushed there without asking first. What is learnt
// during a run can be kept (the store records it, see plugins/sync/run.ts) and recalled in the
// next one. Wrong knowledge costs requests, never correctness: a mount the registry cannot do
// is answered with an ordinary upload.

/** Durable memory of locations, shared by runs (the store's index). */
export interface LocationRecords {
  /** The repositories of `registry` that held `digest`, most recent first. */
  recall(registry: string, digest: string): string[];
  /** Adds what a run learnt. */
  record(registry: string, learnt: Map<string, string[]>): void;
}

const REPOSITORIES_PER_DIGEST = 4;

export class BlobLocations {
  private readonly known = new Map<string, string[]>();
  private readonly learnt = new Map<string, string[]>();
  private readonly uploads = new Map<string, Promise<void>>();
  /** Blob sizes this run saw the registry hold (it took the bytes, or answered a HEAD). */
  private readonly sizes = new Map<string, number>();
  /** Set by whoever keeps locations between runs (the sync runner, from the store). */
  records: { registry: string; store: LocationRecords } | undefined;

  constructor(private readonly limit = 200_000) {}

  /** The repositories known to hold `digest`, most recent first. */
  get(digest: string): string[] {
    let repos = this.known.get(digest);
    if (repos === undefined) {
      repos = this.records?.store.recall(this.records.registry, digest) ?? [];
      this.remember(digest, repos);
    }
    return repos;
  }

  /** Whether `repository` is known to hold `digest`. */
  seenIn(digest: string, repository: string): boolean {
    return this.get(digest).includes(repository);
  }

  /** Records that `repository` holds `digest`. */
  set(digest: string, repository: string): void {
    const repos = this.get(digest);
    if (repos[0] === repository) return;
    const updated = [repository, ...repos.filter((r) => r !== repository)].slice(0, REPOSITORIES_PER_DIGEST);
    this.remember(digest, updated);
    this.learnt.set(digest, updated);
  }

  /**
   * Runs an upload of `digest` so that pushes of the same blob to other repositories can wait
   * for it (`inflight`) and then mount it instead of uploading it a second time.
   */
  track<T>(digest: string, upload: Promise<T>): Promise<T> {
    const settled = upload.then(
      () => undefined,
      () => undefined,
    );
    this.uploads.set(digest, settled);
    void settled.then(() => {
      if (this.uploads.get(digest) === settled) this.uploads.delete(digest);
    });
    return upload;
  }

  /** The push of `digest` to this registry in flight, if any (it never rejects). */
  inflight(digest: string): Promise<void> | undefined {
    return this.uploads.get(digest);
  }

  /** Records that the registry holds `digest` with `size` bytes. */
  confirmSize(digest: string, size: number): void {
    this.sizes.set(digest, size);
    if (this.sizes.size > this.limit) this.sizes.delete(this.sizes.keys().next().value!);
  }

  /** Whether this run saw the registry hold `digest` with `size` bytes. */
  sizeConfirmed(digest: string, size: number): boolean {
    return this.sizes.get(digest) === size;
  }

  /** Writes what was learnt to the records, once. */
  save(): void {
    if (!this.records || this.learnt.size === 0) return;
    this.records.store.record(this.records.registry, new Map(this.learnt));
    this.learnt.clear();
  }

  private remember(digest: string, repos: string[]): void {
    this.known.delete(digest);
    this.known.set(digest, repos);
    if (this.known.size > this.limit) this.known.delete(this.known.keys().next().value!);
  }
}
