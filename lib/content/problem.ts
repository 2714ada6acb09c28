// What a content checker (ELF, wasm, BTF) reports: a stable code that scripts can match on,
// a severity, and one sentence for people. Checkers return problems instead of throwing so
// that `verify` can list every problem of an image at once.

export type Severity = 'error' | 'warning';

export interface ContentProblem {
  /** Stable identifier, e.g. 'ELF-MACHINE', 'WASM-API-VERSION', 'BTF-ARCH'. */
  code: string;
  severity: Severity;
  message: string;
}

export function contentError(code: string, message: string): ContentProblem {
  return { code, severity: 'error', message };
}

export function contentWarning(code: string, message: string): ContentProblem {
  return { code, severity: 'warning', message };
}

/** True when at least one problem is an error (warnings alone do not fail a check). */
export function hasContentErrors(problems: readonly ContentProblem[]): boolean {
  return problems.some((p) => p.severity === 'error');
}

export type GadgetArch = 'amd64' | 'arm64';
