// `npm run bench [build|verify|sync|cli|store|serve]`: the benchmarks, each printing Markdown tables. Data goes
// to bench/.data/ (ignored by git) and is rebuilt on each run.
import { benchBuild } from './build.js';
import { main as benchVerify } from './verify.js';
import { main as benchSync } from './sync.js';
import { main as benchCli } from './cli.js';
import { main as benchStore } from './store.js';
import { main as benchServe } from './serve.js';

const benches: Record<string, () => Promise<void>> = { build: () => benchBuild(), verify: benchVerify, sync: benchSync, cli: benchCli, store: () => benchStore(), serve: () => benchServe() };
const only = process.argv[2];
if (only !== undefined && !(only in benches)) {
  console.error(`unknown benchmark "${only}"; choose one of ${Object.keys(benches).join(', ')}`);
  process.exit(2);
}
for (const [name, run] of Object.entries(benches)) if (!only || only === name) await run();
