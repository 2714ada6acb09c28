// SIGKILL during a build: the store stays consistent (fsck clean once the dead process's
// temporary files are repaired away), tags that existed stay, and a re-run completes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawnGadget, gadget } from './helpers/cli.js';
import { killAt, type KillPoint } from './helpers/crash.js';
import { REPO, scratch } from './helpers/paths.js';

const GADGETS = 24;

/** A config with GADGETS gadgets from the example's prebuilt objects, plus the wasm example. */
function project(): string {
  const dir = scratch();
  const prebuilt = join(REPO, 'examples', 'trace_open', 'prebuilt');
  const specs: string[] = [];
  for (let i = 0; i < GADGETS; i++) {
    const g = join(dir, `g${i}`);
    mkdirSync(g);
    copyFileSync(join(prebuilt, 'amd64.o'), join(g, 'amd64.o'));
    copyFileSync(join(prebuilt, 'arm64.o'), join(g, 'arm64.o'));
    writeFileSync(join(g, 'gadget.yaml'), `name: crash_${i}\ndescription: gadget ${i}\n`);
    writeFileSync(join(g, 'build.yaml'), 'metadata: gadget.yaml\nobjects:\n  amd64: amd64.o\n  arm64: arm64.o\n');
    specs.push(`{ dir: 'g${i}', ref: 'crash.local/g${i}:v1' }`);
  }
  specs.push(`{ dir: ${JSON.stringify(join(REPO, 'examples', 'hello_wasm'))}, ref: 'crash.local/wasm:v1' }`);
  const index = pathToFileURL(join(REPO, 'index.ts')).href;
  writeFileSync(join(dir, 'gadget.config.ts'), `import { defineConfig, build } from ${JSON.stringify(index)};
export default defineConfig({ store: 'store', concurrency: 4, gadgets: [${specs.join(', ')}], tasks: { default: [build()] } });
`);
  return dir;
}

async function listed(dir: string): Promise<Map<string, string>> {
  const r = await gadget(['list', '--json'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  return new Map((JSON.parse(r.stdout) as Array<{ ref: string; digest: string }>).map((i) => [i.ref, i.digest]));
}

async function assertClean(dir: string): Promise<void> {
  let r = await gadget(['fsck', '--json'], { cwd: dir });
  const problems = JSON.parse(r.stdout).problems as Array<{ kind: string; message: string }>;
  assert.deepEqual(problems.filter((p) => p.kind !== 'stray-temp'), [], 'only temporary files of the dead process may be left');
  if (problems.length) {
    assert.equal(r.code, 1);
    assert.equal((await gadget(['fsck', '--repair'], { cwd: dir })).code, 0);
  }
  r = await gadget(['fsck'], { cwd: dir });
  assert.equal(r.code, 0, r.stdout);
}

test('SIGKILL at many points of a build leaves a consistent store, and a re-run completes', async () => {
  const dir = project();
  // A first build of half the gadgets gives tags that must survive every later kill.
  const first = await gadget(['build', 'g0', '-t', 'crash.local/survivor:v1'], { cwd: dir });
  assert.equal(first.code, 0, first.stderr);
  const survivor = (await listed(dir)).get('crash.local/survivor:v1');
  assert.ok(survivor);

  const blobCount = (): number => readdirSync(join(dir, 'store', 'blobs', 'sha256')).length;
  const before = blobCount();
  const points: KillPoint[] = [
    { delayMs: 20 },
    { delayMs: 250 },
    { when: () => blobCount() > before, label: 'first blob' },
    { when: () => blobCount() > before + GADGETS, label: 'a third of the blobs' },
    { when: () => blobCount() > before + 2 * GADGETS, label: 'two thirds of the blobs' },
    { delayMs: 1500 },
  ];
  let killed = 0;
  for (const point of points) {
    const child = spawnGadget(['run', 'default', '--quiet'], { cwd: dir });
    child.stdout!.resume();
    child.stderr!.resume();
    if (await killAt(child, point)) killed++;
    await assertClean(dir);
    const tags = await listed(dir);
    assert.equal(tags.get('crash.local/survivor:v1'), survivor, 'an earlier tag survives');
    // Tags are written in one index.json update at the end: all or none of the run's.
    const own = [...tags.keys()].filter((t) => /^crash\.local\/(g\d+|wasm):v1$/.test(t));
    assert.ok(own.length === 0 || own.length === GADGETS + 1, `${own.length} of the run's tags`);
  }
  assert.ok(killed >= 3, `the build was killed ${killed} times`);

  const done = await gadget(['run', 'default', '--json'], { cwd: dir });
  assert.equal(done.code, 0, done.stderr);
  const reported = JSON.parse(done.stdout).artifacts as Array<{ ref: string; descriptor: { digest: string } }>;
  assert.equal(reported.length, GADGETS + 1);
  const tags = await listed(dir);
  for (const a of reported) assert.equal(tags.get(a.ref), a.descriptor.digest, `${a.ref} resolves as reported`);
  await assertClean(dir);
});
