// How a `gadget` process ends, the same for every command:
// - when the command's promise settles, the output is flushed and the process exits, even if
//   a config or plugin left a timer or socket behind;
// - when node is about to exit while the command is still pending (the event loop ran empty:
//   a promise nothing will ever settle), that is an error with a sentence, never a silent 0;
// - the first SIGINT/SIGTERM aborts the command (it cleans up and exits 130); a second one
//   ends the process at once. While gadget.config.ts is evaluated the signals keep their
//   default action: JS handlers cannot run while a config blocks the event loop.
import { writeSync } from 'node:fs';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
const INTERRUPTED = 130;

let finished = false;
let command = 'gadget';
let interrupts = 0;
let onInterrupt: (() => void) | undefined;
let paused = 0;
let installed = false;

function handleSignal(): void {
  interrupts++;
  if (interrupts > 1) {
    writeSync(2, 'error: interrupted twice; stopping at once\n');
    exitNow(INTERRUPTED);
  }
  onInterrupt?.();
}

function listen(): void {
  for (const s of SIGNALS) process.on(s, handleSignal);
}

function unlisten(): void {
  for (const s of SIGNALS) process.removeListener(s, handleSignal);
}

function exitNow(code: number): never {
  finished = true;
  process.exit(code);
}

function unfinished(): void {
  if (finished) return;
  writeSync(
    2,
    `error: ${command} stopped before it finished: it waited for something that can never happen (a promise that never settles in gadget.config.ts, a plugin, or gadget-oci itself)\n` +
      'hint: check top-level awaits and plugin steps of gadget.config.ts; if they are fine, this is a bug in gadget-oci, please report it\n',
  );
  process.exitCode = 2;
  finished = true;
}

/** Installs the guard; `abort` is called on the first SIGINT/SIGTERM. */
export function guardProcess(name: string, abort: () => void): void {
  command = `gadget ${name}`.trim();
  onInterrupt = abort;
  process.once('beforeExit', () => {
    unfinished();
    process.exit();
  });
  // A plugin that calls process.exit() in the middle of a command does not make it a success.
  process.on('exit', unfinished);
  installed = true;
  listen();
}

/** Runs `fn` (the evaluation of gadget.config.ts) with the signals' default action: they end the process. */
export async function withDefaultSignals<T>(fn: () => Promise<T>): Promise<T> {
  if (!installed) return fn();
  if (paused++ === 0) unlisten();
  try {
    return await fn();
  } finally {
    if (--paused === 0) listen();
  }
}

/** Ends the process with `code` once stdout and stderr are flushed. */
export function finish(code: number): void {
  finished = true;
  process.exitCode = code;
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

/** For the EPIPE handler: the reader went away, which is not an error. */
export function exitQuietly(code: number): never {
  return exitNow(code);
}
