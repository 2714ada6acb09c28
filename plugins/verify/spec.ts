// Structure rules of the gadget artifact spec: the index and its platforms, each manifest's
// artifactType, config and layer types and counts, the OCI annotations and their `created`
// time, and gadget.yaml (YAML, schema, agreement with the annotations). Pure functions of
// parsed documents: they never read the store.
import { isRFC3339 } from '../../lib/oci/time.js';
import { parseDocument, isMap } from 'yaml';
import type { GadgetArch } from '../../lib/content/problem.js';
import { messageOf } from '../../lib/errors.js';
import { describeClash, keyClash } from '../../lib/oci/json-keys.js';
import { MAX_METADATA_BYTES, metadataAnnotations, readMetadata, type GadgetMetadata } from '../../lib/gadget/metadata.js';
import {
  ANN_CREATED,
  ANN_DESCRIPTION,
  ANN_DOCUMENTATION,
  ANN_SOURCE,
  ANN_TITLE,
  ANN_URL,
  GADGET_ARTIFACT_TYPE,
  GADGET_CONFIG,
  GADGET_EBPF,
  INDEX_TYPES,
  MANIFEST_TYPES,
  MT_EMPTY,
} from '../../lib/oci/mediatypes.js';
import type { Descriptor } from '../../lib/oci/types.js';
import { layerKind, type LayerKind } from './content.js';
import { descriptorProblem } from './integrity.js';
import type { Problem } from './report.js';
import type { Profile } from './rules.js';

const REQUIRED_ANNOTATIONS = [ANN_TITLE, ANN_DESCRIPTION, ANN_URL, ANN_DOCUMENTATION, ANN_SOURCE, ANN_CREATED] as const;
const METADATA_KEYS = [ANN_TITLE, ANN_DESCRIPTION, ANN_URL, ANN_DOCUMENTATION, ANN_SOURCE] as const;
const SUPPORTED_ARCHS: readonly string[] = ['amd64', 'arm64'];

type JSONObject = Record<string, unknown>;

export function isObject(value: unknown): value is JSONObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A manifest or index document, or a problem saying why it is not one. */
export function parseDocumentJSON(bytes: Buffer, digest: string, path: string, what: string): { doc?: JSONObject; problem?: Problem } {
  let doc: unknown;
  const text = bytes.toString('utf8');
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { problem: { rule: 'GADGET-MANIFEST-INVALID', digest, path, message: `The ${what} ${digest} is not valid JSON (${messageOf(err)}).` } };
  }
  if (!isObject(doc)) return { problem: { rule: 'GADGET-MANIFEST-INVALID', digest, path, message: `The ${what} ${digest} is not a JSON object.` } };
  // ig may read another list, config or platform from it than JSON.parse gives us: what we
  // would check is not what ig runs, so nothing of it is checked.
  const clash = keyClash(text);
  if (clash) return { problem: { rule: 'GADGET-MANIFEST-INVALID', digest, path, message: `The ${what} ${digest} ${describeClash(clash)}.` } };
  return { doc };
}

/** The gadget platform a descriptor's `platform` names (linux/amd64, linux/arm64), else undefined. */
export function platformArch(platform: unknown): GadgetArch | undefined {
  if (!isObject(platform) || platform.os !== 'linux' || typeof platform.architecture !== 'string') return undefined;
  return SUPPORTED_ARCHS.includes(platform.architecture) ? (platform.architecture as GadgetArch) : undefined;
}

// ------------------------------------------------------------------ index

export interface IndexEntry {
  desc: Descriptor;
  path: string;
  /** "linux/amd64", or "(no platform)". */
  platform: string;
  /** Set for the platforms gadgets run on; content checks that depend on it need it. */
  arch?: GadgetArch;
}

export function checkIndex(doc: JSONObject, digest: string): { problems: Problem[]; entries: IndexEntry[] } {
  const problems: Problem[] = [];
  const entries: IndexEntry[] = [];
  if (doc.mediaType !== undefined && !INDEX_TYPES.has(String(doc.mediaType))) {
    problems.push({ rule: 'GADGET-MANIFEST-INVALID', digest, path: '/', message: `The index declares the media type ${JSON.stringify(doc.mediaType)}, not an image index type.` });
  }
  const list = doc.manifests;
  if (!Array.isArray(list) || list.length === 0) {
    problems.push({ rule: 'GADGET-MANIFEST-INVALID', digest, path: '/', message: Array.isArray(list) ? 'The index lists no manifest.' : 'The index has no "manifests" list.' });
    return { problems, entries };
  }
  const byPlatform = new Map<string, string>();
  const byDigest = new Map<string, string>();
  list.forEach((raw: unknown, i) => {
    const path = `/manifests/${i}`;
    const bad = descriptorProblem(raw, path, digest);
    if (bad) return void problems.push(bad);
    const desc = raw as Descriptor;
    if (!MANIFEST_TYPES.has(desc.mediaType)) {
      const kind = INDEX_TYPES.has(desc.mediaType) ? 'a nested index' : `of media type ${desc.mediaType}`;
      return void problems.push({ rule: 'GADGET-MANIFEST-INVALID', digest, path, message: `Index entry ${i} (${desc.digest}) is ${kind}, not an image manifest.` });
    }
    const p = desc.platform as unknown;
    let platform = '(no platform)';
    let arch: GadgetArch | undefined;
    if (!isObject(p) || typeof p.os !== 'string' || typeof p.architecture !== 'string') {
      problems.push({ rule: 'GADGET-PLATFORM', digest, path, message: `Index entry ${i} (${desc.digest}) names no platform (os and architecture).` });
    } else {
      platform = `${p.os}/${p.architecture}${typeof p.variant === 'string' && p.variant ? `/${p.variant}` : ''}`;
      if (p.os === 'linux' && SUPPORTED_ARCHS.includes(p.architecture)) {
        arch = p.architecture as GadgetArch;
      } else {
        problems.push({ rule: 'GADGET-PLATFORM', digest, path, message: `Index entry ${i} is for ${platform}; gadgets are built for linux/amd64 and linux/arm64 only.` });
      }
      const other = byPlatform.get(platform);
      if (other !== undefined && other !== desc.digest) {
        problems.push({ rule: 'GADGET-PLATFORM-DUPLICATE', digest, path, message: `${platform} is listed twice, with the different manifests ${other} and ${desc.digest}.` });
      }
      byPlatform.set(platform, desc.digest);
      const shared = byDigest.get(desc.digest);
      if (shared !== undefined && shared !== platform) {
        problems.push({ rule: 'GADGET-PLATFORM-SHARED', digest, path, message: `The manifest ${desc.digest} is listed for both ${shared} and ${platform}.` });
      }
      if (shared === undefined) byDigest.set(desc.digest, platform);
    }
    entries.push({ desc, path, platform, ...(arch ? { arch } : {}) });
  });
  return { problems, entries };
}

/**
 * The annotation rules of the manifest level applied to the index and to each entry's
 * descriptor: ig writes the same map on all four levels, and `gadget list` shows the index's.
 */
export function checkIndexAnnotations(doc: JSONObject, entries: IndexEntry[], digest: string): Problem[] {
  const problems = checkAnnotations(isObject(doc.annotations) ? doc.annotations : {}, digest, '/', 'the index');
  for (const e of entries) problems.push(...checkAnnotations(entryAnnotations(e), digest, e.path, entryName(e)));
  return problems;
}

export function entryAnnotations(e: IndexEntry): JSONObject {
  const annotations = e.desc.annotations as unknown;
  return isObject(annotations) ? annotations : {};
}

/** "the index entry of linux/amd64" (the entry's descriptor in the index, not its manifest). */
export function entryName(e: IndexEntry): string {
  return `the index entry ${e.path.slice('/manifests/'.length)} (${e.platform})`;
}

// ------------------------------------------------------------------ manifest

export interface LayerEntry {
  desc: Descriptor;
  /** Relative to the manifest: "/layers/1". */
  path: string;
  kind?: LayerKind;
}

export interface ManifestShape {
  config?: Descriptor;
  /** The config holds gadget.yaml (its content is checked). */
  gadgetConfig: boolean;
  layers: LayerEntry[];
  annotations: JSONObject;
  configAnnotations: JSONObject;
}

/**
 * Structure problems of a manifest (paths relative to it) and what the content checks need.
 * `where` names the manifest in messages ("the linux/amd64 manifest").
 */
export function checkManifest(doc: JSONObject, digest: string, profile: Profile, where: string): { problems: Problem[]; shape?: ManifestShape } {
  const problems: Problem[] = [];
  const add = (rule: Problem['rule'], path: string, message: string): void => void problems.push({ rule, digest, path, message });
  if (doc.mediaType !== undefined && !MANIFEST_TYPES.has(String(doc.mediaType))) {
    add('GADGET-MANIFEST-INVALID', '', `${cap(where)} declares the media type ${JSON.stringify(doc.mediaType)}, not an image manifest type.`);
    return { problems };
  }
  if (!isObject(doc.config) || !Array.isArray(doc.layers)) {
    add('GADGET-MANIFEST-INVALID', '', `${cap(where)} has no config descriptor or no layer list, so it is not an image manifest.`);
    return { problems };
  }
  if (doc.schemaVersion !== 2) add('GADGET-MANIFEST-INVALID', '', `${cap(where)} has schemaVersion ${JSON.stringify(doc.schemaVersion ?? null)}, not 2.`);

  const artifactType = doc.artifactType;
  if (artifactType === undefined || artifactType === GADGET_EBPF) {
    const was = artifactType === undefined ? 'has no artifactType' : `has the legacy artifactType ${GADGET_EBPF}`;
    add('GADGET-ARTIFACT-TYPE-LEGACY', '', `${cap(where)} ${was} (an image built before 2024-09); new images carry ${GADGET_ARTIFACT_TYPE}.`);
  } else if (artifactType !== GADGET_ARTIFACT_TYPE) {
    add('GADGET-ARTIFACT-TYPE', '', `${cap(where)} has the artifactType ${JSON.stringify(artifactType)}, not ${GADGET_ARTIFACT_TYPE}: it is not a gadget image.`);
  }

  const annotations = isObject(doc.annotations) ? doc.annotations : {};
  const configAnnotations = isObject(doc.config.annotations) ? doc.config.annotations : {};
  const shape: ManifestShape = { gadgetConfig: false, layers: [], annotations, configAnnotations };

  const configBad = descriptorProblem(doc.config, '/config', digest);
  if (configBad) {
    problems.push(configBad);
  } else {
    const config = doc.config as unknown as Descriptor;
    shape.config = config;
    if (config.mediaType === GADGET_CONFIG) {
      shape.gadgetConfig = true;
    } else if (config.mediaType === MT_EMPTY) {
      add('GADGET-CONFIG-EMPTY', '/config', `${cap(where)} has the OCI empty config instead of gadget.yaml (${GADGET_CONFIG}).`);
    } else {
      add('GADGET-CONFIG-TYPE', '/config', `${cap(where)} has a config of media type ${config.mediaType}, not ${GADGET_CONFIG}.`);
    }
  }

  const counts: Record<LayerKind, number> = { ebpf: 0, wasm: 0, btfgen: 0 };
  (doc.layers as unknown[]).forEach((raw, i) => {
    const path = `/layers/${i}`;
    const bad = descriptorProblem(raw, path, digest);
    if (bad) return void problems.push(bad);
    const desc = raw as Descriptor;
    const kind = layerKind(desc.mediaType);
    if (!kind) {
      add('GADGET-LAYER-TYPE', path, `Layer ${i} of ${where} has the media type ${desc.mediaType}, which is not an ebpf, wasm or btfgen layer.`);
    } else {
      counts[kind]++;
      if (desc.size === 0) add('GADGET-LAYER-EMPTY', path, `The ${kind} layer (layer ${i}) of ${where} is empty.`);
    }
    shape.layers.push({ desc, path, ...(kind ? { kind } : {}) });
  });
  if (counts.ebpf > 1) add('GADGET-EBPF-COUNT', '', `${cap(where)} has ${counts.ebpf} ebpf layers; a gadget has exactly one eBPF object per platform.`);
  if (counts.ebpf === 0) {
    const what = counts.wasm > 0 ? 'a wasm-only image' : 'a metadata-only image';
    if (profile === 'spec') add('GADGET-EBPF-COUNT', '', `${cap(where)} has no ebpf layer (${what}); the spec requires exactly one.`);
    else add('GADGET-NO-EBPF', '', `${cap(where)} has no ebpf layer: ${what}, which ig runs.`);
  }
  if (counts.wasm > 1) add('GADGET-WASM-COUNT', '', `${cap(where)} has ${counts.wasm} wasm layers; at most one is allowed.`);
  if (counts.btfgen > 1) add('GADGET-BTFGEN-COUNT', '', `${cap(where)} has ${counts.btfgen} btfgen layers; at most one is allowed.`);

  problems.push(...checkAnnotations(annotations, digest, '', `${where}`));
  problems.push(...checkAnnotations(configAnnotations, digest, '/config', `the config descriptor of ${where}`));
  return { problems, shape };
}

function cap(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function checkAnnotations(annotations: JSONObject, digest: string, path: string, where: string): Problem[] {
  const problems: Problem[] = [];
  const missing = REQUIRED_ANNOTATIONS.filter((k) => typeof annotations[k] !== 'string');
  if (missing.length) {
    problems.push({ rule: 'GADGET-ANNOTATION-MISSING', digest, path, message: `${cap(where)} lacks the annotation${missing.length > 1 ? 's' : ''} ${missing.join(', ')}.` });
  }
  const created = annotations[ANN_CREATED];
  if (typeof created === 'string' && !isRFC3339(created)) {
    problems.push({ rule: 'GADGET-CREATED-FORMAT', digest, path, message: `${cap(where)} has ${ANN_CREATED} ${JSON.stringify(created)}, which is not an RFC 3339 date-time.` });
  }
  return problems;
}

export { isRFC3339 };

// ------------------------------------------------------------------ gadget.yaml

/** gadget.yaml parsed and validated, or the problem (its path relative to the config: ""). */
export function checkMetadata(bytes: Buffer, digest: string): { meta?: GadgetMetadata; problems: Problem[] } {
  try {
    const { meta, warnings } = readMetadata(bytes, 'gadget.yaml');
    // ig ignores keys it does not know: a warning (with its "did you mean"), never an error.
    const problems = warnings.map((w): Problem => ({ rule: 'GADGET-METADATA-UNKNOWN-KEY', digest, path: '', message: sentence(`${w.message}, which ig's metadata decoding skips (${w.hint})`) }));
    return { meta, problems };
  } catch (err) {
    return { problems: [{ rule: yamlBroken(bytes) ? 'GADGET-CONFIG-YAML' : 'GADGET-METADATA-SCHEMA', digest, path: '', message: sentence(messageOf(err)) }] };
  }
}

/** Only on the failure path: is the config not YAML at all (rather than the wrong YAML)? */
function yamlBroken(bytes: Buffer): boolean {
  if (bytes.length > MAX_METADATA_BYTES) return true;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false });
    return doc.errors.length > 0 || !isMap(doc.contents);
  } catch {
    return true;
  }
}

function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** The annotations ig derives from gadget.yaml, which the manifest's must equal. */
export function expectedAnnotations(meta: GadgetMetadata): Record<string, string> {
  const all = metadataAnnotations(meta);
  return Object.fromEntries(METADATA_KEYS.map((k) => [k, all[k] ?? '']));
}

/** The five descriptive annotations must say what gadget.yaml says (ig derives them from it). */
export function checkMetadataAgreement(expected: Record<string, string>, shape: ManifestShape, digest: string, where: string): Problem[] {
  return [
    ...annotationsAgreement(expected, shape.annotations, digest, '', where),
    ...annotationsAgreement(expected, shape.configAnnotations, digest, '/config', `the config descriptor of ${where}`),
  ];
}

/** One level's annotations against gadget.yaml: a problem naming every key that disagrees, or none. */
export function annotationsAgreement(expected: Record<string, string>, annotations: JSONObject, digest: string, path: string, level: string): Problem[] {
  const wrong = METADATA_KEYS.filter((k) => typeof annotations[k] === 'string' && annotations[k] !== expected[k]);
  if (!wrong.length) return [];
  const detail = wrong.map((k) => `${k} is ${JSON.stringify(annotations[k])} but gadget.yaml gives ${JSON.stringify(expected[k])}`).join('; ');
  return [{ rule: 'GADGET-METADATA-ANNOTATIONS', digest, path, message: `${cap(level)} disagrees with gadget.yaml: ${detail}.` }];
}
