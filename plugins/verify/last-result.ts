// The last verification of each stored image, kept in the store's index (a plugin cache: it
// can always be made again by running verify), for `gadget serve`'s page to show.
import type { Store } from '../../store/store.js';
import type { VerifyReport } from './report.js';

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

export function rememberResults(store: Store, reports: VerifyReport[]): void {
  const time = new Date().toISOString();
  store.cachePut(
    NAMESPACE,
    reports.map((r) => ({
      key: r.digest,
      value: {
        passed: r.passed,
        profile: r.profile,
        errors: r.errors,
        warnings: r.warnings,
        rules: [...new Set(r.findings.filter((f) => f.severity === 'error').map((f) => f.rule))],
        signature: r.signature ? { verified: r.signature.verified, reason: r.signature.reason, found: r.signature.found.length } : undefined,
        time,
      } satisfies LastVerification,
    })),
  );
}

export function lastResult(store: Store, digest: string): LastVerification | undefined {
  return store.cacheGet<LastVerification>(NAMESPACE, digest);
}
