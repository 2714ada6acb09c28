// The store as a copy destination, with its tags written in batches: each tag of the store
// rewrites index.json (atomically, fsynced), so a sync of a thousand images tags them a few
// hundred at a time in one update each. A tag is only recorded once its whole graph is in the
// store (copyGraph tags last), so a batch never names anything half-copied.
import type { Readable } from 'node:stream';
import type { Referrer, Target } from '../../lib/oci/target.js';
import type { Descriptor } from '../../lib/oci/types.js';
import { IncompleteGraphError, type Store } from '../../store/store.js';

const BATCH = 500;

export class BatchedStore implements Target {
  readonly name: string;
  readonly holdsTrueSizes = true;
  private pending = new Map<string, Descriptor>();
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly store: Store) {
    this.name = store.name;
  }

  fetch(descriptor: Descriptor): Promise<Readable> {
    return this.store.fetch(descriptor);
  }

  exists(descriptor: Descriptor): Promise<boolean> {
    return this.store.exists(descriptor);
  }

  push(descriptor: Descriptor, content: Readable, signal?: AbortSignal): Promise<void> {
    return this.store.push(descriptor, content, signal);
  }

  pushBlob(descriptor: Descriptor, open: () => Promise<Readable>, signal?: AbortSignal): Promise<'copied' | 'skipped'> {
    return this.store.pushBlob(descriptor, open, signal);
  }

  async resolve(reference: string): Promise<Descriptor> {
    return this.pending.get(reference) ?? this.store.resolve(reference);
  }

  async peek(reference: string): Promise<Descriptor | undefined> {
    const queued = this.pending.get(reference);
    if (queued) return queued;
    try {
      return await this.store.resolve(reference);
    } catch {
      return undefined;
    }
  }

  async tag(descriptor: Descriptor, reference: string): Promise<void> {
    this.pending.set(reference, descriptor);
    if (this.pending.size < BATCH) return;
    // Images of the batch that a concurrent gc emptied stay pending for the run's last flush.
    await this.flush().catch((err: unknown) => {
      if (!(err instanceof IncompleteGraphError)) throw err;
    });
  }

  referrers(descriptor: Descriptor): Promise<Referrer[]> {
    return this.store.referrers(descriptor);
  }

  /**
   * Writes the pending tags in one index.json update (one at a time). When a concurrent gc
   * removed content of some images after they were copied, the others are tagged, those stay
   * pending, and the IncompleteGraphError names them.
   */
  flush(): Promise<void> {
    const items = [...this.pending].map(([ref, descriptor]) => ({ ref, descriptor }));
    const run = this.writing.then(async () => {
      if (items.length === 0) return;
      let whole = items;
      let incomplete: IncompleteGraphError | undefined;
      try {
        await this.store.tagMany(items);
      } catch (err) {
        if (!(err instanceof IncompleteGraphError)) throw err;
        incomplete = err;
        const emptied = new Set(err.incomplete.map((i) => i.ref));
        whole = items.filter((i) => !emptied.has(i.ref));
        if (whole.length) await this.store.tagMany(whole);
      }
      for (const { ref, descriptor } of whole) if (this.pending.get(ref) === descriptor) this.pending.delete(ref);
      if (incomplete) throw incomplete;
    });
    this.writing = run.catch(() => undefined);
    return run;
  }

  /** Drops pending tags (of images that failed after all). */
  forget(refs: string[]): void {
    for (const ref of refs) this.pending.delete(ref);
  }
}
