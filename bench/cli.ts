// `npm run bench -- cli`: what a command costs inside a project folder (gadget.config.ts
// present) against outside it (`--store`), for commands that need only the store. "Before" is
// the config compiled through tsx on every command (an empty cache each run, as every command
// did before the store cache); "after" is the store read from the cache.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ROOT, printTable } from './measure.js';

const DATA = join(ROOT, 'bench', '.data', 'cli');
const PROJECT = join(DATA, 'project');
const RUNS = 7;

function seconds(args: string[], cwd: string, env: NodeJS.ProcessEnv): number {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gadget ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

let freshCaches = 0;

/** The median of RUNS runs; `fresh` gives each run an empty cache folder of its own. */
function median(args: (i: number) => string[], cwd: string, fresh = false): number {
  const times = Array.from({ length: RUNS }, (_, i) => seconds(args(i), cwd, { XDG_CACHE_HOME: join(DATA, fresh ? `cache-${freshCaches++}` : 'cache') })).sort((a, b) => a - b);
  return times[Math.floor(RUNS / 2)]!;
}

export async function main(): Promise<void> {
  rmSync(DATA, { recursive: true, force: true });
  mkdirSync(PROJECT, { recursive: true });
  writeFileSync(join(PROJECT, 'gadget.config.ts'), `import { defineConfig, build } from '${join(ROOT, 'index.ts')}';\nexport default defineConfig({ store: '.gadget-store', tasks: { default: [build()] } });\n`);
  const store = join(PROJECT, '.gadget-store');
  seconds(['--store', store, 'build', join(ROOT, 'examples', 'hello_wasm'), '-t', 'example.com/bench/cli:v1'], DATA, {});
  seconds(['list'], PROJECT, { XDG_CACHE_HOME: join(DATA, 'cache') }); // fills the cache

  const rows: Array<Array<string | number>> = [];
  const cases: Array<[string, (where: 'out' | 'in') => (i: number) => string[]]> = [
    ['--version', () => () => ['--version']],
    ['list', (where) => () => (where === 'out' ? ['--store', store, 'list'] : ['list'])],
    ['tag', (where) => (i) => [...(where === 'out' ? ['--store', store] : []), 'tag', 'example.com/bench/cli:v1', `example.com/bench/cli:t${where}${i}`]],
  ];
  for (const [name, args] of cases) {
    const outside = median(args('out'), DATA);
    const before = name === '--version' ? NaN : median((i) => args('in')(i + 100), PROJECT, true);
    const after = median(args('in'), PROJECT);
    rows.push([`gadget ${name}`, outside, before, after]);
  }
  printTable(`gadget commands inside and outside a project folder (median of ${RUNS}, seconds)`, ['command', 'outside (--store)', 'inside, config compiled (before)', 'inside, store cached (after)'], rows);
}
