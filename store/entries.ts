// The shape of index.json entries, in one place: the store writes them, and a bundle
// (bundle-destination.ts) roots the OCI 1.1 referrers it reads from a store the same way.
import { ANN_REF_NAME } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';

/** What a tag keeps of a descriptor: its own fields, nothing a caller may have added. */
function taggedDescriptor(descriptor: Descriptor): Descriptor {
  const d: Descriptor = { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
  if (descriptor.annotations) d.annotations = { ...descriptor.annotations };
  if (descriptor.platform) d.platform = descriptor.platform;
  if (descriptor.artifactType) d.artifactType = descriptor.artifactType;
  return d;
}

/**
 * The untagged entry that keeps an OCI 1.1 referrer (a signature) rooted, as oras and ig keep
 * it: `artifactType` is the one the indexer recorded for it.
 */
export function referrerEntry(descriptor: Descriptor, artifactType: string | null | undefined): Descriptor {
  const entry: Descriptor = { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
  if (artifactType) entry.artifactType = artifactType;
  return entry;
}

/** An entry as index.json holds it: `ref` as its ref.name annotation, none when untagged. */
export function indexEntry(descriptor: Descriptor, ref: string | null): Descriptor {
  const d = { ...descriptor };
  const annotations = { ...(d.annotations ?? {}) };
  delete annotations[ANN_REF_NAME];
  if (ref !== null) annotations[ANN_REF_NAME] = ref;
  if (Object.keys(annotations).length) d.annotations = annotations;
  else delete d.annotations;
  return d;
}

/** Points `ref` at `descriptor` in an entry list: in place when the ref is there, else appended. */
export function setTag(entries: Array<{ ref: string | null; descriptor: Descriptor }>, descriptor: Descriptor, ref: string): void {
  const existing = entries.find((e) => e.ref === ref);
  if (existing) existing.descriptor = taggedDescriptor(descriptor);
  else entries.push({ ref, descriptor: taggedDescriptor(descriptor) });
}
