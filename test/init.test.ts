// `gadget init` and the config's types, tried as a new author would: init a project, install
// this package into it from the working tree (npm links a folder dependency: no registry),
// type-check the config with tsc, build, verify and list; then configs with typos must fail
// to type-check (real tsc over real files).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { configFile, stringLiteral } from '../lib/init/templates.js';
import { gadget } from './helpers/cli.js';
import { REPO, scratch } from './helpers/paths.js';

const run = promisify(execFile);
const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
const project = join(scratch('gadget-init-'), 'my-gadgets');

test('gadget init writes a project that installs, type-checks, builds, verifies and lists', async () => {
  const init = await gadget(['init', project, '--wasm']);
  assert.equal(init.code, 0, init.stderr);
  for (const f of ['package.json', 'tsconfig.json', '.gitignore', 'gadget.config.ts', 'gadgets/trace_exec/program.bpf.c', 'gadgets/trace_exec/gadget.yaml', 'gadgets/trace_exec/build.yaml', 'gadgets/hello_wasm/program.wasm']) {
    assert.ok(existsSync(join(project, f)), `${f} was written`);
  }
  const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies?: Record<string, string> };
  assert.equal(pkg.dependencies['gadget-oci']!.startsWith('^'), true);
  const ours = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  assert.equal(pkg.devDependencies?.typescript, ours.devDependencies.typescript, 'the project\'s tsc is the one this package is built with');
  await run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', REPO], { cwd: project });
  // The README's command: the project's own tsc, not npx's offer of the unrelated `tsc` package.
  await run('npx', ['--no-install', 'tsc'], { cwd: project });

  const env = { GADGET_STORE: undefined };
  const built = await gadget(['run', 'check', '--json'], { cwd: project, env });
  assert.equal(built.code, 0, built.stderr);
  const list = await gadget(['list', '--json'], { cwd: project, env });
  assert.equal(list.code, 0, list.stderr);
  const refs = (JSON.parse(list.stdout) as { ref: string; platforms: string[] }[]).map((i) => `${i.ref} ${i.platforms.join(',')}`).sort();
  assert.deepEqual(refs, ['ghcr.io/my-gadgets/hello_wasm:latest linux/amd64,linux/arm64', 'ghcr.io/my-gadgets/trace_exec:latest linux/amd64,linux/arm64']);
  assert.ok(existsSync(join(project, '.gadget-store', 'index.json')), 'the images are in the project\'s own store');
});

test('gadget init refuses to write over an existing project and changes nothing', async () => {
  const dir = scratch('gadget-init-twice-');
  assert.equal((await gadget(['init', dir])).code, 0);
  writeFileSync(join(dir, 'gadget.config.ts'), '// mine\n');
  const before = readdirSync(dir, { recursive: true }).sort();
  const again = await gadget(['init', dir, '--wasm']);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already has package\.json, tsconfig\.json, \.gitignore, gadget\.config\.ts/);
  assert.doesNotMatch(again.stderr, /\n\s+at /, 'no stack trace');
  assert.deepEqual(readdirSync(dir, { recursive: true }).sort(), before, 'no file added (not even the wasm gadget)');
  assert.equal(readFileSync(join(dir, 'gadget.config.ts'), 'utf8'), '// mine\n');
});

// Each case is one config with one mistake, on a line marked `// <-`: tsc must report an error
// on exactly that line. The valid config must type-check without any error.
const TYPOS: Record<string, string> = {
  'gadgts': `defineConfig({ gadgts: [] }); // <-`,
  'wasmm': `defineConfig({ gadgets: [{ dir: 'g', ref: 'x', wasmm: 'a.wasm' }] }); // <-`,
  'depends': `defineConfig({ tasks: { a: { depends: ['b'], steps: [] } } }); // <-`,
  'concurrency-string': `defineConfig({ concurrency: '4' }); // <-`,
  'profile': `defineConfig({ tasks: { a: [verify({ profile: 'spc' })] } }); // <-`,
  'platform': `defineConfig({ mirrors: { m: { source: 'ghcr.io/x', destination: 'store', platforms: ['amd46'] } } }); // <-`,
  'mirror-key': `defineConfig({ mirrors: { m: { source: 'ghcr.io/x', destinaton: 'store' } } }); // <-`,
  'step-option': `defineConfig({ tasks: { a: [build({ nocache: true })] } }); // <-`,
};
const VALID = `defineConfig({
  store: '.s', igVersion: 'v0.45.0', concurrency: 2,
  gadgets: [{ dir: 'g', ref: 'x', cflags: ['-DX'], objects: { amd64: 'a.o' }, annotations: { a: 'b' } }],
  registries: { insecure: ['r:5000'], mirrors: { 'ghcr.io': { mirrors: ['r:5000/m'] } } },
  mirrors: { m: { source: 'ghcr.io/x', destination: { registry: 'r:5000' }, platforms: ['amd64', 'linux/arm64'], tags: { semver: '>=1' } } },
  tasks: { default: [build()], check: { description: 'd', dependsOn: ['default'], steps: [verify({ profile: 'ig' })] } },
});`;

test('configs with typos fail to type-check on the typo\'s line; a valid one passes', async () => {
  assert.ok(existsSync(join(project, 'node_modules', 'gadget-oci')), 'the project of the first test, with gadget-oci installed');
  const header = `import { defineConfig, build, verify } from 'gadget-oci';\nvoid build; void verify;\n`;
  const files = Object.fromEntries(Object.entries({ ...TYPOS, valid: VALID }).map(([name, body]) => [name, `typo-${name}.ts`]));
  for (const [name, body] of Object.entries({ ...TYPOS, valid: VALID })) writeFileSync(join(project, files[name]!), header + body + '\n');
  writeFileSync(join(project, 'tsconfig.typos.json'), JSON.stringify({ extends: './tsconfig.json', include: Object.values(files) }));
  const result = await run(process.execPath, [TSC, '-p', join(project, 'tsconfig.typos.json')], { cwd: project }).then(
    () => ({ stdout: '' }),
    (err: { stdout: string }) => ({ stdout: err.stdout }),
  );
  const errors = new Map<string, number[]>();
  for (const m of result.stdout.matchAll(/^typo-([\w-]+)\.ts\((\d+),\d+\): error/gm)) errors.set(m[1]!, [...(errors.get(m[1]!) ?? []), Number(m[2])]);
  for (const name of Object.keys(TYPOS)) {
    assert.ok(errors.get(name)?.includes(3), `tsc reports the mistake of "${name}" on its line:\n${result.stdout}`);
  }
  assert.equal(errors.get('valid'), undefined, `the valid config type-checks:\n${result.stdout}`);
});

test('gadget init in a folder that cannot be made (/proc) ends with one sentence, not a hang', async () => {
  // Node's own recursive mkdir retries for ever there (mkdir answers ENOENT although /proc exists).
  const r = await gadget(['init', '/proc/gadget-init-test/project']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^error: cannot create the folder \/proc\/gadget-init-test: [^\n]+\nhint: \S/);
  assert.equal(existsSync('/proc/gadget-init-test'), false);
});

test('gadget init refuses a dangling symbolic link, or a file where a folder goes, before writing anything', async () => {
  for (const [name, make, expect] of [
    ['gadget.config.ts', (d: string) => symlinkSync('nowhere', join(d, 'gadget.config.ts')), /already has gadget\.config\.ts \(a symbolic link to nothing\): /],
    ['gadgets', (d: string) => writeFileSync(join(d, 'gadgets'), 'mine\n'), /already has gadgets \(a file, where a folder goes\): /],
    ['gadgets', (d: string) => symlinkSync('nowhere', join(d, 'gadgets')), /already has gadgets \(a symbolic link to nothing\): /],
  ] as const) {
    const dir = join(scratch('gadget-init-link-'), 'k1');
    mkdirSync(dir);
    make(dir);
    const r = await gadget(['init', dir]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, expect);
    assert.doesNotMatch(r.stderr, /\n\s+at |unexpected failure/);
    assert.deepEqual(readdirSync(dir), [name], 'nothing written');
  }
});

const PREFIX_HINT = /^hint: give --registry as REGISTRY\[\/PATH\] in lower case, without a tag or digest, e.g\. --registry ghcr\.io\/myorg$/m;

test('gadget init --registry must be REGISTRY[/PATH] that makes valid references; a bad one writes nothing', async () => {
  const base = scratch('gadget-init-registry-');
  for (const [registry, why] of [
    ["ghcr.io/o'brien", /"o'brien" is not a repository path component/],
    ['', /--registry needs an image prefix, but it is empty/],
    ['ghcr.io/x:v1', /it has a tag \("x:v1"\)/],
    [`ghcr.io/x@sha256:${'a'.repeat(64)}`, /it has a digest/],
    ['ghcr.io/MyOrg', /"MyOrg" is not a repository path component/],
    ['ghcr.io/x/', /an empty path component/],
    ['myorg', /does not start with a registry host/],
    ['https://ghcr.io/x', /URL scheme/],
    ['ghcr.io', /ghcr\.io\/trace_exec:latest would be read as ghcr\.io\/inspektor-gadget\/gadget\/trace_exec:latest/],
  ] as const) {
    const r = await gadget(['init', 'k3', '--registry', registry], { cwd: base });
    assert.equal(r.code, 2, `${registry}: ${r.stderr}`);
    assert.match(r.stderr, why, registry);
    assert.match(r.stderr, PREFIX_HINT, registry);
    assert.equal(r.stderr.match(/^error: /gm)?.length, 1, r.stderr);
    assert.equal(existsSync(join(base, 'k3')), false, `${registry}: nothing written`);
  }
  const secret = await gadget(['init', 'k3', '--registry', 'alice:s3cret@ghcr.io/x'], { cwd: base });
  assert.equal(secret.code, 2);
  assert.doesNotMatch(secret.stderr, /s3cret/);

  const good = await gadget(['init', 'k3', '--wasm', '--registry', 'localhost:5000/team/sub'], { cwd: base });
  assert.equal(good.code, 0, good.stderr);
  assert.deepEqual(refsOf(join(base, 'k3')), ['localhost:5000/team/sub/trace_exec:latest', 'localhost:5000/team/sub/hello_wasm:latest']);
});

/** The refs written in a generated gadget.config.ts. */
function refsOf(dir: string): string[] {
  return [...readFileSync(join(dir, 'gadget.config.ts'), 'utf8').matchAll(/ref: '([^']*)'/g)].map((m) => m[1]!);
}

/** Points the generated config's import at this working tree (no npm install in these tests). */
function useThisTree(dir: string): void {
  const file = join(dir, 'gadget.config.ts');
  writeFileSync(file, readFileSync(file, 'utf8').replace("from 'gadget-oci'", `from ${JSON.stringify(pathToFileURL(join(REPO, 'index.ts')).href)}`));
}

/** The generated config loads with the real CLI: its refs are valid references. */
async function loads(dir: string): Promise<void> {
  useThisTree(dir);
  const tasks = await gadget(['tasks', '--json'], { cwd: dir });
  assert.equal(tasks.code, 0, `${dir}: ${tasks.stderr}`);
}

test('gadget init makes a valid repository from any folder name, and says how to cd there in shell words', async () => {
  const base = scratch('gadget-init-names-');
  for (const [folder, name] of [['Weird Name!!', 'weird-name'], ['a-', 'a'], ['a..b', 'a-b'], ["it's here", 'it-s-here'], ['-dash', 'dash']] as const) {
    const r = await gadget(['init', '--', folder], { cwd: base });
    assert.equal(r.code, 0, `${folder}: ${r.stderr}`);
    const dir = join(base, folder);
    assert.deepEqual(refsOf(dir), [`ghcr.io/${name}/trace_exec:latest`], folder);
    assert.equal(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name, name);
    await loads(dir);
    // The printed command works in a shell, whatever the folder's name holds.
    const cd = /^next: (cd .*?) && npm install && npx gadget run default$/m.exec(r.stderr)?.[1];
    assert.ok(cd, r.stderr);
    const shell = await run('bash', ['-c', `${cd} && pwd`], { cwd: base });
    assert.equal(shell.stdout.trim(), dir, `${folder}: ${cd}`);
  }
  const none = await gadget(['init', '日本'], { cwd: base });
  assert.equal(none.code, 2, none.stderr);
  assert.match(none.stderr, /^error: cannot make an image repository name from the folder name "日本"\nhint: .*--registry/m);
  assert.equal(existsSync(join(base, '日本')), false);
  const named = await gadget(['init', '日本', '--registry', 'ghcr.io/myorg'], { cwd: base });
  assert.equal(named.code, 0, named.stderr);
  assert.deepEqual(refsOf(join(base, '日本')), ['ghcr.io/myorg/trace_exec:latest']);
});

test('whatever string goes into the generated config stays a string literal: nothing breaks out', async () => {
  const hostile = ["o'brien", "x'); process.exit(7); ('", 'back\\slash\\', "\\'); process.exit(7); //", 'new\nline', '${process.exit(7)}', '\u2028\u2029"', '*/ process.exit(7) /*'];
  for (const text of hostile) {
    const literal = stringLiteral(text);
    assert.equal(new Function(`return ${literal};`)(), text, literal);
  }
  // And the real CLI loads such a config: the ref is refused as a reference, quoted whole; nothing ran.
  const dir = scratch('gadget-init-literal-');
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  writeFileSync(join(dir, 'gadget.config.ts'), configFile({ name: 'x', registry: "x'); process.exit(7); ('", version: '^0', typescript: '^5', wasm: false }));
  useThisTree(dir);
  const r = await gadget(['tasks'], { cwd: dir });
  assert.equal(r.code, 2, r.stderr);
  assert.ok(r.stderr.includes(`"x'); process.exit(7); ('/trace_exec:latest" is not a valid image reference`), r.stderr);
});
