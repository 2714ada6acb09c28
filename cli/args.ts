// A small, strict argument parser: each command declares its options; anything else is a
// usage error that names the unknown flag.
import { usageError } from '../lib/errors.js';

export interface OptionSpec {
  /** 'boolean' flags take no value; 'string' takes one; 'list' may repeat. */
  type: 'boolean' | 'string' | 'list';
  short?: string;
  description: string;
  /** Shown in help for value options, e.g. "DIR". */
  value?: string;
}

export type Options = Record<string, OptionSpec>;

export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | boolean | string[] | undefined>;
}

export function parseArgs(argv: string[], options: Options, command: string): ParsedArgs {
  const flags: ParsedArgs['flags'] = {};
  const positionals: string[] = [];
  const byShort = new Map(Object.entries(options).filter(([, o]) => o.short).map(([name, o]) => [o.short!, name]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    } else if (/^-[a-zA-Z]$/.test(arg)) {
      name = byShort.get(arg.slice(1));
      if (!name) throw usageError(`${command}: unknown option ${arg}`, `see \`gadget ${command} --help\``);
    } else {
      positionals.push(arg);
      continue;
    }
    const spec = options[name];
    if (!spec) throw usageError(`${command}: unknown option --${name}`, `see \`gadget ${command} --help\``);
    if (spec.type === 'boolean') {
      if (inline !== undefined) throw usageError(`${command}: --${name} takes no value`);
      flags[name] = true;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw usageError(`${command}: --${name} needs a value${spec.value ? ` (${spec.value})` : ''}`);
    if (spec.type === 'list') flags[name] = [...((flags[name] as string[] | undefined) ?? []), value];
    else flags[name] = value;
  }
  return { positionals, flags };
}

export function helpText(command: string, usage: string, summary: string, options: Options): string {
  const lines = [`usage: gadget ${usage}`, '', summary, ''];
  const rows = Object.entries(options).map(([name, o]) => {
    const left = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.value ? ` ${o.value}` : ''}`;
    return [left, o.description + (o.type === 'list' ? ' (repeatable)' : '')] as const;
  });
  const width = Math.max(0, ...rows.map(([l]) => l.length));
  if (rows.length) lines.push('options:', ...rows.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`));
  void command;
  return lines.join('\n');
}

/** K=V pairs (for --set, --annotation); an empty key is a usage error. */
export function parsePairs(values: string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of values ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw usageError(`--${flag} ${item}: expected KEY=VALUE with a non-empty key`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}
