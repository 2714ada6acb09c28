// Commands on the store itself: list, tag, rm, gc, fsck, import, export (inspect-commands.ts: inspect).
import { usageError } from '../lib/errors.js';
import { ANN_REF_NAME } from '../lib/oci/mediatypes.js';
import { checkStoreRefs, parseTags } from './args.js';
import type { Command } from './command.js';
import { formatSize, shortDigest, table } from '../lib/format.js';

export const listCommand: Command = {
  name: 'list',
  aliases: ['ls'],
  usage: 'list [PATTERN] [--jsonl]',
  summary: 'List the images in the store, optionally those whose reference matches a glob (e.g. "*trace*"). With --json (one array) or --jsonl (a line each), records are written as they are read.',
  options: {
    jsonl: { type: 'boolean', description: 'JSON lines: one record per line, streamed' },
  },
  async run(env, { positionals, flags }) {
    if (positionals.length > 1) throw usageError('list takes at most one PATTERN');
    if (flags.jsonl && env.flags.json) throw usageError('give --json (one array) or --jsonl (one record per line), not both');
    const store = await env.openStore({ create: false });
    const pattern = positionals[0];
    if (pattern !== undefined && !store.matchesAny(pattern)) {
      const { matchedNothing } = await import('../store/patterns.js');
      throw matchedNothing(pattern);
    }
    if (env.flags.json || flags.jsonl) {
      const { jsonArray, jsonLines, writePieces } = await import('./stream-output.js');
      const records = store.listJSON(positionals[0]);
      await writePieces(flags.jsonl ? jsonLines(records) : jsonArray(records));
      return 0;
    }
    const images = store.list(positionals[0]);
    env.print(
      table(
        ['REFERENCE', 'DIGEST', 'PLATFORMS', 'SIZE', 'CREATED'],
        images.map((i) => [i.ref, shortDigest(i.digest), i.platforms.map((p) => p.replace('linux/', '')).join(',') || '-', formatSize(i.size), i.created ?? '-']),
      ),
    );
    return 0;
  },
};

export const tagCommand: Command = {
  name: 'tag',
  usage: 'tag SRC [DST] [--tag TAG]...',
  summary: 'Give a stored image another reference: DST, and TAG in DST\'s repository (else SRC\'s) for each --tag. All in one index.json update.',
  options: { tag: { type: 'list', value: 'TAG', description: 'also tag the image TAG in DST\'s repository (or SRC\'s without DST)' } },
  async run(env, { positionals, flags }) {
    const tags = parseTags(flags.tag, 'tag');
    if (positionals.length < 1 || positionals.length > 2 || (positionals.length === 1 && tags.length === 0)) {
      throw usageError('tag takes SRC and DST, or SRC and --tag TAG', 'e.g. gadget tag myorg/x:v1 registry.internal:5000/x:v1 --tag latest');
    }
    const { storeKey } = await import('../store/store.js');
    const { isSignatureTag, parseRef } = await import('../lib/oci/reference.js');
    const [src, dst] = positionals as [string, string | undefined];
    // A tag is what DST gives: a digest there would be a tag that lies about its image, and a
    // signature's name would hide an image among signatures.
    if (dst !== undefined) {
      if (/^sha256:/.test(dst)) throw usageError(`tag ${dst}: DST names a tag, not a digest`, `e.g. gadget tag ${src} myorg/x:v1`);
      const target = isSignatureTag(dst) ? undefined : parseRef(dst);
      if (target?.digest !== undefined) throw usageError(`tag ${dst}: DST names a tag, not a digest`, `e.g. gadget tag ${src} ${target.name}:v1`);
      if (target === undefined || isSignatureTag(target.tag ?? '')) throw usageError(`tag ${dst}: that is how signatures are tagged, not images`, 'give the image a tag of its own');
    }
    for (const t of tags) if (isSignatureTag(t)) throw usageError(`--tag ${t}: that is how signatures are tagged, not images`, 'give the image a tag of its own');
    // The repository the --tag values name: DST's, else SRC's (a digest has none).
    const base = dst ?? src;
    if (!dst && /^sha256:/.test(src)) throw usageError(`tag ${src}: a bare digest has no repository for --tag; give DST`);
    const repository = parseRef(base);
    const refs = [...new Set([...(dst ? [storeKey(dst)] : []), ...tags.map((t) => storeKey(repository.withTag(t).toString()))])];
    await checkStoreRefs([src]);
    const store = await env.openStore({ create: false });
    const descriptor = store.resolveRef(src);
    const { annotations, ...rest } = descriptor;
    const kept = { ...(annotations ?? {}) };
    delete kept[ANN_REF_NAME];
    const plain = Object.keys(kept).length ? { ...rest, annotations: kept } : rest;
    await store.tagMany(refs.map((ref) => ({ ref, descriptor: plain })));
    if (env.flags.json) env.printJSON({ ref: refs[0], refs, digest: descriptor.digest });
    else for (const ref of refs) env.print(`${ref} -> ${descriptor.digest}`);
    return 0;
  },
};

export const rmCommand: Command = {
  name: 'rm',
  aliases: ['remove'],
  usage: 'rm REF...',
  summary: 'Remove tags (content stays until `gadget gc`).',
  options: {},
  async run(env, { positionals }) {
    if (positionals.length === 0) throw usageError('rm needs at least one REF');
    await checkStoreRefs(positionals);
    const removed = await (await env.openStore({ create: false })).untag(positionals);
    if (env.flags.json) env.printJSON({ removed });
    else for (const r of removed) env.print(`untagged ${r}`);
    return 0;
  },
};

export const gcCommand: Command = {
  name: 'gc',
  usage: 'gc [--dry-run] [--grace SECONDS]',
  summary: 'Delete what no tag and no signature reaches. Blobs younger than --grace stay (another process may be about to tag them).',
  options: {
    'dry-run': { type: 'boolean', description: 'say what would be removed, remove nothing' },
    grace: { type: 'string', value: 'SECONDS', description: 'keep unreferenced blobs younger than this (default 300)' },
  },
  async run(env, { flags }) {
    // An empty value (`--grace "$UNSET"`) is not 0: it would remove what other writers are about to tag.
    const grace = flags.grace === undefined ? 300 : /^\s*\d+(\.\d+)?\s*$/.test(String(flags.grace)) ? Number(flags.grace) : NaN;
    if (!Number.isFinite(grace) || grace < 0) throw usageError(`--grace ${JSON.stringify(String(flags.grace))}: expected a number of seconds`, 'e.g. gadget gc --grace 600');
    const { gc } = await import('../store/maintenance.js');
    const result = await gc(await env.openStore({ create: false }), { graceSeconds: grace, dryRun: Boolean(flags['dry-run']) });
    if (env.flags.json) env.printJSON(result);
    else {
      env.print(`${flags['dry-run'] ? 'would remove' : 'removed'} ${result.removedBlobs.length} blobs (${formatSize(result.freedBytes)}) and ${result.removedEntries.length} untagged entries`);
      if (result.removedTemps.length) env.print(`removed ${result.removedTemps.length} temporary files of interrupted writers`);
    }
    return 0;
  },
};

export const fsckCommand: Command = {
  name: 'fsck',
  usage: 'fsck [--repair] [--reindex]',
  summary: 'Re-hash every blob; find dangling tags and missing children (exit 1), and temporary files of interrupted writers (a notice).',
  options: {
    repair: { type: 'boolean', description: 'remove what is broken and say what was removed' },
    reindex: { type: 'boolean', description: 'rebuild the SQLite index from the layout first' },
  },
  async run(env, { flags }) {
    const store = await env.openStore({ create: false });
    if (flags.reindex) store.reindex();
    const { fsckReport } = await import('../store/maintenance.js');
    let bar: ReturnType<typeof env.progress.start> | undefined;
    const { problems, notices } = await fsckReport(store, {
      repair: Boolean(flags.repair),
      onProgress: (_done, total) => (bar ??= env.progress.start(total, 'fsck: hashing blobs')).tick(),
    });
    bar?.done();
    if (env.flags.json) env.printJSON({ store: store.root, problems, notices });
    else {
      for (const n of notices) env.print(`notice: ${n.message}${n.repaired ? ` -- ${n.repaired}` : ''}`);
      if (problems.length === 0) env.print(`${store.root}: no problems found`);
      else for (const p of problems) env.print(`${p.kind}: ${p.message}${p.repaired ? ` -- ${p.repaired}` : ''}`);
    }
    return problems.some((p) => !flags.repair || p.lasting) ? 1 : 0;
  },
};

export const importCommand: Command = {
  name: 'import',
  usage: 'import SRC',
  summary: 'Import every image, tag and signature of an OCI layout folder or tar (e.g. one made by `gadget export` or by ig).',
  options: {},
  async run(env, { positionals }) {
    if (positionals.length !== 1) throw usageError('import takes exactly one SRC (a folder or a .tar)');
    const { importImages } = await import('../store/transfer.js');
    const result = await importImages(await env.storeOnFirstUse(), positionals[0]!, { signal: env.signal, progress: env.progress });
    if (env.flags.json) env.printJSON(result);
    else {
      for (const t of result.tags) env.print(`imported ${t}`);
      for (const s of result.skipped) env.log.warn(`skipped untagged entry ${s}: its content is not in the source`);
      // Failures go to stderr, as sync's do, so that -q and a redirected stdout still show them.
      for (const f of result.failed) process.stderr.write(`failed: ${f.name ?? f.entry}: ${f.error}\n`);
      env.print(`${result.tags.length} tags, ${result.stats.copied} blobs copied (${formatSize(result.stats.bytes)}), ${result.stats.skipped} already present`);
    }
    return result.failed.length ? 1 : 0;
  },
};

export const exportCommand: Command = {
  name: 'export',
  usage: 'export REF... -o FILE.tar',
  summary: 'Write images and their signatures to an OCI layout tar; the same images always give the same bytes.',
  options: { output: { type: 'string', short: 'o', value: 'FILE', description: 'the tar file to write' } },
  async run(env, { positionals, flags }) {
    if (typeof flags.output !== 'string') throw usageError('export needs -o FILE.tar');
    if (positionals.length === 0) throw usageError('export needs at least one REF');
    await checkStoreRefs(positionals);
    const { exportImages } = await import('../store/transfer.js');
    const result = await exportImages(await env.openStore({ create: false }), positionals, flags.output, { signal: env.signal, progress: env.progress });
    if (env.flags.json) env.printJSON(result);
    else env.print(`wrote ${result.file}: ${result.tags.join(', ')}`);
    return 0;
  },
};
