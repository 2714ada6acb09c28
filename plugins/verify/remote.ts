// `gadget verify --remote`: images in registries, verified without keeping them. Each input is
// an image (a tag or digest), a repository (every tag) or a registry prefix `host/prefix/`
// (every repository under it, from the catalog, and every tag of each). Images stream through
// a few temporary stores at a time (fetched with their signatures, verified, deleted), so
// memory and disk stay bounded however many images there are. An image that cannot be fetched
// intact (a blob whose bytes do not match its digest, a manifest that is gone) is a failed
// image in the report, not the end of the run; so is one that could not be read to the end
// (GADGET-REMOTE-UNREADABLE: a transfer that broke off on every try, a registry that kept
// failing on a blob), which is not known to be missing (GADGET-BLOB-MISSING: the registry
// answered 404) or damaged (GADGET-BLOB-DIGEST: wrong bytes). An input that yields no image at
// all fails the same way (GADGET-REMOTE-EMPTY, with a hint): verifying nothing is not a pass;
// so does a repository whose tags cannot be listed (GADGET-REMOTE-UNLISTED: it does not exist,
// or the registry fails on it), while credentials refused or a registry out of reach stop the
// run (also when met in the middle of a blob), as they stop a sync: every other image would
// fail the same way. Images are read through the
// configured registry mirrors (`registries.mirrors`) as `gadget pull` reads them, and the tags
// of a repository input as `gadget tags` lists them (the mirrors first); a prefix is the
// catalog of the registry it names. An interruption stops every fetch, removes every
// temporary store, and is thrown as the signal's reason (the CLI: exit 130).
import { GadgetError, isGadgetError, messageOf } from '../../lib/errors.js';
import { DAMAGED_HINT } from '../../lib/oci/digest.js';
import { MALFORMED_MANIFEST_HINT } from '../../lib/oci/manifest-kind.js';
import type { Reference } from '../../lib/oci/reference.js';
import { isNotFound, RegistryError, type RegistryPool } from '../../lib/registry/index.js';
import { fetchToTemporaryStore, RemoteFetchError } from '../sync/remote.js';
import { readSignatureNamed } from '../sync/signature-named.js';
import { listRegistrySource, parseSource } from '../sync/sources.js';
import type { RegistryMirror, RegistrySettings } from '../sync/config.js';
import { makeReport, type VerifyReport } from './report.js';
import type { VerifyOptions } from '../verify.js';

export interface RemoteVerifyOptions extends VerifyOptions, RegistrySettings {
  pool: RegistryPool;
  /** Images fetched and verified at once (default 4): each holds one temporary store. */
  batch?: number;
  /** Called with the number of images once they are listed, then after each image. */
  onPlanned?: (total: number) => void;
  onReport?: (report: VerifyReport) => void;
  /** Called when a registry mirror served an image: `via` is where it was read from. */
  onVia?: (ref: string, via: string) => void;
}

/** What one input names: an image to verify, or a failure of its own (rule and error). */
export type RemoteImage = { ref: string } | { input: string; rule: InputRule; error: GadgetError };

/** The rules of an input that does not come to images: it yields none, or a repository of it cannot be listed. */
type InputRule = 'GADGET-REMOTE-EMPTY' | 'GADGET-REMOTE-UNLISTED';

/**
 * The images the inputs name, in order: an image as it is, a repository's tags, a prefix's
 * repositories' tags, walked as sync's plan walks its sources (sync/sources.ts). An input that
 * yields no image (a prefix the catalog lists nothing under, a repository without tags) is a
 * failure of its own, never a quiet pass; so is a repository whose tags cannot be listed (one
 * that does not exist), and the other inputs are still verified. A repository that a registry
 * mirror covers is listed through the mirrors, as `gadget tags` lists it.
 */
export async function remoteImages(inputs: string[], pool: RegistryPool, signal?: AbortSignal, mirrors?: Record<string, RegistryMirror>, onSignatureTag?: (ref: Reference) => void): Promise<RemoteImage[]> {
  const out: RemoteImage[] = [];
  const seen = new Set<string>(); // inputs may overlap (a prefix and a repository under it): each once
  const add = (key: string, named: RemoteImage): void => {
    if (seen.has(key)) return;
    seen.add(key);
    out.push(named);
  };
  for (const input of inputs) {
    const source = parseSource(input);
    if (source.kind !== 'repository' && source.kind !== 'prefix') continue; // a string never names the store or a bundle
    // No tag filter here: hints name `gadget tags REPO --all`, signature tags included.
    for (const one of await listRegistrySource(source, { pool, signal, allTags: true, mirrors, onSignatureTag })) {
      if (one.kind === 'image') add(one.ref.toString(), { ref: one.ref.toString() });
      else if (one.kind === 'unlisted') add(`unlisted ${one.repository.name}`, { input: one.repository.name, rule: 'GADGET-REMOTE-UNLISTED', error: one.error });
      else out.push({ input, rule: 'GADGET-REMOTE-EMPTY', error: one.error });
    }
  }
  return out;
}

/** The failed report of an input that does not come to images: named, with its hint. */
function inputFailure(input: string, rule: InputRule, err: GadgetError, options: VerifyOptions): VerifyReport {
  const report = makeReport(input, '', [{ rule, digest: '', path: '/', message: err.message }], options.profile ?? 'spec', {
    requireSignature: options.requireSignature,
  });
  report.hint = err.hint ?? `\`gadget tags ${input} --all\` shows what the registry answers for it`;
  return report;
}

/** `err` and the errors it was caused by, outermost first. */
function causeChain(err: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = err; e !== undefined && e !== null && chain.length < 10; e = (e as { cause?: unknown }).cause) chain.push(e);
  return chain;
}

/** A manifest no reader can follow (not JSON, repeated keys, a child that is not a descriptor): made wrong where it was made. */
function malformed(err: unknown): boolean {
  return isGadgetError(err) && err.hint === MALFORMED_MANIFEST_HINT;
}

/** Wrong bytes where a blob or manifest was read: every content check's error carries DAMAGED_HINT. */
function damaged(err: unknown): boolean {
  return isGadgetError(err) && err.hint === DAMAGED_HINT;
}

const UNREADABLE_HINT = 'the registry (or the network to it) failed while the image was read, after the retries; the blob is not known to be missing or damaged: check the registry, then verify the image again';

/**
 * A failed image for a fetch that did not bring the image intact, classified by its cause:
 * the registry answered 404 (GADGET-BLOB-MISSING), the bytes did not match their digest or
 * size (GADGET-BLOB-DIGEST), or the registry could not be read to the end: it kept failing
 * (HTTP 5xx, 429, ... after the retries) or the transfer broke off on every try and resumption
 * (GADGET-REMOTE-UNREADABLE). A registry that could not be reached at all, or that refused the
 * credentials, is thrown: it stops the command (exit 2), as it does when it is met first.
 */
function fetchFailure(ref: string, err: RemoteFetchError, options: VerifyOptions): VerifyReport {
  const chain = causeChain(err.cause);
  const stop = chain.find((e) => isGadgetError(e) && e.exitCode === 2);
  if (stop) throw stop;
  const message = err.message;
  const rule: RemoteFetchRule = chain.some(isNotFound)
    ? 'GADGET-BLOB-MISSING'
    : chain.some((e) => e instanceof RegistryError)
      ? 'GADGET-REMOTE-UNREADABLE'
      : chain.some(damaged)
        ? 'GADGET-BLOB-DIGEST'
        : chain.some(malformed)
          ? 'GADGET-MANIFEST-INVALID'
          : chain.length > 0
            ? 'GADGET-REMOTE-UNREADABLE'
            : 'GADGET-BLOB-MISSING'; // nothing raised: a graph that cannot be completed
  const named = (text: string): string | undefined => /sha256:[a-f0-9]{64}/.exec(text)?.[0];
  const blob = chain.map((e) => named(messageOf(e))).find((d) => d !== undefined) ?? named(message) ?? err.digest ?? '';
  const report = makeReport(ref, err.digest ?? '', [{ rule, digest: blob, path: '/', message }], options.profile ?? 'spec', {
    requireSignature: options.requireSignature,
  });
  if (rule === 'GADGET-REMOTE-UNREADABLE') report.hint = UNREADABLE_HINT;
  if (rule === 'GADGET-MANIFEST-INVALID') report.hint = MALFORMED_MANIFEST_HINT;
  return report;
}

type RemoteFetchRule = 'GADGET-BLOB-MISSING' | 'GADGET-BLOB-DIGEST' | 'GADGET-MANIFEST-INVALID' | 'GADGET-REMOTE-UNREADABLE';

/**
 * Verifies every image the inputs name; one report each, in listing order. A few images at a
 * time (`batch`), each in a temporary store removed before the next is taken. When one image
 * stops the run (an interruption, a registry out of reach), the other workers take no new
 * image, and the run ends only once every fetch in flight has ended and removed its store.
 */
export async function verifyRemote(inputs: string[], options: RemoteVerifyOptions): Promise<VerifyReport[]> {
  const { signal } = options;
  let refs: RemoteImage[];
  const signatureTags: Reference[] = [];
  try {
    refs = await remoteImages(inputs, options.pool, signal, options.registries?.mirrors, (ref) => signatureTags.push(ref));
  } catch (err) {
    throw signal?.aborted ? signal.reason : err;
  }
  options.onPlanned?.(refs.length);
  const reports = await verifyEach(refs, options);
  // Every tag named like a signature is read (one small GET each): a gadget image hidden under
  // such a name, whatever digest the name gives, is verified too, never skipped as a signature.
  const hidden = await imagesAmong(signatureTags, options.pool, options.registries?.mirrors, signal);
  return hidden.length ? [...reports, ...(await verifyEach(hidden.map((ref) => ({ ref: ref.toString() })), options))] : reports;
}

/** The tags of `refs` that hold a gadget image (or cannot be read: verifying them says why); read as they were listed, through the mirrors. */
async function imagesAmong(refs: Reference[], pool: RegistryPool, mirrors: Record<string, RegistryMirror> | undefined, signal?: AbortSignal): Promise<Reference[]> {
  const held = await readSignatureNamed(refs, pool, mirrors, signal);
  return refs.filter((_, i) => held[i]!.kind !== 'signature');
}

/** Verifies each image a few at a time; one report each, in order. */
async function verifyEach(refs: RemoteImage[], options: RemoteVerifyOptions): Promise<VerifyReport[]> {
  const { verifyArtifacts, resolveArtifacts } = await import('../verify.js');
  const { signal } = options;
  const reports: VerifyReport[] = new Array(refs.length);
  let next = 0;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (next < refs.length && !stopped) {
      signal?.throwIfAborted();
      const i = next++;
      const named = refs[i]!;
      if ('error' in named) {
        reports[i] = inputFailure(named.input, named.rule, named.error, options);
        options.onReport?.(reports[i]!);
        continue;
      }
      const ref = named.ref;
      let report: VerifyReport;
      try {
        const fetched = await fetchToTemporaryStore(ref, { ...options, pool: options.pool });
        try {
          if (fetched.via) options.onVia?.(ref, fetched.via);
          [report] = (await verifyArtifacts(fetched.store, resolveArtifacts(fetched.store, [fetched.ref]), options)) as [VerifyReport];
          report.ref = ref;
        } finally {
          await fetched.cleanup();
        }
      } catch (err) {
        // Interrupted: the reason, as it is (not a failure of this image).
        if (signal?.aborted) throw signal.reason;
        // Credentials, network, usage: every other image would fail the same way.
        if (!(err instanceof RemoteFetchError)) throw err instanceof GadgetError ? err : new GadgetError(`verifying ${ref}: ${messageOf(err)}`, { cause: err });
        report = fetchFailure(ref, err, options);
      }
      reports[i] = report;
      options.onReport?.(report);
    }
  };
  const one = async (): Promise<void> => {
    try {
      await worker();
    } catch (err) {
      stopped = true;
      throw err;
    }
  };
  // Every worker ends (and cleans up) before the run does: Promise.all would return at the
  // first failure, with the other fetches still writing their temporary stores.
  const ended = await Promise.allSettled(Array.from({ length: Math.min(Math.max(1, options.batch ?? 4), refs.length) }, one));
  if (signal?.aborted) throw signal.reason;
  const failed = ended.find((e): e is PromiseRejectedResult => e.status === 'rejected');
  if (failed) throw failed.reason;
  return reports;
}
