// gadget.config.ts: what it may declare, and how it is found and loaded (through tsx, only
// when a command needs it, so that plain commands start fast).
import { existsSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
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
  /** With `fresh`: the project's own files the config loaded (imported or required), which a watch watches too. */
  files?: string[];
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
  for (const id of projectRequired(file)) delete cache[id];
}

/** The project's files in the require cache (not packages, not gadget-oci): the config and what it required, wherever they are. */
function projectRequired(file: string): string[] {
  const own = ownCode();
  return Object.keys(createRequire(import.meta.url).cache).filter((id) => id === file || (!id.split(sep).includes('node_modules') && !own.some((p) => id.startsWith(p))));
}

let rounds: { port: MessagePort; next: number } | undefined;

/** The hooks of config-hooks.ts, once per process; their port tells the files a round imported. */
function roundHooks(): { port: MessagePort; next: number } {
  if (!rounds) {
    const { port1, port2 } = new MessageChannel();
    port1.unref();
    register(new URL('./config-hooks.js', import.meta.url), { data: { port: port2, ownCode: ownCode() }, transferList: [port2] });
    rounds = { port: port1, next: 0 };
  }
  return rounds;
}

/**
 * gadget-oci's own modules (its folders and index, beside lib/ whether built or run from
 * source), as path prefixes: they are the command line's, never a project's, even for a
 * project inside gadget-oci's checkout.
 */
function ownCode(): string[] {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  return [...['lib', 'plugins', 'store', 'serve', 'cli'].map((d) => join(root, d) + sep), join(root, 'index.js'), join(root, 'index.ts')];
}

let lastFiles: string[] = [];

/** The project files the last fresh load read, also when it failed (a watch watches them for the fix). */
export function lastConfigFiles(): string[] {
  return lastFiles;
}

/**
 * Imports the config afresh (watch mode): its own modules are evaluated again, through the
 * round's query (ES modules) or an emptied require cache (CommonJS); `files` gets each of them.
 */
async function importFresh(file: string, files: Set<string>): Promise<Record<string, unknown>> {
  const hooks = roundHooks();
  forgetRequired(file);
  try {
    return (await import(`${pathToFileURL(file).href}?gadget-round=${++hooks.next}`)) as Record<string, unknown>;
  } finally {
    for (let m = receiveMessageOnPort(hooks.port); m; m = receiveMessageOnPort(hooks.port)) files.add(m.message as string);
    for (const id of projectRequired(file)) if (id !== file) files.add(id);
    lastFiles = [...files];
  }
}

/** `fresh`: evaluate the file, and the project's own files it loads, again even if this process loaded them before (watch mode). */
export async function loadConfig(cwd: string, explicit?: string, opts: { fresh?: boolean } = {}): Promise<LoadedConfig> {
  const file = findConfig(cwd, explicit);
  if (!file) return { dir: cwd, config: {} };
  let mod: Record<string, unknown>;
  const files = new Set<string>();
  try {
    await registerTsx();
    mod = opts.fresh ? await importFresh(file, files) : ((await import(pathToFileURL(file).href)) as Record<string, unknown>);
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
  return { file, dir: dirname(file), config: config as GadgetConfig, ...(opts.fresh ? { files: [...files] } : {}) };
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
