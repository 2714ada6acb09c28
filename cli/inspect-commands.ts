// Commands that look at one image, in the store or (with --remote) in its registry without
// storing anything: inspect (the graph) and referrers (what signs or describes it). A reference
// is read from the store unless --remote is given: no command reaches the network by surprise,
// and an image missing from the store stays a failure (exit 1) with a hint to add --remote.
import { GadgetError, usageError } from '../lib/errors.js';
import { ANN_REF_NAME } from '../lib/oci/mediatypes.js';
import type { Target } from '../lib/oci/target.js';
import type { Descriptor } from '../lib/oci/types.js';
import { formatSize, printable, shortDigest } from '../lib/format.js';
import { checkStoreRefs, type ParsedArgs } from './args.js';
import type { Command } from './command.js';
import type { CommandEnv } from './env.js';
import { readerPool, REGISTRY_OPTIONS } from './sync-commands.js';

const LOOK_OPTIONS = {
  remote: { type: 'boolean' as const, description: 'read REF from its registry (through the configured mirrors), not the store; nothing is stored' },
  ...REGISTRY_OPTIONS,
};

interface OpenedImage {
  target: Target;
  /** The reference as shown: the store key, or the full remote reference. */
  ref: string;
  descriptor: Descriptor;
  /** Set when read from a registry mirror instead of the reference's own registry. */
  via?: string;
  /** The store, when read from it. */
  store?: import('../store/store.js').Store;
}

async function openImage(env: CommandEnv, input: string, flags: ParsedArgs['flags']): Promise<OpenedImage> {
  if (!flags.remote) {
    for (const f of ['insecure-registry', 'authfile']) if (flags[f] !== undefined) throw usageError(`--${f} goes with --remote`);
    await checkStoreRefs([input]);
    const store = await env.openStore({ create: false });
    try {
      return { target: store, ref: input, descriptor: store.resolveRef(input), store };
    } catch (err) {
      if (err instanceof GadgetError && err.exitCode === 1) {
        throw new GadgetError(err.message, { hint: `add --remote to read it from its registry; ${err.hint ?? 'see `gadget list`'}` });
      }
      throw err;
    }
  }
  const { parseRef } = await import('../lib/oci/reference.js');
  const { resolveThroughMirrors } = await import('../plugins/sync.js');
  const ref = parseRef(input);
  const { pool, config } = await readerPool(env, flags);
  const found = await resolveThroughMirrors(ref, pool, config.registries.mirrors, env.signal);
  const via = found.via.toString() === ref.toString() ? undefined : found.via.toString();
  if (via) env.log.info(`read ${ref} from the mirror ${via}`);
  return { target: found.repository, ref: ref.toString(), descriptor: found.descriptor, via };
}

export const inspectCommand: Command = {
  name: 'inspect',
  usage: 'inspect REF [--remote]',
  summary: 'Show an image: its index, per-platform manifests, config, layers, annotations and signatures. From the store, or from its registry with --remote (nothing is stored).',
  options: LOOK_OPTIONS,
  async run(env, { positionals, flags }) {
    if (positionals.length !== 1) throw usageError('inspect takes exactly one REF');
    const image = await openImage(env, positionals[0]!, flags);
    let info;
    if (image.store) {
      const { inspectImage } = await import('../store/inspect.js');
      info = await inspectImage(image.store, positionals[0]!, env.signal);
    } else {
      const { inspectDescriptor } = await import('../lib/oci/inspect.js');
      info = await inspectDescriptor(image.target, image.ref, image.descriptor, env.signal);
    }
    // What is missing is shown, and the command fails: the image cannot be used as it is.
    const missing = info.manifests.filter((m) => m.missing).map((m) => m.descriptor.digest);
    const incomplete = (): number => {
      if (missing.length === 0) return 0;
      process.stderr.write(`error: ${missing.length} manifest${missing.length > 1 ? 's' : ''} of ${info.ref} ${missing.length > 1 ? 'are' : 'is'} missing or damaged (${missing.join(', ')})\nhint: \`gadget fsck\` says what is damaged; pull or import the image again\n`);
      return 1;
    };
    if (env.flags.json) {
      env.printJSON(info);
      return incomplete();
    }
    // Every value that came with the image is printed inert (printable): it cannot fake a line.
    env.print(`${info.ref}`);
    env.print(`  digest      ${info.descriptor.digest}`);
    env.print(`  media type  ${printable(info.descriptor.mediaType)}`);
    for (const [k, v] of Object.entries(info.annotations).sort()) if (k !== ANN_REF_NAME) env.print(`  ${printable(k)}: ${printable(v)}`);
    for (const m of info.manifests) {
      env.print(`  ${printable(m.platform ?? 'manifest')}  ${m.descriptor.digest}${m.missing ? '  (MISSING)' : ''}`);
      if (m.artifactType) env.print(`    artifactType  ${printable(m.artifactType)}`);
      if (m.config) env.print(`    config  ${printable(m.config.mediaType)}  ${shortDigest(m.config.digest)}  ${formatSize(m.config.size)}`);
      for (const l of m.layers) env.print(`    layer   ${printable(l.mediaType)}  ${shortDigest(l.digest)}  ${formatSize(l.size)}`);
    }
    if (info.referrers.length) {
      env.print('  signatures and referrers:');
      for (const r of info.referrers) env.print(`    ${r.tag ?? '(referrers API)'}  ${r.descriptor.digest}  ${printable(r.artifactType ?? r.descriptor.mediaType)}`);
    } else {
      env.print('  signatures: none');
    }
    return incomplete();
  },
};

export const referrersCommand: Command = {
  name: 'referrers',
  aliases: ['discover'],
  usage: 'referrers REF [--remote]',
  summary: 'Show the tree of signatures, attestations and other referrers of an image. Found through the referrers API, the fallback tag sha256-<hex> and cosign\'s .sig/.att tags; in the store, or in its registry with --remote.',
  options: LOOK_OPTIONS,
  async run(env, { positionals, flags }) {
    if (positionals.length !== 1) throw usageError('referrers takes exactly one REF');
    const image = await openImage(env, positionals[0]!, flags);
    const { referrerTree, formatReferrerTree } = await import('../lib/oci/referrer-tree.js');
    const tree = await referrerTree(image.target, image.descriptor, { signal: env.signal });
    if (env.flags.json) {
      env.printJSON({ ref: image.ref, digest: image.descriptor.digest, mediaType: image.descriptor.mediaType, referrers: tree });
      return 0;
    }
    env.print(`${image.ref}  ${image.descriptor.digest}`);
    for (const line of formatReferrerTree(tree)) env.print(line);
    if (tree.length === 0) env.print('  (nothing refers to it)');
    return 0;
  },
};
