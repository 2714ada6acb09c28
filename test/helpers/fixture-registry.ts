// A real docker-registry (started at a free port, stopped after the test) and a store holding
// ig's signed and unsigned images from ../shared, to push to it.
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { gadget } from './cli.js';
import { FIXTURE_LAYOUT, scratch, sharedMissing } from './paths.js';
import { registryAvailable, startRegistry, type TestRegistry } from './registry.js';

/** The registry, a scratch folder, and the store of ig's images in it; undefined when the test skipped (and says why). */
export async function registryAndSource(t: TestContext): Promise<{ reg: TestRegistry; dir: string; source: string } | undefined> {
  const why = sharedMissing() ?? ((await registryAvailable()) ? undefined : 'docker-registry is not installed');
  if (why) {
    t.skip(why);
    return undefined;
  }
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const dir = scratch();
  const source = join(dir, 'source');
  assert.equal((await gadget(['--store', source, 'import', FIXTURE_LAYOUT])).code, 0);
  return { reg, dir, source };
}
