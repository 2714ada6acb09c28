// How long-running work reports to the person watching: log lines and progress bars. The
// store, the plugins and the server take these; lib/runner/output.ts draws them on a terminal.

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

export interface ProgressBar {
  /** `n` more items done; `label` names the current one. */
  tick(n?: number, label?: string): void;
  /** `n` more bytes moved (shown with the rate; optional for third-party implementations). */
  bytes?(n: number): void;
  done(): void;
}

export interface Progress {
  start(total: number, label: string): ProgressBar;
}
