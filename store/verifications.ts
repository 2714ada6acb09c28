// The last verification of each stored image, kept in the store's index as a cache (it can
// always be made again by running verify): the verify plugin writes it, `gadget serve`'s page
// shows it.
import type { Store } from './store.js';

const NAMESPACE = 'verify';

export interface LastVerification {
  passed: boolean;
  profile: string;
  errors: number;
  warnings: number;
  /** The rules of the error findings, for a one-line reason. */
  rules: string[];
  /** When signatures were checked: whether one verified, and why (or why not). */
  signature?: { verified: boolean; reason: string; found: number };
  time: string;
}

export function rememberVerifications(store: Store, results: Array<{ digest: string; result: LastVerification }>): void {
  store.cachePut(NAMESPACE, results.map((r) => ({ key: r.digest, value: r.result })));
}

export function lastVerification(store: Store, digest: string): LastVerification | undefined {
  return store.cacheGet<LastVerification>(NAMESPACE, digest);
}
