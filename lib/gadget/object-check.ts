// gadget.yaml checked against the eBPF object it ships with, as `ig image build` does by
// default (its --validate-metadata): what ig would otherwise only find when it runs the gadget.
// Read from the object's BTF and symbol table:
// - params of the ebpf kind (params.ebpf.NAME, and the older ebpfParams.NAME) name a global
//   `const volatile` variable (an array of them is fine);
// - data sources backed by the object (GADGET_TRACER / GADGET_MAPITER declarations) name
//   maps that exist with a fitting type, and structs that exist;
// - the older format's tracers and toppers name maps of the right type and structs that
//   exist, and its structs list fields the BTF struct has.
// One sentence per problem, naming the gadget.yaml key and the object.
import { BTF_KIND, btfMaps, parseBtf, type BtfMap, type BtfType } from '../content/btf-types.js';
import { elfSection, elfSections, elfSymbols } from '../content/elf-tables.js';
import type { GadgetMetadata } from './metadata.js';

const MAP_TYPE_NAMES: Record<number, string> = { 1: 'hash', 2: 'array', 4: 'perf event array', 5: 'per-CPU hash', 6: 'per-CPU array', 9: 'LRU hash', 10: 'LRU per-CPU hash', 27: 'ring buffer' };
const TRACER_MAPS = new Set([4, 27]);
const HASH_MAPS = new Set([1, 5, 9, 10]);

const mapTypeName = (t: number | undefined): string => {
  if (t === undefined) return 'a map of no declared type';
  const name = MAP_TYPE_NAMES[t] ?? `type ${t}`;
  return `${/^[aeiouL]/.test(name) ? 'an' : 'a'} ${name} map`;
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Is the variable `const volatile` (possibly an array of such), as ig's params need? */
function constVolatile(types: Map<number, BtfType>, typeId: number): boolean {
  let t = types.get(typeId);
  if (t?.kind === BTF_KIND.ARRAY) t = types.get(t.array!.type);
  const seen = new Set<number>();
  // clang writes CONST -> VOLATILE; accept the other order too.
  for (let n = 0; t && n < 2; n++) {
    seen.add(t.kind);
    t = types.get(t.sizeOrType);
  }
  return seen.has(BTF_KIND.CONST) && seen.has(BTF_KIND.VOLATILE);
}

/** The problems (sentences) of gadget.yaml against one object; `object` names it ("the amd64 eBPF object"). */
export function checkMetadataAgainstObject(meta: GadgetMetadata, bytes: Buffer, object: string): string[] {
  const sections = elfSections(bytes);
  const btfBytes = elfSection(bytes, '.BTF', sections);
  const types = btfBytes ? parseBtf(btfBytes) : undefined;
  const problems: string[] = [];
  if (!types) {
    const wants = isRecord(meta.params) && isRecord(meta.params.ebpf) ? Object.keys(meta.params.ebpf).length : 0;
    if (wants > 0) problems.push(`gadget.yaml has params.ebpf, but ${object} has no readable BTF to check them against (compile with -g).`);
    return problems;
  }
  const all = [...types.values()];
  const vars = new Map(all.filter((t) => t.kind === BTF_KIND.VAR).map((t) => [t.name, t]));
  const structs = new Map(all.filter((t) => t.kind === BTF_KIND.STRUCT && t.name !== '').map((t) => [t.name, t]));
  const maps = new Map<string, BtfMap>(btfMaps(types).map((m) => [m.name, m]));

  // ---- params of the ebpf kind
  const params: Array<[string, string]> = [];
  if (isRecord(meta.params) && isRecord(meta.params.ebpf)) for (const name of Object.keys(meta.params.ebpf)) params.push([`params.ebpf.${name}`, name]);
  if (isRecord(meta.ebpfParams)) for (const name of Object.keys(meta.ebpfParams)) params.push([`ebpfParams.${name}`, name]);
  for (const [key, name] of params) {
    const v = vars.get(name);
    if (!v) problems.push(`gadget.yaml ${key} names the variable "${name}", which is not in ${object} (declare it as "const volatile <type> ${name}" and mark it GADGET_PARAM(${name})).`);
    else if (v.linkage !== 1) problems.push(`gadget.yaml ${key} names "${name}", which is ${v.linkage === 0 ? 'a static' : 'an extern'} variable in ${object}; ig sets only global const volatile variables.`);
    else if (!constVolatile(types, v.sizeOrType)) problems.push(`gadget.yaml ${key} names "${name}", which is not const volatile in ${object}; ig can set only "const volatile" variables.`);
  }

  const checkMap = (key: string, mapName: string, want: 'tracer' | 'hash', structName?: string): void => {
    const map = maps.get(mapName);
    if (!map) return void problems.push(`${key} names the map "${mapName}", which is not in ${object}.`);
    if (want === 'tracer' && (map.mapType === undefined || !TRACER_MAPS.has(map.mapType))) {
      problems.push(`${key}: the map "${mapName}" in ${object} is ${mapTypeName(map.mapType)}, but a tracer needs a ring buffer or a perf event array.`);
    }
    if (want === 'hash') {
      if (map.mapType === undefined || !HASH_MAPS.has(map.mapType)) problems.push(`${key}: the map "${mapName}" in ${object} is ${mapTypeName(map.mapType)}, but it must be a hash map.`);
      else if (map.value?.kind !== BTF_KIND.STRUCT) problems.push(`${key}: the values of the map "${mapName}" in ${object} are not a struct.`);
      else if (structName && map.value.name !== structName) problems.push(`${key}: the values of the map "${mapName}" in ${object} are struct ${map.value.name}, not struct ${structName}.`);
    }
  };
  const checkStruct = (key: string, structName: string): void => {
    if (!structs.has(structName)) problems.push(`${key} names struct ${structName}, which is not in ${object}.`);
  };

  // ---- data sources the object declares (GADGET_TRACER, GADGET_MAPITER)
  const datasources = isRecord(meta.datasources) ? meta.datasources : isRecord(meta.dataSources) ? meta.dataSources : {};
  // Named by its gadget.yaml key when gadget.yaml describes it, else by the object's declaration.
  const dsKey = (name: string, macro: string): string => (name in datasources ? `gadget.yaml datasources.${name}` : `The data source "${name}" (${macro} in the object, not in gadget.yaml)`);
  for (const sym of elfSymbols(bytes, sections)) {
    const tracer = /^gadget_tracer_(.+?)___(.+?)___(.+)$/.exec(sym.name);
    if (tracer) {
      const [, name, mapName, structName] = tracer as unknown as [string, string, string, string];
      checkMap(dsKey(name, 'GADGET_TRACER'), mapName, 'tracer');
      checkStruct(dsKey(name, 'GADGET_TRACER'), structName);
    }
    const mapiter = /^gadget_mapiter_(.+?)___(.+)$/.exec(sym.name);
    if (mapiter) {
      const [, name, mapName] = mapiter as unknown as [string, string, string];
      const map = maps.get(mapName);
      if (!map) problems.push(`${dsKey(name, 'GADGET_MAPITER')} iterates the map "${mapName}", which is not in ${object}.`);
      else if (map.key?.kind !== BTF_KIND.STRUCT || map.value?.kind !== BTF_KIND.STRUCT) {
        problems.push(`${dsKey(name, 'GADGET_MAPITER')} iterates the map "${mapName}" of ${object}, whose ${map.key?.kind !== BTF_KIND.STRUCT ? 'keys' : 'values'} are not a struct (ig reads both as structs).`);
      }
    }
  }

  // ---- the format before data sources
  for (const [section, want] of [['tracers', 'tracer'], ['toppers', 'hash']] as const) {
    const entries = meta[section];
    if (!isRecord(entries)) continue;
    for (const [name, entry] of Object.entries(entries)) {
      if (!isRecord(entry)) continue;
      const mapName = text(entry.mapName);
      const structName = text(entry.structName);
      if (mapName) checkMap(`gadget.yaml ${section}.${name}.mapName`, mapName, want, want === 'hash' ? structName : undefined);
      if (structName) checkStruct(`gadget.yaml ${section}.${name}.structName`, structName);
    }
  }
  if (isRecord(meta.structs)) {
    for (const [name, entry] of Object.entries(meta.structs)) {
      const s = structs.get(name);
      if (!s) {
        problems.push(`gadget.yaml structs.${name} names struct ${name}, which is not in ${object}.`);
        continue;
      }
      const fields = isRecord(entry) && Array.isArray(entry.fields) ? entry.fields : [];
      const members = new Set((s.members ?? []).map((m) => m.name));
      for (const f of fields) {
        const field = isRecord(f) ? text(f.name) : undefined;
        if (field && !members.has(field)) problems.push(`gadget.yaml structs.${name}.fields names "${field}", which is not a member of struct ${name} in ${object}.`);
      }
    }
  }
  return [...new Set(problems)];
}
