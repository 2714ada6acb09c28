// The small HTTP vocabulary of the server: the distribution spec's error format and codes,
// and responses with their headers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileSystemError, isGadgetError, messageOf } from '../lib/errors.js';

export const DIGEST = /^sha256:[a-f0-9]{64}$/;

export interface RegistryLimits {
  /** Largest manifest accepted (bytes). */
  manifestBytes: number;
  /** Largest blob accepted (bytes). */
  uploadBytes: number;
  /** Upload sessions open at once. */
  uploads: number;
  /** An upload session that receives nothing for this long (ms) is closed and its file removed. */
  uploadIdleMs: number;
}

/** Error codes of the OCI distribution spec (and the status each one is sent with). */
export const CODES = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  /** Not the client's doing (distribution's own code for it). */
  UNKNOWN: 500,
} as const;
export type Code = keyof typeof CODES;

/** A failure the client caused or must know about; anything else is a 500. */
export class RegistryError extends Error {
  constructor(
    readonly code: Code,
    message: string,
    readonly status: number = CODES[code],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * A failure of the server itself, as a 500 UNKNOWN: its message when it is one of ours (a
 * GadgetError, a refused file operation), else a sentence that points at the log, since a
 * JavaScript error's text says nothing to a client and much about the code.
 */
export function internalError(err: unknown): RegistryError {
  const known = isGadgetError(err) ? err : fileSystemError(err);
  const message = known ? `${known.message}${known.hint ? ` (${known.hint})` : ''}` : 'the server failed to answer this request; its log says why';
  return new RegistryError('UNKNOWN', message);
}

/** The log line of a failure: its message, and for a JavaScript error its kind. */
export function logLine(err: unknown): string {
  return isGadgetError(err) || !(err instanceof Error) ? messageOf(err) : `${err.name}: ${err.message}`;
}

export function sendError(res: ServerResponse, err: RegistryError): void {
  const body = JSON.stringify({ errors: [{ code: err.code, message: err.message, detail: null }] });
  res.writeHead(err.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...err.headers });
  res.end(body);
}

export function send(res: ServerResponse, status: number, headers: Record<string, string | number>, body?: Buffer | string, head = false): void {
  const bytes = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body);
  res.writeHead(status, { ...(bytes ? { 'Content-Length': bytes.length } : { 'Content-Length': 0 }), ...headers });
  res.end(head ? undefined : bytes);
}

export function sendJSON(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}, head = false): void {
  send(res, status, { 'Content-Type': 'application/json', ...headers }, JSON.stringify(value), head);
}

/** A request body read whole, refused past `limit` bytes. */
export async function readBody(req: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new RegistryError('SIZE_INVALID', `${what} is ${declared} bytes, more than the ${limit} allowed`, 413);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new RegistryError('SIZE_INVALID', `${what} is more than the ${limit} bytes allowed`, 413);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
