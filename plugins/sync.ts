// The sync plugin and library: push, pull, copy and mirror sets. Each is a plan (plan.ts) run
// by runPlan (run.ts), which is copyGraph between the two ends of every image: the store, a
// registry, or a bundle tar. Registry access follows the config's `registries` (plain-HTTP
// hosts, authfile, mirrors) and the command's flags.
import { GadgetError } from '../lib/errors.js';
import type { Artifact, Plugin, PluginContext } from '../lib/runner/types.js';
import type { Store } from '../store/store.js';
import { createPool, readSyncConfig, type RegistrySettings, type SyncConfig } from './sync/config.js';
import { describeDestination, describeSource, destinationFor, planCopy, planPull, planPush, planSets, type PlanItem } from './sync/plan.js';
import { previewPlan, runPlan, type RunOptions } from './sync/run.js';
import { checkBundleDestinations } from './sync/bundle.js';
import type { SyncSummary } from './sync/results.js';
import { parseRef } from '../lib/oci/reference.js';
import type { RegistryPool } from '../lib/registry/index.js';
import { formatSize } from '../lib/format.js';

export type { MirrorSet, RegistriesConfig, RegistryMirror, SyncConfig, SyncDestination, SyncSource, TagFilter } from './sync/config.js';
export { readSyncConfig, createPool, checkSeconds, type RegistrySettings } from './sync/config.js';
export { renameRepository, type RenameRule } from './sync/rename.js';
export { matchedNothing } from '../store/patterns.js';
export { checkCollisions, filterTags, planCopy, planPull, planPush, planSets, planMirrorSet, describeSource, describeDestination, type PlanItem } from './sync/plan.js';
export { runPlan } from './sync/run.js';
export type { ItemResult, SyncSummary } from './sync/results.js';
export { mirrorRoute, resolveThroughMirrors } from './sync/resolve.js';
export { fetchToTemporaryStore, RemoteFetchError, type TemporaryImage } from './sync/remote.js';
export { parseRange, parseVersion, satisfies } from './sync/semver.js';

export interface SyncOptions extends RegistrySettings {
  /** The store, for images read from it or written to it. */
  store?: Store;
  /** The store's folder when `store` is not opened: no bundle may be written inside it. */
  storeDir?: string;
  signal?: AbortSignal;
  progress?: RunOptions['progress'];
  log?: RunOptions['log'];
  /** Plan only: list what would be copied, copy nothing. */
  dryRun?: boolean;
  onItem?: RunOptions['onItem'];
}

/**
 * Runs plan items with the registries of `opts`; with dryRun, only says what the run would do
 * and refuse (previewPlan): nothing is written.
 */
export async function executePlan(items: PlanItem[], opts: SyncOptions & { label?: string; pool?: RegistryPool }): Promise<SyncSummary> {
  return (opts.dryRun ? previewPlan : runPlan)(items, {
    store: opts.store,
    pool: opts.pool ?? createPool(opts),
    mirrors: opts.registries?.mirrors,
    concurrency: opts.concurrency,
    signal: opts.signal,
    progress: opts.progress,
    log: opts.log,
    label: opts.label,
    onItem: opts.onItem,
  });
}

/** Pushes a stored image (with its signatures) to its own reference or to `dest`. */
export function pushImage(store: Store, ref: string, dest: string | undefined, opts: SyncOptions = {}): Promise<SyncSummary> {
  return executePlan([planPush(ref, dest)], { ...opts, store, label: 'push' });
}

/** Pulls an image (with its signatures) into the store, through the configured mirrors. */
export function pullImage(store: Store, ref: string, opts: SyncOptions = {}): Promise<SyncSummary> {
  return executePlan([planPull(ref)], { ...opts, store, label: 'pull' });
}

/** Copies an image (with its signatures) from one registry to another, streamed. */
export function copyImage(src: string, dst: string, opts: SyncOptions = {}): Promise<SyncSummary> {
  return executePlan([planCopy(src, dst)], { ...opts, store: undefined, label: 'copy' });
}

/** Runs the named mirror sets (all when `names` is empty). */
export async function syncSets(config: SyncConfig, names: string[], opts: SyncOptions = {}): Promise<SyncSummary> {
  // One pool for planning and copying: the tags listed while planning spare referrer lookups.
  const pool = createPool({ ...opts, registries: config.registries });
  // A bundle that may not be written refuses the run before a tag is listed (dry runs too).
  await checkBundleDestinations(config.mirrors, names, opts.store?.root ?? opts.storeDir);
  const items = await planSets(config.mirrors, names, { store: opts.store, pool, signal: opts.signal });
  return executePlan(items, { ...opts, registries: config.registries, label: 'sync', pool });
}

/** One line per failure, then a GadgetError naming them all (for plugin steps). */
export function failureError(summary: SyncSummary, what: string): GadgetError | undefined {
  const failed = summary.items.filter((i) => i.status === 'failed');
  if (failed.length === 0) return undefined;
  const lines = failed.map((f) => `  ${f.source} -> ${f.destination}: ${f.error}`);
  // The failures' own hints (`run "gadget login HOST"`) say more than a generic retry.
  const hints = [...new Set(failed.flatMap((f) => (f.hint ? [f.hint] : [])))];
  return new GadgetError(`${what}: ${failed.length} of ${summary.items.length} images failed:\n${lines.join('\n')}`, {
    hint: hints.length ? hints.join('; ') : 'run it again to retry what failed; what was copied stays',
  });
}

/** "3 images copied, 5 already there, 1 failed; 42 blobs (12 MB) moved in 1.2 s". */
export function formatSyncSummary(summary: SyncSummary, verb = 'copied'): string {
  const { images, blobs, bytes, seconds } = summary;
  const failed = images.failed ? `, ${images.failed} failed` : '';
  // An image already there may still have been given new tags (push --tag).
  const retagged = summary.items.reduce((n, i) => n + (i.status === 'skipped' ? i.tagged ?? 0 : 0), 0);
  const tagsSet = retagged ? ` (${retagged} tag${retagged === 1 ? '' : 's'} set)` : '';
  return `${images.copied} image${images.copied === 1 ? '' : 's'} ${verb}, ${images.skipped} already there${tagsSet}${failed}; ${blobs.copied} blob${blobs.copied === 1 ? '' : 's'} (${formatSize(bytes)}) moved in ${seconds.toFixed(1)} s`;
}

// --- plugin steps for gadget.config.ts ----------------------------------------------------

export interface StepOptions {
  /** Concurrent transfers (default 8). */
  concurrency?: number;
  /** Extra plain-HTTP registries. */
  insecure?: string[];
}

function settings(ctx: PluginContext, opts: StepOptions): SyncOptions & { config: SyncConfig } {
  const config = readSyncConfig(ctx.config, ctx.cwd);
  return { config, registries: config.registries, insecure: opts.insecure, concurrency: opts.concurrency, store: ctx.store, signal: ctx.signal, progress: ctx.progress, log: ctx.log };
}

function report(ctx: PluginContext, summary: SyncSummary, what: string): void {
  for (const item of summary.items) ctx.emit({ type: what, ...item });
  ctx.log.info(`${what}: ${formatSyncSummary(summary)}`);
  const err = failureError(summary, what);
  if (err) throw err;
}

export interface PushStepOptions extends StepOptions {
  /** Push to this registry (`host[:port][/prefix]`), keeping each image's repository path; default: its own reference. */
  to?: string;
  /** Push these stored references instead of the previous step's artifacts. */
  refs?: string[];
}

/** Pushes the previous step's images (or `refs`) with their signatures; returns them unchanged. */
export function push(options: PushStepOptions = {}): Plugin {
  return {
    name: 'push',
    async run(ctx, input) {
      const refs = options.refs ?? input.map((a) => a.ref);
      const items = refs.map((ref) => {
        const item = planPush(ref);
        if (options.to) item.destination = destinationFor(parseRef(ref), { registry: options.to });
        return item;
      });
      const summary = await executePlan(items, { ...settings(ctx, options), label: 'push' });
      report(ctx, summary, 'push');
      return input;
    },
  };
}

/** Pulls images (with their signatures, through the configured mirrors) into the store. */
export function pull(options: StepOptions & { refs: string[] }): Plugin {
  return {
    name: 'pull',
    async run(ctx) {
      const items = options.refs.map((ref) => planPull(ref));
      const summary = await executePlan(items, { ...settings(ctx, options), label: 'pull' });
      report(ctx, summary, 'pull');
      return items.flatMap((item) => (item.destination.kind === 'store' ? [{ ref: item.destination.key, descriptor: ctx.store.resolveRef(item.destination.key) }] : []));
    },
  };
}

/** Copies images between registries (`from` -> `to`), signatures included. */
export function copy(options: StepOptions & { from: string; to: string }): Plugin {
  return {
    name: 'copy',
    async run(ctx, input) {
      const summary = await executePlan([planCopy(options.from, options.to)], { ...settings(ctx, options), store: undefined, label: 'copy' });
      report(ctx, summary, 'copy');
      return input;
    },
  };
}

/** Runs mirror sets of the config (`sets`, default all); returns the images stored, if any. */
export function sync(options: StepOptions & { sets?: string[] } = {}): Plugin {
  return {
    name: 'sync',
    async run(ctx): Promise<Artifact[]> {
      const s = settings(ctx, options);
      const summary = await syncSets(s.config, options.sets ?? [], s);
      report(ctx, summary, 'sync');
      return summary.items.flatMap((item) => {
        if (!item.destination.startsWith('store ') || !item.digest) return [];
        const ref = item.destination.slice('store '.length);
        return [{ ref, descriptor: ctx.store.resolveRef(ref) }];
      });
    },
  };
}
