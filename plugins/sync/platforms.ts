// Copying only some platforms of a multi-arch image. The kept manifests need a new index, with
// another digest: signatures made for the original index do not apply to it. So a subset is
// refused unless asked for, and then copied without the original's signatures.
import { Readable } from 'node:stream';
import { GadgetError, usageError } from '../../lib/errors.js';
import { fetchManifest } from '../../lib/oci/copy.js';
import { sha256 } from '../../lib/oci/digest.js';
import { encodeJSONBytes } from '../../lib/oci/json.js';
import { INDEX_TYPES } from '../../lib/oci/mediatypes.js';
import type { Referrer, Target } from '../../lib/oci/target.js';
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
  if (kept.length === 0) throw new GadgetError(`${what} has none of the platforms ${platforms.join(', ')} (it has ${names})`, { hint: "ask for platforms it has (--platform, or the mirror set's platforms)" });
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
