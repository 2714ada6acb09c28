// Incremental builds: a key over everything that decides an image's bytes (input files, spec
// options, annotations, tool versions, this program's version) maps to the index it produced.
// The entry also lists every header clang read, with its hash, so a changed system header
// (say, a libbpf-dev upgrade) is a miss too. Kept in the store's SQLite index.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { sha256 } from '../../lib/oci/digest.js';
import type { Descriptor } from '../../lib/oci/types.js';
import type { Store } from '../../store/store.js';

export interface CacheEntry {
  /** The tagged index descriptor (with its annotations). */
  index: Descriptor;
  /** sha256 of every file clang read, by absolute path. */
  deps: Record<string, string>;
  /** When the entry was written (ISO), for trimming. */
  time: string;
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

/** Hashes of the given files (a missing file maps to "missing"). */
export async function hashFiles(files: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  await Promise.all(
    files.map(async (f) => {
      try {
        out[f] = sha256(await readFile(f));
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

const NAMESPACE = 'build';

/** The build cache, kept in the store's SQLite index (concurrent builds share it safely). */
export class BuildCache {
  constructor(private readonly store: Store) {}

  get(key: string): CacheEntry | undefined {
    const entry = this.store.cacheGet<CacheEntry>(NAMESPACE, key);
    if (!entry || typeof entry.index?.digest !== 'string' || typeof entry.deps !== 'object') return undefined;
    return entry;
  }

  put(entries: Array<{ key: string; value: CacheEntry }>): void {
    this.store.cachePut(NAMESPACE, entries);
  }
}
