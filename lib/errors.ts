// The one error type for failures a person can act on. The CLI prints `message` and `hint`
// (no stack trace) and exits with `exitCode`: 1 a failure found, 2 usage or environment.

export type ExitCode = 1 | 2;

export class GadgetError extends Error {
  readonly exitCode: ExitCode;
  readonly hint?: string;

  constructor(message: string, opts: { hint?: string; exitCode?: ExitCode; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GadgetError';
    this.exitCode = opts.exitCode ?? 1;
    this.hint = opts.hint;
  }
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
