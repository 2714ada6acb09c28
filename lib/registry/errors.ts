// Registry answers turned into sentences a person can act on. The registry's JSON error body
// (`{"errors":[{"code":"MANIFEST_UNKNOWN","message":...}]}`) names the reason; the reference
// and the host name what failed. No header, URL query or credential ever reaches a message.
import { GadgetError, type ExitCode } from '../errors.js';

export interface RegistryErrorDetail {
  code: string;
  message: string;
}

/**
 * A GadgetError from a registry answer, with the HTTP status and the registry's error codes
 * kept for callers that branch on them (e.g. "not found" while listing referrers).
 */
/** For an answer the distribution API does not allow (not JSON, too large, pages that loop). */
export const ODD_ANSWER_HINT = 'the registry (or a proxy in front of it) does not answer as the distribution API says: check the address; if it is right, try again later or ask its operator';

export class RegistryError extends GadgetError {
  readonly status: number;
  readonly codes: string[];

  constructor(message: string, opts: { hint?: string; exitCode?: ExitCode; status: number; codes: string[]; transient?: boolean }) {
    super(message, { hint: opts.hint, exitCode: opts.exitCode, transient: opts.transient });
    this.status = opts.status;
    this.codes = opts.codes;
  }
}

/** True for an error that says the manifest, blob or repository does not exist. */
export function isNotFound(err: unknown): boolean {
  return err instanceof RegistryError && err.status === 404;
}

/** The registry's error list; [] when the body is not the distribution error JSON. */
export function parseErrorBody(body: Buffer | undefined): RegistryErrorDetail[] {
  if (!body || body.length === 0 || body.length > 64 * 1024) return [];
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: unknown };
    if (!Array.isArray(parsed.errors)) return [];
    return parsed.errors
      .filter((e): e is { code?: unknown; message?: unknown } => typeof e === 'object' && e !== null)
      .map((e) => ({ code: typeof e.code === 'string' ? e.code : 'UNKNOWN', message: typeof e.message === 'string' ? e.message : '' }));
  } catch {
    return [];
  }
}

/** Printable, short text from a remote party: no control characters, at most 200 characters. */
export function sanitizeRemoteText(text: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return clean.length > 200 ? clean.slice(0, 200) + '...' : clean;
}

/** An URL as it may appear in a message: scheme, host and path; never userinfo or query. */
export function redactUrl(url: URL | string): string {
  try {
    const u = typeof url === 'string' ? new URL(url) : url;
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(an invalid URL)';
  }
}

export interface ErrorContext {
  /** What was asked for, e.g. `manifest localhost:5000/x:v1` or `blob sha256:... of localhost:5000/x`. */
  what: string;
  /** The registry host (host[:port]). */
  host: string;
  /** The repository, for NAME_UNKNOWN. */
  repository?: string;
  /** `pull` or `push`: what the access was for, for DENIED. */
  access?: 'pull' | 'push';
  /** Whether credentials were sent: a 401 then means they were rejected. */
  authSent?: boolean;
}

const loginHint = (host: string): string => `run "gadget login ${host}" with an account that may access it`;

/** The GadgetError for a registry answer that is not a success. */
export function registryError(status: number, body: Buffer | undefined, ctx: ErrorContext): RegistryError {
  const details = parseErrorBody(body);
  const codes = details.map((d) => d.code);
  const has = (code: string): boolean => codes.includes(code);
  const remote = details.length > 0 ? sanitizeRemoteText(details.map((d) => d.message || d.code).join('; ')) : '';
  const { what, host } = ctx;
  const make = (message: string, hint: string | undefined, exitCode: ExitCode, transient = false): RegistryError =>
    new RegistryError(message, { hint, exitCode, status, codes, transient });

  if (status === 401 || has('UNAUTHORIZED')) {
    return ctx.authSent
      ? make(`${what}: the registry ${host} rejected the credentials (401 Unauthorized)`, `check the user name and password, then ${loginHint(host)}`, 2)
      : make(`${what}: the registry ${host} requires authentication (401 Unauthorized)`, loginHint(host), 2);
  }
  if (status === 403 || has('DENIED')) {
    const access = ctx.access === 'push' ? 'push to' : 'pull from';
    return make(`${what}: access denied by ${host} (403 Forbidden)`, `check that your account may ${access} this repository; ${loginHint(host)}`, 2);
  }
  if (status === 429 || has('TOOMANYREQUESTS')) {
    return make(`${what}: the registry ${host} is limiting the request rate (429 Too Many Requests)`, 'wait a few minutes and try again; logged-in accounts often get higher limits', 1);
  }
  if (has('NAME_UNKNOWN')) {
    const repo = ctx.repository ? `repository ${ctx.repository}` : 'the repository';
    return make(`${what}: ${repo} does not exist on ${host}`, 'check the repository name (and that you are logged in if it is private)', 1);
  }
  if (has('MANIFEST_UNKNOWN')) {
    return make(`${what}: not found on ${host} (manifest unknown)`, 'check the repository name and the tag or digest', 1);
  }
  if (has('BLOB_UNKNOWN')) {
    return make(`${what}: the blob is not in the repository on ${host} (blob unknown)`, 'push the blob first, or check the digest', 1);
  }
  if (has('MANIFEST_BLOB_UNKNOWN')) {
    return make(`${what}: ${host} refused the manifest because it references content the repository lacks`, 'push the config, layers and child manifests before the manifest', 1);
  }
  if (has('MANIFEST_INVALID') || has('MANIFEST_UNVERIFIED') || has('TAG_INVALID') || has('NAME_INVALID')) {
    return make(`${what}: ${host} refused it as invalid${remote ? ` (${remote})` : ''}`, 'check the manifest media type and content', 1);
  }
  if (has('DIGEST_INVALID') || has('SIZE_INVALID')) {
    // Damaged on the way, or a session lost (e.g. its last answer never arrived): a new upload may work.
    return make(`${what}: ${host} found that the uploaded content does not match its digest or size`, 'the content changed while it was sent; try again', 1, true);
  }
  if (has('BLOB_UPLOAD_UNKNOWN') || has('BLOB_UPLOAD_INVALID') || has('RANGE_INVALID')) {
    return make(`${what}: ${host} lost or refused the upload session${remote ? ` (${remote})` : ''}`, 'try again; the upload starts from the beginning', 1, true);
  }
  if (status === 404) {
    return make(`${what}: not found on ${host} (HTTP 404)`, 'check the reference', 1);
  }
  if (has('UNSUPPORTED') || status === 405 || status === 501) {
    return make(`${what}: ${host} does not support this operation (HTTP ${status})`, undefined, 1);
  }
  if (status >= 500) {
    return make(`${what}: the registry ${host} failed with HTTP ${status}${remote ? ` (${remote})` : ''}`, 'the registry has a problem; try again later', 1);
  }
  const code = codes.length > 0 ? ` ${codes.join(', ')}` : '';
  return make(`${what}: ${host} answered HTTP ${status}${code}${remote ? ` (${remote})` : ''}`, undefined, 1);
}

/** A request that got no HTTP answer at all, after its retries. */
export class ConnectionError extends GadgetError {
  /** The connection failed in a way a later try may not (reset, refused); not TLS, DNS or a timeout. */
  readonly flaky: boolean;

  constructor(message: string, opts: { hint?: string; exitCode?: ExitCode; flaky: boolean }) {
    super(message, { hint: opts.hint, exitCode: opts.exitCode });
    this.flaky = opts.flaky;
  }
}

/** The error for a request that got no HTTP answer at all. */
export function connectionError(err: unknown, url: URL, attempts: number): ConnectionError {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  const host = url.host;
  const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
  if (/^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED)/.test(code) || code === 'EPROTO') {
    return new ConnectionError(`cannot reach the registry ${host}: TLS failed (${code})`, {
      exitCode: 2,
      flaky: false,
      hint: `if ${host} serves plain HTTP, name it with --insecure-registry ${host} (or registries.insecure in gadget.config.ts); otherwise check its certificate`,
    });
  }
  const why = code === 'ECONNREFUSED' ? 'connection refused'
    : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'the host name does not resolve'
    : code === 'GADGET_TIMEOUT' ? (err as Error).message
    : code === 'ETIMEDOUT' ? 'the connection timed out'
    : code === 'ECONNRESET' ? 'the connection was reset'
    : code ? code : 'the connection failed';
  return new ConnectionError(`cannot reach the registry ${host} (${redactUrl(url)}): ${why}${tries}`, {
    exitCode: 2,
    flaky: ['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE'].includes(code) || code === '',
    hint: 'check the registry address and your network, then try again',
  });
}
