// What `gadget import` accepts as a manifest or index of a layout it reads (a folder, or a tar
// read in place): checked before anything is copied, so bad input changes nothing.
import { GadgetError } from '../lib/errors.js';
import { DAMAGED_HINT } from '../lib/oci/digest.js';
import { sha256 } from '../lib/oci/digest.js';
import { checkKeys } from '../lib/oci/json-keys.js';
import { checkManifestKind, MALFORMED_MANIFEST_HINT } from '../lib/oci/manifest-kind.js';
import { INDEX_TYPES, MANIFEST_TYPES } from '../lib/oci/mediatypes.js';
import { MAX_MANIFEST_BYTES } from '../lib/oci/target.js';
import { isValidDescriptor, type Descriptor, type Index, type Manifest } from '../lib/oci/types.js';

/** Refuses a manifest too large to read, before it is read. `what` names it. */
export function checkManifestSize(size: number, what: string): void {
  if (size > MAX_MANIFEST_BYTES) throw new GadgetError(`${what} is larger than ${MAX_MANIFEST_BYTES} bytes, too large for a manifest`, { hint: MALFORMED_MANIFEST_HINT });
}

/**
 * The children of a manifest or index, after checking that its bytes are what its descriptor
 * says: its digest and size, JSON without keys that readers disagree on (json-keys.ts), and
 * the kind of document its media type names (a "manifest" that is an index is refused). `what` names it in messages.
 */
export function checkedChildrenOf(bytes: Buffer, d: Descriptor, what: string): Descriptor[] {
  if (bytes.length !== d.size || sha256(bytes) !== d.digest) throw new GadgetError(`${what}: the content does not match its digest or size`, { hint: DAMAGED_HINT });
  let doc: Manifest & Index;
  const text = bytes.toString('utf8');
  try {
    doc = JSON.parse(text) as Manifest & Index;
  } catch {
    throw new GadgetError(`${what} is labelled ${d.mediaType} but is not valid JSON`, { hint: MALFORMED_MANIFEST_HINT });
  }
  checkKeys(text, what);
  checkManifestKind(doc, d, what);
  const wantIndex = INDEX_TYPES.has(d.mediaType);
  const children = wantIndex ? doc.manifests : [doc.config, ...(Array.isArray(doc.layers) ? doc.layers : [])];
  if (!MANIFEST_TYPES.has(d.mediaType) && !wantIndex) return [];
  if (!Array.isArray(children) || !children.every(isValidDescriptor) || (!wantIndex && !Array.isArray(doc.layers))) {
    throw new GadgetError(`${what}: a child is not a valid descriptor (media type, sha256 digest and size are required)`, { hint: MALFORMED_MANIFEST_HINT });
  }
  return children;
}
