// Bundle destinations: the images of a mirror set written as an OCI layout tar, the format
// `gadget import` (and ig, skopeo, umoci) read on the other side of an air gap. Images are
// first copied into a staging store beside the tar (`.NAME.tar.staging/`), then exported
// (exportImages: signatures included, the same images give the same bytes). The staging store
// stays when something failed, so that the next run only copies what is missing.
import { rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { messageOf } from '../../lib/errors.js';
import { openStore, type Store } from '../../store/store.js';
import { exportImages } from '../../store/transfer.js';
import type { PlanItem } from './plan.js';
import type { ItemResult } from './run.js';

export function stagingDir(file: string): string {
  return join(dirname(file), `.${basename(file)}.staging`);
}

export class BundleStaging {
  private readonly stores = new Map<string, Promise<Store>>();

  /** The staging store of a bundle file (opened once). */
  open(file: string): Promise<Store> {
    let store = this.stores.get(file);
    if (!store) {
      store = openStore(stagingDir(file));
      this.stores.set(file, store);
    }
    return store;
  }

  /**
   * Writes each bundle with the images that were copied into its staging store. A bundle
   * that cannot be written fails its images. Returns the files written.
   */
  async finish(items: PlanItem[], results: ItemResult[], signal?: AbortSignal): Promise<string[]> {
    const written: string[] = [];
    for (const [file, pending] of this.stores) {
      const mine = items.flatMap((item, i) => (item.destination.kind === 'bundle' && item.destination.file === file ? [{ item, result: results[i]! }] : []));
      const ok = mine.filter((m) => m.result.status !== 'failed');
      if (ok.length === 0) continue;
      const store = await pending;
      try {
        const keys = ok.map((m) => (m.item.destination.kind === 'bundle' ? m.item.destination.key : ''));
        await exportImages(store, keys, file, { signal });
        written.push(file);
      } catch (err) {
        for (const m of ok) {
          m.result.status = 'failed';
          m.result.error = `writing the bundle ${file} failed: ${messageOf(err)}`;
        }
        continue;
      }
      if (ok.length === mine.length) {
        store.close();
        this.stores.delete(file);
        rmSync(stagingDir(file), { recursive: true, force: true });
      }
    }
    return written;
  }

  close(): void {
    for (const pending of this.stores.values()) pending.then((s) => s.close(), () => undefined);
    this.stores.clear();
  }
}
