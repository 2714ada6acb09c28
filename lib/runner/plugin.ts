// The plugin API: a plugin is a plain object with a name and a run(ctx, input) that takes the
// artifacts the previous step produced and returns the ones it produced.
import type { Descriptor } from '../oci/types.js';
import type { Store } from '../../store/store.js';
import type { GadgetConfig } from './config.js';

/** An image in the store. */
export interface Artifact {
  ref: string;
  descriptor: Descriptor;
}

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

export interface PluginContext {
  store: Store;
  log: Logger;
  progress: Progress;
  signal: AbortSignal;
  /** The folder of gadget.config.ts, else the working directory. */
  cwd: string;
  config: GadgetConfig;
  /** A machine-readable result record (printed with --json). */
  emit(record: object): void;
}

export interface Plugin {
  name: string;
  run(ctx: PluginContext, input: Artifact[]): Promise<Artifact[]>;
}
