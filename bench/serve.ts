// `npm run bench -- serve`: pulling N generated gadget images (bench/sync.ts's recipe) with
// this project's own client from `gadget serve` and from docker-registry 2.8, in one run: wall
// time and the server's CPU seconds (/proc/PID/stat) for each.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../test/helpers/registry.js';
import { startServe } from '../test/helpers/serve.js';
import { CLI, printTable, ROOT } from './measure.js';
import { generate } from './sync.js';

const DATA = join(ROOT, 'bench', '.data', 'serve');

function cpu(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function gadget(args: string[]): number {
  const start = process.hrtime.bigint();
  // Outside any project: a gadget.config.ts around it would be compiled by every command.
  const r = spawnSync(process.execPath, [CLI, '--quiet', ...args], { cwd: tmpdir(), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gadget ${args.join(' ')} failed: ${r.stderr}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export async function main(argv: string[] = []): Promise<void> {
  const n = Number(argv[0] ?? 100);
  const source = await generate(n, 10);
  rmSync(DATA, { recursive: true, force: true });
  const registry = await startRegistry();
  const serve = await startServe(join(DATA, 'served'));
  try {
    const rows: Array<Array<string | number>> = [];
    for (const [name, host, pid] of [['docker-registry 2.8', registry.host, registry.pid], ['gadget serve', serve.host, serve.child.pid!]] as const) {
      gadget(['--store', source, 'sync', '--from', 'store:bench.local/*', '--to', `${host}/bench.local`]);
      const before = cpu(pid);
      const seconds = gadget(['--store', join(DATA, `pulled-${pid}`), 'sync', '--from', `${host}/bench.local/sync/`, '--to', 'store']);
      rows.push([name, n, seconds, n / seconds, cpu(pid) - before]);
    }
    printTable(`pull ${n} images into an empty store with gadget sync (load ${loadavg()[0]!.toFixed(1)})`, ['server', 'images', 'seconds', 'images/s', 'server CPU s'], rows);
  } finally {
    await serve.stop();
    await registry.stop();
  }
}

if (process.argv[1] && process.argv[1].endsWith('serve.ts')) await main(process.argv.slice(2));
