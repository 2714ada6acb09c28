// The serve step for gadget.config.ts (`steps: [build(), serve({ port: 5000 })]`): serves the
// store until the task is interrupted (Ctrl-C), then stops cleanly and passes its input on.
import type { Artifact, Plugin, PluginContext } from '../lib/runner/types.js';
import { startServer, type ServeOptions } from '../serve/server.js';

export type { ServeOptions } from '../serve/server.js';

export function serve(options: Omit<ServeOptions, 'log'> = {}): Plugin {
  return {
    name: 'serve',
    runsUntilStopped: true,
    async run(ctx: PluginContext, input: Artifact[]): Promise<Artifact[]> {
      const server = await startServer(ctx.store, { ...options, log: ctx.log });
      ctx.log.info(`serve: ${ctx.store.root} at ${server.url}${options.readOnly ? ' (read-only)' : ''}; Ctrl-C stops it`);
      ctx.emit({ type: 'serve', url: server.url });
      await new Promise<void>((resolve) => (ctx.signal.aborted ? resolve() : ctx.signal.addEventListener('abort', () => resolve(), { once: true })));
      await server.close();
      return input;
    },
  };
}
