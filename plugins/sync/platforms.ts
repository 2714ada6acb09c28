// Copying only some platforms of a multi-arch image. The kept manifests need a new index, with
// another digest: signatures made for the original index do not apply to it. So a subset is
// refused unless asked for, and then copied without the original's signatures.
import { Readable } from 'node:stream';
import { GadgetError } from '../../lib/errors.js';
import { fetchManifest } from '../../lib/oci/copy.js';
import { sha256 } from '../../lib/oci/digest.js';
import { encodeJSONBytes } from '../../lib/oci/json.js';
import { INDEX_TYPES } from '../../lib/oci/mediatypes.js';
import type { Referrer, Target } from '../../lib/oci/target.js';
import type { Descriptor, Platform } from '../../lib/oci/types.js';

/** `amd64`, `linux/arm64`, `linux/arm64/v8` -> the parts to compare. */
function parsePlatform(text: string): { os?: string; architecture: string; variant?: string } {
  const parts = text.split('/');
  if (parts.length === 1) return { architecture: parts[0]! };
  return { os: parts[0], architecture: parts[1]!, variant: parts[2] };
}

function platformName(p: Platform | undefined): string {
  return p ? [p.os, p.architecture, p.variant].filter(Boolean).join('/') : '(no platform)';
}

function matches(p: Platform | undefined, wanted: ReturnType<typeof parsePlatform>[]): boolean {
  // Entries without a platform (attestations, ...) belong to every platform.
  if (!p) return true;
  return wanted.some((w) => w.architecture === p.architecture && (!w.os || w.os === p.os) && (!w.variant || w.variant === p.variant));
}

/** A source with one extra document held in memory (the subset index); read-only. */
class WithDocument implements Target {
  readonly name: string;

  constructor(
    private readonly base: Target,
    private readonly extra: Descriptor,
    private readonly bytes: Buffer,
  ) {
    this.name = base.name;
  }

  async fetch(descriptor: Descriptor, signal?: AbortSignal): Promise<Readable> {
    if (descriptor.digest === this.extra.digest) return Readable.from([this.bytes]);
    return this.base.fetch(descriptor, signal);
  }

  async exists(descriptor: Descriptor, signal?: AbortSignal): Promise<boolean> {
    return descriptor.digest === this.extra.digest || this.base.exists(descriptor, signal);
  }

  async push(): Promise<void> {
    throw new GadgetError(`${this.name} is read-only here`);
  }

  async tag(): Promise<void> {
    throw new GadgetError(`${this.name} is read-only here`);
  }

  resolve(reference: string, signal?: AbortSignal): Promise<Descriptor> {
    return this.base.resolve(reference, signal);
  }

  async referrers(): Promise<Referrer[]> {
    return []; // the subset has no signatures
  }
}

export interface Selection {
  source: Target;
  root: Descriptor;
  /** True when only some platforms are copied (a new index). */
  subset: boolean;
}

/**
 * The graph to copy for `platforms`: the image itself when it has no other platform, else a
 * new index of the kept ones (only with `allowSubset`). `what` names the image for messages.
 */
export async function selectPlatforms(source: Target, root: Descriptor, platforms: string[] | undefined, allowSubset: boolean, what: string, signal?: AbortSignal): Promise<Selection> {
  if (!platforms || platforms.length === 0 || !INDEX_TYPES.has(root.mediaType)) return { source, root, subset: false };
  const wanted = platforms.map(parsePlatform);
  const { doc } = await fetchManifest(source, root, signal);
  const all = doc.manifests ?? [];
  const kept = all.filter((d) => matches(d.platform, wanted));
  if (kept.length === all.length) return { source, root, subset: false };
  const names = [...new Set(all.map((d) => platformName(d.platform)))].join(', ');
  if (kept.length === 0) throw new GadgetError(`${what} has none of the platforms ${platforms.join(', ')} (it has ${names})`, { hint: 'change the platforms of the mirror set' });
  if (!allowSubset) {
    throw new GadgetError(
      `${what}: keeping only ${[...new Set(kept.map((d) => platformName(d.platform)))].join(', ')} of its platforms (${names}) makes a new index with another digest, so its signatures (made for ${root.digest}) would no longer apply`,
      { hint: 'copy every platform (drop the platforms filter), or allow the subset with allowPlatformSubset: true / --allow-subset; the copy is then unsigned' },
    );
  }
  const bytes = encodeJSONBytes({ ...doc, manifests: kept });
  const subsetRoot: Descriptor = { mediaType: root.mediaType, digest: sha256(bytes), size: bytes.length };
  return { source: new WithDocument(source, subsetRoot, bytes), root: subsetRoot, subset: true };
}
