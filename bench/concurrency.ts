// Does the registry wait for the client? Cold push and pull of the sync benchmark's 100 images
// at several `--concurrency` levels (requests in flight), each against a fresh local
// docker-registry, the levels alternated round by round so that the machine's drift spreads
// over all of them. Prints each round's seconds, the median, and the registry's CPU seconds.
//   node --import tsx bench/concurrency.ts [LEVEL...] [--rounds N]   (default: 4 8 16 32, 3 rounds)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../test/helpers/registry.js';
import { CLI, printTable } from './measure.js';
import { generate } from './sync.js';

const IMAGES = 100;

/** User plus system CPU seconds of a process so far, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** One `gadget sync` (exit 0 and every image copied, or the benchmark stops). */
function sync(reg: TestRegistry, args: string[]): { seconds: number; registryCPU: number } {
  const cpu = cpuSeconds(reg.pid);
  const start = process.hrtime.bigint();
  // Outside any project: a gadget.config.ts around it would be compiled by every command.
  const r = spawnSync(process.execPath, [CLI, '--json', '--quiet', ...args], { cwd: tmpdir(), encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`gadget ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  const copied = (JSON.parse(r.stdout) as { images: { copied: number } }).images.copied;
  if (copied !== IMAGES) throw new Error(`gadget ${args.join(' ')} copied ${copied} images, not ${IMAGES}`);
  return { seconds, registryCPU: cpuSeconds(reg.pid) - cpu };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

export async function main(args: string[]): Promise<void> {
  const roundsAt = args.indexOf('--rounds');
  const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 3;
  const given = args.filter((a, i) => roundsAt < 0 || (i !== roundsAt && i !== roundsAt + 1)).map(Number);
  const levels = given.length > 0 ? given : [4, 8, 16, 32];
  const store = await generate(IMAGES, 10);
  const push = new Map(levels.map((l) => [l, [] as Array<{ seconds: number; registryCPU: number }>]));
  const pull = new Map(levels.map((l) => [l, [] as Array<{ seconds: number; registryCPU: number }>]));
  for (let round = 0; round < rounds; round++) {
    for (const level of levels) {
      const reg = await startRegistry();
      const empty = mkdtempSync(join(tmpdir(), 'bench-pull-'));
      try {
        const flag = ['--concurrency', String(level)];
        push.get(level)!.push(sync(reg, ['--store', store, 'sync', '--from', 'store:bench.local/sync/*', '--to', `${reg.host}/c`, ...flag]));
        pull.get(level)!.push(sync(reg, ['--store', empty, 'sync', '--from', `${reg.host}/c/*`, '--to', 'store', ...flag]));
      } finally {
        await reg.stop();
        rmSync(empty, { recursive: true, force: true });
      }
    }
  }
  const row = (op: string, level: number, runs: Array<{ seconds: number; registryCPU: number }>) => [
    op,
    level,
    runs.map((r) => r.seconds.toFixed(2)).join(', '),
    median(runs.map((r) => r.seconds)),
    median(runs.map((r) => r.registryCPU)),
  ];
  printTable(
    `cold push and pull of ${IMAGES} images by requests in flight (fresh docker-registry each round, ${rounds} rounds alternated)`,
    ['operation', '--concurrency', 'seconds, each round', 'median s', 'registry CPU s (median)'],
    [...levels.map((l) => row('cold push', l, push.get(l)!)), ...levels.map((l) => row('pull into an empty store', l, pull.get(l)!))],
  );
}
