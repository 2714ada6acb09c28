// References as ig writes and completes them: `trace_exec` is
// ghcr.io/inspektor-gadget/gadget/trace_exec:latest, `myorg/x` is ghcr.io/myorg/x:latest,
// `localhost:5000/x` stays on localhost. A "ref" is always a parsed Reference.
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
  return new GadgetError(`"${input}" is not a valid image reference: ${why}`, {
    exitCode: 2,
    hint: 'write it as [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. ghcr.io/myorg/mygadget:v1',
  });
}

/** Parses and completes a reference the way ig does. */
export function parseRef(input: string): Reference {
  if (typeof input !== 'string' || input.length === 0) throw malformed(String(input), 'it is empty');
  if (input.length > 512) throw malformed(input.slice(0, 40) + '...', 'it is longer than 512 characters');
  if (/\s/.test(input)) throw malformed(input, 'it contains white space');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw malformed(input, `"${digest}" is not a sha256 digest`);
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
