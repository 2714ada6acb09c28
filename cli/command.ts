// The shape of a `gadget` command: declared options, a usage line, and a run that returns
// the exit code (0 ok, 1 a failure found; usage and environment errors throw with code 2).
import type { Options, ParsedArgs } from './args.js';
import type { CommandEnv } from './env.js';

export interface Command {
  name: string;
  /** Other names: ig's and docker's (`remove`, `ls`), `discover` for referrers. */
  aliases?: string[];
  usage: string;
  summary: string;
  options: Options;
  run(env: CommandEnv, args: ParsedArgs): Promise<number>;
}
