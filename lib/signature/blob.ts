// `cosign verify-blob FILE --bundle B`, offline: one Sigstore bundle over any file (an SBOM,
// a tarball). A message signature must sign the file's digest; a DSSE envelope's in-toto
// statement must name the file's sha256 among its subjects. With --key the signature is
// checked with the key (and, with a trusted root, its log entry too); otherwise keyless,
// against the trusted root and the signer's identity and issuer.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { GadgetError, messageOf, usageError } from '../errors.js';
import { statementProblem } from './bundle.js';
import { loadPublicKeys } from './keys.js';
import { loadKeylessTrust, parseBundle, verifyKeyless, verifyWithKeys, type KeylessOptions, type SigstoreOutcome } from './sigstore.js';
import { MAX_SIGNATURE_BYTES, type SignatureRule } from './types.js';

/** Public keys, or the keyless trust of KeylessOptions (whose trusted root is optional with keys). */
export interface BlobVerifyOptions extends Partial<KeylessOptions> {
  /** Public keys (PEM files); any that verifies is enough. */
  keys?: string[];
  /** A trusted root: with keys, the log entry is checked too; without keys, keyless verification. */
  trustedRoot?: string;
}

export interface BlobVerdict {
  file: string;
  bundle: string;
  /** sha256:<hex> of the file. */
  digest: string;
  verified: boolean;
  /** One sentence, lowercase and without a full stop. */
  reason: string;
  rule?: SignatureRule;
  /** Who signed: the certificate identity, or the key. */
  signer?: string;
}

async function fileDigest(file: string): Promise<Buffer> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  } catch (err) {
    throw new GadgetError(`cannot read "${file}": ${messageOf(err)}`, { exitCode: 2, hint: 'give the file the bundle signs', cause: err });
  }
  return hash.digest();
}

async function readBundle(file: string): Promise<unknown> {
  try {
    const bytes = await readFile(file);
    if (bytes.length > MAX_SIGNATURE_BYTES) throw new Error(`larger than ${MAX_SIGNATURE_BYTES} bytes`);
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new GadgetError(`cannot read the bundle "${file}": ${messageOf(err).replace(/\.$/, '')}`, { exitCode: 2, hint: 'give a Sigstore bundle (.sigstore.json), as `cosign sign-blob --bundle` writes it', cause: err });
  }
}

/** Verifies `bundleFile` over `file`; usage errors (exit 2) for unusable inputs, a verdict otherwise. */
export async function verifyBlob(file: string, bundleFile: string, opts: BlobVerifyOptions): Promise<BlobVerdict> {
  const keyless = opts.identity !== undefined || opts.identityRegexp !== undefined || opts.issuer !== undefined || opts.issuerRegexp !== undefined;
  const keys = opts.keys ?? [];
  if (keys.length > 0 && keyless) throw usageError('give --key or the certificate identity flags, not both', 'a key verifies a key-signed bundle; the identity flags with --trusted-root verify a keyless one');
  if (keys.length === 0 && !opts.trustedRoot) {
    throw usageError('nothing to verify with', 'give --key FILE, or --trusted-root FILE with --certificate-identity and --certificate-oidc-issuer');
  }
  const trust = keys.length === 0 ? await loadKeylessTrust({ ...opts, trustedRoot: opts.trustedRoot! } as KeylessOptions) : undefined;
  const publicKeys = keys.length > 0 ? await loadPublicKeys(keys) : [];
  const digest = await fileDigest(file);
  const json = await readBundle(bundleFile);
  const base = { file, bundle: bundleFile, digest: `sha256:${digest.toString('hex')}` };
  const fail = (reason: string, rule: SignatureRule): BlobVerdict => ({ ...base, verified: false, reason, rule });

  const parsed = parseBundle(json);
  if (!('bundle' in parsed)) return fail(parsed.reason, parsed.rule);
  const content = parsed.bundle.content;
  let artifact: Buffer | undefined;
  if (content.$case === 'messageSignature') {
    const named = content.messageSignature.messageDigest?.digest;
    if (named && !named.equals(digest)) {
      return fail(`the bundle signs sha256:${named.toString('hex')}, not ${file} (${base.digest}): digest mismatch`, 'GADGET-SIGNATURE-DIGEST');
    }
    // The signature is over the file's bytes (a hashedrekord signs the data, not its digest).
    artifact = await readFile(file);
  }
  const outcome: SigstoreOutcome = trust
    ? verifyKeyless(parsed.bundle, trust, artifact)
    : await verifyWithKeys(parsed.bundle, publicKeys.map((k) => k.key), artifact, opts.trustedRoot);
  if (!outcome.ok) return fail(outcome.reason, outcome.rule);
  if (content.$case === 'dsseEnvelope') {
    const env = content.dsseEnvelope;
    const wrong = statementProblem(env.payloadType, env.payload, digest.toString('hex'), `${file} (${base.digest})`);
    if (wrong) return fail(wrong, 'GADGET-SIGNATURE-DIGEST');
  }
  const signer = trust ? outcome.who : publicKeys.length === 1 ? publicKeys[0]!.label : outcome.who;
  return { ...base, verified: true, reason: `the bundle ${bundleFile} over ${file} verifies with ${trust ? `the trusted root ${trust.source}, signed by ${outcome.who}` : signer}`, signer };
}
