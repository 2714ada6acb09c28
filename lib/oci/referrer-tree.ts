// What refers to an image, as a tree: signatures, attestations, SBOMs and their own referrers,
// each with the ways it was found. Read through any Target (store or remote repository), whose
// referrers() looks in three places: the OCI 1.1 referrers API (a registry's, or the store's
// own index of `subject` fields), the fallback tag `sha256-<hex>` (an index
// whose entries are the referrers), and cosign's `sha256-<hex>.sig` / `.att` / `.sbom` tags.
import { printable } from '../format.js';
import { fetchManifest } from './copy.js';
import { INDEX_TYPES } from './mediatypes.js';
import type { Target } from './target.js';
import type { Annotations, Descriptor } from './types.js';

/** How a referrer was found. */
export type FoundBy = 'referrers-api' | 'fallback-tag' | 'cosign-tag';

export interface ReferrerNode {
  digest: string;
  mediaType: string;
  size: number;
  /** The manifest's artifactType, else its config's media type. */
  artifactType?: string;
  annotations?: Annotations;
  /** The tag it was found under (a cosign tag, or the fallback tag whose index lists it). */
  tag?: string;
  found: FoundBy[];
  referrers: ReferrerNode[];
}

const FALLBACK_TAG = /^sha256-[a-f0-9]{64}$/;
/** Signatures of signatures are followed this deep (the image's referrers are depth 1). */
export const MAX_REFERRER_DEPTH = 3;

/** The referrers of `subject` (and theirs, to `depth` levels), in the order found. */
export async function referrerTree(target: Target, subject: Descriptor, opts: { signal?: AbortSignal; depth?: number } = {}): Promise<ReferrerNode[]> {
  const depth = opts.depth ?? MAX_REFERRER_DEPTH;
  const found = new Map<string, { descriptor: Descriptor; tag?: string; found: Set<FoundBy> }>();
  const add = (descriptor: Descriptor, how: FoundBy, tag?: string): void => {
    const known = found.get(descriptor.digest);
    if (known) {
      known.found.add(how);
      known.tag ??= tag;
      if (!known.descriptor.artifactType && descriptor.artifactType) known.descriptor = descriptor;
    } else {
      found.set(descriptor.digest, { descriptor, tag, found: new Set([how]) });
    }
  };
  for (const r of await target.referrers(subject, opts.signal)) {
    if (r.tag !== undefined && FALLBACK_TAG.test(r.tag) && INDEX_TYPES.has(r.descriptor.mediaType)) {
      // The fallback index stands for its entries; it is not a referrer itself.
      const { doc } = await fetchManifest(target, r.descriptor, opts.signal);
      for (const entry of doc.manifests ?? []) add(entry, 'fallback-tag', r.tag);
    } else if (r.tag !== undefined) {
      add(r.descriptor, 'cosign-tag', r.tag);
    } else {
      add(r.descriptor, 'referrers-api');
    }
  }
  return Promise.all(
    [...found.values()].map(async ({ descriptor, tag, found: how }) => {
      const node: ReferrerNode = { digest: descriptor.digest, mediaType: descriptor.mediaType, size: descriptor.size, artifactType: descriptor.artifactType, annotations: descriptor.annotations, tag, found: [...how], referrers: [] };
      if (await target.exists(descriptor, opts.signal)) {
        // The manifest is the truth: an index entry may carry another artifactType (cosign
        // writes the empty config's type into the fallback index for its bundles).
        const { doc } = await fetchManifest(target, descriptor, opts.signal);
        node.artifactType = doc.artifactType ?? descriptor.artifactType ?? doc.config?.mediaType;
        node.annotations = doc.annotations ?? descriptor.annotations;
        if (depth > 1) node.referrers = await referrerTree(target, descriptor, { ...opts, depth: depth - 1 });
      }
      for (const k of ['artifactType', 'annotations', 'tag'] as const) if (node[k] === undefined) delete node[k];
      if (node.annotations && Object.keys(node.annotations).length === 0) delete node.annotations;
      return node;
    }),
  );
}

/** The tree as lines for people, as `oras discover` draws it. */
export function formatReferrerTree(nodes: ReferrerNode[], indent = ''): string[] {
  const lines: string[] = [];
  nodes.forEach((n, i) => {
    const last = i === nodes.length - 1;
    const via = n.found.map((f) => (f === 'referrers-api' ? 'referrers API' : f === 'fallback-tag' ? `fallback tag ${n.tag}` : `tag ${n.tag}`)).join(', ');
    lines.push(`${indent}${last ? '└── ' : '├── '}${printable(n.artifactType ?? n.mediaType)}  ${n.digest}  (${via})`);
    lines.push(...formatReferrerTree(n.referrers, indent + (last ? '    ' : '│   ')));
  });
  return lines;
}
