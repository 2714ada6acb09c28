// The parts of an eBPF object that metadata validation reads: section bytes by name and the
// symbol table. Only for objects that passed checkEbpfElf (64-bit little-endian); anything
// that does not fit the file yields nothing rather than a throw.
const SHT_SYMTAB = 2;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;

export interface ElfSection {
  name: string;
  type: number;
  offset: number;
  size: number;
  link: number;
}

export interface ElfSymbol {
  name: string;
  /** STB_LOCAL 0, STB_GLOBAL 1, STB_WEAK 2. */
  bind: number;
  /** STT_NOTYPE 0, STT_OBJECT 1, STT_FUNC 2, STT_SECTION 3. */
  type: number;
  /** The section it is defined in (0: undefined). */
  section: number;
}

function inside(bytes: Buffer, offset: number, size: number): boolean {
  return Number.isSafeInteger(offset) && Number.isSafeInteger(size) && offset >= 0 && size >= 0 && offset + size <= bytes.length;
}

function cString(table: Buffer, at: number): string {
  if (at >= table.length) return '';
  const end = table.indexOf(0, at);
  return table.subarray(at, end < 0 ? table.length : end).toString('utf8');
}

/** The section table with names; [] when it cannot be read. */
export function elfSections(bytes: Buffer): ElfSection[] {
  if (bytes.length < 64 || bytes[4] !== 2 || bytes[5] !== 1) return [];
  const shoff = Number(bytes.readBigUInt64LE(40));
  const shnum = bytes.readUInt16LE(60);
  const shstrndx = bytes.readUInt16LE(62);
  if (!inside(bytes, shoff, shnum * SHDR_SIZE) || shstrndx >= shnum) return [];
  const raw = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * SHDR_SIZE;
    return { nameOff: bytes.readUInt32LE(at), type: bytes.readUInt32LE(at + 4), offset: Number(bytes.readBigUInt64LE(at + 24)), size: Number(bytes.readBigUInt64LE(at + 32)), link: bytes.readUInt32LE(at + 40) };
  });
  const strtab = raw[shstrndx]!;
  if (!inside(bytes, strtab.offset, strtab.size)) return [];
  const names = bytes.subarray(strtab.offset, strtab.offset + strtab.size);
  return raw.map((s) => ({ name: cString(names, s.nameOff), type: s.type, offset: s.offset, size: s.size, link: s.link }));
}

/** A section's bytes by name, or undefined. */
export function elfSection(bytes: Buffer, name: string, sections = elfSections(bytes)): Buffer | undefined {
  const s = sections.find((x) => x.name === name);
  return s && inside(bytes, s.offset, s.size) ? bytes.subarray(s.offset, s.offset + s.size) : undefined;
}

/** Every named symbol of the symbol table. */
export function elfSymbols(bytes: Buffer, sections = elfSections(bytes)): ElfSymbol[] {
  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  const strtab = symtab ? sections[symtab.link] : undefined;
  if (!symtab || !strtab || !inside(bytes, symtab.offset, symtab.size) || !inside(bytes, strtab.offset, strtab.size)) return [];
  const names = bytes.subarray(strtab.offset, strtab.offset + strtab.size);
  const out: ElfSymbol[] = [];
  for (let at = symtab.offset; at + SYM_SIZE <= symtab.offset + symtab.size; at += SYM_SIZE) {
    const name = cString(names, bytes.readUInt32LE(at));
    if (name === '') continue;
    const info = bytes[at + 4]!;
    out.push({ name, bind: info >> 4, type: info & 0xf, section: bytes.readUInt16LE(at + 6) });
  }
  return out;
}
