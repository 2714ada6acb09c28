// DELETE of a manifest, by tag or by digest. The store is shared by every repository the server
// names, so a repository removes only what it names: its tags; the cosign tags, OCI 1.1
// signatures and fallback index entries of its images (and their own signatures). Never what
// another repository's image needs too (a signature of an image tagged there as well), nor a
// manifest one of its images lists. What nothing reaches any more then goes at once (GET 404,
// the referrers API drops it); blobs stay until `gadget gc`.
import { encodeJSONBytes } from '../lib/oci/json.js';
import { isSignatureTag, signatureTagSubject } from '../lib/oci/reference.js';
import { fallbackTagSubject } from '../lib/registry/referrers.js';
import type { Descriptor, Index } from '../lib/oci/types.js';
import { namedChildrenSync } from '../store/graph.js';
import { removeUnreachableManifest } from '../store/maintenance.js';
import type { Store } from '../store/store.js';
import { DIGEST, RegistryError } from './http.js';
import { splitKey, storedKeys } from './names.js';

/** Signatures of signatures are followed this deep. */
const REFERRER_DEPTH = 3;
/** A fallback index changed by another writer meanwhile is read again this often. */
const FALLBACK_ATTEMPTS = 5;

/**
 * Deletes `reference` (a tag or digest) of `repository`; a RegistryError when it may not.
 * `pushedHere`: whether this server took that manifest into `repository` by digest (no tag or
 * signature names it, yet it is the repository's to delete).
 */
export async function deleteManifest(store: Store, repository: string, reference: string, pushedHere: (digest: string) => boolean = () => false): Promise<void> {
  store.refreshIfChanged();
  const held = await heldBy(store, repository);
  if (!DIGEST.test(reference)) return deleteTag(store, repository, reference, held);
  const row = store.manifestRow(reference);
  if (!row || !store.hasBlob(reference)) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} is not in the store`);
  const subject = row.subject ?? undefined;
  let named = 0;
  const ours = (e: { ref: string | null; descriptor: Descriptor }): boolean => {
    if (e.descriptor.digest !== reference) return false;
    if (e.ref === null) return subject !== undefined && held.has(subject);
    const signed = signatureTagSubject(e.ref);
    return signed !== undefined ? held.has(signed) : splitKey(e.ref)?.repository === repository;
  };
  for (const e of store.entriesOf(reference)) {
    const entry = { ref: e.ref, descriptor: { mediaType: e.media_type, digest: e.digest, size: e.size } };
    if (!ours(entry)) continue;
    named++;
    const signed = e.ref === null ? subject : signatureTagSubject(e.ref);
    if (signed !== undefined) refuseShared(store, repository, signed, reference);
  }
  if (subject !== undefined && held.has(subject)) refuseShared(store, repository, subject, reference);
  // The fallback tag indexes of this repository's images (and signatures) that list it.
  const indexes = store.parentsOf(reference).flatMap((parent) => store.entriesOf(parent).flatMap((e) => {
    const of = e.ref === null ? undefined : fallbackTagSubject(e.ref);
    return of !== undefined && held.has(of) ? [of] : [];
  }));
  for (const of of indexes) refuseShared(store, repository, of, reference);
  if (named === 0 && indexes.length === 0) {
    if (held.images.has(reference)) throw new RegistryError('DENIED', `manifest ${reference} is listed by an image of ${repository}: delete that image's tag first`, 409);
    if (!pushedHere(reference)) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} is not in ${repository}`);
    // Taken by digest into this repository, and named by nothing: it goes if nothing else needs it.
    if (!removeUnreachableManifest(store, reference)) throw new RegistryError('DENIED', `manifest ${reference} is listed by another manifest of the store`, 409);
    return;
  }
  if (named > 0) store.removeEntries(ours);
  for (const of of new Set(indexes)) await dropFromFallbackIndex(store, of, reference);
  removeUnreachableManifest(store, reference);
}

async function deleteTag(store: Store, repository: string, tag: string, held: Held): Promise<void> {
  // The full key and the short ones other tools wrote that the tag list shows as this tag: the
  // tag goes from the list only when all of them go.
  const [key, ...short] = storedKeys(repository, tag);
  const entries = [key!, ...short].flatMap((k) => store.entryByRef(k) ?? []);
  // A cosign tag is bare in the store: it is this repository's only when it signs one of its images.
  const signed = signatureTagSubject(tag);
  if (!entries.length || (signed !== undefined && !held.has(signed))) throw new RegistryError('MANIFEST_UNKNOWN', `${repository}:${tag} is not in the store`);
  if (signed !== undefined) refuseShared(store, repository, signed, tag);
  try {
    if (entries.some((e) => e.ref === key)) await store.untag([key!]);
  } catch {
    throw new RegistryError('MANIFEST_UNKNOWN', `${repository}:${tag} is not in the store`);
  }
  // untag() completes what it is given, so a short key is removed as it is written.
  if (short.length) store.removeEntries((e) => e.ref !== null && short.includes(e.ref));
  for (const digest of new Set(entries.map((e) => e.digest))) removeUnreachableManifest(store, digest);
}

/** What a repository holds: its images (tags, and the manifests they list) and their signatures. */
export interface Held {
  images: Set<string>;
  has(digest: string): boolean;
}

export async function heldBy(store: Store, repository: string): Promise<Held> {
  const images = new Set<string>();
  for (const e of store.allEntries()) {
    if (!e.ref || splitKey(e.ref)?.repository !== repository) continue;
    images.add(e.digest);
    for (const child of namedChildrenSync(store.root, e.digest)) images.add(child.digest);
  }
  // Their signatures, and the signatures' own (a store's referrers: subjects, cosign and fallback tags).
  const signatures = new Set<string>();
  let level = [...images];
  for (let depth = 0; depth < REFERRER_DEPTH && level.length > 0; depth++) {
    const next: string[] = [];
    for (const digest of level) {
      for (const { descriptor } of await store.referrers({ mediaType: '', digest, size: 0 })) {
        const r = descriptor.digest;
        if (images.has(r) || signatures.has(r)) continue;
        signatures.add(r);
        next.push(r);
      }
    }
    level = next;
  }
  return { images, has: (digest) => images.has(digest) || signatures.has(digest) };
}

/**
 * 409 when `subject`, or what it signs in turn (a signature's signature), is also an image (or
 * a manifest of one) that another repository tags: the signature is theirs too.
 */
function refuseShared(store: Store, repository: string, subject: string, what: string): void {
  const other = otherHolder(store, repository, subject);
  if (other) {
    throw new RegistryError('DENIED', `${what} signs ${subject}, which ${other} holds too, with the same signature: delete that repository's tag of it first, or untag the signature on the store (gadget rm)`, 409);
  }
}

/** A repository other than `repository` that tags `subject`, what it signs, or an image listing either (see refuseShared). */
export function otherHolder(store: Store, repository: string, subject: string): string | undefined {
  const chain = [subject];
  for (let s = store.manifestRow(subject)?.subject; s && chain.length <= REFERRER_DEPTH; s = store.manifestRow(s)?.subject) chain.push(s);
  const holders = chain.flatMap((d) => [d, ...store.parentsOf(d)]);
  const other = holders.flatMap((d) => store.entriesOf(d)).find((e) => e.ref !== null && !isSignatureTag(e.ref) && splitKey(e.ref)?.repository !== repository);
  return other ? (splitKey(other.ref!)?.repository ?? other.ref!) : undefined;
}

/**
 * Takes `digest` out of the fallback tag index of `subject` (`sha256-<hex>`), as a client of a
 * registry without the referrers API does when it deletes a referrer; an index left empty loses
 * its tag. The tag moves only if it still names the index read (another server on the store may
 * change it meanwhile: then it is read again). The old index goes when nothing else reaches it.
 * True when it listed `digest`.
 */
async function dropFromFallbackIndex(store: Store, subject: string, digest: string): Promise<boolean> {
  const key = `sha256-${subject.slice('sha256:'.length)}`;
  for (let attempt = 0; attempt < FALLBACK_ATTEMPTS; attempt++) {
    store.refreshIfChanged();
    const entry = store.entryByRef(key);
    if (!entry) return false;
    const old: Descriptor = { mediaType: entry.media_type, digest: entry.digest, size: entry.size };
    // Another writer may replace the index and remove this one between the two reads.
    const changed = (): boolean => {
      store.refreshIfChanged();
      return store.entryByRef(key)?.digest !== old.digest;
    };
    let index: Index;
    try {
      index = await store.readJSON<Index>(old);
    } catch (err) {
      if (changed()) continue;
      throw err;
    }
    const kept = (index.manifests ?? []).filter((m) => m.digest !== digest);
    if (kept.length === (index.manifests ?? []).length) return false;
    if (kept.length === 0) {
      store.removeEntries((e) => e.ref === key && e.descriptor.digest === old.digest);
      store.refreshIfChanged();
      if (store.entryByRef(key)) continue; // another writer changed it meanwhile: read it again
    } else {
      const next = await store.putBytes(encodeJSONBytes({ ...index, manifests: kept }), old.mediaType);
      try {
        await store.tagMany([{ descriptor: next, ref: key, expected: old.digest }]);
      } catch (err) {
        if (!changed()) throw err; // not a concurrent change
        removeUnreachableManifest(store, next.digest); // written for nothing: it would keep listing `digest`
        continue;
      }
    }
    removeUnreachableManifest(store, old.digest);
    return true;
  }
  throw new RegistryError('UNKNOWN', `the fallback index ${key} kept changing while ${digest} was taken out of it: try again`, 503);
}
