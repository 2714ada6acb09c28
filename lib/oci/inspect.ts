// The graph of one image as `gadget inspect` shows it (index, per-platform manifests with config
// and layers, annotations, and what refers to it), read through any Target: the store, or a
// remote repository without storing anything.
import { fetchManifest } from './copy.js';
import { INDEX_TYPES } from './mediatypes.js';
import { referrerTree, type FoundBy } from './referrer-tree.js';
import type { Target } from './target.js';
import type { Annotations, Descriptor } from './types.js';

export interface InspectedManifest {
  descriptor: Descriptor;
  platform?: string;
  artifactType?: string;
  annotations: Annotations;
  config?: Descriptor;
  layers: Descriptor[];
  missing?: boolean;
}

export interface Inspection {
  ref: string;
  descriptor: Descriptor;
  annotations: Annotations;
  manifests: InspectedManifest[];
  /** What refers to the image directly (referrerTree's first level). */
  referrers: InspectedReferrer[];
}

export interface InspectedReferrer {
  descriptor: Descriptor;
  artifactType?: string;
  /** The cosign tag (`sha256-<hex>.sig`) or fallback tag (`sha256-<hex>`) it was found under. */
  tag?: string;
  found: FoundBy[];
}

async function inspectManifest(target: Target, descriptor: Descriptor, signal?: AbortSignal): Promise<InspectedManifest> {
  const platform = descriptor.platform ? `${descriptor.platform.os}/${descriptor.platform.architecture}` : undefined;
  if (!(await target.exists(descriptor, signal))) return { descriptor, platform, annotations: {}, layers: [], missing: true };
  const { doc } = await fetchManifest(target, descriptor, signal);
  return { descriptor, platform, artifactType: doc.artifactType, annotations: doc.annotations ?? {}, config: doc.config, layers: doc.layers ?? [] };
}

/** The image `descriptor` (found as `ref`) of `target`, with its referrers. */
export async function inspectDescriptor(target: Target, ref: string, descriptor: Descriptor, signal?: AbortSignal): Promise<Inspection> {
  const { doc } = await fetchManifest(target, descriptor, signal);
  const isIndex = INDEX_TYPES.has(doc.mediaType ?? descriptor.mediaType);
  const manifests = isIndex
    ? await Promise.all((doc.manifests ?? []).map((m) => inspectManifest(target, m, signal)))
    : [await inspectManifest(target, descriptor, signal)];
  // Through the tree, so that the store and a registry without the referrers API (where only
  // the fallback tag's index lists them) show the same referrers.
  const referrers = (await referrerTree(target, descriptor, { signal, depth: 1 })).map((n) => {
    const r: InspectedReferrer = { descriptor: { mediaType: n.mediaType, digest: n.digest, size: n.size }, artifactType: n.artifactType, tag: n.tag, found: n.found };
    if (r.artifactType === undefined) delete r.artifactType;
    if (r.tag === undefined) delete r.tag;
    return r;
  });
  return { ref, descriptor, annotations: doc.annotations ?? {}, manifests, referrers };
}
