// The pure assembly of a gadget image, byte for byte what ig's `image build` writes
// (pkg/oci/build.go): an index with one manifest per architecture (amd64, arm64), each with the
// raw gadget.yaml as config (or the OCI empty descriptor) and the ebpf, wasm and btfgen layers
// in that order; one annotation map on the config descriptor, the manifest, its index entry
// and the index. Objects are created in the Go struct field order of image-spec v1.1
// (Descriptor: mediaType, digest, size, urls, annotations, data, platform, artifactType;
// Manifest: schemaVersion, mediaType, artifactType, config, layers, subject, annotations;
// Index: schemaVersion, mediaType, artifactType, manifests, subject, annotations) and encoded
// with the one Go-compatible encoder, so equal inputs give ig's digests.
import { GadgetError } from '../../lib/errors.js';
import { sha256 } from '../../lib/oci/digest.js';
import { encodeJSONBytes } from '../../lib/oci/json.js';
import {
  ANN_BUILDER_VERSION,
  ANN_CREATED,
  EMPTY_BYTES,
  EMPTY_DIGEST,
  GADGET_ARTIFACT_TYPE,
  GADGET_BTFGEN,
  GADGET_CONFIG,
  GADGET_EBPF,
  GADGET_WASM,
  MT_EMPTY,
  MT_INDEX,
  MT_MANIFEST,
} from '../../lib/oci/mediatypes.js';
import type { Annotations, Descriptor, Index, Manifest } from '../../lib/oci/types.js';
import { ARCHS, type Arch } from './arch.js';

export interface ImageInput {
  /** The raw gadget.yaml; absent -> the OCI empty config. */
  config?: Buffer;
  /** The final annotation map (see gadgetAnnotations). */
  annotations: Annotations;
  /** eBPF object per arch; when given, only these archs get a manifest. */
  ebpf?: Partial<Record<Arch, Buffer>>;
  /** One wasm module, in every manifest. */
  wasm?: Buffer;
  /** btfgen tarball per arch. */
  btfgen?: Partial<Record<Arch, Buffer>>;
}

export interface Blob {
  descriptor: Descriptor;
  bytes: Buffer;
}

export interface AssembledImage {
  /** The index; its descriptor carries the annotations, as ig tags it. */
  index: Blob;
  manifests: Array<Blob & { arch: Arch }>;
  /** Every blob (layers, config, manifests, index), children before parents, no duplicates. */
  blobs: Blob[];
}

function blob(mediaType: string, bytes: Buffer): Blob {
  return { descriptor: { mediaType, digest: sha256(bytes), size: bytes.length }, bytes };
}

/** The archs that get a manifest: those with an eBPF object, else both (wasm- or metadata-only). */
export function imageArchs(input: Pick<ImageInput, 'ebpf'>): Arch[] {
  const withObject = ARCHS.filter((a) => input.ebpf?.[a] !== undefined);
  return input.ebpf && withObject.length > 0 ? withObject : [...ARCHS];
}

export function assembleImage(input: ImageInput): AssembledImage {
  const blobs = new Map<string, Blob>();
  const add = (b: Blob): Blob => {
    if (!blobs.has(b.descriptor.digest)) blobs.set(b.descriptor.digest, b);
    return b;
  };
  const annotations = { ...input.annotations };

  // Config descriptor: annotations, and for the empty one, its inline data as Go's
  // ocispec.DescriptorEmptyJSON has it.
  let config: Descriptor;
  if (input.config !== undefined) {
    const c = add(blob(GADGET_CONFIG, input.config)).descriptor;
    config = { mediaType: c.mediaType, digest: c.digest, size: c.size, annotations };
  } else {
    add({ descriptor: { mediaType: MT_EMPTY, digest: EMPTY_DIGEST, size: EMPTY_BYTES.length }, bytes: EMPTY_BYTES });
    config = { mediaType: MT_EMPTY, digest: EMPTY_DIGEST, size: EMPTY_BYTES.length, annotations, data: EMPTY_BYTES.toString('base64') };
  }

  for (const arch of ARCHS) {
    if (input.btfgen?.[arch] !== undefined && input.ebpf?.[arch] === undefined) {
      throw new GadgetError(`a btfgen layer for ${arch} needs an eBPF object for ${arch}`);
    }
  }
  const wasm = input.wasm !== undefined ? add(blob(GADGET_WASM, input.wasm)).descriptor : undefined;
  const manifests: Array<Blob & { arch: Arch }> = [];
  for (const arch of imageArchs(input)) {
    const layers: Descriptor[] = [];
    const ebpf = input.ebpf?.[arch];
    if (ebpf !== undefined) layers.push(add(blob(GADGET_EBPF, ebpf)).descriptor);
    if (wasm) layers.push(wasm);
    const btf = input.btfgen?.[arch];
    if (btf !== undefined) layers.push(add(blob(GADGET_BTFGEN, btf)).descriptor);
    const manifest: Manifest = {
      schemaVersion: 2,
      artifactType: GADGET_ARTIFACT_TYPE,
      config,
      layers,
      annotations,
    };
    const m = add(blob(MT_MANIFEST, encodeJSONBytes(manifest)));
    manifests.push({ ...m, arch });
  }

  const index: Index = {
    schemaVersion: 2,
    mediaType: MT_INDEX,
    manifests: manifests.map((m) => ({
      mediaType: m.descriptor.mediaType,
      digest: m.descriptor.digest,
      size: m.descriptor.size,
      annotations,
      platform: { architecture: m.arch, os: 'linux' },
    })),
    annotations,
  };
  const indexBlob = add(blob(MT_INDEX, encodeJSONBytes(index)));
  const indexDescriptor: Descriptor = { ...indexBlob.descriptor, annotations };
  return { index: { descriptor: indexDescriptor, bytes: indexBlob.bytes }, manifests, blobs: [...blobs.values()] };
}

export interface AnnotationInput {
  /** The five OCI annotations from gadget.yaml (title, description, url, documentation, source); absent without gadget.yaml. */
  metadata?: Annotations;
  /** gadget.yaml's top-level `annotations`. */
  metadataAnnotations?: Annotations;
  builderVersion: string;
  /** Extra maps applied in order (config, then --annotation), each overriding. */
  extra?: Annotations[];
  created: string;
}

/**
 * The annotation map, built in ig's order: the five from gadget.yaml, the builder version,
 * gadget.yaml's annotations, extra ones, and the creation time last. Without gadget.yaml ig
 * writes neither the five nor the builder version: only `created` (plus our extra ones).
 */
export function gadgetAnnotations(a: AnnotationInput): Annotations {
  const out: Annotations = { ...(a.metadata ?? {}) };
  if (a.metadata) out[ANN_BUILDER_VERSION] = a.builderVersion;
  Object.assign(out, a.metadataAnnotations ?? {});
  for (const extra of a.extra ?? []) Object.assign(out, extra);
  out[ANN_CREATED] = a.created;
  return out;
}

const pad = (n: number, width = 2): string => String(Math.abs(n)).padStart(width, '0');

/**
 * Go's time.RFC3339 ("2006-01-02T15:04:05Z07:00") for `epochMs` at a zone `offsetMinutes`
 * east of UTC: whole seconds, "Z" for a zero offset, otherwise ±hh:mm.
 */
export function formatRFC3339(epochMs: number, offsetMinutes: number): string {
  const t = new Date(Math.floor(epochMs / 1000) * 1000 + offsetMinutes * 60_000);
  const year = t.getUTCFullYear();
  const date = `${year < 0 ? '-' : ''}${pad(year, 4)}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}`;
  const time = `${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}:${pad(t.getUTCSeconds())}`;
  const zone = offsetMinutes === 0 ? 'Z' : `${offsetMinutes < 0 ? '-' : '+'}${pad(Math.trunc(offsetMinutes / 60))}:${pad(offsetMinutes % 60)}`;
  return `${date}T${time}${zone}`;
}

/** SOURCE_DATE_EPOCH as Go's strconv.ParseInt reads it, or undefined when unset. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const value = env.SOURCE_DATE_EPOCH;
  if (value === undefined) return undefined;
  const seconds = /^[+-]?\d{1,15}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(seconds) || Math.abs(seconds) > 8.64e12) {
    throw new GadgetError(`SOURCE_DATE_EPOCH "${value}" is not a whole number of seconds since 1970`, {
      hint: 'set it to e.g. $(git log -1 --format=%ct), or unset it',
      exitCode: 2,
    });
  }
  return seconds;
}

/**
 * The `created` annotation as ig writes it: SOURCE_DATE_EPOCH in UTC ("...Z") when set,
 * otherwise now in the local zone.
 */
export function createdAnnotation(env: NodeJS.ProcessEnv = process.env, now: Date = new Date()): string {
  const epoch = sourceDateEpoch(env);
  if (epoch !== undefined) return formatRFC3339(epoch * 1000, 0);
  return formatRFC3339(now.getTime(), -now.getTimezoneOffset());
}
