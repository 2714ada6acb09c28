// The registry client as the rest of the program uses it: open a remote repository as a
// Target (client.ts), check a login, manage stored credentials. Only re-exports, so that the
// modules below import each other directly and never this file (no import cycles).
export { AuthClient, mergeScopes, parseWWWAuthenticate, repositoryScope, type Challenge } from './auth.js';
export { dockerConfigPath, login, logout, normalizeRegistryHost, readCredentials, type Credential, type CredentialOptions, type LoginResult } from './credentials.js';
export { ConnectionError, RegistryError, isNotFound, parseErrorBody, redactUrl, registryError } from './errors.js';
export { DEFAULT_TIMEOUTS, HttpClient, HttpResponse, Semaphore, isLoopbackHost, isRetryableStatus, nextLink, parseRetryAfter, type HttpRequest, type RetryOptions, type Timeouts } from './http.js';
export { listRepositories } from './catalog.js';
export { RegistryPool, type Role } from './pool.js';
export { fallbackTag, fallbackTagSubject } from './referrers.js';
export { BlobLocations, type LocationRecords } from './locations.js';
export { RemoteRepository, manifestMediaType, type PushOptions } from './repository.js';
export type { RegistryFacts } from './plumbing.js';
export type { UploadOptions } from './upload.js';
export { DEFAULT_USER_AGENT, openRepository, pingRegistry, plainHttpAllowed, registryClient, type OpenOptions, type RegistryClient } from './client.js';
