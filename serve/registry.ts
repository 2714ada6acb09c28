// The OCI distribution API v1.1 over the store: pull (manifests and blobs by tag or digest,
// Range), push (monolithic, chunked, cross-repository mount), content discovery (tag list,
// catalog, referrers with artifactType filtering) and content management (DELETE of tags and
// manifests). Everything goes through the Store API: blobs are verified while they stream in
// and become visible atomically; tags move under the store's lock and never point at a graph
// that is not all there.
import { closeSync, createReadStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isGadgetError } from '../lib/errors.js';
import { sha256 } from '../lib/oci/digest.js';
import { MT_INDEX, MT_MANIFEST, isManifestType } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';
import { IncompleteGraphError, type Store } from '../store/store.js';
import { openRegular, regularFile, regularSize } from '../store/regular-files.js';
import type { BlobUpload } from '../store/upload.js';
import { RegistryError, readBody, send, sendJSON } from './http.js';
import { keyOf, repositoryOf, splitKey } from './names.js';

export interface RegistryLimits {
  /** Largest manifest accepted (bytes). */
  manifestBytes: number;
  /** Largest blob accepted (bytes). */
  uploadBytes: number;
  /** Upload sessions open at once. */
  uploads: number;
}

export interface RegistryContext {
  store: Store;
  readOnly: boolean;
  limits: RegistryLimits;
  signal: AbortSignal;
}

interface Session {
  upload: BlobUpload;
  repository: string;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const API_HEADERS = { 'Docker-Distribution-API-Version': 'registry/2.0' };

export class Registry {
  /** Open upload sessions, by id; aborted (temporary files removed) when the server stops. */
  readonly sessions = new Map<string, Session>();

  constructor(private readonly ctx: RegistryContext) {}

  async abortUploads(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((s) => s.upload.abort()));
    this.sessions.clear();
  }

  /** Handles /v2/...; `path` is what follows /v2/. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
    const method = req.method ?? 'GET';
    const head = method === 'HEAD';
    if (path === '') return sendJSON(res, 200, {}, API_HEADERS, head);
    if (path === '_catalog') return this.catalog(res, query);
    const route = /^(.+?)\/(manifests|blobs\/uploads|blobs|tags\/list|referrers)(?:\/(.*))?$/.exec(path);
    if (!route) throw new RegistryError('NAME_UNKNOWN', `no such API endpoint: /v2/${path}`, 404);
    const [, name, kind, rest = ''] = route;
    const repository = repositoryOf(name!, query.get('ns'));
    const write = !['GET', 'HEAD'].includes(method);
    if (write && this.ctx.readOnly) throw new RegistryError('UNSUPPORTED', 'this server is read-only (gadget serve --read-only)');
    switch (kind) {
      case 'manifests':
        if (method === 'PUT') return this.putManifest(req, res, name!, repository, rest);
        if (method === 'DELETE') return this.deleteManifest(res, repository, rest);
        return this.getManifest(res, repository, rest, head);
      case 'blobs':
        if (method === 'DELETE') throw new RegistryError('UNSUPPORTED', 'blobs are removed by `gadget gc` once nothing refers to them');
        return this.getBlob(req, res, rest, head);
      case 'blobs/uploads':
        return this.upload(req, res, name!, repository, rest, query);
      case 'tags/list':
        return this.tags(res, name!, repository, query);
      default:
        return this.referrers(res, rest, query);
    }
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
      return store.resolveRef(keyOf(repository, reference));
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw new RegistryError('MANIFEST_UNKNOWN', `${repository}:${reference} is not in the store`);
    }
  }

  private async getManifest(res: ServerResponse, repository: string, reference: string, head: boolean): Promise<void> {
    const descriptor = this.resolve(repository, reference);
    let bytes: Buffer;
    try {
      bytes = await this.ctx.store.readBytes(descriptor.digest, this.ctx.limits.manifestBytes);
    } catch {
      throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${descriptor.digest} cannot be read from the store`);
    }
    const mediaType = isManifestType(descriptor.mediaType) ? descriptor.mediaType : mediaTypeOf(bytes);
    if (!mediaType) throw new RegistryError('MANIFEST_UNKNOWN', `${descriptor.digest} is a blob, not a manifest`);
    send(res, 200, { 'Content-Type': mediaType, 'Docker-Content-Digest': descriptor.digest, ...API_HEADERS }, bytes, head);
  }

  private async getBlob(req: IncomingMessage, res: ServerResponse, digest: string, head: boolean): Promise<void> {
    if (!DIGEST.test(digest)) throw new RegistryError('DIGEST_INVALID', `"${digest}" is not a sha256 digest`);
    const file = this.ctx.store.blobPath(digest);
    // Opened before the answer starts, and only as a regular file (a FIFO would hang the read).
    let fd: number;
    let size: number;
    try {
      ({ fd, size } = openRegular(file));
    } catch {
      throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is not in the store`);
    }
    const headers: Record<string, string | number> = { 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': digest, 'Accept-Ranges': 'bytes', ...API_HEADERS };
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    let start = 0;
    let end = size - 1;
    let status = 200;
    if (range && (range[1] || range[2])) {
      start = range[1] ? Number(range[1]) : Math.max(0, size - Number(range[2]));
      end = range[1] && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start >= size || start > end) {
        closeSync(fd);
        throw new RegistryError('BLOB_UNKNOWN', `range ${req.headers.range} is outside the blob's ${size} bytes`, 416, { 'Content-Range': `bytes */${size}` });
      }
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    }
    res.writeHead(status, { ...headers, 'Content-Length': size === 0 ? 0 : end - start + 1 });
    if (head || size === 0) {
      closeSync(fd);
      return void res.end();
    }
    await new Promise<void>((resolve, reject) => {
      const stream = createReadStream(file, { fd, start, end, highWaterMark: 1 << 20 });
      stream.on('error', reject);
      res.on('close', () => {
        stream.destroy();
        resolve();
      });
      stream.pipe(res);
    });
  }

  // ------------------------------------------------------------------ push

  private async putManifest(req: IncomingMessage, res: ServerResponse, name: string, repository: string, reference: string): Promise<void> {
    const bytes = await readBody(req, this.ctx.limits.manifestBytes, 'the manifest');
    let doc: { mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[]; subject?: Descriptor };
    try {
      doc = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new RegistryError('MANIFEST_INVALID', 'the manifest is not valid JSON');
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new RegistryError('MANIFEST_INVALID', 'the manifest is not a JSON object');
    const declared = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    const mediaType = isManifestType(declared) ? declared : doc.mediaType && isManifestType(doc.mediaType) ? doc.mediaType : mediaTypeOf(bytes);
    if (!mediaType) throw new RegistryError('MANIFEST_INVALID', `the Content-Type "${declared}" is not a manifest or index type`);
    const digest = sha256(bytes);
    const isDigest = DIGEST.test(reference);
    if (isDigest && reference !== digest) throw new RegistryError('DIGEST_INVALID', `the manifest's digest is ${digest}, not ${reference}`);
    const children = [...(doc.manifests ?? []), ...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])];
    const missing = children.filter((c) => typeof c?.digest !== 'string' || !this.ctx.store.hasBlob(c.digest));
    if (missing.length) throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `the manifest refers to ${missing[0]?.digest ?? 'an invalid descriptor'}, which is not in the store${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}: push it first`);
    // The store vouches for its descriptors' sizes (Store.holdsTrueSizes): a wrong one stays out.
    for (const child of children) {
      const held = regularFile(this.ctx.store.blobPath(child.digest))?.size;
      if (held !== child.size) throw new RegistryError('MANIFEST_INVALID', `the manifest says ${child.digest} is ${String(child.size)} bytes, but it is ${String(held)}`);
    }
    const descriptor = await this.ctx.store.putBytes(bytes, mediaType);
    if (!isDigest) {
      try {
        await this.ctx.store.tag(descriptor, keyOf(repository, reference));
      } catch (err) {
        if (err instanceof IncompleteGraphError) throw new RegistryError('MANIFEST_BLOB_UNKNOWN', err.message);
        throw err;
      }
    }
    const headers: Record<string, string> = { Location: `/v2/${name}/manifests/${digest}`, 'Docker-Content-Digest': digest };
    if (doc.subject?.digest) headers['OCI-Subject'] = doc.subject.digest;
    send(res, 201, headers);
  }

  private async upload(req: IncomingMessage, res: ServerResponse, name: string, repository: string, id: string, query: URLSearchParams): Promise<void> {
    const method = req.method;
    const { store, limits } = this.ctx;
    if (id === '') {
      if (method !== 'POST') throw new RegistryError('UNSUPPORTED', `${method} is not allowed on /blobs/uploads/`);
      const mount = query.get('mount');
      if (mount && DIGEST.test(mount) && store.hasBlob(mount)) {
        // Content-addressed: every blob of the store is in every repository.
        return send(res, 201, { Location: `/v2/${name}/blobs/${mount}`, 'Docker-Content-Digest': mount });
      }
      const digest = query.get('digest');
      const length = req.headers['content-length'];
      if (digest && length !== undefined) {
        if (!DIGEST.test(digest)) throw new RegistryError('DIGEST_INVALID', `"${digest}" is not a sha256 digest`);
        const size = Number(length);
        if (size > limits.uploadBytes) throw new RegistryError('SIZE_INVALID', `the blob is ${size} bytes, more than the ${limits.uploadBytes} allowed`, 413);
        await this.storeStream(req, { mediaType: 'application/octet-stream', digest, size });
        return send(res, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
      }
      if (this.sessions.size >= limits.uploads) {
        throw new RegistryError('TOOMANYREQUESTS', `${limits.uploads} uploads are open already; try again when one has finished`, 429, { 'Retry-After': '1' });
      }
      const upload = store.createUpload();
      this.sessions.set(upload.id, { upload, repository });
      return send(res, 202, { Location: `/v2/${name}/blobs/uploads/${upload.id}`, 'Docker-Upload-UUID': upload.id, Range: '0-0' });
    }
    const session = this.sessions.get(id);
    if (!session) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `no upload ${id} in progress`);
    const { upload } = session;
    const progress = (): Record<string, string> => ({
      Location: `/v2/${name}/blobs/uploads/${id}`,
      'Docker-Upload-UUID': id,
      Range: `0-${Math.max(0, upload.size - 1)}`,
    });
    try {
      if (method === 'GET') return send(res, 204, progress());
      if (method === 'DELETE') {
        this.sessions.delete(id);
        await upload.abort();
        return send(res, 204, {});
      }
      if (method === 'PATCH') {
        const range = /^(\d+)-(\d+)$/.exec(String(req.headers['content-range'] ?? ''));
        if (range && Number(range[1]) !== upload.size) {
          throw new RegistryError('BLOB_UPLOAD_INVALID', `the chunk starts at ${range[1]}, but ${upload.size} bytes were received`, 416, progress());
        }
        await upload.append(req, limits.uploadBytes, this.ctx.signal);
        return send(res, 202, progress());
      }
      if (method === 'PUT') {
        const digest = query.get('digest') ?? '';
        if (!DIGEST.test(digest)) throw new RegistryError('DIGEST_INVALID', `"${digest}" is not a sha256 digest`);
        await upload.append(req, limits.uploadBytes, this.ctx.signal);
        this.sessions.delete(id);
        await upload.finish(digest, this.ctx.signal);
        return send(res, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
      }
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      if (isGadgetError(err)) {
        this.sessions.delete(id);
        await upload.abort();
        throw new RegistryError(/digest/.test(err.message) ? 'DIGEST_INVALID' : 'BLOB_UPLOAD_INVALID', err.message);
      }
      throw err;
    }
    throw new RegistryError('UNSUPPORTED', `${method} is not allowed on an upload`);
  }

  private async storeStream(req: IncomingMessage, descriptor: Descriptor): Promise<void> {
    try {
      await this.ctx.store.push(descriptor, req, this.ctx.signal);
    } catch (err) {
      if (isGadgetError(err)) throw new RegistryError('DIGEST_INVALID', err.message);
      throw err;
    }
  }

  // ------------------------------------------------------------------ discovery

  private tags(res: ServerResponse, name: string, repository: string, query: URLSearchParams): void {
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
      const m = e.ref ? /^sha256-([a-f0-9]{64})/.exec(e.ref) : null;
      if (m && digests.has(`sha256:${m[1]}`)) tags.add(e.ref!);
    }
    const page = paginate([...tags].sort(), query);
    const headers: Record<string, string> = page.next ? { Link: `</v2/${name}/tags/list?n=${page.n}&last=${encodeURIComponent(page.next)}>; rel="next"` } : {};
    sendJSON(res, 200, { name, tags: page.items }, headers);
  }

  private catalog(res: ServerResponse, query: URLSearchParams): void {
    const repositories = new Set<string>();
    for (const e of this.ctx.store.allEntries()) {
      const split = e.ref ? splitKey(e.ref) : undefined;
      if (split) repositories.add(split.repository);
    }
    const page = paginate([...repositories].sort(), query);
    const headers: Record<string, string> = page.next ? { Link: `</v2/_catalog?n=${page.n}&last=${encodeURIComponent(page.next)}>; rel="next"` } : {};
    sendJSON(res, 200, { repositories: page.items }, headers);
  }

  private async referrers(res: ServerResponse, digest: string, query: URLSearchParams): Promise<void> {
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
    send(res, 200, headers, JSON.stringify({ schemaVersion: 2, mediaType: MT_INDEX, manifests }));
  }

  // ------------------------------------------------------------------ management

  private async deleteManifest(res: ServerResponse, repository: string, reference: string): Promise<void> {
    const { store } = this.ctx;
    if (!DIGEST.test(reference)) {
      try {
        await store.untag([keyOf(repository, reference)]);
      } catch {
        throw new RegistryError('MANIFEST_UNKNOWN', `${repository}:${reference} is not in the store`);
      }
      return send(res, 202, {});
    }
    if (!store.hasBlob(reference)) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} is not in the store`);
    // The manifest's tags in this repository go (and its untagged entry, for a referrer); its
    // bytes stay until `gadget gc` finds nothing else that reaches them.
    store.removeEntries((e) => e.descriptor.digest === reference && (e.ref === null || splitKey(e.ref)?.repository === repository));
    send(res, 202, {});
  }
}

/** The media type a manifest's bytes declare, or that its shape shows (ig's manifests have none). */
function mediaTypeOf(bytes: Buffer): string | undefined {
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: unknown; layers?: unknown; config?: unknown };
    if (doc.mediaType && isManifestType(doc.mediaType)) return doc.mediaType;
    if (Array.isArray(doc.manifests)) return MT_INDEX;
    if (doc.config || Array.isArray(doc.layers)) return MT_MANIFEST;
  } catch {
    return undefined;
  }
  return undefined;
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

