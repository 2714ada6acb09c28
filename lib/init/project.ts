// `gadget init`: writes a new project (package.json, tsconfig, gadget.config.ts, one eBPF
// gadget and optionally a wasm one). Every file is checked first and none is overwritten:
// either the whole project is written or nothing is.
import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { GadgetError, usageError } from '../errors.js';
import { packageVersion } from '../version.js';
import * as t from './templates.js';
import { makeFolders } from '../folders.js';

export interface InitOptions {
  wasm?: boolean;
  /** Image repository prefix (default `ghcr.io/<project name>`). */
  registry?: string;
}

export interface InitResult {
  dir: string;
  files: string[];
}

/** npm's rules for a package name, roughly: lower case, no spaces, URL-safe. */
function packageName(dir: string): string {
  const name = basename(dir).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[._-]+/, '');
  return name || 'gadgets';
}

export function projectFiles(dir: string, opts: InitOptions = {}): Map<string, string | Buffer> {
  const name = packageName(dir);
  const o: t.TemplateOptions = { name, registry: opts.registry ?? `ghcr.io/${name}`, version: `^${packageVersion()}`, wasm: Boolean(opts.wasm) };
  const files = new Map<string, string | Buffer>([
    ['package.json', t.packageJSON(o)],
    ['tsconfig.json', t.TSCONFIG],
    ['.gitignore', t.GITIGNORE],
    ['gadget.config.ts', t.configFile(o)],
    ['gadgets/trace_exec/program.bpf.c', t.EBPF_SOURCE],
    ['gadgets/trace_exec/gadget.yaml', t.EBPF_METADATA],
    ['gadgets/trace_exec/build.yaml', t.EBPF_BUILD],
  ]);
  if (o.wasm) {
    files.set('gadgets/hello_wasm/program.wat', t.WASM_TEXT);
    files.set('gadgets/hello_wasm/program.wasm', t.WASM_MODULE);
    files.set('gadgets/hello_wasm/gadget.yaml', t.WASM_METADATA);
    files.set('gadgets/hello_wasm/build.yaml', t.WASM_BUILD);
  }
  return files;
}

async function present(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export async function initProject(dir: string, opts: InitOptions = {}): Promise<InitResult> {
  const files = projectFiles(dir, opts);
  const existing: string[] = [];
  for (const rel of files.keys()) if (await present(join(dir, rel))) existing.push(rel);
  if (existing.length > 0) {
    throw usageError(`${dir} already has ${existing.join(', ')}: gadget init writes nothing over existing files`, 'run it in an empty folder, or `gadget init NEW_FOLDER`');
  }
  for (const [rel, content] of files) {
    const file = join(dir, rel);
    makeFolders(dirname(file), 'give `gadget init` a folder on a writable file system');
    // O_EXCL: a file that appeared since the check is still never overwritten.
    const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644).catch((err: NodeJS.ErrnoException) => {
      throw new GadgetError(`cannot write ${file}: ${err.code === 'EEXIST' ? 'it appeared while writing the project' : err.message}`, { exitCode: 2 });
    });
    try {
      await handle.writeFile(content);
    } finally {
      await handle.close();
    }
  }
  return { dir, files: [...files.keys()].map((f) => relative(dir, join(dir, f))) };
}
