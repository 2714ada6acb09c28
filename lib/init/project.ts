// `gadget init`: writes a new project (package.json, tsconfig, gadget.config.ts, one eBPF
// gadget and optionally a wasm one). Every file is checked first and none is overwritten:
// either the whole project is written or nothing is.
import { constants, readFileSync, type Stats } from 'node:fs';
import { lstat, open, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { GadgetError, fileSystemError, messageOf, usageError } from '../errors.js';
import { packageRoot, packageVersion } from '../version.js';
import { imagePrefix, nameFromFolder } from './names.js';
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

/** The version range of a devDependency of this package (the project's tsc is the one this package is built with). */
function devDependency(name: string, fallback: string): string {
  try {
    const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { devDependencies?: Record<string, unknown> };
    const range = pkg.devDependencies && Object.hasOwn(pkg.devDependencies, name) ? pkg.devDependencies[name] : undefined;
    return typeof range === 'string' ? range : fallback;
  } catch {
    return fallback;
  }
}

/** The files of a new project in `dir`; a --registry that makes no valid reference is a usage error (exit 2). */
export function projectFiles(dir: string, opts: InitOptions = {}): Map<string, string | Buffer> {
  const wasm = Boolean(opts.wasm);
  const registry = imagePrefix(dir, opts.registry, wasm ? ['trace_exec', 'hello_wasm'] : ['trace_exec']);
  const o: t.TemplateOptions = {
    name: nameFromFolder(dir) || 'gadgets',
    registry,
    version: `^${packageVersion()}`,
    typescript: devDependency('typescript', '^5'),
    wasm,
  };
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

/** The entry at `path` without following a link (a dangling link is an existing name); undefined when there is none. */
async function entry(path: string, follow = false): Promise<Stats | undefined> {
  try {
    return await (follow ? stat(path) : lstat(path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Following a link: a loop or a path through a file leads nowhere, as a dangling link does.
    if (code === 'ENOENT' || (follow && (code === 'ELOOP' || code === 'ENOTDIR'))) return undefined;
    throw fileSystemError(err) ?? new GadgetError(`cannot check ${path}: ${messageOf(err)}`, { exitCode: 2, hint: 'check the folder\'s permissions' });
  }
}

/**
 * What is in the way of writing `rel` under `dir`, as it is named in the refusal: the file
 * itself (whatever it is, a dangling link too), or a folder on its path that is not a folder
 * (nor a link to one); undefined when the way is free.
 */
async function inTheWay(dir: string, rel: string): Promise<string | undefined> {
  const parts = rel.split('/');
  for (let i = 1; i <= parts.length; i++) {
    const sub = parts.slice(0, i).join('/');
    const st = await entry(join(dir, sub));
    if (!st) return undefined;
    const last = i === parts.length;
    if (st.isSymbolicLink()) {
      const target = await entry(join(dir, sub), true);
      if (!target) return `${sub} (a symbolic link to nothing)`;
      if (last) return `${sub} (a symbolic link)`;
      if (!target.isDirectory()) return `${sub} (a link to a file, where a folder goes)`;
    } else if (last) {
      return sub;
    } else if (!st.isDirectory()) {
      return `${sub} (a file, where a folder goes)`;
    }
  }
  return undefined;
}

export async function initProject(dir: string, opts: InitOptions = {}): Promise<InitResult> {
  const files = projectFiles(dir, opts);
  const existing = new Set<string>();
  for (const rel of files.keys()) {
    const found = await inTheWay(dir, rel);
    if (found) existing.add(found);
  }
  if (existing.size > 0) {
    throw usageError(`${dir} already has ${[...existing].join(', ')}: gadget init writes nothing over existing files`, 'run it in an empty folder, or `gadget init NEW_FOLDER`');
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
