// Repository names on the server <-> references in the store. One rule, the one the rest of
// gadget-oci uses: a name is completed as ig completes references. So the store's
// `ghcr.io/inspektor-gadget/gadget/trace_exec:latest` is pulled as
// `HOST:PORT/ghcr.io/inspektor-gadget/gadget/trace_exec:latest`, and
// `HOST:PORT/trace_exec:latest` or `HOST:PORT/myorg/x:v1` find what `gadget pull trace_exec` or
// `gadget pull myorg/x:v1` would have stored. containerd, using the server as a mirror, asks
// for `inspektor-gadget/gadget/trace_exec` with `?ns=ghcr.io`: the namespace is put in front.
// Cosign's signature tags (`sha256-<hex>.sig`) are kept bare in the store, as ig keeps them.
import { isSignatureTag, parseRef } from '../lib/oci/reference.js';
import { storeKey } from '../store/store.js';
import { RegistryError } from './http.js';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;

/** The full repository (`ghcr.io/org/x`) a request names, with containerd's `ns` in front. */
export function repositoryOf(name: string, ns: string | null): string {
  const parts = name.split('/');
  if (!parts.every((p) => COMPONENT.test(p))) throw new RegistryError('NAME_INVALID', `invalid repository name "${name}"`);
  const full = ns ? `${ns}/${name}` : name;
  let ref;
  try {
    ref = parseRef(full);
  } catch {
    throw new RegistryError('NAME_INVALID', `invalid repository name "${full}"`);
  }
  // Only through ?ns= can a port get here (a name component has no ':'). splitKey() lists no
  // reference with a port, so the server would write a repository whose tag list it denies.
  if (ref.registry.includes(':')) {
    throw new RegistryError('NAME_INVALID', `?ns=${ns ?? ''} names a registry with a port: a repository name has no port, so such references are not served by name`);
  }
  return `${ref.registry}/${ref.repository}`;
}

/** The store key of `repository:tag`. */
export function keyOf(repository: string, tag: string): string {
  if (!TAG.test(tag)) throw new RegistryError('MANIFEST_INVALID', `invalid tag "${tag}"`);
  return isSignatureTag(tag) ? tag : storeKey(`${repository}:${tag}`);
}

/** A store key split into the repository and tag the server lists it under (undefined: not servable by name). */
export function splitKey(key: string): { repository: string; tag: string } | undefined {
  if (isSignatureTag(key)) return undefined;
  try {
    const ref = parseRef(key);
    if (!ref.tag) return undefined;
    const repository = `${ref.registry}/${ref.repository}`;
    // Listed only under a name that repositoryOf() reads back as itself: a registry with a port
    // (not valid in a repository name) or upper case is not served by name, and not listed.
    if (repositoryOf(repository, null) !== repository) return undefined;
    return { repository, tag: ref.tag };
  } catch {
    return undefined;
  }
}
