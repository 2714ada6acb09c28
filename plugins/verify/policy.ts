// --allow: which images may run, with the three pattern forms of ig's --allowed-gadgets:
//   name@sha256:<hex>  that repository at exactly that digest (of the image index)
//   name:tag           that repository and tag (no tag means :latest); short names are
//                      completed as ig completes them (trace_exec -> ghcr.io/inspektor-gadget/gadget/trace_exec)
//   prefix*            any reference that starts with the prefix (e.g. ghcr.io/inspektor-gadget/gadget/*)
import { usageError } from '../../lib/errors.js';
import { parseRef, type Reference } from '../../lib/oci/reference.js';
import type { Problem } from './report.js';

export type AllowPattern =
  | { kind: 'prefix'; raw: string; prefix: string }
  | { kind: 'digest'; raw: string; name: string; digest: string }
  | { kind: 'tag'; raw: string; name: string; tag: string };

/** Parses --allow values; a malformed one is a usage error (exit 2). */
export function parseAllowPatterns(values: string[]): AllowPattern[] {
  return values.map((raw) => {
    const text = raw.trim();
    if (text.endsWith('*')) {
      const prefix = text.slice(0, -1);
      if (prefix.includes('*')) throw usageError(`--allow ${raw}: "*" is allowed only at the end of a pattern`, 'e.g. --allow \'ghcr.io/inspektor-gadget/gadget/*\'');
      return { kind: 'prefix', raw, prefix };
    }
    let ref: Reference;
    try {
      ref = parseRef(text);
    } catch {
      throw usageError(`--allow ${raw} is not a pattern`, 'use name@sha256:<digest>, name:tag, or a prefix ending in * (e.g. ghcr.io/myorg/*)');
    }
    if (ref.digest) return { kind: 'digest', raw, name: ref.name, digest: ref.digest };
    return { kind: 'tag', raw, name: ref.name, tag: ref.tag ?? 'latest' };
  });
}

function parsed(ref: string): Reference | undefined {
  try {
    return parseRef(ref);
  } catch {
    return undefined;
  }
}

/** True when one of the image's references (at its root `digest`) matches a pattern. */
export function isAllowed(patterns: AllowPattern[], refs: string[], digest: string): boolean {
  const full = refs.map((r) => ({ text: r, ref: parsed(r) }));
  return patterns.some((p) =>
    full.some(({ text, ref }) => {
      switch (p.kind) {
        case 'prefix':
          return text.startsWith(p.prefix) || (ref !== undefined && `${ref.name}@${digest}`.startsWith(p.prefix));
        case 'digest':
          return ref?.name === p.name && digest === p.digest;
        case 'tag':
          return ref?.name === p.name && ref.tag === p.tag;
      }
    }),
  );
}

/** GADGET-NOT-ALLOWED when patterns are given and none matches. */
export function checkPolicy(patterns: AllowPattern[], refs: string[], digest: string): Problem[] {
  if (patterns.length === 0 || isAllowed(patterns, refs, digest)) return [];
  const named = refs.length ? refs.join(', ') : digest;
  return [{ rule: 'GADGET-NOT-ALLOWED', digest, path: '/', message: `${named} is not allowed by --allow ${patterns.map((p) => p.raw).join(', ')}.` }];
}
