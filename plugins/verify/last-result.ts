// Each report, as the store keeps it for `gadget serve`'s page (store/verifications.ts).
import type { Store } from '../../store/store.js';
import { rememberVerifications } from '../../store/verifications.js';
import type { VerifyReport } from './report.js';

export function rememberResults(store: Store, reports: VerifyReport[]): void {
  const time = new Date().toISOString();
  rememberVerifications(
    store,
    reports.map((r) => ({
      digest: r.digest,
      result: {
        passed: r.passed,
        profile: r.profile,
        errors: r.errors,
        warnings: r.warnings,
        rules: [...new Set(r.findings.filter((f) => f.severity === 'error').map((f) => f.rule))],
        signature: r.signature ? { verified: r.signature.verified, reason: r.signature.reason, found: r.signature.found.length } : undefined,
        time,
      },
    })),
  );
}
