// `npm run bench [build|verify|sync|concurrency|cli|store|serve] [ARGS...]`: the benchmarks, each printing Markdown
// tables; ARGS go to the one named (e.g. `npm run bench -- sync 100 --big 0`). npm builds dist/
// first: the benchmarks run the `gadget` command users run, and an old build would measure old
// code. Data goes to bench/.data/ (ignored by git) and is rebuilt on each run.
import { benchBuild } from './build.js';
import { main as benchVerify } from './verify.js';
import { main as benchSync } from './sync.js';
import { main as benchConcurrency } from './concurrency.js';
import { main as benchCli } from './cli.js';
import { main as benchStore } from './store.js';
import { main as benchServe } from './serve.js';

const only = process.argv[2];
const args = process.argv.slice(3);
const benches: Record<string, () => Promise<void>> = { build: () => benchBuild(), verify: () => benchVerify(args), sync: () => benchSync(args), concurrency: () => benchConcurrency(args), cli: () => benchCli(), store: () => benchStore(args), serve: () => benchServe(args) };
if (only !== undefined && !(only in benches)) {
  console.error(`unknown benchmark "${only}"; choose one of ${Object.keys(benches).join(', ')}`);
  process.exit(2);
}
for (const [name, run] of Object.entries(benches)) if (!only || only === name) await run();
