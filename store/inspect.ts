// The graph of one image, as `gadget inspect` shows it: index, per-platform manifests with
// config and layers, annotations, and the signatures that refer to it.
import { INDEX_TYPES } from '../lib/oci/mediatypes.js';
import type { Referrer } from '../lib/oci/target.js';
import type { Annotations, Descriptor, Index, Manifest } from '../lib/oci/types.js';
import type { Store } from './store.js';

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
  referrers: Array<Referrer & { artifactType?: string }>;
}

async function inspectManifest(store: Store, descriptor: Descriptor): Promise<InspectedManifest> {
  const platform = descriptor.platform ? `${descriptor.platform.os}/${descriptor.platform.architecture}` : undefined;
  if (!store.hasBlob(descriptor.digest)) return { descriptor, platform, annotations: {}, layers: [], missing: true };
  const doc = await store.readJSON<Manifest>(descriptor);
  return { descriptor, platform, artifactType: doc.artifactType, annotations: doc.annotations ?? {}, config: doc.config, layers: doc.layers ?? [] };
}

export async function inspectImage(store: Store, input: string): Promise<Inspection> {
  const descriptor = store.resolveRef(input);
  const doc = await store.readJSON<Index & Manifest>(descriptor);
  const isIndex = INDEX_TYPES.has(doc.mediaType ?? descriptor.mediaType);
  const manifests = isIndex
    ? await Promise.all((doc.manifests ?? []).map((m) => inspectManifest(store, m)))
    : [await inspectManifest(store, descriptor)];
  const referrers = (await store.referrers(descriptor)).map((r) => ({ ...r, artifactType: r.descriptor.artifactType ?? store.manifestRow(r.descriptor.digest)?.artifact_type ?? undefined }));
  return { ref: input, descriptor, annotations: doc.annotations ?? {}, manifests, referrers };
}
