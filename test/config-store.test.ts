// Commands that need only the store do not compile gadget.config.ts each time: its `store` is
// remembered per version of the config's bytes. The config below counts its own evaluations
// in a file, so the test sees whether a command loaded it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gadget } from './helpers/cli.js';
import { REPO, scratch } from './helpers/paths.js';

const CONFIG = (store: string): string => `import { appendFileSync } from 'node:fs';
import { defineConfig } from '${join(REPO, 'index.ts')}';
appendFileSync(new URL('./loads.txt', import.meta.url), 'x');
export default defineConfig({ store: ${store} });
`;

function loads(dir: string): number {
  return existsSync(join(dir, 'loads.txt')) ? readFileSync(join(dir, 'loads.txt'), 'utf8').length : 0;
}

test('a literal store is read from the config once, and again when the config changes', async () => {
  const dir = scratch('gadget-config-store-');
  const env = { XDG_CACHE_HOME: join(dir, 'cache') };
  writeFileSync(join(dir, 'gadget.config.ts'), CONFIG(`'.one'`));
  // Empty folders: list and gc make no store where there is none (store-missing.test.ts).
  for (const store of ['.one', '.two']) mkdirSync(join(dir, store));
  for (let i = 0; i < 3; i++) assert.equal((await gadget(['list', '*', '--json'], { cwd: dir, env })).code === 2, false);
  assert.equal(loads(dir), 1, 'three commands, one evaluation of the config');
  assert.ok(existsSync(join(dir, '.one', 'index.json')), 'the store the config names');

  writeFileSync(join(dir, 'gadget.config.ts'), CONFIG(`'.two'`));
  await gadget(['gc'], { cwd: dir, env });
  assert.ok(existsSync(join(dir, '.two', 'index.json')), 'a changed config names another store, seen at once');
  assert.equal(loads(dir), 2);
});

test('a computed store is read by loading the config every time', async () => {
  const dir = scratch('gadget-config-store-');
  writeFileSync(join(dir, 'gadget.config.ts'), CONFIG(`process.env.MY_STORE`));
  const cache = join(dir, 'cache');
  for (const store of ['.a', '.b']) mkdirSync(join(dir, store));
  await gadget(['gc'], { cwd: dir, env: { XDG_CACHE_HOME: cache, MY_STORE: '.a' } });
  await gadget(['gc'], { cwd: dir, env: { XDG_CACHE_HOME: cache, MY_STORE: '.b' } });
  assert.ok(existsSync(join(dir, '.a', 'index.json')) && existsSync(join(dir, '.b', 'index.json')), 'each command saw its own environment');
  assert.equal(loads(dir), 2);
});
