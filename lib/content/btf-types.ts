// The BTF type section of an eBPF object (.BTF), read far enough to answer what gadget
// metadata validation asks: a variable's type chain (const volatile?), structs and their
// members, and the maps of the ".maps" data section with their type, key and value.
// Format: struct btf_header, then type records (btf_type plus kind-specific data), then strings.

export const BTF_KIND = {
  INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10,
  RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
} as const;

export interface BtfType {
  id: number;
  kind: number;
  name: string;
  /** size (INT, STRUCT, UNION, ENUM, DATASEC) or referenced type id (PTR, TYPEDEF, CONST, VAR, ...). */
  sizeOrType: number;
  /** ARRAY: element type and count. */
  array?: { type: number; nelems: number };
  /** STRUCT/UNION members; DATASEC variables (name empty, type = VAR id). */
  members?: Array<{ name: string; type: number }>;
  /** VAR: 0 static, 1 global, 2 extern. */
  linkage?: number;
}

/** Every type by id (index 0 is void, absent); undefined when the section is not readable BTF. */
export function parseBtf(section: Buffer): Map<number, BtfType> | undefined {
  if (section.length < 24 || section.readUInt16LE(0) !== 0xeb9f) return undefined;
  const hdrLen = section.readUInt32LE(4);
  const typeOff = hdrLen + section.readUInt32LE(8);
  const typeEnd = typeOff + section.readUInt32LE(12);
  const strOff = hdrLen + section.readUInt32LE(16);
  const strEnd = strOff + section.readUInt32LE(20);
  if (typeEnd > section.length || strEnd > section.length) return undefined;
  const strings = section.subarray(strOff, strEnd);
  const str = (at: number): string => {
    if (at >= strings.length) return '';
    const end = strings.indexOf(0, at);
    return strings.subarray(at, end < 0 ? strings.length : end).toString('utf8');
  };
  const types = new Map<number, BtfType>();
  let at = typeOff;
  for (let id = 1; at + 12 <= typeEnd; id++) {
    const info = section.readUInt32LE(at + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const t: BtfType = { id, kind, name: str(section.readUInt32LE(at)), sizeOrType: section.readUInt32LE(at + 8) };
    at += 12;
    const need = (n: number): boolean => at + n <= typeEnd;
    switch (kind) {
      case BTF_KIND.INT: case BTF_KIND.VAR: case BTF_KIND.DECL_TAG:
        if (!need(4)) return undefined;
        if (kind === BTF_KIND.VAR) t.linkage = section.readUInt32LE(at);
        at += 4;
        break;
      case BTF_KIND.ARRAY:
        if (!need(12)) return undefined;
        t.array = { type: section.readUInt32LE(at), nelems: section.readUInt32LE(at + 8) };
        at += 12;
        break;
      case BTF_KIND.STRUCT: case BTF_KIND.UNION: case BTF_KIND.DATASEC:
        if (!need(12 * vlen)) return undefined;
        t.members = Array.from({ length: vlen }, (_, i) => {
          const m = at + i * 12;
          return kind === BTF_KIND.DATASEC ? { name: '', type: section.readUInt32LE(m) } : { name: str(section.readUInt32LE(m)), type: section.readUInt32LE(m + 4) };
        });
        at += 12 * vlen;
        break;
      case BTF_KIND.ENUM: case BTF_KIND.FUNC_PROTO:
        at += 8 * vlen;
        break;
      case BTF_KIND.ENUM64:
        at += 12 * vlen;
        break;
      default:
        break;
    }
    types.set(id, t);
  }
  return types;
}

export interface BtfMap {
  name: string;
  /** BPF_MAP_TYPE_* (1 hash, 4 perf event array, 27 ringbuf, ...), undefined when not declared. */
  mapType?: number;
  key?: BtfType;
  value?: BtfType;
}

/** The type behind typedefs and qualifiers. */
export function resolveType(types: Map<number, BtfType>, id: number | undefined): BtfType | undefined {
  const skip: number[] = [BTF_KIND.TYPEDEF, BTF_KIND.VOLATILE, BTF_KIND.CONST, BTF_KIND.RESTRICT, BTF_KIND.TYPE_TAG];
  for (let n = 0, t = id === undefined ? undefined : types.get(id); t && n < 64; n++) {
    if (!skip.includes(t.kind)) return t;
    t = types.get(t.sizeOrType);
  }
  return undefined;
}

/** Maps declared BTF-style in the ".maps" section (`__uint(type, ...)`, `__type(value, ...)`). */
export function btfMaps(types: Map<number, BtfType>): BtfMap[] {
  const out: BtfMap[] = [];
  for (const sec of types.values()) {
    if (sec.kind !== BTF_KIND.DATASEC || sec.name !== '.maps') continue;
    for (const m of sec.members ?? []) {
      const v = types.get(m.type);
      if (!v || v.kind !== BTF_KIND.VAR) continue;
      const def = resolveType(types, v.sizeOrType);
      const map: BtfMap = { name: v.name };
      for (const field of def?.members ?? []) {
        const ptr = types.get(field.type);
        const target = ptr?.kind === BTF_KIND.PTR ? types.get(ptr.sizeOrType) : undefined;
        // __uint(name, N) is `int (*name)[N]`; __type(name, T) is `T *name`.
        if (field.name === 'type' && target?.kind === BTF_KIND.ARRAY) map.mapType = target.array!.nelems;
        if (field.name === 'key' && ptr?.kind === BTF_KIND.PTR) map.key = resolveType(types, ptr.sizeOrType);
        if (field.name === 'value' && ptr?.kind === BTF_KIND.PTR) map.value = resolveType(types, ptr.sizeOrType);
      }
      out.push(map);
    }
  }
  return out;
}
