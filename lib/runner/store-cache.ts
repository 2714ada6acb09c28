// The store a config names, remembered per version of the config's bytes, so that commands
// which need only the store (list, tag, inspect, ...) do not compile gadget.config.ts through
// tsx on every call (0.3 s to seconds). Remembered only when the config writes the store as a
// plain string literal (`store: '.gadget-store'`) that nothing else in its code can replace: a
// computed store (an environment variable, an import, an assignment) is read by loading the
// config every time.
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
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

/**
 * The config's code with comments removed and each string literal replaced by `\0N\0` (its
 * index in `strings`), so that a word in a comment or a string is not taken for code.
 */
function codeOf(text: string): { code: string; strings: string[] } {
  const strings: string[] = [];
  let code = '';
  for (let i = 0; i < text.length; ) {
    const c = text[i]!;
    if (c === '/' && text[i + 1] === '/') {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
      code += ' ';
    } else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      let value = '';
      for (; j < text.length && text[j] !== c; j++) {
        if (text[j] === '\\') value += text[++j] ?? '';
        else value += text[j];
      }
      // A template with substitutions is computed: kept as code, so nothing in it is trusted.
      if (c === '`' && value.includes('${')) code += text.slice(i, j + 1);
      else code += `\0${strings.push(value) - 1}\0`;
      i = j + 1;
    } else {
      code += c;
      i++;
    }
  }
  return { code, strings };
}

/**
 * Whether the config's text proves that its `store` is `store` as written: the word `store`
 * occurs once in its code, as the key of that very string literal, and nothing could replace
 * the object's keys (a spread, Object.assign, or a key written as a string). Otherwise the
 * config is loaded every time.
 */
function isLiteralStore(text: string, store: unknown): boolean {
  const { code, strings } = codeOf(text);
  if (/\.\.\.|Object\s*\.\s*assign/.test(code) || storeAsString(code, strings)) return false;
  const exported = exportedObject(code, strings);
  if (exported === undefined) return false; // the export is computed, imported or a variable
  const words = code.match(/\bstore\b/g)?.length ?? 0;
  if (store === undefined) return words === 0;
  const key = /\bstore\s*:\s*\0(\d+)\0/.exec(exported);
  return typeof store === 'string' && words === 1 && key !== null && depthAt(exported, key.index) === 1 && strings[Number(key[1])] === store;
}

/** Whether the code names `store` through a string (`{ 'store': x }`, `config['store']`), which the word count cannot see; a value 'store' (a mirror set's destination) is fine. */
function storeAsString(code: string, strings: string[]): boolean {
  for (const m of code.matchAll(/\[\s*\0(\d+)\0\s*\]|\0(\d+)\0\s*:/g)) if (strings[Number(m[1] ?? m[2])] === 'store') return true;
  return false;
}

/**
 * The object literal the config exports (`export default {...}`, `export default
 * defineConfig({...})`, or the same after `module.exports =`), braces included, when the export
 * is that literal and nothing after it; else undefined.
 */
function exportedObject(code: string, strings: string[]): string | undefined {
  const start = /(?:\bexport\s+default|\bmodule\s*\.\s*exports\s*=)\s*(?:defineConfig\s*\(\s*)?\{/.exec(code);
  if (!start) return undefined;
  // defineConfig returns its argument only when it is gadget-oci's own: one of the project's may change it.
  if (/defineConfig/.test(start[0]) && !importsOwnDefineConfig(code, strings)) return undefined;
  const open = start.index + start[0].length - 1;
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    const c = code[i]!;
    if (c === '{' || c === '[' || c === '(') depth++;
    else if (c === '}' || c === ']' || c === ')') depth--;
    if (depth === 0) {
      // Only the call's closing parenthesis and a semicolon may follow: `defineConfig(cond ? {...} : x)` is computed.
      const rest = code.slice(i + 1);
      const closes = /defineConfig\s*\(\s*\{$/.test(start[0]) ? /^\s*\)\s*;?\s*$/ : /^\s*;?\s*$/;
      const object = code.slice(open, i + 1);
      // A computed key (`[key]: ...`) may be `store`, whatever the word count says.
      return closes.test(rest) && !/\]\s*:/.test(object) ? object : undefined;
    }
  }
  return undefined;
}

/** Whether the code imports defineConfig from gadget-oci (by name, or by the path of its own index) and defines none itself. */
function importsOwnDefineConfig(code: string, strings: string[]): boolean {
  if (/\bfunction\s+defineConfig\b|\bdefineConfig\s*=/.test(code)) return false;
  const from = /\bimport\s*\{[^}]*\bdefineConfig\b[^}]*\}\s*from\s*\0(\d+)\0|\{[^}]*\bdefineConfig\b[^}]*\}\s*=\s*require\s*\(\s*\0(\d+)\0\s*\)/.exec(code);
  if (!from) return false;
  const source = strings[Number(from[1] ?? from[2])]!;
  return source === 'gadget-oci' || OWN_INDEXES.includes(source.replace(/^file:\/\//, ''));
}

/** gadget-oci's own index, built and as source, which a config may import by path. */
const OWN_INDEXES = ((): string[] => {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  return [join(root, 'index.js'), join(root, 'index.ts'), join(root, '..', 'index.ts')];
})();

/** How many brackets are open at `index` of `code`. */
function depthAt(code: string, index: number): number {
  let depth = 0;
  for (let i = 0; i < index; i++) {
    const c = code[i]!;
    if (c === '{' || c === '[' || c === '(') depth++;
    else if (c === '}' || c === ']' || c === ')') depth--;
  }
  return depth;
}

/** Remembers the `store` of a loaded config when its text proves it is a literal. */
export function rememberStore(configFile: string, store: unknown): void {
  try {
    const bytes = readFileSync(configFile);
    if (!isLiteralStore(bytes.toString('utf8'), store)) return;
    const file = cacheFile(configFile);
    makeFolders(join(file, '..'));
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ hash: hashOf(bytes), store: typeof store === "string" ? store : null } satisfies Entry));
    renameSync(tmp, file);
  } catch {
    // Only a cache: the next command loads the config instead.
  }
}
