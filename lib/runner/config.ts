// gadget.config.ts: what it may declare, and how it is found and loaded (through tsx, only
// when a command needs it, so that plain commands start fast).
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GadgetError, messageOf } from '../errors.js';
import type { GadgetConfig } from './types.js';
import { validateConfig } from './validate-config.js';

/** Types the config for editors (every key checked, documented on hover); returns it unchanged. */
export function defineConfig(config: GadgetConfig): GadgetConfig {
  return config;
}

export const CONFIG_FILE = 'gadget.config.ts';

export function findConfig(cwd: string, explicit?: string): string | undefined {
  if (explicit) {
    const file = resolve(cwd, explicit);
    if (!existsSync(file)) throw new GadgetError(`config file ${file} does not exist`, { exitCode: 2, hint: 'give the path of a gadget.config.ts with --config, or leave --config out to use ./gadget.config.ts if there is one' });
    return file;
  }
  const file = resolve(cwd, CONFIG_FILE);
  return existsSync(file) ? file : undefined;
}

export interface LoadedConfig {
  file?: string;
  dir: string;
  config: GadgetConfig;
}

/** `fresh`: evaluate the file again even if this process loaded it before (watch mode). */
export async function loadConfig(cwd: string, explicit?: string, opts: { fresh?: boolean } = {}): Promise<LoadedConfig> {
  const file = findConfig(cwd, explicit);
  if (!file) return { dir: cwd, config: {} };
  let mod: Record<string, unknown>;
  try {
    const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
    esm.register();
    cjs.register();
    mod = (await import(pathToFileURL(file).href + (opts.fresh ? `?v=${Date.now()}` : ''))) as Record<string, unknown>;
  } catch (err) {
    // Outside a "type": "module" package tsx compiles the config to CommonJS, which has no top-level await.
    const hint = /top-level await/i.test(messageOf(err)) ? `top-level await needs an ES module: add "type": "module" to the package.json beside ${CONFIG_FILE}` : 'fix the error in the config file';
    throw new GadgetError(`cannot load ${file}${lineIn(err, file)}: ${firstLine(messageOf(err))}`, { exitCode: 2, hint });
  }
  // Outside a "type": "module" package tsx compiles the config to CommonJS: the import's
  // default is then module.exports, marked __esModule, with the real default export inside.
  const exported = mod.default as { __esModule?: boolean; default?: unknown } | undefined;
  let config = exported?.__esModule === true ? exported.default : exported;
  // `export default loadSettings()`: a promise of the config is the config once it settles.
  if (typeof (config as PromiseLike<unknown> | undefined)?.then === 'function') {
    try {
      config = await config;
    } catch (err) {
      throw new GadgetError(`cannot load ${file}: its default export is a promise that failed: ${firstLine(messageOf(err))}`, { exitCode: 2, hint: 'fix the error in the config file' });
    }
  }
  if (config === undefined) {
    throw new GadgetError(`${file} has no default export`, { exitCode: 2, hint: 'end it with `export default defineConfig({ ... })`' });
  }
  validateConfig(config, file);
  return { file, dir: dirname(file), config: config as GadgetConfig };
}

/** ":LINE" of the first stack frame in `file` (the line of the config that threw), else "". */
function lineIn(err: unknown, file: string): string {
  const stack = err instanceof Error ? err.stack ?? '' : '';
  for (const line of stack.split('\n')) {
    const at = line.indexOf(file);
    if (at < 0) continue;
    const m = /^:(\d+)(?::\d+)?/.exec(line.slice(at + file.length));
    if (m) return `:${m[1]}`;
  }
  return '';
}

/** Node's module errors append a "Require stack" listing: the message is their first line. */
/** The line that says what is wrong (esbuild's "Transform failed with 1 error:" is followed by it, after its location). */
function firstLine(message: string): string {
  const lines = message.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const first = lines[0] ?? '';
  if (/failed with \d+ errors?:$/.test(first) && lines[1]) return lines[1].replace(/^.*?:\d+:\d+: ERROR: /, '');
  return first;
}
