// The one error type for failures a person can act on. The CLI prints `message` and `hint`
// (no stack trace) and exits with `exitCode`: 1 a failure found, 2 usage or environment.

export type ExitCode = 1 | 2;

export class GadgetError extends Error {
  readonly exitCode: ExitCode;
  readonly hint?: string;
  /**
   * True when trying again may succeed: content damaged on the way (a body that is cut short or
   * not JSON). Copies retry such failures a bounded number of times. 'once' for content that
   * arrived whole but does not match its digest: one more read gets the right bytes if they
   * were altered on the way; a registry that holds wrong bytes sends them again, so no more.
   */
  readonly transient: boolean | 'once';

  constructor(message: string, opts: { hint?: string; exitCode?: ExitCode; cause?: unknown; transient?: boolean | 'once' } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GadgetError';
    this.exitCode = opts.exitCode ?? 1;
    this.hint = opts.hint;
    this.transient = opts.transient ?? false;
  }
}

/** Whether another try may succeed (see GadgetError.transient): after `attempts` tries so far. */
export function isTransient(err: unknown, attempts = 1): boolean {
  if (!isGadgetError(err)) return false;
  return err.transient === true || (err.transient === 'once' && attempts < 2);
}

/** A usage or environment error (exit code 2). */
export function usageError(message: string, hint?: string): GadgetError {
  return new GadgetError(message, { hint, exitCode: 2 });
}

/** Duck-typed: a config loaded through the package's compiled entry point has its own copy of this class. */
export function isGadgetError(err: unknown): err is GadgetError {
  return err instanceof Error && err.name === 'GadgetError' && ((err as GadgetError).exitCode === 1 || (err as GadgetError).exitCode === 2);
}

/** The message of any thrown value, for wrapping foreign errors. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const FILE_SYSTEM_CODES: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exceeded',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'it is a folder',
  ERR_FS_FILE_TOO_LARGE: 'the file is larger than 2 GiB',
};

const REINDEX_HINT = 'run `gadget fsck --reindex`: it makes the index again from the OCI layout, which holds everything';

/** SQLite's refusals, whole sentences: they are about the store's index, whatever the query was. */
const INDEX_CODES: Record<string, { reason: string; hint?: string }> = {
  SQLITE_READONLY: { reason: 'the store\'s index is read-only' },
  SQLITE_CANTOPEN: { reason: 'the store\'s index cannot be opened' },
  SQLITE_FULL: { reason: 'the store\'s index cannot grow: no space left on the device' },
  // Damage a command meets only in the middle of its work (the first read of every command
  // replaces an index found damaged; see store/db.ts withDatabase).
  SQLITE_CORRUPT: { reason: 'the store\'s index is damaged', hint: REINDEX_HINT },
  SQLITE_NOTADB: { reason: 'the store\'s index is damaged', hint: REINDEX_HINT },
};

/**
 * The environment's refusal of a file operation (permission denied, a read-only or full file
 * system) as one sentence with exit code 2, or undefined for any other error. Whatever code
 * path met it, the person can act on it the same way.
 */
export function fileSystemError(err: unknown): GadgetError | undefined {
  const found = fileSystemReason(err);
  if (!found) return undefined;
  const e = err as NodeJS.ErrnoException;
  const message = found.code.startsWith('SQLITE')
    ? found.reason
    : e.path
      ? `cannot ${e.syscall ? `${e.syscall} ` : 'use '}${e.path}: ${found.reason}`
      : `a file operation failed: ${found.reason}`;
  return new GadgetError(message, { exitCode: 2, cause: err, hint: found.hint });
}

const ENVIRONMENT_HINT = 'check the permissions and free space of the store and of the folders the command reads and writes';

/** Hints for codes about the shape of a path (a file where a folder should be, or the reverse), not the environment. */
const PATH_SHAPE_HINTS: Record<string, string> = {
  ENOTDIR: 'check that every folder on the path is a folder, not a file',
  EISDIR: 'give the path of a file, not of a folder',
};

/**
 * What fileSystemError says about `err` (its reason and hint), for callers that name the file
 * themselves (`cannot write FILE: REASON`); undefined for any other error.
 */
export function fileSystemReason(err: unknown): { code: string; reason: string; hint: string } | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as NodeJS.ErrnoException;
  const code = typeof e.code === 'string' ? e.code.replace(/^(SQLITE_[A-Z]+)_.*$/, '$1') : '';
  const index = INDEX_CODES[code];
  if (index) return { code, reason: index.reason, hint: index.hint ?? ENVIRONMENT_HINT };
  const reason = FILE_SYSTEM_CODES[code];
  if (!reason) return undefined;
  return { code, reason, hint: PATH_SHAPE_HINTS[code] ?? ENVIRONMENT_HINT };
}
