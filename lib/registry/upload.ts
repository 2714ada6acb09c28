// Blob uploads (OCI distribution spec "pushing blobs"): a session is opened with POST, then
// the bytes go in one PUT `?digest=` (monolithic) or as PATCH chunks closed by an empty PUT.
// Chunks are used when asked for (mode 'chunked'), when the registry names a minimum chunk
// length (OCI-Chunk-Min-Length), or when a monolithic upload of a blob held in memory fails.
// A blob the registry has in another repository is mounted instead (`?mount=&from=`), with
// the same POST that otherwise opens the upload: no existence check is needed first.
import type { Readable } from 'node:stream';
import { GadgetError } from '../errors.js';
import type { Descriptor } from '../oci/types.js';
import { repositoryScope } from './auth.js';
import { RegistryError } from './errors.js';
import type { HttpBody, HttpResponse } from './http.js';
import type { RepositoryPlumbing } from './plumbing.js';
import { readVerified, verified } from './verify.js';

export interface UploadOptions {
  /** 'auto' (default): monolithic, chunked when the registry asks or the monolithic PUT fails. */
  mode?: 'auto' | 'monolithic' | 'chunked';
  /** Bytes per PATCH (default 8 MiB; raised to the registry's OCI-Chunk-Min-Length). */
  chunkSize?: number;
  /**
   * Blobs up to this size (default 16 MiB) are read into memory first, so that a failed
   * upload can be sent again or in chunks; larger ones stream straight through.
   */
  bufferLimit?: number;
  /** The repository of the same registry to mount the blob from (the first is asked). */
  mountFrom?: string[];
  signal?: AbortSignal;
}

interface Session {
  location: URL;
  minChunk?: number;
}

const DEFAULT_CHUNK = 8 * 1024 * 1024;
const DEFAULT_BUFFER_LIMIT = 16 * 1024 * 1024;
const OCTETS = 'application/octet-stream';

/**
 * Pushes one blob with as few requests as the registry allows: the first POST asks to mount it
 * from `opts.mountFrom[0]` (possibly this very repository, which answers "already here") and
 * becomes an ordinary upload when the registry cannot mount it; `open` is called only then.
 */
export async function pushBlob(repo: RepositoryPlumbing, desc: Descriptor, open: () => Promise<Readable>, opts: UploadOptions = {}): Promise<'mounted' | 'uploaded'> {
  const what = `blob ${desc.digest} for ${repo.name}`;
  const { signal } = opts;
  const mode = opts.mode ?? 'auto';
  let session: Session | undefined;
  let content: Readable | undefined;
  try {
    const from = opts.mountFrom?.[0];
    const started = await startUpload(repo, what, from === undefined ? undefined : { digest: desc.digest, from }, signal);
    if (started === 'mounted') return 'mounted';
    session = started; // a plain upload, or the registry opened one instead of mounting
    content = await open();
    const chunkSize = Math.max(opts.chunkSize ?? DEFAULT_CHUNK, session.minChunk ?? 1);
    const chunked = mode === 'chunked' || (mode === 'auto' && session.minChunk !== undefined);

    if (desc.size > (opts.bufferLimit ?? DEFAULT_BUFFER_LIMIT)) {
      const stream = verified(content, desc, what);
      if (chunked) await uploadChunks(repo, session, desc, stream, chunkSize, what, signal);
      else await putMonolithic(repo, session, desc, stream, what, signal);
      return 'uploaded';
    }
    const bytes = await readVerified(content, desc, what);
    if (chunked) {
      await uploadChunks(repo, session, desc, [bytes], chunkSize, what, signal);
      return 'uploaded';
    }
    try {
      await putMonolithic(repo, session, desc, bytes, what, signal);
    } catch (err) {
      if (mode !== 'auto' || !fallbackHelps(err)) throw err;
      await cancelUpload(repo, session);
      session = (await startUpload(repo, what, undefined, signal)) as Session;
      await uploadChunks(repo, session, desc, [bytes], chunkSize, what, signal);
    }
    return 'uploaded';
  } catch (err) {
    content?.destroy();
    if (session) await cancelUpload(repo, session);
    throw err;
  }
}

/** Best effort: tells the registry to drop an upload session that will not be finished. */
async function cancelUpload(repo: RepositoryPlumbing, session: Session): Promise<void> {
  try {
    const { res } = await repo.send({ method: 'DELETE', url: session.location, noRetry: true }, { push: true });
    res.discard();
  } catch {
    // the registry purges abandoned uploads by itself
  }
}

/** A failed monolithic upload is worth retrying in chunks unless access or rate is the cause. */
function fallbackHelps(err: unknown): boolean {
  if (err instanceof RegistryError) return ![401, 403, 429].includes(err.status);
  return err instanceof GadgetError && /cannot reach/.test(err.message);
}

/**
 * Opens an upload session, or mounts the blob: 'mounted' when the registry did (201). A
 * registry that refuses the mount request itself (an error other than access or rate) is
 * asked again for a plain upload.
 */
async function startUpload(repo: RepositoryPlumbing, what: string, mount: { digest: string; from: string } | undefined, signal?: AbortSignal): Promise<Session | 'mounted'> {
  const url = repo.url('blobs/uploads/');
  const scopes: string[] = [];
  if (mount) {
    url.searchParams.set('mount', mount.digest);
    url.searchParams.set('from', mount.from);
    if (mount.from !== repo.repository) scopes.push(repositoryScope(mount.from, false));
  }
  const { res, authSent } = await repo.send({ method: 'POST', url, signal }, { push: true, scopes });
  if (mount && res.status === 201) {
    res.discard();
    return 'mounted';
  }
  if (mount && res.status >= 400 && res.status < 500 && ![401, 403, 429].includes(res.status)) {
    res.discard();
    return startUpload(repo, what, undefined, signal);
  }
  if (res.status !== 202) await repo.raise(res, authSent, what, 'push');
  res.discard();
  const min = Number(res.header('oci-chunk-min-length'));
  return { location: uploadLocation(repo, res, what), minChunk: Number.isSafeInteger(min) && min > 0 ? min : undefined };
}

/** The Location of an upload answer, refused when it points at another origin. */
function uploadLocation(repo: RepositoryPlumbing, res: HttpResponse, what: string): URL {
  const location = res.header('location');
  if (!location) throw new GadgetError(`${what}: the registry ${repo.host} opened an upload without a Location`, { hint: 'the registry is not OCI-compliant' });
  const url = new URL(location, res.url);
  if (url.origin !== repo.origin) {
    throw new GadgetError(`${what}: the registry ${repo.host} sent the upload to another host (${url.host}); refusing to upload there`, {
      hint: 'the registry is misconfigured (check its http.host setting)',
    });
  }
  return url;
}

function withDigest(location: URL, digest: string): URL {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url;
}

async function putMonolithic(repo: RepositoryPlumbing, session: Session, desc: Descriptor, body: HttpBody, what: string, signal?: AbortSignal): Promise<void> {
  const headers: Record<string, string> = { 'content-type': OCTETS, 'content-length': String(desc.size) };
  const { res, authSent } = await repo.send({ method: 'PUT', url: withDigest(session.location, desc.digest), headers, body, signal }, { push: true });
  await finish(repo, res, authSent, desc, what);
}

async function uploadChunks(
  repo: RepositoryPlumbing,
  session: Session,
  desc: Descriptor,
  source: AsyncIterable<Buffer> | Iterable<Buffer>,
  chunkSize: number,
  what: string,
  signal?: AbortSignal,
): Promise<void> {
  let location = session.location;
  let offset = 0;
  for await (const chunk of rechunk(source, chunkSize)) {
    const end = offset + chunk.length - 1;
    const headers = { 'content-type': OCTETS, 'content-range': `${offset}-${end}` };
    const { res, authSent } = await repo.send({ method: 'PATCH', url: location, headers, body: chunk, signal }, { push: true });
    if (res.status !== 202) await repo.raise(res, authSent, what, 'push');
    res.discard();
    const range = /^(?:bytes=)?0-(\d+)$/.exec(res.header('range') ?? '');
    if (range && Number(range[1]) !== end) {
      throw new GadgetError(`${what}: the registry holds bytes 0-${range[1]} after a chunk that ended at ${end}`, { hint: 'try again' });
    }
    location = uploadLocation(repo, res, what);
    offset = end + 1;
  }
  const { res, authSent } = await repo.send({ method: 'PUT', url: withDigest(location, desc.digest), headers: { 'content-type': OCTETS }, signal }, { push: true });
  await finish(repo, res, authSent, desc, what);
}

async function finish(repo: RepositoryPlumbing, res: HttpResponse, authSent: boolean, desc: Descriptor, what: string): Promise<void> {
  if (res.status !== 201) await repo.raise(res, authSent, what, 'push');
  res.discard();
  const announced = res.header('docker-content-digest');
  if (announced?.startsWith('sha256:') && announced !== desc.digest) {
    throw new GadgetError(`${what}: the registry stored it as ${announced}`, { hint: 'the upload was altered on the way; try again' });
  }
}

/** Re-slices a byte stream into pieces of `size` bytes (the last one shorter). */
async function* rechunk(source: AsyncIterable<Buffer> | Iterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const piece of source) {
    pending.push(piece);
    pendingBytes += piece.length;
    while (pendingBytes >= size) {
      const all = Buffer.concat(pending, pendingBytes);
      yield all.subarray(0, size);
      pending = [all.subarray(size)];
      pendingBytes -= size;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}
