// A manifest's or index's content must be the kind of document its descriptor's media type
// names. A child labelled a manifest that is an index (or the reverse) is refused wherever a
// graph is read (a copy, an import): a registry would refuse it on push, and a reader that
// trusts the label reads it wrongly.
import { GadgetError } from '../errors.js';
import { INDEX_TYPES } from './mediatypes.js';
import type { Descriptor, Index, Manifest } from './types.js';

/** For a manifest no reader can follow (not JSON, a child that is not a descriptor): made wrong where it was made. */
export const MALFORMED_MANIFEST_HINT = 'the image is malformed where it was made: fix it there, then build, export or push it again';

/** Throws when `doc` (parsed JSON) is not the kind of document `d.mediaType` names; `what` names it. */
export function checkManifestKind(doc: Manifest & Index, d: Descriptor, what: string): void {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new GadgetError(`${what} is labelled ${d.mediaType} but is not a JSON object`);
  const wantIndex = INDEX_TYPES.has(d.mediaType);
  const looksIndex = Array.isArray(doc.manifests) && doc.config === undefined;
  const looksManifest = doc.config !== undefined && doc.manifests === undefined;
  if (typeof doc.mediaType === 'string' ? doc.mediaType !== d.mediaType : wantIndex ? !looksIndex : !looksManifest) {
    const is = typeof doc.mediaType === 'string' ? doc.mediaType : looksIndex ? 'an index' : looksManifest ? 'a manifest' : 'neither a manifest nor an index';
    throw new GadgetError(`${what} is labelled ${wantIndex ? 'an index' : 'a manifest'} (${d.mediaType}) but its content is ${is}`, {
      hint: 'the descriptor that names it must carry the media type of its content: fix the image where it was made',
    });
  }
}
