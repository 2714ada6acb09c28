// `--watch` for `gadget build` and `gadget run`: the command again after every change to what
// it read, one line per round. The build cache makes a round rebuild only the gadgets whose
// inputs changed; the others are reused.
import { relative, resolve } from 'node:path';
import { painter } from '../lib/colour.js';
import { isGadgetError, messageOf } from '../lib/errors.js';
import { watchLoop } from '../lib/runner/watch.js';
import type { CommandEnv } from './env.js';

interface BuildRecord {
  type?: string;
  ref?: string;
  cached?: boolean;
  inputs?: string[];
}

function clock(): string {
  return new Date().toTimeString().slice(0, 8);
}

/** The paths a round depends on: the config and the project files it loads, the gadgets' folders, and the files builds read. */
async function watchedPaths(env: CommandEnv, extra: string[]): Promise<string[]> {
  const paths = [...extra];
  try {
    const { file, dir, config, files } = await env.config();
    if (file) paths.push(file, ...(files ?? []));
    for (const g of config.gadgets ?? []) if (typeof g?.dir === 'string') paths.push(resolve(dir, g.dir));
  } catch {
    // A config that does not load: the round reported it; watch it, and what it read, for the fix.
    const { findConfig, lastConfigFiles } = await import('../lib/runner/config.js');
    const file = findConfig(env.cwd, env.flags.config);
    if (file) paths.push(file, ...lastConfigFiles());
  }
  for (const r of env.records as BuildRecord[]) paths.push(...(r.inputs ?? []));
  return paths;
}

/** A message of several lines (clang's output) as its first line and its first error line. */
function oneLine(message: string): string {
  const lines = message.split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length <= 1) return lines[0] ?? '';
  const error = lines.slice(1).find((l) => /\berror\b/.test(l)) ?? lines[1]!;
  return `${lines[0]} ${error} (...)`;
}

export async function watching(env: CommandEnv, runOnce: () => Promise<number>, extra: string[] = []): Promise<number> {
  const paint = painter(process.stdout);
  const shown = (f: string): string => relative(env.cwd, f) || f;
  // Every round reads the config afresh when it or a file it loads changed; the first one too,
  // so that the files it loads are known.
  env.forgetConfig();
  let configFiles = new Set<string>();
  // A failed round may not reach what the last good one read (a header clang never got to):
  // those stay watched, so that the fix starts a round.
  let lastGood: string[] = [];
  await watchLoop(
    async (changed) => {
      if (changed.some((f) => configFiles.has(f))) env.forgetConfig();
      env.records.length = 0;
      const started = Date.now();
      const cause = changed.length ? `${shown(changed[0]!)}${changed.length > 1 ? ` and ${changed.length - 1} more` : ''} changed: ` : '';
      env.muted = true;
      let line: string;
      let ok = false;
      try {
        const code = await runOnce();
        ok = code === 0;
        const builds = (env.records as BuildRecord[]).filter((r) => r.type === 'build');
        const rebuilt = builds.filter((r) => r.cached === false).map((r) => r.ref!);
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        const what = rebuilt.length ? `rebuilt ${rebuilt.join(', ')}` : 'nothing to rebuild';
        line = `${code === 0 ? paint.green('ok') : paint.red('failed')} ${cause}${what}; ${builds.length - rebuilt.length} unchanged (${seconds} s)`;
      } catch (err) {
        if (env.signal.aborted) return { paths: [], report: () => undefined };
        const hint = isGadgetError(err) && err.hint ? ` (${err.hint})` : '';
        line = `${paint.red('failed')} ${cause}${oneLine(messageOf(err))}${hint}`;
      } finally {
        env.muted = false;
      }
      const { findConfig, lastConfigFiles } = await import('../lib/runner/config.js');
      const configFile = findConfig(env.cwd, env.flags.config);
      const loaded = await env.config().catch(() => undefined);
      configFiles = new Set([...(configFile ? [configFile] : []), ...(loaded?.files ?? lastConfigFiles())]);
      const report = `${clock()} ${line}`;
      const paths = await watchedPaths(env, extra);
      if (ok) lastGood = paths;
      return { paths: ok ? paths : [...new Set([...paths, ...lastGood])], report: () => env.print(report) };
    },
    { signal: env.signal },
  );
  return 0;
}
