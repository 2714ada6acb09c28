// The verify plugin and library: gadget images checked against the gadget artifact spec
// (plugins/verify/spec.ts), their content (content.ts), their digests (integrity.ts), their
// signatures (signatures.ts) and an allow-list (policy.ts). One image or ten thousand: blobs
// are hashed once per run and results shared between images (graph.ts), a few images at a
// time. Every finding has a stable rule id (rules.ts) and a severity set by the profile.
import { rememberResults } from './verify/last-result.js';
import path from 'node:path';
import { GadgetError, isGadgetError, usageError } from '../lib/errors.js';
import { printable } from '../lib/format.js';
import { isDigest } from '../lib/oci/digest.js';
import { isSignatureTag } from '../lib/oci/reference.js';
import type { Descriptor } from '../lib/oci/types.js';
import type { Artifact, Plugin, PluginContext } from '../lib/runner/types.js';
import { storeKey, type Store } from '../store/store.js';
import { GraphVerifier } from './verify/graph.js';
import { checkPolicy, parseAllowPatterns } from './verify/policy.js';
import { makeReport, type VerifyReport } from './verify/report.js';
import { isProfile, type Profile } from './verify/rules.js';
import { checkSignatures, loadSignatureVerifier, storeSignatureSource, type SignatureSettings } from './verify/signatures.js';

export type { Finding, VerifyReport, VerifySummary } from './verify/report.js';
export { formatReport, formatSummary, reportsJSON, ruleRows, summarize } from './verify/report.js';
export { RULES, type Profile, type RuleId, type RuleInfo } from './verify/rules.js';

export interface VerifyOptions extends SignatureSettings {
  /** 'spec' (default): the gadget artifact spec exactly; 'ig': what Inspektor Gadget builds and runs. */
  profile?: Profile;
  /** ig's --allowed-gadgets patterns: name@sha256:..., name:tag, prefix*. */
  allow?: string[];
  /** Images verified at once (default 4). */
  concurrency?: number;
  signal?: AbortSignal;
  /** Called after each image, in completion order. */
  onProgress?: (done: number, total: number, report: VerifyReport) => void;
}

const DEFAULT_CONCURRENCY = 4;

/** Every tagged image of the store (signature tags excluded), sorted by reference. */
export function storeArtifacts(store: Store): Artifact[] {
  store.refreshIfChanged();
  return store
    .allEntries()
    .filter((e) => e.ref !== null && !isSignatureTag(e.ref))
    // The columns are all verify needs; parsing each stored descriptor costs 10 000 parses.
    .map((e) => ({ ref: e.ref!, descriptor: { mediaType: e.media_type, digest: e.digest, size: e.size } }))
    .sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
}

/** The user's references as stored artifacts; an unknown one fails (GadgetError, exit 1). */
export function resolveArtifacts(store: Store, refs: string[]): Artifact[] {
  // A missing image is a failure found (exit 1), as for `gadget inspect`; a malformed
  // reference stays a usage error (2).
  return refs.map((input) => ({ ref: isDigest(input) ? input : storeKey(input), descriptor: store.resolveRef(input) }));
}

/**
 * Verifies the images `refs` name, in order; a reference that names no image is a failed
 * report of its own (GADGET-IMAGE-MISSING), so that every missing one is named and the others
 * are still verified. A malformed reference stays a usage error (thrown, exit 2).
 */
export async function verifyRefs(store: Store, refs: string[], options: VerifyOptions = {}): Promise<VerifyReport[]> {
  const found: Artifact[] = [];
  const missing = new Map<number, VerifyReport>();
  refs.forEach((input, i) => {
    const ref = isDigest(input) ? input : storeKey(input);
    try {
      found.push({ ref, descriptor: store.resolveRef(input) });
    } catch (err) {
      if (!isGadgetError(err) || err.exitCode === 2) throw err;
      const report = makeReport(ref, '', [{ rule: 'GADGET-IMAGE-MISSING', digest: '', path: '/', message: err.message }], options.profile ?? 'spec', { requireSignature: options.requireSignature });
      report.hint = err.hint ?? '`gadget list` shows what the store holds';
      missing.set(i, report);
    }
  });
  const verified = (await verifyArtifacts(store, found, options)).reverse();
  return refs.map((_, i) => missing.get(i) ?? verified.pop()!);
}

/**
 * The failure of a verification that would verify nothing (an empty or new store, a typo in
 * --store): never a pass, so that `gadget -q verify --all || alert` alerts (exit 1).
 */
export function nothingToVerify(store: Store): GadgetError {
  return new GadgetError(`no image to verify in ${store.name}: it holds no tagged image`, {
    hint: '`gadget list` shows what a store holds; to verify another one, check --store, $GADGET_STORE and the store of gadget.config.ts (`gadget -v` names the store in use)',
  });
}

/** Verifies stored images by reference, or the whole store with 'all'; one report per image. */
export async function verifyImages(store: Store, refs: string[] | 'all', options: VerifyOptions = {}): Promise<VerifyReport[]> {
  return refs === 'all' ? verifyArtifacts(store, storeArtifacts(store), options) : verifyRefs(store, refs, options);
}

/** Verifies the given artifacts (e.g. a previous step's output); one report each, in order. */
export async function verifyArtifacts(store: Store, artifacts: Artifact[], options: VerifyOptions = {}): Promise<VerifyReport[]> {
  const profile = options.profile ?? 'spec';
  if (!isProfile(profile)) throw usageError(`unknown verify profile ${JSON.stringify(profile)}`, 'use "spec" (the gadget artifact spec) or "ig" (what Inspektor Gadget accepts)');
  const patterns = parseAllowPatterns(options.allow ?? []);
  const signatures = await loadSignatureVerifier(options);
  const source = signatures ? storeSignatureSource(store) : undefined;
  const graph = new GraphVerifier(store, profile);

  const refsOf = (a: Artifact): string[] => {
    if (!isDigest(a.ref)) return [a.ref];
    return store.entriesOf(a.ref).flatMap((e) => (e.ref !== null && !isSignatureTag(e.ref) ? [e.ref] : []));
  };

  const verifyOne = async (a: Artifact): Promise<VerifyReport> => {
    const problems = await graph.verify(a.descriptor);
    let signature: VerifyReport['signature'];
    if (signatures && source) {
      const checked = await checkSignatures(signatures, source, a.descriptor.digest, isDigest(a.ref) ? undefined : a.ref);
      problems.push(...checked.problems);
      signature = checked.summary;
    }
    problems.push(...checkPolicy(patterns, refsOf(a), a.descriptor.digest));
    return makeReport(a.ref, a.descriptor.digest, problems, profile, { requireSignature: options.requireSignature, signature });
  };

  const reports: VerifyReport[] = new Array(artifacts.length);
  const width = Math.max(1, Math.min(Math.floor(options.concurrency ?? DEFAULT_CONCURRENCY), artifacts.length));
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < artifacts.length) {
      options.signal?.throwIfAborted();
      const i = next++;
      reports[i] = await verifyOne(artifacts[i]!);
      options.onProgress?.(++done, artifacts.length, reports[i]!);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  rememberResults(store, reports);
  return reports;
}

export interface VerifyPluginOptions extends Omit<VerifyOptions, 'signal' | 'onProgress'> {
  /** Verify every image of the store instead of the previous step's artifacts. */
  all?: boolean;
}

/**
 * The verify step for gadget.config.ts: verifies the artifacts it gets (or the whole store
 * with `all`), emits one record per image, and fails the task when any image fails. Key,
 * certificate and policy files are relative to the config's folder.
 */
export function verify(options: VerifyPluginOptions = {}): Plugin {
  return {
    name: 'verify',
    async run(ctx: PluginContext, input: Artifact[]): Promise<Artifact[]> {
      const artifacts = options.all ? storeArtifacts(ctx.store) : input;
      // Verifying nothing is not a pass: the task fails (exit 1), saying why.
      if (artifacts.length === 0 && options.all) throw nothingToVerify(ctx.store);
      if (artifacts.length === 0) {
        throw new GadgetError('the verify step got no image to verify: the steps before it produced none', {
          hint: 'put a step that produces images (build()) before verify(), or use verify({ all: true }) to verify every image of the store',
        });
      }
      const local = (files: string[] | undefined): string[] | undefined => files?.map((f) => (f.includes('-----BEGIN ') ? f : path.resolve(ctx.cwd, f)));
      const bar = ctx.progress.start(artifacts.length, 'verify');
      let reports: VerifyReport[];
      try {
        reports = await verifyArtifacts(ctx.store, artifacts, {
          ...options,
          keys: local(options.keys),
          notationCerts: local(options.notationCerts),
          notationPolicy: options.notationPolicy === undefined ? undefined : path.resolve(ctx.cwd, options.notationPolicy),
          keyless: options.keyless && { ...options.keyless, trustedRoot: path.resolve(ctx.cwd, options.keyless.trustedRoot) },
          signal: ctx.signal,
          onProgress: (_done, _total, report) => bar.tick(1, report.ref),
        });
      } finally {
        bar.done();
      }
      for (const r of reports) {
        ctx.emit({ type: 'verify', ...r });
        for (const f of r.findings) if (f.severity === 'warning') ctx.log.warn(`${r.ref}: ${f.rule} ${printable(f.path)}: ${printable(f.message)}`);
      }
      const failed = reports.filter((r) => !r.passed);
      if (failed.length > 0) {
        const lines = failed.slice(0, 10).flatMap((r) => {
          const first = r.findings.filter((f) => f.severity === 'error');
          return [`  ${r.ref}: ${first.length} error${first.length === 1 ? '' : 's'}`, ...first.slice(0, 3).map((f) => `    ${f.rule} ${printable(f.path)}: ${printable(f.message)}`)];
        });
        if (failed.length > 10) lines.push(`  ... and ${failed.length - 10} more`);
        throw new GadgetError(`${failed.length} of ${reports.length} image${reports.length === 1 ? '' : 's'} failed verification:\n${lines.join('\n')}`, {
          hint: 'run `gadget verify REF` to see every finding of an image',
        });
      }
      ctx.log.info(`verify: ${reports.length} image${reports.length === 1 ? '' : 's'} passed`);
      return artifacts;
    },
  };
}
