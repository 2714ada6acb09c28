// gadget.config.ts: what it may declare, and how it is found and loaded (through tsx, only
// when a command needs it, so that plain commands start fast).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GadgetError } from '../errors.js';
import type { GadgetConfig } from './types.js';
import { firstLine, isOurs, readFailure, textOf, thrownText, validateConfig } from './validate-config.js';

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

let registered = false;

/** tsx's hooks, once per process: each register() would chain one more loader (a watch loads the config many times). */
async function registerTsx(): Promise<void> {
  if (registered) return;
  const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
  esm.register();
  cjs.register();
  registered = true;
}

/**
 * Outside a "type": "module" package tsx compiles the config to CommonJS, which Node keeps in
 * its require cache (an import's `?v=` does not reach it), with the project's own files it
 * required. Dropping them makes the next load evaluate them again; packages are kept.
 */
function forgetRequired(file: string): void {
  const cache = createRequire(import.meta.url).cache;
  const dir = dirname(file) + sep;
  for (const id of Object.keys(cache)) {
    if (id === file || (id.startsWith(dir) && !id.slice(dir.length).split(sep).includes('node_modules'))) delete cache[id];
  }
}

/** `fresh`: evaluate the file again even if this process loaded it before (watch mode). */
export async function loadConfig(cwd: string, explicit?: string, opts: { fresh?: boolean } = {}): Promise<LoadedConfig> {
  const file = findConfig(cwd, explicit);
  if (!file) return { dir: cwd, config: {} };
  let mod: Record<string, unknown>;
  try {
    await registerTsx();
    if (opts.fresh) forgetRequired(file);
    mod = (await import(pathToFileURL(file).href + (opts.fresh ? `?v=${Date.now()}` : ''))) as Record<string, unknown>;
  } catch (err) {
    // Outside a "type": "module" package tsx compiles the config to CommonJS, which has no top-level await.
    const hint = /top-level await/i.test(textOf(err)) ? `top-level await needs an ES module: add "type": "module" to the package.json beside ${CONFIG_FILE}` : 'fix the error in the config file';
    throw new GadgetError(`cannot load ${file}${thrownText(err, file)}`, { exitCode: 2, hint });
  }
  let config: unknown;
  try {
    config = await defaultExport(mod, file);
  } catch (err) {
    // A getter or Proxy trap of the export threw (`then`, `__esModule`): as validateConfig says it.
    throw isOurs(err) ? err : readFailure(err, file);
  }
  validateConfig(config, file);
  return { file, dir: dirname(file), config: config as GadgetConfig };
}

/** The config the module exports (a promise of it settled), or a GadgetError saying why there is none. */
async function defaultExport(mod: Record<string, unknown>, file: string): Promise<unknown> {
  // Outside a "type": "module" package tsx compiles the config to CommonJS: the import's
  // default is then module.exports, marked __esModule, with the real default export inside.
  const exported = mod.default as { __esModule?: boolean; default?: unknown } | undefined;
  let config = exported?.__esModule === true ? exported.default : exported;
  // `export default loadSettings()`: a promise of the config is the config once it settles.
  if (typeof (config as PromiseLike<unknown> | undefined)?.then === 'function') {
    try {
      config = await config;
    } catch (err) {
      throw new GadgetError(`cannot load ${file}: its default export is a promise that failed: ${firstLine(textOf(err))}`, { exitCode: 2, hint: 'fix the error in the config file' });
    }
  }
  if (config === undefined) {
    throw new GadgetError(`${file} has no default export`, { exitCode: 2, hint: 'end it with `export default defineConfig({ ... })`' });
  }
  return config;
}
