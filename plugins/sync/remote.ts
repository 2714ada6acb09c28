// `gadget verify --remote REF`: an image and its signatures pulled into a store of its own in
// the temporary folder (never the user's store), verified there, and thrown away. Read through
// the configured registry mirrors exactly as `gadget pull` reads (resolve.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GadgetError, isGadgetError } from '../../lib/errors.js';
import { Reference } from '../../lib/oci/reference.js';
import { openStore, type Store } from '../../store/store.js';
import type { LocationRecords, RegistryPool } from '../../lib/registry/index.js';
import { createPool, type RegistrySettings } from './config.js';
import { planPull } from './plan.js';
import { resolveThroughMirrors } from './resolve.js';
import { runPlan } from './run.js';

export interface RemoteFetchOptions extends RegistrySettings {
  signal?: AbortSignal;
  /** Shared by the fetches of one command (connections, tokens); default: one of its own. */
  pool?: RegistryPool;
}

/** A fetch that failed, with the image's digest when it was resolved, and what failed it. */
export class RemoteFetchError extends GadgetError {
  constructor(message: string, readonly digest: string | undefined, hint?: string, cause?: unknown) {
    super(message, { hint, cause });
  }
}

export interface TemporaryImage {
  store: Store;
  /** The image's key in that store (the full reference). */
  ref: string;
  digest: string;
  /** Where it was read from when a registry mirror served it. */
  via?: string;
  /** Closes the store and removes its folder. */
  cleanup(): Promise<void>;
}

/** Blob locations kept nowhere (a temporary store's are removed with it): losing them costs requests only. */
const FORGETFUL: LocationRecords = { recall: () => [], record: () => undefined };

/**
 * Pulls `ref` (with its signatures, through the configured mirrors) into a temporary store.
 * The image is resolved first, as pull resolves it (resolveThroughMirrors: the mirrors in
 * order, the original only with fallback), and then copied from where it was found, by digest
 * (the manifest just read is not asked for again). An image that is not there, or does not
 * arrive intact, is a RemoteFetchError (exit 1); a registry that cannot be reached or refuses
 * the credentials (exit 2) and an interruption are thrown as they are: they are not about the
 * image. Nothing is left in the temporary folder whatever happens.
 */
export async function fetchToTemporaryStore(ref: string, opts: RemoteFetchOptions = {}): Promise<TemporaryImage> {
  const item = planPull(ref);
  if (item.source.kind !== 'registry' || item.destination.kind !== 'store') throw new Error(`planPull(${ref}) is not a pull`);
  const pool = opts.pool ?? createPool(opts);
  const wanted = item.source.ref;
  let resolved: Awaited<ReturnType<typeof resolveThroughMirrors>>;
  try {
    resolved = await resolveThroughMirrors(wanted, pool, opts.registries?.mirrors, opts.signal);
  } catch (err) {
    if (opts.signal?.aborted || !isGadgetError(err) || err.exitCode !== 1) throw err;
    throw new RemoteFetchError(`cannot fetch ${ref}: ${err.message}`, wanted.digest, err.hint, err);
  }
  const digest = resolved.descriptor.digest;
  const via = resolved.via.toString() !== wanted.toString() ? resolved.via.toString() : undefined;
  const pinned = { ...item, source: { kind: 'registry' as const, ref: new Reference(resolved.via.registry, resolved.via.repository, resolved.via.tag, digest) } };
  const dir = await mkdtemp(join(tmpdir(), 'gadget-remote-'));
  let store: Store | undefined;
  const cleanup = async (): Promise<void> => {
    // runPlan keeps the pool's blob locations in the store it writes (this temporary one): a
    // pool shared by fetches in flight must not read them from a store closed here.
    if (store) pool.keepLocations(FORGETFUL);
    store?.close();
    store = undefined;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    store = await openStore(join(dir, 'store'));
    let failure: unknown;
    const summary = await runPlan([pinned], { store, pool, concurrency: opts.concurrency, signal: opts.signal, label: 'fetch', onFailure: (_, err) => (failure = err) });
    const result = summary.items[0]!;
    if (result.status === 'failed') throw new RemoteFetchError(`cannot fetch ${ref}${via ? ` (via ${via})` : ''}: ${result.error}`, result.digest ?? digest, result.hint, failure);
    return { store, ref: item.destination.key, digest: result.digest ?? digest, via, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
