// Structural checks of an eBPF object (the ebpf layer of a gadget image): the ELF header
// must describe a 64-bit little-endian relocatable object for EM_BPF, and every table the
// loader follows must lie inside the file. We read only headers; nothing is loaded.
import { contentError, contentWarning, type ContentProblem, type GadgetArch } from './problem.js';

export const EM_BPF = 247;
const ET_REL = 1;
const SHT_NULL = 0;
const SHT_STRTAB = 3;
const SHT_NOBITS = 8;
const SHN_XINDEX = 0xffff;
const EHDR_SIZE = 64;
const SHDR_SIZE = 64;
/** At most this many "section outside the file" problems; a broken table would repeat it for each entry. */
const MAX_SECTION_PROBLEMS = 5;

const MACHINES: Record<number, string> = {
  0: 'none', 3: 'x86', 8: 'MIPS', 20: 'PowerPC', 21: 'PowerPC64', 40: 'ARM', 62: 'x86-64',
  183: 'AArch64', 243: 'RISC-V', 247: 'eBPF',
};
const TYPES: Record<number, string> = { 0: 'NONE', 1: 'REL', 2: 'EXEC', 3: 'DYN', 4: 'CORE' };

export interface ElfSummary {
  class: 'ELF32' | 'ELF64' | null;
  endianness: 'little' | 'big' | null;
  /** e_type (1 = relocatable) and its name. */
  type: number | null;
  typeName: string | null;
  /** e_machine (247 = eBPF) and its name. */
  machine: number | null;
  machineName: string | null;
  /** Section names in table order (program sections such as "tracepoint/..." included). */
  sections: string[];
}

interface Parsed {
  problems: ContentProblem[];
  summary: ElfSummary;
}

/**
 * Problems of an eBPF object for the given platform; an empty list means it is well formed.
 * No check depends on the platform (both run 64-bit little-endian eBPF), only a message names
 * it: undefined (a platform that is not known) checks the same.
 */
export function checkEbpfElf(bytes: Buffer, arch: GadgetArch | undefined): ContentProblem[] {
  return parseElf(bytes, arch).problems;
}

/** What `inspect` shows about an object; fields are null when the header does not say. */
export function elfSummary(bytes: Buffer): ElfSummary {
  return parseElf(bytes, 'amd64').summary;
}

function hex(bytes: Buffer): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

function parseElf(bytes: Buffer, arch: GadgetArch | undefined): Parsed {
  const problems: ContentProblem[] = [];
  const summary: ElfSummary = { class: null, endianness: null, type: null, typeName: null, machine: null, machineName: null, sections: [] };
  const done = (): Parsed => ({ problems, summary });

  if (bytes.length < 4 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    const start = bytes.length ? `starts with ${hex(bytes.subarray(0, 4))}` : 'is empty';
    problems.push(contentError('ELF-MAGIC', `not an ELF file: it ${start} instead of 7f 45 4c 46 ("\\x7fELF")`));
    return done();
  }
  if (bytes.length < 16) {
    problems.push(contentError('ELF-TRUNCATED', `the ELF identification is truncated (${bytes.length} of 16 bytes)`));
    return done();
  }
  const elfClass = bytes[4];
  summary.class = elfClass === 1 ? 'ELF32' : elfClass === 2 ? 'ELF64' : null;
  if (elfClass !== 2) {
    problems.push(contentError('ELF-CLASS', `not a 64-bit ELF object (EI_CLASS is ${elfClass}, eBPF objects are ELFCLASS64 = 2)`));
    return done();
  }
  const data = bytes[5];
  if (data !== 1 && data !== 2) {
    problems.push(contentError('ELF-ENDIAN', `unknown byte order (EI_DATA is ${data}, expected 1 = little-endian)`));
    return done();
  }
  const little = data === 1;
  summary.endianness = little ? 'little' : 'big';
  if (!little) {
    problems.push(contentError('ELF-ENDIAN', `the object is big-endian (built with -target bpfeb?), but ${arch ? `${arch} runs` : 'amd64 and arm64 run'} little-endian eBPF: build with -target bpf or bpfel`));
  }
  if (bytes[6] !== 1) problems.push(contentError('ELF-VERSION', `unknown ELF version ${bytes[6]} in the identification (expected 1)`));
  if (bytes.length < EHDR_SIZE) {
    problems.push(contentError('ELF-TRUNCATED', `the ELF header is truncated (${bytes.length} of ${EHDR_SIZE} bytes)`));
    return done();
  }

  const u16 = (off: number): number => (little ? bytes.readUInt16LE(off) : bytes.readUInt16BE(off));
  const u32 = (off: number): number => (little ? bytes.readUInt32LE(off) : bytes.readUInt32BE(off));
  // Offsets beyond 2^53 cannot be inside any file we hold: Infinity keeps the bounds checks simple.
  const big = (off: number): bigint => (little ? bytes.readBigUInt64LE(off) : bytes.readBigUInt64BE(off));
  const u64 = (off: number): number => {
    const v = big(off);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(v);
  };
  // For messages: the value as written, never "Infinity".
  const text64 = (off: number): string => big(off).toString();

  summary.type = u16(16);
  summary.typeName = TYPES[summary.type] ?? null;
  summary.machine = u16(18);
  summary.machineName = MACHINES[summary.machine] ?? null;
  if (summary.type !== ET_REL) {
    problems.push(contentError('ELF-TYPE', `not a relocatable object (e_type is ${summary.typeName ?? summary.type}, eBPF objects are ET_REL = 1)`));
  }
  if (summary.machine !== EM_BPF) {
    const name = summary.machineName ? ` (${summary.machineName})` : '';
    problems.push(contentError('ELF-MACHINE', `not an eBPF object: e_machine is ${summary.machine}${name}, expected ${EM_BPF} (EM_BPF); compile with clang -target bpf`));
  }
  if (u32(20) !== 1) problems.push(contentError('ELF-VERSION', `unknown ELF version ${u32(20)} in e_version (expected 1)`));

  readSections(bytes, { u16, u32, u64, text64 }, problems, summary);
  return done();
}

interface Readers {
  u16(off: number): number;
  u32(off: number): number;
  u64(off: number): number;
  text64(off: number): string;
}

function readSections(bytes: Buffer, r: Readers, problems: ContentProblem[], summary: ElfSummary): void {
  const size = bytes.length;
  const shoff = r.u64(40);
  const shentsize = r.u16(58);
  let shnum = r.u16(60);
  let shstrndx = r.u16(62);
  const sections = (msg: string): void => void problems.push(contentError('ELF-SECTIONS', msg));

  if (shoff === 0) {
    sections(shnum ? `e_shnum is ${shnum} but there is no section header table (e_shoff is 0)` : 'the object has no section header table, so it holds no programs or maps');
    return;
  }
  if (shentsize !== SHDR_SIZE) {
    sections(`section headers are ${shentsize} bytes (e_shentsize), expected ${SHDR_SIZE}`);
    return;
  }
  if (shoff + SHDR_SIZE > size) {
    sections(`the section header table (offset ${r.text64(40)}) lies outside the file (${size} bytes)`);
    return;
  }
  // Extended numbering: with 0 / SHN_XINDEX the real values live in section 0.
  const shnumText = shnum === 0 ? r.text64(shoff + 32) : String(shnum);
  if (shnum === 0) shnum = r.u64(shoff + 32);
  if (shstrndx === SHN_XINDEX) shstrndx = r.u32(shoff + 40);
  if (shoff + shnum * SHDR_SIZE > size) {
    sections(`the section header table (${shnumText} entries at offset ${shoff}) lies outside the file (${size} bytes)`);
    return;
  }

  const table = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * SHDR_SIZE;
    return { name: r.u32(at), type: r.u32(at + 4), offset: r.u64(at + 24), size: r.u64(at + 32), shown: `offset ${r.text64(at + 24)}, ${r.text64(at + 32)} bytes` };
  });
  let outside = 0;
  table.forEach((s, i) => {
    if (s.type === SHT_NULL || s.type === SHT_NOBITS || s.offset + s.size <= size) return;
    if (++outside <= MAX_SECTION_PROBLEMS) sections(`section ${i} (${s.shown}) lies outside the file (${size} bytes)`);
  });
  if (outside > MAX_SECTION_PROBLEMS) sections(`${outside - MAX_SECTION_PROBLEMS} more sections lie outside the file`);

  const strtab = table[shstrndx];
  if (shstrndx === 0 || !strtab) {
    problems.push(contentError('ELF-SHSTRNDX', `e_shstrndx ${shstrndx} does not name a section of the ${shnum}-entry table, so sections have no names`));
    return;
  }
  if (strtab.type !== SHT_STRTAB || strtab.offset + strtab.size > size) {
    problems.push(contentError('ELF-SHSTRNDX', `e_shstrndx ${shstrndx} names a section that is not a string table inside the file`));
    return;
  }
  const names = bytes.subarray(strtab.offset, strtab.offset + strtab.size);
  summary.sections = table.map((s) => {
    if (s.name >= names.length) return '';
    const end = names.indexOf(0, s.name);
    return names.subarray(s.name, end < 0 ? names.length : end).toString('utf8');
  });
  if (!summary.sections.includes('.BTF')) {
    problems.push(contentWarning('ELF-NO-BTF', 'the object has no .BTF section: compile with -g so that ig can read its types (llvm-strip -g keeps .BTF)'));
  }
}
