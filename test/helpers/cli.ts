// Runs the compiled `gadget` command as users and scripts do (node dist/cli/gadget.js).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './paths.js';

export const CLI = join(REPO, 'dist', 'cli', 'gadget.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `killAfterMs`: a hang guard; the result then has signal SIGKILL (never assert on time). */
export function gadget(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; killAfterMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnGadget(args, opts);
    if (opts.killAfterMs !== undefined) {
      const guard = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs);
      child.on('close', () => clearTimeout(guard));
    }
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

export function spawnGadget(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? REPO,
    env: { ...process.env, GADGET_STORE: undefined, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}
