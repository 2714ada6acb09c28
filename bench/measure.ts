// Runs a command as a user would and measures its wall time and peak RSS.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..');
export const CLI = join(ROOT, 'dist', 'cli', 'gadget.js');
const PROBE = join(ROOT, 'bench', 'rss-probe.mjs');

export interface Measured {
  seconds: number;
  rssMB: number;
  stdout: string;
}

/** `gadget ARGS` through plain node (as the installed bin runs), timed. */
export function gadget(args: string[], cwd = ROOT): Measured {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--import', PROBE, CLI, ...args], { cwd, encoding: 'utf8', maxBuffer: 1 << 30 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`gadget ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  const rss = /bench-maxrss-kb=(\d+)/.exec(r.stderr);
  return { seconds, rssMB: rss ? Number(rss[1]) / 1024 : NaN, stdout: r.stdout };
}

export function timed(cmd: string, args: string[], cwd = ROOT): { seconds: number; stdout: string } {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0 && r.status !== 1) throw new Error(`${cmd} failed: ${r.stderr}`);
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, stdout: r.stdout };
}

/** Prints a Markdown table (the README and closing notes take it as it is). */
export function printTable(title: string, header: string[], rows: Array<Array<string | number>>): void {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => String(r[i]).length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`\n### ${title}\n`);
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of cells) console.log(line(r.map(String)));
}

function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return '-';
  if (Number.isInteger(n)) return String(n);
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(3);
}
