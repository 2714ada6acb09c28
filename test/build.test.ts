// The build plugin against the real tools (clang, llvm-strip, bpftool, xz) and a real store.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { readTar, writeTar } from '../lib/archive/tar.js';
import { checkBtfTarball } from '../lib/content/btf.js';
import { EM_BPF } from '../lib/content/elf.js';
import { GadgetError } from '../lib/errors.js';
import { EMPTY_DIGEST, GADGET_BTFGEN, GADGET_CONFIG, GADGET_EBPF, GADGET_WASM } from '../lib/oci/mediatypes.js';
import type { Index, Manifest } from '../lib/oci/types.js';
import { build, buildGadget, type GadgetSpec } from '../plugins/build.js';
import { generateBtfgen } from '../plugins/build/btfgen.js';
import { compileCount, compileEbpf, missingTool, toolVersion } from '../plugins/build/compile.js';
import type { Store } from '../store/store.js';
import { buildContext as context, tempDir, withEnv } from './helpers/build-context.js';
import { REPO } from './helpers/paths.js';

const run = promisify(execFile);
const examples = path.join(REPO, 'examples');
const VMLINUX = '/sys/kernel/btf/vmlinux';

const elfMachine = (b: Buffer) => b.readUInt16LE(18);

async function readImage(store: Store, digest: string) {
  const index = await store.readJSON<Index>(digest);
  const manifests = await Promise.all(index.manifests.map((m) => store.readJSON<Manifest>(m)));
  return { index, manifests };
}

async function storeBlobs(store: Store): Promise<string[]> {
  return readdir(path.join(store.root, 'blobs/sha256')).catch(() => []);
}

async function tarPaths(gz: Buffer): Promise<string[]> {
  const out: string[] = [];
  for await (const e of readTar(Readable.from([gz]))) {
    out.push(`${e.type}:${e.path.replace(/\/$/, '')}`);
    for await (const _ of e.body); // drain
  }
  return out;
}

test('clang compiles the example for amd64 and arm64 into stripped eBPF objects', async () => {
  const dir = path.join(examples, 'trace_open');
  const result = await compileEbpf({ dir, source: path.join(dir, 'program.bpf.c'), shownSource: 'examples/trace_open/program.bpf.c', cflags: [] });
  const { amd64, arm64 } = result.objects;
  assert.ok(amd64 && arm64);
  assert.equal(elfMachine(amd64), EM_BPF);
  assert.equal(elfMachine(arm64), EM_BPF);
  assert.ok(!amd64.equals(arm64), 'the kprobe reads arguments through a per-arch register layout');
  assert.ok(!amd64.includes(Buffer.from('.debug_info')), 'llvm-strip -g removed DWARF');
  assert.ok(amd64.includes(Buffer.from('.BTF')), 'BTF stays for CO-RE');
  assert.ok(!amd64.includes(Buffer.from(REPO)), 'no absolute checkout path in the object');
  assert.ok(result.deps.includes(path.join(dir, 'program.bpf.c')));
  assert.ok(result.deps.some((d) => d.endsWith('/bpf/bpf_helpers.h')), 'system headers are tracked for the cache');
  // The committed prebuilt objects come from this same step; with the same clang they match.
  const recorded = (await readFile(path.join(dir, 'prebuilt/clang-version.txt'), 'utf8')).trim();
  if (recorded === (await toolVersion('clang'))) {
    assert.ok(amd64.equals(await readFile(path.join(dir, 'prebuilt/amd64.o'))), 'prebuilt/amd64.o is stale: run node --import tsx examples/prebuild.ts');
    assert.ok(arm64.equals(await readFile(path.join(dir, 'prebuilt/arm64.o'))), 'prebuilt/arm64.o is stale');
  }
});

test("compiler errors reach the user with the file name and clang's message", async (t) => {
  const dir = await tempDir(t, 'broken');
  await writeFile(path.join(dir, 'program.bpf.c'), 'int x = undeclared_thing;\n');
  await assert.rejects(
    compileEbpf({ dir, source: path.join(dir, 'program.bpf.c'), shownSource: 'broken/program.bpf.c', cflags: [] }),
    (e: unknown) => e instanceof GadgetError && /broken\/program\.bpf\.c/.test(e.message) && /undeclared_thing/.test(e.message) && /error:/.test(e.message),
  );
});

test('builds both examples into the store as ig would', async (t) => {
  const ctx = await context(t);
  await withEnv('SOURCE_DATE_EPOCH', '1700000000', async () => {
    const trace = await buildGadget(ctx, { dir: 'examples/trace_open', ref: 'myorg/trace_open:v1' }, { igVersion: 'v0.45.0' });
    assert.equal(trace.ref, 'ghcr.io/myorg/trace_open:v1');
    assert.deepEqual(ctx.store.resolveRef('myorg/trace_open:v1').digest, trace.descriptor.digest);
    const { index, manifests } = await readImage(ctx.store, trace.descriptor.digest);
    assert.deepEqual(index.manifests.map((m) => m.platform?.architecture), ['amd64', 'arm64']);
    assert.notEqual(index.manifests[0]!.digest, index.manifests[1]!.digest);
    assert.equal(index.annotations!['org.opencontainers.image.title'], 'trace open');
    assert.equal(index.annotations!['io.inspektor-gadget.builder.version'], 'v0.45.0');
    assert.equal(index.annotations!['org.opencontainers.image.created'], '2023-11-14T22:13:20Z');
    for (const m of manifests) {
      assert.deepEqual(m.layers.map((l) => l.mediaType), [GADGET_EBPF]);
      assert.equal(m.config.mediaType, GADGET_CONFIG);
      assert.ok((await ctx.store.readBytes(m.config)).equals(await readFile(path.join(examples, 'trace_open/gadget.yaml'))), 'config = gadget.yaml bytes');
      assert.equal(elfMachine(await ctx.store.readBytes(m.layers[0]!, 1 << 20)), EM_BPF);
    }

    const hello = await buildGadget(ctx, { dir: 'examples/hello_wasm', ref: 'hello_wasm' });
    assert.equal(hello.ref, 'ghcr.io/inspektor-gadget/gadget/hello_wasm:latest');
    const h = await readImage(ctx.store, hello.descriptor.digest);
    assert.equal(h.index.manifests[0]!.digest, h.index.manifests[1]!.digest, 'wasm-only: identical manifests listed twice');
    assert.deepEqual(h.manifests[0]!.layers.map((l) => l.mediaType), [GADGET_WASM]);
    assert.equal(h.index.annotations!['io.gadget-oci.example'], 'hello_wasm', "gadget.yaml's annotations are copied");
    assert.match(h.index.annotations!['io.inspektor-gadget.builder.version']!, /^gadget-oci\/\d+\.\d+\.\d+/);
  });
});

test('a gadget without gadget.yaml gets the OCI empty config', async (t) => {
  const ctx = await context(t);
  const dir = await tempDir(t, 'nometa');
  await cp(path.join(examples, 'hello_wasm/program.wasm'), path.join(dir, 'program.wasm'));
  const built = await buildGadget(ctx, { dir, ref: 'localhost:5000/nometa:1', wasm: 'program.wasm' });
  const { manifests } = await readImage(ctx.store, built.descriptor.digest);
  assert.equal(manifests[0]!.config.digest, EMPTY_DIGEST);
  assert.equal(manifests[0]!.config.data, 'e30=');
  assert.equal(manifests[0]!.annotations!['org.opencontainers.image.title'], undefined, 'no metadata, no metadata annotations');
  assert.ok(ctx.store.hasBlob(EMPTY_DIGEST));
  // As in ig, `metadata: ""` in build.yaml means no gadget.yaml even when one exists.
  await writeFile(path.join(dir, 'gadget.yaml'), 'name: ignored\n');
  await writeFile(path.join(dir, 'build.yaml'), 'wasm: program.wasm\nmetadata: ""\n');
  const again = await buildGadget(ctx, { dir, ref: 'localhost:5000/nometa:2' });
  assert.equal((await readImage(ctx.store, again.descriptor.digest)).manifests[0]!.config.digest, EMPTY_DIGEST);
});

test('two builds with SOURCE_DATE_EPOCH give the same index digest', async (t) => {
  const a = await context(t);
  const b = await context(t);
  const spec: GadgetSpec = { dir: 'examples/trace_open', ref: 'trace_open' };
  const [da, db] = await withEnv('SOURCE_DATE_EPOCH', '1234567890', async () => [await buildGadget(a, spec), await buildGadget(b, spec)]);
  assert.equal(da!.cached, false);
  assert.equal(db!.cached, false);
  assert.equal(da!.descriptor.digest, db!.descriptor.digest);
});

test('an unchanged rebuild reuses the image without running clang; a changed header rebuilds', async (t) => {
  const ctx = await context(t);
  const dir = await tempDir(t, 'cached');
  await cp(path.join(examples, 'trace_open/program.bpf.c'), path.join(dir, 'program.bpf.c'));
  await writeFile(path.join(dir, 'common.h'), '#define EXTRA 1\n');
  const source = await readFile(path.join(dir, 'program.bpf.c'), 'utf8');
  await writeFile(path.join(dir, 'program.bpf.c'), `#include "common.h"\n${source}`);
  const spec: GadgetSpec = { dir, ref: 'localhost:5000/cached:1' };
  await withEnv('SOURCE_DATE_EPOCH', undefined, async () => {
    const first = await buildGadget(ctx, spec);
    assert.equal(first.cached, false);
    assert.equal(ctx.store.db.prepare("SELECT count(*) FROM cache WHERE namespace = 'build'").pluck().get(), 1, 'one cache entry');
    const runs = compileCount();
    const second = await buildGadget(ctx, { ...spec, ref: 'localhost:5000/cached:2' });
    assert.equal(second.cached, true);
    assert.equal(compileCount(), runs, 'clang did not run');
    assert.equal(second.descriptor.digest, first.descriptor.digest, 'the image (and its created time) is reused');
    assert.equal(ctx.store.resolveRef('localhost:5000/cached:2').digest, first.descriptor.digest, 'and tagged under the new ref');

    await writeFile(path.join(dir, 'common.h'), '#define EXTRA 2\n');
    const third = await buildGadget(ctx, spec);
    assert.equal(third.cached, false, 'a header clang read has changed');
    assert.ok(compileCount() > runs);

    const fourth = await buildGadget(ctx, spec, { annotations: { 'org.example.x': 'y' } });
    assert.equal(fourth.cached, false, 'annotations are part of the key');
    const fifth = await buildGadget(ctx, spec, { annotations: { 'org.example.x': 'y' }, noCache: true });
    assert.equal(fifth.cached, false);
  });
});

test('paths that leave the gadget folder are rejected before anything is written', async (t) => {
  const ctx = await context(t);
  const base = await tempDir(t, 'outside');
  const dir = path.join(base, 'gadget');
  await mkdir(dir);
  await writeFile(path.join(base, 'secret.bpf.c'), 'int x;\n');
  await writeFile(path.join(dir, 'gadget.yaml'), 'name: x\n');
  const cases: Array<{ yaml: string; field: RegExp; setup?: () => Promise<void> }> = [
    { yaml: 'ebpfsource: ../secret.bpf.c\n', field: /build\.yaml: field "ebpfsource"/ },
    { yaml: `metadata: ${path.join(base, 'secret.bpf.c')}\n`, field: /build\.yaml: field "metadata"/ },
    {
      yaml: 'wasm: link.wasm\n',
      field: /build\.yaml: field "wasm"/,
      setup: async () => {
        await writeFile(path.join(base, 'real.wasm'), await readFile(path.join(examples, 'hello_wasm/program.wasm')));
        await symlink(path.join(base, 'real.wasm'), path.join(dir, 'link.wasm'));
      },
    },
    { yaml: 'objects: {amd64: ../secret.bpf.c}\n', field: /build\.yaml: field "objects\.amd64"/ },
  ];
  for (const c of cases) {
    await c.setup?.();
    await writeFile(path.join(dir, 'build.yaml'), c.yaml);
    await assert.rejects(buildGadget(ctx, { dir, ref: 'x' }), (e: unknown) => {
      assert.ok(e instanceof GadgetError, String(e));
      assert.match(e.message, c.field);
      assert.match(e.message, /outside the gadget folder/);
      assert.equal(e.exitCode, 2);
      return true;
    });
  }
  // The spec (gadget.config.ts) is checked the same way.
  await rm(path.join(dir, 'build.yaml'));
  await assert.rejects(buildGadget(ctx, { dir, ref: 'x', metadata: '../secret.bpf.c' }, { source: 'gadget.config.ts' }), /gadget\.config\.ts: field "metadata".*outside the gadget folder/);
  assert.deepEqual(await storeBlobs(ctx.store), [], 'no blob was written');
  assert.equal(ctx.store.list().length, 0, 'no tag was written');
  assert.equal(ctx.store.db.prepare('SELECT count(*) FROM cache').pluck().get(), 0, 'no cache entry was written');
});

test('cflags from a build file must be plain compiler options', async (t) => {
  const ctx = await context(t);
  const dir = await tempDir(t, 'cflags');
  await cp(path.join(examples, 'trace_open/program.bpf.c'), path.join(dir, 'program.bpf.c'));
  for (const bad of ['-fplugin=/tmp/x.so', '-Xclang -load', '-o /etc/passwd', '@/tmp/args', '-Wl,-rpath', 'program.bpf.c']) {
    await writeFile(path.join(dir, 'build.yaml'), `cflags: "${bad}"\n`);
    await assert.rejects(buildGadget(ctx, { dir, ref: 'x' }), (e: unknown) => e instanceof GadgetError && /cflags option/.test(e.message) && e.exitCode === 2, bad);
  }
  await writeFile(path.join(dir, 'build.yaml'), 'cflags: "-DEXTRA=1 -Wno-unused-variable -O2"\n');
  const built = await buildGadget(ctx, { dir, ref: 'x' });
  assert.ok(ctx.store.hasBlob(built.descriptor.digest));
});

test('cflags that change where clang looks for headers beyond what the build cache checks are refused naming build.yaml', async (t) => {
  const ctx = await context(t);
  const dir = await tempDir(t, 'cflags-search');
  await cp(path.join(examples, 'trace_open/program.bpf.c'), path.join(dir, 'program.bpf.c'));
  // -fms-compatibility searches every includer's folder; -fms-extensions allows #pragma include_alias; modules read module maps.
  for (const bad of ['-fms-compatibility', '-fms-extensions', '-fmodules', '-fimplicit-module-maps']) {
    await writeFile(path.join(dir, 'build.yaml'), `cflags: "-DX=1 ${bad}"\n`);
    await assert.rejects(
      buildGadget(ctx, { dir, ref: 'x' }),
      (e: unknown) => e instanceof GadgetError && e.exitCode === 2 && e.message === `${path.join(dir, 'build.yaml')}: cflags option "${bad}" changes where clang looks for headers in a way the build cache cannot check`,
      bad,
    );
  }
  assert.deepEqual(await storeBlobs(ctx.store), [], 'no blob was written');
});

test('cflags that leave clang no eBPF object to write are refused naming build.yaml; an object clang did not write is said plainly', async (t) => {
  const ctx = await context(t);
  const dir = await tempDir(t, 'cflags-no-object');
  await cp(path.join(examples, 'trace_open/program.bpf.c'), path.join(dir, 'program.bpf.c'));
  for (const bad of ['-fsyntax-only', '-flto', '-flto=thin', '-fno-integrated-as']) {
    await writeFile(path.join(dir, 'build.yaml'), `cflags: "-DX=1 ${bad}"\n`);
    await assert.rejects(
      buildGadget(ctx, { dir, ref: 'x' }),
      (e: unknown) => e instanceof GadgetError && e.exitCode === 2 && e.message === `${path.join(dir, 'build.yaml')}: cflags option "${bad}" stops clang from writing the eBPF object the gadget is made of`,
      bad,
    );
  }
  assert.deepEqual(await storeBlobs(ctx.store), [], 'no blob was written');
  // The same option through clang's own CCC_OVERRIDE_OPTIONS, which no build.yaml check sees:
  // clang exits 0 with no object (or bitcode), and the error says so, with no scratch path.
  await writeFile(path.join(dir, 'build.yaml'), 'cflags: "-DX=1"\n');
  for (const [override, said] of [['+-fsyntax-only', 'wrote no object'], ['+-flto', 'wrote LLVM bitcode instead of an ELF object']] as const) {
    await withEnv('CCC_OVERRIDE_OPTIONS', override, () =>
      assert.rejects(compileEbpf({ dir, source: path.join(dir, 'program.bpf.c'), shownSource: 'g/program.bpf.c', cflags: ['-DX=1'], archs: ['amd64'] }), (e: unknown) => {
        assert.ok(e instanceof GadgetError);
        assert.equal(e.message, `clang exited without an error but ${said} for g/program.bpf.c (amd64); check the cflags (-DX=1)`);
        assert.equal(e.exitCode, 2);
        assert.doesNotMatch(`${e.message} ${e.hint}`, /llvm-strip|gadget-build-/);
        return true;
      }),
    );
  }
});

test('a broken gadget.yaml fails before anything is written', async (t) => {
  const ctx = await context(t);
  const dir = await tempDir(t, 'badmeta');
  await cp(path.join(examples, 'hello_wasm/program.wasm'), path.join(dir, 'program.wasm'));
  await writeFile(path.join(dir, 'gadget.yaml'), 'name: [unclosed\n');
  await writeFile(path.join(dir, 'build.yaml'), 'wasm: program.wasm\n');
  await assert.rejects(buildGadget(ctx, { dir, ref: 'x' }), (e: unknown) => e instanceof GadgetError && /gadget\.yaml/.test(e.message));
  assert.deepEqual(await storeBlobs(ctx.store), []);
});

test('without clang: one clear error, or the prebuilt objects with a log line', async (t) => {
  const ctx = await context(t);
  const emptyBin = await tempDir(t, 'nobin');
  const dir = await tempDir(t, 'noclang');
  await cp(path.join(examples, 'trace_open/program.bpf.c'), path.join(dir, 'program.bpf.c'));
  await withEnv('PATH', emptyBin, async () => {
    await assert.rejects(buildGadget(ctx, { dir, ref: 'x' }), (e: unknown) => {
      assert.ok(e instanceof GadgetError);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, /clang is not installed.*program\.bpf\.c/);
      assert.match(e.hint ?? '', /Debian package "clang"/);
      return true;
    });
    assert.deepEqual(await storeBlobs(ctx.store), []);
  });
  const spec: GadgetSpec = { dir: 'examples/trace_open', ref: 'trace_open', igVersion: 'v1' };
  const prebuilt = await withEnv('SOURCE_DATE_EPOCH', '1700000000', () => withEnv('PATH', emptyBin, () => buildGadget(ctx, spec)));
  assert.ok(ctx.logs.some((l) => /clang is not installed; using the prebuilt objects examples\/trace_open\/prebuilt\/amd64\.o, examples\/trace_open\/prebuilt\/arm64\.o/.test(l)), ctx.logs.join('\n'));
  const { manifests } = await readImage(ctx.store, prebuilt.descriptor.digest);
  assert.ok((await ctx.store.readBytes(manifests[0]!.layers[0]!, 1 << 20)).equals(await readFile(path.join(examples, 'trace_open/prebuilt/amd64.o'))));
  // With the clang that made them, compiling gives the very same image.
  const recorded = (await readFile(path.join(examples, 'trace_open/prebuilt/clang-version.txt'), 'utf8')).trim();
  if (recorded === (await toolVersion('clang'))) {
    const compiled = await withEnv('SOURCE_DATE_EPOCH', '1700000000', () => buildGadget(ctx, spec));
    assert.equal(compiled.cached, false);
    assert.equal(compiled.descriptor.digest, prebuilt.descriptor.digest);
  }
  assert.match(missingTool('bpftool', 'x').hint ?? '', /Debian package "bpftool"/);
  assert.match(missingTool('llvm-strip', 'x').hint ?? '', /Debian package "llvm"/);
});

test('btfgen minimises real kernel BTF per arch into a deterministic tarball', async (t) => {
  if (!existsSync(VMLINUX)) {
    t.skip(`${VMLINUX} is not available on this kernel`);
    return;
  }
  const hub = await tempDir(t, 'btfhub');
  const kernel = release();
  const vmlinux = await readFile(VMLINUX);
  await mkdir(path.join(hub, 'ubuntu/22.04/x86_64'), { recursive: true });
  await mkdir(path.join(hub, 'debian/12/arm64'), { recursive: true });
  await writeFile(path.join(hub, 'ubuntu/22.04/x86_64', `${kernel}.btf`), vmlinux);
  await writeFile(path.join(hub, 'debian/12/arm64', `${kernel}.btf`), vmlinux);
  // A .btf.tar.xz as btfhub-archive ships them, made with our tar writer and xz.
  const staging = await tempDir(t, 'xz');
  const tarFile = path.join(staging, 'k.tar');
  const chunks: Buffer[] = [];
  for await (const c of writeTar([{ path: '5.15.0-99-generic.btf', content: vmlinux }])) chunks.push(c as Buffer);
  await writeFile(tarFile, Buffer.concat(chunks));
  await run('xz', ['-0', '-T1', tarFile]);
  await cp(`${tarFile}.xz`, path.join(hub, 'ubuntu/22.04/x86_64/5.15.0-99-generic.btf.tar.xz'));

  const dir = path.join(examples, 'trace_open');
  const { objects } = await compileEbpf({ dir, source: path.join(dir, 'program.bpf.c'), shownSource: 'trace_open', cflags: [] });
  const first = await generateBtfgen({ btfhub: hub, objects });
  const second = await generateBtfgen({ btfhub: hub, objects });
  assert.deepEqual(first.missing, []);
  for (const arch of ['amd64', 'arm64'] as const) {
    const layer = first.layers[arch]!;
    assert.ok(layer.equals(second.layers[arch]!), `${arch} tarball is deterministic`);
    assert.equal(layer.readUInt32LE(4), 0, 'gzip mtime is 0');
    assert.deepEqual(await checkBtfTarball(Readable.from([layer]), arch), [], `${arch} layer passes the content checks`);
  }
  assert.deepEqual(await tarPaths(first.layers.amd64!), [
    'directory:ubuntu',
    'directory:ubuntu/22.04',
    'directory:ubuntu/22.04/x86_64',
    'file:ubuntu/22.04/x86_64/5.15.0-99-generic.btf',
    `file:ubuntu/22.04/x86_64/${kernel}.btf`,
  ].sort((a, b) => (a.split(':')[1]! < b.split(':')[1]! ? -1 : 1)));
  assert.deepEqual(await tarPaths(first.layers.arm64!), ['directory:debian', 'directory:debian/12', 'directory:debian/12/arm64', `file:debian/12/arm64/${kernel}.btf`]);
  // Minimised: a tiny fraction of the kernel's BTF.
  for await (const e of readTar(Readable.from([first.layers.amd64!]))) {
    if (e.type === 'file') assert.ok(e.size > 0 && e.size < vmlinux.length / 100, `${e.path} is ${e.size} bytes`);
    for await (const _ of e.body); // drain
  }

  // Through the plugin: the btfgen layer comes last, per arch.
  const ctx = await context(t);
  const built = await withEnv('SOURCE_DATE_EPOCH', '1700000000', () => buildGadget(ctx, { dir: 'examples/trace_open', ref: 'trace_open', btfhub: hub }));
  const { manifests } = await readImage(ctx.store, built.descriptor.digest);
  for (const m of manifests) assert.deepEqual(m.layers.map((l) => l.mediaType), [GADGET_EBPF, GADGET_BTFGEN]);
  assert.ok((await ctx.store.readBytes(manifests[0]!.layers[1]!, 64 << 20)).equals(first.layers.amd64!));
});

test('a .btf.tar.xz whose entry would escape is refused', async (t) => {
  const hub = await tempDir(t, 'evilhub');
  const staging = await tempDir(t, 'evilxz');
  await mkdir(path.join(hub, 'x/1/x86_64'), { recursive: true });
  // writeTar refuses '..' itself, so craft the header by renaming an entry in the bytes.
  const chunks: Buffer[] = [];
  for await (const c of writeTar([{ path: 'aa/evil.btf', content: Buffer.from('BTF') }])) chunks.push(c as Buffer);
  const tar = Buffer.concat(chunks);
  tar.write('../evil.btf', 0, 'utf8');
  let sum = 0;
  tar.fill(0x20, 148, 156);
  for (let i = 0; i < 512; i++) sum += tar[i]!;
  tar.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  await writeFile(path.join(staging, 'k.tar'), tar);
  await run('xz', ['-0', path.join(staging, 'k.tar')]);
  await cp(path.join(staging, 'k.tar.xz'), path.join(hub, 'x/1/x86_64/k.btf.tar.xz'));
  const objects = { amd64: await readFile(path.join(examples, 'trace_open/prebuilt/amd64.o')) };
  await assert.rejects(generateBtfgen({ btfhub: hub, objects }), (e: unknown) => e instanceof GadgetError && /\.\./.test(e.message));
  assert.ok(!existsSync(path.join(tmpdir(), 'evil.btf')));
});

test('the plugin builds the configured gadgets in parallel and reports each', async (t) => {
  const ctx = await context(t);
  ctx.config = { gadgets: [{ dir: 'examples/trace_open', ref: 'trace_open' }, { dir: 'examples/hello_wasm', ref: 'hello_wasm' }], igVersion: 'v9' };
  const artifacts = await build({ concurrency: 2 }).run(ctx, []);
  assert.deepEqual(artifacts.map((a) => a.ref), ['ghcr.io/inspektor-gadget/gadget/trace_open:latest', 'ghcr.io/inspektor-gadget/gadget/hello_wasm:latest']);
  assert.equal(ctx.records.length, 2);
  for (const a of artifacts) {
    assert.equal(ctx.store.resolveRef(a.ref).digest, a.descriptor.digest);
    const index = await ctx.store.readJSON<Index>(a.descriptor);
    assert.equal(index.annotations!['io.inspektor-gadget.builder.version'], 'v9');
  }
  // One bad gadget among good ones: the good ones are built, the error names the bad one.
  ctx.config = { gadgets: [{ dir: 'examples/hello_wasm', ref: 'a' }, { dir: 'examples/nope', ref: 'b' }] };
  await assert.rejects(build().run(ctx, []), /examples\/nope does not exist/);
  assert.ok(ctx.store.resolveRef('a'));
  await assert.rejects(build().run({ ...ctx, config: {} }, []), /no gadgets to build/);
});

test('a tool that cannot say its version is named by its first line of complaint, not its whole output', async (t) => {
  // A stand-in for rustup's proxy without a default toolchain (this machine's rustup has one):
  // a page of advice and a backtrace on stderr, exit 1.
  const dir = await tempDir(t, 'rustc');
  const tool = path.join(dir, 'rustc');
  await writeFile(tool, '#!/bin/sh\necho "error: rustup could not choose a version of rustc to run" >&2\necho "help: run \'rustup default stable\'" >&2\necho "Stack backtrace:" >&2\necho "   0: anyhow::error::<impl anyhow::Error>::msg" >&2\nexit 1\n', { mode: 0o755 });
  assert.equal(await toolVersion(tool), 'unavailable (error: rustup could not choose a version of rustc to run)');
  assert.match(await toolVersion(path.join(dir, 'absent')), /^unavailable \([^\n]*ENOENT[^\n]*\)$/, 'a missing tool: one line too');
});
