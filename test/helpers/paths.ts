// Where tests find the repository, the shared fixtures and a scratch folder.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED = resolve(REPO, '..', 'shared');
export const FIXTURE_LAYOUT = join(SHARED, 'fixtures', 'ig-signed-store', 'layout');
export const FIXTURE_METADATA = join(SHARED, 'fixtures', 'ig-gadget-metadata');

/** The reason to skip a test that reads ../shared, or undefined when it is there. */
export function sharedMissing(): string | undefined {
  return existsSync(FIXTURE_LAYOUT) ? undefined : `../shared/fixtures is absent (${SHARED}); this test needs Inspektor Gadget's fixtures`;
}

/** A fresh temporary folder, removed when the process exits. */
export function scratch(prefix = 'gadget-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
