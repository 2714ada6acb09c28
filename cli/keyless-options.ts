// The keyless flags that `gadget verify` and `gadget verify-blob` share, named as cosign names them.
import { resolve } from 'node:path';
import { usageError } from '../lib/errors.js';
import type { KeylessOptions } from '../lib/signature/index.js';
import type { Options, ParsedArgs } from './args.js';

export const KEYLESS_OPTIONS: Options = {
  'trusted-root': { type: 'string', value: 'FILE', description: 'Sigstore trusted_root.json (Fulcio CAs, Rekor and CT log keys, TSAs) for keyless signatures; nothing is fetched' },
  'certificate-identity': { type: 'string', value: 'ID', description: 'keyless: the signer\'s identity (certificate SAN: an email or workflow URI), exactly' },
  'certificate-identity-regexp': { type: 'string', value: 'RE', description: 'keyless: a regular expression the signer\'s identity must match' },
  'certificate-oidc-issuer': { type: 'string', value: 'URL', description: 'keyless: the OIDC issuer of the signer\'s identity, exactly' },
  'certificate-oidc-issuer-regexp': { type: 'string', value: 'RE', description: 'keyless: a regular expression the OIDC issuer must match' },
};

const IDENTITY_FLAGS = ['certificate-identity', 'certificate-identity-regexp', 'certificate-oidc-issuer', 'certificate-oidc-issuer-regexp'];

/** The keyless settings from the flags, or undefined without --trusted-root. */
export function keylessFlags(cwd: string, flags: ParsedArgs['flags']): KeylessOptions | undefined {
  const str = (name: string): string | undefined => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);
  const root = str('trusted-root');
  if (root === undefined) {
    const stray = IDENTITY_FLAGS.find((f) => flags[f] !== undefined);
    if (stray) throw usageError(`--${stray} needs --trusted-root FILE`, 'keyless signatures are verified offline against a Sigstore trusted_root.json');
    return undefined;
  }
  return {
    trustedRoot: resolve(cwd, root),
    identity: str('certificate-identity'),
    identityRegexp: str('certificate-identity-regexp'),
    issuer: str('certificate-oidc-issuer'),
    issuerRegexp: str('certificate-oidc-issuer-regexp'),
  };
}
