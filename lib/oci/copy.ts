// The one graph copy. push, pull, copy, mirror, import and export are all this function with
// different ends: it walks a graph from `source` to `destination`, children before parents,
// skipping whatever the destination already has (a present manifest implies its children),
// with a bound on concurrent blob transfers. The destination's push verifies every digest
// while streaming; manifests are verified here before they are parsed.
import { Readable } from 'node:stream';
import { GadgetError, messageOf } from '../errors.js';
import { sha256 } from './digest.js';
import { INDEX_TYPES, isManifestType } from './mediatypes.js';
import { MAX_MANIFEST_BYTES, type Referrer, type Target } from './target.js';
import type { Descriptor, Index, Manifest } from './types.js';

export interface CopyEvent {
  descriptor: Descriptor;
  /** 'skipped': the destination had it; 'copied': it was transferred now. */
  action: 'copied' | 'skipped';
}

export interface CopyOptions {
  /** Concurrent blob transfers (default 8). */
  concurrency?: number;
  signal?: AbortSignal;
  /** Also copy signatures and other referrers of the root, with their tags (default false). */
  referrers?: boolean;
  /** Called once per node when it has been copied or skipped. */
  onNode?: (event: CopyEvent) => void;
  /** Shared between calls so a blob used by several graphs is moved once. */
  session?: CopySession;
}

export interface CopyStats {
  copied: number;
  skipped: number;
  bytes: number;
}

/** State shared by the copies of one command: in-flight transfers and the concurrency limit. */
export class CopySession {
  readonly inflight = new Map<string, Promise<void>>();
  readonly stats: CopyStats = { copied: 0, skipped: 0, bytes: 0 };
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly concurrency = 8) {}

  async withSlot<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await work();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/** Reads a whole stream, failing when it passes `limit` bytes. */
export async function readAll(stream: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      stream.destroy();
      throw new GadgetError(`${what} is larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Fetches a manifest or index and checks it against its descriptor before parsing it. */
export async function fetchManifest(source: Target, descriptor: Descriptor, signal?: AbortSignal): Promise<{ bytes: Buffer; doc: Manifest & Index }> {
  const what = `${source.name}: ${descriptor.digest}`;
  const bytes = await readAll(await source.fetch(descriptor, signal), MAX_MANIFEST_BYTES, what);
  if (bytes.length !== descriptor.size || sha256(bytes) !== descriptor.digest) {
    throw new GadgetError(`${what}: the manifest's content does not match its digest or size`);
  }
  try {
    return { bytes, doc: JSON.parse(bytes.toString('utf8')) as Manifest & Index };
  } catch {
    throw new GadgetError(`${what}: the manifest is not valid JSON`);
  }
}

/** The direct children of a manifest or index, in document order. */
export function childrenOf(descriptor: Descriptor, doc: Manifest & Index): Descriptor[] {
  const mediaType = doc.mediaType ?? descriptor.mediaType;
  if (INDEX_TYPES.has(mediaType)) return doc.manifests ?? [];
  return [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])];
}

async function copyNode(source: Target, destination: Target, descriptor: Descriptor, opts: CopyOptions, session: CopySession): Promise<void> {
  const key = descriptor.digest;
  let pending = session.inflight.get(key);
  if (!pending) {
    pending = (async () => {
      opts.signal?.throwIfAborted();
      if (await destination.exists(descriptor, opts.signal)) {
        session.stats.skipped++;
        opts.onNode?.({ descriptor, action: 'skipped' });
        return;
      }
      if (isManifestType(descriptor.mediaType)) {
        const { bytes, doc } = await fetchManifest(source, descriptor, opts.signal);
        await Promise.all(childrenOf(descriptor, doc).map((child) => copyNode(source, destination, child, opts, session)));
        await session.withSlot(() => destination.push(descriptor, Readable.from([bytes]), opts.signal));
      } else {
        await session.withSlot(async () => destination.push(descriptor, await source.fetch(descriptor, opts.signal), opts.signal));
      }
      session.stats.copied++;
      session.stats.bytes += descriptor.size;
      opts.onNode?.({ descriptor, action: 'copied' });
    })();
    session.inflight.set(key, pending);
    // A failed transfer may be retried by a later call in the same session.
    pending.catch(() => session.inflight.delete(key));
  }
  return pending;
}

/**
 * Copies the graph under `root` and tags it with `tags` in the destination. With
 * `referrers`, the signatures of the root come along (and the signatures' own referrers).
 */
export async function copyGraph(
  source: Target,
  destination: Target,
  root: Descriptor,
  tags: string[] = [],
  opts: CopyOptions = {},
): Promise<CopyStats> {
  const session = opts.session ?? new CopySession(opts.concurrency);
  try {
    await copyNode(source, destination, root, opts, session);
    for (const tag of tags) await destination.tag(root, tag, opts.signal);
    if (opts.referrers) {
      const referrers: Referrer[] = await source.referrers(root, opts.signal);
      for (const referrer of referrers) {
        await copyGraph(source, destination, referrer.descriptor, referrer.tag ? [referrer.tag] : [], { ...opts, session });
      }
    }
  } catch (err) {
    if (err instanceof GadgetError || opts.signal?.aborted) throw err;
    throw new GadgetError(`copying ${root.digest} from ${source.name} to ${destination.name} failed: ${messageOf(err)}`, { cause: err });
  }
  return session.stats;
}
