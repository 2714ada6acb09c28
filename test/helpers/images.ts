// Small gadget-like images written through the store's API, for tests that need content.
import { randomBytes } from 'node:crypto';
import type { Store } from '../../store/store.js';
import { encodeJSONBytes } from '../../lib/oci/json.js';
import { MT_INDEX, MT_MANIFEST, GADGET_ARTIFACT_TYPE, GADGET_BTFGEN, GADGET_CONFIG, GADGET_EBPF, GADGET_WASM } from '../../lib/oci/mediatypes.js';
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


/** Layer sizes of generated images: eBPF per architecture, wasm per image, btfgen per architecture shared by all. */
export interface GeneratedSizes {
  ebpf: number;
  wasm: number;
  btfgen: number;
}

/**
 * `refs.length` generated multi-arch gadget images (bench/sync.ts makes them larger): per
 * image a config, a wasm layer and two eBPF layers of random bytes, plus one btfgen blob per
 * architecture shared by all. `sizes` as a number is the eBPF size, wasm twice and btfgen four
 * times that. Tagged in one index.json update; returns the index descriptors.
 */
export async function generatedImages(store: Store, refs: string[], sizes: number | GeneratedSizes = 4096): Promise<Descriptor[]> {
  const size = typeof sizes === 'number' ? { ebpf: sizes, wasm: 2 * sizes, btfgen: 4 * sizes } : sizes;
  const btfgen: Record<string, Descriptor> = {};
  for (const arch of ['amd64', 'arm64']) btfgen[arch] = await store.putBytes(randomBytes(size.btfgen), GADGET_BTFGEN);
  const tags: Array<{ descriptor: Descriptor; ref: string }> = [];
  for (const [i, ref] of refs.entries()) {
    const config = await store.putBytes(Buffer.from(`name: gadget${i}\ndescription: generated gadget ${i} for ${ref}\n`), GADGET_CONFIG);
    const wasm = await store.putBytes(randomBytes(size.wasm), GADGET_WASM);
    const manifests: Descriptor[] = [];
    for (const architecture of ['amd64', 'arm64']) {
      const ebpf = await store.putBytes(randomBytes(size.ebpf), GADGET_EBPF);
      const manifest = { schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: GADGET_ARTIFACT_TYPE, config, layers: [ebpf, wasm, btfgen[architecture]!] };
      const d = await store.putBytes(encodeJSONBytes(manifest), MT_MANIFEST);
      manifests.push({ ...d, platform: { architecture, os: 'linux' } });
    }
    const index = await store.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_INDEX, manifests }), MT_INDEX);
    tags.push({ descriptor: index, ref });
  }
  await store.tagMany(tags);
  return tags.map((t) => t.descriptor);
}

/** A small two-architecture gadget image whose bytes depend only on `seed`; returns its index descriptor (untagged). */
export async function writeImage(store: Store, seed: string): Promise<Descriptor> {
  const config = await store.putBytes(Buffer.from(`name: ${seed}\n`), GADGET_CONFIG);
  const manifests: Descriptor[] = [];
  for (const arch of ['amd64', 'arm64']) {
    const layer = await store.putBytes(Buffer.from(`ebpf ${seed} ${arch}`), GADGET_EBPF);
    const manifest = { schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: GADGET_ARTIFACT_TYPE, config, layers: [layer] };
    manifests.push({ ...(await store.putBytes(encodeJSONBytes(manifest), MT_MANIFEST)), platform: { architecture: arch, os: 'linux' } });
  }
  return store.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_INDEX, manifests }), MT_INDEX);
}
