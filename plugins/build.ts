// The build plugin: gadget sources -> gadget images in the store, byte-compatible with
// `ig image build`. Per gadget: resolve and check the spec (nothing is written before every
// input is valid), look the inputs up in the build cache, else compile (or take the prebuilt
// objects when clang is missing), run btfgen, assemble the image (build/image.ts), store its
// blobs children first; then tag every index at once and remember them in the cache.
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { checkEbpfElf } from '../lib/content/elf.js';
import { checkWasm } from '../lib/content/wasm.js';
import { GadgetError, isGadgetError, messageOf } from '../lib/errors.js';
import { packageVersion } from '../lib/version.js';
import { MAX_METADATA_BYTES, metadataAnnotations, readMetadata, type GadgetMetadata } from '../lib/gadget/metadata.js';
import { checkMetadataAgainstObject } from '../lib/gadget/object-check.js';
import { sha256 } from '../lib/oci/digest.js';
import type { Descriptor, Index, Manifest } from '../lib/oci/types.js';
import type { Artifact, Plugin, PluginContext } from '../lib/runner/types.js';
import { checkDuplicateRefs } from '../lib/runner/validate-config.js';
import type { Store } from '../store/store.js';
import { btfhubFingerprint, generateBtfgen } from './build/btfgen.js';
import { BuildCache, changedSince, depsUnchanged, hashFiles, KeyBuilder, sameFiles, type CacheEntry } from './build/cache.js';
import { appearedSince, changedLookup, probeLookups, type Probed } from './build/probes.js';
import { hashCapped, MAX_OBJECT_BYTES, MAX_SOURCE_BYTES, MAX_WASM_BYTES, readCapped } from './build/read.js';
import { compileEbpf, findTool, missingTool, toolVersion } from './build/compile.js';
import { resolveIncludeRoots } from './build/include.js';
import { buildWasm, checkWasmToolchain, hashWasmSources, type WasmToolchain } from './build/wasm-source.js';
import { assembleImage, createdAnnotation, gadgetAnnotations, sourceDateEpoch } from './build/image.js';
import { ARCHS, type Arch } from './build/arch.js';
import { buildRef, checkAnnotations, resolveGadget, type GadgetSpec, type ResolvedGadget } from './build/spec.js';

export type { GadgetSpec } from './build/spec.js';

export interface BuildOptions {
  /** The gadgets to build; default: the config's `gadgets`. */
  gadgets?: GadgetSpec[];
  /** Gadgets built at once; default: the config's `concurrency`, else the number of CPUs. */
  concurrency?: number;
  /** io.inspektor-gadget.builder.version for gadgets that do not set `igVersion`. */
  igVersion?: string;
  /** Extra annotations (like `--annotation K=V`), applied after everything but `created`. */
  annotations?: Record<string, string>;
  /** Rebuild even when the build cache has the image (the new result is still cached). */
  noCache?: boolean;
  /** Include roots searched first (like `--include DIR`), relative to the working folder. */
  include?: string[];
  /** Check gadget.yaml against the eBPF objects, as ig's build does (default true). */
  validateMetadata?: boolean;
}

export interface BuildGadgetOptions {
  igVersion?: string;
  annotations?: Record<string, string>;
  /** Rebuild even when the build cache has the image (the new result is still cached). */
  noCache?: boolean;
  /** Include roots searched first (`--include DIR`), before the spec's, the config's and $GADGET_INCLUDE. */
  include?: string[];
  /** Check gadget.yaml against the eBPF objects, as ig's build does (default true; `--no-validate-metadata`). */
  validateMetadata?: boolean;
  /** Where the spec came from, for messages (e.g. "gadget.config.ts"). */
  source?: string;
  /** What the build is doing now ("compiling program.bpf.c for amd64, arm64"), for progress on a TTY. */
  onStage?: (stage: string) => void;
  /** More refs to tag the image with (`-t` given several times). */
  alsoTag?: string[];
}

type EbpfMode = 'compile' | 'prebuilt' | 'none';

interface Inputs {
  metadataBytes?: Buffer;
  meta?: GadgetMetadata;
  /** sha256 of the big inputs, streamed: enough for the cache key. */
  hashes: { source?: string; wasm?: string; objects: Partial<Record<Arch, string>> };
  /** Read on a cache miss only (loadInputs). */
  wasm?: Buffer;
  /** For wasm from source: the toolchain and a hash list of the sources (the cache key). */
  wasmToolchain?: WasmToolchain;
  wasmSources?: string;
  objects: Partial<Record<Arch, Buffer>>;
  mode: EbpfMode;
}

/** Reads what the cache key needs (gadget.yaml, hashes of the rest); loadInputs reads the rest on a miss. */
async function readInputs(ctx: PluginContext, g: ResolvedGadget, shown: (f: string) => string): Promise<Inputs> {
  const inputs: Inputs = { hashes: { objects: {} }, objects: {}, mode: 'none' };
  if (g.metadata) inputs.metadataBytes = await readCapped(g.metadata, shown(g.metadata), 'metadata', MAX_METADATA_BYTES);
  if (g.wasm) inputs.hashes.wasm = await hashCapped(g.wasm, shown(g.wasm), 'wasm', MAX_WASM_BYTES);
  if (g.wasmSource) {
    // A missing or old toolchain is known before anything is compiled (exit 2, one sentence).
    inputs.wasmToolchain = await checkWasmToolchain(g.wasmSource, shown(g.wasmSource.file));
    inputs.wasmSources = await hashWasmSources(g.wasmSource);
  }
  for (const arch of ARCHS) {
    const file = g.objects[arch];
    if (file !== undefined) inputs.hashes.objects[arch] = await hashCapped(file, shown(file), `objects.${arch}`, MAX_OBJECT_BYTES);
  }
  const hasObjects = Object.keys(inputs.hashes.objects).length > 0;
  if (g.ebpfsource) {
    inputs.hashes.source = await hashCapped(g.ebpfsource, shown(g.ebpfsource), 'ebpfsource', MAX_SOURCE_BYTES);
    const clang = await findTool('clang');
    const strip = await findTool('llvm-strip');
    if (clang && strip) {
      inputs.mode = 'compile';
    } else if (hasObjects) {
      inputs.mode = 'prebuilt';
      const files = ARCHS.filter((a) => g.objects[a]).map((a) => shown(g.objects[a]!));
      ctx.log.info(`${g.name}: ${clang ? 'llvm-strip' : 'clang'} is not installed; using the prebuilt objects ${files.join(', ')} instead of compiling ${shown(g.ebpfsource)}`);
    } else {
      throw missingTool(clang ? 'llvm-strip' : 'clang', `compile ${shown(g.ebpfsource)}`);
    }
  } else if (hasObjects) {
    inputs.mode = 'prebuilt';
  }
  if (g.btfhub && inputs.mode === 'none') {
    throw new GadgetError(`${g.name}: btfgen needs an eBPF program, but the gadget has none`, { hint: 'drop "btfhub" or add the eBPF source', exitCode: 2 });
  }
  return inputs;
}

/** Reads the wasm module and prebuilt objects (capped); they must still have the hashes the key was made of. */
async function loadInputs(g: ResolvedGadget, inputs: Inputs, shown: (f: string) => string): Promise<void> {
  const load = async (file: string, what: string, max: number, hash: string): Promise<Buffer> => {
    const bytes = await readCapped(file, shown(file), what, max);
    if (sha256(bytes) !== hash) throw new GadgetError(`${shown(file)} (${what}) changed while the build read it`, { exitCode: 2, hint: 'run the build again once it is written' });
    return bytes;
  };
  if (g.wasm) inputs.wasm = await load(g.wasm, 'wasm', MAX_WASM_BYTES, inputs.hashes.wasm!);
  if (inputs.mode !== 'prebuilt') return;
  for (const arch of ARCHS) {
    const file = g.objects[arch];
    if (file !== undefined) inputs.objects[arch] = await load(file, `objects.${arch}`, MAX_OBJECT_BYTES, inputs.hashes.objects[arch]!);
  }
}

/**
 * Parses and checks the inputs before anything is compiled or written. A cache hit skips
 * this: the same bytes were checked when the cached image was built.
 */
function checkInputs(ctx: PluginContext, g: ResolvedGadget, inputs: Inputs, shown: (f: string) => string): void {
  if (g.metadata && inputs.metadataBytes) {
    // Accepted as ig accepts it; keys ig skips are worth a word (a typo loses its value).
    const { meta, warnings } = readMetadata(inputs.metadataBytes, shown(g.metadata));
    inputs.meta = meta;
    for (const w of warnings) ctx.log.warn(`${w.message} (${w.hint})`);
  }
  const wasmFile = g.wasm ?? g.wasmSource?.file;
  if (wasmFile && inputs.wasm) {
    const what = g.wasm ? shown(g.wasm) : `the module built from ${shown(wasmFile)}`;
    for (const p of checkWasm(inputs.wasm)) {
      if (p.severity === 'error') throw new GadgetError(`${what}: ${p.message}`, { hint: 'rebuild the wasm module; ig loads it with wazero' });
      ctx.log.warn(`${what}: ${p.message}`);
    }
  }
  for (const arch of ARCHS) {
    const bytes = inputs.objects[arch];
    if (!bytes) continue;
    const problem = checkEbpfElf(bytes, arch).find((p) => p.severity === 'error');
    if (problem) throw new GadgetError(`${shown(g.objects[arch]!)} (objects.${arch}) is not a usable eBPF object: ${problem.message}`, { hint: 'build it with clang -target bpf', exitCode: 2 });
  }
  if (inputs.mode === 'prebuilt' && ARCHS.some((a) => !inputs.objects[a])) {
    ctx.log.warn(`${g.name}: only ${ARCHS.filter((a) => inputs.objects[a]).join(', ')} has a prebuilt object; the image will have no other architecture`);
  }
}

/** Environment variables that change what clang compiles. */
const CLANG_ENV = ['CPATH', 'C_INCLUDE_PATH', 'CPLUS_INCLUDE_PATH', 'OBJC_INCLUDE_PATH', 'CCC_OVERRIDE_OPTIONS', 'COMPILER_PATH'];

async function cacheKey(g: ResolvedGadget, inputs: Inputs, builderVersion: string, extra: Record<string, string>[], includeRoots: string[], validate: boolean): Promise<string> {
  // Format 2: entries record header lookups (probes.ts); those of format 1 cannot be checked.
  // Format 3: entries record which deps are one file (cache.ts `same`); format 2's cannot.
  const key = new KeyBuilder().add('format', 'gadget-oci build 3').add('version', packageVersion()).add('mode', inputs.mode);
  // An image built without the metadata check must not satisfy a build that asks for it.
  key.add('validate-metadata', String(validate));
  key.add('builder', builderVersion);
  key.add('metadata', inputs.metadataBytes ?? '<none>');
  key.add('wasm', inputs.hashes.wasm ?? '<none>');
  if (g.wasmSource) {
    key.add('wasm-source', `${g.wasmSource.lang} ${path.relative(g.dir, g.wasmSource.file)}`).add('wasm-sources', inputs.wasmSources!);
    key.add('wasm-toolchain', inputs.wasmToolchain!.version);
  }
  // Another copy of the gadget (a worktree, a copied template) finds other headers beside it.
  key.add('folder', g.dir);
  if (inputs.mode === 'compile') {
    // The source's name ends up in the object's line info.
    key.add('source-name', path.relative(g.dir, g.ebpfsource!)).add('source', inputs.hashes.source!);
    // clang reads these (more include folders, options); the tools get the whole environment.
    key.add('clang-env', JSON.stringify(CLANG_ENV.map((name) => process.env[name] ?? null)));
    key.add('cflags', JSON.stringify(g.cflags));
    // Which folders are searched decides which header is found; the headers read are deps.
    key.add('include', JSON.stringify(includeRoots));
    key.add('clang', await toolVersion('clang')).add('llvm-strip', await toolVersion('llvm-strip'));
  } else if (inputs.mode === 'prebuilt') {
    for (const arch of ARCHS) key.add(`object-${arch}`, inputs.hashes.objects[arch] ?? '<none>');
  }
  if (g.btfhub) {
    key.add('bpftool', await toolVersion((await findTool('bpftool')) ?? 'bpftool', ['version']));
    key.add('btfhub', await btfhubFingerprint(g.btfhub, ARCHS));
  }
  const merged = Object.assign({}, ...extra) as Record<string, string>;
  key.add('annotations', JSON.stringify(Object.entries(merged).sort(([a], [b]) => (a < b ? -1 : 1))));
  // Without SOURCE_DATE_EPOCH the time differs per build; an unchanged rebuild still reuses the image.
  const epoch = sourceDateEpoch();
  key.add('created', epoch === undefined ? '<now>' : String(epoch));
  return key.digest();
}

/** gadget.yaml against each arch's object; a problem both objects share is said once for both. */
function metadataObjectProblems(meta: GadgetMetadata, objects: Partial<Record<Arch, Buffer>>): string[] {
  const PLACEHOLDER = '\u0000object\u0000';
  const archsOf = new Map<string, Arch[]>();
  for (const arch of ARCHS) {
    const bytes = objects[arch];
    if (!bytes) continue;
    for (const p of checkMetadataAgainstObject(meta, bytes, PLACEHOLDER)) archsOf.set(p, [...(archsOf.get(p) ?? []), arch]);
  }
  return [...archsOf].map(([p, archs]) => p.split(PLACEHOLDER).join(`the ${archs.join(' and ')} eBPF object${archs.length > 1 ? 's' : ''}`));
}

/** True when the index and everything it points at are still in the store. */
async function imageComplete(store: Store, index: Descriptor): Promise<boolean> {
  try {
    if (!store.hasBlob(index.digest)) return false;
    const doc = await store.readJSON<Index>(index);
    for (const m of doc.manifests) {
      if (!store.hasBlob(m.digest)) return false;
      const manifest = await store.readJSON<Manifest>(m);
      if (![manifest.config, ...manifest.layers].every((d) => store.hasBlob(d.digest))) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** Builds one gadget's image into ctx.store (untagged); `cached` says it was reused. */
async function buildImage(ctx: PluginContext, spec: GadgetSpec, opts: BuildGadgetOptions, cache: BuildCache): Promise<BuiltImage> {
  const g = await resolveGadget(spec, { cwd: ctx.cwd, source: opts.source });
  const shown = (file: string): string => {
    const rel = path.relative(ctx.cwd, file);
    return rel !== '' && !rel.startsWith('..') ? rel : file;
  };
  if (g.unknownKeys.length > 0 && g.buildFile) {
    const listed = g.unknownKeys.slice(0, 10).join(', ') + (g.unknownKeys.length > 10 ? ` and ${g.unknownKeys.length - 10} more` : '');
    ctx.log.warn(`${shown(g.buildFile)}: unknown field${g.unknownKeys.length > 1 ? 's' : ''} ${listed} ignored`);
  }
  const inputs = await readInputs(ctx, g, shown);
  const builderVersion = g.igVersion ?? opts.igVersion ?? ctx.config.igVersion ?? `gadget-oci/${packageVersion()}`;
  const extra = [g.annotations, checkAnnotations(opts.annotations, '--annotation')];
  const created = createdAnnotation();

  const includeRoots = await resolveIncludeRoots({ cli: opts.include, gadget: g.include, config: ctx.config.include, env: process.env.GADGET_INCLUDE }, ctx.cwd);
  const validate = opts.validateMetadata !== false;
  const key = await cacheKey(g, inputs, builderVersion, extra, includeRoots, validate);
  const hit = opts.noCache ? undefined : cache.get(key);
  if (hit && (await imageComplete(ctx.store, hit.index)) && (await depsUnchanged(hit))) {
    const moved = hit.lookups === undefined ? undefined : changedLookup(hit.lookups);
    if (moved === undefined) {
      ctx.log.info(`${g.name}: unchanged, reusing ${hit.index.digest} as ${g.ref}`);
      return { ref: g.ref, descriptor: hit.index, cached: true, inputs: Object.keys(hit.deps) };
    }
    ctx.log.debug(`${g.name}: ${moved} appeared or went where clang looks for headers; building again`);
  }
  ctx.signal.throwIfAborted();
  await loadInputs(g, inputs, shown);
  if (g.wasmSource) {
    ctx.log.info(`${g.name}: building ${shown(g.wasmSource.file)} to wasm with ${inputs.wasmToolchain!.version}`);
    opts.onStage?.(`building ${shown(g.wasmSource.file)} to wasm`);
    inputs.wasm = await buildWasm(g.wasmSource, inputs.wasmToolchain!, shown(g.wasmSource.file), ctx.signal);
  }
  checkInputs(ctx, g, inputs, shown);

  let ebpf: Partial<Record<Arch, Buffer>> | undefined;
  let deps: string[] = [];
  let probed: Probed | undefined;
  let compileStart = Infinity;
  if (inputs.mode === 'compile') {
    opts.onStage?.(`compiling ${shown(g.ebpfsource!)} for ${ARCHS.join(', ')}`);
    // A file stamped from here on may have been read before or after its change. (A file's time
    // lags the clock by a tick at most, less than clang takes to start reading.)
    compileStart = Date.now();
    const compiled = await compileEbpf({ dir: g.dir, source: g.ebpfsource!, shownSource: shown(g.ebpfsource!), cflags: g.cflags, includeRoots, signal: ctx.signal });
    ebpf = compiled.objects;
    deps = compiled.deps;
    probed = await probeLookups(deps, compiled.search);
    const warnings = [...new Set(Object.values(compiled.warnings))];
    for (const w of warnings) ctx.log.warn(`clang warnings for ${shown(g.ebpfsource!)}:\n${w}`);
  } else if (inputs.mode === 'prebuilt') {
    ebpf = inputs.objects;
  }

  if (validate && ebpf && inputs.meta) {
    const problems = metadataObjectProblems(inputs.meta, ebpf);
    if (problems.length > 0) {
      throw new GadgetError(`${shown(g.metadata!)} does not match the eBPF object (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n${problems.map((p) => `  ${p}`).join('\n')}`, {
        hint: 'fix gadget.yaml or the program; --no-validate-metadata builds anyway, as ig image build --validate-metadata=false does',
      });
    }
  }

  let btfgen: Partial<Record<Arch, Buffer>> | undefined;
  if (g.btfhub && ebpf) {
    opts.onStage?.(`minimising kernel BTF from ${shown(g.btfhub)}`);
    const result = await generateBtfgen({ btfhub: g.btfhub, objects: ebpf, signal: ctx.signal, onKernel: (arch, kernel) => ctx.log.debug(`${g.name}: btfgen ${arch} ${kernel}`) });
    if (result.missing.length > 0) ctx.log.warn(`${g.name}: no ${result.missing.join(', ')} kernel BTF in ${shown(g.btfhub)}; those manifests get no btfgen layer`);
    btfgen = result.layers;
  }

  const annotations = gadgetAnnotations({
    metadata: inputs.meta ? metadataAnnotations(inputs.meta) : undefined,
    metadataAnnotations: inputs.meta?.annotations,
    builderVersion,
    extra,
    created,
  });
  const image = assembleImage({ config: inputs.metadataBytes, annotations, ebpf, wasm: inputs.wasm, btfgen });
  ctx.signal.throwIfAborted();
  for (const blob of image.blobs) {
    const stored = await ctx.store.putBytes(blob.bytes, blob.descriptor.mediaType);
    if (stored.digest !== blob.descriptor.digest) throw new Error(`store returned ${stored.digest} for ${blob.descriptor.digest}`);
  }
  ctx.log.info(`${g.name}: built ${image.index.descriptor.digest} as ${g.ref}`);
  const entry: CacheEntry = { index: image.index.descriptor, deps: await hashFiles(deps), same: await sameFiles(deps), ...(probed ? { lookups: probed.record } : {}), time: new Date().toISOString() };
  const unsure = changedSince(deps, compileStart)
    ? 'a source or header changed while it was compiled'
    : probed && appearedSince(probed.present, compileStart)
    ? 'a header appeared where clang looks for headers while it compiled'
    : probed?.computed !== undefined
    ? `an include names its header through a macro (${probed.computed}), so where clang looked cannot be checked`
    : undefined;
  if (unsure) {
    ctx.log.debug(`${g.name}: ${unsure}; the build cache does not keep this image`);
    return { ref: g.ref, descriptor: image.index.descriptor, cached: false, inputs: deps };
  }
  return { ref: g.ref, descriptor: image.index.descriptor, cached: false, inputs: deps, cacheEntry: { key, value: entry } };
}

interface BuiltImage extends Artifact {
  cached: boolean;
  /** Files read from outside the store (source, headers): what `--watch` watches. */
  inputs: string[];
  cacheEntry?: { key: string; value: CacheEntry };
}

/** Tags every built image in one index.json update and remembers them in the build cache. */
async function commit(ctx: PluginContext, cache: BuildCache, built: BuiltImage[]): Promise<void> {
  if (built.length === 0) return; // nothing to tag: a missing store stays missing
  await ctx.store.tagMany(built.map((b) => ({ descriptor: b.descriptor, ref: b.ref })));
  try {
    cache.put(built.flatMap((b) => (b.cacheEntry ? [b.cacheEntry] : [])));
  } catch (err) {
    ctx.log.warn(`could not update the build cache: ${messageOf(err)}`);
  }
}

/** Builds one gadget into the store and tags it. */
export async function buildGadget(ctx: PluginContext, spec: GadgetSpec, opts: BuildGadgetOptions = {}): Promise<Artifact & { cached: boolean; inputs: string[]; refs?: string[] }> {
  const cache = new BuildCache(ctx);
  const more = (opts.alsoTag ?? []).map((ref) => buildRef(ref, '-t'));
  const bar = ctx.progress.start(1, 'build');
  let built: BuiltImage;
  try {
    built = await buildImage(ctx, spec, { onStage: (stage) => bar.tick(0, stage), ...opts }, cache);
  } finally {
    bar.done();
  }
  await commit(ctx, cache, [built, ...more.map((ref) => ({ ...built, ref, cacheEntry: undefined }))]);
  return { ref: built.ref, descriptor: built.descriptor, cached: built.cached, inputs: built.inputs, ...(more.length ? { refs: [built.ref, ...more] } : {}) };
}

/** build({ gadgets }) is held to what gadget.config.ts's gadgets are: objects, and each ref once. */
function checkGadgetList(gadgets: unknown[]): void {
  gadgets.forEach((g, i) => {
    const spec = g as { dir?: unknown; ref?: unknown } | null;
    if (spec === null || typeof spec !== 'object' || Array.isArray(spec) || typeof spec.dir !== 'string' || typeof spec.ref !== 'string') {
      throw new GadgetError(`build({ gadgets }): gadgets[${i}] is ${spec === null ? 'null' : Array.isArray(spec) ? 'a list' : typeof spec}, not { dir, ref }`, { exitCode: 2, hint: "e.g. build({ gadgets: [{ dir: 'gadgets/trace_open', ref: 'ghcr.io/me/trace_open:v1' }] })" });
    }
    buildRef(spec.ref, `gadgets[${i}].ref`);
  });
  try {
    checkDuplicateRefs(gadgets as Array<{ ref: string; dir: string }>);
  } catch (err) {
    throw isGadgetError(err) ? new GadgetError(`build({ gadgets }): ${err.message}`, { exitCode: 2, hint: err.hint }) : err;
  }
}

/** The build plugin: builds every gadget (in parallel up to `concurrency`) and returns their images. */
export function build(options: BuildOptions = {}): Plugin {
  return {
    name: 'build',
    async run(ctx: PluginContext, _input: Artifact[]): Promise<Artifact[]> {
      const gadgets = options.gadgets ?? ctx.config.gadgets ?? [];
      if (!Array.isArray(gadgets) || gadgets.length === 0) {
        throw new GadgetError('there are no gadgets to build', { hint: 'list them in gadget.config.ts (gadgets: [{ dir, ref }]) or run `gadget build DIR -t REF`', exitCode: 2 });
      }
      const source = options.gadgets ? undefined : 'gadget.config.ts';
      if (options.gadgets) checkGadgetList(options.gadgets);
      const width = options.concurrency ?? ctx.config.concurrency ?? availableParallelism();
      if (!Number.isInteger(width) || width < 1) {
        throw new GadgetError(`build: concurrency must be a finite positive integer, but it is ${String(width)}`, { hint: 'e.g. build({ concurrency: 4 })', exitCode: 2 });
      }
      const bar = ctx.progress.start(gadgets.length, 'build');
      const results: Array<BuiltImage | undefined> = new Array(gadgets.length);
      const cache = new BuildCache(ctx);
      const failures: Array<{ spec: GadgetSpec; err: unknown }> = [];
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < gadgets.length && !ctx.signal.aborted) {
          const i = next++;
          const spec = gadgets[i]!;
          try {
            const onStage = (stage: string): void => bar.tick(0, `${spec.name ?? spec.dir}: ${stage}`);
            const built = await buildImage(ctx, spec, { onStage, igVersion: options.igVersion, annotations: options.annotations, noCache: options.noCache, include: options.include, validateMetadata: options.validateMetadata, source: source && `${source} (gadget ${spec.name ?? spec.dir})` }, cache);
            results[i] = built;
            ctx.emit({ type: 'build', ref: built.ref, digest: built.descriptor.digest, cached: built.cached, inputs: built.inputs });
          } catch (err) {
            failures.push({ spec, err });
            ctx.emit({ type: 'build', gadget: spec.name ?? spec.dir, failed: true, error: messageOf(err) });
          } finally {
            bar.tick(1, spec.name ?? spec.dir);
          }
        }
      };
      try {
        await Promise.all(Array.from({ length: Math.min(width, gadgets.length) }, worker));
      } finally {
        bar.done();
      }
      ctx.signal.throwIfAborted();
      // What built is tagged even when other gadgets failed.
      const built = results.filter((r): r is BuiltImage => r !== undefined);
      await commit(ctx, cache, built);
      if (failures.length === 1) throw failures[0]!.err;
      if (failures.length > 1) {
        const lines = failures.map(({ spec, err }) => `  ${spec.name ?? spec.dir}: ${messageOf(err)}`);
        const exitCode = failures.every(({ err }) => err instanceof GadgetError && err.exitCode === 2) ? 2 : 1;
        throw new GadgetError(`${failures.length} of ${gadgets.length} gadgets failed to build:\n${lines.join('\n')}`, { exitCode, hint: 'fix them one by one; each error names its file' });
      }
      return built.map((b) => ({ ref: b.ref, descriptor: b.descriptor }));
    },
  };
}
