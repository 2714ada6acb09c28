// `gadget annotate`: change the annotations of stored images; prints every old and new digest.
import { usageError } from '../lib/errors.js';
import { checkStoreRefs } from './args.js';
import type { Command } from './command.js';
import type { CommandEnv } from './env.js';
import { shortDigest } from '../lib/format.js';
import type { AnnotateResult } from '../plugins/annotate.js';

function show(value: string | null): string {
  return value === null ? '(absent)' : JSON.stringify(value);
}

function printResult(env: CommandEnv, r: AnnotateResult): void {
  if (!r.changed && r.tagged.length === 0) {
    env.print(`${r.ref}  ${r.old.digest}  unchanged`);
    return;
  }
  env.print(`${r.ref}${r.changed ? '' : '  unchanged'}${r.dryRun ? '  (dry run: nothing written)' : ''}`);
  const rows: Array<[string, string]> = [[r.kind, r.changed ? `${r.old.digest} -> ${r.new.digest}` : `${r.old.digest} (same)`]];
  if (r.kind === 'index') {
    for (const m of r.manifests) {
      const state = m.changed ? `${m.old.digest} -> ${m.new.digest}` : `${m.old.digest} (${m.selected ? 'same' : 'not selected'})`;
      rows.push([m.platform ?? 'manifest', state]);
    }
  }
  const configs = new Set(r.manifests.filter((m) => m.changed && m.config).map((m) => m.config!.digest));
  for (const c of configs) rows.push(['config', `${c} (blob kept)`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) env.print(`  ${k.padEnd(width)}  ${v}`);

  // One line per key and value change, with the places it happens.
  const byChange = new Map<string, { key: string; from: Set<string>; to: string | null; at: string[] }>();
  for (const d of r.diffs) {
    const id = `${d.key}\0${d.to ?? '\0'}`;
    const entry = byChange.get(id) ?? { key: d.key, from: new Set<string>(), to: d.to, at: [] };
    entry.from.add(show(d.from));
    entry.at.push(d.at);
    byChange.set(id, entry);
  }
  for (const c of byChange.values()) {
    const verb = c.to === null ? `unset ${c.key}` : `set ${c.key} = ${show(c.to)}`;
    env.print(`  ${verb}  (was ${[...c.from].join(' / ')}; ${c.at.length} place${c.at.length > 1 ? 's' : ''}: ${c.at.join(', ')})`);
  }
  for (const t of r.tagged) env.print(`  tag ${t} ${r.dryRun ? 'would point' : 'now points'} at ${r.new.digest}`);
  if (r.tagged.length && !r.tagged.includes(r.ref)) env.print(`  ${r.ref} still points at ${r.old.digest}`);
  for (const n of r.notes) env.print(`  note: ${n}`);
  if (r.staleSignatures.length) {
    env.print(`  signatures of the old digests that ${r.dryRun ? 'would no longer apply' : 'no longer apply'} (not carried over; sign ${r.new.digest} again):`);
    for (const s of r.staleSignatures) {
      env.print(`    ${s.kind}  ${s.digest}  (${s.via})  signs ${shortDigest(s.subject)}`);
    }
  }
}

export const annotateCommand: Command = {
  name: 'annotate',
  usage: 'annotate REF|--all PATTERN [--set K=V]... [--unset K]... [--level L]... [--platform ARCH] [--from-metadata] [-t NEWREF] [--dry-run]',
  summary:
    'Change the annotations of stored images without touching their content: new manifest and index digests, config and layer blobs kept, the tag moved to the new index (or -t NEWREF tagged). Signatures of the old digests are listed, not carried over.',
  options: {
    set: { type: 'list', value: 'K=V', description: 'set an annotation' },
    unset: { type: 'list', value: 'K', description: 'remove an annotation' },
    level: { type: 'list', value: 'L', description: 'index, manifest (the manifest and its index entry) or config (its descriptor); default: all three (manifest and config with --platform)' },
    platform: { type: 'string', value: 'ARCH', description: 'change only the amd64 or arm64 manifest', default: 'both' },
    'from-metadata': { type: 'boolean', description: "set title, description, url, documentation and source from the image's gadget.yaml" },
    all: { type: 'string', value: 'PATTERN', description: 'every stored image whose reference matches the glob (as `gadget list PATTERN`)' },
    tag: { type: 'string', short: 't', value: 'NEWREF', description: 'tag the new image NEWREF and leave REF where it was' },
    'dry-run': { type: 'boolean', description: 'show what would change, write nothing' },
  },
  async run(env, { positionals, flags }) {
    const { annotateAll, annotateImage, parseLevels, parsePlatform, parseSetPairs } = await import('../plugins/annotate.js');
    const all = flags.all as string | undefined;
    if (all !== undefined && positionals.length > 0) throw usageError('annotate takes either REF or --all PATTERN, not both');
    if (all === undefined && positionals.length !== 1) throw usageError('annotate takes exactly one REF (or --all PATTERN)', 'e.g. gadget annotate myorg/trace_exec:v1 --set org.opencontainers.image.url=https://example.com');
    if (all !== undefined && flags.tag !== undefined) throw usageError('annotate --all cannot take -t: one reference cannot name several images');
    const change = {
      set: parseSetPairs((flags.set as string[] | undefined) ?? []),
      unset: (flags.unset as string[] | undefined) ?? [],
      fromMetadata: Boolean(flags['from-metadata']),
    };
    const opts = {
      levels: parseLevels(flags.level as string[] | undefined),
      platform: parsePlatform(flags.platform as string | undefined),
      dryRun: Boolean(flags['dry-run']),
      signal: env.signal,
    };
    if (all === undefined) await checkStoreRefs(positionals);
    const store = await env.openStore({ create: false });
    if (all !== undefined) {
      let bar: ReturnType<typeof env.progress.start> | undefined;
      const results = await annotateAll(store, all, change, { ...opts, onProgress: (_done, total, ref) => (bar ??= env.progress.start(total, 'annotate')).tick(1, ref) });
      bar?.done();
      if (env.flags.json) env.printJSON({ pattern: all, images: results });
      else {
        for (const r of results) printResult(env, r);
        const changed = results.filter((r) => r.changed).length;
        env.print(`${results.length} images: ${changed} ${opts.dryRun ? 'would change' : 'changed'}, ${results.length - changed} unchanged`);
      }
      return 0;
    }
    const result = await annotateImage(store, positionals[0]!, change, { ...opts, tag: flags.tag as string | undefined });
    if (env.flags.json) env.printJSON(result);
    else printResult(env, result);
    return 0;
  },
};
