// The store's reference patterns (globs, see Store.list): the one error for a pattern that
// matches nothing, which every command taking one reports the same way. Its siblings do the
// same for the other sources a command names (a registry prefix, a repository, a bundle) and
// the tag filters applied to them: a source that yields no image is a failure (exit 1), named,
// never a quiet success.
import { GadgetError } from '../lib/errors.js';

const lead = (where?: string): string => (where ? `${where}: ` : '');

/** The error for a pattern that matches no image (exit 1). */
export function matchedNothing(pattern: string, where?: string): GadgetError {
  return new GadgetError(`${lead(where)}the pattern "${pattern}" matched no image`, {
    hint: 'a pattern is a glob on the whole reference (host/path/name:tag, or a bare tag); without "/" it also matches the last part of the name, with or without its tag; `gadget list` shows the references',
  });
}

/** The error for a registry prefix (`host/prefix/`) under which the catalog lists no repository (exit 1). */
export function noRepositoryUnder(prefix: string, where?: string): GadgetError {
  return new GadgetError(`${lead(where)}no repository under ${prefix}`, {
    hint: `the registry's catalog lists no repository under that prefix: \`gadget repos ${prefix.replace(/\/+$/, '')}\` shows what it lists (a source without the final "/" is one repository)`,
  });
}

/** "v1, v2, v3 and 12 more". */
function someTags(tags: string[]): string {
  const shown = tags.slice(0, 10).join(', ');
  return tags.length > 10 ? `${shown} and ${tags.length - 10} more` : shown;
}

/**
 * The error for a source that yields no image (exit 1): it has no tag at all, or its tag
 * filter kept none of `tags`. `source` names it as the user does (`host/repo`, `bundle FILE`,
 * `store:GLOB`, `the 2 repositories under host/prefix/`); `filter` is the filter as written
 * (`--include "v*"`), undefined when there is none; `lister` is the command that shows its
 * tags.
 */
export function keptNoTag(source: string, tags: string[], filter: string | undefined, lister: string, where?: string): GadgetError {
  if (tags.length === 0 || filter === undefined) {
    return new GadgetError(`${lead(where)}there is no tag in ${source}`, {
      hint: `a source must yield at least one image (signature tags are not images): ${lister} shows its tags; give it images or remove the source`,
    });
  }
  return new GadgetError(`${lead(where)}the filter ${filter} kept no tag of ${source} (tags: ${someTags(tags)})`, {
    hint: `${lister} shows its tags; include and exclude are globs on the whole tag, semver a range of versions (">=1.0.0 <2"; a tag that is not a version never matches it), newest the N highest versions`,
  });
}
