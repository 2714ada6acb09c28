// `gadget build` under hostile input, through the real CLI, clang and a real store: every
// case ends in one sentence with the right exit code, no stack trace, the store unchanged and
// fsck-clean, and nothing left in the (private, per test) temp folder. Unreadable files are
// tried as the user nobody (setpriv), since root reads everything.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { CLI } from './helpers/cli.js';
import { REPO, scratch } from './helpers/paths.js';

const PREBUILT = join(REPO, 'examples', 'trace_open', 'prebuilt');
const SOURCE = join(REPO, 'examples', 'trace_open', 'program.bpf.c');
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];

interface Project {
  dir: string;
  tmp: string;
  store: string;
}

/** A world-readable project folder with a private TMPDIR (writable by nobody too). */
function project(): Project {
  const dir = scratch('gadget-hostile-');
  chmodSync(dir, 0o755);
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp, { mode: 0o1777 });
  chmodSync(tmp, 0o1777);
  return { dir, tmp, store: join(dir, 'store') };
}

/** A gadget folder `name` in the project with these files (content, or a file to copy). */
function gadgetDir(p: Project, name: string, files: Record<string, string | { copy: string }>): string {
  const g = join(p.dir, name);
  mkdirSync(g, { recursive: true });
  for (const [file, content] of Object.entries(files)) {
    if (typeof content === 'string') writeFileSync(join(g, file), content);
    else copyFileSync(content.copy, join(g, file));
  }
  return g;
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `gadget --store STORE ARGS` in the project, as root or as nobody. */
function cli(p: Project, args: string[], opts: { nobody?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  const argv = [process.execPath, CLI, '--store', p.store, ...args];
  const [file, ...rest] = opts.nobody ? ['setpriv', ...NOBODY, ...argv] : argv;
  return new Promise((resolve, reject) => {
    const child = spawn(file!, rest, { cwd: p.dir, env: { ...process.env, GADGET_STORE: undefined, TMPDIR: p.tmp, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function assertOneSentence(r: Result, code: number, message: RegExp): void {
  assert.equal(r.code, code, r.stderr);
  assert.match(r.stderr, message);
  assert.equal(r.stderr.match(/^error: /gm)?.length, 1, `one error: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at |unexpected failure/, 'no stack trace');
  assert.doesNotMatch(r.stderr, /Warning:|--trace-warnings/, "no library's warning besides the error");
}

/** What the build left in the private temp folder. */
function leftInTmp(p: Project): string[] {
  return readdirSync(p.tmp);
}

async function assertStoreClean(p: Project, tags: number): Promise<void> {
  if (!existsSync(p.store)) return;
  const fsck = await cli(p, ['fsck']);
  assert.equal(fsck.code, 0, `fsck: ${fsck.stdout}${fsck.stderr}`);
  const list = await cli(p, ['list', '--json']);
  assert.equal((JSON.parse(list.stdout) as unknown[]).length, tags, 'tags in the store');
}

/** The prebuilt example as a gadget folder (no clang needed, fast). */
function prebuiltGadget(p: Project, name = 'g'): string {
  return gadgetDir(p, name, {
    'amd64.o': { copy: join(PREBUILT, 'amd64.o') },
    'arm64.o': { copy: join(PREBUILT, 'arm64.o') },
    'gadget.yaml': 'name: g\ndescription: d\n',
    'build.yaml': 'metadata: gadget.yaml\nobjects:\n  amd64: amd64.o\n  arm64: arm64.o\n',
  });
}

test('a digest is not a tag; several -t tag every one; ref.name and bad ports are refused', async () => {
  const p = project();
  prebuiltGadget(p);
  const digest = await cli(p, ['build', 'g', '-t', `test/x@sha256:${'0'.repeat(64)}`]);
  assertOneSentence(digest, 2, /names a digest; a build can only be tagged/);
  assert.equal(existsSync(join(p.store, 'blobs')) && readdirSync(join(p.store, 'blobs', 'sha256')).length > 0, false, 'nothing was built');
  assertOneSentence(await cli(p, ['build', 'g', '-t', 'localhost:99999/x:1']), 2, /99999 is not a port/);
  assertOneSentence(await cli(p, ['build', 'g', '-t', 'test/x:1', '--annotation', 'org.opencontainers.image.ref.name=other']), 2, /org\.opencontainers\.image\.ref\.name .*cannot be set/);
  assertOneSentence(await cli(p, ['build', 'g', '-t', 'test/x:1', '-t', 'test/x@sha256:' + '1'.repeat(64)]), 2, /names a digest/);

  const many = await cli(p, ['build', 'g', '-t', 'test/x:1', '-t', 'test/x:2', '-t', 'localhost:5000/x:3', '--json']);
  assert.equal(many.code, 0, many.stderr);
  const list = JSON.parse((await cli(p, ['list', '--json'])).stdout) as Array<{ ref: string; digest: string }>;
  assert.deepEqual(list.map((i) => i.ref).sort(), ['ghcr.io/test/x:1', 'ghcr.io/test/x:2', 'localhost:5000/x:3']);
  assert.equal(new Set(list.map((i) => i.digest)).size, 1, 'one image under three tags');
  await assertStoreClean(p, 3);
  assert.deepEqual(leftInTmp(p), []);
});

test('unreadable inputs (as nobody) are one sentence each, never "nothing to build" or a stack trace', async () => {
  const p = project();
  // The store itself is writable by nobody: only the inputs are locked.
  mkdirSync(p.store, { recursive: true }); // fsck makes no store where there is none
  assert.equal((await cli(p, ['fsck'])).code, 0);
  spawnSync('chmod', ['-R', 'a+rwX', p.store]);
  const cases: Array<[string, Record<string, string | { copy: string }>, string, RegExp]> = [
    ['src', { 'program.bpf.c': { copy: SOURCE } }, 'program.bpf.c', /cannot read src\/program\.bpf\.c \(ebpfsource\): permission denied/],
    ['meta', { 'gadget.yaml': 'name: x\n' }, 'gadget.yaml', /cannot read meta\/gadget\.yaml \(metadata\): permission denied/],
    ['bfile', { 'build.yaml': 'metadata: gadget.yaml\n', 'gadget.yaml': 'name: x\n' }, 'build.yaml', /cannot read \S*bfile\/build\.yaml \(build file\): permission denied/],
    ['obj', { 'a.o': { copy: join(PREBUILT, 'amd64.o') }, 'build.yaml': 'objects: {amd64: a.o}\n' }, 'a.o', /cannot read obj\/a\.o \(objects\.amd64\): permission denied/],
    ['wasm', { 'm.wasm': { copy: join(REPO, 'examples', 'hello_wasm', 'program.wasm') }, 'build.yaml': 'wasm: m.wasm\n' }, 'm.wasm', /cannot read wasm\/m\.wasm \(wasm\): permission denied/],
  ];
  for (const [name, files, locked, message] of cases) {
    const g = gadgetDir(p, name, files);
    chmodSync(join(g, locked), 0o000);
    assertOneSentence(await cli(p, ['build', name, '-t', `test/${name}:1`], { nobody: true }), 2, message);
  }
  // A folder nobody may read is a permission error, not an empty folder.
  const closed = gadgetDir(p, 'closed', { 'gadget.yaml': 'name: x\n' });
  chmodSync(closed, 0o000);
  assertOneSentence(await cli(p, ['build', 'closed', '-t', 'test/closed:1'], { nobody: true }), 2, /cannot read \S*closed \(the gadget folder\): permission denied/);
  assert.deepEqual(leftInTmp(p), []);
  assert.equal(existsSync(p.store) && existsSync(join(p.store, 'index.json')) ? JSON.parse(readFileSync(join(p.store, 'index.json'), 'utf8')).manifests.length : 0, 0);
});

test('a read-only store is one sentence and stays unchanged', async () => {
  const p = project();
  prebuiltGadget(p);
  const first = await cli(p, ['build', 'g', '-t', 'test/x:1']);
  assert.equal(first.code, 0, first.stderr);
  writeFileSync(join(p.dir, 'g', 'gadget.yaml'), 'name: changed\n');
  const r = await cli(p, ['build', 'g', '-t', 'test/x:2'], { nobody: true });
  assertOneSentence(r, 2, /cannot .*: permission denied/);
  await assertStoreClean(p, 1);
  // The store keeps a private index for readers that cannot write it: that one is expected.
  assert.deepEqual(leftInTmp(p).filter((f) => f !== 'gadget-oci-index'), []);
});

test('inputs over their cap are refused before they are read (a sparse 3 GiB object, a 1 MB build.yaml)', async () => {
  const p = project();
  const g = prebuiltGadget(p);
  truncateSync(join(g, 'amd64.o'), 3 * 1024 ** 3);
  assertOneSentence(await cli(p, ['build', 'g', '-t', 'test/x:1']), 2, /g\/amd64\.o \(objects\.amd64\) is 3221225472 bytes, more than the 64 MiB allowed/);
  const meta = gadgetDir(p, 'meta', { 'gadget.yaml': '' });
  truncateSync(join(meta, 'gadget.yaml'), 3 * 1024 ** 3);
  assertOneSentence(await cli(p, ['build', 'meta', '-t', 'test/x:1']), 2, /meta\/gadget\.yaml \(metadata\) is 3221225472 bytes, more than the 1 MiB allowed/);
  gadgetDir(p, 'keys', { 'gadget.yaml': 'name: x\n', 'build.yaml': Array.from({ length: 60_000 }, (_, i) => `k${i}: v\n`).join('') });
  assertOneSentence(await cli(p, ['build', 'keys', '-t', 'test/x:1']), 2, /keys\/build\.yaml \(build file\) is \d+ bytes, more than the 64 KiB allowed/);
  assert.deepEqual(leftInTmp(p), []);
});

test('btfhub: a dangling symlink, a non-UTF-8 name and a file named ".btf" are refused', async () => {
  const p = project();
  prebuiltGadget(p);
  const hub = join(p.dir, 'hub');
  const arch = join(hub, 'ubuntu', '22.04', 'x86_64');
  mkdirSync(arch, { recursive: true });
  writeFileSync(join(p.dir, 'package.json'), '{"type":"module"}\n');
  writeFileSync(join(p.dir, 'gadget.config.ts'), `import { build } from ${JSON.stringify(join(REPO, 'index.ts'))};
export default { gadgets: [{ dir: 'g', ref: 'test/x:1', btfhub: 'hub' }], tasks: { default: [build()] } };\n`);
  const run = (): Promise<Result> => cli(p, ['run', 'default']);

  symlinkSync(join(p.dir, 'nowhere.btf'), join(arch, '5.15.0.btf'));
  assertOneSentence(await run(), 2, /hub\/ubuntu\/22\.04\/x86_64\/5\.15\.0\.btf is a symbolic link to nothing/);
  rmSync(join(arch, '5.15.0.btf'));

  writeFileSync(Buffer.from(join(arch, 'k\xff.btf'), 'latin1'), 'x');
  assertOneSentence(await run(), 2, /holds a file whose name is not UTF-8/);
  rmSync(Buffer.from(join(arch, 'k\xff.btf'), 'latin1'));

  writeFileSync(join(arch, '.btf'), 'x');
  assertOneSentence(await run(), 2, /\.btf has no kernel name/);
  await assertStoreClean(p, 0);
  assert.deepEqual(leftInTmp(p).filter((f) => !/^tsx-\d+$/.test(f)), [], 'nothing but tsx\'s transform cache');
});


test('an ELF with a huge section offset names the offset; a 1 MB -D flag is an "argument list too long" about cflags', async () => {
  const p = project();
  const g = prebuiltGadget(p);
  const bytes = readFileSync(join(g, 'amd64.o'));
  bytes.writeBigUInt64LE(0xffff_ffff_ffff_fff0n, 40); // e_shoff
  writeFileSync(join(g, 'amd64.o'), bytes);
  const elf = await cli(p, ['build', 'g', '-t', 'test/x:1']);
  assertOneSentence(elf, 2, /section header table \(offset 18446744073709551600\) lies outside the file/);
  assert.doesNotMatch(elf.stderr, /Infinity/);

  gadgetDir(p, 'big', { 'program.bpf.c': { copy: SOURCE } });
  writeFileSync(join(p.dir, 'package.json'), '{"type":"module"}\n');
  writeFileSync(join(p.dir, 'gadget.config.ts'), `import { build } from ${JSON.stringify(join(REPO, 'index.ts'))};
export default { gadgets: [{ dir: 'big', ref: 'test/big:1', cflags: ['-DBIG=' + 'a'.repeat(1_000_000)] }], tasks: { default: [build()] } };\n`);
  const big = await cli(p, ['run', 'default']);
  assertOneSentence(big, 2, /argument list too long.*cflags/);
  assert.doesNotMatch(big.stderr, /fix the errors above|E2BIG/);
  await assertStoreClean(p, 0);
  assert.deepEqual(leftInTmp(p).filter((f) => !/^tsx-\d+$/.test(f)), []);
});

test('a clang crash leaves nothing behind (no reproducers, no build folder); C syntax errors never hit ENOTEMPTY', async () => {
  const p = project();
  // clang 14's BPF backend crashes on this builtin flag (TOOLCHAIN.md).
  gadgetDir(p, 'crash', { 'program.bpf.c': 'struct s { int a; };\nint f(struct s *x) { return __builtin_preserve_type_info(*x, 2); }\n' });
  const crash = await cli(p, ['build', 'crash', '-t', 'test/crash:1']);
  // On clang 14 this is the older toolchain's fault (ig builds with clang 18): exit 2, saying so.
  assertOneSentence(crash, 2, /clang could not compile crash\/program\.bpf\.c for (amd64|arm64): clang's BPF backend failed/);
  assert.doesNotMatch(crash.stderr, /Stack dump|PLEASE submit/, 'clang\'s own backtrace is left out');
  assert.deepEqual(leftInTmp(p), [], 'no program-*.c / program-*.sh reproducers, no gadget-build-* folder');

  gadgetDir(p, 'syntax', { 'program.bpf.c': 'int x = ;\nint y(void) { return }\n' });
  for (let i = 0; i < 8; i++) {
    const r = await cli(p, ['build', 'syntax', '-t', 'test/syntax:1']);
    assertOneSentence(r, 1, /clang could not compile syntax\/program\.bpf\.c/);
    assert.doesNotMatch(r.stderr, /ENOTEMPTY/);
    assert.deepEqual(leftInTmp(p), [], `run ${i}: the build folder is removed`);
  }
  await assertStoreClean(p, 0);
});

test('SIGKILLed builds leave folders that the next build removes', { timeout: 300_000 }, async () => {
  const p = project();
  gadgetDir(p, 'g', { 'program.bpf.c': { copy: SOURCE } });
  let killed = 0;
  for (let i = 0; i < 12 && killed < 4; i++) {
    const child = spawn(process.execPath, [CLI, '--store', p.store, 'build', 'g', '-t', `test/k:${i}`, '--no-cache'], { cwd: p.dir, env: { ...process.env, TMPDIR: p.tmp }, stdio: 'ignore' });
    // Kill as soon as the build's folder exists: clang is running in it.
    while (child.exitCode === null && !readdirSync(p.tmp).some((f) => f.startsWith('gadget-build-'))) await new Promise((r) => setTimeout(r, 2));
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      killed++;
    }
    await new Promise((r) => child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('exit', r));
  }
  assert.ok(killed >= 1, 'at least one build was killed while its folder existed');
  assert.ok(readdirSync(p.tmp).some((f) => f.startsWith('gadget-build-')), 'the killed builds left their folders');
  const next = await cli(p, ['build', 'g', '-t', 'test/after:1']);
  assert.equal(next.code, 0, next.stderr);
  assert.deepEqual(leftInTmp(p), [], 'the next build removed the folders of the dead builds');
  const fsck = await cli(p, ['fsck', '--json']);
  const problems = (JSON.parse(fsck.stdout) as { problems: Array<{ kind: string }> }).problems;
  assert.deepEqual(problems.filter((x) => x.kind !== 'stray-temp'), [], 'only temporary files of the dead processes may be left in the store');
});

test('gadget.yaml: control characters and non-string annotation keys are refused with the key path', async () => {
  const p = project();
  gadgetDir(p, 'nul', { 'gadget.yaml': 'name: x\nannotations:\n  foo: "a\u0000b"\n' });
  assertOneSentence(await cli(p, ['build', 'nul', '-t', 'test/x:1']), 1, /nul\/gadget\.yaml:3: the control character U\+0000 is not allowed in YAML \(in annotations\.foo\)/);
  gadgetDir(p, 'esc', { 'gadget.yaml': 'name: x\u001b[31m\n' });
  assertOneSentence(await cli(p, ['build', 'esc', '-t', 'test/x:1']), 1, /esc\/gadget\.yaml:1: the control character U\+001B/);
  gadgetDir(p, 'keys', { 'gadget.yaml': 'name: x\nannotations:\n  [a, b]: one\n' });
  assertOneSentence(await cli(p, ['build', 'keys', '-t', 'test/x:1']), 1, /keys\/gadget\.yaml:3: annotations has a key that is a list, not a string/);
  await assertStoreClean(p, 0);
  assert.deepEqual(leftInTmp(p), []);
});

test('60 000 gadget.yaml keys parse in linear time (a generous budget a quadratic parser misses by far)', { timeout: 240_000 }, async () => {
  const p = project();
  const many = (prefix: string): string => Array.from({ length: 60_000 }, (_, i) => `${prefix}k${i}: v\n`).join('');
  gadgetDir(p, 'top', { 'gadget.yaml': 'name: x\n' + many('') });
  gadgetDir(p, 'ann', { 'gadget.yaml': 'name: x\nannotations:\n' + many('  ') });
  for (const name of ['top', 'ann']) {
    const started = Date.now();
    const r = await cli(p, ['-q', 'build', name, '-t', `test/${name}:1`]);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(r.code, 0, r.stderr.slice(0, 2000));
    // Measured here: ~5 s linear; the quadratic unknown-key warnings took minutes for 20 000 keys.
    assert.ok(seconds < 120, `${name}: ${seconds} s`);
    assert.ok(r.stderr.length < 10_000, 'the warnings are capped, not one per key');
  }
  await assertStoreClean(p, 2);
});

test('a build interrupted while clang runs exits 130 with "interrupted", also in --json', { timeout: 300_000 }, async () => {
  const p = project();
  gadgetDir(p, 'g', { 'program.bpf.c': { copy: SOURCE } });
  for (const json of [false, true]) {
    let result: Result | undefined;
    // Interrupt as soon as the build's folder exists (clang is running in it); a build that was
    // quicker than the poll is tried again.
    for (let i = 0; i < 10 && result === undefined; i++) {
      const child = spawn(process.execPath, [CLI, '--store', p.store, ...(json ? ['--json'] : []), 'build', 'g', '-t', `test/int:${i}`, '--no-cache'], { cwd: p.dir, env: { ...process.env, GADGET_STORE: undefined, TMPDIR: p.tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      while (child.exitCode === null && !readdirSync(p.tmp).some((f) => f.startsWith('gadget-build-'))) await new Promise((r) => setTimeout(r, 2));
      const sent = child.exitCode === null && child.kill('SIGINT');
      const code = await exited;
      if (sent) result = { code, stdout, stderr };
    }
    assert.ok(result, 'a build was interrupted while clang ran');
    assert.equal(result.code, 130, result.stderr);
    assert.match(result.stderr, /^error: interrupted\nhint: /m);
    assert.doesNotMatch(result.stderr, /cancelled/);
    if (json) assert.deepEqual([JSON.parse(result.stdout).error.message, JSON.parse(result.stdout).error.code], ['interrupted', 130]);
  }
});

test('build({ gadgets }) in a task: entries that are not { dir, ref } and one ref twice are usage errors, and a failed build makes no store', async () => {
  const p = project();
  gadgetDir(p, 'a', { 'amd64.o': { copy: join(PREBUILT, 'amd64.o') }, 'build.yaml': 'objects: {amd64: amd64.o}\n' });
  gadgetDir(p, 'b', { 'amd64.o': { copy: join(PREBUILT, 'arm64.o') }, 'build.yaml': 'objects: {amd64: amd64.o}\n' });
  const index = pathToFileURL(join(REPO, 'index.ts')).href;
  writeFileSync(join(p.dir, 'gadget.config.ts'), `import { defineConfig, build } from ${JSON.stringify(index)};
export default defineConfig({ tasks: {
  twice: [build({ gadgets: [{ dir: 'a', ref: 'x/same:v1' }, { dir: 'b', ref: 'ghcr.io/x/same:v1' }] })],
  nulls: [build({ gadgets: [null as never] })],
  missing: [build({ gadgets: [{ dir: 'does-not-exist', ref: 'x/a:v1' }] })],
} });
`);
  const twice = await cli(p, ['run', 'twice']);
  assertOneSentence(twice, 2, /build\(\{ gadgets \}\): gadgets\[0\] \(a\) and gadgets\[1\] \(b\) have the same ref ghcr\.io\/x\/same:v1/);
  assertOneSentence(await cli(p, ['run', 'nulls']), 2, /gadgets\[0\] is null, not \{ dir, ref \}/);
  assertOneSentence(await cli(p, ['run', 'missing']), 2, /does-not-exist does not exist/);
  assert.equal(existsSync(p.store), false, 'no store was made');
});

test('a task whose build fails for some gadgets: --json names every gadget, built or failed, beside the error', async () => {
  const p = project();
  gadgetDir(p, 'good', { 'amd64.o': { copy: join(PREBUILT, 'amd64.o') }, 'build.yaml': 'objects: {amd64: amd64.o}\n' });
  gadgetDir(p, 'bad1', { 'build.yaml': 'objects: {amd64: missing.o}\n' });
  gadgetDir(p, 'bad2', { 'gadget.yaml': 'name: [\n' });
  const index = pathToFileURL(join(REPO, 'index.ts')).href;
  writeFileSync(join(p.dir, 'gadget.config.ts'), `import { defineConfig, build } from ${JSON.stringify(index)};
export default defineConfig({ gadgets: [{ dir: 'good', ref: 'x/good:v1' }, { dir: 'bad1', ref: 'x/bad1:v1' }, { dir: 'bad2', ref: 'x/bad2:v1' }], tasks: { default: [build({ concurrency: 1 })] } });
`);
  const r = await cli(p, ['--json', 'run', 'default']);
  assert.ok(r.code === 1 || r.code === 2, r.stderr);
  const doc = JSON.parse(r.stdout) as { error: { message: string }; records: Array<{ type: string; ref?: string; gadget?: string; failed?: boolean; error?: string }> };
  assert.match(doc.error.message, /^2 of 3 gadgets failed to build/);
  assert.deepEqual(doc.records.filter((x) => !x.failed).map((x) => x.ref), ['ghcr.io/x/good:v1'], 'the image that was built');
  assert.deepEqual(doc.records.filter((x) => x.failed).map((x) => x.gadget).sort(), ['bad1', 'bad2'], 'and each gadget that failed');
  for (const failed of doc.records.filter((x) => x.failed)) assert.ok(failed.error && failed.error.length > 0);
});
