// A plugin context over a fresh store for build tests, with the logs and --json records kept.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { PluginContext } from '../../lib/runner/types.js';
import { openStore } from '../../store/store.js';
import { quietContext } from './context.js';
import { REPO } from './paths.js';

export async function tempDir(t: TestContext, name: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `gadget-${name}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface BuildTestContext extends PluginContext {
  logs: string[];
  records: object[];
}

export async function buildContext(t: TestContext, cwd = REPO): Promise<BuildTestContext> {
  const dir = await tempDir(t, 'store');
  const store = await openStore(path.join(dir, 'store'));
  t.after(() => store.close());
  const logs: string[] = [];
  const records: object[] = [];
  const log = { info: (m: string) => logs.push(`info: ${m}`), warn: (m: string) => logs.push(`warn: ${m}`), debug: () => undefined };
  return { ...quietContext(store, cwd, { log, emit: (r) => records.push(r) }), logs, records };
}

/** Runs `fn` with the environment variable set (or unset), restoring the old value after. */
export async function withEnv<T>(name: string, value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const old = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  try {
    return await fn();
  } finally {
    if (old === undefined) delete process.env[name];
    else process.env[name] = old;
  }
}
