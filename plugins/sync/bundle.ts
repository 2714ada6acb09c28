// Bundles (OCI layout tars) as the ends of a sync, each opened once per run: as a source read
// in place (store/bundle-source.ts), as a destination written at the end of the run
// (store/bundle-destination.ts).
import { messageOf } from '../../lib/errors.js';
import { BundleDestination } from '../../store/bundle-destination.js';
import { BundleSource } from '../../store/bundle-source.js';
import type { PlanItem } from './plan.js';
import type { ItemResult } from './results.js';

/** The bundles of one run: read (sources) and written (destinations), each opened once. */
export class Bundles {
  private readonly sources = new Map<string, Promise<BundleSource>>();
  private readonly destinations = new Map<string, Promise<BundleDestination>>();

  source(file: string): Promise<BundleSource> {
    let source = this.sources.get(file);
    if (!source) this.sources.set(file, (source = BundleSource.open(file)));
    return source;
  }

  destination(file: string): Promise<BundleDestination> {
    let destination = this.destinations.get(file);
    if (!destination) this.destinations.set(file, (destination = BundleDestination.open(file)));
    return destination;
  }

  /**
   * Writes each destination bundle that this run changed. A bundle that cannot be written
   * fails its images. Returns the files written.
   */
  async finish(items: PlanItem[], results: ItemResult[], signal?: AbortSignal): Promise<string[]> {
    const written: string[] = [];
    for (const [file, pending] of this.destinations) {
      const mine = items.flatMap((item, i) => (item.destination.kind === 'bundle' && item.destination.file === file ? [results[i]!] : []));
      const ok = mine.filter((r) => r.status !== 'failed');
      if (ok.length === 0) continue;
      let bundle: BundleDestination;
      try {
        bundle = await pending;
        if (await bundle.write(signal)) written.push(file);
      } catch (err) {
        if (signal?.aborted) throw err;
        for (const r of ok) {
          r.status = 'failed';
          r.error = `writing the bundle ${file} failed: ${messageOf(err)}`;
        }
        continue;
      }
      if (ok.length === mine.length) await bundle.discardStaging();
    }
    return written;
  }

  close(): void {
    for (const pending of this.destinations.values()) pending.then((d) => d.close(), () => undefined);
    this.destinations.clear();
    this.sources.clear();
  }
}
