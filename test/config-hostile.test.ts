// gadget.config.ts under hostile input: values of the wrong type, unknown keys, configs that
// throw, never settle, leave timers behind or block the event loop, and plugins that misbehave.
// Every case runs the real CLI: one sentence, the right exit code, no stack trace, nothing left
// in the (private) temp folder, and nothing run.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { gadget, spawnGadget } from './helpers/cli.js';
import { exited } from './helpers/crash.js';
import { scratch } from './helpers/paths.js';

// One scratch folder (removed at exit) for the many projects below.
const BASE = scratch('gadget-config-');

/** A project folder with `config` as its gadget.config.ts (an ES module) and a private TMPDIR. */
function project(config: string): { dir: string; env: NodeJS.ProcessEnv; tmp: string } {
  const dir = mkdtempSync(join(BASE, 'p-'));
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  mkdirSync(join(dir, 'g'));
  writeFileSync(join(dir, 'g', 'gadget.yaml'), 'name: g\n');
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  writeFileSync(join(dir, 'gadget.config.ts'), config);
  return { dir, tmp, env: { TMPDIR: tmp, GADGET_STORE: join(dir, 'store') } };
}

/** What is in the temp folder, but tsx's transform cache (tsx-UID, one per user, reused by every run). */
const leftInTmp = (tmp: string): string[] => readdirSync(tmp).filter((f) => !/^tsx-\d+$/.test(f));

const noStack = (stderr: string): void => {
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  assert.doesNotMatch(stderr, /unexpected failure/);
};

async function fails(config: string, expect: RegExp, args = ['run', 'default'], code = 2): Promise<void> {
  const p = project(config);
  const r = await gadget(args, { cwd: p.dir, env: p.env });
  assert.equal(r.code, code, `${config}\n${r.stderr}`);
  assert.match(r.stderr, expect, config);
  assert.equal(r.stderr.match(/^error: /gm)?.length, 1, `one error line: ${r.stderr}`);
  noStack(r.stderr);
  assert.deepEqual(leftInTmp(p.tmp), [], 'nothing in the temp folder');
  assert.equal(existsSync(join(p.dir, 'store', 'index.json')) && readdirSync(join(p.dir, 'store', 'blobs', 'sha256')).length > 0, false, 'nothing built');
}

const built = `{ dir: 'g', ref: 'localhost:5000/g:1' }`;

test('config values of the wrong type are refused with the key path before anything runs', async () => {
  await fails(`export default { concurrency: NaN, gadgets: [${built}], tasks: { default: [] } };`, /concurrency must be a finite positive integer, but it is NaN/);
  await fails(`export default { concurrency: '4x', tasks: { default: [] } };`, /concurrency must be a finite positive integer, but it is the string "4x"/);
  await fails(`export default { concurrency: 1.5, tasks: { default: [] } };`, /concurrency must be a finite positive integer/);
  await fails(`export default { gadgets: [null], tasks: { default: [] } };`, /gadgets\[0\] must be a gadget .* but it is null/);
  await fails(`export default { igVersion: 5, tasks: { default: [] } };`, /igVersion must be a non-empty string, but it is the number 5/);
  await fails(`export default { gadgets: [{ dir: 'g', ref: 'x', ebpfsource: 5 }] };`, /gadgets\[0\]\.ebpfsource must be a non-empty string/);
  await fails(`export default { gadgets: [{ dir: 'g', ref: 'x', metadata: ['a'] }] };`, /gadgets\[0\]\.metadata must be a string, but it is a list/);
  await fails(`export default { gadgets: [${built}, { dir: 'g', ref: 'x', wasm: {} }] };`, /gadgets\[1\]\.wasm must be a non-empty string, but it is an object/);
  await fails(`export default { gadgets: [{ dir: 'g' }] };`, /gadgets\[0\]\.ref is missing/);
  await fails(`export default { gadgets: [{ dir: 'g', ref: 'x', annotations: { a: 1 } }] };`, /gadgets\[0\]\.annotations\["a"\] must be a string/);
  await fails(`export default { tasks: { default: [{ name: 'x' }] } };`, /tasks\.default\[0\] must be a plugin/);
  await fails(`export default { store: 7 };`, /store must be a non-empty string/, ['tasks']);
});

test('unknown keys anywhere are errors with "did you mean"; dependsOn must name a task', async () => {
  for (const [config, expect] of [
    [`export default { gadgts: [] };`, /gadgts is not a known setting\nhint: did you mean "gadgets"\?/],
    [`export default { gadgets: [{ dir: 'g', ref: 'x', wasmm: 'a.wasm' }] };`, /gadgets\[0\]\.wasmm is not a known setting\nhint: did you mean "wasm"\?/],
    [`export default { tasks: { default: { depends: ['x'], steps: [] } } };`, /tasks\.default\.depends is not a known setting\nhint: did you mean "dependsOn"\?/],
    [`export default { tasks: { build: [], default: { dependsOn: ['buidl'], steps: [] } } };`, /tasks\.default\.dependsOn\[0\] names "buidl", which is not a task\nhint: did you mean "build"\?/],
  ] as const) {
    await fails(config, expect);
  }
});

test('two gadgets with the same ref are an error naming both', async () => {
  await fails(
    `export default { gadgets: [{ dir: 'g', ref: 'x' }, { dir: 'h', ref: 'ghcr.io/inspektor-gadget/gadget/x:latest' }], tasks: { default: [] } };`,
    /gadgets\[0\] \(g\) and gadgets\[1\] \(h\) have the same ref ghcr\.io\/inspektor-gadget\/gadget\/x:latest/,
  );
});

test('a config that throws names its file and line; one without a default export says so', async () => {
  await fails(`const a = 1;\n\nthrow new Error('boom at load ' + a);\nexport default {};\n`, /cannot load .*gadget\.config\.ts:3: boom at load 1/);
  await fails(`throw 'a thrown string';\n`, /cannot load .*gadget\.config\.ts: a thrown string/);
  await fails(`export const notDefault = { tasks: {} };\n`, /gadget\.config\.ts has no default export/);
  await fails(`export default 42;\n`, /the default export must be an object/);
  // Node's "Require stack" listing after the message is not shown: one line, then the hint.
  await fails(`import { createRequire } from 'node:module';\ncreateRequire(import.meta.url)('gadget-no-such-module');\nexport default {};\n`, /^error: cannot load .*gadget\.config\.ts.*: Cannot find module 'gadget-no-such-module'\nhint: /m);
});

test('a getter or Proxy of the config that throws when read is one sentence naming the file (exit 2)', async () => {
  const threw = (what: string): RegExp => new RegExp(`^error: cannot load .*gadget\\.config\\.ts:1: reading its default export threw: ${what}\\nhint: a getter or Proxy of the config threw`, 'm');
  await fails(`export default { get tasks() { throw new Error('getter boom'); } };\n`, threw('getter boom'));
  await fails(`export default new Proxy({}, { ownKeys() { throw new Error('ownKeys boom'); } });\n`, threw('ownKeys boom'));
  await fails(`export default { get then() { throw new Error('then boom'); } };\n`, threw('then boom'));
  await fails(`export default { tasks: { default: [] }, get gadgets() { throw new Error('late boom'); } };\n`, threw('late boom'));
  // Thrown values that cannot even be shown: still one sentence.
  await fails(`export default { get tasks() { throw Object.create(null); } };\n`, /^error: cannot load .*gadget\.config\.ts: reading its default export threw: a value that cannot be shown as text$/m);
  await fails(`const r = Proxy.revocable({}, {});\nr.revoke();\nexport default r.proxy;\n`, /^error: cannot load .*gadget\.config\.ts: reading its default export threw: .*revoked/m);
  await fails(`throw Object.create(null);\n`, /^error: cannot load .*gadget\.config\.ts: a value that cannot be shown as text$/m);
});

test('a plugin that throws a string or returns a null descriptor fails with one sentence (exit 1)', async () => {
  await fails(`export default { tasks: { default: [{ name: 'bad', async run() { throw 'plain string'; } }] } };`, /step bad failed: plain string/, undefined, 1);
  await fails(`export default { tasks: { default: [{ name: 'bad', async run() { return [{ ref: 'x', descriptor: null }]; } }] } };`, /step bad returned an artifact \[0\] that is not/, undefined, 1);
  await fails(`export default { tasks: { default: [{ name: 'bad', async run() { return null; } }] } };`, /step bad returned no artifact list/, undefined, 1);
});

test('a config or plugin that never settles is an error, not a silent exit 0', async () => {
  await fails(`await new Promise(() => {});\nexport default { tasks: { default: [] } };\n`, /gadget run stopped before it finished/);
  await fails(`export default { tasks: { default: [{ name: 'stuck', run: () => new Promise(() => {}) }] } };`, /gadget run stopped before it finished/);
});

test('a top-level await in a CommonJS project says how to make the config an ES module', async () => {
  const p = project(`await Promise.resolve();\nexport default { tasks: { default: [] } };\n`);
  writeFileSync(join(p.dir, 'package.json'), '{}\n');
  const r = await gadget(['run', 'default'], { cwd: p.dir, env: p.env });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^error: cannot load .*gadget\.config\.ts:1: [^\n]*[Tt]op-level await[^\n]*\n/m, 'the compiler\'s own sentence, not only "Transform failed with 1 error:"');
  assert.match(r.stderr, /^hint: top-level await needs an ES module: add "type": "module" to the package\.json beside gadget\.config\.ts$/m);
  noStack(r.stderr);
});

test('a config whose default export is a promise is the config once it settles', async () => {
  const p = project(`export default Promise.resolve({ store: './from-promise', tasks: { t: [] } });\n`);
  const tasks = await gadget(['tasks', '--json'], { cwd: p.dir, env: { TMPDIR: p.tmp } });
  assert.equal(tasks.code, 0, tasks.stderr);
  assert.deepEqual((JSON.parse(tasks.stdout) as Array<{ name: string }>).map((t) => t.name), ['t']);
  mkdirSync(join(p.dir, 'from-promise')); // list makes no store where there is none
  const where = await gadget(['-v', 'list'], { cwd: p.dir, env: { TMPDIR: p.tmp } });
  assert.equal(where.code, 0, where.stderr);
  assert.ok(where.stderr.includes(`store: ${join(p.dir, 'from-promise')} (from `), where.stderr);
  await fails(`export default Promise.reject(new Error('no settings'));\n`, /its default export is a promise that failed: no settings/, ['tasks']);
});

test('a command exits when its work is done, even when the config leaves a timer running', { timeout: 60_000 }, async () => {
  const p = project(`setInterval(() => {}, 1000);\nexport default { tasks: { default: [{ name: 'ok', async run(_c, input) { setTimeout(() => {}, 600_000); return input; } }] } };\n`);
  const r = await gadget(['run', 'default', '--json'], { cwd: p.dir, env: p.env });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).artifacts, [], 'the output was flushed before the exit');
});

test('an interrupted command never exits 0, even when its last step ignores the abort and returns', { timeout: 60_000 }, async () => {
  const p = project(`import { writeFileSync } from 'node:fs';\nexport default { tasks: { default: [{ name: 'deaf', run: async (_c, input) => { writeFileSync('started', ''); await new Promise((r) => setTimeout(r, 1500)); return input; } }] } };\n`);
  const child = spawnGadget(['run', 'default', '--json'], { cwd: p.dir, env: p.env });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  while (!existsSync(join(p.dir, 'started'))) await sleep(20);
  child.kill('SIGINT');
  const end = await exited(child);
  assert.equal(end.code, 130, stderr);
  assert.match(stderr, /^error: interrupted$/m);
  const doc = JSON.parse(stdout) as { error: { message: string; hint: string; code: number } };
  assert.deepEqual([doc.error.message, doc.error.code], ['interrupted', 130]);
  assert.match(doc.error.hint, /run the command again/);
  noStack(stderr);
});

test('a busy config does not make SIGINT ineffective; a second SIGINT ends a running command at once', { timeout: 60_000 }, async () => {
  // The config blocks the event loop forever: no JS handler could run, the default action must.
  const busy = project(`import { writeFileSync } from 'node:fs';\nwriteFileSync('started', '');\nfor (;;) {}\nexport default {};\n`);
  const child = spawnGadget(['run', 'default'], { cwd: busy.dir, env: busy.env });
  while (!existsSync(join(busy.dir, 'started'))) await sleep(20);
  child.kill('SIGINT');
  const first = await exited(child);
  assert.equal(first.signal, 'SIGINT', 'ended by the first SIGINT');

  // A plugin that ignores the abort signal: the first SIGINT asks, the second ends it.
  const slow = project(`import { writeFileSync } from 'node:fs';\nexport default { tasks: { default: [{ name: 'slow', run: () => { writeFileSync('started', ''); return new Promise((r) => setTimeout(r, 600_000)); } }] } };\n`);
  const c2 = spawnGadget(['run', 'default'], { cwd: slow.dir, env: slow.env });
  let stderr = '';
  c2.stderr!.on('data', (d) => (stderr += d));
  while (!existsSync(join(slow.dir, 'started'))) await sleep(20);
  c2.kill('SIGINT');
  await sleep(300);
  assert.equal(c2.exitCode, null, 'the first SIGINT only asks the command to stop');
  c2.kill('SIGINT');
  const second = await exited(c2);
  assert.equal(second.code, 130);
  assert.match(stderr, /interrupted twice; stopping at once/);
  noStack(stderr);
});
