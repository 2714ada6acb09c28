// Incremental builds: a key over everything that decides an image's bytes (input files, spec
// options, annotations, tool versions, this program's version) maps to the index it produced.
// The entry also lists every header clang read, with its hash, so a changed system header
// (say, a libbpf-dev upgrade) is a miss too. Kept in <store>/gadget-oci/build-cache.json,
// replaced atomically; losing an entry to a concurrent writer only costs a rebuild.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomicSync } from '../../store/files.js';
import type { Descriptor } from '../../lib/oci/types.js';

export const CACHE_DIR = 'gadget-oci';
export const CACHE_FILE = 'build-cache.json';
const MAX_ENTRIES = 2000;
const MAX_CACHE_BYTES = 64 << 20;

export interface CacheEntry {
  /** The tagged index descriptor (with its annotations). */
  index: Descriptor;
  /** sha256 of every file clang read, by absolute path. */
  deps: Record<string, string>;
  /** When the entry was written (ISO), for trimming. */
  time: string;
}

interface CacheDocument {
  version: 1;
  entries: Record<string, CacheEntry>;
}

/** A hash over labelled parts; labels and lengths keep different inputs from colliding. */
export class KeyBuilder {
  private readonly hash = createHash('sha256');

  add(label: string, value: string | Buffer): this {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    this.hash.update(`${label}\0${bytes.length}\0`);
    this.hash.update(bytes);
    return this;
  }

  digest(): string {
    return 'sha256:' + this.hash.digest('hex');
  }
}

export function fileHash(bytes: Buffer): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

/** Hashes of the given files (a missing file maps to "missing"). */
export async function hashFiles(files: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  await Promise.all(
    files.map(async (f) => {
      try {
        out[f] = fileHash(await readFile(f));
      } catch {
        out[f] = 'missing';
      }
    }),
  );
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** True when every dependency still has the hash it had. */
export async function depsUnchanged(deps: Record<string, string>): Promise<boolean> {
  const now = await hashFiles(Object.keys(deps));
  return Object.entries(deps).every(([f, h]) => now[f] === h);
}

// One write at a time per file within this process (gadgets build in parallel).
const writeChains = new Map<string, Promise<void>>();

export class BuildCache {
  readonly file: string;

  constructor(storeRoot: string) {
    this.file = path.join(storeRoot, CACHE_DIR, CACHE_FILE);
  }

  private load(): CacheDocument {
    try {
      const text = readFileSync(this.file);
      if (text.length > MAX_CACHE_BYTES) return { version: 1, entries: {} };
      const doc = JSON.parse(text.toString('utf8')) as CacheDocument;
      if (doc?.version !== 1 || typeof doc.entries !== 'object' || doc.entries === null) return { version: 1, entries: {} };
      return doc;
    } catch {
      // Missing or damaged: the cache only ever saves work, so start empty.
      return { version: 1, entries: {} };
    }
  }

  get(key: string): CacheEntry | undefined {
    const entry = this.load().entries[key];
    if (!entry || typeof entry.index?.digest !== 'string' || typeof entry.deps !== 'object') return undefined;
    return entry;
  }

  put(key: string, entry: CacheEntry): Promise<void> {
    const previous = writeChains.get(this.file) ?? Promise.resolve();
    const next = previous.then(() => {
      const doc = this.load();
      doc.entries[key] = entry;
      const keys = Object.keys(doc.entries);
      if (keys.length > MAX_ENTRIES) {
        keys
          .sort((a, b) => (doc.entries[a]!.time < doc.entries[b]!.time ? -1 : 1))
          .slice(0, keys.length - MAX_ENTRIES)
          .forEach((k) => delete doc.entries[k]);
      }
      mkdirSync(path.dirname(this.file), { recursive: true });
      writeFileAtomicSync(this.file, JSON.stringify(doc));
    });
    writeChains.set(this.file, next.catch(() => undefined));
    return next;
  }
}
