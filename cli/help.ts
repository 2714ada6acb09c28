// Help text that fits the terminal: wrapped to its width (80 when stdout is not a TTY), every
// option with its default, the global options on every command's page.
import type { Command } from './command.js';
import type { Options } from './args.js';

export function terminalWidth(): number {
  const columns = process.stdout.isTTY ? process.stdout.columns : undefined;
  return Math.max(40, Math.min(columns ?? 80, 120));
}

/** The words of `text` in lines of at most `room` columns (a longer word gets a line of its own). */
export function wrapLines(text: string, room: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > room) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}

/** `text` wrapped to `width`, continuation lines indented by `indent`. */
export function wrap(text: string, width: number, indent = 0): string {
  const [first, ...rest] = wrapLines(text, width);
  const more = rest.join(' ') ? wrapLines(rest.join(' '), width - indent) : [];
  return [first, ...more.map((l) => ' '.repeat(indent) + l)].join('\n');
}

/** Two columns: the left padded to the widest entry (capped), the right wrapped under itself. */
function columns(rows: [string, string][], width: number): string[] {
  const left = Math.min(Math.max(0, ...rows.map(([l]) => l.length)), 28);
  const pad = ' '.repeat(left + 4);
  return rows.map(([l, r]) => {
    const right = wrapLines(r, width - left - 4).join(`\n${pad}`);
    return l.length > left ? `  ${l}\n${pad}${right}` : `  ${l.padEnd(left)}  ${right}`;
  });
}

/** The first sentence (a period then a capital letter ends it; "e.g." does not). */
function firstSentence(text: string): string {
  return text.split(/\.\s+(?=[A-Z`])/)[0]!.replace(/\.$/, '');
}

function optionRows(options: Options): [string, string][] {
  return Object.entries(options).map(([name, o]) => [
    `${o.short ? `-${o.short}, ` : '    '}--${name}${o.value ? ` ${o.value}` : ''}`,
    o.description + (o.type === 'list' ? ' (repeatable)' : '') + (o.default !== undefined ? ` (default: ${o.default})` : ''),
  ]);
}

export function commandHelp(command: Command, globals: Options, width = terminalWidth()): string {
  const lines = [wrap(`usage: gadget ${command.usage}`, width, 6), '', wrap(command.summary, width)];
  if (command.aliases?.length) lines.push('', `aliases: ${command.aliases.join(', ')}`);
  if (Object.keys(command.options).length) lines.push('', 'options:', ...columns(optionRows(command.options), width));
  lines.push('', 'global options:', ...columns(optionRows(globals), width));
  lines.push('', wrap('Exit codes: 0 ok, 1 a failure found (named on stderr, and in the JSON document with --json), 2 usage or environment.', width));
  return lines.join('\n');
}

export function mainHelp(commands: Command[], globals: Options, width = terminalWidth()): string {
  const rows = commands.map((c): [string, string] => [c.name, firstSentence(c.summary) + (c.aliases?.length ? ` (also: ${c.aliases.join(', ')})` : '')]);
  return [
    'usage: gadget [--store DIR] [--json] COMMAND ...',
    '',
    wrap('Build, verify, annotate and sync Inspektor Gadget images through a local OCI store.', width),
    '',
    'commands:',
    ...columns(rows, width),
    '',
    'global options:',
    ...columns(optionRows(globals), width),
    '',
    wrap('Run `gadget COMMAND --help` for a command\'s usage and options. ig\'s names work too: `gadget image remove REF` is `gadget rm REF`.', width),
  ].join('\n');
}
