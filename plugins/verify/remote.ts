// `gadget verify --remote`: images in registries, verified without keeping them. Each input is
// an image (a tag or digest), a repository (every tag) or a registry prefix `host/prefix/`
// (every repository under it, from the catalog, and every tag of each). Images stream through
// a few temporary stores at a time (fetched with their signatures, verified, deleted), so
// memory and disk stay bounded however many images there are. An image that cannot be fetched
// intact (a blob whose bytes do not match its digest, a manifest that is gone) is a failed
// image in the report, not the end of the run.
import { GadgetError, messageOf } from '../../lib/errors.js';
import type { RegistryPool } from '../../lib/registry/index.js';
import { fetchToTemporaryStore, RemoteFetchError } from '../sync/remote.js';
import { filterTags, parseSource } from '../sync/plan.js';
import type { RegistrySettings } from '../sync/config.js';
import { makeReport, type VerifyReport } from './report.js';
import type { VerifyOptions } from '../verify.js';

export interface RemoteVerifyOptions extends VerifyOptions, RegistrySettings {
  pool: RegistryPool;
  /** Images fetched and verified at once (default 4): each holds one temporary store. */
  batch?: number;
  /** Called with the number of images once they are listed, then after each image. */
  onPlanned?: (total: number) => void;
  onReport?: (report: VerifyReport) => void;
}

/** The images the inputs name: an image as it is, a repository's tags, a prefix's repositories' tags. */
export async function remoteImages(inputs: string[], pool: RegistryPool, signal?: AbortSignal): Promise<string[]> {
  const refs: string[] = [];
  for (const input of inputs) {
    const source = parseSource(input);
    if (source.kind === 'repository') {
      if (source.pinned) {
        refs.push(source.ref.toString());
        continue;
      }
      const tags = filterTags(await pool.repository(source.ref, 'source').listTags(signal));
      refs.push(...tags.map((t) => source.ref.withTag(t).toString()));
    } else if (source.kind === 'prefix') {
      const { parseRef } = await import('../../lib/oci/reference.js');
      for (const name of await pool.catalog(source.registry, source.prefix, signal)) {
        const repository = parseRef(`${source.registry}/${name}`);
        const tags = filterTags(await pool.repository(repository, 'source').listTags(signal));
        refs.push(...tags.map((t) => repository.withTag(t).toString()));
      }
    }
  }
  return [...new Set(refs)];
}

/** A failed image for a fetch that did not bring the image intact. */
function fetchFailure(ref: string, err: RemoteFetchError, options: VerifyOptions): VerifyReport {
  const message = err.message;
  const mismatch = /digest|does not match|altered/i.test(message);
  const blob = /sha256:[a-f0-9]{64}/.exec(message)?.[0] ?? err.digest ?? '';
  return makeReport(ref, err.digest ?? '', [{ rule: mismatch ? 'GADGET-BLOB-DIGEST' : 'GADGET-BLOB-MISSING', digest: blob, path: '/', message }], options.profile ?? 'spec', {
    requireSignature: options.requireSignature,
  });
}

/** Verifies every image the inputs name; one report each, in listing order. */
export async function verifyRemote(inputs: string[], options: RemoteVerifyOptions): Promise<VerifyReport[]> {
  const { verifyArtifacts, resolveArtifacts } = await import('../verify.js');
  const refs = await remoteImages(inputs, options.pool, options.signal);
  options.onPlanned?.(refs.length);
  const reports: VerifyReport[] = new Array(refs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < refs.length) {
      options.signal?.throwIfAborted();
      const i = next++;
      const ref = refs[i]!;
      let report: VerifyReport;
      try {
        const fetched = await fetchToTemporaryStore(ref, { ...options, pool: options.pool });
        try {
          [report] = (await verifyArtifacts(fetched.store, resolveArtifacts(fetched.store, [fetched.ref]), options)) as [VerifyReport];
          report.ref = ref;
        } finally {
          await fetched.cleanup();
        }
      } catch (err) {
        // Credentials, network, usage: every other image would fail the same way.
        if (!(err instanceof RemoteFetchError) || options.signal?.aborted) throw err instanceof GadgetError ? err : new GadgetError(`verifying ${ref}: ${messageOf(err)}`, { cause: err });
        report = fetchFailure(ref, err, options);
      }
      reports[i] = report;
      options.onReport?.(report);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, options.batch ?? 4), refs.length) }, worker));
  return reports;
}
