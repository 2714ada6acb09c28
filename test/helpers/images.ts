// Small gadget-like images written through the store's API, for tests that need content.
import type { Store } from '../../store/store.js';
import { encodeJSONBytes } from '../../lib/oci/json.js';
import { MT_INDEX, MT_MANIFEST, GADGET_ARTIFACT_TYPE, GADGET_CONFIG, GADGET_EBPF } from '../../lib/oci/mediatypes.js';
import type { Descriptor } from '../../lib/oci/types.js';

/** A small two-platform gadget-like image written through the store's API. */
export async function putImage(store: Store, seed: string): Promise<Descriptor> {
  const config = await store.putBytes(Buffer.from(`name: ${seed}\n`), GADGET_CONFIG);
  const manifests: Descriptor[] = [];
  for (const arch of ['amd64', 'arm64']) {
    const layer = await store.putBytes(Buffer.from(`ebpf ${seed} ${arch}`), GADGET_EBPF);
    const manifest = { schemaVersion: 2, artifactType: GADGET_ARTIFACT_TYPE, config, layers: [layer], annotations: { 'org.opencontainers.image.title': seed } };
    const d = await store.putBytes(encodeJSONBytes(manifest), MT_MANIFEST);
    manifests.push({ ...d, platform: { architecture: arch, os: 'linux' } });
  }
  const index = { schemaVersion: 2, mediaType: MT_INDEX, manifests, annotations: { 'org.opencontainers.image.title': seed, 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' } };
  return store.putBytes(encodeJSONBytes(index), MT_INDEX);
}

