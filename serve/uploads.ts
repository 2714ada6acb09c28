// Blob uploads of the distribution API: one POST with the bytes, a cross-repository mount, or a
// session (POST, PATCH..., PUT) whose bytes collect in a temporary file of the store (see
// store/upload.ts). A session receives one piece at a time, and a piece that is refused (out
// of order, of another length than it says, past --max-upload-size) leaves it as it was.
// Sessions idle longer than `limits.uploadIdleMs` are closed and their files removed, so
// clients that go away do not hold the --max-uploads slots until the server stops.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isGadgetError } from '../lib/errors.js';
import { regularFile } from '../store/regular-files.js';
import type { Store } from '../store/store.js';
import { UploadRefused, type BlobUpload } from '../store/upload.js';
import { DIGEST, RegistryError, send, type RegistryLimits } from './http.js';

export interface UploadsContext {
  store: Store;
  limits: RegistryLimits;
  signal: AbortSignal;
  /** Called when a blob was stored or mounted into `repository`. */
  stored(repository: string): void;
}

interface Session {
  upload: BlobUpload;
  repository: string;
}

export class Uploads {
  private readonly sessions = new Map<string, Session>();
  private readonly reaper: NodeJS.Timeout;

  constructor(private readonly ctx: UploadsContext) {
    const every = Math.max(100, Math.min(ctx.limits.uploadIdleMs / 2, 60_000));
    this.reaper = setInterval(() => void this.reap(), every).unref();
  }

  /** Ends every session (their temporary files removed): the server is stopping. */
  async close(): Promise<void> {
    clearInterval(this.reaper);
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((s) => s.upload.abort()));
  }

  /** Handles /v2/<name>/blobs/uploads/<id>. */
  async handle(req: IncomingMessage, res: ServerResponse, name: string, repository: string, id: string, query: URLSearchParams): Promise<void> {
    if (id === '') return this.start(req, res, name, repository, query);
    const session = this.sessions.get(id);
    if (!session) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `no upload ${id} in progress`);
    const { upload } = session;
    const progress = (): Record<string, string> => ({
      Location: `/v2/${name}/blobs/uploads/${id}`,
      'Docker-Upload-UUID': id,
      Range: `0-${Math.max(0, upload.size - 1)}`,
    });
    switch (req.method) {
      case 'GET':
        return send(res, 204, progress());
      case 'DELETE':
        this.sessions.delete(id);
        await upload.abort();
        return send(res, 204, {});
      case 'PATCH':
        await this.receive(req, upload, progress);
        return send(res, 202, progress());
      case 'PUT': {
        const digest = query.get('digest') ?? '';
        if (!DIGEST.test(digest)) throw new RegistryError('DIGEST_INVALID', `"${digest}" is not a sha256 digest`);
        await this.receive(req, upload, progress);
        this.sessions.delete(id);
        await refused(() => upload.finish(digest, this.ctx.signal), progress);
        this.ctx.stored(repository);
        return send(res, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
      }
      default:
        throw new RegistryError('UNSUPPORTED', `${req.method} is not allowed on an upload`, 405, { Allow: 'GET, PATCH, PUT, DELETE' });
    }
  }

  /** POST: a mount, a whole blob with ?digest=, or a new session. */
  private async start(req: IncomingMessage, res: ServerResponse, name: string, repository: string, query: URLSearchParams): Promise<void> {
    const { store, limits } = this.ctx;
    const mount = query.get('mount');
    if (mount && DIGEST.test(mount) && (await reused(store, mount))) {
      // Content-addressed: every blob of the store is in every repository.
      this.ctx.stored(repository);
      return send(res, 201, { Location: `/v2/${name}/blobs/${mount}`, 'Docker-Content-Digest': mount });
    }
    const digest = query.get('digest');
    const length = req.headers['content-length'];
    if (digest && length !== undefined) {
      if (!DIGEST.test(digest)) throw new RegistryError('DIGEST_INVALID', `"${digest}" is not a sha256 digest`);
      const size = Number(length);
      if (size > limits.uploadBytes) throw new RegistryError('SIZE_INVALID', `the blob is ${size} bytes, more than the ${limits.uploadBytes} allowed`, 413);
      try {
        await store.push({ mediaType: 'application/octet-stream', digest, size }, req, this.ctx.signal);
      } catch (err) {
        if (isGadgetError(err)) throw new RegistryError('DIGEST_INVALID', err.message);
        throw err;
      }
      this.ctx.stored(repository);
      return send(res, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
    }
    await this.reap();
    if (this.sessions.size >= limits.uploads) {
      const wait = this.retryAfter();
      throw new RegistryError('TOOMANYREQUESTS', `${limits.uploads} uploads are open already; try again in ${wait} s, when one has finished or expired`, 429, { 'Retry-After': String(wait) });
    }
    const upload = store.createUpload();
    this.sessions.set(upload.id, { upload, repository });
    send(res, 202, { Location: `/v2/${name}/blobs/uploads/${upload.id}`, 'Docker-Upload-UUID': upload.id, Range: '0-0' });
  }

  /** Appends the request's body as the next piece, checked against Content-Range and Content-Length. */
  private async receive(req: IncomingMessage, upload: BlobUpload, progress: () => Record<string, string>): Promise<void> {
    const length = pieceLength(req, upload.size, progress);
    await refused(() => upload.append(req, { limit: this.ctx.limits.uploadBytes, length, signal: this.ctx.signal }), progress);
  }

  /** Closes the sessions idle for longer than the limit (a piece being received is not idle). */
  private async reap(): Promise<void> {
    const now = Date.now();
    const idle = [...this.sessions].filter(([, s]) => !s.upload.busy && now - s.upload.lastActive > this.ctx.limits.uploadIdleMs);
    for (const [id] of idle) this.sessions.delete(id);
    await Promise.all(idle.map(([, s]) => s.upload.abort()));
  }

  /** Seconds until the first idle session expires (the whole idle time when every one is receiving). */
  private retryAfter(): number {
    const { uploadIdleMs } = this.ctx.limits;
    const idle = [...this.sessions.values()].filter((s) => !s.upload.busy);
    const ms = idle.length ? Math.min(...idle.map((s) => s.upload.lastActive + uploadIdleMs - Date.now())) : uploadIdleMs;
    return Math.max(1, Math.ceil(ms / 1000));
  }
}

/**
 * Whether the store holds the blob; one it holds is made young again, as a POST ?digest= of it
 * does (Store.exists touches it): an old blob reused by a push then survives a `gadget gc`
 * with the default --grace until the push's manifest tags it.
 */
export async function reused(store: Store, digest: string): Promise<boolean> {
  const size = regularFile(store.blobPath(digest))?.size;
  return size !== undefined && store.exists({ mediaType: 'application/octet-stream', digest, size });
}

/** The piece's length as Content-Range (START-END, continuing the upload) and Content-Length say it. */
function pieceLength(req: IncomingMessage, received: number, progress: () => Record<string, string>): number | undefined {
  const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
  const header = req.headers['content-range'];
  if (header === undefined) return declared;
  const range = /^(\d+)-(\d+)$/.exec(header);
  const unsatisfiable = (why: string): RegistryError => new RegistryError('BLOB_UPLOAD_INVALID', why, 416, progress());
  if (!range) throw unsatisfiable(`the Content-Range "${header}" is not START-END`);
  const [start, end] = [Number(range[1]), Number(range[2])];
  if (start !== received) throw unsatisfiable(`the piece starts at ${start}, but ${received} bytes were received`);
  if (end < start) throw unsatisfiable(`the Content-Range "${header}" ends before it starts`);
  if (declared !== undefined && declared !== end - start + 1) throw unsatisfiable(`the Content-Range "${header}" is ${end - start + 1} bytes, but the Content-Length is ${declared}`);
  return end - start + 1;
}

/** `work`, with the upload's refusals as the distribution API's errors. */
async function refused<T>(work: () => Promise<T>, progress: () => Record<string, string>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof UploadRefused)) throw err;
    switch (err.reason) {
      case 'too-large':
        throw new RegistryError('SIZE_INVALID', `${err.message}; the upload stays as it was before this piece`, 413, progress());
      case 'digest':
        throw new RegistryError('DIGEST_INVALID', err.message);
      case 'closed':
        throw new RegistryError('BLOB_UPLOAD_UNKNOWN', err.message);
      default:
        throw new RegistryError('BLOB_UPLOAD_INVALID', err.message, 416, progress());
    }
  }
}
