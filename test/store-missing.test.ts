// A store folder that does not exist (a mistyped --store, $GADGET_STORE or config `store`) is
// never created by a command that only reads the store or changes what it holds: it refuses
// with exit 2, one sentence naming the folder and where the choice came from, and leaves no
// folder behind. Commands that write new content (build, import, pull, a serve that takes
// pushes) still make the store, except in a dry run. An existing empty folder becomes an empty store for every
// command; a folder of other files is not a store, for any command. Real files, the real CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../store/store.js';
import { gadget, type CliResult } from './helpers/cli.js';
import { writeImage } from './helpers/images.js';
import { REPO, scratch } from './helpers/paths.js';
import { startServe } from './helpers/serve.js';

const IMAGE = 'example.com/missing/hello:v1';
const noStack = (r: CliResult, what: string): void => assert.doesNotMatch(r.stderr, /\n\s+at .*:\d+:\d+/, `${what}: no stack trace`);

/** Every command that reads the store or changes what it holds, and so needs one to exist. */
const READERS: string[][] = [
  ['list'],
  ['list', '*hello*', '--jsonl'],
  ['inspect', IMAGE],
  ['referrers', IMAGE],
  ['fsck'],
  ['fsck', '--repair'],
  ['fsck', '--reindex'],
  ['verify', '--all'],
  ['verify', IMAGE],
  ['export', IMAGE, '-o', 'OUT'],
  ['gc'],
  ['gc', '--dry-run'],
  ['rm', IMAGE],
  ['tag', IMAGE, 'example.com/missing/hello:v2'],
  ['annotate', IMAGE, '--set', 'a=b'],
  ['sign', IMAGE, '--key', 'cosign.key'],
  ['push', IMAGE, '127.0.0.1:9/x:v1'],
  ['sync', '--from', 'store:*', '--to', '127.0.0.1:9/mirror'],
  ['serve', '--port', '0', '--read-only'],
];

/** A store holding IMAGE (built from the hello_wasm example) and an export of it. */
async function storeWithImage(): Promise<{ store: string; tar: string }> {
  const dir = scratch('gadget-store-missing-');
  const store = join(dir, 'made', 'by', 'build');
  const built = await gadget(['--store', store, 'build', join(REPO, 'examples', 'hello_wasm'), '-t', IMAGE]);
  assert.equal(built.code, 0, `build makes a missing store: ${built.stderr}`);
  assert.ok(existsSync(join(store, 'index.json')) && existsSync(join(store, 'oci-layout')), 'build created the layout');
  const tar = join(dir, 'hello.tar');
  const exported = await gadget(['--store', store, 'export', IMAGE, '-o', tar]);
  assert.equal(exported.code, 0, exported.stderr);
  return { store, tar };
}

for (const args of READERS) {
  test(`gadget --store MISSING ${args.join(' ')}: exit 2 naming the folder and --store, nothing created`, async () => {
    const dir = scratch('gadget-store-missing-');
    const missing = join(dir, 'typo');
    const argv = args.map((a) => (a === 'OUT' ? join(dir, 'out.tar') : a));
    const r = await gadget(['--store', missing, ...argv], { cwd: dir });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr, `error: there is no store at ${missing} (from --store)\nhint: check --store (a store is made by the first build, pull, import or sync into it)\n`);
    assert.equal(r.stdout, '', 'no result is printed');
    assert.equal(existsSync(missing), false, 'the store folder was not created');
    assert.deepEqual(readdirSync(dir), [], 'nothing at all was written beside it (no tar, no folder)');
  });
}

test('--json: the error document, exit 2, and still no folder', async () => {
  const dir = scratch('gadget-store-missing-');
  const missing = join(dir, 'typo');
  for (const args of [['list'], ['verify', '--all'], ['fsck', '--repair'], ['inspect', IMAGE]]) {
    const r = await gadget(['--json', '--store', missing, ...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      error: { message: `there is no store at ${missing} (from --store)`, hint: 'check --store (a store is made by the first build, pull, import or sync into it)', code: 2 },
    }, `${args.join(' ')}: exactly one error document`);
    assert.equal(existsSync(missing), false, args.join(' '));
  }
});

test('a missing folder several levels deep is not created either, nor any of its parents', async () => {
  const dir = scratch('gadget-store-missing-');
  const r = await gadget(['--store', join(dir, 'a', 'b', 'c'), 'gc']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^error: there is no store at \S+\/a\/b\/c \(from --store\)\n/);
  assert.deepEqual(readdirSync(dir), [], 'not even the first missing parent');
});

test('$GADGET_STORE: the error says the folder came from it, and the hint to check it', async () => {
  const dir = scratch('gadget-store-missing-');
  const r = await gadget(['list'], { cwd: dir, env: { GADGET_STORE: 'mistyped' } });
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr, `error: there is no store at ${join(dir, 'mistyped')} (from $GADGET_STORE)\nhint: check $GADGET_STORE (a store is made by the first build, pull, import or sync into it)\n`);
  assert.deepEqual(readdirSync(dir), []);
});

test("the config's store: the error names gadget.config.ts, and the hint its `store`", async () => {
  const dir = scratch('gadget-store-missing-');
  const config = join(dir, 'gadget.config.ts');
  writeFileSync(config, `import { defineConfig } from '${join(REPO, 'index.ts')}';\nexport default defineConfig({ store: './nowhere' });\n`);
  const r = await gadget(['fsck'], { cwd: dir, env: { XDG_CACHE_HOME: join(dir, 'cache') } });
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr, `error: there is no store at ${join(dir, 'nowhere')} (from ${config})\nhint: check \`store\` in ${config} (a store is made by the first build, pull, import or sync into it)\n`);
  assert.equal(existsSync(join(dir, 'nowhere')), false);
});

test('-v names the missing store before the error, as it names any store in use', async () => {
  const dir = scratch('gadget-store-missing-');
  const r = await gadget(['-v', '--store', join(dir, 'typo'), 'list']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`store: ${join(dir, 'typo')} \\(from --store\\)\\n(.*\\n)*error: there is no store at `));
  assert.equal(existsSync(join(dir, 'typo')), false);
});

test('import makes a missing store (and its missing parents) and fills it', async () => {
  const { tar } = await storeWithImage();
  const dir = scratch('gadget-store-missing-');
  const store = join(dir, 'new', 'store');
  const r = await gadget(['--store', store, 'import', tar]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(join(store, 'index.json')), 'import created the store');
  const listed = await gadget(['--store', store, '--json', 'list']);
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual((JSON.parse(listed.stdout) as Array<{ ref: string }>).map((i) => i.ref), [IMAGE]);
});

test('an existing empty folder becomes an empty store for readers too', async () => {
  const dir = scratch('gadget-store-missing-');
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  const run = (...args: string[]): Promise<CliResult> => gadget(['--store', empty, ...args]);

  const list = await run('--json', 'list');
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout), [], 'no image');
  for (const args of [['fsck'], ['fsck', '--repair'], ['fsck', '--reindex'], ['gc'], ['gc', '--dry-run']]) {
    const r = await run(...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    noStack(r, args.join(' '));
  }
  const fsck = await run('--json', 'fsck');
  assert.deepEqual(JSON.parse(fsck.stdout), { store: empty, problems: [], notices: [] });
  const verify = await run('verify', '--all');
  assert.equal(verify.code, 1, 'verifying nothing never passes');
  assert.match(verify.stderr, /^error: no image to verify in store /);
  for (const args of [['inspect', IMAGE], ['rm', IMAGE], ['tag', IMAGE, 'example.com/missing/hello:v2'], ['export', IMAGE, '-o', join(dir, 'out.tar')], ['annotate', IMAGE, '--set', 'a=b']]) {
    const r = await run(...args);
    assert.equal(r.code, 1, `${args.join(' ')}: the image is not in the (empty) store: ${r.stderr}`);
    assert.ok(r.stderr.startsWith('error: ') && r.stderr.includes(IMAGE) && r.stderr.includes(`store ${empty}`), `${args.join(' ')} names the image and the store: ${r.stderr}`);
  }
  assert.deepEqual(readdirSync(empty).sort(), ['blobs', 'gadget-oci', 'index.json', 'oci-layout'], 'an empty layout, nothing else');
  assert.deepEqual(readdirSync(dir), ['empty'], 'no tar was written by the failed export');
});

test('a folder left by an interrupted creation (oci-layout, empty blobs/) is completed into an empty store by a reader', async () => {
  const dir = scratch('gadget-store-missing-');
  const half = join(dir, 'half');
  mkdirSync(join(half, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(half, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const r = await gadget(['--store', half, '--json', 'list']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), []);
  assert.deepEqual(readdirSync(half).sort(), ['blobs', 'gadget-oci', 'index.json', 'oci-layout'], 'the layout was completed');
});

test("a new file system's lost+found and hidden files do not make a folder a project: it is still a new store", async () => {
  const { tar } = await storeWithImage();
  const dir = scratch('gadget-store-missing-');
  const mount = join(dir, 'mount');
  mkdirSync(join(mount, 'lost+found'), { recursive: true });
  writeFileSync(join(mount, '.gitkeep'), '');
  const listed = await gadget(['--store', mount, '--json', 'list']);
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(JSON.parse(listed.stdout), []);
  const imported = await gadget(['--store', mount, 'import', tar]);
  assert.equal(imported.code, 0, imported.stderr);
  assert.ok(existsSync(join(mount, 'index.json')) && existsSync(join(mount, 'lost+found')) && existsSync(join(mount, '.gitkeep')), 'the layout beside them, they untouched');
});

test('an import or build that fails makes no store: a missing source, an empty layout, a bad gzip tar, a missing gadget folder, a module that fails after the cache lookup', async () => {
  const dir = scratch('gadget-store-missing-');
  const empty = join(dir, 'empty-layout');
  mkdirSync(empty);
  writeFileSync(join(empty, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(empty, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
  // A gzip tar is unpacked before it is read: not into the store while there is none.
  const gzipped = join(dir, 'not-a-layout.tgz');
  writeFileSync(join(dir, 'hello.txt'), 'hi\n');
  execFileSync('tar', ['czf', gzipped, '-C', dir, 'hello.txt']);
  // A wasm module is checked after the build cache was asked about the gadget.
  const badWasm = join(dir, 'bad-wasm');
  cpSync(join(REPO, 'examples', 'hello_wasm'), badWasm, { recursive: true });
  writeFileSync(join(badWasm, 'program.wasm'), 'not wasm');
  const store = join(dir, 'typo');
  for (const [args, code, message] of [
    [['import', join(dir, 'nofile.tar')], 2, /nofile\.tar does not exist/],
    [['import', empty], 1, /there is no image in/],
    [['import', gzipped], 1, /unexpected entry "hello\.txt"/],
    [['build', join(dir, 'nodir'), '-t', IMAGE], 2, /nodir does not exist/],
    [['build', badWasm, '-t', IMAGE], 1, /not a WebAssembly binary/],
  ] as Array<[string[], number, RegExp]>) {
    const r = await gadget(['--store', store, ...args]);
    assert.equal(r.code, code, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.ok(!existsSync(store), `${args.join(' ')} made no store`);
  }
});

test('an empty folder is a new store for writers: import fills it', async () => {
  const { tar } = await storeWithImage();
  const dir = scratch('gadget-store-missing-');
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  assert.equal((await gadget(['--store', empty, 'list'])).code, 0);
  const r = await gadget(['--store', empty, 'import', tar]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(join(empty, 'index.json')));
  const inspect = await gadget(['--store', empty, 'inspect', IMAGE]);
  assert.equal(inspect.code, 0, inspect.stderr);
});

test('a folder of other files is not a store: readers and writers refuse it (exit 2) and leave it as it was', async () => {
  const { tar } = await storeWithImage();
  const dir = scratch('gadget-store-missing-');
  const other = join(dir, 'project');
  mkdirSync(other);
  writeFileSync(join(other, 'notes.txt'), 'not a store');
  for (const args of [['list'], ['fsck'], ['gc'], ['verify', '--all'], ['import', tar], ['pull', '--dry-run', IMAGE], ['build', join(REPO, 'examples', 'hello_wasm'), '-t', IMAGE]]) {
    const r = await gadget(['--store', other, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^error: ${other} is not an OCI image layout: it has no index.json, and holds other files \\(notes\\.txt\\)\\nhint: \\S`));
    assert.deepEqual(readdirSync(other), ['notes.txt'], `${args.join(' ')} wrote nothing into it`);
  }
});

test('usage errors come before the missing store: a malformed reference is still exit 2 about the reference', async () => {
  const dir = scratch('gadget-store-missing-');
  const missing = join(dir, 'typo');
  for (const args of [['inspect', 'Not A Ref'], ['rm', 'Bad!'], ['export', 'Bad!', '-o', join(dir, 'x.tar')], ['verify', 'Bad!'], ['tag', 'Bad!', 'x:v1'], ['annotate', 'Bad!', '--set', 'a=b'], ['sign', 'Bad!', '--key', 'k'], ['list', 'a', 'b'], ['gc', 'extra']]) {
    const r = await gadget(['--store', missing, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /there is no store/, `${args.join(' ')}: the usage error is reported, not the store`);
    assert.match(r.stderr, /^error: [^\n]+\nhint: \S/);
  }
  assert.deepEqual(readdirSync(dir), []);
});

test('a serve that takes pushes makes a missing store; pull makes a missing one; --read-only serves an empty folder as an empty registry', async () => {
  const { store } = await storeWithImage();
  const dir = scratch('gadget-store-missing-');
  const served = join(dir, 'served', 'store');
  const serve = await startServe(served);
  try {
    assert.ok(existsSync(join(served, 'index.json')), 'serve made the store it will take pushes into');
    const pushed = await gadget(['--store', store, 'push', IMAGE, `${serve.host}/${IMAGE}`]);
    assert.equal(pushed.code, 0, pushed.stderr);
    const listed = await gadget(['--store', served, '--json', 'list']);
    assert.deepEqual((JSON.parse(listed.stdout) as Array<{ ref: string }>).map((i) => i.ref), [IMAGE], 'the pushed image is in the store at once');

    const pulledStore = join(dir, 'pulled', 'store');
    const pulled = await gadget(['--store', pulledStore, 'pull', `${serve.host}/${IMAGE}`]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.ok(existsSync(join(pulledStore, 'index.json')), 'pull created the missing store');

    // A dry run writes nothing: it makes no store, and plans as into an empty one.
    const dry = join(dir, 'dry');
    const repository = `${serve.host}/${IMAGE.slice(0, IMAGE.lastIndexOf(':'))}`;
    for (const args of [['pull', '--dry-run', `${serve.host}/${IMAGE}`], ['sync', '--dry-run', '--from', repository, '--to', 'store'], ['--json', 'sync', '--dry-run', '--from', `${serve.host}/example.com/`, '--to', 'store']]) {
      const r = await gadget(['--store', join(dry, 'store'), ...args]);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /missing\/hello:v1/, `${args.join(' ')} plans the image`);
      assert.ok(!existsSync(dry), `${args.join(' ')} made nothing`);
    }
    // The dry run reads the source as the run does: a tag that is not there is refused (exit 1).
    const absent = await gadget(['--store', join(dry, 'store'), 'pull', '--dry-run', `${serve.host}/example.com/missing/hello:nope`]);
    assert.equal(absent.code, 1, absent.stdout + absent.stderr);
    assert.match(absent.stdout, /^refused: .*missing\/hello:nope/m);
    assert.match(absent.stdout, /0 images planned, 1 refused/);
    // An unreachable registry stops the dry run as it stops the run: exit 2, never "planned".
    const unreachable = await gadget(['--store', join(dry, 'store'), 'pull', '--dry-run', '127.0.0.1:9/example.com/x:v1']);
    assert.equal(unreachable.code, 2, unreachable.stdout + unreachable.stderr);
    assert.doesNotMatch(unreachable.stdout, /planned/);
    assert.match(unreachable.stderr, /^error: cannot reach the registry 127\.0\.0\.1:9 /);
    assert.ok(!existsSync(dry), 'and made nothing');
  } finally {
    assert.equal(await serve.stop(), 0);
  }

  const empty = join(dir, 'empty');
  mkdirSync(empty);
  const readOnly = await startServe(empty, ['--read-only']);
  try {
    const catalog = (await (await fetch(`${readOnly.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.deepEqual(catalog.repositories, [], 'an empty registry');
    const page = await fetch(`${readOnly.url}/`);
    assert.equal(page.status, 200);
  } finally {
    assert.equal(await readOnly.stop(), 0);
  }
});

test('library: openStore with { create: false } refuses a missing folder and makes none; an empty one becomes a store', async () => {
  const dir = scratch('gadget-store-missing-');
  await assert.rejects(openStore(join(dir, 'nope'), { create: false }), (err: Error & { exitCode?: number }) => err.message === `there is no store at ${join(dir, 'nope')}` && err.exitCode === 2);
  assert.deepEqual(readdirSync(dir), []);
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  const store = await openStore(empty, { create: false });
  try {
    assert.deepEqual(store.list(), []);
    const image = await writeImage(store, 'first');
    await store.tag(image, IMAGE);
    assert.deepEqual(store.list().map((i) => i.ref), [IMAGE]);
  } finally {
    store.close();
  }
  const fsck = await gadget(['--store', empty, 'fsck']);
  assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
});
