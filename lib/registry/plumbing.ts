// What upload.ts and referrers.ts need of a repository, which RemoteRepository provides: its
// names, requests with its authorization, and its manifests. In a file of its own so that
// neither of them imports repository.ts back.
import type { HttpRequest, HttpResponse } from './http.js';

export interface ManifestBytes {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

/** What a registry was found to do, shared by the repositories of one registry. */
export interface RegistryFacts {
  referrersApi?: boolean;
  /** The first referrers lookup while it finds out whether the API exists. */
  referrersProbe?: Promise<void>;
  /** The most names one page of a tag list or the catalog held (pages.ts: when a page is the end). */
  longestPage?: number;
}

export interface RepositoryPlumbing {
  readonly name: string;
  readonly host: string;
  readonly repository: string;
  readonly origin: string;
  /** What was learnt about the registry, shared by its repositories. */
  readonly facts: RegistryFacts;
  /** Whether the registry answers the referrers API; undefined until first asked. */
  referrersApi: boolean | undefined;
  /** The tags as the last tag listing saw them (referrers are looked up only under those). */
  tagSnapshot: Set<string> | undefined;
  /** Serialises updates of one fallback tag index within this process. */
  readonly fallbackLocks: Map<string, Promise<void>>;
  /** An URL under this repository: `url('manifests/v1')` -> `<origin>/v2/<repo>/manifests/v1`. */
  url(path: string): URL;
  /** Sends with the authorization for pull (or pull+push) on this repository plus `scopes`. */
  send(req: HttpRequest, opts?: { push?: boolean; scopes?: string[] }): Promise<{ res: HttpResponse; authSent: boolean }>;
  /** Runs `work` again while it fails transiently, with the client's backoff. */
  retrying<T>(work: (attempt: number) => Promise<T>, signal?: AbortSignal): Promise<T>;
  /** Throws the error for a failed answer. */
  raise(res: HttpResponse, authSent: boolean, what: string, access?: 'pull' | 'push'): Promise<never>;
  /** A manifest's bytes by tag or digest; undefined when the registry says 404. */
  getManifest(reference: string, signal?: AbortSignal): Promise<ManifestBytes | undefined>;
  putManifest(reference: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<HttpResponse>;
}
