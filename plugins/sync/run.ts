// Runs plan items: each is copyGraph between its two ends (the one copy; nothing else moves
// content), a few images at a time, sharing one session so that a blob used by several images
// moves once per destination. A failed item is tried once more and then reported; the run goes
// on with the others. The summary counts images copied, skipped and failed, blobs and bytes
// (into a bundle: only what its tar holds, so not an image left out of it).
import { GadgetError, isGadgetError, messageOf } from '../../lib/errors.js';
import { copyGraph, CopySession } from '../../lib/oci/copy.js';
import type { Target } from '../../lib/oci/target.js';
import type { Descriptor } from '../../lib/oci/types.js';
import { ConnectionError, RegistryError, type LocationRecords, type RegistryPool } from '../../lib/registry/index.js';
import type { Logger, Progress } from '../../lib/progress.js';
import { IncompleteGraphError, TAG_ATTEMPTS, type Store } from '../../store/store.js';
import { BatchedStore } from './batched.js';
import { Bundles } from './bundle.js';
import type { RegistryMirror } from './config.js';
import { describeDestination, describeSource, type PlanItem } from './plan.js';
import { selectPlatforms } from './platforms.js';
import { resolveThroughMirrors } from './resolve.js';
import { signatureNamedFailures } from './signature-named.js';
import type { ItemResult, SyncSummary } from './results.js';

export interface RunOptions {
  /** The store, for items whose source or destination is the store. */
  store?: Store;
  pool: RegistryPool;
  /** Registry mirrors for sources that read through them (pull). */
  mirrors?: Record<string, RegistryMirror>;
  /** Concurrent transfers, and images in flight (default 8). */
  concurrency?: number;
  signal?: AbortSignal;
  progress?: Progress;
  /** The progress bar's label (default "sync"). */
  label?: string;
  log?: Logger;
  /** Tries per image (default 2): a corrupted download or a dropped connection is tried again. */
  attempts?: number;
  onItem?: (result: ItemResult) => void;
  /** Called with the error of an item that failed (its result keeps only the text). */
  onFailure?: (index: number, err: unknown) => void;
  /** Blob bytes as they stream (the progress bar's byte count and rate). */
  onBytes?: (n: number) => void;
}

/**
 * Whether trying the same image again could help: the registry was failing or the connection
 * kept breaking. Not a timeout (the registry does not answer: trying again only doubles the
 * wait), not a usage or access error, and not wrong bytes (read twice already).
 */
function worthRetrying(err: unknown): boolean {
  if (isGadgetError(err) && err.transient === 'once') return false;
  if (err instanceof RegistryError) return err.status >= 500 || err.status === 408 || err.status === 429 || err.transient === true;
  if (err instanceof ConnectionError) return err.flaky;
  return !isGadgetError(err) || err.exitCode === 1;
}

interface Ends {
  source: Target;
  root: Descriptor;
  via?: string;
  destination: Target;
  tags: string[];
}

interface SourceEnd {
  source: Target;
  root: Descriptor;
  via?: string;
  /** host/repository of a registry source (blobs may be mounted from it). */
  sourceRepository?: string;
}

/** The source of an item, opened and resolved (reads only). */
async function openSource(item: PlanItem, opts: RunOptions, bundles: Bundles): Promise<SourceEnd> {
  const { pool, signal } = opts;
  let source: Target;
  let root: Descriptor;
  let via: string | undefined;
  let sourceRepository: string | undefined;
  const from = item.source;
  if (from.kind === 'nothing') throw new GadgetError(`${from.source} yields no image to copy`); // refused by the plan: never opened
  if (from.kind === 'store') {
    if (!opts.store) throw new GadgetError(`${from.key}: no store is open to read it from`, { exitCode: 2 });
    source = opts.store;
    root = from.descriptor ?? opts.store.resolveRef(from.key);
  } else if (from.kind === 'bundle') {
    const bundle = await bundles.source(from.file);
    source = bundle;
    root = from.descriptor ?? (await bundle.resolve(from.key));
  } else if (from.mirrors) {
    const resolved = await resolveThroughMirrors(from.ref, pool, opts.mirrors, signal);
    source = resolved.repository;
    root = resolved.descriptor;
    if (resolved.via.toString() !== from.ref.toString()) via = resolved.via.toString();
    sourceRepository = `${resolved.via.registry}/${resolved.via.repository}`;
  } else {
    const repository = pool.repository(from.ref, 'source');
    source = repository;
    root = await repository.resolve(from.ref.digest ?? from.ref.tag ?? 'latest', signal);
    sourceRepository = `${from.ref.registry}/${from.ref.repository}`;
  }
  return { source, root, via, sourceRepository };
}

async function openEnds(item: PlanItem, opts: RunOptions, bundles: Bundles, batched: (store: Store) => BatchedStore): Promise<Ends> {
  const { source, root, via, sourceRepository } = await openSource(item, opts, bundles);
  const to = item.destination;
  let destination: Target;
  let tags: string[];
  if (to.kind === 'set') throw new GadgetError(`${describeSource(item.source)} has no image to copy to ${to.destination}`); // refused sources only
  if (to.kind === 'registry') {
    // Same registry: blobs are mounted from the source repository, not uploaded.
    const [host, ...path] = sourceRepository?.split('/') ?? [];
    const mount = host === to.ref.registry && path.join('/') !== to.ref.repository ? path.join('/') : undefined;
    destination = opts.pool.repository(to.ref, 'destination', mount);
    tags = [...new Set([...(to.ref.tag === undefined ? [] : [to.ref.tag]), ...(item.tags ?? [])])];
  } else if (to.kind === 'store') {
    if (!opts.store) throw new GadgetError(`${to.key}: no store is open to write it to`, { exitCode: 2 });
    destination = batched(opts.store);
    tags = [to.key];
  } else {
    const bundle = await bundles.destination(to.file);
    if (source === opts.store) bundle.readsFrom(opts.store);
    destination = bundle;
    tags = [to.key];
  }
  return { source, root, via, destination, tags };
}

/** `moved` gets every node this copy transferred (a bundle counts only those its tar holds). */
async function transfer(item: PlanItem, opts: RunOptions, session: CopySession, bundles: Bundles, batched: (store: Store) => BatchedStore, result: ItemResult, moved: Descriptor[]): Promise<void> {
  const ends = await openEnds(item, opts, bundles, batched);
  if (ends.via) result.via = ends.via;
  if (item.tags?.length) result.tags = ends.tags;
  result.digest = ends.root.digest;
  const what = describeSource(item.source);
  const chosen = await selectPlatforms(ends.source, ends.root, item.platforms, item.allowPlatformSubset ?? false, what, opts.signal);
  if (chosen.subset) {
    opts.log?.warn(`${what}: copying a subset of its platforms as ${chosen.root.digest}, without the original's signatures`);
    result.digest = chosen.root.digest;
  }
  const stats = await copyGraph(chosen.source, ends.destination, chosen.root, ends.tags, {
    session,
    referrers: (item.signatures ?? true) && !chosen.subset,
    signal: opts.signal,
    onBytes: opts.onBytes,
    onNode: (event) => event.action === 'copied' && moved.push(event.descriptor),
    onTag: () => (result.tagged = (result.tagged ?? 0) + 1),
  });
  result.status = stats.copied > 0 ? 'copied' : 'skipped';
  result.copied = stats.copied;
  result.bytes = stats.bytes;
}

const LOCATIONS = 'registry-blob-locations';
const LOCATIONS_KEPT_MS = 90 * 24 * 3600 * 1000;

/**
 * Where blobs were seen on registries, kept in the store's cache between runs: a later push of
 * the same blob to another repository mounts it; a manifest never seen there is pushed without
 * asking. Losing it costs requests only.
 */
function storeLocations(store: Store): LocationRecords {
  const key = (registry: string, digest: string): string => `${registry} ${digest}`;
  const recall = (registry: string, digest: string): string[] => store.cacheGet<string[]>(LOCATIONS, key(registry, digest)) ?? [];
  return {
    recall,
    record(registry, learnt) {
      const entries = [...learnt].map(([digest, repos]) => {
        const merged = [...new Set([...repos, ...recall(registry, digest)])].slice(0, 4);
        return { key: key(registry, digest), value: merged };
      });
      store.cachePut(LOCATIONS, entries);
      // Locations not seen again for a while are forgotten, so the records do not grow
      // forever: a blob that is still there is then uploaded instead of mounted, once.
      store.cacheForget(LOCATIONS, new Date(Date.now() - LOCATIONS_KEPT_MS));
    },
  };
}

/** Runs the items (bundle destinations are written at the end) and sums them up. */
export async function runPlan(planned: PlanItem[], opts: RunOptions): Promise<SyncSummary> {
  const started = process.hrtime.bigint();
  const items = planned.filter((i) => !i.signatureNamed);
  const signatureNamed = planned.filter((i) => i.signatureNamed);
  if (opts.store) opts.pool.keepLocations(storeLocations(opts.store));
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 8));
  const session = new CopySession(concurrency);
  const bundles = new Bundles(opts.store);
  const batches = new Map<Store, BatchedStore>();
  const batched = (store: Store): BatchedStore => {
    let b = batches.get(store);
    if (!b) batches.set(store, (b = new BatchedStore(store)));
    return b;
  };
  const results: ItemResult[] = new Array(items.length);
  const moved: Descriptor[][] = items.map(() => []);
  const bar = items.length > 0 ? opts.progress?.start(items.length, opts.label ?? 'sync') : undefined;
  const withBytes: RunOptions = bar?.bytes ? { ...opts, onBytes: (n) => bar.bytes!(n) } : opts;
  /**
   * Tags what a store's batch holds. Images whose content a concurrent gc removed after they
   * were copied are copied again (the store's graph check finds the gaps) and tagged, up to
   * TAG_ATTEMPTS times; then they fail, named, and the others stay tagged.
   */
  const tagAll = async (b: BatchedStore): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await b.flush();
      } catch (err) {
        if (!(err instanceof IncompleteGraphError)) throw err;
        const emptied = err.incomplete.map((i) => i.ref);
        const giveUp = attempt >= TAG_ATTEMPTS || opts.signal?.aborted;
        for (const [i, item] of items.entries()) {
          const to = item.destination;
          if (to.kind !== 'store' || !emptied.includes(to.key) || !results[i]) continue;
          try {
            if (giveUp) throw new GadgetError(`its content was removed from ${b.name} (by a concurrent gc) after it was copied, ${attempt} times; it was not tagged`);
            // A session remembers what it copied: the copy again needs one that looks again.
            const fresh = new CopySession(concurrency);
            await transfer(item, withBytes, fresh, bundles, batched, results[i]!, moved[i]!);
            session.stats.copied += fresh.stats.copied;
            session.stats.bytes += fresh.stats.bytes;
          } catch (failure) {
            results[i] = ordered({ ...results[i]!, status: 'failed', error: messageOf(failure) });
            b.forget([to.key]);
          }
        }
        if (giveUp) b.forget(emptied);
      }
    }
  };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && !opts.signal?.aborted) {
      const i = next++;
      const item = items[i]!;
      const result: ItemResult = { set: item.set, source: describeSource(item.source), destination: describeDestination(item.destination), status: 'failed', copied: 0, bytes: 0 };
      if (item.refused) {
        result.error = item.refused.error;
        result.hint = item.refused.hint;
      }
      for (let attempt = 1; !item.refused; attempt++) {
        try {
          await transfer(item, withBytes, session, bundles, batched, result, moved[i]!);
          break;
        } catch (err) {
          if (opts.signal?.aborted) throw err;
          if (attempt < (opts.attempts ?? 2) && worthRetrying(err)) {
            opts.log?.debug(`${result.source}: ${messageOf(err)}; trying again`);
            continue;
          }
          result.status = 'failed';
          result.error = messageOf(err);
          if (isGadgetError(err) && err.hint) result.hint = err.hint;
          opts.onFailure?.(i, err);
          break;
        }
      }
      results[i] = ordered(result);
      opts.onItem?.(results[i]!);
      bar?.tick(1, result.source);
    }
  };
  try {
    try {
      await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
    } finally {
      // What was copied completely is tagged, even when the run was interrupted.
      for (const b of batches.values()) await tagAll(b);
      try {
        opts.pool.saveLocations();
      } catch (err) {
        opts.log?.debug(`the store could not record where blobs were seen: ${messageOf(err)}`);
      }
    }
    opts.signal?.throwIfAborted();
    const { written, uncounted } = await bundles.finish(items, results, moved, opts.signal);
    session.stats.copied -= uncounted.copied;
    session.stats.bytes -= uncounted.bytes;
    const hidden = await signatureNamedFailures(signatureNamed, items.map((item, i) => ({ item, digest: results[i]?.digest })), opts.pool, opts.signal);
    for (const r of hidden) opts.onItem?.(r);
    return summarize([...results, ...hidden], session, written, started);
  } finally {
    bar?.done();
    bundles.close();
  }
}

/**
 * What the run would do, without writing anything: every item with the plan's refusals, and
 * those the run would meet at its source: a tag that is not there, a platform subset that is
 * not allowed (each source's root is resolved, and its index read for --platform).
 * Refused items are 'failed' with their reason; the others 'skipped' (nothing copied).
 */
export async function previewPlan(planned: PlanItem[], opts: RunOptions): Promise<SyncSummary> {
  const started = process.hrtime.bigint();
  const items = planned.filter((i) => !i.signatureNamed);
  const roots: Array<string | undefined> = [];
  const results: ItemResult[] = [];
  const bundles = new Bundles(); // bundle sources are read in place; nothing is written
  try {
    for (const item of items) {
      const result: ItemResult = { set: item.set, source: describeSource(item.source), destination: describeDestination(item.destination), status: 'skipped', copied: 0, bytes: 0 };
      // Every tag the run would give, as the run reports them (`push --tag`).
      if (item.tags?.length && item.destination.kind === 'registry') result.tags = [...new Set([...(item.destination.ref.tag === undefined ? [] : [item.destination.ref.tag]), ...item.tags])];
      let refusal = item.refused;
      if (!refusal) {
        // The source is read as the run reads it: a tag that is not there fails here too; an
        // unreachable registry or refused credentials stop the dry run as they stop the run.
        try {
          const { source, root } = await openSource(item, opts, bundles);
          roots[results.length] = root.digest;
          if (item.platforms?.length) await selectPlatforms(source, root, item.platforms, item.allowPlatformSubset ?? false, result.source, opts.signal);
        } catch (err) {
          if (opts.signal?.aborted || (isGadgetError(err) && err.exitCode === 2)) throw err;
          refusal = { error: messageOf(err), hint: isGadgetError(err) ? err.hint : undefined };
        }
      }
      if (refusal) Object.assign(result, { status: 'failed', error: refusal.error, hint: refusal.hint });
      results.push(ordered(result));
    }
  } finally {
    bundles.close();
  }
  const hidden = await signatureNamedFailures(planned.filter((i) => i.signatureNamed), items.map((item, i) => ({ item, digest: roots[i] })), opts.pool, opts.signal);
  return summarize([...results, ...hidden], new CopySession(1), [], started);
}

/** The result with its fields in one order (JSON output). */
function ordered(r: ItemResult): ItemResult {
  const out: ItemResult = { set: r.set, source: r.source, destination: r.destination, tags: r.tags, tagged: r.tagged, via: r.via, status: r.status, digest: r.digest, copied: r.copied, bytes: r.bytes, error: r.error, hint: r.hint };
  for (const k of Object.keys(out) as Array<keyof ItemResult>) if (out[k] === undefined) delete out[k];
  return out;
}

function summarize(results: ItemResult[], session: CopySession, bundles: string[], started: bigint): SyncSummary {
  const count = (status: ItemResult['status']): number => results.filter((r) => r.status === status).length;
  return {
    images: { copied: count('copied'), skipped: count('skipped'), failed: count('failed') },
    blobs: { copied: session.stats.copied, skipped: session.stats.skipped },
    bytes: session.stats.bytes,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    items: results,
    bundles,
  };
}
