// Opening a registry: its client (HTTP, auth, credentials, what is known about it), a
// repository of it as a Target, and a login check. HTTPS unless the host is loopback or
// named as insecure.
import type { Reference } from '../oci/reference.js';
import { AuthClient } from './auth.js';
import { readCredentials, type Credential } from './credentials.js';
import { registryError } from './errors.js';
import { HttpClient, hostnameOf, isLoopbackHost, type RetryOptions, type Timeouts } from './http.js';
import { BlobLocations } from './locations.js';
import type { RegistryFacts } from './plumbing.js';
import { RemoteRepository } from './repository.js';
import type { UploadOptions } from './upload.js';

export interface OpenOptions {
  /** Hosts (host[:port], or a host name for every port) that may be reached over plain HTTP. */
  insecure?: string[];
  /** ig's --authfile, consulted before the docker config. */
  authfile?: string;
  /** Requests in flight at once for this repository (default 8). */
  concurrency?: number;
  userAgent?: string;
  /** Credentials to use instead of the stored ones (e.g. from command-line flags). */
  credentials?: Credential;
  /** Environment for DOCKER_CONFIG, HOME and credential helpers (default process.env). */
  env?: NodeJS.ProcessEnv;
  retry?: RetryOptions;
  /** Connect, silent-connection and answer timeouts (DEFAULT_TIMEOUTS otherwise). */
  timeouts?: Timeouts;
  /** Blob upload defaults: mode, chunk size, repositories to mount from. */
  upload?: UploadOptions;
  /** How often a broken blob download is resumed (default 5). */
  maxResumes?: number;
  /** Pages of a tag list or catalog followed at most (default 1000); more is an error. */
  maxPages?: number;
}

export const DEFAULT_USER_AGENT = 'gadget-oci/0.1';

/** A predicate for hosts that may be reached over plain HTTP: loopback and the named ones. */
export function plainHttpAllowed(insecure: string[] = []): (host: string) => boolean {
  const named = insecure.map((h) => h.trim().toLowerCase().replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '')).filter(Boolean);
  return (host: string) => {
    const h = host.toLowerCase();
    return isLoopbackHost(h) || named.some((n) => n === h || (!/:\d+$/.test(n) && n === hostnameOf(h)));
  };
}

export interface RegistryClient {
  auth: AuthClient;
  scheme: 'https:' | 'http:';
  /** Blobs known to be in a repository of this registry: pushes elsewhere mount them from there. */
  blobs: BlobLocations;
  /** What was learnt about the registry (its referrers API), shared by its repositories. */
  facts: RegistryFacts;
  maxPages?: number;
}

/**
 * The authenticated transport of one registry: a request limit, retries and the token cache.
 * Repositories opened with the same client share them (see RegistryPool).
 */
export function registryClient(registry: string, opts: OpenOptions = {}): RegistryClient {
  const allowHttp = plainHttpAllowed(opts.insecure);
  const scheme = allowHttp(registry) ? 'http:' : 'https:';
  const http = new HttpClient({
    concurrency: opts.concurrency,
    userAgent: opts.userAgent ?? DEFAULT_USER_AGENT,
    retry: opts.retry,
    timeouts: opts.timeouts,
    allowHttp,
  });
  const credentials = opts.credentials
    ? () => Promise.resolve(opts.credentials)
    : () => readCredentials(registry, { authfile: opts.authfile, env: opts.env });
  const auth = new AuthClient({ host: registry, origin: new URL(`${scheme}//${registry}`).origin, http, credentials, allowHttp });
  return { auth, scheme, blobs: new BlobLocations(), facts: {}, maxPages: opts.maxPages };
}

/** The repository of `ref` (its tag or digest is ignored) as a Target. */
export function openRepository(ref: Reference, opts: OpenOptions & { client?: RegistryClient } = {}): RemoteRepository {
  const { auth, scheme, blobs, facts, maxPages } = opts.client ?? registryClient(ref.registry, opts);
  return new RemoteRepository(ref, { scheme, client: auth, upload: opts.upload, maxResumes: opts.maxResumes, blobs, facts, maxPages });
}

/**
 * Checks that the registry answers and accepts the credentials (given, else stored) at
 * `/v2/`: for `gadget login` before it stores them. Throws a GadgetError otherwise.
 */
export async function pingRegistry(registry: string, opts: OpenOptions = {}, signal?: AbortSignal): Promise<void> {
  const { auth, scheme } = registryClient(registry, opts);
  const { res, authSent } = await auth.send({ method: 'GET', url: new URL(`${scheme}//${registry}/v2/`), signal }, []);
  if (res.status === 200) {
    res.discard();
    return;
  }
  const body = await res.errorBody();
  throw registryError(res.status, body, { what: `logging in to ${registry}`, host: registry, authSent });
}
