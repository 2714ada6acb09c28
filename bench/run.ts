// `npm run bench`: every benchmark, each printing Markdown tables. Data goes to bench/.data/
// (ignored by git) and is rebuilt on each run.
import { benchBuild } from './build.js';

const only = process.argv[2];
if (!only || only === 'build') await benchBuild();
for (const name of ['verify', 'sync']) {
  if (only && only !== name) continue;
  const mod = await import(`./${name}.js`).catch(() => undefined);
  if (mod?.main) await mod.main();
}
