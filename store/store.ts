// The local store: an OCI image layout on disk (the truth) with a SQLite index beside it.
// Blobs are written without a lock (content-addressed, atomic rename); every change of
// index.json happens inside an IMMEDIATE SQLite transaction, which is the lock that several
// gadget processes share, and which the OS releases if a process dies.
//
// gc against concurrent writers: a writer copies blobs without the lock, then tags under it;
// gc deletes only under the same lock. So the one check that matters is made under the lock:
// tagMany refuses a root whose whole graph is not present (IncompleteGraphError) instead of
// writing a dangling tag, and gc re-reads the tags under the lock before it deletes anything.
// Either the tag is written first (gc then sees it and keeps its graph) or gc deletes first
// (the tag then fails, and import re-copies what is missing). Blob age (--grace) only spares
// writers that re-copy: exists() refreshes a reused blob's mtime, and gc keeps everything a
// young manifest refers to. See maintenance.ts for gc's side.
import { BlobUpload } from './upload.js';
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { GadgetError } from '../lib/errors.js';
import { readAll } from '../lib/oci/copy.js';
import { isDigest, sha256 } from '../lib/oci/digest.js';
import { ANN_REF_NAME, isManifestType } from '../lib/oci/mediatypes.js';
import { isSignatureTag, parseRef } from '../lib/oci/reference.js';
import { MAX_MANIFEST_BYTES, type Referrer, type Target } from '../lib/oci/target.js';
import type { Descriptor } from '../lib/oci/types.js';
import { closeQuietly, descriptorOfEntry, discardDamagedDatabase, ENTRIES_INDEXES, ENTRIES_TABLE, getMeta, isDamagedDatabase, setMeta, withDatabase, statement, type DB, type EntryRow, type ManifestRow, type OpenDatabaseOptions } from './db.js';
import { indexEntry, referrerEntry, setTag } from './entries.js';
import { makeFolders } from '../lib/folders.js';
import { fsyncDirSync, parseTempName, writeFileAtomicSync, writeVerifiedFile } from './files.js';
import { graphGaps } from './graph.js';
import { Indexer } from './indexer.js';
import { removeStaleTemps } from './temps.js';
import { blobPath, checkLayoutFile, indexFingerprint, initLayout, LAYOUT_FILE, OWN_DIR, readIndexFile, STORE_FOLDER_HINT, writeIndexFile } from './layout.js';
import { readRegular, regularFile, streamRegular } from './regular-files.js';

export interface ImageRecord {
  ref: string;
  digest: string;
  mediaType: string;
  artifactType?: string;
  platforms: string[];
  size: number;
  created?: string;
  title?: string;
}

/** What list() shows of a tagged manifest or index (one row per manifest). */
interface ManifestSummary {
  artifact_type: string | null;
  graph_size: number | null;
  created: string | null;
  title: string | null;
  /** `os/arch,os/arch` of an index's entries. */
  platforms: string | null;
}

export interface OpenStoreOptions {
  /**
   * Create the folder and the layout when they are missing (default true: the commands that
   * write new content). With false (the commands that only read, or change what is already
   * stored), a missing folder is a NoStoreError (exit 2) and nothing is created. Either way an
   * existing folder that is empty (or holds an interrupted creation's parts) becomes an empty
   * store; one holding anything else is not an OCI image layout (exit 2).
   */
  create?: boolean;
}

/** What a reader gets for a store folder that does not exist (see OpenStoreOptions.create). */
export class NoStoreError extends GadgetError {
  constructor(readonly root: string) {
    super(`there is no store at ${root}`, { exitCode: 2, hint: NO_STORE_HINT });
  }
}

/** How a store comes to be, for the hints of a missing one. */
export const NO_STORE_HINT = 'a store is made by the first build, pull, import or sync into it';

/** Blobs up to this size are read whole by fetch() (see there). */
const SMALL_BLOB_BYTES = 1 << 20;

/** A store opened (and made, when missing) on first use; `root` is where it is or will be. */
export type LazyStore = (() => Store) & { readonly root: string };

/**
 * What is at `dir`: a store, no folder, or an empty folder (a layout without index.json and
 * blobs is new, or its creation was interrupted). A folder of other files is refused (exit 2):
 * nobody makes a store in it.
 */
export function storeState(dir: string): 'store' | 'missing' | 'empty' {
  const root = resolve(dir);
  if (!checkIsFolder(root)) return 'missing';
  if (existsSync(join(root, 'index.json')) || hasBlobs(root)) return 'store';
  checkEmptyFolder(root);
  return 'empty';
}

/** Opens the store at `dir`, and creates it if needed unless `opts.create` is false. */
export async function openStore(dir: string, opts: OpenStoreOptions = {}): Promise<Store> {
  return Store.open(dir, opts);
}

/** How many times a writer copies again what a concurrent gc removed before it tags, then gives up. */
export const TAG_ATTEMPTS = 4;

/** A tag refused because the content it would point at is not all in the store. */
export class IncompleteGraphError extends GadgetError {
  constructor(
    readonly incomplete: Array<{ ref: string; digest: string; missing: string[] }>,
    storeName: string,
  ) {
    const first = incomplete[0]!;
    const more = incomplete.length > 1 ? ` (and ${incomplete.length - 1} more: ${incomplete.slice(1).map((i) => i.ref).join(', ')})` : '';
    super(`cannot tag ${first.ref}: the content of ${first.digest} is not all in ${storeName} (${first.missing[0]} is missing${first.missing.length > 1 ? `, and ${first.missing.length - 1} more` : ''})${more}; nothing was tagged`, {
      hint: 'the content was removed (by gc) or never copied: pull or import the image again',
    });
  }
}

/** The key under which an entry's ref is looked up: full refs normalised, signature tags bare. */
export function storeKey(reference: string): string {
  if (isSignatureTag(reference)) return reference;
  return parseRef(reference).toString();
}

export class Store implements Target {
  readonly name: string;
  /** Every blob was checked against its descriptor when written (serve checks a manifest's children too). */
  readonly holdsTrueSizes = true;
  private indexer: Indexer;
  private blobsDirty = false;
  private writing = false;

  private constructor(
    readonly root: string,
    private database: DB,
    private readonly databasePlace: { file: string } & OpenDatabaseOptions,
  ) {
    this.name = `store ${root}`;
    this.indexer = new Indexer(database, root);
  }

  /** The SQLite index (replaced only by reindex() when its file is damaged). */
  get db(): DB {
    return this.database;
  }

  static open(dir: string, opts: OpenStoreOptions = {}): Store {
    const root = resolve(dir);
    const state = storeState(root);
    if (state !== 'store') {
      // A reader makes no store where there was none.
      if (state === 'missing' && opts.create === false) throw new NoStoreError(root);
      initLayout(root);
    } else {
      checkLayoutFile(root);
      if (!existsSync(join(root, 'blobs', 'sha256'))) makeFolders(join(root, 'blobs', 'sha256'), STORE_FOLDER_HINT);
    }
    // The index is derived data: a damaged file (found when it is opened, or when it is first
    // read) is replaced and rebuilt from the layout, as a missing one is (see db.ts).
    const place = databaseFile(root);
    return withDatabase(place.file, place, (db) => {
      const store = new Store(root, db, place);
      store.refreshIfChanged();
      return store;
    });
  }

  close(): void {
    this.db.close();
  }

  // ------------------------------------------------------------- blobs

  blobPath(digest: string): string {
    return blobPath(this.root, digest);
  }

  hasBlob(digest: string): boolean {
    return regularFile(this.blobPath(digest)) !== undefined;
  }

  get tmpDir(): string {
    return join(this.root, OWN_DIR, 'tmp');
  }

  async fetch(descriptor: Descriptor): Promise<Readable> {
    const file = this.blobPath(descriptor.digest);
    const size = regularFile(file)?.size;
    if (size === undefined) throw new GadgetError(`${this.name}: blob ${descriptor.digest} is missing`, { hint: 'run `gadget fsck` to see what is damaged' });
    // A small blob is read in one synchronous call: as a stream it would take four trips
    // through libuv's thread pool (open, read, read to the end, close), which cost more CPU
    // than the read. The reader checks its digest either way.
    if (size <= SMALL_BLOB_BYTES) return Readable.from(size ? [readRegular(file)] : [], { objectMode: false });
    // Reads of 64 KiB to 1 MiB, by the blob's size: a 16 KiB blob does not take a 1 MiB
    // buffer, and a descriptor that understates the size does not make tiny reads.
    return streamRegular(file, { highWaterMark: Math.min(1 << 20, Math.max(descriptor.size, 64 * 1024)) });
  }

  /**
   * Whether the blob is here with its size; for a manifest or index, whether its whole graph
   * is (as a registry's "manifest exists" implies its children), so a copy heals what is
   * missing. A blob found here is touched: gc's --grace then spares it while the writer that
   * reuses it gets to its tag (the tag's check under the lock is what guarantees it).
   */
  async exists(descriptor: Descriptor): Promise<boolean> {
    const present = isManifestType(descriptor.mediaType)
      ? graphGaps(this.db, this.root, descriptor).length === 0
      : regularFile(this.blobPath(descriptor.digest))?.size === descriptor.size;
    if (present) touch(this.blobPath(descriptor.digest));
    return present;
  }

  /** The digests under `descriptor` that are not in the store (empty when its whole graph is). */
  missingFrom(descriptor: Descriptor): string[] {
    return graphGaps(this.db, this.root, descriptor);
  }

  /**
   * Before this process's first write: the temporary folder exists, and what dead writers left
   * in it is removed (their pid is in the name; see temps.ts).
   */
  private beginWrite(): void {
    if (this.writing) return;
    makeFolders(this.tmpDir, STORE_FOLDER_HINT);
    removeStaleTemps(this.root);
    this.writing = true;
  }

  /** Runs `work` under the store's write lock (the IMMEDIATE transaction), index up to date. */
  withWriteLock<T>(work: () => T): T {
    this.beginWrite();
    return this.db.transaction(() => {
      if (getMeta(this.db, 'index_fingerprint') !== indexFingerprint(this.root)) this.reloadEntries();
      return work();
    }).immediate();
  }

  async push(descriptor: Descriptor, content: Readable, signal?: AbortSignal): Promise<void> {
    if (this.holdsBlob(descriptor)) {
      content.resume();
    } else {
      // A manifest is kept in memory while written: it is indexed from these bytes, not re-read.
      const manifest = isManifestType(descriptor.mediaType) && descriptor.size <= MAX_MANIFEST_BYTES ? await readAll(content, descriptor.size, descriptor.digest) : undefined;
      await this.writeBlob(descriptor, manifest ? Readable.from([manifest]) : content, signal);
      if (manifest) return this.afterManifestPush(descriptor, manifest);
    }
    if (isManifestType(descriptor.mediaType)) this.afterManifestPush(descriptor);
  }

  /**
   * A blob unless the store holds it, found out with the one stat the write needs anyway
   * (copyGraph then asks no existence question first; see Target.pushBlob). `open` is called
   * only when the bytes are needed.
   */
  async pushBlob(descriptor: Descriptor, open: () => Promise<Readable>, signal?: AbortSignal): Promise<'copied' | 'skipped'> {
    if (this.holdsBlob(descriptor)) return 'skipped';
    await this.writeBlob(descriptor, await open(), signal);
    return 'copied';
  }

  /** Whether the blob is here with its size; one that is, is touched (young again for gc's --grace). */
  private holdsBlob(descriptor: Descriptor): boolean {
    const file = this.blobPath(descriptor.digest);
    if (regularFile(file)?.size !== descriptor.size) return false;
    touch(file);
    return true;
  }

  private async writeBlob(descriptor: Descriptor, content: Readable, signal?: AbortSignal): Promise<void> {
    this.beginWrite();
    await writeVerifiedFile(this.blobPath(descriptor.digest), this.tmpDir, descriptor, content, descriptor.digest, signal);
    this.blobsDirty = true;
  }

  /** A blob that arrives in pieces (gadget serve's chunked uploads); see upload.ts. */
  createUpload(): BlobUpload {
    this.beginWrite();
    return new BlobUpload(this);
  }

  /** Writes bytes as a blob of `mediaType` and returns its descriptor. */
  async putBytes(bytes: Buffer, mediaType: string): Promise<Descriptor> {
    const descriptor: Descriptor = { mediaType, digest: sha256(bytes), size: bytes.length };
    // A small copy already there (a signature's payload, a config) is reused only when it holds
    // these very bytes: one damaged on disk is replaced, at the cost of one small read.
    if (!this.hasBlob(descriptor.digest) || (bytes.length <= SMALL_BLOB_BYTES && !sameBytes(this.blobPath(descriptor.digest), bytes))) {
      this.beginWrite();
      writeFileAtomicSync(this.blobPath(descriptor.digest), bytes, this.tmpDir);
      this.blobsDirty = true;
    } else {
      touch(this.blobPath(descriptor.digest)); // reused: young again for gc's --grace
    }
    if (isManifestType(mediaType)) this.afterManifestPush(descriptor);
    return descriptor;
  }

  /** A verified copy of a blob's bytes (for manifests, configs and other small blobs). */
  async readBytes(what: Descriptor | string, maxBytes = MAX_MANIFEST_BYTES): Promise<Buffer> {
    const digest = typeof what === 'string' ? what : what.digest;
    const file = this.blobPath(digest);
    const size = regularFile(file)?.size;
    if (size === undefined) throw new GadgetError(`${this.name}: blob ${digest} is missing`, { hint: 'run `gadget fsck` to see what is damaged' });
    if (size > maxBytes) throw new GadgetError(`${this.name}: blob ${digest} is ${size} bytes, more than the ${maxBytes} allowed here`);
    const bytes = readRegular(file);
    if (sha256(bytes) !== digest) throw new GadgetError(`${this.name}: blob ${digest} is corrupt (its content has another digest)`, { hint: 'run `gadget fsck --repair`' });
    if (typeof what !== 'string' && bytes.length !== what.size) throw new GadgetError(`${this.name}: blob ${digest} has ${bytes.length} bytes, its descriptor says ${what.size}`);
    return bytes;
  }

  async readJSON<T>(descriptor: Descriptor | string): Promise<T> {
    const bytes = await this.readBytes(descriptor);
    try {
      return JSON.parse(bytes.toString('utf8')) as T;
    } catch {
      throw new GadgetError(`${this.name}: ${typeof descriptor === 'string' ? descriptor : descriptor.digest} is not valid JSON`);
    }
  }

  /** `written`: the manifest's verified bytes, when they were just stored. */
  private afterManifestPush(descriptor: Descriptor, written?: Buffer): void {
    this.indexer.index(descriptor, written);
    // An OCI 1.1 referrer (a signature) has no tag: an untagged index.json entry keeps it
    // rooted, as oras and ig keep it.
    const row = this.manifestRow(descriptor.digest);
    if (row?.subject && !this.entriesOf(descriptor.digest).length) {
      const entry = referrerEntry(descriptor, row.artifact_type);
      this.mutateEntries((entries) => {
        // Under the lock, as for a tag: an untagged root whose graph gc just removed would dangle.
        const missing = graphGaps(this.db, this.root, entry);
        if (missing.length) throw new IncompleteGraphError([{ ref: `the referrer ${entry.digest}`, digest: entry.digest, missing }], this.name);
        entries.push({ ref: null, descriptor: entry });
      });
    }
  }

  // ------------------------------------------------------------- tags

  /** Re-reads index.json into the database when another program (or process) changed it. */
  refreshIfChanged(): void {
    const fingerprint = indexFingerprint(this.root);
    if (getMeta(this.db, 'index_fingerprint') === fingerprint) return;
    this.db.transaction(() => this.reloadEntries()).immediate();
  }

  /**
   * Rebuilds the whole database from the layout (`gadget fsck --reindex`). A damaged file (every
   * page is checked first) is replaced by a new one, as Store.open replaces it.
   */
  reindex(): void {
    const rebuild = (): void => {
      const check = this.db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw Object.assign(new Error(`the index failed its check: ${String(check)}`), { code: 'SQLITE_CORRUPT' });
      this.db.transaction(() => {
        this.db.exec('DELETE FROM manifests; DELETE FROM children; DELETE FROM annotations;');
        setMeta(this.db, 'index_hash', '');
        this.reloadEntries();
      }).immediate();
    };
    try {
      return rebuild();
    } catch (err) {
      if (!isDamagedDatabase(err)) throw err;
      closeQuietly(this.db);
      discardDamagedDatabase(this.databasePlace.file, err, this.databasePlace);
    }
    this.database = withDatabase(this.databasePlace.file, this.databasePlace, (db) => {
      this.database = db;
      this.indexer = new Indexer(db, this.root);
      rebuild();
      return db;
    });
  }

  private reloadEntries(): void {
    const fingerprint = indexFingerprint(this.root);
    const { entries, bytes } = readIndexFile(this.root);
    const hash = sha256(bytes);
    if (getMeta(this.db, 'index_hash') !== hash) {
      // A later duplicate of a ref wins, as in other tools; the earlier entries stay untagged.
      const last = new Map<string, number>();
      entries.forEach((d, i) => {
        const ref = d.annotations?.[ANN_REF_NAME];
        if (ref !== undefined) last.set(ref, i);
      });
      this.replaceEntryRows(entries.map((d, i) => {
        const ref = d.annotations?.[ANN_REF_NAME];
        return { ref: ref !== undefined && last.get(ref) === i ? ref : null, descriptor: d };
      }));
      const indexed = new Set<string>();
      // Many tags share a manifest (100 000 tags of a few images): each is indexed once.
      for (const d of entries) if (!indexed.has(d.digest) && indexed.add(d.digest)) this.indexer.index(d);
      setMeta(this.db, 'index_hash', hash);
    }
    setMeta(this.db, 'index_fingerprint', fingerprint);
  }

  /**
   * Replaces the entries table (inside the caller's transaction; refs already unique): a new
   * table, the rows, then its indexes, each built with one sort.
   */
  private replaceEntryRows(rows: Array<{ ref: string | null; descriptor: Descriptor }>): void {
    this.db.exec(`DROP TABLE entries; ${ENTRIES_TABLE};`);
    const insert = this.db.prepare('INSERT INTO entries (ref, digest, media_type, size, descriptor) VALUES (?, ?, ?, ?, ?)');
    for (const { ref, descriptor: d } of rows) insert.run(ref, d.digest, d.mediaType, d.size, JSON.stringify(d));
    this.db.exec(`${ENTRIES_INDEXES};`);
  }

  /**
   * The one way index.json changes: under the lock, bring the database up to date with the
   * file, apply `change` to the entry list, write the file atomically, record its fingerprint.
   */
  private mutateEntries(change: (entries: Array<{ ref: string | null; descriptor: Descriptor }>) => void): void {
    this.withWriteLock(() => {
      // The file is rewritten from the rows: they must be its content, even after an edit in
      // place that kept its size and time (which the fingerprint check cannot see).
      this.reloadEntries();
      const rows = statement(this.db, 'SELECT * FROM entries ORDER BY seq').all() as EntryRow[];
      const entries = rows.map((row) => ({ ref: row.ref, descriptor: descriptorOfEntry(row) }));
      change(entries);
      if (this.blobsDirty) {
        fsyncDirSync(join(this.root, 'blobs', 'sha256'));
        this.blobsDirty = false;
      }
      const seen = new Set<string>();
      const kept = entries.filter((e) => e.ref === null || (!seen.has(e.ref) && seen.add(e.ref)));
      const descriptors = kept.map((e) => indexEntry(e.descriptor, e.ref));
      // A change that changes nothing (a retag to the same digest) writes nothing.
      if (rows.length === descriptors.length && descriptors.every((d, i) => rows[i]!.descriptor === JSON.stringify(d) && rows[i]!.ref === kept[i]!.ref)) return;
      writeIndexFile(this.root, descriptors);
      this.replaceEntryRows(descriptors.map((d, i) => ({ ref: kept[i]!.ref, descriptor: d })));
      setMeta(this.db, 'index_hash', sha256(readFileSync(join(this.root, 'index.json'))));
      setMeta(this.db, 'index_fingerprint', indexFingerprint(this.root));
    });
  }

  async tag(descriptor: Descriptor, reference: string): Promise<void> {
    await this.tagMany([{ descriptor, ref: reference }]);
  }

  /**
   * Points every ref at its descriptor in one index.json update. With `expected`, a ref is
   * moved only if it still points at that digest (`null`: only if it is still absent), checked
   * under the lock: nothing is tagged when another process moved it meanwhile. Nothing is
   * tagged either when the whole graph of any root is not in the store (checked under the
   * lock, which gc also holds to delete): IncompleteGraphError names them all.
   */
  async tagMany(items: Array<{ descriptor: Descriptor; ref: string; expected?: string | null }>): Promise<void> {
    const keyed = items.map(({ descriptor, ref, expected }) => {
      this.indexer.index(descriptor);
      return { descriptor, key: storeKey(ref), expected };
    });
    this.mutateEntries((entries) => {
      const incomplete = keyed.flatMap(({ descriptor, key }) => {
        const missing = graphGaps(this.db, this.root, descriptor);
        return missing.length ? [{ ref: key, digest: descriptor.digest, missing }] : [];
      });
      if (incomplete.length) throw new IncompleteGraphError(incomplete, this.name);
      for (const { key, expected } of keyed) {
        const current = entries.find((e) => e.ref === key)?.descriptor.digest;
        if (expected !== undefined && current !== (expected ?? undefined)) {
          throw new GadgetError(`${key} was changed by another program meanwhile (it points at ${current ?? 'nothing'}, not ${expected ?? 'nothing'}); nothing was tagged`, { hint: 'run the command again' });
        }
      }
      for (const { descriptor, key } of keyed) setTag(entries, descriptor, key);
    });
  }

  /** Removes tags; content stays until gc. Unknown refs are an error and change nothing. */
  async untag(refs: string[]): Promise<string[]> {
    const keys = [...new Set(refs.map((r) => storeKey(r)))]; // `rm R R` untags R once
    this.refreshIfChanged();
    const missing = keys.filter((k) => !this.entryByRef(k));
    if (missing.length) throw new GadgetError(`not in ${this.name}: ${missing.join(', ')}`, { hint: 'see `gadget list` for the stored references' });
    const drop = new Set(keys);
    this.mutateEntries((entries) => {
      for (let i = entries.length - 1; i >= 0; i--) if (entries[i]!.ref !== null && drop.has(entries[i]!.ref!)) entries.splice(i, 1);
    });
    return keys;
  }

  /** Drops index.json entries by digest (for gc and fsck --repair). */
  removeEntries(predicate: (entry: { ref: string | null; descriptor: Descriptor }) => boolean): void {
    this.mutateEntries((entries) => {
      for (let i = entries.length - 1; i >= 0; i--) if (predicate(entries[i]!)) entries.splice(i, 1);
    });
  }

  entryByRef(key: string): EntryRow | undefined {
    return statement(this.db, 'SELECT * FROM entries WHERE ref = ?').get(key) as EntryRow | undefined;
  }

  /** The manifests of the index that list `digest` as a child (their blobs may be gone). */
  parentsOf(digest: string): string[] {
    return (statement(this.db, 'SELECT DISTINCT parent FROM children WHERE digest = ?').all(digest) as Array<{ parent: string }>).map((r) => r.parent);
  }

  entriesOf(digest: string): EntryRow[] {
    return statement(this.db, 'SELECT * FROM entries WHERE digest = ? ORDER BY seq').all(digest) as EntryRow[];
  }

  /** Every entry without its descriptor JSON (cheaper for checks over 100 000 tags). */
  entrySummaries(): Array<Omit<EntryRow, 'descriptor'>> {
    return statement(this.db, 'SELECT seq, ref, digest, media_type, size FROM entries ORDER BY seq').all() as Array<Omit<EntryRow, 'descriptor'>>;
  }

  allEntries(): EntryRow[] {
    return statement(this.db, 'SELECT * FROM entries ORDER BY seq').all() as EntryRow[];
  }

  manifestRow(digest: string): ManifestRow | undefined {
    return statement(this.db, 'SELECT * FROM manifests WHERE digest = ?').get(digest) as ManifestRow | undefined;
  }

  /** Target.peek: what a tag (full reference or bare signature tag) points at, or undefined when absent. */
  async peek(reference: string): Promise<Descriptor | undefined> {
    this.refreshIfChanged();
    const entry = this.entryByRef(storeKey(reference)) ?? this.entryByRef(reference);
    return entry ? descriptorOfEntry(entry) : undefined;
  }

  /** Target.resolve: a full reference, bare signature tag, or digest. */
  async resolve(reference: string): Promise<Descriptor> {
    return this.resolveRef(reference);
  }

  /** A user's reference (short names completed as ig does) to the stored descriptor. */
  resolveRef(input: string): Descriptor {
    this.refreshIfChanged();
    const digest = isDigest(input) ? input : isSignatureTag(input) ? undefined : parseRef(input).digest;
    if (digest) {
      const row = this.manifestRow(digest);
      if (!row) throw new GadgetError(`${input}: no manifest with digest ${digest} in ${this.name}`, { hint: 'see `gadget list`' });
      return { mediaType: row.media_type, digest, size: row.size };
    }
    const key = storeKey(input);
    // Other tools may store a short name (`skopeo copy ... oci:DIR:v1` writes "v1").
    const entry = this.entryByRef(key) ?? this.entryByRef(input);
    if (!entry) {
      throw new GadgetError(`${key} is not in ${this.name}`, { hint: 'see `gadget list`, or `gadget pull` it first' });
    }
    return descriptorOfEntry(entry);
  }

  async referrers(descriptor: Descriptor): Promise<Referrer[]> {
    this.refreshIfChanged();
    const out: Referrer[] = [];
    const hex = descriptor.digest.slice(7);
    for (const suffix of ['.sig', '.att', '.sbom', '']) {
      const entry = this.entryByRef(`sha256-${hex}${suffix}`);
      if (entry) out.push({ descriptor: descriptorOfEntry(entry), tag: entry.ref! });
    }
    const rows = statement(this.db, 'SELECT * FROM manifests WHERE subject = ?').all(descriptor.digest) as ManifestRow[];
    for (const row of rows) {
      if (out.some((r) => r.descriptor.digest === row.digest)) continue;
      const d: Descriptor = { mediaType: row.media_type, digest: row.digest, size: row.size };
      if (row.artifact_type) d.artifactType = row.artifact_type;
      out.push({ descriptor: d });
    }
    return out;
  }

  // ------------------------------------------------------------- plugin caches

  /** A plugin's cached value (e.g. the build cache: inputs key -> index descriptor). */
  cacheGet<T>(namespace: string, key: string): T | undefined {
    const row = statement(this.db, 'SELECT value FROM cache WHERE namespace = ? AND key = ?').pluck().get(namespace, key);
    return typeof row === 'string' ? (JSON.parse(row) as T) : undefined;
  }

  /** Drops a plugin's cached values last written before `before`; returns how many. */
  cacheForget(namespace: string, before: Date): number {
    return statement(this.db, 'DELETE FROM cache WHERE namespace = ? AND time < ?').run(namespace, before.toISOString()).changes;
  }

  cachePut(namespace: string, entries: Array<{ key: string; value: unknown }>): void {
    const put = statement(this.db, 'INSERT OR REPLACE INTO cache (namespace, key, value, time) VALUES (?, ?, ?, ?)');
    const now = new Date().toISOString();
    this.db.transaction(() => {
      for (const e of entries) put.run(namespace, e.key, JSON.stringify(e.value), now);
    })();
  }

  // ------------------------------------------------------------- queries

  /**
   * Tagged images (not signature tags), optionally filtered by a glob (`*`, `?`, `[...]`) on
   * the reference as stored: the whole of it (`ghcr.io/x/trace_exec:latest`, or a bare tag
   * `g0001` as skopeo and umoci write them), or, for a pattern without '/', the last part of
   * the name with or without its tag: 'trace_*', 'trace_exec' and 'trace_exec:latest' all
   * find ghcr.io/inspektor-gadget/gadget/trace_exec:latest.
   */
  list(pattern?: string): ImageRecord[] {
    return [...this.listRecords(pattern)];
  }

  /** Whether any tagged image matches `pattern` (as list() matches it), without listing them. */
  matchesAny(pattern: string): boolean {
    this.refreshIfChanged();
    const { where, params } = refFilter(pattern);
    return this.db.prepare(`SELECT 1 FROM entries e WHERE ${where} LIMIT 1`).get(params) !== undefined;
  }

  /**
   * list() one record at a time, as SQLite reads them (sorted by reference), so that 100 000
   * tags are never all in memory. The connection is busy until the iteration ends.
   */
  *listRecords(pattern?: string): Generator<ImageRecord> {
    const { rows, summaries } = this.listing(pattern);
    for (const [ref, digest, mediaType, size] of rows) yield { ref, digest, ...recordTail(mediaType, size, summaries.get(digest)) };
  }

  /**
   * listRecords() as JSON text, each string what JSON.stringify gives for the record. What the
   * tags of one manifest share is serialized once per manifest, not once per tag: at 100 000
   * tags that is most of the time of `list --json`.
   */
  *listJSON(pattern?: string): Generator<string> {
    const { rows, summaries } = this.listing(pattern);
    // By digest; an entry that gives the same digest another media type or size gets its own.
    const tails = new Map<string, { mediaType: string; size: number; text: string }>();
    for (const [ref, digest, mediaType, size] of rows) {
      let tail = tails.get(digest);
      if (tail?.mediaType !== mediaType || tail.size !== size) {
        tail = { mediaType, size, text: `"digest":${JSON.stringify(digest)},${JSON.stringify(recordTail(mediaType, size, summaries.get(digest))).slice(1)}` };
        tails.set(digest, tail);
      }
      yield `{"ref":${JSON.stringify(ref)},${tail.text}`;
    }
  }

  /**
   * The tags list() shows, as rows read one at a time (arrays, not objects: half the cost per
   * tag), and the summaries of their manifests, read first and once per manifest: a join per
   * tag costs more than the whole scan of the listing index.
   */
  private listing(pattern?: string): { rows: IterableIterator<[ref: string, digest: string, mediaType: string, size: number]>; summaries: Map<string, ManifestSummary> } {
    this.refreshIfChanged();
    const { where, params } = refFilter(pattern);
    const summaries = new Map<string, ManifestSummary>();
    const manifests = this.db
      .prepare(
        `SELECT m.digest, m.artifact_type, m.graph_size, m.created, m.title,
           (SELECT group_concat(c.os || '/' || c.arch) FROM children c WHERE c.parent = m.digest AND c.role = 'manifest') AS platforms
         FROM manifests m WHERE m.digest IN (SELECT e.digest FROM entries e WHERE ${where})`,
      )
      .all(params) as Array<ManifestSummary & { digest: string }>;
    for (const m of manifests) summaries.set(m.digest, m);
    const rows = this.db.prepare(`SELECT e.ref, e.digest, e.media_type, e.size FROM entries e WHERE ${where} ORDER BY e.ref`).raw().iterate(params);
    return { rows: rows as IterableIterator<[string, string, string, number]>, summaries };
  }
}

/** An ImageRecord without its ref and digest, members in the order JSON output shows them. */
function recordTail(mediaType: string, size: number, m: ManifestSummary | undefined): Omit<ImageRecord, 'ref' | 'digest'> {
  const tail: Omit<ImageRecord, 'ref' | 'digest'> = {
    mediaType,
    platforms: m?.platforms ? [...new Set(m.platforms.split(','))] : [],
    size: m?.graph_size ?? size,
  };
  if (m?.artifact_type) tail.artifactType = m.artifact_type;
  if (m?.created) tail.created = m.created;
  if (m?.title) tail.title = m.title;
  return tail;
}

/**
 * The WHERE clause of list() for `pattern` (see list()): a few GLOBs per row, fast at 100 000
 * tags. Signature tags are never images.
 */
function refFilter(pattern: string | undefined): { where: string; params: { p?: string } } {
  if (pattern === undefined) return { where: "e.ref NOT GLOB 'sha256-*'", params: {} };
  const match = pattern.includes('/') ? 'e.ref GLOB @p' : "(e.ref GLOB @p OR e.ref GLOB '*/' || @p OR e.ref GLOB '*/' || @p || ':*')";
  // The shell's class negation `[!a]` is SQLite's `[^a]`.
  return { where: `e.ref NOT GLOB 'sha256-*' AND ${match}`, params: { p: pattern.replace(/\[!/g, '[^') } };
}

/**
 * A store path that is a file (or under one) is a usage error, not a crash. Returns whether
 * the folder exists.
 */
function checkIsFolder(root: string): boolean {
  let st;
  try {
    st = statSync(root, { throwIfNoEntry: false });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new GadgetError(`the store ${root} cannot be used: ${code === 'ENOTDIR' ? 'a part of its path is a file' : (err as Error).message}`, { exitCode: 2, hint: 'point --store (or $GADGET_STORE) at an OCI layout folder, or at a new folder to create one' });
  }
  if (st && !st.isDirectory()) {
    throw new GadgetError(`the store ${root} is a file, not a folder`, { exitCode: 2, hint: 'point --store (or $GADGET_STORE) at an OCI layout folder, or at a new folder to create one' });
  }
  return st !== undefined;
}

/** The names a layout's folder may hold before its index.json is written (an interrupted creation). */
const LAYOUT_PARTS = new Set([LAYOUT_FILE, 'blobs', OWN_DIR]);

/**
 * A folder without index.json and blobs is an empty store only if it holds nothing else (an
 * empty folder, or what an interrupted creation left); a folder of other files (a project, a
 * home folder given as --store by mistake) is not a store, and no layout is made in it.
 */
function checkEmptyFolder(root: string): void {
  // A new file system's lost+found and hidden files (.gitkeep, .DS_Store) do not make it a project.
  const other = readdirSync(root).find((name) => !LAYOUT_PARTS.has(name) && !parseTempName(name) && !name.startsWith('.') && name !== 'lost+found');
  if (other === undefined) return;
  throw new GadgetError(`${root} is not an OCI image layout: it has no index.json, and holds other files (${other})`, {
    exitCode: 2,
    hint: 'point --store (or $GADGET_STORE) at a store (a folder with oci-layout, index.json and blobs/), or at a new or empty folder to make one',
  });
}

/** Marks a blob as just used (for gc's --grace); a read-only store is left as it is. */
function touch(file: string): void {
  try {
    const now = new Date();
    utimesSync(file, now, now);
  } catch {
    // Not ours to touch (ig's store read by another user): the lock check still protects the tag.
  }
}

/** Whether `file` is a regular file holding exactly `bytes` (anything unreadable is not). */
function sameBytes(file: string, bytes: Buffer): boolean {
  try {
    return regularFile(file)?.size === bytes.length && readRegular(file).equals(bytes);
  } catch {
    return false;
  }
}

function hasBlobs(root: string): boolean {
  try {
    return readdirSync(join(root, 'blobs', 'sha256')).length > 0;
  } catch {
    return false;
  }
}

/**
 * The index database lives in the layout; a read-only layout gets one in the temp folder.
 * `tmpDir`: where a damaged one is moved before it is removed (see discardDamagedDatabase).
 */
function databaseFile(root: string): { file: string } & OpenDatabaseOptions {
  const own = join(root, OWN_DIR);
  try {
    makeFolders(own);
    accessSync(own, constants.W_OK);
    return { file: join(own, 'index.sqlite'), tmpDir: join(own, 'tmp') };
  } catch {
    const dir = join(tmpdir(), 'gadget-oci-index');
    makeFolders(dir, 'the store is read-only, so its index is kept in the temporary folder: check that $TMPDIR is writable');
    return { file: join(dir, createHash('sha256').update(root).digest('hex').slice(0, 24) + '.sqlite') };
  }
}
