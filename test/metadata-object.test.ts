// gadget.yaml checked against the eBPF object (lib/gadget/object-check.ts), with real objects
// that clang compiles here: params naming a missing or a non-const variable, tracer and map
// iterator maps of the wrong type, and the build refusing such a gadget unless told not to check.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { btfMaps, parseBtf } from '../lib/content/btf-types.js';
import { elfSection, elfSymbols } from '../lib/content/elf-tables.js';
import { GadgetError } from '../lib/errors.js';
import { parseMetadata } from '../lib/gadget/metadata.js';
import { checkMetadataAgainstObject } from '../lib/gadget/object-check.js';
import { buildGadget } from '../plugins/build.js';
import { compileEbpf, findTool } from '../plugins/build/compile.js';
import { buildContext, tempDir } from './helpers/build-context.js';

const clang = await findTool('clang');

const PROGRAM = `
#define SEC(n) __attribute__((section(n), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
struct event { int pid; char comm[16]; };
struct key { int id; };
const volatile int targ_pid = 0;
const volatile char targ_comm[16] = {};
int not_const = 0;
struct { __uint(type, 27); __uint(max_entries, 4096); } events SEC(".maps");
struct { __uint(type, 1); __uint(max_entries, 16); __type(key, struct key); __type(value, struct event); } counts SEC(".maps");
struct { __uint(type, 2); __uint(max_entries, 16); __type(key, int); __type(value, struct event); } plain SEC(".maps");
const void *gadget_tracer_open___events___event __attribute__((unused));
const void *gadget_tracer_wrong___plain___event __attribute__((unused));
const void *gadget_mapiter_top___counts __attribute__((unused));
const void *gadget_mapiter_badkeys___plain __attribute__((unused));
const struct event *unused_event __attribute__((unused));
SEC("tracepoint/syscalls/sys_enter_openat") int prog(void *ctx) { return targ_pid + not_const + targ_comm[0]; }
char LICENSE[] SEC("license") = "GPL";
`;

async function compiled(base: string): Promise<{ dir: string; amd64: Buffer }> {
  const dir = path.join(base, 'g');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'program.bpf.c'), PROGRAM);
  const r = await compileEbpf({ dir, source: path.join(dir, 'program.bpf.c'), shownSource: 'g/program.bpf.c', cflags: [], archs: ['amd64'] });
  return { dir, amd64: r.objects.amd64! };
}

const yaml = (extra: string) => parseMetadata(Buffer.from(`name: t\n${extra}`), 'gadget.yaml');

test('the object is read from its BTF and symbol table', async (t) => {
  if (!clang) return t.skip('clang is not installed');
  const { amd64 } = await compiled(await tempDir(t, 'objcheck'));
  const types = parseBtf(elfSection(amd64, '.BTF')!)!;
  const maps = Object.fromEntries(btfMaps(types).map((m) => [m.name, m]));
  assert.equal(maps.events!.mapType, 27);
  assert.equal(maps.counts!.mapType, 1);
  assert.equal(maps.counts!.value!.name, 'event');
  assert.equal(maps.plain!.key!.name, 'int');
  assert.ok(elfSymbols(amd64).some((s) => s.name === 'gadget_tracer_open___events___event'));
});

test('params naming a missing variable and a non-const variable are caught, one sentence each', async (t) => {
  if (!clang) return t.skip('clang is not installed');
  const { amd64 } = await compiled(await tempDir(t, 'objcheck'));
  const meta = yaml('params:\n  ebpf:\n    targ_pid: {key: pid}\n    targ_comm: {key: comm}\n    targ_uid: {key: uid}\n    not_const: {key: nc}\n');
  const problems = checkMetadataAgainstObject(meta, amd64, 'the amd64 eBPF object').filter((p) => p.includes('params.'));
  assert.deepEqual(problems, [
    'gadget.yaml params.ebpf.targ_uid names the variable "targ_uid", which is not in the amd64 eBPF object (declare it as "const volatile <type> targ_uid" and mark it GADGET_PARAM(targ_uid)).',
    'gadget.yaml params.ebpf.not_const names "not_const", which is not const volatile in the amd64 eBPF object; ig can set only "const volatile" variables.',
  ]);
  // The older ebpfParams key is checked the same way.
  assert.match(checkMetadataAgainstObject(yaml('ebpfParams:\n  gone: {key: g}\n'), amd64, 'the object').find((p) => p.includes('ebpfParams'))!, /ebpfParams\.gone names the variable "gone"/);
});

test('data sources and the older tracers/toppers/structs: maps and structs that exist with a fitting type', async (t) => {
  if (!clang) return t.skip('clang is not installed');
  const { amd64 } = await compiled(await tempDir(t, 'objcheck'));
  const problems = checkMetadataAgainstObject(
    yaml([
      'datasources:\n  open: {}\n  wrong: {}\n',
      'tracers:\n  old: {mapName: counts, structName: event}\n  gone: {mapName: nomap, structName: nostruct}\n',
      'toppers:\n  t: {mapName: counts, structName: key}\n',
      'structs:\n  event:\n    fields:\n      - name: pid\n      - name: uid\n',
    ].join('')),
    amd64,
    'the amd64 eBPF object',
  );
  const has = (re: RegExp) => assert.ok(problems.some((p) => re.test(p)), `${re} in:\n${problems.join('\n')}`);
  has(/^gadget\.yaml datasources\.wrong: the map "plain" in the amd64 eBPF object is an array map, but a tracer needs a ring buffer or a perf event array\.$/);
  has(/^The data source "badkeys" \(GADGET_MAPITER in the object, not in gadget\.yaml\) iterates the map "plain" of the amd64 eBPF object, whose keys are not a struct/);
  has(/^gadget\.yaml tracers\.old\.mapName: the map "counts" .* is a hash map, but a tracer needs/);
  has(/^gadget\.yaml tracers\.gone\.mapName names the map "nomap", which is not in the amd64 eBPF object\.$/);
  has(/^gadget\.yaml tracers\.gone\.structName names struct nostruct, which is not in the amd64 eBPF object\.$/);
  has(/^gadget\.yaml toppers\.t\.mapName: the values of the map "counts" .* are struct event, not struct key\.$/);
  has(/^gadget\.yaml structs\.event\.fields names "uid", which is not a member of struct event in the amd64 eBPF object\.$/);
  assert.ok(!problems.some((p) => /datasources\.open|"top"/.test(p)), 'the good tracer and map iterator pass');
  for (const p of problems) assert.match(p, /^(gadget\.yaml \S|The data source ")[^\n]*\.$/, 'one sentence naming the gadget.yaml key (or the declaration)');
});

test('the build refuses gadget.yaml that does not match the object; --no-validate-metadata builds anyway', async (t) => {
  if (!clang) return t.skip('clang is not installed');
  const base = await tempDir(t, 'objcheck-build');
  const { dir } = await compiled(base);
  await writeFile(path.join(dir, 'gadget.yaml'), 'name: t\nparams:\n  ebpf:\n    targ_uid: {key: uid}\n    not_const: {key: nc}\n');
  const ctx = await buildContext(t, base);
  await assert.rejects(buildGadget(ctx, { dir: 'g', ref: 'v:1' }), (e: unknown) => {
    assert.ok(e instanceof GadgetError);
    assert.equal(e.exitCode, 1);
    // The program's deliberate bad declarations (GADGET_TRACER on an array map, ...) count too.
    assert.match(e.message, /^g\/gadget\.yaml does not match the eBPF object \(4 problems\):/);
    assert.match(e.message, /params\.ebpf\.targ_uid names the variable "targ_uid", which is not in the amd64 and arm64 eBPF objects/);
    assert.match(e.message, /not_const.*not const volatile/);
    return true;
  });
  assert.equal(ctx.store.list().length, 0);
  const built = await buildGadget(ctx, { dir: 'g', ref: 'v:1' }, { validateMetadata: false });
  assert.equal(built.cached, false);
  assert.equal(ctx.store.list().length, 1);
  // A cached image built without the check does not satisfy a build that asks for it.
  await assert.rejects(buildGadget(ctx, { dir: 'g', ref: 'v:1' }), /does not match the eBPF object/);
});
