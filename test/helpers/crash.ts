// Child processes for crash and concurrency tests: run one to its end, or kill it at a chosen
// moment (after a delay, when a condition holds on disk, or frozen with SIGSTOP first so the
// moment is certain). Only the children started here are ever signalled, by their own pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RunResult {
  code: number | null;
  /** stdout exactly as written (for byte comparisons), and as text. */
  raw: Buffer;
  stdout: string;
  stderr: string;
}

/** Runs a program (argument array, no shell) and collects its output; resolves whatever the exit code. */
export function run(file: string, args: string[], opts: { cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const raw = Buffer.concat(out);
      resolve({ code, raw, stdout: raw.toString('utf8'), stderr });
    });
  });
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves when the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (hasExited(child)) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Where to kill: after `delayMs`, or as soon as `when()` holds (polled every 2 ms). */
export type KillPoint = { delayMs: number } | { when: () => boolean; label: string };

/** SIGKILLs the child at `point`, unless it ends first. Returns whether it was killed. */
export async function killAt(child: ChildProcess, point: KillPoint): Promise<boolean> {
  if ('delayMs' in point) {
    await Promise.race([sleep(point.delayMs), exited(child)]);
  } else {
    while (!hasExited(child) && !point.when()) await sleep(2);
  }
  if (hasExited(child)) return false;
  child.kill('SIGKILL');
  await exited(child);
  return true;
}

/**
 * Stops the child (SIGSTOP) at a moment when `when()` holds while it is stopped, so the state
 * on disk is exactly the one tested. Returns false if the child ended before that happened.
 */
export async function freezeWhen(child: ChildProcess, when: () => boolean): Promise<boolean> {
  for (;;) {
    while (!hasExited(child) && !when()) await sleep(1);
    if (hasExited(child)) return false;
    child.kill('SIGSTOP');
    if (when()) return true;
    child.kill('SIGCONT');
  }
}
