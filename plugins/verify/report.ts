// What verify reports: findings (rule, severity, digest, path, message), one result per
// image, the JSON document scripts read and the lines people read.
import { printable } from '../../lib/format.js';
import type { FoundSignature } from '../../lib/signature/index.js';
import { RULES, severityOf, type Profile, type RuleId } from './rules.js';

export type Severity = 'error' | 'warning' | 'notice';

/**
 * A finding before the profile gives it a severity. `path` locates it in the graph as a
 * JSON pointer from the image's root: "/" the index, "/manifests/0" a manifest,
 * "/manifests/0/config" its config, "/manifests/0/layers/1" a layer, "/signatures".
 */
export interface Problem {
  rule: RuleId;
  /** The blob (or manifest) the problem is in. */
  digest: string;
  path: string;
  /** One sentence a person understands. */
  message: string;
}

export interface Finding extends Problem {
  severity: Severity;
}

export interface SignatureSummary {
  verified: boolean;
  reason: string;
  found: FoundSignature[];
}

export interface VerifyReport {
  ref: string;
  digest: string;
  profile: Profile;
  /** No error-severity finding. */
  passed: boolean;
  errors: number;
  warnings: number;
  /** Information only (e.g. one manifest for both platforms). */
  notices: number;
  findings: Finding[];
  /** Present when signatures were checked (keys or certificates given). */
  signature?: SignatureSummary;
  /** What to do about it, for a failure that is not about an image (a remote input that yields none). */
  hint?: string;
}

/** Prefixes a problem path found relative to a node (`""` is the node itself). */
export function joinPath(prefix: string, rel: string): string {
  return prefix + rel || '/';
}

const SEVERITY_ORDER: Record<Severity, number> = { error: 0, warning: 1, notice: 2 };

export function makeReport(
  ref: string,
  digest: string,
  problems: Problem[],
  profile: Profile,
  opts: { requireSignature?: boolean; signature?: SignatureSummary },
): VerifyReport {
  const findings: Finding[] = [];
  const seen = new Set<string>();
  for (const p of problems) {
    const severity = severityOf(p.rule, profile, opts);
    if (severity === 'off') continue;
    // A blob shared by two places of one graph is reported once per place, never twice per place.
    const key = `${p.rule}\0${p.path}\0${p.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    findings.push({ rule: p.rule, severity, digest: p.digest, path: p.path, message: p.message });
  }
  // Errors first, then warnings, then notices; stable for equal keys.
  findings.sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.filter((f) => f.severity === 'warning').length;
  const notices = findings.length - errors - warnings;
  const report: VerifyReport = { ref, digest, profile, passed: errors === 0, errors, warnings, notices, findings };
  if (opts.signature) report.signature = opts.signature;
  return report;
}

export interface VerifySummary {
  profile: Profile;
  passed: boolean;
  images: number;
  failed: number;
  warnings: number;
}

export function summarize(reports: VerifyReport[], profile: Profile): VerifySummary {
  const failed = reports.filter((r) => !r.passed).length;
  return { profile, passed: failed === 0, images: reports.length, failed, warnings: reports.reduce((n, r) => n + r.warnings, 0) };
}

/** The --json document: a summary and one result per image with every finding. */
export function reportsJSON(reports: VerifyReport[], profile: Profile): { summary: VerifySummary; images: VerifyReport[] } {
  return { summary: summarize(reports, profile), images: reports };
}

/** One line per image (PASS/FAIL ref digest), each finding indented under it. */
export function formatReport(report: VerifyReport): string[] {
  const lines = [`${report.passed ? 'PASS' : 'FAIL'}  ${report.ref}  ${report.digest}`];
  // Paths and messages quote the image (annotation keys and values): printed inert, one line each.
  for (const f of report.findings) lines.push(`  ${f.severity.padEnd(7)}  ${f.rule}  ${printable(f.path)}  ${printable(f.message)}`);
  return lines;
}

export function formatSummary(s: VerifySummary): string {
  const warnings = s.warnings ? `, ${s.warnings} warning${s.warnings === 1 ? '' : 's'}` : '';
  return `${s.images} image${s.images === 1 ? '' : 's'} verified (profile ${s.profile}): ${s.images - s.failed} passed, ${s.failed} failed${warnings}`;
}

/** The rule table of `gadget verify --rules`. */
export function ruleRows(): Array<{ id: string; spec: string; ig: string; description: string }> {
  return RULES.map((r) => ({
    id: r.id,
    spec: r.severity.spec + ('errorWithRequireSignature' in r && r.errorWithRequireSignature ? '*' : ''),
    ig: r.severity.ig + ('errorWithRequireSignature' in r && r.errorWithRequireSignature ? '*' : ''),
    description: r.description,
  }));
}
