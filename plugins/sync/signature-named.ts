// Tags named like signatures (`sha256-<hex>[.sig|.att|.sbom]`) are never listed as images: a
// signature travels with the image it signs. But the name is only a name. A command that
// walks a repository's tags reads each such tag whose subject it did not take as an image
// (one small GET): a gadget image hidden under such a name is verified by `verify --remote`,
// and fails a sync, named, instead of being left behind with exit 0. An orphan signature (its
// image is gone) or a signature's signature is not an image, and is left as it is.
import { isGadgetError, messageOf } from '../../lib/errors.js';
import { GADGET_ARTIFACT_TYPE, GADGET_BTFGEN, GADGET_CONFIG, GADGET_EBPF, GADGET_WASM } from '../../lib/oci/mediatypes.js';
import { signatureTagSubject, type Reference } from '../../lib/oci/reference.js';
import type { Index, Manifest } from '../../lib/oci/types.js';
import type { RegistryPool } from '../../lib/registry/index.js';
import type { RegistryMirror } from './config.js';
import { describeDestination, describeSource, type PlanItem } from './plan.js';
import { resolveThroughMirrors } from './resolve.js';
import type { ItemResult } from './results.js';

/** What a tag named like a signature holds. */
export type SignatureNamed = { kind: 'signature' } | { kind: 'image' } | { kind: 'unreadable'; error: string };

/**
 * What each of `refs` holds, read as it was listed (through the registry mirrors when given).
 * Credentials refused or a registry out of reach (exit code 2) are thrown, as for any image.
 */
export async function readSignatureNamed(refs: Reference[], pool: RegistryPool, mirrors: Record<string, RegistryMirror> | undefined, signal?: AbortSignal): Promise<SignatureNamed[]> {
  return Promise.all(refs.map(async (ref): Promise<SignatureNamed> => {
    try {
      const { repository, descriptor } = await resolveThroughMirrors(ref, pool, mirrors, signal);
      return holdsGadgetImage(await repository.manifestBytes(descriptor, signal)) ? { kind: 'image' } : { kind: 'signature' };
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (isGadgetError(err) && err.exitCode === 2) throw err;
      return { kind: 'unreadable', error: messageOf(err) };
    }
  }));
}

/**
 * The failed results of a run's signature-named items (plan.ts): each whose subject is not an
 * image the run took from the same repository (`taken`: the run's items and the digests they
 * resolved to) is read; one that holds a gadget image, or cannot be read, fails, named.
 */
export async function signatureNamedFailures(named: PlanItem[], taken: Array<{ item: PlanItem; digest?: string }>, pool: RegistryPool, signal?: AbortSignal): Promise<ItemResult[]> {
  const repositoryOf = (ref: Reference): string => `${ref.registry}/${ref.repository}`;
  const images = new Set(taken.flatMap(({ item, digest }) => (item.source.kind === 'registry' && digest ? [`${repositoryOf(item.source.ref)}@${digest}`] : [])));
  const unknown = named.filter((i) => i.source.kind === 'registry' && !images.has(`${repositoryOf(i.source.ref)}@${signatureTagSubject(i.source.ref.tag ?? '')}`));
  const refs = unknown.map((i) => (i.source as { ref: Reference }).ref);
  const held = await readSignatureNamed(refs, pool, undefined, signal);
  return unknown.flatMap((item, n): ItemResult[] => {
    const what = held[n]!;
    if (what.kind === 'signature') return [];
    const failed = { set: item.set, source: describeSource(item.source), destination: describeDestination(item.destination), status: 'failed' as const, copied: 0, bytes: 0 };
    return what.kind === 'image'
      ? [{ ...failed, error: 'it holds a gadget image under a name cosign gives signatures; a sync copies a signature only with the image it signs, so this image was not copied', hint: 'give the image a tag of its own in the source registry, then sync again' }]
      : [{ ...failed, error: `it could not be read to tell whether it holds a signature or an image: ${what.error}`, hint: 'run the sync again once the registry answers' }];
  });
}

/** A gadget image rather than a signature, attestation or referrer index: gadget content, or an index of platforms. */
function holdsGadgetImage(bytes: Buffer): boolean {
  let doc: Partial<Manifest & Index>;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Partial<Manifest & Index>;
  } catch {
    return true; // not JSON: whoever reads it as an image says why it fails
  }
  if (Array.isArray(doc.manifests)) return doc.manifests.some((m) => typeof m?.artifactType !== 'string');
  const layers = Array.isArray(doc.layers) ? doc.layers : [];
  return doc.artifactType === GADGET_ARTIFACT_TYPE || doc.config?.mediaType === GADGET_CONFIG || layers.some((l) => GADGET_LAYERS.has(l?.mediaType));
}

const GADGET_LAYERS = new Set<string | undefined>([GADGET_EBPF, GADGET_WASM, GADGET_BTFGEN]);
