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

test('a literal store that the code can replace is not remembered: each command reads the store the config computes', async () => {
  const cases = [
    // A literal, then overridden by the environment.
    `const config: { store: string } = { store: '.a' };\nif (process.env.MY_STORE) config.store = process.env.MY_STORE;\nexport default defineConfig(config);`,
    // The literal only in a comment; the store comes from the environment.
    `// store: '.a'\nexport default defineConfig({ store: process.env.MY_STORE ?? '.a' });`,
    // The key written as a string.
    `export default defineConfig({ 'store': process.env.MY_STORE ?? '.a' });`,
    // A spread after the literal may replace it.
    `const extra = process.env.MY_STORE ? { ['sto' + 're']: process.env.MY_STORE } : {};\nexport default defineConfig({ store: '.a', ...extra });`,
  ];
  for (const body of cases) {
    const dir = scratch('gadget-config-store-');
    const cache = join(dir, 'cache');
    writeFileSync(join(dir, 'gadget.config.ts'), `import { appendFileSync } from 'node:fs';
import { defineConfig } from '${join(REPO, 'index.ts')}';
appendFileSync(new URL('./loads.txt', import.meta.url), 'x');
${body}
`);
    for (const store of ['.a', '.b']) mkdirSync(join(dir, store));
    assert.equal((await gadget(['gc'], { cwd: dir, env: { XDG_CACHE_HOME: cache, MY_STORE: undefined } })).code, 0);
    assert.ok(existsSync(join(dir, '.a', 'index.json')), body);
    const b = await gadget(['gc'], { cwd: dir, env: { XDG_CACHE_HOME: cache, MY_STORE: '.b' } });
    assert.equal(b.code, 0, b.stderr);
    assert.ok(existsSync(join(dir, '.b', 'index.json')), `the computed store is used: ${body}`);
    assert.equal(loads(dir), 2, body);
  }
});

test("gadget init's config and the quick start's are remembered: comments and strings that say store, and a mirror set's destination 'store', do not count", async () => {
  const dir = scratch('gadget-config-store-');
  const cache = join(dir, 'cache');
  writeFileSync(join(dir, 'gadget.config.ts'), `import { appendFileSync } from 'node:fs';
import { defineConfig } from '${join(REPO, 'index.ts')}';
appendFileSync(new URL('./loads.txt', import.meta.url), 'x');
/* The store of this project, "store" in a string and a comment. */
export default defineConfig({
  // A store of its own.
  store: '.a',
  tasks: { default: { description: 'build into the store', steps: [] } },
  mirrors: { ig: { source: 'ghcr.io/inspektor-gadget/gadget/trace_open', destination: 'store' } },
});
`);
  mkdirSync(join(dir, '.a'));
  for (let i = 0; i < 2; i++) assert.equal((await gadget(['gc'], { cwd: dir, env: { XDG_CACHE_HOME: cache } })).code, 0);
  assert.equal(loads(dir), 1, 'loaded once, then remembered');
});

test('a config that exports an imported or computed object is not remembered, even when its text names no store or one literal', async () => {
  const cases: Array<[string, string | undefined]> = [
    // The export comes from another file, which names the store (or not) as it likes.
    [`import base from './base.mjs';\nexport default base;`, `export default process.env.MY_STORE ? { store: process.env.MY_STORE } : {};\n`],
    // A literal in this file, but the export chooses between objects.
    [`const local = { store: '.a' };\nexport default defineConfig(process.env.MY_STORE ? { store: process.env.MY_STORE } as { store: string } : local);`, undefined],
  ];
  for (const [body, base] of cases) {
    const dir = scratch('gadget-config-store-');
    const cache = join(dir, 'cache');
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    if (base) writeFileSync(join(dir, 'base.mjs'), base);
    writeFileSync(join(dir, 'gadget.config.ts'), `import { defineConfig } from '${join(REPO, 'index.ts')}';\n${body}\n`);
    mkdirSync(join(dir, '.b'));
    // Read-only commands: the first may name ig's own store, which it must not change.
    await gadget(['-v', 'list', '--json'], { cwd: dir, env: { XDG_CACHE_HOME: cache, MY_STORE: undefined } });
    const b = await gadget(['-v', 'list', '--json'], { cwd: dir, env: { XDG_CACHE_HOME: cache, MY_STORE: '.b' } });
    assert.match(b.stderr, new RegExp(`store: ${join(dir, '.b').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), `the store the config computes now: ${body}\n${b.stderr}`);
  }
});

test("a config whose defineConfig is its own, or whose object has a computed key, is not remembered", async () => {
  const configs = [
    // The project's own defineConfig may change what it is given.
    `import { defineConfig } from './shared.mjs';\nexport default defineConfig({ store: '.a' });\n`,
    // A computed key may be store.
    `import { defineConfig } from '${join(REPO, 'index.ts')}';\nconst key = 'st' + 'ore';\nexport default defineConfig({ store: '.a', [key]: process.env.MY_STORE ?? '.a' });\n`,
  ];
  for (const config of configs) {
    const dir = scratch('gadget-config-store-');
    const cache = join(dir, 'cache');
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(join(dir, 'shared.mjs'), 'export function defineConfig(c) { return process.env.MY_STORE ? { ...c, store: process.env.MY_STORE } : c; }\n');
    writeFileSync(join(dir, 'gadget.config.ts'), config);
    for (const store of ['.a', '.b']) mkdirSync(join(dir, store));
    assert.equal((await gadget(['gc'], { cwd: dir, env: { XDG_CACHE_HOME: cache, MY_STORE: undefined } })).code, 0);
    assert.ok(existsSync(join(dir, '.a', 'index.json')), config);
    const b = await gadget(['gc'], { cwd: dir, env: { XDG_CACHE_HOME: cache, MY_STORE: '.b' } });
    assert.equal(b.code, 0, b.stderr);
    assert.ok(existsSync(join(dir, '.b', 'index.json')), `the computed store is used: ${config}`);
  }
});
