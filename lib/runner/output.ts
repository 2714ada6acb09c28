// Where people and scripts read from: results go to stdout (JSON lines with --json), logs and
// progress to stderr; a progress bar only on a TTY (or with --progress, plain lines).
import { painter } from '../colour.js';
import { formatSize } from '../format.js';
import type { Logger, Progress, ProgressBar } from '../progress.js';

export interface OutputOptions {
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  /** Draw progress even when stderr is not a terminal (--progress). */
  progress?: boolean;
  stderr?: NodeJS.WriteStream;
}

/** Terminals on which a progress bar is drawn now: a log line clears it first (the bar comes back on its next redraw). */
const barsShown = new WeakSet<NodeJS.WriteStream>();

export function createLogger(opts: OutputOptions): Logger {
  const err = opts.stderr ?? process.stderr;
  const paint = painter(err);
  const write = (line: string): void => {
    if (barsShown.delete(err)) err.write('\r\x1b[K');
    err.write(line);
  };
  return {
    info: (m) => {
      if (!opts.quiet) write(`${m}\n`);
    },
    warn: (m) => {
      if (!opts.quiet) write(`${paint.yellow('warning:')} ${m}\n`);
    },
    debug: (m) => {
      if (opts.verbose) write(`debug: ${m}\n`);
    },
  };
}

/**
 * The one progress mechanism: items done of a total (many small images) and bytes moved with
 * the rate (large blobs). On a terminal one line redrawn in place; elsewhere nothing, unless
 * --progress asks for it, then a plain line at most once a second and a last one at the end.
 */
export function createProgress(opts: OutputOptions): Progress {
  const err = opts.stderr ?? process.stderr;
  const tty = Boolean(err.isTTY) && !opts.quiet;
  const lines = !tty && Boolean(opts.progress) && !opts.quiet;
  return {
    start(total: number, label: string): ProgressBar {
      const started = Date.now();
      let done = 0;
      let moved = 0;
      let last = 0;
      let current = '';
      const status = (): string => {
        const seconds = (Date.now() - started) / 1000;
        const rate = moved > 0 && seconds > 0 ? `  ${formatSize(Math.round(moved / seconds))}/s` : '';
        return `${done}/${total}${moved > 0 ? `  ${formatSize(moved)}${rate}` : ''}`;
      };
      const draw = (force: boolean): void => {
        const now = Date.now();
        if (!force && now - last < (tty ? 100 : 1000)) return;
        last = now;
        if (tty) {
          const width = 30;
          const filled = total > 0 ? Math.min(width, Math.round((done / total) * width)) : width;
          // A pseudo-terminal without a size says 0 columns.
          err.write(`\r\x1b[K${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${status()} ${current}`.slice(0, (err.columns || 100) + 8));
          barsShown.add(err);
        } else if (lines) {
          err.write(`${label} ${status()}${current ? `  ${current}` : ''}\n`);
        }
      };
      return {
        tick(n = 1, label = '') {
          done += n;
          current = label;
          draw(done >= total);
        },
        // Only a bar that is drawn counts bytes: a counted stream costs a wrapper per blob,
        // and hides the download's own digest check from the store, which then hashes again.
        bytes: tty || lines
          ? (n: number) => {
              moved += n;
              draw(false);
            }
          : undefined,
        done() {
          if (tty) {
            err.write('\r\x1b[K');
            barsShown.delete(err);
          }
          else if (lines) {
            current = '';
            draw(true);
          }
        },
      };
    },
  };
}
