// The sign plugin and library: signs images on their root (index) digest, as ig verifies
// them, in the store or straight in a registry: both are a Target, so one code path writes
// the signature blobs and manifests (children first) and tags. Formats: cosign's legacy
// `sha256-<hex>.sig` tag (appending a layer to an existing signature manifest, never
// replacing it), a Sigstore bundle v0.3 referrer, and a notation JWS referrer. Signing again
// with the same key and payload changes nothing.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { GadgetError, isGadgetError, usageError } from '../lib/errors.js';
import { sha256 } from '../lib/oci/digest.js';
import { parseRef } from '../lib/oci/reference.js';
import { INDEX_TYPES, SIGSTORE_BUNDLE, isManifestType } from '../lib/oci/mediatypes.js';
import { childrenOf, fetchManifest } from '../lib/oci/copy.js';
import { MAX_MANIFEST_BYTES, type Target } from '../lib/oci/target.js';
import type { Descriptor, Manifest } from '../lib/oci/types.js';
import type { Plugin } from '../lib/runner/types.js';
import { signatureTags } from '../lib/signature/find.js';
import { cosignAlgorithm, verifyWith } from '../lib/signature/keys.js';
import { loadCertificateChain, notationSignature } from '../lib/signature/notation-sign.js';
import { loadSigningKey, refuseKeyText, type SigningKey } from '../lib/signature/private-keys.js';
import { pae } from '../lib/signature/bundle.js';
import {
  blob, bundleReferrerManifest, cosignLayer, cosignSignatureManifest, dsseBundle, EMPTY_CONFIG, imageStatement, signBytes, simpleSigningPayload, type Blob,
} from '../lib/signature/sign.js';
import { COSIGN_SIGNATURE_ANNOTATION, INTOTO_PAYLOAD_TYPE, MAX_SIGNATURE_BYTES } from '../lib/signature/types.js';
import { Store } from '../store/store.js';
import type { X509Certificate } from 'node:crypto';

export type SignFormat = 'legacy' | 'bundle';

export interface SignOptions {
  /** cosign private key: cosign.key (encrypted), or a PEM private key. */
  key?: string;
  /** 'legacy' (default): the `sha256-<hex>.sig` tag; 'bundle': a Sigstore bundle v0.3 referrer. */
  format?: SignFormat;
  /** Annotations on the signature (cosign: in the signed payload's "optional"; bundle: on the referrer). */
  annotations?: Record<string, string>;
  /** notation signing key (PEM) and its certificate chain (PEM, leaf first). */
  notationKey?: string;
  notationCert?: string;
  /** The password of an encrypted key; default $COSIGN_PASSWORD. */
  password?: () => Promise<string>;
}

export interface SignResult {
  ref: string;
  /** The signed (root) digest. */
  digest: string;
  format: SignFormat | 'notation';
  /** The signature manifest. */
  signature: string;
  /** 'unchanged': the same key had already signed the same payload. */
  action: 'signed' | 'unchanged';
}

/** Keys loaded once for many images. */
export interface Signers {
  cosign?: SigningKey;
  format: SignFormat;
  annotations: Record<string, string>;
  notation?: { key: SigningKey; chain: X509Certificate[] };
}

function envPassword(): Promise<string> {
  const value = process.env.COSIGN_PASSWORD;
  if (value === undefined) {
    return Promise.reject(usageError('the signing key is encrypted and $COSIGN_PASSWORD is not set', 'set COSIGN_PASSWORD (empty for a key without a password)'));
  }
  return Promise.resolve(value);
}

/** Loads the keys; usage errors (exit 2) for a missing or unusable key. */
export async function loadSigners(opts: SignOptions): Promise<Signers> {
  const format = opts.format ?? 'legacy';
  if (format !== 'legacy' && format !== 'bundle') throw usageError(`unknown signature format "${String(format)}"`, 'use "legacy" (the cosign .sig tag) or "bundle" (a Sigstore bundle referrer)');
  if (!opts.key && !opts.notationKey) throw usageError('nothing to sign with: give a cosign key and/or a notation key', 'e.g. --key cosign.key (see `gadget generate-key-pair`), or --notation-key KEY --notation-cert CHAIN');
  if ((opts.notationKey === undefined) !== (opts.notationCert === undefined)) throw usageError('a notation signature needs both --notation-key and --notation-cert', 'e.g. --notation-key notation.key --notation-cert notation.crt');
  const password = opts.password ?? envPassword;
  let cached: Promise<string> | undefined;
  const once = (): Promise<string> => (cached ??= password());
  const signers: Signers = { format, annotations: opts.annotations ?? {} };
  if (opts.key) signers.cosign = await loadSigningKey(opts.key, once);
  if (opts.notationKey && opts.notationCert) {
    const key = await loadSigningKey(opts.notationKey, once);
    signers.notation = { key, chain: await loadCertificateChain(opts.notationCert, key) };
  }
  return signers;
}

async function readBlob(target: Target, desc: Descriptor, max: number): Promise<Buffer> {
  if (desc.size > max) throw new GadgetError(`${target.name}: ${desc.digest} is ${desc.size} bytes, more than the ${max} read here`);
  const chunks: Buffer[] = [];
  for await (const chunk of await target.fetch(desc)) chunks.push(chunk as Buffer);
  const bytes = Buffer.concat(chunks);
  if (sha256(bytes) !== desc.digest) throw new GadgetError(`${target.name}: the content of ${desc.digest} does not match its digest`);
  return bytes;
}

async function write(target: Target, items: Blob[]): Promise<void> {
  // Children first: a manifest is written only after the blobs it names. Into the store through
  // putBytes, which replaces a copy of the same digest damaged on disk (a signature vouches for them).
  for (const { descriptor, bytes } of items) {
    if (target instanceof Store) await target.putBytes(bytes, descriptor.mediaType);
    else if (!(await target.exists(descriptor))) await target.push(descriptor, Readable.from([bytes]));
  }
}

/**
 * What `tag` points at, undefined only when it is absent: any other failure (a registry
 * error) propagates, since writing a new `.sig` manifest over an unread one would drop the
 * signatures it holds.
 */
async function existing(target: Target, tag: string): Promise<Descriptor | undefined> {
  if (!target.peek) throw new GadgetError(`${target.name} cannot say whether ${tag} exists, so nothing is signed there`);
  return target.peek(tag);
}

async function signLegacy(target: Target, subject: Descriptor, repository: string, key: SigningKey, annotations: Record<string, string>): Promise<Pick<SignResult, 'signature' | 'action'>> {
  const payload = simpleSigningPayload(subject.digest, repository, annotations);
  const tag = signatureTags(subject.digest).legacy;
  const current = await existing(target, tag);
  let layers: Descriptor[] = [];
  if (current) {
    // Its layers are kept: in the store they must be whole, or the new manifest would list damage.
    const damaged = target instanceof Store ? await firstDamaged(target, current) : undefined;
    if (damaged) {
      const why = damaged.malformed ?? `${damaged.digest} does not match its digest`;
      throw new GadgetError(`the signature ${tag} in ${target.name} is damaged (${why}); nothing was signed`, {
        hint: '`gadget fsck --repair` removes it (with the signatures it holds); then sign again',
      });
    }
    const manifest = JSON.parse((await readBlob(target, current, MAX_MANIFEST_BYTES)).toString('utf8')) as Manifest;
    layers = Array.isArray(manifest.layers) ? manifest.layers : [];
    const payloadDigest = sha256(payload);
    const same = layers.find((l) => l.digest === payloadDigest && verifyWith(key.publicKey, cosignAlgorithm(key.publicKey), payload,
      Buffer.from(l.annotations?.[COSIGN_SIGNATURE_ANNOTATION] ?? '', 'base64')));
    if (same) return { signature: current.digest, action: 'unchanged' };
  }
  const layer = cosignLayer(payload, signBytes(key, payload));
  const { config, manifest } = cosignSignatureManifest([...layers, layer]);
  await write(target, [{ descriptor: layer, bytes: payload }, config, manifest]);
  // In the store the tag moves only if no other process re-signed meanwhile (checked under
  // its lock), so no appended layer is lost; a registry offers no such check.
  if (target instanceof Store) await target.tagMany([{ descriptor: manifest.descriptor, ref: tag, expected: current?.digest ?? null }]);
  else await target.tag(manifest.descriptor, tag);
  return { signature: manifest.descriptor.digest, action: 'signed' };
}

/** An existing bundle referrer with this statement, signed by this key, with these annotations. */
async function findSameBundle(target: Target, subject: Descriptor, key: SigningKey, statement: Buffer, annotations: Record<string, string>): Promise<string | undefined> {
  for (const { descriptor } of await target.referrers(subject)) {
    if (INDEX_TYPES.has(descriptor.mediaType) || (descriptor.artifactType !== undefined && descriptor.artifactType !== SIGSTORE_BUNDLE)) continue;
    try {
      const manifest = JSON.parse((await readBlob(target, descriptor, MAX_MANIFEST_BYTES)).toString('utf8')) as Manifest;
      const layer = manifest.layers.find((l) => l.mediaType === SIGSTORE_BUNDLE);
      if (!layer || manifest.subject?.digest !== subject.digest) continue;
      const extra = Object.entries(manifest.annotations ?? {}).filter(([k]) => !k.startsWith('dev.sigstore.bundle.'));
      if (extra.length !== Object.keys(annotations).length || extra.some(([k, v]) => annotations[k] !== v)) continue;
      const env = (JSON.parse((await readBlob(target, layer, MAX_SIGNATURE_BYTES)).toString('utf8')) as { dsseEnvelope?: { payload?: string; signatures?: Array<{ sig?: string }> } }).dsseEnvelope;
      const payload = Buffer.from(env?.payload ?? '', 'base64');
      const sig = Buffer.from(env?.signatures?.[0]?.sig ?? '', 'base64');
      if (payload.equals(statement) && verifyWith(key.publicKey, cosignAlgorithm(key.publicKey), pae(INTOTO_PAYLOAD_TYPE, payload), sig)) return descriptor.digest;
    } catch {
      // An unreadable referrer is not ours to judge here: sign anew.
    }
  }
  return undefined;
}

async function signBundle(target: Target, subject: Descriptor, repository: string, key: SigningKey, annotations: Record<string, string>): Promise<Pick<SignResult, 'signature' | 'action'>> {
  const statement = imageStatement(subject.digest, repository);
  const same = await findSameBundle(target, subject, key, statement, annotations);
  if (same) return { signature: same, action: 'unchanged' };
  const bundle = blob(SIGSTORE_BUNDLE, dsseBundle(key, statement));
  const manifest = bundleReferrerManifest(subject, bundle, annotations);
  // A registry without the referrers API gets the manifest added to its fallback tag
  // `sha256-<hex>` by the push itself (lib/registry); the store roots it in index.json.
  await write(target, [EMPTY_CONFIG, bundle, manifest]);
  return { signature: manifest.descriptor.digest, action: 'signed' };
}

/** Signs one image (its root descriptor `subject`) in `target` with every configured signer. */
export async function signDescriptor(target: Target, subject: Descriptor, ref: string, signers: Signers): Promise<SignResult[]> {
  const repository = parseRef(ref).name;
  const out: SignResult[] = [];
  if (signers.cosign) {
    const done = signers.format === 'bundle'
      ? await signBundle(target, subject, repository, signers.cosign, signers.annotations)
      : await signLegacy(target, subject, repository, signers.cosign, signers.annotations);
    out.push({ ref, digest: subject.digest, format: signers.format, ...done });
  }
  if (signers.notation) {
    const { envelope, manifest } = notationSignature(subject, signers.notation.key, signers.notation.chain);
    await write(target, [EMPTY_CONFIG, envelope, manifest]);
    out.push({ ref, digest: subject.digest, format: 'notation', signature: manifest.descriptor.digest, action: 'signed' });
  }
  return out;
}

/**
 * The images `refs` name, each whole in the store: a signature vouches for a graph, so none is
 * made while any reference names no image or an image with content missing. Every such
 * reference is named, not just the first.
 */
async function signable(store: Store, refs: string[]): Promise<Array<{ ref: string; descriptor: Descriptor }>> {
  const targets: Array<{ ref: string; descriptor: Descriptor }> = [];
  const problems: string[] = [];
  for (const ref of refs) {
    try {
      targets.push({ ref, descriptor: store.resolveRef(ref) });
    } catch (err) {
      if (!isGadgetError(err) || err.exitCode === 2) throw err;
      problems.push(err.message);
    }
  }
  await checkWhole(store, targets, problems);
  return targets;
}

/**
 * Throws, naming every one, when an image of `targets` has content missing from the store or
 * damaged there (each blob hashed), or when `problems` already holds some.
 */
async function checkWhole(store: Store, targets: Array<{ ref: string; descriptor: Descriptor }>, problems: string[] = []): Promise<void> {
  for (const { ref, descriptor } of targets) {
    const missing = store.missingFrom(descriptor);
    if (missing.length > 0) {
      problems.push(`the content of ${ref} (${descriptor.digest}) is not all in ${store.name}: ${missing[0]} is missing${missing.length > 1 ? `, and ${missing.length - 1} more` : ''}`);
      continue;
    }
    const damaged = await firstDamaged(store, descriptor);
    if (damaged?.malformed) problems.push(`${ref} (${descriptor.digest}) cannot be followed: ${damaged.malformed}`);
    else if (damaged) problems.push(`the content of ${ref} (${descriptor.digest}) is damaged in ${store.name}: ${damaged.digest} does not match its digest`);
  }
  if (problems.length > 0) {
    throw new GadgetError(`nothing was signed: ${problems.join('; ')}`, { hint: '`gadget list` shows the images of the store; pull or import an image whose content is missing again (`gadget fsck` names what is damaged)' });
  }
}

/**
 * The first blob or manifest of the graph whose bytes are not its digest's (each read once),
 * or whose document cannot be followed (`malformed` says why); else undefined.
 */
async function firstDamaged(store: Store, root: Descriptor, seen = new Set<string>()): Promise<{ digest: string; malformed?: string } | undefined> {
  if (seen.has(root.digest)) return undefined;
  seen.add(root.digest);
  if (isManifestType(root.mediaType)) {
    let doc: Parameters<typeof childrenOf>[1];
    try {
      doc = (await fetchManifest(store, root)).doc;
    } catch (err) {
      // Whole bytes that are refused as a document (keys ig reads differently, the wrong kind)
      // are named as they are: the graph a signature would vouch for is not the one ig reads.
      if (isGadgetError(err) && err.transient !== 'once') return { digest: root.digest, malformed: err.message };
      return { digest: root.digest };
    }
    for (const child of childrenOf(root, doc)) {
      const damaged = await firstDamaged(store, child, seen);
      if (damaged) return damaged;
    }
    return undefined;
  }
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of await store.fetch(root)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return `sha256:${hash.digest('hex')}` === root.digest && size === root.size ? undefined : { digest: root.digest };
}

/** Signs stored images by reference. */
export async function signImages(store: Store, refs: string[], opts: SignOptions): Promise<SignResult[]> {
  const signers = await loadSigners(opts);
  const targets = await signable(store, refs);
  const out: SignResult[] = [];
  for (const { ref, descriptor } of targets) out.push(...(await signDescriptor(store, descriptor, ref, signers)));
  return out;
}

export type SignPluginOptions = Omit<SignOptions, 'password'>;

/**
 * The sign step for gadget.config.ts (after build, before push): signs the images of the
 * previous step; key files are relative to the config's folder, the password comes from
 * $COSIGN_PASSWORD.
 */
export function sign(options: SignPluginOptions): Plugin {
  return {
    name: 'sign',
    async run(ctx, input) {
      // Key text given where a path belongs is refused before it becomes part of a path.
      const local = (file: string | undefined): string | undefined => (file === undefined ? undefined : path.resolve(ctx.cwd, file));
      const key = (file: string | undefined): string | undefined => local(file === undefined ? undefined : refuseKeyText(file, ctx.cwd));
      const signers = await loadSigners({ ...options, key: key(options.key), notationKey: key(options.notationKey), notationCert: local(options.notationCert) });
      await checkWhole(ctx.store, input);
      for (const artifact of input) {
        ctx.signal.throwIfAborted();
        for (const result of await signDescriptor(ctx.store, artifact.descriptor, artifact.ref, signers)) {
          ctx.emit({ type: 'sign', ...result });
          ctx.log.info(`sign: ${result.ref} ${result.format} ${result.action} (${result.signature})`);
        }
      }
      return input;
    },
  };
}
