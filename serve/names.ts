// Repository names on the server <-> references in the store. One rule, the one the rest of
// gadget-oci uses: a name is completed as ig completes references. So the store's
// `ghcr.io/inspektor-gadget/gadget/trace_exec:latest` is pulled as
// `HOST:PORT/ghcr.io/inspektor-gadget/gadget/trace_exec:latest`, and
// `HOST:PORT/trace_exec:latest` or `HOST:PORT/myorg/x:v1` find what `gadget pull trace_exec` or
// `gadget pull myorg/x:v1` would have stored. containerd, using the server as a mirror, asks
// for `inspektor-gadget/gadget/trace_exec` with `?ns=ghcr.io`: the namespace is put in front.
// Cosign's signature tags (`sha256-<hex>.sig`) are kept bare in the store, as ig keeps them.
import { DEFAULT_REGISTRY, DEFAULT_TAG, OFFICIAL_PREFIX, isSignatureTag, parseRef } from '../lib/oci/reference.js';
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

/**
 * The store keys `repository:tag` is read from, the full reference first. Other tools store
 * short ones (`skopeo copy ... oci:STORE:g0001` writes "g0001"), and splitKey() lists those
 * under the full name they complete to, so they are read under it too: after the full key, as
 * `gadget` itself resolves a short name. Only keys splitKey() gives back as this very tag.
 */
export function storedKeys(repository: string, tag: string): string[] {
  const key = keyOf(repository, tag);
  if (isSignatureTag(tag)) return [key];
  const slash = repository.indexOf('/');
  const [registry, path] = [repository.slice(0, slash), repository.slice(slash + 1)];
  const names = [repository];
  if (registry === DEFAULT_REGISTRY) {
    names.push(path);
    const short = path.startsWith(OFFICIAL_PREFIX) ? path.slice(OFFICIAL_PREFIX.length) : undefined;
    if (short) names.push(short, `${registry}/${short}`);
  }
  const short = names.flatMap((n) => (tag === DEFAULT_TAG ? [`${n}:${tag}`, n] : [`${n}:${tag}`])).filter((k) => {
    const split = k === key ? undefined : splitKey(k);
    return split?.repository === repository && split.tag === tag;
  });
  return [key, ...short];
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
