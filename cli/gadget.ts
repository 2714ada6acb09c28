#!/usr/bin/env node
// The `gadget` command: parses flags and calls the library. Modules load lazily per command
// so that scripts calling it thousands of times start fast.
import { parseArgs, type Options } from './args.js';
import { commandHelp, mainHelp } from './help.js';
import type { Command } from './command.js';
import { CommandEnv, type GlobalFlags } from './env.js';
import { closest } from '../lib/suggest.js';
import { usageError } from '../lib/errors.js';
import { packageVersion } from '../lib/version.js';
import { exitQuietly, finish, guardProcess } from './process-guard.js';
import { reportError, wantsJSON } from './report-error.js';

const GLOBAL_OPTIONS: Options = {
  store: { type: 'string', value: 'DIR', description: 'the store (else $GADGET_STORE, the config\'s store, or ig\'s store)' },
  config: { type: 'string', value: 'FILE', description: 'the config file (default ./gadget.config.ts)' },
  json: { type: 'boolean', description: 'machine-readable output on stdout' },
  verbose: { type: 'boolean', short: 'v', description: 'more detail on stderr' },
  quiet: { type: 'boolean', short: 'q', description: 'print nothing but errors (and the --json document)' },
  progress: { type: 'boolean', description: 'progress bars even when stderr is not a terminal' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
  version: { type: 'boolean', description: 'print the version' },
};

async function loadCommands(): Promise<Command[]> {
  const store = await import('./store-commands.js');
  const look = await import('./inspect-commands.js');
  const remote = await import('./remote-commands.js');
  const run = await import('./run-commands.js');
  const { annotateCommand } = await import('./annotate-command.js');
  const { verifyCommand } = await import('./verify-command.js');
  const sync = await import('./sync-commands.js');
  const { initCommand } = await import('./init-command.js');
  const { serveCommand } = await import('./serve-command.js');
  const signing = await import('./sign-commands.js');
  return [
    initCommand,
    run.runCommand,
    run.tasksCommand,
    run.buildCommand,
    store.listCommand,
    look.inspectCommand,
    look.referrersCommand,
    remote.tagsCommand,
    remote.reposCommand,
    store.tagCommand,
    store.rmCommand,
    store.gcCommand,
    store.fsckCommand,
    store.importCommand,
    store.exportCommand,
    verifyCommand,
    signing.verifyBlobCommand,
    signing.signCommand,
    signing.generateKeyPairCommand,
    annotateCommand,
    ...sync.syncCommands,
    serveCommand,
  ];
}

/** Splits the global flags (allowed anywhere) from the command and its own arguments. */
function splitGlobals(argv: string[]): { globals: Record<string, unknown>; rest: string[] } {
  const globals: Record<string, unknown> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    const [name, inline] = arg.startsWith('--') ? [arg.slice(2).split('=')[0]!, arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : undefined] : [undefined, undefined];
    const short = Object.entries(GLOBAL_OPTIONS).find(([, o]) => o.short && arg === `-${o.short}`)?.[0];
    const key = short ?? (name && name in GLOBAL_OPTIONS ? name : undefined);
    if (!key) {
      rest.push(arg);
      continue;
    }
    if (GLOBAL_OPTIONS[key]!.type === 'boolean') globals[key] = true;
    else {
      const value = inline ?? argv[++i];
      if (value === undefined) throw usageError(`--${key} needs a value`);
      globals[key] = value;
    }
  }
  return { globals, rest };
}

/** Whether a command's usage names any argument besides options (`gc [--dry-run]` names none). */
function takesArguments(command: Command): boolean {
  return /[A-Z]/.test(command.usage.replace(/\[--[^\]]*\]/g, ''));
}

/** The command a name stands for: its own name or an alias (ig's `remove`, docker's `ls`). */
function findCommand(commands: Command[], name: string): Command {
  const command = commands.find((c) => c.name === name || c.aliases?.includes(name));
  if (command) return command;
  const near = closest(name, commands.flatMap((c) => [c.name, ...(c.aliases ?? [])]));
  throw usageError(`unknown command "${name}"`, near ? `did you mean \`gadget ${near}\`? (\`gadget --help\` lists every command)` : 'run `gadget --help` for the list of commands');
}

export async function main(argv: string[]): Promise<number> {
  let env: CommandEnv | undefined;
  let verbose = false;
  let usageHint = 'run `gadget --help` for the commands and their options';
  try {
    const { globals, rest } = splitGlobals(argv);
    verbose = Boolean(globals.verbose);
    if (globals.version) {
      process.stdout.write(globals.json ? `${JSON.stringify({ version: packageVersion() })}\n` : `gadget-oci ${packageVersion()}\n`);
      return 0;
    }
    const commands = await loadCommands();
    // `gadget image build ...` as `ig image build ...`.
    const [name, ...args] = rest[0] === 'image' ? rest.slice(1) : rest;
    if (!name) {
      if (globals.help) {
        process.stdout.write(mainHelp(commands, GLOBAL_OPTIONS) + '\n');
        return 0;
      }
      if (!globals.json && !globals.quiet) process.stderr.write(mainHelp(commands, GLOBAL_OPTIONS) + '\n\n');
      throw usageError('no COMMAND given', 'run `gadget --help` for the list of commands');
    }
    if (name.startsWith('-')) {
      const near = closest(name.replace(/^-+/, ''), Object.keys(GLOBAL_OPTIONS));
      throw usageError(`unknown option ${name} before the command`, near ? `did you mean --${near}?` : 'a command\'s own options go after it: `gadget COMMAND --help` lists them');
    }
    const command = findCommand(commands, name);
    usageHint = `run \`gadget ${command.name} --help\` for its usage`;
    if (globals.help) {
      process.stdout.write(commandHelp(command, GLOBAL_OPTIONS) + '\n');
      return 0;
    }
    const flags: GlobalFlags = {
      store: globals.store as string | undefined,
      config: globals.config as string | undefined,
      json: Boolean(globals.json),
      verbose: Boolean(globals.verbose),
      quiet: Boolean(globals.quiet),
      progress: Boolean(globals.progress),
    };
    env = new CommandEnv(flags);
    await env.describeConfig();
    const { controller } = env;
    guardProcess(command.name, () => controller.abort(new Error('interrupted')));
    const parsed = parseArgs(args, command.options, command.name, Object.keys(GLOBAL_OPTIONS));
    if (parsed.positionals.length > 0 && !takesArguments(command)) {
      throw usageError(`${command.name} takes no arguments, but was given "${parsed.positionals[0]}"`, `run \`gadget ${command.name} --help\` for its options`);
    }
    return await command.run(env, parsed);
  } catch (err) {
    return reportError(err, { json: env?.flags.json ?? wantsJSON(argv), verbose, printedJSON: env?.printedJSON ?? false, aborted: env?.signal.aborted ?? false, usageHint, records: env?.records });
  } finally {
    env?.close();
  }
}

// `gadget list | head`: a reader that goes away is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') exitQuietly(Number(process.exitCode ?? 0));
  throw err;
});

main(process.argv.slice(2)).then(finish);
