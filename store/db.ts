// The SQLite index of a store. It holds nothing that cannot be rebuilt from the layout:
// index.json entries (in their order), and for every manifest or index reached from them,
// its kind, artifact type, subject, annotations, children and platforms.
import Database from 'better-sqlite3';
import type { Descriptor } from '../lib/oci/types.js';

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

export function openDatabase(file: string): DB {
  const db = new Database(file);
  db.pragma('busy_timeout = 120000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = OFF');
  const readVersion = (): string | undefined => {
    try {
      return (db.prepare(`SELECT value FROM meta WHERE key = 'schema'`).get() as { value: string } | undefined)?.value;
    } catch {
      return undefined;
    }
  };
  // Several processes may open a new store at once: create the schema under the write lock.
  if (readVersion() !== SCHEMA_VERSION) {
    db.transaction(() => {
      if (readVersion() === SCHEMA_VERSION) return;
      db.exec(`
        DROP TABLE IF EXISTS meta; DROP TABLE IF EXISTS entries; DROP TABLE IF EXISTS manifests;
        DROP TABLE IF EXISTS children; DROP TABLE IF EXISTS annotations; DROP TABLE IF EXISTS cache;
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
        INSERT INTO meta VALUES ('schema', '${SCHEMA_VERSION}');
      `);
    }).immediate();
  }
  return db;
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
