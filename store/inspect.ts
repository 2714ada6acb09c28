// `gadget inspect` of a stored image: the generic inspection of lib/oci/inspect.ts.
import { inspectDescriptor, type Inspection } from '../lib/oci/inspect.js';
import type { Store } from './store.js';

export type { InspectedManifest, InspectedReferrer, Inspection } from '../lib/oci/inspect.js';

export async function inspectImage(store: Store, input: string, signal?: AbortSignal): Promise<Inspection> {
  return inspectDescriptor(store, input, store.resolveRef(input), signal);
}
