// The runner's types: what gadget.config.ts declares, and the plugin API (a plugin is a plain
// object with a name and a run(ctx, input) that takes the artifacts the previous step produced
// and returns the ones it produced). Plugins add their own config keys by augmenting
// GadgetConfig here.
import type { Descriptor } from '../oci/types.js';
import type { Logger, Progress } from '../progress.js';
import type { Store } from '../../store/store.js';

/** A named task: steps that run in order, after the tasks it depends on. */
export interface TaskDefinition {
  /** One line shown by `gadget tasks`. */
  description?: string;
  /** Tasks that run first (each once per `gadget run`), as in `deno task`. */
  dependsOn?: string[];
  /** The plugins to run, in order; each gets the images the previous one returned. */
  steps: Plugin[];
}

/**
 * What gadget.config.ts exports through `defineConfig`. Every key is listed: a misspelt key
 * is a type error in the editor and an error at run time. Plugins add their own keys by
 * augmenting this interface (the build plugin adds `gadgets`, the sync plugin `registries` and
 * `mirrors`).
 */
export interface GadgetConfig {
  /** The store folder, relative to the config file (default: ig's store, `~/.ig/oci-store` or `/var/lib/ig/oci-store` for root). */
  store?: string;
  /** The ig version the gadgets target: the `io.inspektor-gadget.builder.version` annotation (default `gadget-oci/<version>`). */
  igVersion?: string;
  /** How many gadgets build at once: a positive integer (default: the number of CPUs). */
  concurrency?: number;
  /** Include roots for every gadget, like `gadget build --include DIR` (each adds DIR and DIR/gadget/<arch>); relative to this file. */
  include?: string[];
  /** Named tasks for `gadget run NAME`: a definition, or just a list of steps. */
  tasks?: Record<string, TaskDefinition | Plugin[]>;
}

/** An image in the store. */
export interface Artifact {
  ref: string;
  descriptor: Descriptor;
}

export interface PluginContext {
  /** The store, opened (and made, when missing) on first use. */
  store: Store;
  /** The store when there is one, without making it: for reads that find nothing in a new store. */
  storeIfThere?(): Store | undefined;
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
  /**
   * The step runs until it is stopped (as serve does): Ctrl-C is its normal end, and the task
   * ends cleanly after it. For any other step, an interrupt fails the task (exit 130).
   */
  runsUntilStopped?: boolean;
}
