// Paged name lists of the distribution API: a repository's tags (`tags/list`) and the
// registry's catalog (`_catalog`). Pages are followed through `Link: <...>; rel="next"`; a
// registry that pages without Link is asked again with `last=`; one that ignores `n`/`last`
// (Debian's docker-registry 2.8) answers everything at once, and the repeat adds nothing, which
// ends the walk. A page whose body is damaged is asked for again. The walk has a bound: a
// registry whose Link always names another page fails loudly instead of ending quietly.
//
// When a page without Link is the end. A page shorter than the `n` asked for looks the same
// whether the list ends there or the registry cut it at a limit of its own and sent no Link:
// a truncated list taken for whole would be copied with exit 0. So such a page is followed by
// one more request with `last=` unless it cannot be a cut page:
//   - the walk already followed a Link (a registry that pages with Link ends with a page
//     without one), or
//   - the page is shorter than the longest page this registry sent in this command: a registry
//     that cuts at its own limit sends exactly that many names while more remain, and it has
//     sent more than this (RegistryFacts.longestPage; one limit per registry, for both lists).
// So a command pays one request for its first page of each length record: with
// docker-registry 2.8 a prefix sync asks the catalog once more, and the tag lists after it,
// shorter than the catalog's page, are taken whole.
import { GadgetError } from '../errors.js';
import { ODD_ANSWER_HINT } from './errors.js';
import { nextLink, type HttpResponse } from './http.js';

/** Pages followed at most per list (default); at 1000 names a page, a million names. */
export const DEFAULT_MAX_PAGES = 1000;

export interface PagedList {
  /** For messages: "the tags of localhost:5000/x". */
  what: string;
  /** The registry's origin: a next page elsewhere is refused. */
  origin: string;
  /** The first page's URL, `?n=<pageSize>` included. */
  first: URL;
  /** The page URL that continues after `last` (for registries that page without Link). */
  after: (last: string) => URL;
  /** The JSON key holding the names (`tags`, `repositories`). */
  key: string;
  /** Whether a name is well-formed; one that is not means the body was damaged on the way. */
  valid: (name: string) => boolean;
  pageSize: number;
  maxPages?: number;
  /** Sends one GET and returns the answer, throwing for a status that is not 200. */
  get: (url: URL) => Promise<HttpResponse>;
  /** Runs one page's request and reading again while it fails transiently. */
  retrying: <T>(work: () => Promise<T>) => Promise<T>;
  /** What this command learnt of the registry (shared by its lists): the longest page it sent. */
  facts?: { longestPage?: number };
}

/** Every name of the list, in the order the registry gave them. */
export async function listAllPages(list: PagedList): Promise<string[]> {
  const maxPages = list.maxPages ?? DEFAULT_MAX_PAGES;
  const seen = new Set<string>();
  const visited = new Set<string>();
  const facts = list.facts ?? {};
  let linked = false; // the registry named a next page with Link in this walk
  let url: URL | undefined = list.first;
  for (let page = 0; url; page++) {
    if (page >= maxPages) {
      throw new GadgetError(`${list.what}: stopped after ${maxPages} pages, and the registry still names a next page`, {
        hint: 'the registry\'s pagination may never end; if the list really is that long, raise registries.maxPages in gadget.config.ts',
      });
    }
    visited.add(url.href);
    const pageUrl: URL = url;
    const { names, link } = await list.retrying(async () => {
      const res = await list.get(pageUrl);
      const doc = await res.readJSON(16 * 1024 * 1024, list.what);
      return { names: namesOf(doc, list), link: res.header('link') };
    });
    const before = seen.size;
    for (const name of names) seen.add(name);
    const longest = facts.longestPage ?? 0;
    facts.longestPage = Math.max(longest, names.length);
    const next = nextLink(link, pageUrl);
    if (next) {
      if (next.origin !== list.origin) throw new GadgetError(`${list.what}: the registry names its next page on another host (${next.host}); refusing to follow it`, { hint: ODD_ANSWER_HINT });
      if (visited.has(next.href)) throw new GadgetError(`${list.what}: the registry's next page is one it already sent (its pagination loops)`, { hint: ODD_ANSWER_HINT });
      linked = true;
      url = next;
    } else if (seen.size > before && (names.length >= list.pageSize || (!linked && names.length >= longest))) {
      // A full page, or a short one that may have been cut at the registry's own limit (see
      // the top of this file): asked again after its last name; a repeat that adds nothing ends.
      url = list.after(names[names.length - 1]!);
      if (visited.has(url.href)) url = undefined;
    } else {
      url = undefined;
    }
  }
  return [...seen];
}

/** The names of one page; a body of another shape was damaged on the way (transient). */
function namesOf(doc: unknown, list: PagedList): string[] {
  const value = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>)[list.key] : undefined;
  if (value === null) return []; // an empty repository: `"tags": null`
  if (!Array.isArray(value) || !value.every((n): n is string => typeof n === 'string' && list.valid(n))) {
    throw new GadgetError(`${list.what}: the registry answered a page that is not a list of ${list.key}`, { transient: true, hint: ODD_ANSWER_HINT });
  }
  return value;
}
