import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { taskOrder, runTask } from '../lib/runner/tasks.js';
import { defineConfig, loadConfig } from '../lib/runner/config.js';
import type { Artifact, GadgetConfig, Plugin, PluginContext } from '../lib/runner/types.js';
import { openStore } from '../store/store.js';
import { GadgetError } from '../lib/errors.js';
import { gadget } from './helpers/cli.js';
import { quietContext } from './helpers/context.js';
import { REPO, scratch } from './helpers/paths.js';

const step = (name: string, log: string[]): Plugin => ({
  name,
  async run(_ctx, input) {
    log.push(`${name}(${input.map((a) => a.ref).join(',')})`);
    return [...input, { ref: name, descriptor: { mediaType: 'x', digest: 'sha256:' + '0'.repeat(64), size: 0 } }];
  },
});

async function context(config: GadgetConfig): Promise<PluginContext> {
  return quietContext(await openStore(join(scratch(), 's')), REPO, { config });
}

test('tasks run their dependencies first, each once, and pass artifacts along', async () => {
  const log: string[] = [];
  const config = defineConfig({
    tasks: {
      build: [step('build', log)],
      verify: { dependsOn: ['build'], steps: [step('verify', log)] },
      annotate: { dependsOn: ['build'], steps: [step('annotate', log)] },
      release: { description: 'all', dependsOn: ['verify', 'annotate'], steps: [step('push', log)] },
    },
  });
  assert.deepEqual(taskOrder(config, 'release'), ['build', 'verify', 'annotate', 'release']);
  const ctx = await context(config);
  const out: Artifact[] = await runTask(ctx, 'release');
  assert.deepEqual(log, ['build()', 'verify(build)', 'annotate(build,verify)', 'push(build,verify,annotate)']);
  assert.equal(out.length, 4);
  ctx.store.close();
});

test('cycles, unknown tasks and non-plugin steps are usage errors', () => {
  const cyclic = defineConfig({ tasks: { a: { dependsOn: ['b'], steps: [] }, b: { dependsOn: ['a'], steps: [] } } });
  assert.throws(() => taskOrder(cyclic, 'a'), (e: unknown) => e instanceof GadgetError && e.exitCode === 2 && /cycle: a -> b -> a/.test(e.message));
  assert.throws(() => taskOrder(cyclic, 'nope'), /no task "nope"/);
  const bad = { tasks: { a: { steps: [{ name: 'x' }] } } } as unknown as GadgetConfig;
  assert.throws(() => taskOrder(bad, 'a'), /step 1 is not a plugin/);
});

test('gadget.config.ts is loaded through tsx, with third-party plugins', async () => {
  const dir = scratch();
  const index = pathToFileURL(join(REPO, 'index.ts')).href;
  writeFileSync(
    join(dir, 'gadget.config.ts'),
    `import { defineConfig, type Plugin } from ${JSON.stringify(index)};
const hello: Plugin = { name: 'hello', async run(ctx, input) { ctx.log.info('hello from a plugin'); return input; } };
export default defineConfig({ store: 'my-store', tasks: { default: { description: 'says hello', steps: [hello] } } });
`,
  );
  const loaded = await loadConfig(dir);
  assert.equal(loaded.config.store, 'my-store');
  const tasks = await gadget(['tasks', '--json'], { cwd: dir });
  assert.equal(tasks.code, 0, tasks.stderr);
  assert.deepEqual(JSON.parse(tasks.stdout), [{ name: 'default', description: 'says hello', dependsOn: [], steps: ['hello'] }]);
  const run = await gadget(['run', 'default'], { cwd: dir });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /hello from a plugin/);
  const missing = await gadget(['run', 'nope'], { cwd: dir });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no task "nope"/);
  assert.doesNotMatch(missing.stderr, /\n\s+at /);
});

test('a config with a syntax error is reported with its file name', async () => {
  const dir = scratch();
  writeFileSync(join(dir, 'gadget.config.ts'), 'export default {{{');
  const result = await gadget(['tasks'], { cwd: dir });
  assert.equal(result.code, 2);
  assert.match(result.stderr, /cannot load .*gadget\.config\.ts/);
});

test('a task name that Object.prototype holds (constructor, toString, __proto__) is an unknown task', async () => {
  const dir = scratch();
  writeFileSync(join(dir, 'gadget.config.ts'), `export default { tasks: { default: [] } };\n`);
  for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    const r = await gadget(['run', name], { cwd: dir });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `error: there is no task "${name}"\nhint: known tasks: default\n`);
  }
  writeFileSync(join(dir, 'gadget.config.ts'), `export default { tasks: { default: { dependsOn: ['constructor'], steps: [] } } };\n`);
  const dep = await gadget(['run', 'default'], { cwd: dir });
  assert.equal(dep.code, 2, dep.stderr);
  assert.match(dep.stderr, /tasks\.default\.dependsOn\[0\] names "constructor", which is not a task/);
});
