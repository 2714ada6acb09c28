// Walks one image's graph (index -> manifests -> config + layers) and gathers the structure,
// metadata, content and integrity problems. Results are cached for the whole run by what
// they depend on (a manifest by digest and platform, a config by digest, a layer by digest,
// kind and platform), so images that share blobs cost little; cached problems carry paths
// relative to their node and are placed in each image's graph when used.
import type { GadgetArch } from '../../lib/content/problem.js';
import type { GadgetMetadata } from '../../lib/gadget/metadata.js';
import { MAX_METADATA_BYTES } from '../../lib/gadget/metadata.js';
import { INDEX_TYPES, MANIFEST_TYPES } from '../../lib/oci/mediatypes.js';
import { MAX_MANIFEST_BYTES } from '../../lib/oci/target.js';
import type { Descriptor } from '../../lib/oci/types.js';
import type { Store } from '../../store/store.js';
import { contentProblems, contentReader, type LayerKind } from './content.js';
import { BlobReader } from './integrity.js';
import type { Problem } from './report.js';
import type { Profile } from './rules.js';
import { checkIndex, checkManifest, checkMetadata, checkMetadataAgreement, parseDocumentJSON } from './spec.js';

interface ConfigResult {
  problems: Problem[];
  meta?: GadgetMetadata;
}

function rebase(problems: Problem[], prefix: string): Problem[] {
  return prefix === '' ? problems : problems.map((p) => ({ ...p, path: prefix + p.path }));
}

function memo<T>(cache: Map<string, Promise<T>>, key: string, work: () => Promise<T>): Promise<T> {
  let found = cache.get(key);
  if (!found) {
    found = work();
    cache.set(key, found);
  }
  return found;
}

export class GraphVerifier {
  readonly blobs: BlobReader;
  private readonly manifests = new Map<string, Promise<Problem[]>>();
  private readonly configs = new Map<string, Promise<ConfigResult>>();
  private readonly layers = new Map<string, Promise<Problem[]>>();

  constructor(
    store: Store,
    private readonly profile: Profile,
  ) {
    this.blobs = new BlobReader(store);
  }

  /** Every problem of the graph under `root`; paths are JSON pointers from the root ("/"). */
  async verify(root: Descriptor): Promise<Problem[]> {
    let problems: Problem[];
    if (INDEX_TYPES.has(root.mediaType)) {
      problems = await this.index(root);
    } else if (MANIFEST_TYPES.has(root.mediaType)) {
      problems = [
        { rule: 'GADGET-INDEX', digest: root.digest, path: '/', message: `The image is a single manifest (${root.mediaType}), not an image index with one manifest per platform.` },
        ...(await this.manifest(root, undefined, 'the manifest')),
      ];
    } else {
      problems = [{ rule: 'GADGET-MANIFEST-INVALID', digest: root.digest, path: '/', message: `The reference points at a ${root.mediaType} blob, not at an image index or manifest.` }];
    }
    return problems.map((p) => (p.path === '' ? { ...p, path: '/' } : p));
  }

  /** Reads a manifest or index whole (it is small) with its integrity problems. */
  private async document(desc: Descriptor, what: string): Promise<{ problems: Problem[]; doc?: Record<string, unknown> }> {
    const read = await this.blobs.read(desc, '', { keep: MAX_MANIFEST_BYTES });
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
    const nested = await Promise.all(entries.map(async (e) => rebase(await this.manifest(e.desc, e.arch, `the ${e.platform} manifest`, e.platform), e.path)));
    for (const list of nested) problems.push(...list);
    return problems;
  }

  /** A manifest's problems, relative to it; `arch` is set for linux/amd64 and linux/arm64. */
  private manifest(desc: Descriptor, arch: GadgetArch | undefined, where: string, platform = ''): Promise<Problem[]> {
    return memo(this.manifests, `${desc.digest}|${desc.size}|${platform}`, async () => {
      const { problems, doc } = await this.document(desc, 'manifest');
      if (!doc) return problems;
      const { problems: shapeProblems, shape } = checkManifest(doc, desc.digest, this.profile, where);
      problems.push(...shapeProblems);
      if (!shape) return problems;
      const parts: Array<Promise<Problem[]>> = [];
      if (shape.config) {
        const config = shape.config;
        parts.push(
          this.config(config, shape.gadgetConfig).then((result) => [
            ...rebase(result.problems, '/config'),
            ...(result.meta ? checkMetadataAgreement(result.meta, shape, desc.digest, where) : []),
          ]),
        );
      }
      for (const layer of shape.layers) {
        // An empty gadget layer is GADGET-LAYER-EMPTY; its (absent) content says nothing more.
        const kind = layer.desc.size === 0 ? undefined : layer.kind;
        parts.push(this.layer(layer.desc, kind, arch).then((p) => rebase(p, layer.path)));
      }
      for (const list of await Promise.all(parts)) problems.push(...list);
      return problems;
    });
  }

  private config(desc: Descriptor, gadgetConfig: boolean): Promise<ConfigResult> {
    return memo(this.configs, `${desc.digest}|${desc.size}|${gadgetConfig}`, async () => {
      if (!gadgetConfig) return { problems: (await this.blobs.read(desc, '')).problems };
      const read = await this.blobs.read(desc, '', { keep: MAX_METADATA_BYTES });
      const problems = [...read.problems];
      if (!read.trusted) return { problems };
      if (!read.bytes) {
        problems.push({ rule: 'GADGET-CONFIG-YAML', digest: desc.digest, path: '', message: `gadget.yaml is ${read.size} bytes, more than the ${MAX_METADATA_BYTES} a metadata file may have.` });
        return { problems };
      }
      const checked = checkMetadata(read.bytes, desc.digest);
      problems.push(...checked.problems);
      return checked.meta ? { problems, meta: checked.meta } : { problems };
    });
  }

  private layer(desc: Descriptor, kind: LayerKind | undefined, arch: GadgetArch | undefined): Promise<Problem[]> {
    return memo(this.layers, `${desc.digest}|${desc.size}|${kind ?? '-'}|${arch ?? '-'}`, async () => {
      if (!kind) return (await this.blobs.read(desc, '')).problems;
      const read = await this.blobs.read(desc, '', contentReader(kind, arch));
      if (!read.trusted) return read.problems;
      return [...read.problems, ...contentProblems(kind, arch, desc, '', read)];
    });
  }
}
