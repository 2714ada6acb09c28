// The OCI distribution API v1.1 over the store: pull (manifests and blobs by tag or digest,
// Range), push (monolithic, chunked, cross-repository mount), content discovery (tag list,
// catalog, referrers with artifactType filtering) and content management (DELETE of tags and
// manifests). Everything goes through the Store API: blobs are verified while they stream in
// and become visible atomically (uploads.ts), and while they stream out (blobs.ts); a pushed
// manifest is checked whole before it is written (manifest-check.ts); tags move under the
// store's lock and never point at a graph that is not all there.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isSignatureTag, signatureTagSubject } from '../lib/oci/reference.js';
import { sha256 } from '../lib/oci/digest.js';
import { INDEX_TYPES, MT_INDEX, isManifestType } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';
import { IncompleteGraphError, type Store } from '../store/store.js';
import { removeUnreachableManifest } from '../store/maintenance.js';
import { regularSize } from '../store/regular-files.js';
import { sendBlob } from './blobs.js';
import { deleteManifest, heldBy, otherHolder } from './delete.js';
import { DIGEST, RegistryError, readBody, send, sendJSON, type RegistryLimits } from './http.js';
import { checkPushedManifest, mediaTypeOf } from './manifest-check.js';
import { keyOf, repositoryOf, splitKey, storedKeys } from './names.js';
import { Uploads, reused } from './uploads.js';

export interface RegistryContext {
  store: Store;
  readOnly: boolean;
  limits: RegistryLimits;
  signal: AbortSignal;
}

const API_HEADERS = { 'Docker-Distribution-API-Version': 'registry/2.0' };
const READS = ['GET', 'HEAD'];

/** The methods of each endpoint (an upload's depend on whether it names a session). */
function methodsOf(kind: string, rest: string): string[] {
  switch (kind) {
    case 'manifests':
      return [...READS, 'PUT', 'DELETE'];
    case 'blobs':
      return READS; // blobs are removed by `gadget gc` once nothing refers to them
    case 'blobs/uploads':
      return rest === '' ? ['POST'] : ['GET', 'PATCH', 'PUT', 'DELETE'];
    default:
      return READS;
  }
}

/** 405 with Allow unless `method` is one of `methods`; a write on a read-only server is refused as such. */
function checkMethod(method: string, methods: string[], readOnly: boolean): void {
  const allowed = readOnly ? methods.filter((m) => READS.includes(m)) : methods;
  if (allowed.includes(method)) return;
  const allow = { Allow: allowed.join(', ') };
  if (readOnly && methods.includes(method)) throw new RegistryError('UNSUPPORTED', 'this server is read-only (gadget serve --read-only)', 405, allow);
  throw new RegistryError('UNSUPPORTED', `${method} is not allowed here; this endpoint takes ${allowed.join(', ') || 'nothing'}`, 405, allow);
}

export class Registry {
  readonly uploads: Uploads;
  /**
   * Repositories this server stored content into since it started. The store is content-
   * addressed and keeps no blob per repository: a repository is known by its tags, or by a
   * push into it that has no tag yet (its blobs come before its manifest's tag).
   */
  private readonly pushedInto = new Set<string>();
  /** `repository@digest` of the manifests this server took by digest: no tag names them, yet their repository may delete them. */
  private readonly pushedByDigest = new Set<string>();

  constructor(private readonly ctx: RegistryContext) {
    this.uploads = new Uploads({ ...ctx, stored: (repository) => this.pushedInto.add(repository) });
  }

  /** Handles /v2/...; `path` is what follows /v2/. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
    const method = req.method ?? 'GET';
    const head = method === 'HEAD';
    const route = /^(.+?)\/(manifests|blobs\/uploads|blobs|tags\/list|referrers)(?:\/(.*))?$/.exec(path);
    if (path === '' || path === '_catalog' || !route) checkMethod(method, READS, this.ctx.readOnly);
    if (path === '') return sendJSON(res, 200, {}, API_HEADERS, head);
    if (path === '_catalog') return this.catalog(res, query, head);
    if (!route) throw new RegistryError('NAME_UNKNOWN', `no such API endpoint: /v2/${path}`, 404);
    const [, name, kind, rest = ''] = route;
    const repository = repositoryOf(name!, query.get('ns'));
    checkMethod(method, methodsOf(kind!, rest), this.ctx.readOnly);
    switch (kind) {
      case 'manifests':
        if (method === 'PUT') return this.putManifest(req, res, name!, repository, rest);
        if (method === 'DELETE') return this.deleteManifest(res, repository, rest);
        return this.getManifest(res, repository, rest, head);
      case 'blobs':
        return this.getBlob(req, res, repository, rest);
      case 'blobs/uploads':
        return this.uploads.handle(req, res, name!, repository, rest, query);
      case 'tags/list':
        return this.tags(res, name!, repository, query, head);
      default:
        return this.referrers(res, rest, query, head);
    }
  }



  /** NAME_UNKNOWN for a repository the store has no tag in and this server took no push into. */
  private checkKnown(repository: string): void {
    if (this.pushedInto.has(repository) || this.ctx.store.matchesAny(`${repository}:*`)) return;
    // A short tag another tool wrote (`g0001`) is listed under the full name it completes to:
    // the repository is known under that name too, as the catalog shows it.
    if (this.ctx.store.entrySummaries().some((e) => e.ref !== null && splitKey(e.ref)?.repository === repository)) return;
    throw new RegistryError('NAME_UNKNOWN', `repository ${repository} is not in the store`);
  }

  // ------------------------------------------------------------------ pull

  private resolve(repository: string, reference: string): Descriptor {
    const { store } = this.ctx;
    if (DIGEST.test(reference)) {
      if (!store.hasBlob(reference)) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} is not in the store`);
      const row = store.manifestRow(reference);
      return { mediaType: row?.media_type ?? '', digest: reference, size: regularSize(store.blobPath(reference)) };
    }
    try {
      store.refreshIfChanged();
      const keys = storedKeys(repository, reference);
      return store.resolveRef(keys.find((k) => store.entryByRef(k)) ?? keys[0]!);
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw new RegistryError('MANIFEST_UNKNOWN', `${repository}:${reference} is not in the store`);
    }
  }

  private async getManifest(res: ServerResponse, repository: string, reference: string, head: boolean): Promise<void> {
    this.checkKnown(repository);
    const descriptor = this.resolve(repository, reference);
    if (descriptor.size > this.ctx.limits.manifestBytes) throw new RegistryError('MANIFEST_UNKNOWN', `${descriptor.digest} is larger than a manifest may be here (--max-manifest-size)`);
    let bytes: Buffer;
    try {
      bytes = await this.ctx.store.readBytes(descriptor.digest, this.ctx.limits.manifestBytes);
    } catch (err) {
      // Gone meanwhile is unknown; damaged is the server's failure, and says so.
      if (!this.ctx.store.hasBlob(descriptor.digest)) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${descriptor.digest} is not in the store`);
      throw err;
    }
    const mediaType = isManifestType(descriptor.mediaType) ? descriptor.mediaType : mediaTypeOf(bytes);
    if (!mediaType) throw new RegistryError('MANIFEST_UNKNOWN', `${descriptor.digest} is a blob, not a manifest`);
    send(res, 200, { 'Content-Type': mediaType, 'Docker-Content-Digest': descriptor.digest, ...API_HEADERS }, bytes, head);
  }

  private async getBlob(req: IncomingMessage, res: ServerResponse, repository: string, digest: string): Promise<void> {
    this.checkKnown(repository);
    if (!DIGEST.test(digest)) throw new RegistryError('DIGEST_INVALID', `"${digest}" is not a sha256 digest`);
    // A HEAD is how clients (skopeo) find a blob they need not push: it is reused, like a mount.
    if (req.method === 'HEAD' && !this.ctx.readOnly) await reused(this.ctx.store, digest);
    await sendBlob(req, res, this.ctx.store.blobPath(digest), digest, API_HEADERS);
  }

  // ------------------------------------------------------------------ push

  private async putManifest(req: IncomingMessage, res: ServerResponse, name: string, repository: string, reference: string): Promise<void> {
    const bytes = await readBody(req, this.ctx.limits.manifestBytes, 'the manifest');
    const byDigest = DIGEST.test(reference);
    // Everything is checked before anything is written: an invalid tag writes no manifest.
    const key = byDigest ? undefined : keyOf(repository, reference);
    if (byDigest && reference !== sha256(bytes)) throw new RegistryError('DIGEST_INVALID', `the manifest's digest is ${sha256(bytes)}, not ${reference}`);
    const { descriptor, subject } = await checkPushedManifest(this.ctx.store, bytes, req.headers['content-type']);
    // A signature tag is bare in the store, one for every repository: checked, and moved only
    // from the manifest checked (`expected`), so a push meanwhile is not overwritten unseen.
    const expected = key !== undefined && isSignatureTag(key) ? await this.checkSignatureTag(repository, key, descriptor, bytes) : undefined;
    const fresh = !this.ctx.store.hasBlob(descriptor.digest);
    await this.ctx.store.putBytes(bytes, descriptor.mediaType);
    if (key) {
      try {
        await this.ctx.store.tagMany([{ descriptor, ref: key, expected }]);
      } catch (err) {
        // A child went meanwhile (gc): the refused manifest leaves nothing behind (unless it was
        // here before, or something reaches it now).
        if (fresh) removeUnreachableManifest(this.ctx.store, descriptor.digest);
        if (err instanceof IncompleteGraphError) throw new RegistryError('MANIFEST_BLOB_UNKNOWN', err.message);
        if (expected !== undefined && this.ctx.store.entryByRef(key)?.digest !== (expected ?? undefined)) {
          throw new RegistryError('DENIED', `${key} was changed by another push meanwhile: read it again and push yours onto it`, 409);
        }
        throw err;
      }
    }
    this.pushedInto.add(repository);
    if (byDigest) this.pushedByDigest.add(`${repository}@${descriptor.digest}`);
    const headers: Record<string, string> = { Location: `/v2/${name}/manifests/${descriptor.digest}`, 'Docker-Content-Digest': descriptor.digest };
    if (subject) headers['OCI-Subject'] = subject.digest;
    send(res, 201, headers);
  }

  /**
   * A push of a signature tag (`sha256-<D>.sig|.att|.sbom`, or the fallback tag `sha256-<D>`)
   * into `repository`: the store keeps it bare, shared by every repository that holds D, so
   * it is taken only when `repository` holds D (tags it, or one of its images lists or is
   * signed by it; or it took D by digest since the server started), and a tag that is there
   * already is replaced only by a manifest that keeps what another repository holding D has
   * in it: every signature layer (cosign appends one per signature) or, for a fallback index,
   * every referrer. Returns the digest the tag points at now (null: none), for the tag's move.
   */
  private async checkSignatureTag(repository: string, tag: string, descriptor: Descriptor, bytes: Buffer): Promise<string | null> {
    const { store } = this.ctx;
    store.refreshIfChanged();
    const signed = signatureTagSubject(tag)!;
    if (!(await heldBy(store, repository)).has(signed) && !this.pushedByDigest.has(`${repository}@${signed}`)) {
      throw new RegistryError('DENIED', `${tag} is the signature tag of ${signed}, which is not an image of ${repository}: push the signature into the repository of the image it signs`, 403);
    }
    const current = store.entryByRef(tag);
    if (!current || current.digest === descriptor.digest) return current?.digest ?? null;
    const other = otherHolder(store, repository, signed);
    if (other === undefined) return current.digest;
    const dropped = await droppedEntries(store, { mediaType: current.media_type, digest: current.digest, size: current.size }, descriptor.mediaType, bytes);
    if (dropped > 0) {
      throw new RegistryError('DENIED', `${tag} signs ${signed} in ${other} too (the store keeps one tag for both), and this manifest drops ${dropped} of the ${INDEX_TYPES.has(current.media_type) ? 'referrers' : 'signature layers'} it holds: push one that keeps them and adds yours, as cosign does`, 409);
    }
    return current.digest;
  }

  // ------------------------------------------------------------------ discovery

  private tags(res: ServerResponse, name: string, repository: string, query: URLSearchParams, head: boolean): void {
    const entries = this.ctx.store.allEntries();
    const digests = new Set<string>();
    const tags = new Set<string>();
    for (const e of entries) {
      const split = e.ref ? splitKey(e.ref) : undefined;
      if (split?.repository === repository) {
        tags.add(split.tag);
        digests.add(e.digest);
      }
    }
    if (tags.size === 0) throw new RegistryError('NAME_UNKNOWN', `repository ${repository} is not in the store`);
    // cosign's signature tags are bare in the store: list those of this repository's images.
    for (const e of entries) {
      const signed = e.ref ? signatureTagSubject(e.ref) : undefined;
      if (signed && digests.has(signed)) tags.add(e.ref!);
    }
    const page = paginate([...tags].sort(), query);
    sendJSON(res, 200, { name, tags: page.items }, nextLink(`/v2/${name}/tags/list`, query, page), head);
  }

  private catalog(res: ServerResponse, query: URLSearchParams, head: boolean): void {
    const repositories = new Set<string>();
    for (const e of this.ctx.store.allEntries()) {
      const split = e.ref ? splitKey(e.ref) : undefined;
      if (split) repositories.add(split.repository);
    }
    const page = paginate([...repositories].sort(), query);
    sendJSON(res, 200, { repositories: page.items }, nextLink('/v2/_catalog', query, page), head);
  }

  private async referrers(res: ServerResponse, digest: string, query: URLSearchParams, head: boolean): Promise<void> {
    if (!DIGEST.test(digest)) throw new RegistryError('DIGEST_INVALID', `"${digest}" is not a sha256 digest`);
    const { store } = this.ctx;
    const wanted = query.get('artifactType');
    const manifests: Descriptor[] = [];
    for (const r of await store.referrers({ mediaType: MT_INDEX, digest, size: 0 })) {
      const row = store.manifestRow(r.descriptor.digest);
      if (row?.subject !== digest) continue; // cosign's legacy .sig tags are not OCI 1.1 referrers
      const artifactType = row.artifact_type ?? row.config_media_type ?? undefined;
      if (wanted && artifactType !== wanted) continue;
      const doc = (await store.readJSON<{ annotations?: Record<string, string> }>(row.digest).catch(() => ({}))) as { annotations?: Record<string, string> };
      const d: Descriptor = { mediaType: row.media_type, digest: row.digest, size: row.size };
      if (artifactType) d.artifactType = artifactType;
      if (doc.annotations) d.annotations = doc.annotations;
      manifests.push(d);
    }
    const headers: Record<string, string> = { 'Content-Type': MT_INDEX };
    if (wanted) headers['OCI-Filters-Applied'] = 'artifactType';
    send(res, 200, headers, JSON.stringify({ schemaVersion: 2, mediaType: MT_INDEX, manifests }), head);
  }

  // ------------------------------------------------------------------ management

  private async deleteManifest(res: ServerResponse, repository: string, reference: string): Promise<void> {
    this.checkKnown(repository);
    await deleteManifest(this.ctx.store, repository, reference, (digest) => this.pushedByDigest.has(`${repository}@${digest}`));
    send(res, 202, {});
  }
}

/**
 * How many entries of the stored signature manifest or fallback index `old` (its layers, or
 * its manifests) `bytes` no longer has, compared whole (a cosign layer's signature is in its
 * annotations; two signatures of one payload share the digest). An unreadable `old` keeps
 * nothing anyone could rely on.
 */
async function droppedEntries(store: Store, old: Descriptor, mediaType: string, bytes: Buffer): Promise<number> {
  type Doc = { layers?: unknown; manifests?: unknown };
  const entries = (doc: Doc): unknown[] => {
    const list = Array.isArray(doc.manifests) ? doc.manifests : doc.layers;
    return Array.isArray(list) ? list : [];
  };
  const before = await store.readJSON<Doc>(old).catch(() => undefined);
  if (!before) return 0;
  // An index's entries are referrers, a manifest's layers signatures: one kind put in place of
  // the other keeps none of them, whatever the lists hold.
  if (INDEX_TYPES.has(old.mediaType) !== INDEX_TYPES.has(mediaType)) return entries(before).length;
  try {
    const kept = new Set(entries(JSON.parse(bytes.toString('utf8')) as Doc).map(canonical));
    return entries(before).filter((e) => !kept.has(canonical(e))).length;
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    return entries(before).length; // nested too deeply to compare (another tool stored it): all of it counts as dropped
  }
}

/** JSON text with object keys sorted, so that equal descriptors compare equal whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
}

/** The Link header to the next page: the request's own query (`ns` included), with `n` and `last` set. */
function nextLink(path: string, query: URLSearchParams, page: { next?: string; n: number }): Record<string, string> {
  if (page.next === undefined) return {};
  const next = new URLSearchParams(query);
  next.set('n', String(page.n));
  next.set('last', page.next);
  return { Link: `<${path}?${next.toString()}>; rel="next"` };
}

/** `n` and `last` as the distribution spec defines them (items after `last`, at most `n`). */
function paginate(items: string[], query: URLSearchParams): { items: string[]; next?: string; n: number } {
  const last = query.get('last');
  const after = last === null ? items : items.filter((i) => i > last);
  const nText = query.get('n');
  if (nText === null) return { items: after, n: after.length };
  const n = Number(nText);
  if (!Number.isSafeInteger(n) || n < 0) throw new RegistryError('SIZE_INVALID', `n=${nText} is not a whole number`);
  const page = after.slice(0, n);
  return { items: page, next: after.length > n && page.length ? page[page.length - 1] : undefined, n };
}

