// `gadget generate-key-pair`, `gadget sign` and `gadget verify-blob`: cosign's commands for
// keys, image signatures and blob bundles, with cosign's flags where they exist.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { GadgetError, usageError } from '../lib/errors.js';
import { checkStoreRefs, parsePairs } from './args.js';
import type { Command } from './command.js';
import type { CommandEnv } from './env.js';
import { KEYLESS_OPTIONS, keylessFlags } from './keyless-options.js';
import { REGISTRY_OPTIONS, syncConfig } from './sync-commands.js';

/** $COSIGN_PASSWORD, else a prompt without echo on a terminal; a usage error otherwise. */
function passwordSource(confirm: boolean): () => Promise<string> {
  return async () => {
    if (process.env.COSIGN_PASSWORD !== undefined) return process.env.COSIGN_PASSWORD;
    if (!process.stdin.isTTY || !process.stderr.isTTY) {
      throw usageError('the key password is needed and $COSIGN_PASSWORD is not set (no terminal to ask on)', 'set COSIGN_PASSWORD (it may be empty)');
    }
    const first = await prompt('Enter password for private key: ');
    if (confirm && (await prompt('Enter password for private key again: ')) !== first) throw usageError('the two passwords differ', 'run it again and type the same password twice');
    return first;
  };
}

function prompt(question: string): Promise<string> {
  return new Promise((done) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    // Echo nothing while the password is typed.
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
      if (s.startsWith(question)) process.stderr.write(question);
    };
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      done(answer);
    });
  });
}

/** Writes a new file, never over an existing one (O_EXCL), with the given mode. */
async function writeNew(file: string, text: string, mode: number): Promise<void> {
  let handle;
  try {
    handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw usageError(`${file} already exists; it is not overwritten.`, 'move it away, or write the pair elsewhere with --output-key-prefix');
    throw new GadgetError(`cannot create ${file}: ${(err as Error).message}`, { exitCode: 2, hint: 'write the key pair into a folder that exists and that you may write to', cause: err });
  }
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export const generateKeyPairCommand: Command = {
  name: 'generate-key-pair',
  usage: 'generate-key-pair [--output-key-prefix NAME]',
  summary: 'Write a cosign key pair: NAME.key (encrypted with $COSIGN_PASSWORD or a prompted password, mode 0600) and NAME.pub. Existing files are never overwritten.',
  options: {
    'output-key-prefix': { type: 'string', value: 'NAME', description: 'file name prefix (default "cosign")' },
  },
  async run(env, { positionals, flags }) {
    if (positionals.length > 0) throw usageError('generate-key-pair takes no arguments');
    const prefix = resolve(env.cwd, typeof flags['output-key-prefix'] === 'string' ? flags['output-key-prefix'] : 'cosign');
    const keyFile = `${prefix}.key`;
    const pubFile = `${prefix}.pub`;
    const { generateCosignKeyPair } = await import('../lib/signature/private-keys.js');
    const { privatePem, publicPem } = generateCosignKeyPair(await passwordSource(true)());
    await writeNew(keyFile, privatePem, 0o600);
    try {
      await writeNew(pubFile, publicPem, 0o644);
    } catch (err) {
      const { rm } = await import('node:fs/promises');
      await rm(keyFile, { force: true });
      throw err;
    }
    if (env.flags.json) env.printJSON({ privateKey: keyFile, publicKey: pubFile });
    else env.print(`Private key written to ${keyFile}\nPublic key written to ${pubFile}`);
    return 0;
  },
};

async function remoteSign(env: CommandEnv, refs: string[], flags: Record<string, unknown>, signers: import('../plugins/sign.js').Signers) {
  const { parseRef } = await import('../lib/oci/reference.js');
  const { createPool } = await import('../plugins/sync.js');
  const { signDescriptor } = await import('../plugins/sign.js');
  const config = await syncConfig(env, false);
  const pool = createPool({
    registries: config.registries,
    insecure: flags['insecure-registry'] as string[] | undefined,
    authfile: typeof flags.authfile === 'string' ? resolve(env.cwd, flags.authfile) : undefined,
  });
  const results = [];
  for (const input of refs) {
    const ref = parseRef(input);
    const repo = pool.repository(ref, 'destination');
    const subject = await repo.resolve(ref.reference, env.signal);
    results.push(...(await signDescriptor(repo, subject, ref.toString(), signers)));
  }
  return results;
}

export const signCommand: Command = {
  name: 'sign',
  usage: 'sign REF... [--key cosign.key] [--format legacy|bundle] [--annotation K=V]... [--notation-key KEY --notation-cert CHAIN] [--remote]',
  summary: 'Sign images on their index digest, as ig verifies them: cosign\'s legacy .sig tag (default) or a Sigstore bundle referrer, and/or a notation signature. Signing again adds a signature; the same key and payload twice changes nothing.',
  options: {
    key: { type: 'string', value: 'FILE', description: 'cosign private key (cosign.key, password from $COSIGN_PASSWORD or a prompt; or a PEM private key)' },
    format: { type: 'string', value: 'legacy|bundle', description: '"legacy" (default): the sha256-<hex>.sig tag; "bundle": a Sigstore bundle v0.3 referrer' },
    annotation: { type: 'list', value: 'K=V', description: 'an annotation on the signature (cosign: in the signed payload)' },
    'notation-key': { type: 'string', value: 'FILE', description: 'notation signing key (PEM)' },
    'notation-cert': { type: 'string', value: 'FILE', description: 'its certificate chain (PEM, the signing certificate first)' },
    remote: { type: 'boolean', description: 'REF... are in a registry: sign them there (nothing is stored)' },
    ...REGISTRY_OPTIONS,
  },
  async run(env, { positionals, flags }) {
    if (positionals.length === 0) throw usageError('sign needs REF...', 'e.g. gadget sign myorg/trace_open:v1 --key cosign.key');
    const { loadSigners, signImages } = await import('../plugins/sign.js');
    const { refuseKeyText } = await import('../lib/signature/private-keys.js');
    // Key text given where a path belongs is refused before it becomes part of a path.
    const file = (name: string): string | undefined => (typeof flags[name] === 'string' ? resolve(env.cwd, name === 'notation-cert' ? (flags[name] as string) : refuseKeyText(flags[name] as string, env.cwd)) : undefined);
    const options = {
      key: file('key'),
      format: (flags.format as 'legacy' | 'bundle' | undefined) ?? 'legacy',
      annotations: parsePairs(flags.annotation as string[] | undefined, 'annotation'),
      notationKey: file('notation-key'),
      notationCert: file('notation-cert'),
      password: passwordSource(false),
    };
    if (!flags.remote) await checkStoreRefs(positionals);
    const results = flags.remote
      ? await remoteSign(env, positionals, flags, await loadSigners(options))
      : await signImages(await env.openStore({ create: false }), positionals, options);
    if (env.flags.json) env.printJSON({ signatures: results });
    else for (const r of results) env.print(`${r.action === 'signed' ? 'signed' : 'already signed'}  ${r.ref}  ${r.digest}  ${r.format}  ${r.signature}`);
    return 0;
  },
};

export const verifyBlobCommand: Command = {
  name: 'verify-blob',
  usage: 'verify-blob FILE --bundle B (--key FILE... | --trusted-root FILE --certificate-identity[-regexp] ID --certificate-oidc-issuer[-regexp] URL)',
  summary: 'Verify a Sigstore bundle over any file, offline, as cosign verify-blob does: with a public key, or keyless against a trusted root and the signer\'s identity and issuer. Exit 1 when it does not verify.',
  options: {
    bundle: { type: 'string', value: 'FILE', description: 'the Sigstore bundle (.sigstore.json)' },
    key: { type: 'list', value: 'FILE', description: 'public key (PEM); any that verifies is enough' },
    ...KEYLESS_OPTIONS,
  },
  async run(env, { positionals, flags }) {
    if (positionals.length !== 1) throw usageError('verify-blob takes exactly one FILE', 'e.g. gadget verify-blob sbom.json --bundle sbom.sigstore.json --key cosign.pub');
    if (typeof flags.bundle !== 'string') throw usageError('verify-blob needs --bundle FILE');
    const { verifyBlob } = await import('../lib/signature/blob.js');
    const verdict = await verifyBlob(resolve(env.cwd, positionals[0]!), resolve(env.cwd, flags.bundle), {
      keys: (flags.key as string[] | undefined)?.map((k) => resolve(env.cwd, k)),
      ...keylessFlags(env.cwd, flags),
    });
    if (env.flags.json) env.printJSON(verdict);
    else if (verdict.verified) env.print(`Verified OK: ${verdict.reason}`);
    else process.stderr.write(`error: ${verdict.reason}\nhint: rule ${verdict.rule ?? 'GADGET-SIGNATURE-INVALID'}; check the file, the bundle and the key, root or identity given\n`);
    return verdict.verified ? 0 : 1;
  },
};
