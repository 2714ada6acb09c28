// Where tests find the repository, the shared fixtures and a scratch folder.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED = findShared();
export const FIXTURE_LAYOUT = join(SHARED, 'fixtures', 'ig-signed-store', 'layout');
export const FIXTURE_METADATA = join(SHARED, 'fixtures', 'ig-gadget-metadata');
export const FIXTURE_IG_GADGETS = join(SHARED, 'fixtures', 'ig-gadgets');

/**
 * ../shared beside the repository; in a git worktree (whose .git is a file naming
 * MAIN/.git/worktrees/NAME) also beside the main checkout.
 */
function findShared(): string {
  const beside = resolve(REPO, '..', 'shared');
  if (existsSync(beside)) return beside;
  try {
    const dotGit = join(REPO, '.git');
    if (statSync(dotGit).isFile()) {
      const gitdir = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, 'utf8'))?.[1]?.trim();
      if (gitdir) {
        const main = resolve(REPO, gitdir, '..', '..', '..');
        if (existsSync(join(main, '..', 'shared'))) return resolve(main, '..', 'shared');
      }
    }
  } catch {
    // not a worktree
  }
  return beside;
}

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
