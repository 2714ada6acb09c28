// Copying only some platforms of a multi-arch image. The kept manifests need a new index, with
// another digest: signatures made for the original index do not apply to it. So a subset is
// refused unless asked for, and then copied without the original's signatures.
import { Readable } from 'node:stream';
import { GadgetError, usageError } from '../../lib/errors.js';
import { fetchManifest, readAll } from '../../lib/oci/copy.js';
import { DAMAGED_HINT, sha256 } from '../../lib/oci/digest.js';
import { encodeJSONBytes } from '../../lib/oci/json.js';
import { INDEX_TYPES, MT_OCI_CONFIG } from '../../lib/oci/mediatypes.js';
import { MAX_MANIFEST_BYTES, type Referrer, type Target } from '../../lib/oci/target.js';
import type { Descriptor, Platform } from '../../lib/oci/types.js';
import { closest } from '../../lib/suggest.js';

// ---- which platforms exist ---------------------------------------------------------------
//
// The OCI image spec (image-index.md, `platform`) says indexes SHOULD use Go's names: GOOS for
// `os` and GOARCH for `architecture` (go/build's syslist.go). A `--platform` or `platforms:`
// value outside them names no image anywhere: it is a typo (`amd46`), refused before any
// request, not a platform every image would "lack". This is the one list of them.

/** Every GOARCH: the architectures an OCI image index may name. */
export const OCI_ARCHITECTURES: readonly string[] = [
  '386', 'amd64', 'amd64p32', 'arm', 'armbe', 'arm64', 'arm64be', 'loong64', 'mips', 'mipsle', 'mips64', 'mips64le',
  'mips64p32', 'mips64p32le', 'ppc', 'ppc64', 'ppc64le', 'riscv', 'riscv64', 's390', 's390x', 'sparc', 'sparc64', 'wasm',
];

/** Every GOOS: the operating systems an OCI image index may name. */
export const OCI_OPERATING_SYSTEMS: readonly string[] = [
  'aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'hurd', 'illumos', 'ios', 'js', 'linux', 'nacl', 'netbsd',
  'openbsd', 'plan9', 'solaris', 'wasip1', 'windows', 'zos',
];

/** Other tools' names for Go's architectures (uname -m, Debian): what each is written as here. */
const ARCHITECTURE_ALIASES: Record<string, string> = {
  x86_64: 'amd64', 'x86-64': 'amd64', x64: 'amd64', aarch64: 'arm64', armv8: 'arm64', i386: '386', i486: '386', i586: '386',
  i686: '386', x86: '386', armhf: 'arm/v7', armv7: 'arm/v7', armv7l: 'arm/v7', armel: 'arm/v6', armv6: 'arm/v6',
  armv6l: 'arm/v6', ppc64el: 'ppc64le', loongarch64: 'loong64',
};

const VARIANT_RE = /^[a-z0-9][a-z0-9._-]*$/;

const PLATFORM_HINT = 'a platform is ARCH or OS/ARCH[/VARIANT] in Go\'s names, e.g. amd64, linux/arm64 or linux/arm/v7; gadget images are built for amd64 and arm64';

/**
 * Refuses (exit 2) a platform that no OCI image can have: not `ARCH` or `OS/ARCH[/VARIANT]`, or
 * an architecture or operating system outside Go's names (OCI_ARCHITECTURES,
 * OCI_OPERATING_SYSTEMS). The message names `where` (`--platform`, `FILE: mirrors.SET.platforms[0]`)
 * and the value; the hint suggests the nearest platform ("did you mean amd64?"). A valid
 * platform that an image lacks is not refused here: that image fails when it is copied.
 */
export function checkPlatform(value: string, where: string): void {
  const refuse = (why: string, suggestion?: string): never => {
    const better = suggestion !== undefined && suggestion !== value ? `did you mean ${suggestion}? (${PLATFORM_HINT})` : PLATFORM_HINT;
    throw usageError(`${where} ${JSON.stringify(value)} is not a platform: ${why}`, better);
  };
  const parts = value.split('/');
  if (parts.length > 3 || parts.some((p) => p === '')) return refuse('write it ARCH or OS/ARCH[/VARIANT]', parts.length > 1 ? fixParts(parts.filter((p) => p !== '')) : undefined);
  if (parts.length === 1) {
    const [arch] = parts as [string];
    if (!OCI_ARCHITECTURES.includes(arch)) return refuse(`${JSON.stringify(arch)} is not an architecture OCI images use`, fixParts(parts));
    return;
  }
  const [os, arch, variant] = parts as [string, string, string | undefined];
  const osKnown = OCI_OPERATING_SYSTEMS.includes(os);
  const archKnown = OCI_ARCHITECTURES.includes(arch);
  // `amd64/linux`: the two the other way round.
  if (!osKnown && !archKnown && OCI_ARCHITECTURES.includes(os) && OCI_OPERATING_SYSTEMS.includes(arch)) {
    return refuse('the operating system comes first', [arch, os, ...(variant === undefined ? [] : [variant])].join('/'));
  }
  if (!osKnown) return refuse(`${JSON.stringify(os)} is not an operating system OCI images use`, fixParts(parts));
  if (!archKnown) return refuse(`${JSON.stringify(arch)} is not an architecture OCI images use`, fixParts(parts));
  if (variant !== undefined && !VARIANT_RE.test(variant)) return refuse(`${JSON.stringify(variant)} is not a variant (v7, v8, ...)`);
}

/** The known architecture (with its variant, for `armv7`) nearest to `arch`, if one is near. */
function nearestArchitecture(arch: string): string | undefined {
  return ARCHITECTURE_ALIASES[arch.toLowerCase()] ?? closest(arch, OCI_ARCHITECTURES);
}

/**
 * `os/arch[/variant]` with its unknown parts replaced by the nearest known ones; undefined when
 * one has none. A lone architecture whose alias has a variant (`armv7`) gets its OS too
 * (`linux/arm/v7`): a platform of two parts is read as OS/ARCH.
 */
function fixParts(parts: string[]): string | undefined {
  if (parts.length === 1) {
    const near = nearestArchitecture(parts[0]!);
    return near?.includes('/') ? `linux/${near}` : near;
  }
  const [os, arch, ...rest] = parts as [string, string, ...string[]];
  const fixedOs = OCI_OPERATING_SYSTEMS.includes(os) ? os : closest(os, OCI_OPERATING_SYSTEMS);
  const fixedArch = OCI_ARCHITECTURES.includes(arch) ? arch : nearestArchitecture(arch);
  if (fixedOs === undefined || fixedArch === undefined) return undefined;
  // An alias with its own variant (`armv7` -> `arm/v7`) replaces the one written.
  return [fixedOs, fixedArch, ...(fixedArch.includes('/') ? [] : rest)].slice(0, 3).join('/');
}

/** `amd64`, `linux/arm64`, `linux/arm64/v8` -> the parts to compare. */
function parsePlatform(text: string): { os?: string; architecture: string; variant?: string } {
  const parts = text.split('/');
  if (parts.length === 1) return { architecture: parts[0]! };
  return { os: parts[0], architecture: parts[1]!, variant: parts[2] };
}

function platformName(p: Platform | undefined): string {
  return p ? [p.os, p.architecture, p.variant].filter(Boolean).join('/') : '(no platform)';
}

function matches(p: Platform, wanted: ReturnType<typeof parsePlatform>[]): boolean {
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

  get holdsTrueSizes(): boolean | undefined {
    return this.base.holdsTrueSizes; // the extra document's own descriptors come from the base's
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

/** Indexes nested deeper than this are refused: no tool writes them, and a loop must end. */
const MAX_NESTING = 4;

/** Image configs that name the platform they were built for (`os`, `architecture`, `variant`). */
const IMAGE_CONFIG_TYPES = new Set([MT_OCI_CONFIG, 'application/vnd.docker.container.image.v1+json']);

const PLATFORMS_HINT = "ask for platforms it has (--platform, or the mirror set's platforms)";

/**
 * The platforms of an entry of an index: its own, or for an index nested in it (no platform
 * on its descriptor) the platforms of its entries, walked. Undefined for an entry that belongs
 * to every platform (an attestation, an index of only such).
 */
async function entryPlatforms(source: Target, entry: Descriptor, what: string, depth: number, signal?: AbortSignal): Promise<Platform[] | undefined> {
  if (entry.platform) return [entry.platform];
  if (!INDEX_TYPES.has(entry.mediaType)) return undefined;
  if (depth >= MAX_NESTING) {
    throw new GadgetError(`${what}: its indexes are nested more than ${MAX_NESTING} deep, so its platforms cannot be checked`, { hint: 'copy it without a platforms filter (drop --platform, or the mirror set\'s platforms)' });
  }
  const { doc } = await fetchManifest(source, entry, signal);
  const found: Platform[] = [];
  for (const child of doc.manifests ?? []) found.push(...((await entryPlatforms(source, child, what, depth + 1, signal)) ?? []));
  return found.length > 0 ? found : undefined;
}

/**
 * The platform of a single-manifest image: its descriptor's, else its config descriptor's (as
 * verify reads it), else its config's when the config is an image config (which names os and
 * architecture); undefined when nothing names one (a gadget config does not).
 */
async function manifestPlatform(source: Target, root: Descriptor, signal?: AbortSignal): Promise<Platform | undefined> {
  if (root.platform) return root.platform;
  const { doc } = await fetchManifest(source, root, signal);
  const config = doc.config;
  if (config?.platform) return config.platform;
  if (!config || !IMAGE_CONFIG_TYPES.has(config.mediaType)) return undefined;
  const bytes = await readAll(await source.fetch(config, signal), MAX_MANIFEST_BYTES, `${source.name}: ${config.digest}`);
  if (bytes.length !== config.size || sha256(bytes) !== config.digest) {
    throw new GadgetError(`${source.name}: ${config.digest}: the image config's content does not match its digest or size`, { transient: 'once', hint: DAMAGED_HINT });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const { os, architecture, variant } = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  if (typeof os !== 'string' || typeof architecture !== 'string' || !os || !architecture) return undefined;
  return { os, architecture, ...(typeof variant === 'string' && variant ? { variant } : {}) };
}

/**
 * The graph to copy for `platforms`: the image itself when it has no other platform, else a
 * new index of the kept ones (only with `allowSubset`). `what` names the image for messages.
 * A platform the image does not have fails it; so does a filter that cannot be checked (a
 * single manifest that names no platform) or applied (a nested index holding platforms both
 * kept and dropped: keeping part of it would need a new nested index as well).
 */
export async function selectPlatforms(source: Target, root: Descriptor, platforms: string[] | undefined, allowSubset: boolean, what: string, signal?: AbortSignal): Promise<Selection> {
  if (!platforms || platforms.length === 0) return { source, root, subset: false };
  const wanted = platforms.map(parsePlatform);
  if (!INDEX_TYPES.has(root.mediaType)) {
    // A single manifest is copied whole or not at all; its platform must be known to tell.
    const platform = await manifestPlatform(source, root, signal);
    if (!platform) {
      throw new GadgetError(`${what} is a single manifest that names no platform, so the platforms filter (${platforms.join(', ')}) cannot be checked`, {
        hint: 'copy it without a platforms filter (drop --platform, or the mirror set\'s platforms), or give it an index with platforms',
      });
    }
    if (!matches(platform, wanted)) throw new GadgetError(`${what} has none of the platforms ${platforms.join(', ')} (it has ${platformName(platform)})`, { hint: PLATFORMS_HINT });
    return { source, root, subset: false };
  }
  const { doc } = await fetchManifest(source, root, signal);
  const all = doc.manifests ?? [];
  // Each entry with the platforms it holds: an index nested in this one is walked.
  const entries = await Promise.all(all.map(async (d) => ({ d, held: await entryPlatforms(source, d, what, 1, signal) })));
  const heldAll = entries.flatMap((e) => e.held ?? []);
  const names = [...new Set(heldAll.map(platformName))].join(', ') || '(no platform)';
  // Entries without a platform (attestations, ...) belong to every platform.
  const kept = entries.filter((e) => !e.held || e.held.some((p) => matches(p, wanted)));
  const keptPlatforms = kept.flatMap((e) => (e.held ?? []).filter((p) => matches(p, wanted)));
  if (keptPlatforms.length === 0) throw new GadgetError(`${what} has none of the platforms ${platforms.join(', ')} (it has ${names})`, { hint: PLATFORMS_HINT });
  if (kept.length === all.length && heldAll.every((p) => matches(p, wanted))) return { source, root, subset: false };
  const keptNames = [...new Set(keptPlatforms.map(platformName))].join(', ');
  const split = kept.find((e) => e.held && !e.held.every((p) => matches(p, wanted)));
  if (split) {
    throw new GadgetError(`${what}: keeping only ${keptNames} of its platforms (${names}) would split the index ${split.d.digest} nested in it, which is not done`, {
      hint: 'copy every platform (drop the platforms filter)',
    });
  }
  if (!allowSubset) {
    throw new GadgetError(
      `${what}: keeping only ${keptNames} of its platforms (${names}) makes a new index with another digest, so its signatures (made for ${root.digest}) would no longer apply`,
      { hint: 'copy every platform (drop the platforms filter), or allow the subset with allowPlatformSubset: true / --allow-subset; the copy is then unsigned' },
    );
  }
  const bytes = encodeJSONBytes({ ...doc, manifests: kept.map((e) => e.d) });
  const subsetRoot: Descriptor = { mediaType: root.mediaType, digest: sha256(bytes), size: bytes.length };
  return { source: new WithDocument(source, subsetRoot, bytes), root: subsetRoot, subset: true };
}
