// `gadget init` and the config's types, tried as a new author would: init a project, install
// this package into it from the working tree (npm links a folder dependency: no registry),
// type-check the config with tsc, build, verify and list; then configs with typos must fail
// to type-check (real tsc over real files).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
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
  assert.equal(JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')).dependencies['gadget-oci'].startsWith('^'), true);
  await run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', REPO], { cwd: project });
  await run(process.execPath, [TSC, '-p', join(project, 'tsconfig.json')], { cwd: project });

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
