// The SQLite index of a store. It holds nothing that cannot be rebuilt from the layout:
// index.json entries (in their order), and for every manifest or index reached from them,
// its kind, artifact type, subject, annotations, children and platforms.
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { GadgetError } from '../lib/errors.js';
import type { Descriptor } from '../lib/oci/types.js';
import { fsyncDirSync, tempName } from './files.js';

export type DB = Database.Database;

const SCHEMA_VERSION = '4';

/** index.json's manifests, in file order; ref is NULL for an untagged entry. */
export const ENTRIES_TABLE = `CREATE TABLE entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, ref TEXT, digest TEXT NOT NULL,
  media_type TEXT NOT NULL, size INTEGER NOT NULL, descriptor TEXT NOT NULL)`;

/**
 * The entries' indexes, made after the rows when the table is written whole (one sort each is
 * much cheaper than 100 000 ordered inserts). entries_list covers `gadget list`: its rows in
 * reference order straight from the index, without a lookup in the table per row.
 */
export const ENTRIES_INDEXES = `CREATE UNIQUE INDEX entries_ref ON entries (ref);
  CREATE INDEX entries_digest ON entries (digest);
  CREATE INDEX entries_list ON entries (ref, digest, media_type, size)`;

/**
 * Indexes added to schema 4 after it shipped: a store that lacks them gets them where it is,
 * instead of a new index rebuilt from the layout. cache_time lets cacheForget find old entries
 * without reading the whole namespace.
 */
const ADDED_INDEXES = 'CREATE INDEX IF NOT EXISTS cache_time ON cache (namespace, time)';

const SCHEMA = `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  ${ENTRIES_TABLE};
  ${ENTRIES_INDEXES};
  -- every manifest or index that has been parsed (content-addressed, never changes)
  CREATE TABLE manifests (digest TEXT PRIMARY KEY, media_type TEXT NOT NULL, artifact_type TEXT,
    config_media_type TEXT, subject TEXT, size INTEGER NOT NULL, graph_size INTEGER, created TEXT, title TEXT);
  CREATE INDEX manifests_subject ON manifests (subject);
  -- edges: role is config, layer or manifest; arch/os only for index entries
  CREATE TABLE children (parent TEXT NOT NULL, position INTEGER NOT NULL, role TEXT NOT NULL, digest TEXT NOT NULL,
    media_type TEXT NOT NULL, size INTEGER NOT NULL, arch TEXT, os TEXT, PRIMARY KEY (parent, position));
  CREATE INDEX children_digest ON children (digest);
  CREATE TABLE annotations (digest TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (digest, key));
  -- caches of plugins (e.g. the build cache): losing them costs only time
  CREATE TABLE cache (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, time TEXT NOT NULL, PRIMARY KEY (namespace, key));
  ${ADDED_INDEXES};
  INSERT INTO meta VALUES ('schema', '${SCHEMA_VERSION}');
`;

/** Every table (with its columns) and index of the schema, one string each. */
const STRUCTURE_SQL = `SELECT m.type || ' ' || m.name || '(' || coalesce((SELECT group_concat(name, ',') FROM (SELECT p.name FROM pragma_table_info(m.name) p ORDER BY p.cid)), '') || ')'
  FROM sqlite_master m WHERE m.type IN ('table', 'index') AND m.name NOT LIKE 'sqlite_%'`;

let expectedStructure: string[] | undefined;

/** The structure a database made by SCHEMA has (made once, in memory). */
function schemaStructure(): string[] {
  if (!expectedStructure) {
    const db = new Database(':memory:');
    try {
      db.exec(SCHEMA);
      expectedStructure = db.prepare(STRUCTURE_SQL).pluck().all() as string[];
    } finally {
      db.close();
    }
  }
  return expectedStructure;
}

/** Whether every table, column and index of the schema is there (more is allowed). */
function schemaWhole(db: DB): boolean {
  const present = new Set(db.prepare(STRUCTURE_SQL).pluck().all() as string[]);
  return schemaStructure().every((s) => present.has(s));
}

/**
 * SQLite's answer for a file that is not, or no longer, a whole database (garbage, cut short,
 * a damaged page). The index holds nothing the layout does not: such a file is replaced.
 */
export function isDamagedDatabase(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^SQLITE_(NOTADB|CORRUPT)/.test(code);
}

/**
 * How long opening waits out a "busy" that SQLite's busy handler does not (setting up WAL mode
 * while another process checkpoints or recovers the log): moments, but a concurrent build or
 * pull that opens the store mid-run meets them.
 */
const BUSY_OPEN_MS = 30_000;

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/** Waits without an event loop turn: opening a store is synchronous. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export interface OpenDatabaseOptions {
  /** Where a damaged file is moved before it is removed (same file system; default: beside it). */
  tmpDir?: string;
}

/**
 * Opens the index at `file` (creating it, or its schema, when it is missing) and runs `use` on
 * it. A file that is not a database or is damaged, found when it is opened or by `use`, is
 * closed, replaced by a new, empty one (see discardDamagedDatabase) and `use` runs again, at
 * most three times; one that lacks tables, columns or indexes is given the schema again, under
 * the write lock. Either way `use` then finds no index_fingerprint and rebuilds the contents
 * from the layout, as for a new store. On any failure the connection is closed here.
 */
export function withDatabase<T>(file: string, opts: OpenDatabaseOptions, use: (db: DB) => T): T {
  const busyUntil = Date.now() + BUSY_OPEN_MS;
  for (let attempt = 1; ; attempt++) {
    let db: DB | undefined;
    try {
      db = new Database(file);
      prepareDatabase(db);
      return use(db);
    } catch (err) {
      closeQuietly(db);
      if (isBusy(err) && Date.now() < busyUntil) {
        attempt--;
        sleepSync(20 + Math.random() * 80);
        continue;
      }
      if (!isDamagedDatabase(err)) throw err;
      if (attempt === 3) throw damagedError(file, err, 'stays damaged each time it is made anew');
      discardDamagedDatabase(file, err, opts);
    }
  }
}

function prepareDatabase(db: DB): void {
  db.pragma('busy_timeout = 120000');
  // Set only when it is not: the change needs a lock the busy handler does not wait for.
  if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = OFF');
  const readVersion = (): string | undefined => {
    try {
      return (db.prepare(`SELECT value FROM meta WHERE key = 'schema'`).get() as { value: string } | undefined)?.value;
    } catch (err) {
      if (isDamagedDatabase(err)) throw err;
      return undefined;
    }
  };
  const current = (): boolean => readVersion() === SCHEMA_VERSION && schemaWhole(db);
  // Several processes may open a new store at once: create the schema under the write lock.
  if (!current()) {
    db.transaction(() => {
      if (current()) return;
      if (readVersion() === SCHEMA_VERSION) {
        try {
          db.exec(ADDED_INDEXES);
          if (schemaWhole(db)) return;
        } catch (err) {
          if (isDamagedDatabase(err)) throw err; // otherwise a table is missing too: all made anew
        }
      }
      db.exec(`
        DROP TABLE IF EXISTS meta; DROP TABLE IF EXISTS entries; DROP TABLE IF EXISTS manifests;
        DROP TABLE IF EXISTS children; DROP TABLE IF EXISTS annotations; DROP TABLE IF EXISTS cache;
        ${SCHEMA}
      `);
    }).immediate();
  }
}

export function closeQuietly(db: DB | undefined): void {
  try {
    db?.close();
  } catch {
    // a connection to a damaged file may refuse even to close cleanly; it is dropped either way
  }
}

/**
 * Why `file` is damaged, or undefined when it is whole (or missing). Every page is checked
 * (quick_check): this runs only once damage was met, and must not call a whole file damaged.
 */
function damageOf(file: string): unknown {
  let db: DB | undefined;
  try {
    db = new Database(file, { fileMustExist: true });
    db.pragma('busy_timeout = 120000');
    const result = db.pragma('quick_check', { simple: true });
    return result === 'ok' ? undefined : Object.assign(new Error(`quick_check: ${String(result)}`), { code: 'SQLITE_CORRUPT' });
  } catch (err) {
    if (isDamagedDatabase(err)) return err;
    if ((err as { code?: unknown }).code === 'SQLITE_CANTOPEN' && !existsSync(file)) return undefined;
    throw err;
  } finally {
    closeQuietly(db);
  }
}

/**
 * Removes a damaged index so that the next open makes a new one. Two processes that found the
 * same file damaged must not both replace it (the second would remove the new index the first
 * one is already using, and they would no longer share a lock): the check and the removal
 * happen under a lock of their own (an IMMEDIATE transaction on `FILE-rebuild.lock`, which the
 * OS releases if the process dies), and the file is removed only if it is damaged still. It is
 * moved aside first (a name with this process's pid, in `tmpDir`), its WAL and shared memory
 * with it, then deleted: a crash in between leaves a temporary file the next writer removes.
 */
export function discardDamagedDatabase(file: string, found: unknown, opts: OpenDatabaseOptions = {}): void {
  withRebuildLock(file, found, () => {
    if (!damageOf(file)) return; // another process replaced it already
    let asideDir = opts.tmpDir ?? dirname(file);
    try {
      mkdirSync(asideDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') asideDir = dirname(file);
    }
    const aside = tempName(asideDir, basename(file));
    const moved: string[] = [];
    try {
      // The WAL and shared memory first: a new index must not start from the damaged one's.
      for (const suffix of ['-wal', '-shm', '-journal', '']) {
        if (!existsSync(file + suffix)) continue;
        renameSync(file + suffix, aside + suffix);
        moved.push(aside + suffix);
      }
      fsyncDirSync(dirname(file));
    } catch (err) {
      throw damagedError(file, found, `cannot be replaced (${(err as Error).message})`);
    } finally {
      for (const f of moved) rmSync(f, { force: true });
    }
  });
}

function withRebuildLock(file: string, found: unknown, work: () => void): void {
  let lock: DB | undefined;
  try {
    lock = new Database(`${file}-rebuild.lock`);
    lock.pragma('busy_timeout = 120000');
    lock.exec('BEGIN IMMEDIATE');
  } catch (err) {
    closeQuietly(lock);
    throw damagedError(file, found, `cannot be replaced: its lock ${file}-rebuild.lock cannot be taken (${(err as Error).message})`);
  }
  try {
    work();
  } finally {
    try {
      lock.exec('COMMIT');
    } finally {
      closeQuietly(lock);
    }
  }
}

/** A damaged index that could not be replaced: one sentence, exit 2, with what to do. */
function damagedError(file: string, found: unknown, why: string): GadgetError {
  return new GadgetError(`the store's index ${file} is damaged (${(found as Error)?.message ?? String(found)}) and ${why}`, {
    exitCode: 2,
    cause: found,
    hint: `remove ${file} (it holds nothing the OCI layout does not; the next command makes it again), or run the command as a user who may write there`,
  });
}

export interface EntryRow {
  seq: number;
  ref: string | null;
  digest: string;
  media_type: string;
  size: number;
  descriptor: string;
}

export interface ManifestRow {
  digest: string;
  media_type: string;
  artifact_type: string | null;
  config_media_type: string | null;
  subject: string | null;
  size: number;
  graph_size: number | null;
  created: string | null;
  title: string | null;
}

export interface ChildRow {
  parent: string;
  position: number;
  role: 'config' | 'layer' | 'manifest';
  digest: string;
  media_type: string;
  size: number;
  arch: string | null;
  os: string | null;
}

const statements = new WeakMap<DB, Map<string, Database.Statement>>();

/** A prepared statement, compiled once per database connection (lookups run per image). */
export function statement(db: DB, sql: string): Database.Statement {
  let cache = statements.get(db);
  if (!cache) statements.set(db, (cache = new Map()));
  let stmt = cache.get(sql);
  if (!stmt) cache.set(sql, (stmt = db.prepare(sql)));
  return stmt;
}

export function getMeta(db: DB, key: string): string | undefined {
  return (statement(db, 'SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
}

export function setMeta(db: DB, key: string, value: string): void {
  statement(db, 'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
}

export function descriptorOfEntry(row: EntryRow): Descriptor {
  return JSON.parse(row.descriptor) as Descriptor;
}
