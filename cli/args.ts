// A small, strict argument parser: each command declares its options; anything else is a
// usage error that names the unknown flag.
import { usageError } from '../lib/errors.js';
import { closest } from '../lib/suggest.js';

export interface OptionSpec {
  /** 'boolean' flags take no value; 'string' takes one; 'list' may repeat. */
  type: 'boolean' | 'string' | 'list';
  short?: string;
  description: string;
  /** Shown in help for value options, e.g. "DIR". */
  value?: string;
  /** Shown in help: what applies when the option is not given. */
  default?: string;
}

export type Options = Record<string, OptionSpec>;

export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | boolean | string[] | undefined>;
}

/** `alsoKnown`: option names valid elsewhere (the global ones), offered as "did you mean" too. */
export function parseArgs(argv: string[], options: Options, command: string, alsoKnown: string[] = []): ParsedArgs {
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
    if (!spec) {
      const near = closest(name, [...Object.keys(options), ...alsoKnown]);
      throw usageError(`${command}: unknown option --${name}`, near ? `did you mean --${near}? (see \`gadget ${command} --help\`)` : `see \`gadget ${command} --help\``);
    }
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

/** A whole-number flag (--port, --concurrency, ...) in [min, max]; undefined when not given. */
export function wholeNumberFlag(value: unknown, flag: string, { min = 1, max = Number.MAX_SAFE_INTEGER, expected = 'positive whole number' } = {}): number | undefined {
  if (value === undefined) return undefined;
  // Digits only: Number() would also take `1e3`, ` 2` and `0x10`, which nobody means as a count.
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : typeof value === 'number' ? value : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw usageError(`--${flag} ${String(value)}: expected a ${expected}`);
  return n;
}

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** --tag values (push, copy, tag): plain tags, checked before anything is done. */
export function parseTags(values: unknown, command: string): string[] {
  const tags = (values as string[] | undefined) ?? [];
  for (const t of tags) {
    if (!TAG.test(t)) throw usageError(`${command}: --tag ${t} is not a tag`, 'a tag is letters, digits, "_", "." and "-" (at most 128), e.g. --tag v1.2.3 --tag latest');
  }
  return [...new Set(tags)];
}

/**
 * Checks the references a command looks up in the store (a digest or a bare signature tag is
 * taken as it is, as Store.resolveRef takes it), so that a malformed one is a usage error
 * before the store is opened: before a missing store is reported, as other usage errors are.
 */
export async function checkStoreRefs(inputs: string[]): Promise<void> {
  const { isSignatureTag, parseRef } = await import('../lib/oci/reference.js');
  const { isDigest } = await import('../lib/oci/digest.js');
  for (const input of inputs) if (!isDigest(input) && !isSignatureTag(input)) parseRef(input);
}
