// Walks one image's graph (index -> manifests -> config + layers) and gathers the structure,
// metadata, content and integrity problems. Work on a blob is shared by every image of the
// run that reaches it: the hash (integrity.ts), gadget.yaml by config digest, the content
// checks by layer digest, kind and platform. Cached problems carry paths relative to their
// node and are placed in each image's graph when used; settled results replace their
// promises and empty ones share one array, so 10 000 images keep little in memory.
import type { ContentProblem, GadgetArch } from '../../lib/content/problem.js';
import { MAX_METADATA_BYTES } from '../../lib/gadget/metadata.js';
import { INDEX_TYPES, MANIFEST_TYPES } from '../../lib/oci/mediatypes.js';
import { MAX_MANIFEST_BYTES } from '../../lib/oci/target.js';
import type { Descriptor } from '../../lib/oci/types.js';
import type { Store } from '../../store/store.js';
import { contentProblems, contentReader, type LayerKind } from './content.js';
import { BlobReader, descriptorProblem, type BlobRead } from './integrity.js';
import type { Problem } from './report.js';
import type { Profile } from './rules.js';
import {
  annotationsAgreement,
  checkIndex,
  checkIndexAnnotations,
  checkManifest,
  checkMetadata,
  checkMetadataAgreement,
  entryAnnotations,
  entryName,
  expectedAnnotations,
  isObject,
  parseDocumentJSON,
  platformArch,
} from './spec.js';

interface ConfigResult {
  problems: readonly Problem[];
  /** The annotations gadget.yaml implies, when it is valid. */
  expected?: Record<string, string>;
}

const NONE: readonly Problem[] = Object.freeze([]);

function settled(problems: readonly Problem[]): readonly Problem[] {
  return problems.length ? problems : NONE;
}

function rebase(problems: readonly Problem[], prefix: string): readonly Problem[] {
  return prefix === '' || problems.length === 0 ? problems : problems.map((p) => ({ ...p, path: prefix + p.path }));
}

/** The cached result for `key`, computed once even when asked for concurrently. */
function memo<T>(cache: Map<string, T | Promise<T>>, key: string, work: () => T | Promise<T>): T | Promise<T> {
  const found = cache.get(key);
  if (found !== undefined) return found;
  const result = work();
  if (!(result instanceof Promise)) {
    cache.set(key, result);
    return result;
  }
  const pending = result.then((value) => {
    cache.set(key, value);
    return value;
  });
  cache.set(key, pending);
  return pending;
}


/** Runs work one at a time: large blobs are read by one image at a time, so memory stays flat. */
class Lane {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export class GraphVerifier {
  readonly blobs: BlobReader;
  private readonly configs = new Map<string, ConfigResult | Promise<ConfigResult>>();
  private readonly layers = new Map<string, readonly Problem[] | Promise<readonly Problem[]>>();
  /** Blobs past the synchronous small-file path: held in memory up to a cap, or streamed. */
  private readonly large = new Lane();

  constructor(
    store: Store,
    private readonly profile: Profile,
  ) {
    this.blobs = new BlobReader(store);
  }

  /** Every problem of the graph under `root`; paths are JSON pointers from the root ("/"). */
  async verify(root: Descriptor): Promise<Problem[]> {
    let problems: Problem[];
    const bad = descriptorProblem(root, '/', typeof root?.digest === 'string' ? root.digest : '');
    if (bad) {
      problems = [bad];
    } else if (INDEX_TYPES.has(root.mediaType)) {
      problems = await this.index(root);
    } else if (MANIFEST_TYPES.has(root.mediaType)) {
      problems = [
        { rule: 'GADGET-INDEX', digest: root.digest, path: '/', message: `The image is a single manifest (${root.mediaType}), not an image index with one manifest per platform.` },
        // No index entry names its platform: the reference's descriptor or the config's may.
        ...(await this.manifest(root, platformArch(root.platform), 'the manifest', true)).problems,
      ];
    } else {
      problems = [{ rule: 'GADGET-MANIFEST-INVALID', digest: root.digest, path: '/', message: `The reference points at a ${root.mediaType} blob, not at an image index or manifest.` }];
    }
    return problems.map((p) => (p.path === '' ? { ...p, path: '/' } : p));
  }

  /** Reads a manifest or index whole (it is small) with its integrity problems. */
  private async document(desc: Descriptor, what: string): Promise<{ problems: Problem[]; doc?: Record<string, unknown> }> {
    const read = this.blobs.readWhole(desc, '', MAX_MANIFEST_BYTES) ?? (await this.blobs.read(desc, '', { keep: MAX_MANIFEST_BYTES }));
    const problems = [...read.problems];
    if (!read.bytes) {
      if (read.present && read.trusted) {
        problems.push({ rule: 'GADGET-MANIFEST-INVALID', digest: desc.digest, path: '', message: `The ${what} ${desc.digest} is ${read.size} bytes, more than the ${MAX_MANIFEST_BYTES} a manifest may have.` });
      }
      return { problems };
    }
    const parsed = parseDocumentJSON(read.bytes, desc.digest, '', what);
    if (parsed.problem) problems.push(parsed.problem);
    return { problems, doc: parsed.doc };
  }

  private async index(root: Descriptor): Promise<Problem[]> {
    const { problems, doc } = await this.document(root, 'index');
    if (!doc) return problems;
    const { problems: indexProblems, entries } = checkIndex(doc, root.digest);
    problems.push(...indexProblems);
    const nested = await Promise.all(entries.map((e) => this.manifest(e.desc, e.arch, `the ${e.platform} manifest`)));
    nested.forEach(({ problems: found }, i) => problems.push(...rebase(found, entries[i]!.path)));
    // The index's and its entries' annotations are copies of the manifests' (ig writes one map
    // on all four levels): reported after what the manifests hold, so `-q` names that first.
    problems.push(...checkIndexAnnotations(doc, entries, root.digest));
    const indexAnnotations = isObject(doc.annotations) ? doc.annotations : {};
    nested.forEach(({ expected }, i) => {
      if (!expected) return;
      // Each entry says what its own manifest's gadget.yaml says; the index what each manifest's does.
      problems.push(...annotationsAgreement(expected, entryAnnotations(entries[i]!), root.digest, entries[i]!.path, entryName(entries[i]!)));
      problems.push(...annotationsAgreement(expected, indexAnnotations, root.digest, '/', 'the index'));
    });
    return problems;
  }

  /**
   * A manifest's problems, relative to it; `arch` is set for linux/amd64 and linux/arm64. A
   * `single` manifest (the image itself) without one takes its config descriptor's platform.
   * Unknown, only the checks that need it are skipped.
   */
  private async manifest(desc: Descriptor, arch: GadgetArch | undefined, where: string, single = false): Promise<{ problems: Problem[]; expected?: Record<string, string> }> {
    const { problems, doc } = await this.document(desc, 'manifest');
    if (!doc) return { problems };
    const { problems: shapeProblems, shape } = checkManifest(doc, desc.digest, this.profile, where);
    problems.push(...shapeProblems);
    if (!shape) return { problems };
    if (single && !arch) arch = platformArch(shape.config?.platform);
    // Start every blob's work first, then wait for whatever is not ready yet.
    const config = shape.config ? this.config(shape.config, shape.gadgetConfig) : undefined;
    const layers = shape.layers.map((layer) => {
      // An empty gadget layer is GADGET-LAYER-EMPTY; its (absent) content says nothing more.
      const kind = layer.desc.size === 0 ? undefined : layer.kind;
      return this.layer(layer.desc, kind, arch);
    });
    let expected: Record<string, string> | undefined;
    if (config) {
      const result = config instanceof Promise ? await config : config;
      problems.push(...rebase(result.problems, '/config'));
      expected = result.expected;
      if (expected) problems.push(...checkMetadataAgreement(expected, shape, desc.digest, where));
    }
    for (let i = 0; i < layers.length; i++) {
      const found = layers[i]!;
      problems.push(...rebase(found instanceof Promise ? await found : found, shape.layers[i]!.path));
    }
    return { problems, ...(expected ? { expected } : {}) };
  }

  private config(desc: Descriptor, gadgetConfig: boolean): ConfigResult | Promise<ConfigResult> {
    return memo(this.configs, `${desc.digest}|${desc.size}|${gadgetConfig}`, () => {
      if (!gadgetConfig) return this.blobs.read(desc, '').then((read) => ({ problems: settled(read.problems) }));
      const read = this.blobs.readWhole(desc, '', MAX_METADATA_BYTES);
      return read ? this.metadata(desc, read) : this.blobs.read(desc, '', { keep: MAX_METADATA_BYTES }).then((r) => this.metadata(desc, r));
    });
  }

  private metadata(desc: Descriptor, read: BlobRead<never>): ConfigResult {
    const problems = [...read.problems];
    if (!read.trusted) return { problems };
    if (!read.bytes) {
      problems.push({ rule: 'GADGET-CONFIG-YAML', digest: desc.digest, path: '', message: `gadget.yaml is ${read.size} bytes, more than the ${MAX_METADATA_BYTES} a metadata file may have.` });
      return { problems };
    }
    const checked = checkMetadata(read.bytes, desc.digest);
    problems.push(...checked.problems);
    return checked.meta ? { problems: settled(problems), expected: expectedAnnotations(checked.meta) } : { problems };
  }

  private layer(desc: Descriptor, kind: LayerKind | undefined, arch: GadgetArch | undefined): readonly Problem[] | Promise<readonly Problem[]> {
    return memo(this.layers, `${desc.digest}|${desc.size}|${kind ?? '-'}|${arch ?? '-'}`, () => {
      if (!kind) {
        // Integrity only: small blobs on the synchronous path, large ones streamed in the lane.
        const small = this.blobs.readWhole(desc, '', Infinity);
        return small ? settled(small.problems) : this.large.run(async () => settled((await this.blobs.read(desc, '')).problems));
      }
      const reader = contentReader(kind, arch);
      const checked = (read: BlobRead<ContentProblem[]>): readonly Problem[] =>
        read.trusted ? settled([...read.problems, ...contentProblems(kind, arch, desc, '', read)]) : read.problems;
      const fast = reader.keep !== undefined && !reader.consume ? this.blobs.readWhole(desc, '', reader.keep) : undefined;
      return fast ? checked(fast) : this.large.run(async () => checked(await this.blobs.read(desc, '', reader)));
    });
  }
}
