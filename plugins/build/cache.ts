// Incremental builds: a key over everything that decides an image's bytes (input files, spec
// options, annotations, tool versions, this program's version) maps to the index it produced.
// The entry also lists every header clang read, with its hash, so a changed system header
// (say, a libbpf-dev upgrade) is a miss too, and every place clang may have looked for a
// header (probes.ts), so a header that appears or goes is a miss. Kept in the store's SQLite index.
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Descriptor } from '../../lib/oci/types.js';
import type { PluginContext } from '../../lib/runner/types.js';

/** Per folder (a depKey), the header names found there as files, and those looked for and not there (see probes.ts). */
export type ProbeRecord = Array<[folder: string, present: string[], absent: string[]]>;

export interface CacheEntry {
  /** The tagged index descriptor (with its annotations). */
  index: Descriptor;
  /** sha256 of every file clang read, by absolute path. */
  deps: Record<string, string>;
  /**
   * The deps that were one file (one device and inode: a symbolic link, a hard link), as
   * groups of two or more. clang keeps one entry per file, so `#pragma once` skips a second
   * path to a file it has read: a link that becomes a copy (or back) changes the image with
   * the same paths and bytes.
   */
  same: string[][];
  /** Every place a header was looked up, and whether a file was there (see probes.ts); eBPF builds only. */
  lookups?: ProbeRecord;
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

/** A dependency's path as a JSON-safe key: the path itself, or "b64:" + base64 when its bytes are not UTF-8. */
export function depKey(file: Buffer): string {
  const text = file.toString('utf8');
  return Buffer.from(text, 'utf8').equals(file) && !text.startsWith('b64:') ? text : 'b64:' + file.toString('base64');
}

function depPath(key: string): string | Buffer {
  return key.startsWith('b64:') ? Buffer.from(key.slice(4), 'base64') : key;
}

/** What a dependency that cannot be read hashes to: never equal to anything, so never a hit. */
const UNREADABLE = 'unreadable';

/** sha256 of a file, streamed; UNREADABLE when it cannot be read. */
async function hashFile(file: string | Buffer): Promise<string> {
  try {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    return 'sha256:' + hash.digest('hex');
  } catch {
    return UNREADABLE;
  }
}

/** Hashes of the given dependency keys (see depKey). */
export async function hashFiles(keys: string[]): Promise<Record<string, string>> {
  const hashes = await Promise.all(keys.map((k) => hashFile(depPath(k))));
  return Object.fromEntries(keys.map((k, i) => [k, hashes[i]!] as const).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** The groups of the given dependency keys that are one file now (see CacheEntry.same), sorted; a key that cannot be read is in none. */
export async function sameFiles(keys: string[]): Promise<string[][]> {
  const byFile = new Map<string, string[]>();
  const ids = await Promise.all(keys.map((k) => stat(depPath(k), { bigint: true }).then((s) => `${s.dev}:${s.ino}`, () => undefined)));
  keys.forEach((k, i) => {
    const id = ids[i];
    if (id !== undefined) byFile.set(id, [...(byFile.get(id) ?? []), k]);
  });
  return [...byFile.values()].filter((g) => g.length > 1).map((g) => g.sort()).sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
}

/**
 * True when every dependency can still be read, has the hash it had, and the same of them
 * are one file as were; anything else (an entry without `same` too) is a miss.
 */
export async function depsUnchanged(entry: Pick<CacheEntry, 'deps' | 'same'>): Promise<boolean> {
  const { deps } = entry;
  if (!Array.isArray(entry.same)) return false;
  const [now, same] = await Promise.all([hashFiles(Object.keys(deps)), sameFiles(Object.keys(deps))]);
  return Object.entries(deps).every(([f, h]) => h !== UNREADABLE && now[f] === h) && JSON.stringify(same) === JSON.stringify(entry.same);
}

const NAMESPACE = 'build';

/** The build cache, kept in the store's SQLite index (concurrent builds share it safely). */
export class BuildCache {
  /**
   * The store is opened when the cache is first read, and made only when a build writes: a
   * build that fails, even after its lookup, leaves a missing store missing.
   */
  constructor(private readonly ctx: Pick<PluginContext, 'store' | 'storeIfThere'>) {}

  get(key: string): CacheEntry | undefined {
    const store = this.ctx.storeIfThere ? this.ctx.storeIfThere() : this.ctx.store;
    const entry = store?.cacheGet<CacheEntry>(NAMESPACE, key);
    if (!entry || typeof entry.index?.digest !== 'string' || typeof entry.deps !== 'object') return undefined;
    return entry;
  }

  put(entries: Array<{ key: string; value: CacheEntry }>): void {
    this.ctx.store.cachePut(NAMESPACE, entries);
  }
}

/**
 * Whether any of `files` changed since `since` (ms): a header edited while clang ran may have
 * been read before or after the edit, so the image is not remembered for the hashes read after.
 */
export function changedSince(files: string[], since: number): boolean {
  return files.some((key) => {
    const mtime = statSync(depPath(key), { throwIfNoEntry: false })?.mtimeMs;
    return mtime === undefined || mtime >= since;
  });
}
