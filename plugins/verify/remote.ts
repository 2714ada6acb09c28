// `gadget verify --remote`: images in registries, verified without keeping them. Each input is
// an image (a tag or digest), a repository (every tag) or a registry prefix `host/prefix/`
// (every repository under it, from the catalog, and every tag of each). Images stream through
// a few temporary stores at a time (fetched with their signatures, verified, deleted), so
// memory and disk stay bounded however many images there are. An image that cannot be fetched
// intact (a blob whose bytes do not match its digest, a manifest that is gone) is a failed
// image in the report, not the end of the run. An input that yields no image at all fails the
// same way (GADGET-REMOTE-EMPTY, with a hint): verifying nothing is not a pass.
import { GadgetError, messageOf } from '../../lib/errors.js';
import type { RegistryPool } from '../../lib/registry/index.js';
import { fetchToTemporaryStore, RemoteFetchError } from '../sync/remote.js';
import { filterTags, parseSource } from '../sync/plan.js';
import type { RegistrySettings } from '../sync/config.js';
import { keptNoTag, noRepositoryUnder } from '../../store/patterns.js';
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

/** What one input names: an image to verify, or the failure of an input that yields none. */
export type RemoteImage = { ref: string } | { input: string; error: GadgetError };

/**
 * The images the inputs name, in order: an image as it is, a repository's tags, a prefix's
 * repositories' tags. An input that yields no image (a prefix the catalog lists nothing
 * under, a repository without tags) is a failure of its own, never a quiet pass.
 */
export async function remoteImages(inputs: string[], pool: RegistryPool, signal?: AbortSignal): Promise<RemoteImage[]> {
  const out: RemoteImage[] = [];
  const seen = new Set<string>();
  const add = (ref: string): void => {
    if (seen.has(ref)) return;
    seen.add(ref);
    out.push({ ref });
  };
  for (const input of inputs) {
    const source = parseSource(input);
    if (source.kind === 'repository') {
      if (source.pinned) {
        add(source.ref.toString());
        continue;
      }
      const tags = filterTags(await pool.repository(source.ref, 'source').listTags(signal));
      if (tags.length === 0) out.push({ input, error: keptNoTag(source.ref.name, [], undefined, `\`gadget tags ${source.ref.name} --all\``) });
      for (const t of tags) add(source.ref.withTag(t).toString());
    } else if (source.kind === 'prefix') {
      const { parseRef } = await import('../../lib/oci/reference.js');
      const text = `${source.registry}/${source.prefix}`;
      const names = await pool.catalog(source.registry, source.prefix, signal);
      if (names.length === 0) {
        out.push({ input, error: noRepositoryUnder(text) });
        continue;
      }
      let found = 0;
      for (const name of names) {
        const repository = parseRef(`${source.registry}/${name}`);
        const tags = filterTags(await pool.repository(repository, 'source').listTags(signal));
        found += tags.length;
        for (const t of tags) add(repository.withTag(t).toString());
      }
      if (found === 0) {
        const what = `the ${names.length} ${names.length === 1 ? 'repository' : 'repositories'} under ${text}`;
        out.push({ input, error: keptNoTag(what, [], undefined, `\`gadget tags ${source.registry}/${names[0]!} --all\` (one of them)`) });
      }
    }
  }
  return out;
}

/** The failed report of an input that yields no image: named, with its hint. */
function nothingFailure(input: string, err: GadgetError, options: VerifyOptions): VerifyReport {
  const report = makeReport(input, '', [{ rule: 'GADGET-REMOTE-EMPTY', digest: '', path: '/', message: err.message }], options.profile ?? 'spec', {
    requireSignature: options.requireSignature,
  });
  if (err.hint) report.hint = err.hint;
  return report;
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
      const named = refs[i]!;
      if ('error' in named) {
        reports[i] = nothingFailure(named.input, named.error, options);
        options.onReport?.(reports[i]!);
        continue;
      }
      const ref = named.ref;
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
