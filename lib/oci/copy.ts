// The one graph copy. push, pull, copy, mirror, import and export are all this function with
// different ends: it walks a graph from `source` to `destination`, children before parents,
// skipping whatever the destination already has, with a bound on concurrent transfers. On a
// registry a present manifest implies its children and a tag pointing at the root the whole
// graph; on the store every node is checked and what is missing or damaged is copied again.
// It asks as few questions as the destination allows: blobs go through pushBlob when the
// destination answers "already here" with the request that starts a transfer, manifests the
// destination cannot hold (mayHave) are pushed without an existence check, and the root is
// pushed once, under its first tag, where the destination can (pushTagged).
// The destination's push verifies every digest while streaming; manifests are verified here
// before they are parsed. A transfer that fails transiently (content damaged on the way) is
// tried again a bounded number of times.
import { Readable } from 'node:stream';
import { GadgetError, messageOf } from '../errors.js';
import { retryTransient } from '../retry.js';
import { DAMAGED_HINT, sha256 } from './digest.js';
import { checkKeys } from './json-keys.js';
import { checkManifestKind, MALFORMED_MANIFEST_HINT } from './manifest-kind.js';
import { INDEX_TYPES, isManifestType } from './mediatypes.js';
import { MAX_MANIFEST_BYTES, type Target } from './target.js';
import { isValidDescriptor, type Descriptor, type Index, type Manifest } from './types.js';

export interface CopyEvent {
  descriptor: Descriptor;
  /** 'skipped': the destination had it; 'copied': it was transferred now. */
  action: 'copied' | 'skipped';
  /** Bytes moved, when not the descriptor's size: 0 for a blob a registry mounted. */
  bytes?: number;
}

export interface CopyOptions {
  /** Concurrent blob transfers (default 8). */
  concurrency?: number;
  signal?: AbortSignal;
  /** Also copy signatures and other referrers of the root, with their tags (default false). */
  referrers?: boolean;
  /** Called once per node when it has been copied or skipped. */
  onNode?: (event: CopyEvent) => void;
  /** Called as blob bytes stream from the source (for progress). */
  onBytes?: (n: number) => void;
  /** Called for each of the root's tags that did not point at it and now does. */
  onTag?: (tag: string) => void;
  /** Shared between calls so a blob used by several graphs is moved once. */
  session?: CopySession;
}

export interface CopyStats {
  copied: number;
  skipped: number;
  bytes: number;
}

/** State shared by the copies of one command: in-flight transfers and the concurrency limit. */
/** What happened to a node; `tagged` names the tag it was pushed under, if any. */
interface NodeResult {
  action: CopyEvent['action'];
  tagged?: string;
}

export class CopySession {
  readonly inflight = new Map<string, Promise<NodeResult>>();
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

/** The stream, reporting the size of each chunk as it passes (unchanged without `onBytes`). */
export function counted(stream: Readable, onBytes: ((n: number) => void) | undefined): Readable {
  if (!onBytes) return stream;
  return Readable.from(
    (async function* () {
      for await (const chunk of stream) {
        onBytes((chunk as Buffer).length);
        yield chunk as Buffer;
      }
    })(),
    { objectMode: false },
  );
}

/** Fetches a manifest or index and checks it against its descriptor (digest, size, kind) before it is followed. */
export async function fetchManifest(source: Target, descriptor: Descriptor, signal?: AbortSignal): Promise<{ bytes: Buffer; doc: Manifest & Index }> {
  const what = `${source.name}: ${descriptor.digest}`;
  const bytes = await readAll(await source.fetch(descriptor, signal), MAX_MANIFEST_BYTES, what);
  if (bytes.length !== descriptor.size || sha256(bytes) !== descriptor.digest) {
    throw new GadgetError(`${what}: the manifest's content does not match its digest or size`, { transient: 'once', hint: DAMAGED_HINT });
  }
  let doc: Manifest & Index;
  const text = bytes.toString('utf8');
  try {
    doc = JSON.parse(text) as Manifest & Index;
  } catch {
    throw new GadgetError(`${what}: the manifest is not valid JSON`, { hint: MALFORMED_MANIFEST_HINT });
  }
  // Its children as we read them may not be the ones ig reads: nothing follows such a document.
  checkKeys(text, what);
  checkManifestKind(doc, descriptor, what);
  return { bytes, doc };
}

/** The direct children of a manifest or index, in document order. */
export function childrenOf(descriptor: Descriptor, doc: Manifest & Index): Descriptor[] {
  const mediaType = doc.mediaType ?? descriptor.mediaType;
  const children = INDEX_TYPES.has(mediaType) ? doc.manifests ?? [] : [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])];
  if (!Array.isArray(children) || !children.every(isValidDescriptor)) {
    throw new GadgetError(`${descriptor.digest}: the manifest lists a child that is not a valid descriptor (media type, sha256 digest, size)`, { hint: MALFORMED_MANIFEST_HINT });
  }
  return children;
}

function addStats(into: CopyStats, event: CopyEvent): void {
  if (event.action === 'skipped') into.skipped++;
  else {
    into.copied++;
    into.bytes += event.bytes ?? event.descriptor.size;
  }
}

/** Waits for every promise to settle, then throws the first failure: no work outlives a failed copy. */
async function settleAll(work: Array<Promise<unknown>>): Promise<void> {
  const failed = (await Promise.allSettled(work)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Runs one transfer in a session slot, again while it fails transiently (damaged on the way). */
function transfer<T>(session: CopySession, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  return retryTransient(() => session.withSlot(work), { signal });
}

/**
 * What `destination` holds of `descriptor`: 'whole' (it and its graph, as far as the
 * destination vouches: a registry's present manifest, keepsGraphsWhole), 'node' (a manifest
 * whose own bytes are there, intact, but whose children must be checked: the store, whose
 * blobs can go one by one), or 'absent'. With 'node', `children` are the manifest's children.
 */
export async function presentWhole(destination: Target, descriptor: Descriptor, signal?: AbortSignal): Promise<{ held: 'whole' | 'absent' } | { held: 'node'; children: Descriptor[] }> {
  const manifest = isManifestType(descriptor.mediaType);
  const exists = await destination.exists(descriptor, signal);
  if (exists && (destination.keepsGraphsWhole || !manifest)) return { held: 'whole' };
  if (!manifest || destination.keepsGraphsWhole) return { held: 'absent' };
  try {
    return { held: 'node', children: childrenOf(descriptor, (await fetchManifest(destination, descriptor, signal)).doc) };
  } catch (err) {
    if (signal?.aborted) throw err;
    return { held: 'absent' }; // missing or damaged here: copied again from the source
  }
}

/**
 * Copies one node (children first); a manifest is pushed under `tag` where the destination can
 * do that in one step. The node is counted in the session's stats and in `local` by the call
 * that transfers it; a call that waits for another's transfer counts nothing.
 */
function copyNode(source: Target, destination: Target, descriptor: Descriptor, opts: CopyOptions, session: CopySession, local: CopyStats, tag?: string): Promise<NodeResult> {
  // Per destination: one session may feed several destinations (mirror sets); per media type:
  // a descriptor that labels the same bytes as another kind is checked (and fails) by itself.
  const key = `${destination.name}\0${descriptor.digest}\0${descriptor.mediaType}`;
  let pending = session.inflight.get(key);
  if (!pending) {
    pending = (async (): Promise<NodeResult> => {
      opts.signal?.throwIfAborted();
      const done = (action: CopyEvent['action'] | 'mounted', tagged?: string): NodeResult => {
        const event: CopyEvent = action === 'mounted' ? { descriptor, action: 'copied', bytes: 0 } : { descriptor, action };
        addStats(session.stats, event);
        addStats(local, event);
        opts.onNode?.(event);
        return { action: event.action, tagged };
      };
      const { signal } = opts;
      const manifest = isManifestType(descriptor.mediaType);
      if (!manifest && destination.pushBlob) {
        const open = async (): Promise<Readable> => counted(await source.fetch(descriptor, signal), opts.onBytes);
        const sizeKnown = source.holdsTrueSizes === true;
        return done(await transfer(session, () => destination.pushBlob!(descriptor, open, signal, { sizeKnown }), signal));
      }
      const mayHave = destination.mayHave?.(descriptor) ?? true;
      const present = mayHave ? await presentWhole(destination, descriptor, signal) : { held: 'absent' as const };
      if (present.held === 'whole') return done('skipped');
      const copyChildren = (children: Descriptor[]): Promise<void> =>
        settleAll(children.map((child) => copyNode(source, destination, child, opts, session, local)));
      if (present.held === 'node') {
        // The manifest is here; its children may not be (the store heals what was deleted).
        await copyChildren(present.children);
        return done('skipped');
      }
      if (!manifest) {
        await transfer(session, async () => destination.push(descriptor, counted(await source.fetch(descriptor, signal), opts.onBytes), signal), signal);
        return done('copied');
      }
      // Not retried here: a registry reads a damaged manifest again itself; a file stays as it is.
      const { bytes, doc } = await fetchManifest(source, descriptor, signal);
      await copyChildren(childrenOf(descriptor, doc));
      if (tag !== undefined && destination.pushTagged) {
        await transfer(session, () => destination.pushTagged!(descriptor, Readable.from([bytes]), tag, signal), signal);
        return done('copied', tag);
      }
      await transfer(session, () => destination.push(descriptor, Readable.from([bytes]), signal), signal);
      return done('copied');
    })();
    session.inflight.set(key, pending);
    // A failed transfer may be retried by a later call in the same session.
    pending.catch(() => session.inflight.delete(key));
  }
  return pending;
}

/** Whether `tag` already points at `digest` in the destination (false when unknown). */
async function tagPointsAt(destination: Target, tag: string, digest: string, signal?: AbortSignal): Promise<boolean> {
  try {
    const current = destination.peek ? await destination.peek(tag, signal) : await destination.resolve(tag, signal);
    return current?.digest === digest;
  } catch (err) {
    if (signal?.aborted) throw err;
    return false; // absent, or unreadable: copying and tagging will say what is wrong
  }
}

/** Signatures of signatures are followed this deep (the root's referrers are depth 1). */
const MAX_REFERRER_DEPTH = 3;
const FALLBACK_TAG = /^sha256-[a-f0-9]{64}$/;

async function copyTree(
  source: Target,
  destination: Target,
  root: Descriptor,
  tags: string[],
  opts: CopyOptions,
  session: CopySession,
  local: CopyStats,
  depth: number,
  tagsLater: Array<() => Promise<void>> = [],
): Promise<void> {
  const copiedBefore = local.copied;
  // On a registry, tags that already point at the root mean the root and its graph are there:
  // nothing to move. The store checks the graph (copyNode) even then.
  const current = await Promise.all(tags.map((tag) => tagPointsAt(destination, tag, root.digest, opts.signal)));
  let tagRoot = async (): Promise<void> => undefined;
  if (tags.length > 0 && current.every(Boolean) && destination.keepsGraphsWhole) {
    const event: CopyEvent = { descriptor: root, action: 'skipped' };
    addStats(session.stats, event);
    addStats(local, event);
    opts.onNode?.(event);
  } else {
    const missing = tags.filter((_, i) => !current[i]);
    // The root goes up once, under its first tag; a fallback tag index is merged by tag().
    const { tagged } = await copyNode(source, destination, root, opts, session, local, missing.find((t) => !FALLBACK_TAG.test(t)));
    tagRoot = async (): Promise<void> => {
      for (const tag of missing) if (tag !== tagged) await destination.tag(root, tag, opts.signal);
      if (depth === 0) for (const tag of missing) opts.onTag?.(tag);
    };
    // A registry gets the tags at once (the signatures follow, by digest). The store gets every
    // tag of the tree last, the signatures' before the image's, once all of it is in: a copy
    // that fails on one signature leaves every tag where it was.
    if (destination.keepsGraphsWhole) {
      await tagRoot();
      tagRoot = async (): Promise<void> => undefined;
    }
  }
  // The root's referrers are always listed (signatures are often added later). Below it, a
  // referrer the destination already had is taken to have brought its own: saves requests.
  if (opts.referrers && depth < MAX_REFERRER_DEPTH && !(depth > 0 && local.copied === copiedBefore)) {
    for (const referrer of await source.referrers(root, opts.signal)) {
      // A fallback index stands for its entries, which are its children: nothing refers to it.
      const leaf = referrer.tag !== undefined && FALLBACK_TAG.test(referrer.tag);
      await copyTree(source, destination, referrer.descriptor, referrer.tag ? [referrer.tag] : [], opts, session, local, leaf ? MAX_REFERRER_DEPTH : depth + 1, tagsLater);
    }
  }
  tagsLater.push(tagRoot);
  if (depth === 0) for (const tagNow of tagsLater) await tagNow();
}

/**
 * Copies the graph under `root` and tags it with `tags` in the destination; when every tag
 * already points at the root, nothing else is asked of the destination. With `referrers`, the
 * signatures of the root come along with their tags (and the signatures' own referrers).
 * Returns what this call moved; `opts.session.stats` sums the calls of a session.
 */
export async function copyGraph(
  source: Target,
  destination: Target,
  root: Descriptor,
  tags: string[] = [],
  opts: CopyOptions = {},
): Promise<CopyStats> {
  const session = opts.session ?? new CopySession(opts.concurrency);
  const local: CopyStats = { copied: 0, skipped: 0, bytes: 0 };
  try {
    await copyTree(source, destination, root, tags, opts, session, local, 0);
  } catch (err) {
    if (err instanceof GadgetError || opts.signal?.aborted) throw err;
    throw new GadgetError(`copying ${root.digest} from ${source.name} to ${destination.name} failed: ${messageOf(err)}`, { cause: err });
  }
  return local;
}
