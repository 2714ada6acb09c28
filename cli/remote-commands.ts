// Commands that list what a registry holds, without a store: tags (of a repository, read through
// the registry mirrors of gadget.config.ts as pull reads) and repos (the catalog of a registry,
// or the part of it under a prefix: the registry named, a catalog is not mirrored).
import { usageError } from '../lib/errors.js';
import type { Command } from './command.js';
import { readerPool, REGISTRY_OPTIONS } from './sync-commands.js';

export const tagsCommand: Command = {
  name: 'tags',
  usage: 'tags REPOSITORY [--all]',
  summary: 'List the tags of a remote repository. Every page, sorted; signature tags (sha256-<hex>[.sig|.att|.sbom]) only with --all.',
  options: {
    all: { type: 'boolean', description: 'also list signature and referrer tags' },
    ...REGISTRY_OPTIONS,
  },
  async run(env, { positionals, flags }) {
    if (positionals.length !== 1) throw usageError('tags takes exactly one REPOSITORY', 'e.g. gadget tags ghcr.io/inspektor-gadget/gadget/trace_exec');
    const { parseRef, isSignatureTag } = await import('../lib/oci/reference.js');
    const { hasExplicitVersion } = await import('../plugins/sync/plan.js');
    // Parsed first: it refuses credentials (user:pass@host) without quoting them.
    const ref = parseRef(positionals[0]!);
    if (hasExplicitVersion(positionals[0]!)) throw usageError(`tags takes a repository, not an image: ${positionals[0]}`, 'leave out the :tag or @digest');
    // Through registries.mirrors, by the route pull reads an image of it: the tags listed are
    // those `gadget pull` and `verify --remote` can read (air-gapped: the mirror's).
    const { pool, config } = await readerPool(env, flags);
    const { listTagsThroughMirrors } = await import('../plugins/sync/resolve.js');
    const listed = await listTagsThroughMirrors(ref, pool, config.registries.mirrors, env.signal);
    const tags = listed.tags.filter((t) => flags.all || !isSignatureTag(t)).sort();
    if (listed.via) env.log.info(`listed the tags of ${ref.name} from the mirror ${listed.via}`);
    if (env.flags.json) env.printJSON(listed.via ? { repository: ref.name, tags, via: listed.via } : { repository: ref.name, tags });
    else for (const t of tags) env.print(t);
    return 0;
  },
};

export const reposCommand: Command = {
  name: 'repos',
  usage: 'repos REGISTRY[/PREFIX]',
  summary: 'List the repositories of a registry, or those under PREFIX. From the catalog, every page; PREFIX means PREFIX itself and PREFIX/....',
  options: REGISTRY_OPTIONS,
  async run(env, { positionals, flags }) {
    if (positionals.length !== 1) throw usageError('repos takes exactly one REGISTRY[/PREFIX]', 'e.g. gadget repos registry.internal:5000/mirror');
    const { refuseCredentials } = await import('../lib/oci/reference.js');
    refuseCredentials(positionals[0]!, 'registry'); // before anything quotes the argument
    const text = positionals[0]!.replace(/^[a-z]+:\/\//i, '');
    const slash = text.indexOf('/');
    const registry = slash < 0 ? text : text.slice(0, slash);
    const prefix = slash < 0 ? '' : text.slice(slash + 1).replace(/\*$/, '');
    const { parseRef } = await import('../lib/oci/reference.js');
    if (!/[.:]/.test(registry) && registry !== 'localhost') throw usageError(`"${positionals[0]}" must start with a registry host (e.g. ghcr.io or 127.0.0.1:5000)`);
    parseRef(`${registry}/x`); // checks the host
    const { pool } = await readerPool(env, flags);
    const names = await pool.catalog(registry, prefix.replace(/\/+$/, ''), env.signal);
    // "mirror" means the repository mirror and those under mirror/, not "mirrored".
    const base = prefix.replace(/\/+$/, '');
    const repositories = prefix.endsWith('/') || base === '' ? names.filter((n) => n.startsWith(prefix)) : names.filter((n) => n === base || n.startsWith(`${base}/`));
    if (env.flags.json) env.printJSON({ registry, prefix, repositories });
    else for (const r of repositories) env.print(`${registry}/${r}`);
    return 0;
  },
};
