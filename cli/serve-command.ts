// `gadget serve`: the store as an OCI registry with the referrers API, and a page to look at it.
import { resolve } from 'node:path';
import { usageError } from '../lib/errors.js';
import { wholeNumberFlag } from './args.js';
import type { Command } from './command.js';

function size(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)([kmg]i?b?)?$/i.exec(String(value));
  if (!m) throw usageError(`--${flag} ${String(value)}: expected a size such as 512MiB or 2GiB`);
  const unit = (m[2] ?? '').toLowerCase()[0];
  return Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1);
}

export const serveCommand: Command = {
  name: 'serve',
  usage: 'serve [--address ADDR] [--port N] [--read-only] [--htpasswd FILE] [--tls-cert FILE --tls-key FILE]',
  summary: 'Serve the store as an OCI registry (distribution API v1.1 with referrers) and a page at / to look at it, until Ctrl-C or SIGTERM.',
  options: {
    address: { type: 'string', value: 'ADDR', description: 'the address to listen on', default: '127.0.0.1' },
    port: { type: 'string', value: 'N', description: 'the port (0: a free one)', default: '5000' },
    'read-only': { type: 'boolean', description: 'serve pulls only: pushes and deletes answer 405' },
    htpasswd: { type: 'string', value: 'FILE', description: 'every request authenticates against this htpasswd file (bcrypt, as docker-registry)', default: 'no authentication' },
    'tls-cert': { type: 'string', value: 'FILE', description: 'serve HTTPS with this certificate (PEM)', default: 'plain HTTP' },
    'tls-key': { type: 'string', value: 'FILE', description: 'the certificate\'s private key (PEM)' },
    insecure: { type: 'boolean', description: 'allow plain HTTP on an address other than loopback' },
    'max-upload-size': { type: 'string', value: 'SIZE', description: 'the largest blob accepted', default: '16GiB' },
    'max-manifest-size': { type: 'string', value: 'SIZE', description: 'the largest manifest accepted', default: '4MiB' },
    'max-uploads': { type: 'string', value: 'N', description: 'uploads open at once', default: '64' },
  },
  async run(env, { positionals, flags }) {
    if (positionals.length) throw usageError('serve takes no arguments', 'e.g. gadget serve --port 5000');
    const { startServer } = await import('../serve/server.js');
    // A registry that takes pushes writes new content into the store, so it makes a missing
    // one, as pull and import do; a --read-only one only reads it, so it needs one to exist.
    const store = await env.openStore({ create: !flags['read-only'] });
    const path = (v: unknown): string | undefined => (typeof v === 'string' ? resolve(env.cwd, v) : undefined);
    const server = await startServer(store, {
      address: flags.address as string | undefined,
      port: wholeNumberFlag(flags.port, 'port', { min: 0, max: 65535, expected: 'port number' }),
      readOnly: Boolean(flags['read-only']),
      htpasswd: path(flags.htpasswd),
      tlsCert: path(flags['tls-cert']),
      tlsKey: path(flags['tls-key']),
      insecure: Boolean(flags.insecure),
      limits: { uploadBytes: size(flags['max-upload-size'], 'max-upload-size'), manifestBytes: size(flags['max-manifest-size'], 'max-manifest-size'), uploads: wholeNumberFlag(flags['max-uploads'], 'max-uploads') },
      log: env.log,
    });
    if (env.flags.json) env.printJSON({ url: server.url, store: store.root, readOnly: Boolean(flags['read-only']) });
    else env.print(`serving ${store.root} at ${server.url}${flags['read-only'] ? ' (read-only)' : ''}; Ctrl-C stops it`);
    await new Promise<void>((done) => (env.signal.aborted ? done() : env.signal.addEventListener('abort', () => done(), { once: true })));
    await server.close();
    env.log.info('serve: stopped');
    return 0;
  },
};
