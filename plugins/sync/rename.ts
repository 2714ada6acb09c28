// Mirror naming: how a source repository path becomes the destination's. Without rules the
// path is kept (under a registry destination's prefix); a rule strips a leading prefix or
// replaces it with another. Prefixes are whole path segments: `src` matches `src/x` and
// `src`, never `srcs/x`. The first rule that matches applies; a path no rule matches is kept.
import { usageError } from '../../lib/errors.js';

export type RenameRule = { stripPrefix: string } | { from: string; to: string };

const trimSlashes = (text: string): string => text.replace(/^\/+|\/+$/g, '');

/** The repository path after the first matching rule (unchanged when none matches). */
export function renameRepository(repository: string, rules: RenameRule[] = []): string {
  for (const rule of rules) {
    const from = trimSlashes('stripPrefix' in rule ? rule.stripPrefix : rule.from);
    const to = 'stripPrefix' in rule ? '' : trimSlashes(rule.to);
    if (repository !== from && !repository.startsWith(`${from}/`)) continue;
    const renamed = [to, repository.slice(from.length + 1)].filter(Boolean).join('/');
    if (!renamed) throw usageError(`renaming ${repository} (${describeRule(rule)}) leaves no repository name`, 'strip a shorter prefix, or replace it with another');
    return renamed;
  }
  return repository;
}

export function describeRule(rule: RenameRule): string {
  return 'stripPrefix' in rule ? `strip prefix ${rule.stripPrefix}` : `${rule.from} -> ${rule.to}`;
}

/** A config's `rename` (one rule or a list), checked. */
export function checkRename(value: unknown, where: string): RenameRule[] | undefined {
  if (value === undefined) return undefined;
  const rules = Array.isArray(value) ? value : [value];
  return rules.map((rule, i) => {
    const at = Array.isArray(value) ? `${where}[${i}]` : where;
    const keys = typeof rule === 'object' && rule !== null ? Object.keys(rule).sort().join(',') : '';
    const nonEmpty = (v: unknown): boolean => typeof v === 'string' && trimSlashes(v) !== '';
    if (keys === 'stripPrefix' && nonEmpty(rule.stripPrefix)) return { stripPrefix: rule.stripPrefix as string };
    if (keys === 'from,to' && nonEmpty(rule.from) && typeof rule.to === 'string') return { from: rule.from as string, to: rule.to as string };
    throw usageError(`${at} must be { stripPrefix: 'PREFIX/' } or { from: 'PREFIX/', to: 'OTHER/' }`, "e.g. rename: { stripPrefix: 'src/' }");
  });
}

/** `--strip-prefix PREFIX` and `--rename FROM=TO` flags, in that order. */
export function renameFromFlags(strip: string[] = [], rename: string[] = []): RenameRule[] | undefined {
  const rules: RenameRule[] = [];
  for (const prefix of strip) rules.push(...checkRename({ stripPrefix: prefix }, `--strip-prefix ${prefix}`)!);
  for (const pair of rename) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usageError(`--rename ${pair}: expected FROM=TO (e.g. --rename src/=mirror/)`);
    rules.push(...checkRename({ from: pair.slice(0, eq), to: pair.slice(eq + 1) }, `--rename ${pair}`)!);
  }
  return rules.length ? rules : undefined;
}
