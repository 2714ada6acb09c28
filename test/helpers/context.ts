// A plugin context over a store for tests: logs and progress go nowhere, records are dropped;
// `more` replaces any part (a logger or emit that keeps what it gets, another config).
import type { PluginContext } from '../../lib/runner/types.js';
import type { Store } from '../../store/store.js';
import { REPO } from './paths.js';

export function quietContext(store: Store, cwd = REPO, more: Partial<PluginContext> = {}): PluginContext {
  return {
    store,
    cwd,
    config: {},
    signal: new AbortController().signal,
    log: { info: () => undefined, warn: () => undefined, debug: () => undefined },
    progress: { start: () => ({ tick: () => undefined, done: () => undefined }) },
    emit: () => undefined,
    ...more,
  };
}
