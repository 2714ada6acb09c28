// Module hooks for watch mode (registered by config.ts with module.register). A config
// imported with `?gadget-round=N` passes that query on to the project's own modules it
// imports, so each round evaluates them afresh instead of reusing Node's module cache, and
// tells the main thread each such file, which the watch then watches. Packages (node_modules)
// and gadget-oci itself are left alone: one instance of each, shared with the command line.
import { fileURLToPath } from 'node:url';
import type { MessagePort } from 'node:worker_threads';

interface Data {
  port: MessagePort;
  /** gadget-oci's own modules (path prefixes): the command line's, never evaluated twice. */
  ownCode: string[];
}

interface ResolveContext {
  parentURL?: string;
}

interface Resolved {
  url: string;
  [key: string]: unknown;
}

type NextResolve = (specifier: string, context: ResolveContext) => Promise<Resolved>;

const QUERY = 'gadget-round';
let data: Data | undefined;

export function initialize(given: Data): void {
  data = given;
}

export async function resolve(specifier: string, context: ResolveContext, next: NextResolve): Promise<Resolved> {
  const resolved = await next(specifier, context);
  const round = context.parentURL?.startsWith('file:') ? new URL(context.parentURL).searchParams.get(QUERY) : null;
  if (!data || round === null || !resolved.url.startsWith('file:')) return resolved;
  const url = new URL(resolved.url);
  const path = fileURLToPath(url);
  if (path.split(/[\\/]/).includes('node_modules') || data.ownCode.some((p) => path.startsWith(p))) return resolved;
  data.port.postMessage(path);
  url.searchParams.set(QUERY, round);
  return { ...resolved, url: url.href };
}
