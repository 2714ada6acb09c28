// One repository on an OCI distribution registry, as a Target: manifests and blobs fetched
// and verified, pushed (blobs through upload.ts), tags resolved, listed and set, referrers
// found (referrers.ts).
import { Readable } from 'node:stream';
import { GadgetError } from '../errors.js';
import { DAMAGED_HINT, isDigest, sha256 } from '../oci/digest.js';
import { INDEX_TYPES, MANIFEST_ACCEPT, MT_INDEX, MT_MANIFEST, isManifestType } from '../oci/mediatypes.js';
import type { Reference } from '../oci/reference.js';
import { MAX_MANIFEST_BYTES, type PushBlobOptions, type Referrer, type Target } from '../oci/target.js';
import type { Descriptor, Manifest } from '../oci/types.js';
import type { AuthClient } from './auth.js';
import { repositoryScope } from './auth.js';
import { resumableBody } from './download.js';
import { ODD_ANSWER_HINT, registryError } from './errors.js';
import { parseJSONBody, type HttpRequest, type HttpResponse } from './http.js';
import type { ManifestBytes, RegistryFacts, RepositoryPlumbing } from './plumbing.js';
import { BlobLocations } from './locations.js';
import { listAllPages } from './pages.js';
import { addToFallbackIndex, fallbackTagSubject, listReferrers, mergeFallbackIndex, referrerEntry } from './referrers.js';
import { pushBlob, type UploadOptions } from './upload.js';
import { readVerified, verified } from './verify.js';

const TAG_RE = /^[\w][\w.-]{0,127}$/;
const MANIFEST_CACHE_ENTRIES = 64;

export interface PushOptions extends UploadOptions {}

export interface RepositoryConfig {
  /** `https:` or `http:`. */
  scheme: 'https:' | 'http:';
  client: AuthClient;
  /** Defaults for blob uploads (mode, chunk size, repositories to mount from). */
  upload?: UploadOptions;
  /** Broken blob downloads are resumed this often (default 5). */
  maxResumes?: number;
  /** Shared by the repositories of one registry (see locations.ts). */
  blobs?: BlobLocations;
  /** What was learnt about the registry, shared by its repositories. */
  facts?: RegistryFacts;
  /** Pages of a tag list followed at most (default DEFAULT_MAX_PAGES); more is an error. */
  maxPages?: number;
}

export class RemoteRepository implements Target, RepositoryPlumbing {
  readonly name: string;
  /** A registry refuses a manifest whose children it lacks: a present manifest means a whole graph. */
  readonly keepsGraphsWhole = true;
  readonly host: string;
  readonly repository: string;
  readonly origin: string;
  /** Repositories of the same registry that blobs may be mounted from (push tries them first). */
  mountFrom: string[];
  /** Whether the registry answers the referrers API; learnt on first use, for the whole registry. */
  get referrersApi(): boolean | undefined {
    return this.facts.referrersApi;
  }

  set referrersApi(answers: boolean | undefined) {
    this.facts.referrersApi = answers;
  }
  /**
   * The tags as listTags() last saw them: referrers are then looked up only under the
   * signature tags that exist (a sync lists tags first), instead of one GET per possible tag.
   */
  tagSnapshot: Set<string> | undefined;
  private readonly client: AuthClient;
  private readonly uploadDefaults: UploadOptions;
  private readonly maxResumes: number;
  private readonly blobs: BlobLocations;
  readonly facts: RegistryFacts;
  private readonly maxPages: number | undefined;
  private readonly manifests = new Map<string, ManifestBytes>();
  /** Serialises updates of one fallback tag index within this process. */
  readonly fallbackLocks = new Map<string, Promise<void>>();

  constructor(
    readonly ref: Reference,
    config: RepositoryConfig,
  ) {
    this.name = ref.name;
    this.host = ref.registry;
    this.repository = ref.repository;
    this.origin = new URL(`${config.scheme}//${ref.registry}`).origin;
    this.client = config.client;
    this.uploadDefaults = config.upload ?? {};
    this.mountFrom = [...(config.upload?.mountFrom ?? [])];
    this.maxResumes = config.maxResumes ?? 5;
    this.blobs = config.blobs ?? new BlobLocations();
    this.facts = config.facts ?? {};
    this.maxPages = config.maxPages;
  }

  // --- plumbing shared with upload.ts and referrers.ts --------------------------------------

  /** An URL under this repository: `url('manifests/v1')` -> `<origin>/v2/<repo>/manifests/v1`. */
  url(path: string): URL {
    return new URL(`${this.origin}/v2/${this.repository}/${path}`);
  }

  /** Sends with the authorization for pull (or pull+push) on this repository plus `scopes`. */
  send(req: HttpRequest, opts: { push?: boolean; scopes?: string[] } = {}): Promise<{ res: HttpResponse; authSent: boolean }> {
    return this.client.send(req, [repositoryScope(this.repository, opts.push ?? false), ...(opts.scopes ?? [])]);
  }

  /** Runs `work` again while it fails transiently (a damaged answer), with the client's backoff. */
  retrying<T>(work: (attempt: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.client.retrying(work, signal);
  }

  /** Throws the error for a failed answer. */
  async raise(res: HttpResponse, authSent: boolean, what: string, access: 'pull' | 'push' = 'pull'): Promise<never> {
    const body = res.body.readableEnded ? undefined : await res.errorBody();
    throw registryError(res.status, body, { what, host: this.host, repository: this.repository, access, authSent });
  }

  /** How messages name a tag or digest of this repository. */
  describe(reference: string): string {
    return isDigest(reference) ? `${this.name}@${reference}` : `${this.name}:${reference}`;
  }

  /** A manifest's bytes by tag or digest; undefined when the registry says 404 (unless `required`). */
  async getManifest(reference: string, signal?: AbortSignal): Promise<ManifestBytes | undefined>;
  async getManifest(reference: string, signal: AbortSignal | undefined, required: true): Promise<ManifestBytes>;
  async getManifest(reference: string, signal?: AbortSignal, required = false): Promise<ManifestBytes | undefined> {
    const cached = isDigest(reference) ? this.manifests.get(reference) : undefined;
    if (cached) return cached;
    const what = `manifest ${this.describe(reference)}`;
    // Manifests are small: a body that breaks off, is cut short or altered on the way (it does
    // not match the digest asked for or announced, or is not JSON) is asked for again.
    const manifest = await this.client.retrying(async () => {
      const { res, authSent } = await this.send({ method: 'GET', url: this.url(`manifests/${reference}`), headers: { accept: MANIFEST_ACCEPT }, signal });
      if (res.status === 404 && !required) {
        res.discard();
        return undefined;
      }
      if (res.status !== 200) await this.raise(res, authSent, what);
      const bytes = await res.read(MAX_MANIFEST_BYTES, what);
      const digest = sha256(bytes);
      // Cut short: asked for again; whole but wrong: once more (see GadgetError.transient).
      const damaged = (message: string, transient: true | 'once' = 'once'): GadgetError => new GadgetError(`${what}: ${message}`, { hint: DAMAGED_HINT, transient });
      const declared = Number(res.header('content-length'));
      if (Number.isSafeInteger(declared) && declared !== bytes.length) throw damaged(`the registry announced ${declared} bytes and sent ${bytes.length}`, true);
      if (isDigest(reference) && digest !== reference) throw damaged(`the registry sent content with digest ${digest}`);
      const announced = res.header('docker-content-digest');
      if (announced?.startsWith('sha256:') && announced !== digest) throw damaged(`the registry says its digest is ${announced} but the content has digest ${digest}`);
      // By tag, without a digest to check, the JSON must at least parse.
      if (!isDigest(reference) && !announced) parseJSONBody(bytes, what);
      return { bytes, mediaType: manifestMediaType(res.header('content-type'), bytes), digest };
    }, signal);
    if (manifest) {
      this.remember(manifest);
      this.blobs.set(manifest.digest, this.repository);
    }
    return manifest;
  }

  /** PUTs manifest bytes under a tag or digest; returns the answer's headers. */
  async putManifest(reference: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<HttpResponse> {
    const what = `manifest ${this.describe(reference)}`;
    const { res, authSent } = await this.send(
      { method: 'PUT', url: this.url(`manifests/${reference}`), headers: { 'content-type': mediaType }, body: bytes, signal },
      { push: true },
    );
    if (res.status !== 201 && res.status !== 200) await this.raise(res, authSent, what, 'push');
    res.discard();
    const digest = sha256(bytes);
    const announced = res.header('docker-content-digest');
    if (announced?.startsWith('sha256:') && announced !== digest) {
      throw new GadgetError(`${what}: the registry stored it as ${announced}, expected ${digest}`, { hint: 'the registry rewrote the manifest; push it with its original media type' });
    }
    this.remember({ bytes, mediaType, digest });
    this.blobs.set(digest, this.repository);
    return res;
  }

  private remember(m: ManifestBytes): void {
    this.manifests.delete(m.digest);
    this.manifests.set(m.digest, m);
    if (this.manifests.size > MANIFEST_CACHE_ENTRIES) this.manifests.delete(this.manifests.keys().next().value!);
  }

  // --- Target ---------------------------------------------------------------------------------

  async resolve(reference: string, signal?: AbortSignal): Promise<Descriptor> {
    const r = reference.startsWith('@') ? reference.slice(1) : reference;
    if (!isDigest(r) && !TAG_RE.test(r)) {
      throw new GadgetError(`"${reference}" is not a tag or digest of ${this.name}`, { exitCode: 2, hint: 'a tag is letters, digits, "_", "." and "-" (at most 128)' });
    }
    const m = await this.getManifest(r, signal, true);
    return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
  }

  async fetch(descriptor: Descriptor, signal?: AbortSignal): Promise<Readable> {
    if (isManifestType(descriptor.mediaType)) {
      const bytes = await this.manifestBytes(descriptor, signal);
      return Readable.from([bytes]);
    }
    const what = `blob ${descriptor.digest} of ${this.name}`;
    const open = async (offset: number): Promise<HttpResponse> => {
      const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
      const { res, authSent } = await this.send({ method: 'GET', url: this.url(`blobs/${descriptor.digest}`), headers, signal });
      if (res.status !== 200 && res.status !== 206) await this.raise(res, authSent, what);
      return res;
    };
    const first = await open(0);
    if (first.status !== 200) {
      first.body.destroy();
      throw new GadgetError(`${what}: the registry answered HTTP ${first.status} to a plain download`);
    }
    this.blobs.set(descriptor.digest, this.repository);
    const body = resumableBody(first, descriptor.size, open, what, { maxResumes: this.maxResumes, signal });
    return verified(body, descriptor, what);
  }

  /** A manifest's verified bytes (from the cache when it was just read or written). */
  async manifestBytes(descriptor: Descriptor, signal?: AbortSignal): Promise<Buffer> {
    const what = `manifest ${this.name}@${descriptor.digest}`;
    if (descriptor.size > MAX_MANIFEST_BYTES) {
      throw new GadgetError(`${what}: ${descriptor.size} bytes is more than the ${MAX_MANIFEST_BYTES} allowed for a manifest`);
    }
    const m = await this.getManifest(descriptor.digest, signal, true);
    if (m.bytes.length !== descriptor.size) {
      throw new GadgetError(`${what}: got ${m.bytes.length} bytes, its descriptor says ${descriptor.size}`);
    }
    return m.bytes;
  }

  async exists(descriptor: Descriptor, signal?: AbortSignal): Promise<boolean> {
    const manifest = isManifestType(descriptor.mediaType);
    if (manifest && this.manifests.has(descriptor.digest)) return true;
    const path = `${manifest ? 'manifests' : 'blobs'}/${descriptor.digest}`;
    const headers: Record<string, string> = manifest ? { accept: MANIFEST_ACCEPT } : {};
    // A redirect means the registry serves the blob from elsewhere: it exists. Not following it
    // spares a HEAD against storage URLs signed for GET only.
    const { res, authSent } = await this.send({ method: 'HEAD', url: this.url(path), headers, signal, followRedirects: false });
    res.discard();
    if (res.status === 200 || (res.status >= 300 && res.status < 400 && res.header('location'))) {
      this.blobs.set(descriptor.digest, this.repository);
      return true;
    }
    if (res.status === 404) return false;
    return this.raise(res, authSent, `${manifest ? 'manifest' : 'blob'} ${this.name}@${descriptor.digest}`);
  }

  /**
   * Whether this repository may hold `descriptor` as far as this run and the store's records
   * know. copyGraph pushes what it may not hold without asking first (pushing what is there
   * anyway costs a request, never correctness).
   */
  mayHave(descriptor: Descriptor): boolean {
    return this.manifests.has(descriptor.digest) || this.blobs.seenIn(descriptor.digest, this.repository);
  }

  /**
   * Stores a blob unless it is here, with one POST that mounts it (from a repository of this
   * registry where it was seen) or opens its upload; `open` is called only for an upload. A
   * blob another repository of this registry is uploading now is waited for and then mounted
   * from there. A blob taken without its bytes (here already, mounted) must have the size its
   * descriptor says: unless the source vouches for it (opts.sizeKnown) or this run saw it, a
   * HEAD checks it, and for a blob seen here that HEAD is the only request.
   */
  async pushBlob(descriptor: Descriptor, open: () => Promise<Readable>, signal?: AbortSignal, opts: PushOptions & PushBlobOptions = {}): Promise<'copied' | 'skipped' | 'mounted'> {
    const { digest, size } = descriptor;
    // No await between this check and track(): two pushes of one blob never both upload it.
    for (let pending = this.blobs.inflight(digest); pending; pending = this.blobs.inflight(digest)) await pending;
    const seen = this.blobs.get(digest);
    const sizeKnown = opts.sizeKnown === true || this.blobs.sizeConfirmed(digest, size);
    const from = seen.includes(this.repository) ? this.repository : opts.mountFrom?.[0] ?? this.mountFrom[0] ?? seen[0] ?? this.repository;
    const place = async (): Promise<'copied' | 'skipped' | 'mounted'> => {
      if (from === this.repository && seen.includes(this.repository) && !sizeKnown) {
        if (await this.holdsBlob(descriptor, signal)) return 'skipped';
        await pushBlob(this, descriptor, open, { ...this.uploadDefaults, ...opts, mountFrom: [], signal });
        return 'copied';
      }
      const how = await pushBlob(this, descriptor, open, { ...this.uploadDefaults, ...opts, mountFrom: [from], signal });
      if (how === 'uploaded') return 'copied';
      if (!sizeKnown && !(await this.holdsBlob(descriptor, signal))) {
        throw new GadgetError(`blob ${digest} for ${this.name}: the registry answered that it holds it, then that it does not`, { hint: ODD_ANSWER_HINT });
      }
      return from === this.repository ? 'skipped' : 'mounted';
    };
    const how = await this.blobs.track(digest, place());
    this.blobs.set(digest, this.repository);
    this.blobs.confirmSize(digest, size);
    return how;
  }

  /**
   * Whether the repository holds the blob (a HEAD), refused when it holds it with another size
   * than the descriptor's: the manifest that lists it is wrong.
   */
  private async holdsBlob(descriptor: Descriptor, signal?: AbortSignal): Promise<boolean> {
    const what = `blob ${descriptor.digest} for ${this.name}`;
    const { res, authSent } = await this.send({ method: 'HEAD', url: this.url(`blobs/${descriptor.digest}`), signal, followRedirects: false });
    res.discard();
    if (res.status === 404) return false;
    // A redirect serves the blob from elsewhere: it is there, with a size only the storage knows.
    if (res.status >= 300 && res.status < 400 && res.header('location')) return true;
    if (res.status !== 200) return this.raise(res, authSent, what, 'push');
    const held = Number(res.header('content-length') ?? NaN);
    if (Number.isSafeInteger(held) && held !== descriptor.size) {
      throw new GadgetError(`${what}: the registry holds ${held} bytes under that digest, but the descriptor says ${descriptor.size}`, {
        hint: 'the manifest that lists the blob names the wrong size; correct it where it was made and push it again',
      });
    }
    return true;
  }

  /**
   * Stores a blob or manifest, verified while streaming. Blobs: see pushBlob (opts.mountFrom
   * names the repository to mount from). A manifest with a `subject` is also added to the
   * referrers fallback tag when the registry lacks the API.
   */
  async push(descriptor: Descriptor, content: Readable, signal?: AbortSignal, opts: PushOptions = {}): Promise<void> {
    if (!isManifestType(descriptor.mediaType)) {
      let opened = false;
      const open = async (): Promise<Readable> => {
        opened = true;
        return content;
      };
      try {
        await this.pushBlob(descriptor, open, signal, opts);
      } finally {
        if (!opened) content.destroy();
      }
      return;
    }
    await this.putVerifiedManifest(descriptor, content, descriptor.digest, signal);
  }

  /** Pushes a manifest under a tag: one PUT that stores and tags it (copyGraph's root). */
  async pushTagged(descriptor: Descriptor, content: Readable, reference: string, signal?: AbortSignal): Promise<void> {
    if (!TAG_RE.test(reference) || fallbackTagSubject(reference)) {
      await this.push(descriptor, content, signal);
      await this.tag(descriptor, reference, signal);
      return;
    }
    await this.putVerifiedManifest(descriptor, content, reference, signal);
  }

  private async putVerifiedManifest(descriptor: Descriptor, content: Readable, reference: string, signal?: AbortSignal): Promise<void> {
    const what = `manifest ${this.name}@${descriptor.digest}`;
    if (descriptor.size > MAX_MANIFEST_BYTES) {
      content.destroy();
      throw new GadgetError(`${what}: ${descriptor.size} bytes is more than the ${MAX_MANIFEST_BYTES} allowed for a manifest`);
    }
    const bytes = await readVerified(content, descriptor, what);
    const res = await this.putManifest(reference, bytes, descriptor.mediaType, signal);
    const subject = subjectOf(bytes);
    if (subject && !res.header('oci-subject')) {
      await addToFallbackIndex(this, subject.digest, referrerEntry(descriptor, bytes), signal);
    }
  }

  /**
   * Points `reference` (a tag) at `descriptor`: PUTs its manifest bytes under the tag. The
   * referrers fallback tag (`sha256-<hex>`) is merged instead of replaced, so that the
   * referrers the repository already lists stay: given an index, its entries are merged into
   * the existing fallback index; given a single manifest, that manifest is added to it.
   */
  async tag(descriptor: Descriptor, reference: string, signal?: AbortSignal): Promise<void> {
    if (!TAG_RE.test(reference)) {
      throw new GadgetError(`"${reference}" is not a valid tag for ${this.name}`, { exitCode: 2, hint: 'a tag is letters, digits, "_", "." and "-" (at most 128)' });
    }
    const bytes = await this.manifestBytes(descriptor, signal);
    const subject = fallbackTagSubject(reference);
    if (subject && INDEX_TYPES.has(descriptor.mediaType)) {
      await mergeFallbackIndex(this, subject, bytes, signal);
      return;
    }
    if (subject) {
      await addToFallbackIndex(this, subject, referrerEntry(descriptor, bytes), signal);
      return;
    }
    await this.putManifest(reference, bytes, descriptor.mediaType, signal);
  }

  /**
   * What a tag points at, with one HEAD (the registry's Docker-Content-Digest), or undefined
   * when the tag does not exist. Falls back to a GET when the registry sends no digest.
   */
  async peek(reference: string, signal?: AbortSignal): Promise<Descriptor | undefined> {
    if (!TAG_RE.test(reference)) return undefined;
    const what = `manifest ${this.describe(reference)}`;
    const { res, authSent } = await this.send({ method: 'HEAD', url: this.url(`manifests/${reference}`), headers: { accept: MANIFEST_ACCEPT }, signal });
    res.discard();
    if (res.status === 404) return undefined;
    if (res.status !== 200) return this.raise(res, authSent, what);
    const digest = res.header('docker-content-digest');
    const size = Number(res.header('content-length'));
    const mediaType = (res.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (digest && isDigest(digest) && Number.isSafeInteger(size) && isManifestType(mediaType)) return { mediaType, digest, size };
    const m = await this.getManifest(reference, signal);
    return m && { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
  }

  referrers(descriptor: Descriptor, signal?: AbortSignal): Promise<Referrer[]> {
    return listReferrers(this, descriptor, signal);
  }

  // --- beyond Target --------------------------------------------------------------------------

  /**
   * Every tag of the repository, through every page (pages.ts): Link, `last=`, a bound on
   * pages; a damaged page is asked for again.
   */
  async listTags(signal?: AbortSignal, pageSize = 1000): Promise<string[]> {
    const what = `the tags of ${this.name}`;
    const tags = await listAllPages({
      what,
      origin: this.origin,
      first: this.url(`tags/list?n=${pageSize}`),
      after: (last) => this.url(`tags/list?n=${pageSize}&last=${encodeURIComponent(last)}`),
      key: 'tags',
      valid: (tag) => TAG_RE.test(tag),
      pageSize,
      maxPages: this.maxPages,
      get: async (url) => {
        const { res, authSent } = await this.send({ method: 'GET', url, signal });
        if (res.status !== 200) await this.raise(res, authSent, what);
        return res;
      },
      retrying: (work) => this.client.retrying(work, signal),
      facts: this.facts,
    });
    this.tagSnapshot = new Set(tags);
    return tags;
  }

  /** Deletes a manifest by digest (registries refuse deleting by tag). */
  async delete(descriptor: Descriptor, signal?: AbortSignal): Promise<void> {
    const manifest = isManifestType(descriptor.mediaType);
    const { res, authSent } = await this.send(
      { method: 'DELETE', url: this.url(`${manifest ? 'manifests' : 'blobs'}/${descriptor.digest}`), signal },
      { push: true },
    );
    if (res.status !== 202 && res.status !== 200 && res.status !== 204) await this.raise(res, authSent, `${this.name}@${descriptor.digest}`, 'push');
    res.discard();
    this.manifests.delete(descriptor.digest);
  }
}

/** The media type of manifest bytes: the Content-Type when it names one, else the body's. */
export function manifestMediaType(contentType: string | undefined, bytes: Buffer): string {
  const ct = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (isManifestType(ct)) return ct;
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
    if (typeof doc.mediaType === 'string' && isManifestType(doc.mediaType)) return doc.mediaType;
    return Array.isArray(doc.manifests) ? MT_INDEX : MT_MANIFEST;
  } catch {
    return ct || MT_MANIFEST;
  }
}

/** The `subject` of a manifest or index, if it has a valid one. */
function subjectOf(bytes: Buffer): Descriptor | undefined {
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as Partial<Manifest>;
    const s = doc.subject;
    return s && typeof s.digest === 'string' && isDigest(s.digest) ? s : undefined;
  } catch {
    return undefined;
  }
}
