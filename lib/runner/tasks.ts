// Named tasks: lists of plugin steps that may depend on other tasks (each runs once).
import { GadgetError, isGadgetError, messageOf, usageError } from '../errors.js';
import type { Artifact, GadgetConfig, Plugin, PluginContext, TaskDefinition } from './types.js';

export function taskDefinition(config: GadgetConfig, name: string): TaskDefinition {
  // Own keys only: `constructor` or `__proto__` is no task, whatever Object.prototype holds.
  const tasks = config.tasks;
  const raw = tasks !== undefined && Object.hasOwn(tasks, name) ? tasks[name] : undefined;
  if (raw === undefined) {
    const known = Object.keys(config.tasks ?? {});
    throw usageError(`there is no task "${name}"`, known.length ? `known tasks: ${known.join(', ')}` : 'declare tasks in gadget.config.ts');
  }
  const def: TaskDefinition = Array.isArray(raw) ? { steps: raw } : raw;
  if (!Array.isArray(def.steps)) throw usageError(`task "${name}" has no steps list`);
  def.steps.forEach((step: Plugin, i) => {
    if (typeof step !== 'object' || step === null || typeof step.name !== 'string' || typeof step.run !== 'function') {
      throw usageError(`task "${name}": step ${i + 1} is not a plugin (an object with a name and a run function)`);
    }
  });
  return def;
}

/** The tasks to run for `name`, dependencies first, each once; a cycle is an error. */
export function taskOrder(config: GadgetConfig, name: string): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (task: string, path: string[]): void => {
    if (state.get(task) === 'done') return;
    if (state.get(task) === 'visiting') throw usageError(`tasks depend on each other in a cycle: ${[...path, task].join(' -> ')}`);
    state.set(task, 'visiting');
    for (const dep of taskDefinition(config, task).dependsOn ?? []) visit(dep, [...path, task]);
    state.set(task, 'done');
    order.push(task);
  };
  visit(name, []);
  return order;
}

export async function runSteps(ctx: PluginContext, steps: Plugin[], input: Artifact[] = []): Promise<Artifact[]> {
  let artifacts = input;
  for (const step of steps) {
    ctx.signal.throwIfAborted();
    ctx.log.debug(`step ${step.name}`);
    let out: unknown;
    try {
      out = await step.run(ctx, artifacts);
    } catch (err) {
      if (isGadgetError(err) || ctx.signal.aborted) throw err;
      // A plugin's own failure (an Error, or a thrown string): one sentence; -v shows its stack.
      throw new GadgetError(`step ${step.name} failed: ${messageOf(err)}`, { cause: err, hint: 'the plugin threw this error; run with -v for its stack trace' });
    }
    artifacts = checkArtifacts(out, step.name);
    // A step that ignored the abort and returned has not necessarily finished its work.
    if (!step.runsUntilStopped) ctx.signal.throwIfAborted();
  }
  return artifacts;
}

/** Runs a task and its dependencies; a task's steps get the artifacts of the task before it. */
export async function runTask(ctx: PluginContext, name: string): Promise<Artifact[]> {
  let artifacts: Artifact[] = [];
  for (const task of taskOrder(ctx.config, name)) {
    ctx.log.info(`task ${task}`);
    artifacts = await runSteps(ctx, taskDefinition(ctx.config, task).steps, artifacts);
  }
  return artifacts;
}

/** A step's result must be a list of { ref, descriptor } with a digest: later steps rely on it. */
function checkArtifacts(out: unknown, step: string): Artifact[] {
  if (!Array.isArray(out)) throw new GadgetError(`step ${step} returned no artifact list`, { hint: 'a plugin\'s run() returns the artifacts it produced (an array)' });
  out.forEach((a: unknown, i) => {
    const d = (a as Artifact | null)?.descriptor as Artifact['descriptor'] | null | undefined;
    if (typeof (a as Artifact | null)?.ref !== 'string' || typeof d !== 'object' || d === null || typeof d.digest !== 'string' || typeof d.mediaType !== 'string' || typeof d.size !== 'number') {
      throw new GadgetError(`step ${step} returned an artifact [${i}] that is not { ref, descriptor: { mediaType, digest, size } }`, { hint: 'fix the plugin\'s run()' });
    }
  });
  return out as Artifact[];
}
