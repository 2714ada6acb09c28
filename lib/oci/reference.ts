// References as ig writes and completes them: `trace_exec` is
// ghcr.io/inspektor-gadget/gadget/trace_exec:latest, `myorg/x` is ghcr.io/myorg/x:latest,
// `localhost:5000/x` stays on localhost. A "ref" is always a parsed Reference.
import { printable } from '../format.js';
import { GadgetError } from '../errors.js';

export const DEFAULT_REGISTRY = 'ghcr.io';
export const OFFICIAL_PREFIX = 'inspektor-gadget/gadget/';
export const DEFAULT_TAG = 'latest';

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const REPOSITORY_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export class Reference {
  constructor(
    readonly registry: string,
    readonly repository: string,
    readonly tag: string | undefined,
    readonly digest: string | undefined,
  ) {}

  /** registry/repository */
  get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  /** The tag, else the digest: what a registry's /manifests/ endpoint takes. */
  get reference(): string {
    return this.digest ?? this.tag ?? DEFAULT_TAG;
  }

  withTag(tag: string): Reference {
    return new Reference(this.registry, this.repository, tag, undefined);
  }

  withDigest(digest: string): Reference {
    return new Reference(this.registry, this.repository, undefined, digest);
  }

  toString(): string {
    let s = this.name;
    if (this.tag !== undefined) s += `:${this.tag}`;
    if (this.digest !== undefined) s += `@${this.digest}`;
    return s;
  }
}

function malformed(input: string, why: string): GadgetError {
  // One line, inert: the input may come from a file (a layout's ref name), not a person.
  return new GadgetError(printable(`"${input}" is not a valid image reference: ${why}`), {
    exitCode: 2,
    hint: 'write it as [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. ghcr.io/myorg/mygadget:v1',
  });
}

// --- credentials typed into a reference or registry name ------------------------------------
// `user:pass@host/repo`, `http://user:pass@host`: refused, and the text before the '@' that ends
// the user information is never shown (nor logged): at most the user name before its ':'.

const SCHEME_RE = /^[a-z][a-z0-9+.-]*:\/\//i;
/** What follows a reference's '@' when it is a digest (`sha256:...`, or any `algorithm:<hex>`). */
const DIGEST_LIKE_RE = /^(?:sha256:|[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-f0-9]{32,}$)/i;

function isHostLike(text: string): boolean {
  return DOMAIN_RE.test(text) && (/[.:[]/.test(text) || text.toLowerCase() === 'localhost');
}

interface Userinfo {
  /** The input with the secret part of the user information replaced by `***`. */
  shown: string;
  /** The registry host after the user information, when it is one. */
  host: string | undefined;
}

/**
 * The user information (`USER[:PASSWORD]@` before the host, with or without a scheme) of a
 * reference (`kind: 'reference'`, where a trailing `@sha256:...` is a digest) or of a registry
 * name (`kind: 'registry'`, where any '@' is user information); undefined when there is none.
 */
export function findUserinfo(input: string, kind: 'reference' | 'registry'): Userinfo | undefined {
  if (!input.includes('@')) return undefined;
  const scheme = SCHEME_RE.exec(input)?.[0] ?? '';
  let text = input.slice(scheme.length);
  let digest = '';
  if (kind === 'reference') {
    const last = text.lastIndexOf('@');
    const after = text.slice(last + 1);
    if (!after.includes('/') && DIGEST_LIKE_RE.test(after)) {
      digest = text.slice(last);
      text = text.slice(0, last);
    }
  }
  if (!text.includes('@')) return undefined;
  const slash = text.indexOf('/');
  const firstHasAt = text.slice(0, slash < 0 ? undefined : slash).includes('@');
  // The '@' that ends the user information: the last one followed by a host name (a password
  // may hold '@' or '/'); in a reference, one after the first '/' only when a path follows
  // (`ghcr.io/x@1.2` is a mistyped tag, not credentials).
  let end = -1;
  for (let i = text.lastIndexOf('@'); i >= 0; i = i === 0 ? -1 : text.lastIndexOf('@', i - 1)) {
    const after = text.slice(i + 1);
    const cut = after.indexOf('/');
    const host = cut < 0 ? after : after.slice(0, cut);
    if (!isHostLike(host)) continue;
    if (kind === 'reference' && !(firstHasAt && (slash < 0 || i < slash)) && cut < 0) continue;
    end = i;
    break;
  }
  if (kind === 'reference') {
    if (slash < 0) {
      // No repository: `x@v1.2` is a mistyped tag, `alice:pw@localhost:5000` a registry with credentials.
      const userinfo = end < 0 ? '' : text.slice(0, end);
      const host = end < 0 ? '' : text.slice(end + 1);
      if (scheme === '' && !(end >= 0 && (userinfo.includes(':') || host.includes(':') || host.toLowerCase() === 'localhost'))) return undefined;
    } else if (!firstHasAt && end < 0) {
      return undefined;
    }
  }
  if (end < 0) end = firstHasAt ? text.lastIndexOf('@', slash < 0 ? undefined : slash) : text.lastIndexOf('@');
  const userinfo = text.slice(0, end);
  const colon = userinfo.indexOf(':');
  // A user name alone may be a token (`TOKEN@host`): shown only when a password follows it.
  const masked = colon >= 0 ? `${userinfo.slice(0, colon)}:***` : '***';
  const after = text.slice(end + 1);
  const host = after.split('/')[0]!;
  return { shown: `${scheme}${masked}@${after}${digest}`, host: isHostLike(host) ? host : undefined };
}

/** The usage error for credentials in a reference or registry name; it never holds the password. */
export function credentialsError(info: Userinfo, kind: 'reference' | 'registry'): GadgetError {
  const what = kind === 'reference' ? 'a reference' : 'a registry name';
  return new GadgetError(`${what} may not carry credentials: ${info.shown}`, {
    exitCode: 2,
    hint: `log in once with \`gadget login ${info.host ?? 'REGISTRY'} -u USER --password-stdin\` (the password is read from stdin), then use the ${kind === 'reference' ? 'reference' : 'registry name'} without them`,
  });
}

/** Throws the usage error of credentialsError when `input` carries user information. */
export function refuseCredentials(input: string, kind: 'reference' | 'registry'): void {
  const info = findUserinfo(input, kind);
  if (info) throw credentialsError(info, kind);
}

/** Parses and completes a reference the way ig does. */
export function parseRef(input: string): Reference {
  if (typeof input !== 'string' || input.length === 0) throw malformed(String(input), 'it is empty');
  // Never quote a long input that may hold credentials (searching it costs too much).
  if (input.length > 512) throw malformed(input.includes('@') ? '***' : input.slice(0, 40) + '...', 'it is longer than 512 characters');
  refuseCredentials(input, 'reference');
  if (/\s/.test(input)) throw malformed(input, 'it contains white space');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) {
      // `TOKEN@ghcr.io`, `x@v1`, `alice:pa/ss@ghcr.io`: the text before the '@' may be a secret
      // unless it starts as a reference does (`ghcr.io/x@1.2`, `myorg/x@v1`).
      const tail = input.slice(input.lastIndexOf('@') + 1);
      const slash = rest.indexOf('/');
      // A tail that starts as a digest does (`x@sha256:zz`, not a port) is a mistyped digest.
      const digestLike = /^sha256:(?![0-9]+(\/|$))/.test(tail);
      if (!digestLike && (slash < 0 || (!DOMAIN_RE.test(rest.slice(0, slash)) && isHostLike(tail.split('/')[0]!)))) throw malformed(`***@${tail}`, `"${tail}" is not a sha256 digest`);
      throw malformed(input, `"${digest}" is not a sha256 digest`);
    }
  }

  // The tag is after the last ':' that follows the last '/' (a ':' before it is a port).
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw malformed(input, `"${tag}" is not a valid tag`);
  }

  let registry: string;
  let repository: string;
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  if (slash < 0 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    registry = DEFAULT_REGISTRY;
    repository = rest;
  } else {
    registry = first;
    repository = rest.slice(slash + 1);
    if (!DOMAIN_RE.test(registry)) throw malformed(input, `"${registry}" is not a valid registry host`);
    const port = /:(\d+)$/.exec(registry)?.[1];
    if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) throw malformed(input, `${port} is not a port (1-65535)`);
  }
  if (registry === DEFAULT_REGISTRY && !repository.includes('/')) repository = OFFICIAL_PREFIX + repository;
  if (!REPOSITORY_RE.test(repository)) {
    throw malformed(input, `"${repository}" is not a valid repository (lower-case letters, digits, and . _ - / separators)`);
  }
  if (registry.length + 1 + repository.length > 255) throw malformed(input, 'the name is longer than 255 characters');
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return new Reference(registry, repository, tag, digest);
}

/** True for a tag that names a signature or referrer index rather than an image. */
export function isSignatureTag(tag: string): boolean {
  return /^sha256-[a-f0-9]{64}(\.(sig|att|sbom))?$/.test(tag);
}

/** The digest a signature tag (`sha256-<hex>[.sig|.att|.sbom]`) is about, else undefined. */
export function signatureTagSubject(tag: string): string | undefined {
  return isSignatureTag(tag) ? `sha256:${tag.slice('sha256-'.length, 'sha256-'.length + 64)}` : undefined;
}
