// The store a config names, remembered per version of the config's bytes, so that commands
// which need only the store (list, tag, inspect, ...) do not compile gadget.config.ts through
// tsx on every call (0.3 s to seconds). Remembered only when the config writes the store as a
// plain string literal (`store: '.gadget-store'`): a computed store (an environment variable,
// an import) is read by loading the config every time.
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { makeFolders } from '../folders.js';

interface Entry {
  /** sha256 of the config file's bytes. */
  hash: string;
  /** The `store` value as written, or null when the config names no store. */
  store: string | null;
}

function cacheFile(configFile: string): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'gadget-oci', `store-${createHash('sha256').update(configFile).digest('hex').slice(0, 32)}.json`);
}

function hashOf(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The remembered `store` of `configFile` (null: none), or undefined when the config must be loaded. */
export function cachedStore(configFile: string): string | null | undefined {
  try {
    const entry = JSON.parse(readFileSync(cacheFile(configFile), 'utf8')) as Entry;
    return entry.hash === hashOf(readFileSync(configFile)) ? entry.store : undefined;
  } catch {
    return undefined;
  }
}

/** Remembers the `store` of a loaded config when its text proves it is a literal. */
export function rememberStore(configFile: string, store: unknown): void {
  try {
    const bytes = readFileSync(configFile);
    const text = bytes.toString('utf8');
    const literal =
      typeof store === 'string'
        ? [`'`, `"`, '`'].some((q) => text.includes(`store: ${q}${store}${q}`)) && text.split(/\bstore\s*:/).length === 2
        : store === undefined && !/\bstore\b/.test(text);
    if (!literal) return;
    const file = cacheFile(configFile);
    makeFolders(join(file, '..'));
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ hash: hashOf(bytes), store: typeof store === "string" ? store : null } satisfies Entry));
    renameSync(tmp, file);
  } catch {
    // Only a cache: the next command loads the config instead.
  }
}
