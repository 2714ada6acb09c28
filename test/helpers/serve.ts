// `gadget serve` as a real process on 127.0.0.1 at a free port, for tests.
import type { ChildProcess } from 'node:child_process';
import { spawnGadget } from './cli.js';

export interface TestServe {
  host: string;
  url: string;
  child: ChildProcess;
  stderr(): string;
  /** SIGTERM, then waits for the exit; returns the exit code. */
  stop(): Promise<number | null>;
}

export async function startServe(storeDir: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<TestServe> {
  const child = spawnGadget(['--store', storeDir, '--json', 'serve', '--port', '0', ...args], { env });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gadget serve did not start in 30 s: ${stderr}`)), 30_000);
    child.stdout!.on('data', (d) => {
      stdout += d;
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (line && stdout.includes('\n')) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string }).url);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gadget serve exited with ${code}: ${stderr}`));
    });
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    host: new URL(url).host,
    url,
    child,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
