// The names `gadget init` writes into a project: the package and image-repository name made
// from the folder's name, and the image prefix of `--registry`, which must make valid
// references (OCI distribution grammar) when `/trace_exec:latest` is appended to it.
import { basename } from 'node:path';
import { usageError } from '../errors.js';
import { parseRef, refuseCredentials } from '../oci/reference.js';

/** One path component of a repository name (lower case; ., _, __ or dashes between). */
const COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$/;
const REGISTRY_HINT = 'give --registry as REGISTRY[/PATH] in lower case, without a tag or digest, e.g. --registry ghcr.io/myorg';

/**
 * The folder's name as a repository path component (also a valid npm package name):
 * `Weird Name!!` is `weird-name`, `a..b` is `a-b`; "" when nothing of it is usable.
 */
export function nameFromFolder(dir: string): string {
  return basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    // Between two letters or digits only `.`, `_`, `__` or dashes may stand.
    .replace(/[._-]{2,}/g, (s) => (s === '__' || /^-+$/.test(s) ? s : '-'))
    .replace(/^[._-]+/, '')
    .slice(0, 64)
    .replace(/[._-]+$/, '');
}

/** The image prefix for a project in `dir`: `registry` checked, else ghcr.io/<folder name>. */
export function imagePrefix(dir: string, registry: string | undefined, gadgets: string[]): string {
  if (registry !== undefined) {
    checkRegistry(registry, gadgets);
    return registry;
  }
  const name = nameFromFolder(dir);
  if (name === '') {
    throw usageError(`cannot make an image repository name from the folder name ${JSON.stringify(basename(dir))}`, 'name the image prefix with --registry REGISTRY[/PATH], e.g. --registry ghcr.io/myorg');
  }
  return `ghcr.io/${name}`;
}

/** Throws a usage error (exit 2) unless `prefix/GADGET:latest` is a valid reference, as written, for each gadget. */
export function checkRegistry(prefix: string, gadgets: string[]): void {
  const bad = (why: string) => usageError(`--registry ${JSON.stringify(prefix)} is not an image prefix: ${why}`, REGISTRY_HINT);
  if (prefix === '') throw usageError('--registry needs an image prefix, but it is empty', REGISTRY_HINT);
  if (prefix.includes('@')) {
    if (/@sha(?:256|384|512):[a-f0-9]*$/i.test(prefix)) throw bad('it has a digest, and the prefix names repositories, not an image');
    refuseCredentials(prefix, 'registry'); // never quotes a password
    throw bad('"@" may not appear in it');
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(prefix)) throw bad('it starts with a URL scheme');
  const [host = '', ...path] = prefix.split('/');
  if (!HOST_RE.test(host) || !(/[.:[]/.test(host) || host === 'localhost')) {
    throw bad(`it does not start with a registry host (such as ghcr.io or localhost:5000)`);
  }
  for (const c of path) {
    if (c === '') throw bad('it has an empty path component (a "/" too many)');
    if (c.includes(':')) throw bad(`it has a tag (${JSON.stringify(c)}), and the prefix names repositories, not an image`);
    if (!COMPONENT_RE.test(c)) throw bad(`${JSON.stringify(c)} is not a repository path component (lower-case letters and digits, separated by ".", "_", "__" or "-")`);
  }
  for (const gadget of gadgets) {
    const ref = `${prefix}/${gadget}:latest`;
    let read: string;
    try {
      read = parseRef(ref).toString();
    } catch (err) {
      throw bad(`${ref} is not a valid reference (${(err as Error).message.replace(/^.*?: /, '')})`);
    }
    // `ghcr.io/trace_exec` is completed to Inspektor Gadget's own ghcr.io/inspektor-gadget/gadget/trace_exec.
    if (read !== ref) throw bad(`${ref} would be read as ${read}`);
  }
}
