// Commands that use gadget.config.ts: run, tasks, and build (which also works without it).
import { resolve } from 'node:path';
import { usageError } from '../lib/errors.js';
import { parsePairs } from './args.js';
import type { Command } from './command.js';
import { watching } from './watch.js';

export const runCommand: Command = {
  name: 'run',
  usage: 'run TASK [--watch]',
  summary: 'Run a task of gadget.config.ts (and the tasks it depends on).',
  options: {
    watch: { type: 'boolean', description: 'run again whenever a gadget\'s source, header, gadget.yaml, build.yaml or the config changes; Ctrl-C ends it' },
  },
  async run(env, args) {
    const { positionals, flags } = args;
    if (positionals.length !== 1) throw usageError('run takes exactly one TASK', 'see `gadget tasks`');
    if (flags.watch) return watching(env, () => runCommand.run(env, { positionals, flags: { ...flags, watch: undefined } }));
    const { runTask } = await import('../lib/runner/tasks.js');
    const ctx = await env.pluginContext();
    const artifacts = await runTask(ctx, positionals[0]!);
    if (env.flags.json) env.printJSON({ task: positionals[0], artifacts, records: env.records });
    else for (const a of artifacts) env.print(`${a.ref}  ${a.descriptor.digest}`);
    return 0;
  },
};

export const tasksCommand: Command = {
  name: 'tasks',
  usage: 'tasks',
  summary: 'List the tasks of gadget.config.ts with their descriptions.',
  options: {},
  async run(env) {
    const { config, file } = await env.config();
    if (!file) throw usageError(`no gadget.config.ts in ${env.cwd}`, 'create one with `export default defineConfig({ tasks: { ... } })`');
    const { taskDefinition } = await import('../lib/runner/tasks.js');
    const rows = Object.keys(config.tasks ?? {}).map((name) => {
      const def = taskDefinition(config, name);
      return { name, description: def.description ?? '', dependsOn: def.dependsOn ?? [], steps: def.steps.map((s) => s.name) };
    });
    if (env.flags.json) env.printJSON(rows);
    else for (const r of rows) env.print(`${r.name.padEnd(16)} ${r.description}${r.dependsOn.length ? `  (after ${r.dependsOn.join(', ')})` : ''}  [${r.steps.join(' -> ')}]`);
    return 0;
  },
};

export const buildCommand: Command = {
  name: 'build',
  usage: 'build [DIR] -t REF [--include DIR]... [--btfgen --btfhub DIR] [--no-validate-metadata] [--annotation K=V]... [--ig-version V] [--no-cache]',
  summary: 'Build one gadget for amd64 and arm64 from DIR (build.yaml, or program.bpf.c / gadget.yaml / *.wasm) into the store.',
  options: {
    tag: { type: 'list', short: 't', value: 'REF', description: 'a reference to tag the image with (a tag, not a digest)' },
    annotation: { type: 'list', value: 'K=V', description: 'an extra annotation, applied last' },
    'ig-version': { type: 'string', value: 'V', description: 'the ig version the gadget targets (builder.version annotation)', default: "the config's igVersion, else gadget-oci/<version>" },
    'no-cache': { type: 'boolean', description: 'rebuild even when the inputs have not changed' },
    watch: { type: 'boolean', description: 'build again whenever a source, header, gadget.yaml or build.yaml changes; Ctrl-C ends it' },
    include: { type: 'list', value: 'DIR', description: "a header folder like ig's /usr/include: adds -I DIR and -I DIR/gadget/<arch> (also $GADGET_INCLUDE, DIR:DIR)" },
    btfgen: { type: 'boolean', description: 'add a btfgen layer of minimised kernel BTF (needs --btfhub)' },
    btfhub: { type: 'string', value: 'DIR', description: 'a btfhub-archive-like folder for --btfgen' },
    'no-validate-metadata': { type: 'boolean', description: 'skip checking gadget.yaml against the eBPF object (params, maps, structs)' },
  },
  async run(env, { positionals, flags }) {
    if (positionals.length > 1) throw usageError('build takes at most one DIR');
    if (flags.watch) return watching(env, () => buildCommand.run(env, { positionals, flags: { ...flags, watch: undefined } }), [resolve(env.cwd, positionals[0] ?? '.')]);
    const tags = (flags.tag as string[] | undefined) ?? [];
    if (tags.length === 0) throw usageError('build needs -t REF', 'e.g. gadget build examples/trace_open -t myorg/trace_open:v1');
    if (flags.btfgen && typeof flags.btfhub !== 'string') throw usageError('--btfgen needs --btfhub DIR', 'e.g. gadget build . -t x --btfgen --btfhub ../btfhub-archive');
    if (!flags.btfgen && typeof flags.btfhub === 'string') throw usageError('--btfhub is used only with --btfgen', 'add --btfgen to make the btfgen layer');
    const { buildGadget } = await import('../plugins/build.js');
    const ctx = await env.pluginContext();
    const spec = { dir: resolve(env.cwd, positionals[0] ?? '.'), ref: tags[0]!, ...(flags.btfgen ? { btfhub: resolve(env.cwd, flags.btfhub as string) } : {}) };
    const result = await buildGadget(ctx, spec, {
      alsoTag: tags.slice(1),
      include: (flags.include as string[] | undefined)?.map((d) => resolve(env.cwd, d)),
      validateMetadata: !flags['no-validate-metadata'],
      igVersion: typeof flags['ig-version'] === 'string' ? flags['ig-version'] : ctx.config.igVersion,
      annotations: parsePairs(flags.annotation as string[] | undefined, 'annotation'),
      noCache: Boolean(flags['no-cache']),
    });
    ctx.emit({ type: 'build', ref: result.ref, digest: result.descriptor.digest, cached: result.cached, inputs: result.inputs });
    if (env.flags.json) env.printJSON(result);
    else for (const ref of result.refs ?? [result.ref]) env.print(`${ref}  ${result.descriptor.digest}${result.cached ? '  (unchanged, reused)' : ''}`);
    return 0;
  },
};
