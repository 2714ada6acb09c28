// The push() step of a task gives the same advice as `gadget push`: without credentials for
// a registry that requires them, the hint names `gadget login HOST`, not a generic retry.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gadget } from './helpers/cli.js';
import { REPO } from './helpers/paths.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { EXAMPLES, exampleStore, tempDir } from './helpers/sync.js';

let registry: TestRegistry;
before(async () => {
  registry = await startRegistry({ auth: 'basic' });
});
after(async () => registry?.stop());

test('a push step without credentials says to log in to the registry', async (t) => {
  const dir = await tempDir(t);
  (await exampleStore(dir)).close();
  await writeFile(
    join(dir, 'gadget.config.ts'),
    `import { defineConfig, push } from '${join(REPO, 'index.ts')}';
export default defineConfig({
  store: 'examples-store',
  tasks: { release: [push({ refs: ['${EXAMPLES.traceOpen}', '${EXAMPLES.helloWasm}'], to: '${registry.host}/release' })] },
});
`,
  );
  const run = await gadget(['run', 'release'], { cwd: dir, env: { DOCKER_CONFIG: join(dir, 'docker'), HOME: dir, XDG_CACHE_HOME: join(dir, 'cache') } });
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /2 of 2 images failed/);
  assert.match(run.stderr, new RegExp(`hint: run "gadget login ${registry.host.replace(/\./g, '\\.')}"`));
  assert.doesNotMatch(run.stderr, /run it again to retry/);
});
