// A pushed manifest is checked whole before a byte of it is written: its label (Content-Type,
// else the body's mediaType, else its shape), the body's mediaType and its shape must all say
// the same kind (manifest or index); no object may hold two keys that ig reads as one; every
// child and the subject must be a valid descriptor; every child must be in the store with the
// size the manifest says; a child labelled a manifest or an index must be one. The checks are
// the ones copy and import make (checkKeys, checkManifestKind, childrenOf), so the server
// refuses what the rest of gadget refuses.
import { isGadgetError } from '../lib/errors.js';
import { childrenOf } from '../lib/oci/copy.js';
import { sha256 } from '../lib/oci/digest.js';
import { checkKeys } from '../lib/oci/json-keys.js';
import { checkManifestKind } from '../lib/oci/manifest-kind.js';
import { INDEX_TYPES, MT_INDEX, MT_MANIFEST, isManifestType } from '../lib/oci/mediatypes.js';
import { isValidDescriptor, type Descriptor, type Index, type Manifest } from '../lib/oci/types.js';
import { regularFile } from '../store/regular-files.js';
import type { Store } from '../store/store.js';
import { DIGEST, RegistryError } from './http.js';

type Doc = Manifest & Index;

export interface PushedManifest {
  /** Its descriptor, with the media type it is stored and served under. */
  descriptor: Descriptor;
  subject?: Descriptor;
}

/**
 * How deep a pushed manifest may nest objects and lists. A real one needs four or five levels
 * (annotations of a descriptor in a list); JSON.parse takes any depth, but what walks the
 * result recursively (JSON.stringify on the image page, other tools) runs out of stack.
 */
export const MAX_MANIFEST_DEPTH = 64;

/** The checked manifest, or a RegistryError (MANIFEST_INVALID, DIGEST_INVALID, MANIFEST_BLOB_UNKNOWN). */
export async function checkPushedManifest(store: Store, bytes: Buffer, contentType: string | undefined): Promise<PushedManifest> {
  if (nestsDeeperThan(bytes, MAX_MANIFEST_DEPTH)) throw new RegistryError('MANIFEST_INVALID', `the manifest nests objects and lists more than ${MAX_MANIFEST_DEPTH} levels deep, the most this server takes`);
  const doc = parse(bytes);
  // What ig reads of it may not be what these checks read (json-keys.ts).
  invalidUnlessOurs(() => checkKeys(bytes.toString('utf8'), 'the manifest'));
  const declared = (contentType ?? '').split(';')[0]!.trim();
  const mediaType = isManifestType(declared) ? declared : labelOf(doc);
  if (!mediaType) throw new RegistryError('MANIFEST_INVALID', `the Content-Type "${declared}" is not a manifest or index type, and neither is the body`);
  const descriptor: Descriptor = { mediaType, digest: sha256(bytes), size: bytes.length };
  invalidUnlessOurs(() => {
    checkManifestKind(doc, descriptor, 'the manifest');
    // With a mediaType in the body, the check above compares it only: the shape must agree too.
    checkManifestKind({ ...doc, mediaType: undefined } as unknown as Doc, descriptor, 'the manifest');
  });
  const children = childrenChecked(descriptor, doc);
  await checkChildren(store, children);
  return { descriptor, subject: doc.subject };
}

function parse(bytes: Buffer): Doc {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new RegistryError('MANIFEST_INVALID', 'the manifest is not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new RegistryError('MANIFEST_INVALID', 'the manifest is not a JSON object');
  return doc as Doc;
}

/**
 * Whether JSON text opens more than `limit` objects and lists inside one another, counted
 * without parsing (no recursion, stops at the first level too deep). Brackets inside strings
 * do not count; in UTF-8 no byte of a multi-byte character is a quote, backslash or bracket.
 */
function nestsDeeperThan(bytes: Buffer, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c) i++; // a backslash: the next byte is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** The media type a stored manifest's bytes declare or show (undefined: not a manifest). */
export function mediaTypeOf(bytes: Buffer): string | undefined {
  try {
    return labelOf(parse(bytes));
  } catch {
    return undefined;
  }
}

/** The body's own media type, or its shape's (ig's manifests have no mediaType). */
function labelOf(doc: Doc): string | undefined {
  if (typeof doc.mediaType === 'string') return isManifestType(doc.mediaType) ? doc.mediaType : undefined;
  if (Array.isArray(doc.manifests)) return MT_INDEX;
  if (doc.config !== undefined || Array.isArray(doc.layers)) return MT_MANIFEST;
  return undefined;
}

/** The children, each a valid descriptor, and a valid subject if there is one. */
function childrenChecked(descriptor: Descriptor, doc: Doc): Descriptor[] {
  const isIndex = INDEX_TYPES.has(descriptor.mediaType);
  const named: unknown[] = [...(isIndex ? listOf(doc.manifests) : [doc.config, ...listOf(doc.layers)]), ...(doc.subject === undefined ? [] : [doc.subject])];
  const bad = named.find((d) => typeof (d as Descriptor | null)?.digest === 'string' && !DIGEST.test((d as Descriptor).digest)) as Descriptor | undefined;
  if (bad) throw new RegistryError('DIGEST_INVALID', `the manifest names ${JSON.stringify(bad.digest.slice(0, 100))}, which is not a sha256 digest`);
  if (!isIndex && !(isValidDescriptor(doc.config) && (doc.layers === undefined || Array.isArray(doc.layers)))) {
    throw new RegistryError('MANIFEST_INVALID', 'the manifest\'s config is not a valid descriptor (media type, sha256 digest, size), or its layers are not a list');
  }
  if (doc.subject !== undefined && !isValidDescriptor(doc.subject)) throw new RegistryError('MANIFEST_INVALID', 'the manifest\'s subject is not a valid descriptor (media type, sha256 digest, size)');
  return invalidUnlessOurs(() => childrenOf(descriptor, doc));
}

/** Children in the store with the sizes the manifest says; one labelled a manifest or index is one. */
async function checkChildren(store: Store, children: Descriptor[]): Promise<void> {
  const missing = children.filter((c) => !store.hasBlob(c.digest));
  if (missing.length) {
    throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `the manifest refers to ${missing[0]!.digest}, which is not in the store${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}: push it first`);
  }
  // The store vouches for its descriptors' sizes (Store.holdsTrueSizes): a wrong one stays out.
  for (const child of children) {
    const held = regularFile(store.blobPath(child.digest))?.size;
    if (held !== child.size) throw new RegistryError('MANIFEST_INVALID', `the manifest says ${child.digest} is ${child.size} bytes, but it is ${String(held)}`);
  }
  for (const child of children.filter((c) => isManifestType(c.mediaType))) {
    const doc = await store.readJSON<Doc>(child).catch(rethrow);
    invalidUnlessOurs(() => checkManifestKind(doc, child, `the manifest's child ${child.digest}`));
  }
}

function listOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** `work`, with its GadgetError (a check that failed) as MANIFEST_INVALID. */
function invalidUnlessOurs<T>(work: () => T): T {
  try {
    return work();
  } catch (err) {
    return rethrow(err);
  }
}

function rethrow(err: unknown): never {
  if (isGadgetError(err)) throw new RegistryError('MANIFEST_INVALID', err.message);
  throw err;
}
