// Where people and scripts read from: results go to stdout (JSON lines with --json), logs and
// progress to stderr; a progress bar only on a TTY, plain lines otherwise.
import { painter } from '../colour.js';
import type { Logger, Progress, ProgressBar } from './plugin.js';

export interface OutputOptions {
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  /** Draw progress even when stderr is not a terminal (--progress). */
  progress?: boolean;
  stderr?: NodeJS.WriteStream;
}

export function createLogger(opts: OutputOptions): Logger {
  const err = opts.stderr ?? process.stderr;
  const paint = painter(err);
  return {
    info: (m) => {
      if (!opts.quiet) err.write(`${m}\n`);
    },
    warn: (m) => {
      if (!opts.quiet) err.write(`${paint.yellow('warning:')} ${m}\n`);
    },
    debug: (m) => {
      if (opts.verbose) err.write(`debug: ${m}\n`);
    },
  };
}

export function createProgress(opts: OutputOptions): Progress {
  const err = opts.stderr ?? process.stderr;
  const tty = (Boolean(err.isTTY) || Boolean(opts.progress)) && !opts.quiet;
  return {
    start(total: number, label: string): ProgressBar {
      let done = 0;
      let last = 0;
      const draw = (current: string): void => {
        const width = 30;
        const filled = total > 0 ? Math.round((done / total) * width) : width;
        err.write(`\r\x1b[K${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${current}`.slice(0, (err.columns || 100) + 8)); // a pseudo-terminal without a size says 0 columns
      };
      return {
        tick(n = 1, current = '') {
          done += n;
          if (!tty) return;
          const now = Date.now();
          if (now - last > 50 || done >= total) {
            last = now;
            draw(current);
          }
        },
        done() {
          if (tty) err.write('\r\x1b[K');
        },
      };
    },
  };
}
