// Bundles (OCI layout tars) as the ends of a sync, each opened once per run: as a source read
// in place (store/bundle-source.ts), as a destination written at the end of the run
// (store/bundle-destination.ts). Where a bundle may be written is output-file.ts's rule,
// checked for the whole sync before it plans anything.
import { isGadgetError, messageOf } from '../../lib/errors.js';
import type { Descriptor } from '../../lib/oci/types.js';
import { BundleDestination } from '../../store/bundle-destination.js';
import { BundleSource } from '../../store/bundle-source.js';
import { checkOutputFile } from '../../store/output-file.js';
import type { Store } from '../../store/store.js';
import type { MirrorSet } from './config.js';
import type { PlanItem } from './plan.js';
import type { ItemResult } from './results.js';

/**
 * Refuses the bundle destinations of the chosen sets (all when `names` is empty) that may not
 * be written: a missing folder, a path inside the store's folder `store` (opened or not), a
 * FIFO, device, folder or link. Before any tag is listed or blob fetched, as a usage error
 * (exit 2), so a bad path changes nothing whatever the source is.
 */
export async function checkBundleDestinations(sets: Record<string, MirrorSet>, names: string[], store?: string): Promise<void> {
  for (const name of names.length > 0 ? names : Object.keys(sets)) {
    const destination = sets[name]?.destination; // an unknown set is refused by the plan
    if (typeof destination === 'object' && 'bundle' in destination) await checkOutputFile(destination.bundle, { store });
  }
}

/** The bundles of one run: read (sources) and written (destinations), each opened once. */
export class Bundles {
  private readonly sources = new Map<string, Promise<BundleSource>>();
  private readonly destinations = new Map<string, Promise<BundleDestination>>();

  /** `store`: the run's store, whose folder no destination may be in. */
  constructor(private readonly store?: Store) {}

  source(file: string): Promise<BundleSource> {
    let source = this.sources.get(file);
    if (!source) this.sources.set(file, (source = BundleSource.open(file)));
    return source;
  }

  destination(file: string): Promise<BundleDestination> {
    let destination = this.destinations.get(file);
    if (!destination) this.destinations.set(file, (destination = BundleDestination.open(file, { store: this.store })));
    return destination;
  }

  /**
   * Writes each destination bundle that this run changed. An image with a blob the store
   * holds damaged is left out of the bundle and fails, named; a bundle that cannot be written
   * at all fails its images. `moved[i]`: what item i's copy transferred into its bundle (to the
   * staging store, or noted to be read from the local store). Only what the tar holds counts as
   * copied: what it does not (an image left out, a write that failed) is taken off the items'
   * counts, and returned to be taken off the run's. Returns the files written too.
   */
  async finish(items: PlanItem[], results: ItemResult[], moved: Descriptor[][], signal?: AbortSignal): Promise<{ written: string[]; uncounted: { copied: number; bytes: number } }> {
    const written: string[] = [];
    const uncounted = { copied: 0, bytes: 0 };
    for (const [file, pending] of this.destinations) {
      const mine = items.flatMap((item, i) => (item.destination.kind === 'bundle' && item.destination.file === file ? [{ key: item.destination.key, result: results[i]!, moved: moved[i] ?? [] }] : []));
      const ok = mine.filter(({ result }) => result.status !== 'failed');
      let bundle: BundleDestination | undefined;
      let done = false;
      if (ok.length > 0) {
        try {
          bundle = await pending;
          const outcome = await bundle.write(signal, undefined, ok.map(({ key, result }) => ({ key, digest: result.digest ?? '' })));
          if (outcome.written) written.push(file);
          for (const { key, result } of ok) {
            const why = outcome.failed.get(key);
            const kept = bundle.keeps(key) ? `, which keeps what it held as ${key}` : '';
            if (why) fail(result, `left out of the bundle ${file}${kept}: ${why.message}`, why.hint);
          }
          done = true;
        } catch (err) {
          if (signal?.aborted) throw err;
          for (const { result } of ok) fail(result, `writing the bundle ${file} failed: ${messageOf(err)}`, isGadgetError(err) ? err.hint : undefined);
        }
      }
      // A tar not written now holds none of what this run copied (an image that failed early
      // may have staged some of its blobs: the next run finds them there).
      const holds = (digest: string): boolean => done && bundle!.holds(digest);
      for (const { result, moved: nodes } of mine) {
        const kept = nodes.filter((d) => holds(d.digest));
        if (kept.length === nodes.length) continue;
        const bytes = (ds: Descriptor[]): number => ds.reduce((n, d) => n + d.size, 0);
        uncounted.copied += nodes.length - kept.length;
        uncounted.bytes += bytes(nodes) - bytes(kept);
        result.copied = kept.length;
        result.bytes = bytes(kept);
      }
      if (done && mine.every(({ result }) => result.status !== 'failed')) await bundle!.discardStaging();
    }
    return { written, uncounted };
  }

  close(): void {
    for (const pending of this.destinations.values()) pending.then((d) => d.close(), () => undefined);
    this.destinations.clear();
    this.sources.clear();
  }
}

function fail(result: ItemResult, error: string, hint: string | undefined): void {
  result.status = 'failed';
  result.error = error;
  if (hint) result.hint = hint;
}
