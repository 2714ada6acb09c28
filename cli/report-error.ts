// How a failed command ends, the same for every command: one `error:` sentence and a `hint:`
// line on stderr (never a stack trace for an expected failure) and, with --json, the error as
// the one JSON document on stdout, so that `gadget --json ... | jq` always has input.
import { painter } from '../lib/colour.js';
import { printable } from '../lib/format.js';
import { fileSystemError, isGadgetError } from '../lib/errors.js';
import { encodeJSON } from '../lib/oci/json.js';

export interface ErrorDocument {
  error: { message: string; hint?: string; code: number };
  /** What the command's steps recorded before it failed (a task: each gadget built, or failed). */
  records?: object[];
}

/** Prints `err` and returns the exit code: the error's own (1 or 2), 130 when interrupted, else 2. */
export function reportError(caught: unknown, opts: { json: boolean; verbose: boolean; printedJSON: boolean; aborted: boolean; usageHint?: string; records?: object[] }): number {
  // The environment refusing a file operation (permission, read-only, full disk) is one sentence too.
  const err = isGadgetError(caught) ? caught : fileSystemError(caught) ?? caught;
  let doc: ErrorDocument;
  // Once interrupted, whatever a cancelled step threw ("clang was cancelled") is the interrupt.
  if (opts.aborted) {
    const hint = 'what was written is whole (every store write is atomic); run the command again to finish';
    doc = { error: { message: 'interrupted', hint, code: 130 } };
    process.stderr.write(`error: interrupted\nhint: ${hint}\n`);
  } else if (isGadgetError(err)) {
    // A usage error that brings no fix of its own points at the command's help.
    const hint = err.hint ?? (err.exitCode === 2 ? opts.usageHint : undefined);
    doc = { error: { message: err.message, hint, code: err.exitCode } };
    const paint = painter(process.stderr);
    // Messages may quote what came with an image: each line is printed inert (see printable).
    const inert = (text: string): string => text.split('\n').map(printable).join('\n');
    process.stderr.write(`${paint.red('error:')} ${inert(err.message)}\n${hint ? `hint: ${inert(hint)}\n` : ''}`);
    const cause = (err as { cause?: unknown }).cause;
    if (opts.verbose && cause instanceof Error && cause.stack) process.stderr.write(`debug: caused by ${cause.stack}\n`);
  } else {
    const message = `unexpected failure (a bug in gadget-oci, please report it): ${(err as Error)?.message ?? String(err)}`;
    doc = { error: { message, hint: 'run it again with -v, and report the error with the stack trace above', code: 2 } };
    process.stderr.write(`error: unexpected failure (a bug in gadget-oci, please report it): ${(err as Error)?.stack ?? String(err)}\n`);
  }
  if (doc.error.hint === undefined) delete doc.error.hint;
  if (opts.records?.length) doc.records = opts.records;
  // A command that already wrote its document (and then failed) keeps stdout one document.
  if (opts.json && !opts.printedJSON) process.stdout.write(encodeJSON(doc) + '\n');
  return doc.error.code;
}

/** Whether --json is among the global flags, for errors thrown before they are parsed. */
export function wantsJSON(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}
