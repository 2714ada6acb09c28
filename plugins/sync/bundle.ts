// Bundles (OCI layout tars) as the ends of a sync, each opened once per run: as a source read
// in place (store/bundle-source.ts), as a destination written at the end of the run
// (store/bundle-destination.ts). Where a bundle may be written is output-file.ts's rule,
// checked for the whole sync before it plans anything.
import { isGadgetError, messageOf } from '../../lib/errors.js';
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
   * at all fails its images. Returns the files written.
   */
  async finish(items: PlanItem[], results: ItemResult[], signal?: AbortSignal): Promise<string[]> {
    const written: string[] = [];
    for (const [file, pending] of this.destinations) {
      const mine = items.flatMap((item, i) => (item.destination.kind === 'bundle' && item.destination.file === file ? [{ key: item.destination.key, result: results[i]! }] : []));
      const ok = mine.filter(({ result }) => result.status !== 'failed');
      if (ok.length === 0) continue;
      let bundle: BundleDestination;
      try {
        bundle = await pending;
        const outcome = await bundle.write(signal, undefined, ok.map(({ key, result }) => ({ key, digest: result.digest ?? '' })));
        if (outcome.written) written.push(file);
        for (const { key, result } of ok) {
          const why = outcome.failed.get(key);
          const kept = bundle.keeps(key) ? `, which keeps what it held as ${key}` : '';
          if (why) fail(result, `left out of the bundle ${file}${kept}: ${why.message}`, why.hint);
        }
      } catch (err) {
        if (signal?.aborted) throw err;
        for (const { result } of ok) fail(result, `writing the bundle ${file} failed: ${messageOf(err)}`, isGadgetError(err) ? err.hint : undefined);
        continue;
      }
      if (mine.every(({ result }) => result.status !== 'failed')) await bundle.discardStaging();
    }
    return written;
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
