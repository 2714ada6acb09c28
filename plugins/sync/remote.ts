// `gadget verify --remote REF`: an image and its signatures pulled into a store of its own in
// the temporary folder (never the user's store), verified there, and thrown away.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GadgetError } from '../../lib/errors.js';
import { openStore, type Store } from '../../store/store.js';
import type { RegistryPool } from '../../lib/registry/index.js';
import { createPool, type RegistrySettings } from './config.js';
import { planPull } from './plan.js';
import { runPlan } from './run.js';

export interface RemoteFetchOptions extends RegistrySettings {
  signal?: AbortSignal;
  /** Shared by the fetches of one command (connections, tokens); default: one of its own. */
  pool?: RegistryPool;
}

/** A fetch that failed, with the image's digest when it was resolved. */
export class RemoteFetchError extends GadgetError {
  constructor(message: string, readonly digest: string | undefined, hint?: string) {
    super(message, { hint });
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

/** Pulls `ref` (with its signatures, through the configured mirrors) into a temporary store. */
export async function fetchToTemporaryStore(ref: string, opts: RemoteFetchOptions = {}): Promise<TemporaryImage> {
  const item = planPull(ref);
  const dir = await mkdtemp(join(tmpdir(), 'gadget-remote-'));
  let store: Store | undefined;
  const cleanup = async (): Promise<void> => {
    store?.close();
    store = undefined;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    store = await openStore(join(dir, 'store'));
    const summary = await runPlan([item], { store, pool: opts.pool ?? createPool(opts), mirrors: opts.registries?.mirrors, concurrency: opts.concurrency, signal: opts.signal, label: 'fetch' });
    const result = summary.items[0]!;
    if (result.status === 'failed') throw new RemoteFetchError(`cannot fetch ${ref}: ${result.error}`, result.digest, result.hint);
    const key = item.destination.kind === 'store' ? item.destination.key : ref;
    return { store, ref: key, digest: result.digest!, via: result.via, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
