// `gadget verify`: the spec rules, the content, the digests and the signatures of stored
// images. Exit 0 when every image passes, 1 when any fails, 2 for usage errors.
import { resolve } from 'node:path';
import { painter } from '../lib/colour.js';
import { GadgetError, usageError } from '../lib/errors.js';
import type { Command } from './command.js';
import { printable, table } from '../lib/format.js';
import { readerPool, REGISTRY_OPTIONS } from './sync-commands.js';
import type { VerifyReport } from '../plugins/verify.js';
import { KEYLESS_OPTIONS, keylessFlags } from './keyless-options.js';
import { checkStoreRefs } from './args.js';

export const verifyCommand: Command = {
  name: 'verify',
  usage: 'verify [REF... | --all | --remote REF|REPOSITORY|HOST/PREFIX/...] [--profile spec|ig] [--key FILE]... [--trusted-root FILE --certificate-identity ID --certificate-oidc-issuer URL] [--notation-cert FILE]... [--require-signature] [--allow PATTERN]... [--rules]',
  summary: 'Check images against the gadget artifact spec, their content, digests and signatures. Exit 1 when any image fails; `--rules` lists the rules.',
  options: {
    all: { type: 'boolean', description: 'verify every image of the store' },
    profile: { type: 'string', value: 'spec|ig', description: '"spec" (default): the gadget artifact spec; "ig": what Inspektor Gadget builds and runs, differences as warnings' },
    key: { type: 'list', value: 'FILE', description: 'cosign public key (PEM); any key that verifies is enough' },
    ...KEYLESS_OPTIONS,
    'notation-cert': { type: 'list', value: 'FILE', description: 'notation trusted certificate (PEM or DER)' },
    'notation-policy': { type: 'string', value: 'FILE', description: 'notation trust policy (JSON); default: strict, any identity the certificates vouch for' },
    'require-signature': { type: 'boolean', description: 'a missing signature is an error, not a warning' },
    allow: { type: 'list', value: 'PATTERN', description: 'allowed images, as ig\'s --allowed-gadgets: name@sha256:..., name:tag, or a prefix ending in *', default: 'every image' },
    rules: { type: 'boolean', description: 'list every rule with its severity per profile, and exit' },
    remote: { type: 'boolean', description: 'verify images in registries: an image, a repository (every tag) or HOST/PREFIX/ (every repository of the catalog under it); each is fetched with its signatures into a temporary store and deleted after' },
    ...REGISTRY_OPTIONS,
  },
  async run(env, { positionals, flags }) {
    const lib = await import('../plugins/verify.js');
    if (flags.rules) {
      if (positionals.length || flags.all) throw usageError('--rules takes no REF and no --all');
      const rows = lib.ruleRows();
      if (env.flags.json) env.printJSON(rows);
      else {
        env.print(table(['RULE', 'SPEC', 'IG', 'DESCRIPTION'], rows.map((r) => [r.id, r.spec, r.ig, r.description])));
        env.print('\n* an error with --require-signature');
      }
      return 0;
    }
    if (flags.all && positionals.length) throw usageError('give REF... or --all, not both');
    if (flags.remote && (flags.all || positionals.length === 0)) throw usageError('--remote needs REF... (and no --all)');
    if (!flags.all && positionals.length === 0) throw usageError('verify needs REF... or --all', 'e.g. gadget verify trace_exec, or gadget verify --all --json');
    const profile = flags.profile ?? 'spec';
    if (profile !== 'spec' && profile !== 'ig') throw usageError(`--profile ${String(profile)}: expected "spec" or "ig"`);
    const files = (value: unknown): string[] | undefined => (value as string[] | undefined)?.map((f) => resolve(env.cwd, f));

    const options = {
      profile: profile as 'spec' | 'ig',
      keys: files(flags.key),
      notationCerts: files(flags['notation-cert']),
      notationPolicy: typeof flags['notation-policy'] === 'string' ? resolve(env.cwd, flags['notation-policy']) : undefined,
      keyless: keylessFlags(env.cwd, flags),
      requireSignature: Boolean(flags['require-signature']),
      allow: flags.allow as string[] | undefined,
      signal: env.signal,
    };
    const reports: VerifyReport[] = [];
    if (flags.remote) {
      const { verifyRemote } = await import('../plugins/verify/remote.js');
      // The registries of gadget.config.ts too: images are read through its mirrors, as pull reads them.
      const { pool, config } = await readerPool(env, flags);
      let bar: ReturnType<typeof env.progress.start> | undefined;
      try {
        reports.push(...(await verifyRemote(positionals, {
          ...options,
          pool,
          registries: config.registries,
          onPlanned: (total) => (bar = total > 1 ? env.progress.start(total, 'verify') : undefined),
          onReport: (report) => bar?.tick(1, report.ref),
          onVia: (ref, via) => env.log.info(`read ${ref} from the mirror ${via}`), // as inspect --remote says it
        })));
      } finally {
        bar?.done();
      }
      // Every input yields an image or a failed entry of its own; verifying nothing never passes.
      if (reports.length === 0) throw new GadgetError(`no image to verify in ${positionals.join(', ')}`, { hint: `\`gadget tags REPOSITORY --all\` and \`gadget repos REGISTRY/PREFIX\` show what a registry holds` });
    } else {
      if (!flags.all) await checkStoreRefs(positionals);
      const store = await env.openStore({ create: false });
      const total = flags.all ? undefined : positionals.length;
      const artifacts = flags.all ? lib.storeArtifacts(store) : undefined;
      const count = artifacts?.length ?? total!;
      const bar = count > 1 ? env.progress.start(count, 'verify') : undefined;
      const onProgress = (_done: number, _total: number, report: VerifyReport): void => bar?.tick(1, report.ref);
      try {
        // Each reference that names no image fails by itself, named; the others are verified.
        reports.push(...(artifacts ? await lib.verifyArtifacts(store, artifacts, { ...options, onProgress }) : await lib.verifyRefs(store, positionals, { ...options, onProgress })));
      } finally {
        bar?.done();
      }
      // Verifying nothing never passes (checked after the options, so usage errors still come first).
      if (reports.length === 0) throw lib.nothingToVerify(store);
    }
    if (env.flags.json) {
      // Written a report at a time: one encoded string of 10 000 reports costs tens of MB.
      const { summary, images } = lib.reportsJSON(reports, profile);
      const { jsonWithArray, writePieces } = await import('./stream-output.js');
      await writePieces(jsonWithArray({ summary }, 'images', images));
    } else {
      const paint = painter(process.stdout);
      const verdict = (line: string): string => line.replace(/^(PASS|FAIL)\b/, (v) => (v === 'PASS' ? paint.green(v) : paint.red(v)));
      for (const report of reports) for (const line of lib.formatReport(report)) env.print(verdict(line));
      if (reports.length > 1) env.log.info(lib.formatSummary(lib.summarize(reports, profile)));
      // A failure that is not about an image (a remote input that yields none) says what to do.
      for (const r of reports) if (r.hint) process.stderr.write(`error: ${printable(r.findings.find((f) => f.severity === 'error')?.message ?? r.ref)}\nhint: ${r.hint}\n`);
      // -q silences the report, never the names of the images that failed.
      if (env.flags.quiet) {
        for (const r of reports) if (!r.passed && !r.hint) process.stderr.write(`failed: ${r.ref}: ${printable(r.findings.find((f) => f.severity === 'error')?.message ?? 'verification failed')}\n`);
      }
    }
    return reports.every((r) => r.passed) ? 0 : 1;
  },
};
