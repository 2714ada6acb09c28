// Content checks of the gadget layers through lib/content: the ELF header and section table
// of the ebpf object, WebAssembly validation of the wasm module, the streamed btfgen tarball.
// Each checker's problem codes map to one stable rule id.
import type { Readable } from 'node:stream';
import { checkBtfTarball } from '../../lib/content/btf.js';
import { checkEbpfElf } from '../../lib/content/elf.js';
import type { ContentProblem, GadgetArch } from '../../lib/content/problem.js';
import { checkWasm } from '../../lib/content/wasm.js';
import { GADGET_BTFGEN, GADGET_EBPF, GADGET_WASM } from '../../lib/oci/mediatypes.js';
import type { Descriptor } from '../../lib/oci/types.js';
import type { ContentReader } from './integrity.js';
import type { Problem } from './report.js';
import type { RuleId } from './rules.js';

export type LayerKind = 'ebpf' | 'wasm' | 'btfgen';

/**
 * The most of an ebpf or wasm layer that is held in memory to check it. Compiling a wasm
 * module takes about twice its size again, hence its lower cap: either way verify stays
 * under 150 MB of RSS.
 */
export const CONTENT_CAP: Record<'ebpf' | 'wasm', number> = { ebpf: 64 * 1024 * 1024, wasm: 24 * 1024 * 1024 };

export function layerKind(mediaType: string): LayerKind | undefined {
  if (mediaType === GADGET_EBPF) return 'ebpf';
  if (mediaType === GADGET_WASM) return 'wasm';
  if (mediaType === GADGET_BTFGEN) return 'btfgen';
  return undefined;
}

const CODE_RULES: Record<string, RuleId> = {
  'ELF-MACHINE': 'GADGET-EBPF-MACHINE',
  'ELF-ENDIAN': 'GADGET-EBPF-ENDIAN',
  'ELF-NO-BTF': 'GADGET-EBPF-NO-BTF',
  'WASM-API-VERSION': 'GADGET-WASM-API-VERSION',
  'BTF-UNSAFE': 'GADGET-BTFGEN-UNSAFE',
  'BTF-PATH': 'GADGET-BTFGEN-PATH',
  'BTF-FLAT': 'GADGET-BTFGEN-FLAT',
  'BTF-ARCH': 'GADGET-BTFGEN-ARCH',
  'BTF-MAGIC': 'GADGET-BTFGEN-BTF',
  'BTF-ENDIAN': 'GADGET-BTFGEN-BTF',
  'BTF-TRUNCATED': 'GADGET-BTFGEN-BTF',
  'BTF-VERSION': 'GADGET-BTFGEN-BTF',
  'BTF-EMPTY': 'GADGET-BTFGEN-EMPTY',
};

/** Codes a checker may add later fall back to the layer's general rule. */
const GENERAL_RULE: Record<LayerKind, RuleId> = { ebpf: 'GADGET-EBPF-ELF', wasm: 'GADGET-WASM-INVALID', btfgen: 'GADGET-BTFGEN-TAR' };

function toProblems(kind: LayerKind, problems: ContentProblem[], desc: Descriptor, path: string, what: string): Problem[] {
  const out: Problem[] = [];
  let last: RuleId = GENERAL_RULE[kind];
  for (const p of problems) {
    // "N more problems" belongs to the rule of the problems it counts.
    const rule = p.code === 'BTF-MORE' ? last : CODE_RULES[p.code] ?? GENERAL_RULE[kind];
    last = rule;
    out.push({ rule, digest: desc.digest, path, message: `${what}: ${sentence(p.message)}` });
  }
  return out;
}

function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/**
 * How to check a layer's content on the same read as its hash: ebpf and wasm whole (up to
 * CONTENT_CAP), btfgen as a stream. `arch` is undefined when the platform is not known (a
 * single manifest that does not say it, a platform gadgets do not run on): then only the
 * checks that depend on it are skipped (the btfgen arch folder), never the content checks.
 */
export function contentReader(kind: LayerKind, arch: GadgetArch | undefined): ContentReader<ContentProblem[]> {
  if (kind === 'btfgen') {
    return {
      consume: (stream: Readable) =>
        checkBtfTarball(stream, arch).catch((err: unknown) => [
          { code: 'BTF-TAR', severity: 'error' as const, message: `the tarball could not be read: ${err instanceof Error ? err.message : String(err)}` },
        ]),
    };
  }
  return { keep: CONTENT_CAP[kind] };
}

/** The content problems of a layer read through `contentReader` (bytes or stream result). */
export function contentProblems(
  kind: LayerKind,
  arch: GadgetArch | undefined,
  desc: Descriptor,
  path: string,
  read: { bytes?: Buffer; consumed?: ContentProblem[]; size?: number },
): Problem[] {
  const what = `${arch ? `The ${arch} ` : 'The '}${kind} layer`;
  if (kind === 'btfgen') return read.consumed ? toProblems(kind, read.consumed, desc, path, what) : [];
  if (!read.bytes) {
    if (read.size !== undefined && read.size > CONTENT_CAP[kind]) {
      return [{ rule: 'GADGET-CONTENT-SKIPPED', digest: desc.digest, path, message: `${what} is ${read.size} bytes, more than the ${CONTENT_CAP[kind]} that are checked in memory; only its digest was verified.` }];
    }
    return [];
  }
  let problems: ContentProblem[];
  try {
    problems = kind === 'ebpf' ? checkEbpfElf(read.bytes, arch) : checkWasm(read.bytes);
  } catch (err) {
    // A checker that trips over hostile bytes still yields a finding, never a crash.
    problems = [{ code: '', severity: 'error', message: `its content could not be checked (${err instanceof Error ? err.message : String(err)})` }];
  }
  return toProblems(kind, problems, desc, path, what);
}
