// Registry mirrors, as containerd's hosts configuration does it: `ghcr.io` (or a repository
// prefix such as `ghcr.io/inspektor-gadget`) is read from `registry.internal:5000/mirror`
// first, the repository path kept under the mirror's prefix, and from the original only when
// `fallback` allows it. So `gadget pull trace_exec` works in an air-gapped network without
// renaming anything: the image is still stored as ghcr.io/inspektor-gadget/gadget/trace_exec.
import { GadgetError, messageOf } from '../../lib/errors.js';
import { parseRef, Reference } from '../../lib/oci/reference.js';
import type { Descriptor } from '../../lib/oci/types.js';
import type { RegistryPool, RemoteRepository } from '../../lib/registry/index.js';
import type { RegistryMirror } from './config.js';

export interface MirrorRoute {
  /** Where to read, in order: the mirrors, then (with fallback) the original. */
  candidates: Reference[];
  /** The configuration key that matched (`ghcr.io/inspektor-gadget`), if any. */
  matched?: string;
  fallback: boolean;
}

/** The longest key that covers `ref`: the registry, or a repository prefix of it. */
function matchKey(ref: Reference, mirrors: Record<string, RegistryMirror>): { key: string; rest: string } | undefined {
  let best: { key: string; rest: string } | undefined;
  for (const key of Object.keys(mirrors)) {
    const k = key.replace(/\/+$/, '');
    const slash = k.indexOf('/');
    const host = slash < 0 ? k : k.slice(0, slash);
    const prefix = slash < 0 ? '' : k.slice(slash + 1);
    if (host.toLowerCase() !== ref.registry.toLowerCase()) continue;
    let rest: string;
    if (prefix === '') rest = ref.repository;
    else if (ref.repository === prefix) rest = '';
    else if (ref.repository.startsWith(`${prefix}/`)) rest = ref.repository.slice(prefix.length + 1);
    else continue;
    if (!best || k.length > best.key.length) best = { key, rest };
  }
  return best;
}

/** Where `ref` is read from under the configured mirrors. */
export function mirrorRoute(ref: Reference, mirrors: Record<string, RegistryMirror> = {}): MirrorRoute {
  const match = matchKey(ref, mirrors);
  if (!match) return { candidates: [ref], fallback: true };
  const config = mirrors[match.key]!;
  const candidates = config.mirrors.map((mirror) => {
    const base = mirror.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
    const slash = base.indexOf('/');
    const host = slash < 0 ? base : base.slice(0, slash);
    const repository = [slash < 0 ? '' : base.slice(slash + 1), match.rest].filter(Boolean).join('/');
    if (!repository) throw new GadgetError(`the mirror ${mirror} for ${match.key} leaves no repository name for ${ref}`, { exitCode: 2, hint: 'map a registry to a mirror with a path, or a repository prefix to a mirror repository prefix' });
    const parsed = parseRef(`${host}/${repository}`);
    if (parsed.registry !== host) throw new GadgetError(`the mirror ${mirror} for ${match.key} must start with a registry host`, { exitCode: 2 });
    return new Reference(parsed.registry, parsed.repository, ref.tag, ref.digest);
  });
  const fallback = config.fallback ?? true;
  return { candidates: fallback ? [...candidates, ref] : candidates, matched: match.key, fallback };
}

export interface ResolvedSource {
  repository: RemoteRepository;
  descriptor: Descriptor;
  /** The reference it was found under (a mirror's, or `ref` itself). */
  via: Reference;
}

/**
 * Resolves `ref` through the mirrors: the first candidate that has it wins. A mirror that
 * lacks the image, refuses access or cannot be reached is passed over; when every candidate
 * fails, the error names each of them.
 */
export async function resolveThroughMirrors(ref: Reference, pool: RegistryPool, mirrors: Record<string, RegistryMirror> | undefined, signal?: AbortSignal): Promise<ResolvedSource> {
  const { value, via } = await firstThroughMirrors(ref, mirrors, signal, { what: 'image', failed: `${ref} could not be read`, label: (c) => c.toString() }, async (candidate) => {
    const repository = pool.repository(candidate, 'source');
    return { repository, descriptor: await repository.resolve(candidate.digest ?? candidate.tag ?? 'latest', signal) };
  });
  return { ...value, via };
}

/** The tags of a repository and, when a mirror answered, the mirror's repository. */
export interface ListedTags {
  tags: string[];
  via?: string;
}

/**
 * The tags of `repository` through the mirrors, by the route pull reads an image of it: each
 * mirror in order, then the original only with `fallback`; the first that lists them answers.
 */
export async function listTagsThroughMirrors(repository: Reference, pool: RegistryPool, mirrors: Record<string, RegistryMirror> | undefined, signal?: AbortSignal): Promise<ListedTags> {
  const { value: tags, via } = await firstThroughMirrors(repository, mirrors, signal, { what: 'repository', failed: `the tags of ${repository.name} could not be listed`, label: (c) => c.name }, (candidate) =>
    pool.repository(candidate, 'source').listTags(signal),
  );
  return via.name === repository.name ? { tags } : { tags, via: via.name };
}

/**
 * `attempt` on each candidate of `ref`'s mirror route until one succeeds. A candidate that
 * fails (lacks it, refuses access, is out of reach) is passed over; when all fail, the error
 * names each, with the last one's exit code (2 when it was out of reach). Without a mirror for
 * `ref`, its own error, as it is: it is about the reference itself.
 */
async function firstThroughMirrors<T>(
  ref: Reference,
  mirrors: Record<string, RegistryMirror> | undefined,
  signal: AbortSignal | undefined,
  words: { what: 'image' | 'repository'; failed: string; label: (candidate: Reference) => string },
  attempt: (candidate: Reference) => Promise<T>,
): Promise<{ value: T; via: Reference }> {
  const route = mirrorRoute(ref, mirrors);
  const failures: string[] = [];
  let last: unknown;
  for (const candidate of route.candidates) {
    try {
      return { value: await attempt(candidate), via: candidate };
    } catch (err) {
      if (signal?.aborted || !route.matched) throw err;
      last = err;
      failures.push(`${words.label(candidate)}: ${messageOf(err)}`);
    }
  }
  const why = route.fallback ? '' : ` (registries.mirrors["${route.matched}"] has fallback: false)`;
  throw new GadgetError(`${words.failed} from any of its mirrors${why}: ${failures.join('; ')}`, {
    exitCode: last instanceof GadgetError ? last.exitCode : 1,
    hint: route.fallback ? `check that the ${words.what} is mirrored and the mirrors are reachable` : `sync the ${words.what} into the mirror first, or allow fallback to the original registry`,
  });
}
