// The build cache: every input of the key is covered (a change to any of them rebuilds; the
// test for an input fails if that input is dropped from the key), clang's depfile is read as
// make reads it (`$$`, escaped spaces, non-UTF-8 names), and a dependency that cannot be read
// is a miss, never a hit. Real clang, bpftool and store.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, linkSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { PluginContext } from '../lib/runner/types.js';
import { buildGadget, type GadgetSpec } from '../plugins/build.js';
import { depsUnchanged, hashFiles } from '../plugins/build/cache.js';
import { parseDepfile } from '../plugins/build/depfile.js';
import { scanNames } from '../plugins/build/probes.js';
import { openStore } from '../store/store.js';
import { gadget } from './helpers/cli.js';
import { quietContext } from './helpers/context.js';
import { REPO, scratch } from './helpers/paths.js';

const EXAMPLE = path.join(REPO, 'examples', 'trace_open');
const VMLINUX = '/sys/kernel/btf/vmlinux';

async function context(t: TestContext, cwd: string): Promise<PluginContext> {
  const store = await openStore(path.join(cwd, 'store'));
  t.after(() => store.close());
  return quietContext(store, cwd);
}

/** Builds with a fixed creation time, so that only the inputs decide the key. */
async function built(ctx: PluginContext, spec: GadgetSpec, opts: Parameters<typeof buildGadget>[2] = {}): Promise<{ cached: boolean; digest: string }> {
  const old = process.env.SOURCE_DATE_EPOCH;
  process.env.SOURCE_DATE_EPOCH = '1700000000';
  try {
    const r = await buildGadget(ctx, spec, opts);
    return { cached: r.cached, digest: r.descriptor.digest };
  } finally {
    if (old === undefined) delete process.env.SOURCE_DATE_EPOCH;
    else process.env.SOURCE_DATE_EPOCH = old;
  }
}

/** Build, rebuild unchanged (a hit), change one input, rebuild (a miss with another image). */
async function changeRebuilds(ctx: PluginContext, spec: GadgetSpec, change: () => void | Promise<void>, opts: { before?: Parameters<typeof buildGadget>[2]; after?: Parameters<typeof buildGadget>[2]; after2?: GadgetSpec } = {}): Promise<void> {
  const first = await built(ctx, spec, opts.before);
  const again = await built(ctx, spec, opts.before);
  assert.equal(again.cached, true, 'unchanged inputs reuse the image');
  await change();
  const changed = await built(ctx, opts.after2 ?? spec, opts.after ?? opts.before);
  assert.equal(changed.cached, false, 'a changed input rebuilds');
  assert.notEqual(changed.digest, first.digest, 'into another image');
}

test('depfiles are read as make reads them: $$, escaped spaces and #, continuations, non-UTF-8 bytes', () => {
  const text = Buffer.concat([
    Buffer.from('/tmp/b/amd64.bpf.o: program.bpf.c a$$b.h with\\ space.h \\\n  /usr/include/x\\#y.h back\\\\slash.h \\\r\n  '),
    Buffer.from([0x6b, 0xff, 0x2e, 0x68]), // k\xff.h
    Buffer.from(' two\\\\\\ words.h\n'),
  ]);
  const deps = parseDepfile(text, '/src');
  assert.deepEqual(deps.map((d) => d.toString('latin1')).sort(), [
    '/src/a$b.h',
    '/src/back\\\\slash.h',
    '/src/k\xff.h',
    '/src/program.bpf.c',
    '/src/two\\ words.h',
    '/src/with space.h',
    '/usr/include/x#y.h',
  ].sort());
});

test('the header names a file looks up: includes, __has_include, not comments or feature tests; a macro name is said', () => {
  const text = [
    '#include "a.h"', '  #  include_next <b/c.h> // "not.h"', '#import "d.h"', '/* #include "commented.h"', '*/',
    '#if defined(__has_include) && __has_include ( <e.h> ) && __has_include_next("f.h")', '#endif',
    'char *s = "#include \\"str.h\\" //";', '#error don\'t', '#include \\', '"continued.h"', '',
  ].join('\n');
  assert.deepEqual(scanNames(text), { quoted: ['a.h', 'd.h', 'continued.h', 'f.h'], angled: ['b/c.h', 'e.h'] });
  assert.equal(scanNames('#define H "x.h"\n#include H\n').computed, '#include H');
  assert.equal(scanNames('#if __has_include(H)\n#endif\n').computed, '__has_include(H)');
});

test('the scanner reads directives as clang does: digraphs, trigraphs, comments over lines inside a directive, a backslash before spaces', () => {
  const text = [
    '%:include "digraph.h"', ' %: include_next <digraph_next.h>', '??=include "trigraph.h"',
    '#/* a comment', ' over two lines */include "comment.h"', '# /**/ include /* x */ <comment2.h>',
    '#\\  ', 'include "spaced_backslash.h"', '#\finclude "formfeed.h"', '',
  ].join('\n');
  assert.deepEqual(scanNames(text).quoted.sort(), ['comment.h', 'digraph.h', 'formfeed.h', 'spaced_backslash.h', 'trigraph.h']);
  assert.deepEqual(scanNames(text).angled.sort(), ['comment2.h', 'digraph_next.h']);
});

test('a dependency that cannot be read is a miss, never a hit', async () => {
  const dir = scratch('gadget-cache-');
  const header = path.join(dir, 'h.h');
  writeFileSync(header, '#define A 1\n');
  const deps = await hashFiles([header, path.join(dir, 'gone.h')]);
  assert.equal(await depsUnchanged({ deps, same: [] }), false, 'a dependency that was missing at build time never matches');
  const readable = await hashFiles([header]);
  assert.equal(await depsUnchanged({ deps: readable, same: [] }), true);
  assert.equal(await depsUnchanged({ deps: readable } as never), false, 'an entry that does not say which deps are one file is a miss');
  rmSync(header);
  assert.equal(await depsUnchanged({ deps: readable, same: [] }), false, 'a dependency that is gone now is a miss');
});

test('headers whose names hold $, spaces or non-UTF-8 bytes: editing them rebuilds', async (t) => {
  const dir = scratch('gadget-cache-');
  const ctx = await context(t, dir);
  const g = path.join(dir, 'g');
  mkdirSync(g);
  const names = [Buffer.from('a$b.h'), Buffer.from('with space.h'), Buffer.from([0x6b, 0xff, 0x2e, 0x68])];
  names.forEach((n, i) => writeFileSync(Buffer.concat([Buffer.from(g + '/'), n]), `#define V${i} 1\n`));
  writeFileSync(
    path.join(g, 'program.bpf.c'),
    Buffer.concat([...names.map((n) => Buffer.concat([Buffer.from('#include "'), n, Buffer.from('"\n')])), Buffer.from('int value(void) { return V0 + V1 + V2; }\n')]),
  );
  const spec: GadgetSpec = { dir: g, ref: 'test/dollar:1' };
  for (const [i, name] of names.entries()) {
    await t.test(name.toString('latin1'), () => changeRebuilds(ctx, spec, () => writeFileSync(Buffer.concat([Buffer.from(g + '/'), name]), `#define V${i} ${i + 10}\n`)));
  }
});

test('every input of the build-cache key rebuilds when it changes', async (t) => {
  const dir = scratch('gadget-cache-');
  const ctx = await context(t, dir);
  const g = path.join(dir, 'g');
  mkdirSync(g);
  copyFileSync(path.join(EXAMPLE, 'program.bpf.c'), path.join(g, 'program.bpf.c'));
  writeFileSync(path.join(g, 'gadget.yaml'), 'name: cache\ndescription: one\n');
  const spec: GadgetSpec = { dir: g, ref: 'test/cache:1' };

  await t.test('cflags', async () => {
    const source = readFileSync(path.join(EXAMPLE, 'program.bpf.c'), 'utf8');
    writeFileSync(path.join(g, 'program.bpf.c'), `${source}\n#ifdef EXTRA_FLAG\nint extra_flag(void) { return 7; }\n#endif\n`);
    await changeRebuilds(ctx, spec, () => undefined, { after2: { ...spec, cflags: ['-DEXTRA_FLAG'] } });
  });
  await t.test('headers', async () => {
    writeFileSync(path.join(g, 'extra.h'), '#define EXTRA 1\n');
    const source = readFileSync(path.join(EXAMPLE, 'program.bpf.c'), 'utf8');
    writeFileSync(path.join(g, 'program.bpf.c'), `#include "extra.h"\n${source}\nint extra_value(void) { return EXTRA; }\n`);
    await changeRebuilds(ctx, spec, () => writeFileSync(path.join(g, 'extra.h'), '#define EXTRA 2\n'));
  });
  await t.test('metadata', () => changeRebuilds(ctx, spec, () => writeFileSync(path.join(g, 'gadget.yaml'), 'name: cache\ndescription: two\n')));
  await t.test('builder version', () => changeRebuilds(ctx, spec, () => undefined, { before: { igVersion: 'v0.45.0' }, after: { igVersion: 'v0.46.0' } }));

  await t.test('wasm', async () => {
    const w = path.join(dir, 'w');
    mkdirSync(w);
    const wasm = readFileSync(path.join(REPO, 'examples', 'hello_wasm', 'program.wasm'));
    writeFileSync(path.join(w, 'program.wasm'), wasm);
    writeFileSync(path.join(w, 'build.yaml'), 'wasm: program.wasm\n');
    // A custom section (id 0, name "x") appended: still a valid module, other bytes.
    await changeRebuilds(ctx, { dir: w, ref: 'test/wasm:1' }, () => writeFileSync(path.join(w, 'program.wasm'), Buffer.concat([wasm, Buffer.from([0, 2, 1, 0x78])])));
  });

  await t.test('objects', async () => {
    const o = path.join(dir, 'o');
    mkdirSync(o);
    const prebuilt = path.join(EXAMPLE, 'prebuilt');
    copyFileSync(path.join(prebuilt, 'amd64.o'), path.join(o, 'amd64.o'));
    writeFileSync(path.join(o, 'build.yaml'), 'objects: {amd64: amd64.o}\n');
    // Another valid eBPF object in its place (the arm64 build of the same program).
    await changeRebuilds(ctx, { dir: o, ref: 'test/objects:1' }, () => copyFileSync(path.join(prebuilt, 'arm64.o'), path.join(o, 'amd64.o')));
  });

  await t.test('btfhub', async () => {
    assert.ok(existsSync(VMLINUX), `${VMLINUX} is needed for real kernel BTF (a kernel built with CONFIG_DEBUG_INFO_BTF)`);
    const hub = path.join(dir, 'hub', 'ubuntu', '22.04', 'x86_64');
    mkdirSync(hub, { recursive: true });
    copyFileSync(VMLINUX, path.join(hub, '5.15.0-1-generic.btf'));
    const btfSpec: GadgetSpec = { ...spec, btfhub: path.join(dir, 'hub') };
    await changeRebuilds(ctx, btfSpec, () => copyFileSync(VMLINUX, path.join(hub, '5.15.0-2-generic.btf')));
  });
});

test('the cache never hands a gadget an image of other inputs: a copy of its folder, a header that now shadows, clang\'s environment', async (t) => {
  const dir = scratch('gadget-cache-');
  const ctx = await context(t, dir);
  const program = '#include "common.h"\nint value(void) { return VALUE; }\n';
  const gadget = (name: string, value: number): string => {
    const g = path.join(dir, name);
    mkdirSync(g);
    writeFileSync(path.join(g, 'program.bpf.c'), program);
    writeFileSync(path.join(g, 'common.h'), `#define VALUE ${value}\n`);
    return g;
  };

  await t.test('two copies of one gadget, whose headers differ, in one store', async () => {
    const a = await built(ctx, { dir: gadget('a', 1), ref: 'test/copy-a:1' });
    const b = await built(ctx, { dir: gadget('b', 2), ref: 'test/copy-b:1' });
    assert.equal(b.cached, false, "the copy is built, not given the first folder's image");
    assert.notEqual(b.digest, a.digest);
    assert.equal((await built(ctx, { dir: path.join(dir, 'b'), ref: 'test/copy-b:1' })).cached, true, 'and then reused by itself');
  });

  await t.test('a new header in a folder searched before the one clang read', async () => {
    const g = path.join(dir, 'shadowed');
    const root = path.join(dir, 'root');
    mkdirSync(g);
    mkdirSync(root);
    writeFileSync(path.join(g, 'program.bpf.c'), program);
    writeFileSync(path.join(root, 'common.h'), '#define VALUE 1\n');
    await changeRebuilds(ctx, { dir: g, ref: 'test/shadow:1' }, () => writeFileSync(path.join(g, 'common.h'), '#define VALUE 2\n'), { before: { include: [root] } });
  });

  await t.test('a new header in the gadget folder in front of a system header and a cflags -I header', async () => {
    const g = path.join(dir, 'system');
    const extra = path.join(dir, 'extra');
    mkdirSync(g);
    mkdirSync(extra);
    writeFileSync(path.join(extra, 'from_cflags.h'), '#define FROM_CFLAGS 1\n');
    writeFileSync(path.join(g, 'program.bpf.c'), '#include <linux/types.h>\n#include <from_cflags.h>\n#ifndef SHADOWED\n#define SHADOWED 1\n#endif\nint value(void) { return SHADOWED + FROM_CFLAGS; }\n');
    const spec: GadgetSpec = { dir: g, ref: 'test/system:1', cflags: [`-I${extra}`] };
    await changeRebuilds(ctx, spec, () => {
      mkdirSync(path.join(g, 'linux'));
      writeFileSync(path.join(g, 'linux', 'types.h'), '#define SHADOWED 2\n');
    });
    await changeRebuilds(ctx, spec, () => writeFileSync(path.join(g, 'from_cflags.h'), '#define FROM_CFLAGS 5\n'));
  });

  await t.test('headers that appear in folders that did not exist at build time, or inside the gadget folder', async () => {
    // An include root's per-arch folder made later, and a cflags -I folder inside the gadget's.
    const g = path.join(dir, 'later');
    const root = path.join(dir, 'root-later');
    const inner = path.join(g, 'include');
    mkdirSync(inner, { recursive: true });
    mkdirSync(root);
    writeFileSync(path.join(g, 'program.bpf.c'), '#include <late.h>\n#include <inner.h>\nint value(void) { return LATE + INNER; }\n');
    writeFileSync(path.join(dir, 'late.h'), '#define LATE 1\n');
    writeFileSync(path.join(inner, 'inner.h'), '#define INNER 1\n');
    // -Werror with a flag clang calls unused unless it compiles: the search probe must not fail on it.
    const spec: GadgetSpec = { dir: g, ref: 'test/later:1', cflags: ['-Iinclude', `-I${dir}`, '-Werror', '-fno-eliminate-unused-debug-types'] };
    await changeRebuilds(ctx, spec, () => {
      for (const arch of ['amd64', 'arm64']) {
        mkdirSync(path.join(root, 'gadget', arch), { recursive: true });
        writeFileSync(path.join(root, 'gadget', arch, 'late.h'), '#define LATE 7\n');
      }
    }, { before: { include: [root] } });
    await changeRebuilds(ctx, spec, () => writeFileSync(path.join(g, 'inner.h'), '#define INNER 9\n'), { before: { include: [root] } });
  });

  await t.test('a new header beside a header that includes it by a quoted name (clang looks there first)', async () => {
    // program.bpf.c includes "sub/a.h", which includes "b.h": read from the gadget folder until
    // sub/b.h exists, since a quoted name is looked up in the including file's folder first.
    const g = path.join(dir, 'nested');
    mkdirSync(path.join(g, 'sub'), { recursive: true });
    writeFileSync(path.join(g, 'program.bpf.c'), '#include "sub/a.h"\nint value(void) { return VALUE; }\n');
    writeFileSync(path.join(g, 'sub', 'a.h'), '#include <linux/types.h>\n#include "b.h"\n');
    writeFileSync(path.join(g, 'b.h'), '#define VALUE 1\n');
    await changeRebuilds(ctx, { dir: g, ref: 'test/nested:1' }, () => writeFileSync(path.join(g, 'sub', 'b.h'), '#define VALUE 2\n'));
  });

  await t.test('a header that __has_include or __has_include_next did not find, made later', async () => {
    const g = path.join(dir, 'probed');
    mkdirSync(g);
    writeFileSync(path.join(g, 'program.bpf.c'), [
      '#if __has_include("local_config.h")', '#include "local_config.h"', '#else', '#define LOCAL 1', '#endif',
      '/* __has_include as a feature test looks nothing up: */', '#if defined(__has_include)', '#include <next.h>', '#endif',
      'int value(void) { return LOCAL + NEXT; }', '',
    ].join('\n'));
    // The first include root's next.h probes the folders after its own, as clang's limits.h does.
    const [first, second] = [path.join(dir, 'root-first'), path.join(dir, 'root-second')];
    mkdirSync(first);
    mkdirSync(second);
    writeFileSync(path.join(first, 'next.h'), ['#if __has_include_next(<next.h>)', '#include_next <next.h>', '#else', '#define NEXT 1', '#endif', ''].join('\n'));
    const spec: GadgetSpec = { dir: g, ref: 'test/probed:1' };
    const include = { include: [first, second] };
    await changeRebuilds(ctx, spec, () => writeFileSync(path.join(g, 'local_config.h'), '#define LOCAL 2\n'), { before: include });
    await changeRebuilds(ctx, spec, () => writeFileSync(path.join(second, 'next.h'), '#define NEXT 3\n'), { before: include });
  });

  // A header in the gadget folder shadows the include root's: clang must have been seen to look there.
  for (const [name, line, cflags] of [
    ['digraph', '%:include "val.h"', undefined],
    ['comment over lines', '#/* a\n */include "val.h"', undefined],
    ['trigraph under -std=c11', '??=include "val.h"', '-std=c11'],
    ['backslash, spaces, newline', '#\\  \ninclude "val.h"', undefined],
  ] as const) {
    await t.test(`an include clang sees and a line-by-line scanner does not: ${name}`, async () => {
      const g = path.join(dir, `odd-${name.replace(/\W+/g, '-')}`);
      const root = path.join(g + '-root');
      mkdirSync(g);
      mkdirSync(root);
      writeFileSync(path.join(g, 'program.bpf.c'), `${line}\nint value(void) { return VALUE; }\n`);
      writeFileSync(path.join(root, 'val.h'), '#define VALUE 1\n');
      const spec: GadgetSpec = { dir: g, ref: 'test/odd:1', ...(cflags ? { cflags: [cflags] } : {}) };
      await changeRebuilds(ctx, spec, () => writeFileSync(path.join(g, 'val.h'), '#define VALUE 2\n'), { before: { include: [root] } });
    });
  }

  await t.test('#pragma once and a linked folder that becomes a copy (or back): one file or two is part of the key', async () => {
    const g = path.join(dir, 'pragma-once');
    mkdirSync(path.join(g, 'a'), { recursive: true });
    // b/x.h is a second path to a/x.h while b links to a: #pragma once skips it, VALUE stays 1.
    // As a copy it is another file: read again, VALUE 2. Same paths, same bytes either way.
    writeFileSync(path.join(g, 'program.bpf.c'), '#define VALUE 1\n#include "a/x.h"\n#include "b/x.h"\nint value(void) { return VALUE; }\n');
    writeFileSync(path.join(g, 'a', 'x.h'), '#pragma once\n#ifndef FIRST\n#define FIRST\n#else\n#undef VALUE\n#define VALUE 2\n#endif\n');
    symlinkSync('a', path.join(g, 'b'));
    const spec: GadgetSpec = { dir: g, ref: 'test/once:1' };
    await changeRebuilds(ctx, spec, () => {
      rmSync(path.join(g, 'b'));
      cpSync(path.join(g, 'a'), path.join(g, 'b'), { recursive: true });
    });
    await changeRebuilds(ctx, spec, () => {
      rmSync(path.join(g, 'b'), { recursive: true });
      symlinkSync('a', path.join(g, 'b'));
    });
    // A hard link is one file too: the same image as the linked folder's (clang sees one file), then a copy differs.
    const linked = await built(ctx, spec);
    rmSync(path.join(g, 'b'));
    mkdirSync(path.join(g, 'b'));
    linkSync(path.join(g, 'a', 'x.h'), path.join(g, 'b', 'x.h'));
    assert.equal((await built(ctx, spec, { noCache: true })).digest, linked.digest);
    await changeRebuilds(ctx, spec, () => {
      rmSync(path.join(g, 'b', 'x.h'));
      copyFileSync(path.join(g, 'a', 'x.h'), path.join(g, 'b', 'x.h'));
    });
  });

  await t.test('an include whose name is a macro: the image is not remembered (where clang looked is unknown)', async () => {
    const g = path.join(dir, 'computed');
    mkdirSync(g);
    writeFileSync(path.join(g, 'program.bpf.c'), '#define HEADER "common.h"\n#include HEADER\nint value(void) { return VALUE; }\n');
    writeFileSync(path.join(g, 'common.h'), '#define VALUE 1\n');
    const spec: GadgetSpec = { dir: g, ref: 'test/computed:1' };
    assert.equal((await built(ctx, spec)).cached, false);
    assert.equal((await built(ctx, spec)).cached, false, 'built again, never a hit');
  });

  await t.test('CPATH', async () => {
    const g = path.join(dir, 'cpath');
    mkdirSync(g);
    writeFileSync(path.join(g, 'program.bpf.c'), '#include "from_cpath.h"\nint value(void) { return VALUE; }\n');
    for (const [i, h] of ['h1', 'h2'].entries()) {
      mkdirSync(path.join(dir, h));
      writeFileSync(path.join(dir, h, 'from_cpath.h'), `#define VALUE ${i + 1}\n`);
    }
    const old = process.env.CPATH;
    process.env.CPATH = path.join(dir, 'h1');
    try {
      await changeRebuilds(ctx, { dir: g, ref: 'test/cpath:1' }, () => void (process.env.CPATH = path.join(dir, 'h2')));
    } finally {
      if (old === undefined) delete process.env.CPATH;
      else process.env.CPATH = old;
    }
  });
});

test('a header edited while clang compiles: the image is not remembered, so the next build compiles the new header', async () => {
  // A stand-in clang that runs the real one and then edits the header: a fault injected as an
  // editor would cause it, at the moment no real clang can be made to wait for.
  const dir = scratch('gadget-cache-race-');
  const g = path.join(dir, 'g');
  mkdirSync(g);
  writeFileSync(path.join(g, 'program.bpf.c'), '#include "common.h"\nint value(void) { return VALUE; }\n');
  writeFileSync(path.join(g, 'common.h'), '#define VALUE 1\n');
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  const real = spawnSync('sh', ['-c', 'command -v clang'], { encoding: 'utf8' }).stdout.trim();
  assert.ok(real, 'clang is installed');
  writeFileSync(path.join(bin, 'clang'), `#!/bin/sh\n"${real}" "$@"\nrc=$?\ncase " $* " in *" -c "*) echo '#define VALUE 2' > "${path.join(g, 'common.h')}";; esac\nexit $rc\n`, { mode: 0o755 });
  const env = { SOURCE_DATE_EPOCH: '1700000000' };
  const raced = await gadget(['--store', path.join(dir, 'store'), '--json', 'build', g, '-t', 'test/race:1'], { env: { ...env, PATH: `${bin}:${process.env.PATH}` } });
  assert.equal(raced.code, 0, raced.stderr);
  const next = await gadget(['--store', path.join(dir, 'store'), '--json', 'build', g, '-t', 'test/race:1'], { env });
  assert.equal(next.code, 0, next.stderr);
  assert.equal(JSON.parse(next.stdout).cached, false, 'the raced image was not remembered');
  const fresh = await gadget(['--store', path.join(dir, 'fresh'), '--json', 'build', g, '-t', 'test/race:1'], { env });
  assert.equal(JSON.parse(next.stdout).descriptor.digest, JSON.parse(fresh.stdout).descriptor.digest, 'the next build is the one of the header as it is');
});

test('a header that appears where clang looks while clang compiles: the image is not remembered', async () => {
  // As above, a stand-in clang runs the real one, then creates the header the source probed for.
  const dir = scratch('gadget-cache-race-');
  const g = path.join(dir, 'g');
  mkdirSync(g);
  writeFileSync(path.join(g, 'program.bpf.c'), '#if __has_include("late.h")\n#include "late.h"\n#else\n#define VALUE 1\n#endif\nint value(void) { return VALUE; }\n');
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  const real = spawnSync('sh', ['-c', 'command -v clang'], { encoding: 'utf8' }).stdout.trim();
  writeFileSync(path.join(bin, 'clang'), `#!/bin/sh\n"${real}" "$@"\nrc=$?\ncase " $* " in *" -c "*) echo '#define VALUE 2' > "${path.join(g, 'late.h')}";; esac\nexit $rc\n`, { mode: 0o755 });
  const store = path.join(dir, 'store');
  const raced = await gadget(['--store', store, '--json', 'build', g, '-t', 'test/late:1'], { env: { SOURCE_DATE_EPOCH: '1700000000', PATH: `${bin}:${process.env.PATH}` } });
  assert.equal(raced.code, 0, raced.stderr);
  const next = await gadget(['--store', store, '--json', 'build', g, '-t', 'test/late:1'], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
  assert.equal(JSON.parse(next.stdout).cached, false, 'the raced image was not remembered');
});
