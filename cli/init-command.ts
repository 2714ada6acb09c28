// `gadget init [DIR]`: a new gadget project in one command.
import { resolve } from 'node:path';
import { usageError } from '../lib/errors.js';
import type { Command } from './command.js';

/** `word` as the shell reads it back: quoted when it holds anything but plain path characters. */
function shellWord(word: string): string {
  // A leading dash would be read as an option of cd.
  const safe = word.startsWith('-') ? `./${word}` : word;
  return /^[\w@%+=:,./-]+$/.test(safe) ? safe : `'${safe.replace(/'/g, `'\\''`)}'`;
}

export const initCommand: Command = {
  name: 'init',
  usage: 'init [DIR] [--wasm] [--registry PREFIX]',
  summary: 'Create a gadget project in DIR (default: here): package.json, tsconfig, gadget.config.ts and an eBPF gadget (and a wasm one with --wasm). Never overwrites a file.',
  options: {
    wasm: { type: 'boolean', description: 'also add a wasm-only gadget' },
    registry: { type: 'string', value: 'PREFIX', description: 'the image prefix, REGISTRY[/PATH] (default ghcr.io/<folder name>)' },
  },
  async run(env, { positionals, flags }) {
    if (positionals.length > 1) throw usageError('init takes at most one DIR');
    const { initProject } = await import('../lib/init/project.js');
    const dir = resolve(env.cwd, positionals[0] ?? '.');
    const result = await initProject(dir, { wasm: Boolean(flags.wasm), registry: flags.registry as string | undefined });
    if (env.flags.json) env.printJSON(result);
    else {
      for (const f of result.files) env.print(`created ${f}`);
      env.log.info(`next: cd ${shellWord(positionals[0] || '.')} && npm install && npx gadget run default`);
    }
    return 0;
  },
};
