// import and export: the graph copy between the store and an OCI layout (a folder or a tar).
import { createReadStream, createWriteStream, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { isGzipFile, readTar } from '../lib/archive/tar.js';
import { GadgetError, messageOf } from '../lib/errors.js';
import { copyGraph, CopySession, readAll, type CopyStats } from '../lib/oci/copy.js';
import { DAMAGED_HINT } from '../lib/oci/digest.js';
import { ANN_REF_NAME, COSIGN_SIG_ARTIFACT, isManifestType, NOTATION_SIGNATURE, SIGSTORE_BUNDLE } from '../lib/oci/mediatypes.js';
import { isSignatureTag } from '../lib/oci/reference.js';
import { MAX_MANIFEST_BYTES } from '../lib/oci/target.js';
import type { Descriptor, Manifest } from '../lib/oci/types.js';
import type { Progress, ProgressBar } from '../lib/progress.js';

import { tempName, writeVerifiedFile } from './files.js';
import { BUNDLE_DAMAGED, BundleSource, LayoutEntries } from './bundle-source.js';
import { LayoutSource } from './layout-source.js';
import { BundleDestination } from './bundle-destination.js';
import { taggedSubject } from './bundle-roots.js';
import { IncompleteGraphError, storeKey, storeState, TAG_ATTEMPTS, type LazyStore, type Store } from './store.js';
import { makeFolders } from '../lib/folders.js';
import { processAlive } from './temps.js';

export interface ImportResult {
  tags: string[];
  /** Untagged entries of the source whose content is absent there (ig's store has such). */
  skipped: string[];
  /**
   * `entry`: the entry's tag (or digest, untagged); `name`, for a signature, what the user knows
   * it as: the image's (`REF's signature sha256-<hex>.sig`, see nameOf).
   */
  failed: Array<{ entry: string; name?: string; error: string }>;
  stats: CopyStats;
}

/**
 * A private working folder in the store's tmp folder (created if the store, e.g. ig's, has
 * none). Its name carries our pid, so fsck leaves it alone while this process runs.
 */
function workDir(store: Store, what: string): string {
  const dir = tempName(store.tmpDir, what);
  makeFolders(dir);
  return dir;
}

/** Imports every entry of an OCI layout folder or tar: tags, signatures and untagged roots. */
export interface TransferOptions {
  signal?: AbortSignal;
  concurrency?: number;
  /** Progress: images done and bytes moved. */
  progress?: Progress;
}

/**
 * `store`: the store, or a function that opens it when first needed (the CLI's: a bad source is
 * refused before the store is made).
 */
export async function importImages(store: Store | LazyStore, source: string, opts: TransferOptions = {}): Promise<ImportResult> {
  const st = statSync(source, { throwIfNoEntry: false });
  if (!st) throw new GadgetError(`${source} does not exist`, { exitCode: 2 });
  if (st.isDirectory()) return importLayout(store, new LayoutSource(source), source, opts);
  if (!st.isFile()) throw new GadgetError(`${source} is neither a folder nor a tar file`, { exitCode: 2 });
  if (!isGzipFile(source)) {
    // A plain tar is read in place: every blob checked in one pass before anything is written
    // (a tampered tar changes nothing), then copied from the file; no unpacked copy.
    const bundle = await BundleSource.open(source);
    const bar = opts.progress?.start(bundle.digests().length, 'check');
    try {
      const onBlob = (size: number): void => {
        bar?.bytes?.(size);
        bar?.tick(1);
      };
      await bundle.checkBlobs({ signal: opts.signal, onBlob });
    } finally {
      bar?.done();
    }
    return importLayout(store, bundle, source, opts);
  }
  // A gzip stream cannot be read in place: it is unpacked (and checked) first, in the store (on
  // the file system its blobs go to), or, while there is no store yet, in the system's temporary
  // folder: a tar that turns out bad then leaves no store behind. There it is named after this
  // process (gadget-import-<pid namespace>-<pid>-XXXXXX), as the store's own temporary files are: one that a
  // killed import left is removed by the next import once its process is gone.
  removeStaleImportDirs();
  const tmp = typeof store === 'function' && storeState(store.root) !== 'store' ? mkdtempSync(join(tmpdir(), `gadget-import-${pidNamespace()}-${process.pid}-`)) : workDir(storeOf(store), 'import');
  try {
    await extractLayoutTar(source, tmp, opts.signal);
    // Messages name the tar, never the temporary folder it was unpacked to.
    return await importLayout(store, new LayoutSource(tmp, source), source, opts);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const IMPORT_DIR = /^gadget-import-(\d+)-(\d+)-[A-Za-z0-9]{6}$/;

/**
 * The inode of this process's PID namespace (0 when unknown): a pid means something only
 * inside its own namespace, and /tmp may be shared with a container or the host, whose live
 * processes this one cannot see.
 */
function pidNamespace(): number {
  try {
    return Number(/\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Removes the gzip import folders in the system's temporary folder whose process is gone. */
function removeStaleImportDirs(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  const namespace = pidNamespace();
  for (const name of names) {
    const [, ns, pid] = IMPORT_DIR.exec(name) ?? [];
    // Only a folder of this PID namespace can be judged by its pid; a live pid (or one reused) keeps it.
    if (!pid || !namespace || Number(ns) !== namespace || processAlive(Number(pid))) continue;
    try {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    } catch {
      // another user's, or being removed by another import: not ours to worry about
    }
  }
}

function storeOf(store: Store | LazyStore): Store {
  return typeof store === 'function' ? store() : store;
}

/** What import reads: a layout folder, or a tar (read in place, or unpacked when gzip). */
type ImportSource = LayoutSource | BundleSource;

/** `source`: the folder or tar as the user named it, for messages. */
async function importLayout(store: Store | LazyStore, layout: ImportSource, source: string, opts: TransferOptions): Promise<ImportResult> {
  // Bad input is refused before anything is written (tags, blobs, the store itself).
  const refs = await checkLayout(layout);
  refuseNothingToImport(layout, refs, source);
  // Interrupted while the source was read: no store is made for nothing.
  opts.signal?.throwIfAborted();
  const bar = opts.progress?.start(layout.entries.length, 'import');
  try {
    return await importEntries(storeOf(store), layout, refs, opts, bar);
  } finally {
    bar?.done();
  }
}

async function importEntries(store: Store, layout: ImportSource, refs: Map<Descriptor, string>, opts: TransferOptions, bar: ProgressBar | undefined): Promise<ImportResult> {
  const result: ImportResult = { tags: [], skipped: [], failed: [], stats: { copied: 0, skipped: 0, bytes: 0 } };
  const failedDigests = new Set<string>();
  const copyEntries = async (entries: Descriptor[]): Promise<Array<{ descriptor: Descriptor; ref: string }>> => {
    // A session per round: a session remembers what it copied, and a re-copy must look again.
    const session = new CopySession(opts.concurrency ?? 8);
    // Every entry's graph is copied at once; the session bounds the blob transfers.
    const outcomes = await Promise.all(
      entries.map(async (entry) => {
        const ref = refs.get(entry);
        if (!ref && !layout.has(entry.digest)) return { skipped: entry.digest };
        try {
          await copyGraph(layout, store, entry, [], { session, signal: opts.signal, onBytes: bar?.bytes && ((n) => bar.bytes!(n)) });
          bar?.tick(1, ref ?? entry.digest);
          return ref ? { tagged: { descriptor: entry, ref } } : {};
        } catch (err) {
          failedDigests.add(entry.digest);
          return { failed: await failure(layout, entry, ref, messageOf(err)) };
        }
      }),
    );
    result.stats.copied += session.stats.copied;
    result.stats.skipped += session.stats.skipped;
    result.stats.bytes += session.stats.bytes;
    const tagged: Array<{ descriptor: Descriptor; ref: string }> = [];
    for (const o of outcomes) {
      if (o.skipped) result.skipped.push(o.skipped);
      if (o.failed) result.failed.push(o.failed);
      if (o.tagged) tagged.push(o.tagged);
    }
    return tagged;
  };
  let tagged = await copyEntries(layout.entries);
  // Interrupted: what was copied stays (untagged, for gc or the next import); nothing is tagged.
  opts.signal?.throwIfAborted();
  tagged = await withoutOrphans(tagged, failedDigests, layout, result);
  // One index.json update for all tags, so an interrupted import leaves no half of them. The
  // store checks under its lock that each graph is whole; content a concurrent gc removed
  // since the copy is copied again (Store.exists sees the gap), then the tags are retried.
  for (let attempt = 1; ; attempt++) {
    try {
      await store.tagMany(tagged);
      break;
    } catch (err) {
      if (!(err instanceof IncompleteGraphError)) throw err;
      const incomplete = new Set(err.incomplete.map((i) => i.ref));
      const redo = tagged.filter((t) => incomplete.has(storeKey(t.ref)));
      if (attempt >= TAG_ATTEMPTS) {
        for (const t of redo) result.failed.push(await failure(layout, t.descriptor, t.ref, `its content was removed from ${store.name} (by a concurrent gc) after it was copied, ${attempt} times; it was not tagged`));
        tagged = tagged.filter((t) => !incomplete.has(storeKey(t.ref)));
        await store.tagMany(tagged);
        break;
      }
      const recopied = await copyEntries(redo.map((t) => t.descriptor));
      tagged = [...tagged.filter((t) => !incomplete.has(storeKey(t.ref))), ...recopied];
    }
  }
  result.tags = [...new Set(tagged.map((t) => storeKey(t.ref)))]; // a layout may list one tag twice
  return result;
}

/**
 * The tags to set without the signature tags (`sha256-<hex>.sig`, .att, .sbom) of an image that
 * failed, up the chain: the store never gets a signature without its image, as a pull never
 * copies one. Each is failed, named as the image's; its content stays for the next import.
 */
async function withoutOrphans(tagged: Array<{ descriptor: Descriptor; ref: string }>, failedDigests: Set<string>, layout: ImportSource, result: ImportResult): Promise<Array<{ descriptor: Descriptor; ref: string }>> {
  let kept = tagged;
  for (let dropped = true; dropped; ) {
    const orphans = kept.filter((t) => failedDigests.has(taggedSubject(t.ref) ?? ''));
    dropped = orphans.length > 0;
    for (const t of orphans) {
      failedDigests.add(t.descriptor.digest);
      result.failed.push(await failure(layout, t.descriptor, t.ref, 'not imported: the image it belongs to failed'));
    }
    kept = kept.filter((t) => !orphans.includes(t));
  }
  return kept;
}

/** A failed entry of the layout: its tag or digest, and (for a signature) the name that says whose it is. */
async function failure(layout: ImportSource, entry: Descriptor, ref: string | undefined, error: string): Promise<ImportResult['failed'][number]> {
  const own = ref ?? entry.digest;
  const name = await nameOf(layout, entry, ref);
  return name === own ? { entry: own, error } : { entry: own, name, error };
}

/** What a signature tag is, by its suffix (bundle-roots.ts's taggedSubject says what it is about). */
const TAG_KINDS: Array<[string, string]> = [['.sig', 'signature'], ['.att', 'attestation'], ['.sbom', 'SBOM'], ['', 'referrers']];
const SIGNATURE_TYPES = [COSIGN_SIG_ARTIFACT, SIGSTORE_BUNDLE, NOTATION_SIGNATURE];

/**
 * How a failure names an entry of the layout: an image by its tag (or digest); a signature,
 * which the user does not know by its tag `sha256-<hex>.sig` (or, as an untagged OCI 1.1
 * referrer, by its digest), as the image's it belongs to: `myorg/x:v1's signature
 * sha256-<hex>.sig` (a signature of a signature: `myorg/x:v1's signature sha256:...'s signature
 * sha256:...`). Read only when something failed.
 */
async function nameOf(layout: ImportSource, entry: Descriptor, ref: string | undefined, depth = 0): Promise<string> {
  const own = ref ?? entry.digest;
  let subject: string | undefined;
  let kind: string;
  if (ref !== undefined) {
    subject = taggedSubject(ref);
    kind = TAG_KINDS.find(([suffix]) => ref.endsWith(suffix))![1];
  } else {
    const manifest = await readManifest(layout, entry);
    subject = manifest?.subject?.digest;
    const type = entry.artifactType ?? manifest?.artifactType ?? manifest?.config?.mediaType;
    kind = SIGNATURE_TYPES.includes(type ?? '') ? 'signature' : 'referrer';
  }
  if (typeof subject !== 'string') return own; // an image, or an entry that refers to nothing
  const tagOf = (e: Descriptor): string | undefined => e.annotations?.[ANN_REF_NAME];
  const about = layout.entries.filter((e) => e.digest === subject && e !== entry);
  // The image the user knows; else the signature (or other entry) it signs, named the same way.
  const image = about.find((e) => tagOf(e) !== undefined && taggedSubject(tagOf(e)!) === undefined);
  const signed = image ?? (depth < 3 ? about[0] : undefined);
  const of = signed ? await nameOf(layout, signed, tagOf(signed), depth + 1) : subject;
  return `${of}'s ${kind} ${own}`;
}

/** The manifest of an untagged entry, if it can be read and parsed (for its subject and type). */
async function readManifest(layout: ImportSource, entry: Descriptor): Promise<Manifest | undefined> {
  if (!isManifestType(entry.mediaType) || !layout.has(entry.digest)) return undefined;
  try {
    return JSON.parse((await readAll(await layout.fetch(entry), MAX_MANIFEST_BYTES, entry.digest)).toString('utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

/**
 * A layout that tags no image (an empty index.json, only untagged entries or signature tags)
 * has nothing to import: an error (exit 1) naming it, before anything is written, as a sync
 * from such a bundle fails ("there is no tag in bundle FILE"); an import is never an empty
 * success.
 */
function refuseNothingToImport(layout: ImportSource, refs: Map<Descriptor, string>, source: string): void {
  const image = (ref: string): boolean => !isSignatureTag(ref) && !isSignatureTag(ref.split(/[:/]/).pop()!);
  if ([...refs.values()].some(image)) return;
  const n = layout.entries.length;
  const why = n === 0 ? 'its index.json lists nothing' : `its index.json tags no image among its ${n} ${n === 1 ? 'entry' : 'entries'}`;
  throw new GadgetError(`there is no image in ${source}: ${why}`, {
    hint: 'an image is an index.json entry with an org.opencontainers.image.ref.name annotation (signature tags are not images): `gadget export REF... -o FILE.tar` writes images with their tags, as does skopeo to `oci:DIR:REF`',
  });
}

/** For a layout whose index.json or manifests are malformed: fix it where it was made. */
const LAYOUT_HINT = 'the layout is malformed where it was written: write it again with `gadget export`, `skopeo copy ... oci:DIR:REF` or `ig image export`';

/**
 * Refuses a layout that is not what it claims before anything is copied: two digests under
 * one ref name (both named), malformed references, and manifests whose content disagrees with
 * their media type or cannot be followed. Returns each entry's store key (tagged entries).
 */
async function checkLayout(layout: ImportSource): Promise<Map<Descriptor, string>> {
  const refs = new Map<Descriptor, string>();
  const byRef = new Map<string, string>();
  for (const entry of layout.entries) {
    const ref = entry.annotations?.[ANN_REF_NAME];
    if (ref === undefined) continue;
    if (typeof ref !== 'string') throw new GadgetError(`${layout.name}: index.json has a ref name that is not a string`, { hint: LAYOUT_HINT });
    let key: string;
    try {
      key = storeKey(ref); // a malformed reference fails before anything is copied
    } catch (err) {
      throw new GadgetError(`${layout.name}: index.json names ${JSON.stringify(ref)}, which is not an image reference (${messageOf(err)}); nothing was imported`, { hint: LAYOUT_HINT });
    }
    const other = byRef.get(key);
    if (other !== undefined && other !== entry.digest) {
      throw new GadgetError(`${layout.name}: index.json names ${ref} twice, with two digests (${other} and ${entry.digest}); nothing was imported`, {
        hint: 'keep one of the two entries in index.json',
      });
    }
    byRef.set(key, entry.digest);
    refs.set(entry, ref);
  }
  const checked = new Set<string>();
  const visit = async (d: Descriptor, path: string): Promise<void> => {
    if (checked.has(d.digest) || !isManifestType(d.mediaType) || !layout.has(d.digest)) return;
    checked.add(d.digest);
    for (const [i, child] of (await layout.checkedChildren(d, path)).entries()) await visit(child, `${path}/${i}`);
  };
  for (const [i, entry] of layout.entries.entries()) await visit(entry, `index.json entry ${i}`);
  return refs;
}

/**
 * Unpacks a (gzip) layout tar into `dir`, refusing anything but the layout's own files with the
 * sentences (and hints) the plain-tar reader gives (bundle-source.ts's LayoutEntries).
 */
async function extractLayoutTar(file: string, dir: string, signal?: AbortSignal): Promise<void> {
  const where = file;
  makeFolders(join(dir, 'blobs', 'sha256'));
  const tmp = join(dir, '.partial');
  await mkdir(tmp);
  const entries = new LayoutEntries(where);
  // The plain-tar reader checks every header before any content: so a blob that fails its
  // check here does not end the read, the rest of the headers are checked first (bodies
  // skipped), and a refused entry after it (a second copy of that very blob, say) is what is
  // reported, as for the same tar unpacked.
  let damaged: unknown;
  // Ctrl-C stops the read where it is (the file stream is destroyed), not after the whole tar:
  // the reader's own message for a destroyed stream gives way to the interrupt.
  try {
    for await (const entry of readTar(createReadStream(file, { signal }), { where })) {
      signal?.throwIfAborted();
      const kind = entries.classify(entry);
      if (kind === undefined || damaged !== undefined) continue;
      if (kind === 'oci-layout' || kind === 'index.json') {
        await pipeline(entry.body, createWriteStream(join(dir, kind)));
      } else {
        // Verified while extracting: a tampered blob fails before the store is touched.
        const path = `blobs/sha256/${kind.digest.slice('sha256:'.length)}`;
        try {
          await writeVerifiedFile(join(dir, path), tmp, { digest: kind.digest, size: entry.size }, entry.body, `${where}: ${path}`, signal);
        } catch (err) {
          // Content that does not match; anything else (a cut stream, a full disk) ends the read.
          if (signal?.aborted || !(err instanceof GadgetError && err.hint === DAMAGED_HINT)) throw err;
          // The digest check's hint speaks of stores and registries: this is the bundle's damage.
          damaged = new GadgetError(err.message, { cause: err, hint: BUNDLE_DAMAGED });
        }
      }
    }
  } catch (err) {
    signal?.throwIfAborted();
    throw err;
  }
  if (damaged !== undefined) throw damaged;
  await rm(tmp, { recursive: true, force: true });
}

export interface ExportResult {
  file: string;
  tags: string[];
  stats: CopyStats;
}

/**
 * Writes the images (with their signatures) as an OCI layout tar: the bundle a sync from the
 * store to a new file writes, so the same images give the same bytes (tags in sorted order,
 * blobs sorted by digest, fixed tar metadata). The tar is read from the store as it is
 * written, each blob checked on the way; an earlier file is replaced only when all went well.
 */
export async function exportImages(store: Store, refs: string[], outFile: string, opts: TransferOptions = {}): Promise<ExportResult> {
  if (refs.length === 0) throw new GadgetError('export needs at least one reference', { exitCode: 2 });
  const roots = [...new Set(refs.map((r) => storeKey(r)))].sort().map((key) => ({ key, descriptor: store.resolveRef(key) }));
  const bundle = await BundleDestination.open(outFile, { replace: true, store }); // refuses a non-regular target or one inside the store
  bundle.readsFrom(store);
  const session = new CopySession(8);
  const bar = opts.progress?.start(roots.length, 'export');
  try {
    for (const { key, descriptor } of roots) {
      await copyGraph(store, bundle, descriptor, [key], { session, referrers: true, signal: opts.signal });
      bar?.tick(1, key);
    }
    await bundle.write(opts.signal, bar?.bytes && ((n: number) => bar.bytes!(n)));
  } finally {
    bundle.close();
    bar?.done();
  }
  return { file: outFile, tags: roots.map((r) => r.key), stats: session.stats };
}

