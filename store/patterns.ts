// The store's reference patterns (globs, see Store.list): the one error for a pattern that
// matches nothing, which every command taking one reports the same way.
import { GadgetError } from '../lib/errors.js';

/** The error for a pattern that matches no image (exit 1). */
export function matchedNothing(pattern: string, where?: string): GadgetError {
  return new GadgetError(`${where ? `${where}: ` : ''}the pattern "${pattern}" matched no image`, {
    hint: 'a pattern is a glob on the whole reference (host/path/name:tag, or a bare tag); without "/" it also matches the last part of the name, with or without its tag; `gadget list` shows the references',
  });
}
