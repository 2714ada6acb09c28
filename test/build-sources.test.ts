// Build inputs the way users have them: include roots (--include, gadget.config.ts, per gadget,
// $GADGET_INCLUDE) with their per-arch folders, -I anywhere in cflags, the build cache over
// headers read from include roots; and wasm compiled from Go or Rust sources as ig compiles them.
//
// Stand-ins: neither Go 1.24+ nor Rust's wasm32-wasip1 target can be installed on these
// machines, so the command lines are checked with stand-in `go`, `cargo` and `rustc` scripts
// put first on PATH: they record their arguments, working folder and environment, and write a
// real wasm module (examples/hello_wasm/program.wasm). The "toolchain missing" errors are
// tested against the real machine (no go here; the real rustc without the wasm32-wasip1 target).
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { GadgetError } from '../lib/errors.js';
import { GADGET_BTFGEN, GADGET_EBPF, GADGET_WASM } from '../lib/oci/mediatypes.js';
import type { Index, Manifest } from '../lib/oci/types.js';
import { build, buildGadget } from '../plugins/build.js';
import { compileCount, compileEbpf, findTool } from '../plugins/build/compile.js';
import { includeArgs } from '../plugins/build/include.js';
import { buildContext, tempDir, withEnv } from './helpers/build-context.js';
import { REPO } from './helpers/paths.js';

const HELLO_WASM = path.join(REPO, 'examples/hello_wasm/program.wasm');
const clang = await findTool('clang');

/** An include root like ig's /usr/include: a shared header and one vmlinux.h per arch. */
async function includeRoot(dir: string): Promise<string> {
  await mkdir(path.join(dir, 'gadget/amd64'), { recursive: true });
  await mkdir(path.join(dir, 'gadget/arm64'), { recursive: true });
  await writeFile(path.join(dir, 'gadget/amd64/vmlinux.h'), '#define ARCH_MARK 0x11\ntypedef unsigned int u32;\n');
  await writeFile(path.join(dir, 'gadget/arm64/vmlinux.h'), '#define ARCH_MARK 0x22\ntypedef unsigned int u32;\n');
  await writeFile(path.join(dir, 'gadget/common.h'), '#define COMMON_MARK 7\n');
  return dir;
}

const PROGRAM = `#include <vmlinux.h>
#include <gadget/common.h>
const volatile u32 arch_mark = ARCH_MARK + COMMON_MARK;
char LICENSE[] __attribute__((section("license"))) = "GPL";
`;

test('include roots add ROOT and ROOT/gadget/<arch>, then ig\'s /usr/include/gadget/<arch>', () => {
  assert.deepEqual(includeArgs(['/a', '/b'], 'arm64'), ['-I/a', '-I/a/gadget/arm64', '-I/b', '-I/b/gadget/arm64', '-I/usr/include/gadget/arm64']);
  assert.deepEqual(includeArgs([], 'amd64'), ['-I/usr/include/gadget/amd64']);
});

test('vmlinux.h resolves per architecture from an include root, and the depfile lists the headers', async (t) => {
  if (!clang) return t.skip('clang is not installed');
  const base = await tempDir(t, 'inc');
  const root = await includeRoot(path.join(base, 'headers'));
  const dir = path.join(base, 'g');
  await mkdir(dir);
  await writeFile(path.join(dir, 'program.bpf.c'), PROGRAM);
  const r = await compileEbpf({ dir, source: path.join(dir, 'program.bpf.c'), shownSource: 'g/program.bpf.c', cflags: [], includeRoots: [root] });
  // The .rodata of each object holds that arch's value: 0x11 + 7 and 0x22 + 7.
  assert.ok(r.objects.amd64!.includes(Buffer.from([0x18, 0, 0, 0])), 'amd64 used gadget/amd64/vmlinux.h');
  assert.ok(r.objects.arm64!.includes(Buffer.from([0x29, 0, 0, 0])), 'arm64 used gadget/arm64/vmlinux.h');
  for (const h of ['gadget/amd64/vmlinux.h', 'gadget/arm64/vmlinux.h', 'gadget/common.h']) assert.ok(r.deps.includes(path.join(root, h)), `${h} in the deps`);
});

test('--include, per-gadget and global include, $GADGET_INCLUDE; the cache covers headers read from them', async (t) => {
  if (!clang) return t.skip('clang is not installed');
  const base = await tempDir(t, 'inc-build');
  const root = await includeRoot(path.join(base, 'headers'));
  const dir = path.join(base, 'g');
  await mkdir(dir);
  await writeFile(path.join(dir, 'program.bpf.c'), PROGRAM);
  await writeFile(path.join(dir, 'gadget.yaml'), 'name: inc\n');
  const ctx = await buildContext(t, base);

  // Without the root the build fails naming vmlinux.h.
  await assert.rejects(buildGadget(ctx, { dir: 'g', ref: 'inc:v0' }), /vmlinux\.h/);

  const a = await buildGadget(ctx, { dir: 'g', ref: 'inc:v1' }, { include: ['headers'] });
  const runs = compileCount();
  const again = await buildGadget(ctx, { dir: 'g', ref: 'inc:v1' }, { include: ['headers'] });
  assert.equal(again.cached, true);
  assert.equal(compileCount(), runs, 'unchanged headers: no clang run');

  // A header inside the include root changes: a miss, and a different object.
  await writeFile(path.join(root, 'gadget/arm64/vmlinux.h'), '#define ARCH_MARK 0x33\ntypedef unsigned int u32;\n');
  const changed = await buildGadget(ctx, { dir: 'g', ref: 'inc:v1' }, { include: ['headers'] });
  assert.equal(changed.cached, false);
  assert.ok(compileCount() > runs, 'a changed header rebuilds');
  assert.notEqual(changed.descriptor.digest, a.descriptor.digest);

  // The same root through each other way: same image (same headers, same key parts but the source).
  const viaGadget = await buildGadget(ctx, { dir: 'g', ref: 'inc:v2', include: ['headers'] });
  const viaEnv = await withEnv('GADGET_INCLUDE', `${path.join(base, 'nothing-here-is-fine-too')}`, async () => {
    // A missing $GADGET_INCLUDE folder is an error naming its source.
    await assert.rejects(buildGadget(ctx, { dir: 'g', ref: 'inc:v3' }), (e: unknown) => e instanceof GadgetError && e.exitCode === 2 && /\$GADGET_INCLUDE: include folder .*does not exist/.test(e.message));
    return undefined;
  });
  assert.equal(viaEnv, undefined);
  const fromEnv = await withEnv('GADGET_INCLUDE', root, () => buildGadget(ctx, { dir: 'g', ref: 'inc:v3' }));
  ctx.config = { include: ['headers'], gadgets: [{ dir: 'g', ref: 'inc:v4' }] };
  const [fromConfig] = await build().run(ctx, []);
  for (const other of [viaGadget, fromEnv, fromConfig!]) assert.equal(other.descriptor.digest.length, 71);
  const manifestOf = async (digest: string) => (await ctx.store.readJSON<Index>(digest)).manifests.map((m) => m.digest);
  assert.deepEqual(await manifestOf(viaGadget.descriptor.digest), await manifestOf(changed.descriptor.digest));
  assert.deepEqual(await manifestOf(fromEnv.descriptor.digest), await manifestOf(changed.descriptor.digest));
  assert.deepEqual(await manifestOf(fromConfig!.descriptor.digest), await manifestOf(changed.descriptor.digest));

  await assert.rejects(buildGadget(ctx, { dir: 'g', ref: 'x' }, { include: ['no/such/folder'] }), (e: unknown) => e instanceof GadgetError && e.exitCode === 2 && /--include: include folder no\/such\/folder/.test(e.message));
});

test('the same gadget and include root checked out in two places give the same image; the object names the headers as ig\'s /usr/include', async (t) => {
  if (!clang) return t.skip('clang is not installed');
  const base = await tempDir(t, 'two-checkouts');
  // A header function inlined into the program: its file lands in the object's BTF line info.
  const checkout = async (where: string): Promise<void> => {
    const root = await includeRoot(path.join(where, 'include'));
    await writeFile(path.join(root, 'gadget/inline.h'), 'static inline __attribute__((always_inline)) int twice(int x) { return x * 2; }\n');
    await mkdir(path.join(where, 'gadgets/g'), { recursive: true });
    await writeFile(path.join(where, 'gadgets/g/program.bpf.c'), `${PROGRAM}#include <gadget/inline.h>\n__attribute__((section("tracepoint/x"))) int prog(void *ctx) { return twice(arch_mark); }\n`);
  };
  await checkout(path.join(base, 'a'));
  await checkout(path.join(base, 'somewhere-else/b'));
  const ctx = await buildContext(t, base);
  const digests = await withEnv('SOURCE_DATE_EPOCH', '1700000000', async () =>
    Promise.all(['a', 'somewhere-else/b'].map(async (c) => (await buildGadget(ctx, { dir: `${c}/gadgets/g`, ref: `two:${c.length}` }, { include: [`${c}/include`] })).descriptor.digest)),
  );
  assert.equal(digests[0], digests[1], 'one image for both checkouts');
  const index = await ctx.store.readJSON<Index>(digests[0]!);
  for (const m of index.manifests) {
    const manifest = await ctx.store.readJSON<Manifest>(m);
    const object = await ctx.store.readBytes(manifest.layers.find((l) => l.mediaType === GADGET_EBPF)!);
    assert.ok(object.includes('/usr/include/gadget/inline.h'), 'the header is named where ig\'s builder has it');
    assert.ok(!object.includes(base), 'no path of the checkout is in the object');
  }
});

test('cflags may name include folders anywhere; odd folder names stay one argument (no shell)', async (t) => {
  if (!clang) return t.skip('clang is not installed');
  const base = await tempDir(t, 'cflags-out');
  // A folder name a shell would act on: spaces, ;, $( ), quotes.
  const odd = path.join(base, `we ird; $(touch PWNED) 'x'`);
  const root = await includeRoot(odd);
  const dir = path.join(base, 'g');
  await mkdir(dir);
  await writeFile(path.join(dir, 'program.bpf.c'), PROGRAM);
  await writeFile(path.join(dir, 'build.yaml'), `cflags:\n  - "-I${root}/gadget/amd64"\n  - -I../we ird; $(touch PWNED) 'x'\n`);
  const ctx = await buildContext(t, base);
  // A cflags string is split on spaces as ig's make splits it; each item of a list is one argument.
  const built = await buildGadget(ctx, { dir: 'g', ref: 'cf:v1' });
  assert.equal(built.cached, false);
  // The same folders from gadget.config.ts resolve to the same absolute flags: the same image.
  const fromSpec = await buildGadget(ctx, { dir: 'g', ref: 'cf:v2', cflags: [`-I${root}/gadget/amd64`, `-I${root}`] });
  assert.equal(fromSpec.descriptor.digest, built.descriptor.digest);
  assert.equal(existsSync(path.join(base, 'PWNED')) || existsSync(path.join(dir, 'PWNED')), false, 'nothing ran through a shell');
  await assert.rejects(buildGadget(ctx, { dir: 'g', ref: 'cf:v2', cflags: ['-I../missing'] }), /cflags -I\.\.\/missing names a folder that does not exist/);
});

test('a header in a folder beside the gadget whose name starts with the gadget folder\'s keeps its absolute path in line info', async (t) => {
  if (!clang) return t.skip('clang is not installed');
  const base = await tempDir(t, 'prefix-sibling');
  const dir = path.join(base, 'g');
  await mkdir(path.join(base, 'g-inc'), { recursive: true });
  await mkdir(path.join(dir, 'sub'), { recursive: true });
  const inline = (name: string): string => `static __attribute__((always_inline)) inline int ${name}(void) { volatile int x = 3; return x; }\n`;
  await writeFile(path.join(base, 'g-inc/h.h'), inline('from_sibling'));
  await writeFile(path.join(dir, 'sub/k.h'), inline('from_sub'));
  await writeFile(path.join(dir, 'program.bpf.c'), '#include "h.h"\n#include "sub/k.h"\n__attribute__((section("tp/x"))) int handle(void *ctx) { return from_sibling() + from_sub(); }\nchar LICENSE[] __attribute__((section("license"))) = "GPL";\n');
  await writeFile(path.join(dir, 'build.yaml'), 'cflags: -I../g-inc\n');
  const { objects } = await compileEbpf({ dir, source: path.join(dir, 'program.bpf.c'), shownSource: 'g/program.bpf.c', cflags: [`-I${path.join(base, 'g-inc')}`], archs: ['amd64'] });
  const text = objects.amd64!.toString('latin1');
  assert.ok(text.includes(`${base}/g-inc/h.h`), 'the sibling folder keeps its absolute path');
  assert.ok(!text.includes('.-inc'), 'not ./.-inc/h.h');
  assert.ok(text.includes('./program.bpf.c') && text.includes('sub/k.h'), 'the gadget folder is "."');
  assert.ok(!text.includes(`${dir}/`), 'no absolute path of the gadget folder');
});

/** A folder of stand-in tools (see the header comment): each records its call and writes a real module. */
async function standIns(dir: string, opts: { goVersion?: string; rustcVersion?: string }): Promise<{ bin: string; log: string }> {
  const bin = path.join(dir, 'bin');
  const log = path.join(dir, 'calls.log');
  const sysroot = path.join(dir, 'sysroot');
  await mkdir(bin, { recursive: true });
  await mkdir(path.join(sysroot, 'lib/rustlib/wasm32-wasip1'), { recursive: true });
  const record = `printf '%s|%s|GOOS=%s GOARCH=%s CGO_ENABLED=%s CARGO_TARGET_DIR=%s|%s\\n' "$(basename "$0")" "$PWD" "$GOOS" "$GOARCH" "$CGO_ENABLED" "$CARGO_TARGET_DIR" "$*" >> ${JSON.stringify(log)}`;
  await writeFile(path.join(bin, 'go'), `#!/bin/sh
if [ "$1" = version ]; then echo "go version ${opts.goVersion ?? 'go1.24.2'} linux/amd64"; exit 0; fi
${record}
out=""; prev=""
for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
cp ${JSON.stringify(HELLO_WASM)} "$out"
`);
  await writeFile(path.join(bin, 'rustc'), `#!/bin/sh
if [ "$1" = --version ]; then echo "rustc ${opts.rustcVersion ?? '1.80.0'} (stand-in)"; exit 0; fi
if [ "$1" = --print ]; then echo ${JSON.stringify(sysroot)}; exit 0; fi
exit 1
`);
  await writeFile(path.join(bin, 'cargo'), `#!/bin/sh
${record}
mkdir -p "$CARGO_TARGET_DIR/wasm32-wasip1/release"
cp ${JSON.stringify(HELLO_WASM)} "$CARGO_TARGET_DIR/wasm32-wasip1/release/my_gadget.wasm"
`);
  for (const tool of ['go', 'rustc', 'cargo']) await chmod(path.join(bin, tool), 0o755);
  return { bin, log };
}

async function wasmGadgets(base: string): Promise<void> {
  await mkdir(path.join(base, 'gog/go/sub'), { recursive: true });
  await writeFile(path.join(base, 'gog/build.yaml'), 'wasm: go/program.go\n');
  await writeFile(path.join(base, 'gog/gadget.yaml'), 'name: gog\n');
  await writeFile(path.join(base, 'gog/go/go.mod'), 'module gog\n\ngo 1.24\n');
  await writeFile(path.join(base, 'gog/go/program.go'), 'package main\n\nfunc main() {}\n');
  await writeFile(path.join(base, 'gog/go/sub/helper.go'), 'package sub\n');
  await mkdir(path.join(base, 'rs/rust/src'), { recursive: true });
  await writeFile(path.join(base, 'rs/build.yaml'), 'wasm: rust/src/lib.rs\n');
  await writeFile(path.join(base, 'rs/gadget.yaml'), 'name: rs\n');
  await writeFile(path.join(base, 'rs/rust/Cargo.toml'), '[package]\nname = "my-gadget"\nversion = "0.1.0"\n\n[lib]\ncrate-type = ["cdylib"]\n');
  await writeFile(path.join(base, 'rs/rust/src/lib.rs'), '#[no_mangle] pub fn x() {}\n');
}

const calls = async (log: string): Promise<string[]> => (existsSync(log) ? (await readFile(log, 'utf8')).trim().split('\n') : []);

test('wasm from Go and Rust sources: ig\'s command lines, in the source folder (stand-in toolchains, see top)', async (t) => {
  const base = await tempDir(t, 'wasm-src');
  await wasmGadgets(base);
  const tools = await standIns(path.join(base, 'tools'), {});
  const ctx = await buildContext(t, base);
  await withEnv('PATH', `${tools.bin}${path.delimiter}${process.env.PATH}`, async () => {
    const go = await buildGadget(ctx, { dir: 'gog', ref: 'gog:v1' });
    const rs = await buildGadget(ctx, { dir: 'rs', ref: 'rs:v1' });
    const [goCall, cargoCall] = await calls(tools.log);
    const [gtool, gcwd, genv, gargs] = goCall!.split('|');
    assert.equal(gtool, 'go');
    assert.equal(gcwd, path.join(base, 'gog/go'), 'go runs in the source folder');
    assert.match(genv!, /^GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 /);
    assert.match(gargs!, /^build -o \S+\/program\.wasm -buildmode=c-shared -ldflags -w -s program\.go$/);
    const [ctool, ccwd, cenv, cargs] = cargoCall!.split('|');
    assert.equal(ctool, 'cargo');
    assert.equal(ccwd, path.join(base, 'rs/rust/src'), 'cargo runs in the source folder');
    assert.match(cenv!, /CARGO_TARGET_DIR=\/\S+/);
    assert.equal(cargs, 'build --target wasm32-wasip1 --release');
    for (const img of [go, rs]) {
      const index = await ctx.store.readJSON<Index>(img.descriptor);
      const manifest = await ctx.store.readJSON<Manifest>(index.manifests[0]!);
      const layer = manifest.layers.find((l) => l.mediaType === GADGET_WASM)!;
      assert.ok((await ctx.store.readBytes(layer)).equals(await readFile(HELLO_WASM)), 'the module the toolchain wrote is the layer');
    }

    // The cache covers the sources: unchanged -> no toolchain run; a changed .go file in a sub-package -> rebuilt.
    assert.equal((await buildGadget(ctx, { dir: 'gog', ref: 'gog:v1' })).cached, true);
    assert.equal((await calls(tools.log)).length, 2);
    await writeFile(path.join(base, 'gog/go/sub/helper.go'), 'package sub\n\nconst X = 1\n');
    assert.equal((await buildGadget(ctx, { dir: 'gog', ref: 'gog:v1' })).cached, false);
    assert.equal((await calls(tools.log)).length, 3);
  });
});

/** A check that a gadget is a cache hit as it is, and a miss once `change` ran. */
function missesAfter(ctx: Parameters<typeof buildGadget>[0]): (dir: string, change: () => Promise<void>, what: string) => Promise<void> {
  return async (dir, change, what) => {
    assert.equal((await buildGadget(ctx, { dir, ref: `${dir}:v1` })).cached, true, `${what}: unchanged is a hit`);
    await change();
    assert.equal((await buildGadget(ctx, { dir, ref: `${dir}:v1` })).cached, false, `${what}: a miss`);
  };
}

test('wasm from source: what go and cargo read outside the module folder is in the cache key (stand-in toolchains, see top)', async (t) => {
  const base = await tempDir(t, 'wasm-outside');
  await wasmGadgets(base);
  const tools = await standIns(path.join(base, 'tools'), {});
  const ctx = await buildContext(t, base);
  // As ig's trace_dns replaces ig with ../../../: a local module beside the gadget.
  await writeFile(path.join(base, 'gog/go/go.mod'), 'module gog\n\ngo 1.24\n\nreplace (\n\texample.com/lib v1.0.0 => "../../lib" // local\n\texample.com/far => example.com/far v1.2.0\n)\n');
  await mkdir(path.join(base, 'lib/inner'), { recursive: true });
  await writeFile(path.join(base, 'lib/go.mod'), 'module example.com/lib\n');
  await writeFile(path.join(base, 'lib/inner/lib.go'), 'package inner\n');
  await writeFile(path.join(base, 'rs/rust/Cargo.toml'), '[package]\nname = "my-gadget"\nversion = "0.1.0"\n\n[lib]\ncrate-type = ["cdylib"]\n\n[dependencies]\nshared = { path = "../../shared" }\n');
  await mkdir(path.join(base, 'shared/src'), { recursive: true });
  await writeFile(path.join(base, 'shared/Cargo.toml'), '[package]\nname = "shared"\nversion = "0.1.0"\n\n[dependencies]\ndeeper = { path = "../deeper" }\n');
  await writeFile(path.join(base, 'shared/src/lib.rs'), 'pub fn one() -> u32 { 1 }\n');
  await mkdir(path.join(base, 'deeper'));
  await writeFile(path.join(base, 'deeper/Cargo.toml'), '[package]\nname = "deeper"\nversion = "0.1.0"\n');
  const missAfter = missesAfter(ctx);
  await withEnv('PATH', `${tools.bin}${path.delimiter}${process.env.PATH}`, async () => {
    await buildGadget(ctx, { dir: 'gog', ref: 'gog:v1' });
    await buildGadget(ctx, { dir: 'rs', ref: 'rs:v1' });
    await missAfter('gog', () => writeFile(path.join(base, 'lib/inner/lib.go'), 'package inner\n\nconst X = 2\n'), 'a file of a replace target');
    await mkdir(path.join(base, 'other'));
    await missAfter('gog', () => writeFile(path.join(base, 'go.work'), 'go 1.24\n\nuse ./gog/go\nuse ./other\n'), 'a go.work above');
    await missAfter('gog', () => writeFile(path.join(base, 'other/x.go'), 'package other\n'), 'a go.work use folder');
    await missAfter('gog', async () => void (process.env.GOFLAGS = '-tags=extra'), 'GOFLAGS');
    delete process.env.GOFLAGS;
    await buildGadget(ctx, { dir: 'gog', ref: 'gog:v1' });
    await missAfter('rs', () => writeFile(path.join(base, 'shared/src/lib.rs'), 'pub fn one() -> u32 { 2 }\n'), 'a path dependency');
    await missAfter('rs', () => writeFile(path.join(base, 'deeper/lib.rs'), '// new\n'), "a path dependency's path dependency");
    await missAfter('rs', () => writeFile(path.join(base, 'Cargo.toml'), '[workspace]\nmembers = ["rs/rust"]\n'), 'a workspace Cargo.toml above');
    await mkdir(path.join(base, '.cargo'));
    await missAfter('rs', () => writeFile(path.join(base, '.cargo/config.toml'), '[build]\nrustflags = ["-Copt-level=1"]\n'), 'a .cargo/config.toml above');
    await missAfter('rs', async () => void (process.env.RUSTFLAGS = '-Cdebuginfo=2'), 'RUSTFLAGS');
    delete process.env.RUSTFLAGS;
  });
});

test('wasm from source: hidden files, symbolic links and every TOML spelling of a Cargo path dependency are in the cache key (stand-in toolchains, see top)', async (t) => {
  const base = await tempDir(t, 'wasm-hidden');
  await wasmGadgets(base);
  const tools = await standIns(path.join(base, 'tools'), {});
  const ctx = await buildContext(t, base);
  // //go:embed .config.json reads a hidden file; go compiles a symbolic link to a .go file; rustc follows a linked module folder.
  await writeFile(path.join(base, 'gog/go/.config.json'), '{"v":1}\n');
  await mkdir(path.join(base, 'shared/mod'), { recursive: true });
  await writeFile(path.join(base, 'shared/common.go'), 'package main // v1\n');
  await symlink('../../shared/common.go', path.join(base, 'gog/go/common.go'));
  await writeFile(path.join(base, 'shared/mod/mod.rs'), 'pub fn v() -> u32 { 1 }\n');
  await symlink('../../../shared/mod', path.join(base, 'rs/rust/src/linked'));
  // A loop and a dangling link are lines of the key, not a hang or a failure.
  await symlink('.', path.join(base, 'gog/go/self'));
  await symlink('../../nowhere.go', path.join(base, 'gog/go/dangling.go'));
  const deps = ['inline', 'dotted', 'quoted', 'table', 'target', 'patch', 'workspace'];
  for (const d of deps) {
    await mkdir(path.join(base, `deps/${d}/src`), { recursive: true });
    await writeFile(path.join(base, `deps/${d}/src/lib.rs`), 'pub fn v() -> u32 { 1 }\n');
  }
  await writeFile(path.join(base, 'rs/rust/Cargo.toml'), `[package]
name = "my-gadget"
version = "0.1.0"

[lib]
crate-type = ["cdylib"]

[dependencies]
inline = { version = "0.1", path = "../../deps/inline" }
dotted.path = "../../deps/dotted" # a dotted key
"quoted" . 'path' = '../../deps/quoted'

[dependencies.table]
path = "../../deps/table"

[target.'cfg(target_arch = "wasm32")'.dependencies]
target = { path = """../../deps/target""" }

[patch.crates-io]
patch = { path = "../../deps/patch" }

[workspace.dependencies]
workspace = { path = "../../deps/\\u0077orkspace" }
`);
  const missAfter = missesAfter(ctx);
  await withEnv('PATH', `${tools.bin}${path.delimiter}${process.env.PATH}`, async () => {
    await buildGadget(ctx, { dir: 'gog', ref: 'gog:v1' });
    await buildGadget(ctx, { dir: 'rs', ref: 'rs:v1' });
    await missAfter('gog', () => writeFile(path.join(base, 'gog/go/.config.json'), '{"v":2}\n'), 'a hidden file');
    await missAfter('gog', () => writeFile(path.join(base, 'shared/common.go'), 'package main // v2\n'), 'the target of a linked file');
    await missAfter('gog', () => writeFile(path.join(base, 'nowhere.go'), 'package main\n'), 'a dangling link that now leads somewhere');
    await mkdir(path.join(base, 'gog/go/.git'));
    await writeFile(path.join(base, 'gog/go/.git/HEAD'), 'ref: refs/heads/main\n');
    assert.equal((await buildGadget(ctx, { dir: 'gog', ref: 'gog:v1' })).cached, true, '.git is not read by go or cargo: not in the key');
    await missAfter('rs', () => writeFile(path.join(base, 'shared/mod/mod.rs'), 'pub fn v() -> u32 { 2 }\n'), 'a file in a linked folder');
    for (const d of deps) await missAfter('rs', () => writeFile(path.join(base, `deps/${d}/src/lib.rs`), 'pub fn v() -> u32 { 2 }\n'), `a path dependency written as ${d}`);
  });
});

test('a Go older than 1.24 or a Rust without wasm32-wasip1: exit 2, one sentence naming what is needed', async (t) => {
  const base = await tempDir(t, 'wasm-old');
  await wasmGadgets(base);
  const old = await standIns(path.join(base, 'old'), { goVersion: 'go1.19.8', rustcVersion: '1.63.0' });
  const ctx = await buildContext(t, base);
  await withEnv('PATH', `${old.bin}${path.delimiter}${process.env.PATH}`, async () => {
    await assert.rejects(buildGadget(ctx, { dir: 'gog', ref: 'x' }), (e: unknown) => e instanceof GadgetError && e.exitCode === 2 && /needs Go 1\.24 or newer .*this go is 1\.19/.test(e.message) && /prebuilt \.wasm/.test(e.hint!));
    await assert.rejects(buildGadget(ctx, { dir: 'rs', ref: 'x' }), (e: unknown) => e instanceof GadgetError && e.exitCode === 2 && /needs Rust 1\.78 or newer with the wasm32-wasip1 target, but this rustc is 1\.63/.test(e.message));
  });
  assert.equal(await calls(old.log).then((c) => c.length), 0, 'no build was attempted');
});

test('the real machine: no Go here, and the real Rust lacks wasm32-wasip1 (the error path for real)', async (t) => {
  const base = await tempDir(t, 'wasm-real');
  await wasmGadgets(base);
  const ctx = await buildContext(t, base);
  if (await findTool('go')) {
    t.diagnostic('a go is installed here; only its version check applies');
  } else {
    await assert.rejects(buildGadget(ctx, { dir: 'gog', ref: 'x' }), (e: unknown) => e instanceof GadgetError && e.exitCode === 2 && /^building gog\/go\/program\.go to wasm needs Go 1\.24 or newer \(GOOS=wasip1 with -buildmode=c-shared\), but go is not installed$/.test(e.message));
  }
  const rustc = await findTool('rustc');
  if (!rustc) {
    await assert.rejects(buildGadget(ctx, { dir: 'rs', ref: 'x' }), (e: unknown) => e instanceof GadgetError && e.exitCode === 2 && /needs Rust 1\.78 or newer with the wasm32-wasip1 target, but (cargo|rustc) is not installed/.test(e.message));
  } else {
    await assert.rejects(buildGadget(ctx, { dir: 'rs', ref: 'x' }), (e: unknown) => e instanceof GadgetError && e.exitCode === 2 && /needs Rust 1\.78 or newer with the wasm32-wasip1 target/.test(e.message));
  }
  assert.equal(ctx.store.list().length, 0, 'nothing was tagged');
});

test('a wasm value that is neither .wasm, .go nor .rs is refused; a Go file outside any module too', async (t) => {
  const base = await tempDir(t, 'wasm-bad');
  await mkdir(path.join(base, 'g'));
  await writeFile(path.join(base, 'g/gadget.yaml'), 'name: g\n');
  await writeFile(path.join(base, 'g/main.c'), '');
  await writeFile(path.join(base, 'g/program.go'), 'package main\n');
  const ctx = await buildContext(t, base);
  await assert.rejects(buildGadget(ctx, { dir: 'g', ref: 'x', wasm: 'main.c' }), /neither a \.wasm module nor a Go \(\.go\) or Rust \(\.rs\) source/);
  await assert.rejects(buildGadget(ctx, { dir: 'g', ref: 'x', wasm: 'program.go' }), /no go\.mod was found above it/);
});

test('gadget build --btfgen --btfhub DIR adds the btfgen layer; either flag alone is a usage error', async (t) => {
  const { CLI, gadget } = await import('./helpers/cli.js');
  if (!existsSync(CLI)) return t.skip(`${CLI} is not built (npm run build)`);
  if (!clang || !existsSync('/sys/kernel/btf/vmlinux') || !(await findTool('bpftool'))) return t.skip('clang, bpftool or /sys/kernel/btf/vmlinux is missing');
  const base = await tempDir(t, 'btfgen-cli');
  const hub = path.join(base, 'hub/debian/12/x86_64');
  await mkdir(hub, { recursive: true });
  await writeFile(path.join(hub, '6.1.0-test.btf'), await readFile('/sys/kernel/btf/vmlinux'));
  const env = { GADGET_STORE: path.join(base, 'store') };
  const example = path.join(REPO, 'examples/trace_open');
  const alone = await gadget(['build', example, '-t', 'b:1', '--btfgen'], { env });
  assert.equal(alone.code, 2);
  assert.match(alone.stderr, /^error: --btfgen needs --btfhub DIR$/m);
  assert.equal((await gadget(['build', example, '-t', 'b:1', '--btfhub', path.join(base, 'hub')], { env })).code, 2);
  const r = await gadget(['--json', 'build', example, '-t', 'b:1', '--btfgen', '--btfhub', path.join(base, 'hub')], { env });
  assert.equal(r.code, 0, r.stderr);
  const v = await gadget(['--json', 'verify', 'b:1'], { env });
  assert.equal(v.code, 0, v.stdout);
  const inspect = JSON.parse((await gadget(['--json', 'inspect', 'b:1'], { env })).stdout) as { manifests: Array<{ platform: string; layers: Array<{ mediaType: string }> }> };
  const amd64 = inspect.manifests.find((m) => m.platform === 'linux/amd64')!;
  assert.deepEqual(amd64.layers.map((l) => l.mediaType), [GADGET_EBPF, GADGET_BTFGEN]);
});
