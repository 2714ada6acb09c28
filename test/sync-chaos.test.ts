// Pull, push and registry-to-registry sync of many generated multi-arch gadget images (ebpf,
// wasm and btfgen layers) through the fault proxy of test/helpers/registry.ts (a stand-in for
// a flaky network and an overloaded registry in front of the real docker-registry): a random
// share of all requests meets a reset, 500, 503, 429 with Retry-After, a body cut off or cut
// short, or a flipped byte, drawn from a seeded generator. Every run must end either with every
// image present and verified (the store: fsck re-hashes every blob; a registry: everything is
// pulled back without faults and re-hashed), or with exit 1 naming every image that is missing.
// Never exit 0 with anything missing.
//
// Sizes chosen to keep this file near 2-3 minutes on a loaded 2-core machine: 100 images at 5%
// faults and 20 images at 20% faults for each of pull, push and registry-to-registry, each run
// with its own seed (11-12, 21-22, 31-32), 16 transfers at once (the runs wait on faults more
// than they work).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { fsck } from '../store/maintenance.js';
import { openStore } from '../store/store.js';
import { gadget, type CliResult } from './helpers/cli.js';
import { generatedImages } from './helpers/images.js';
import { registryAvailable, startFaultProxy, startRegistry, type FaultProxy, type TestRegistry } from './helpers/registry.js';
import { tempDir } from './helpers/sync.js';

const available = await registryAvailable();
const SKIP = 'docker-registry is not installed (/usr/bin/docker-registry)';

const names = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}/g${String(i).padStart(4, '0')}`);

interface Summary {
  items: Array<{ source: string; destination: string; status: string; error?: string }>;
}

/** The --json summary of a run (a run that printed none fails the test, with its output). */
function summaryOf(r: CliResult): Summary {
  try {
    return JSON.parse(r.stdout) as Summary;
  } catch {
    throw new Error(`no JSON summary (exit ${r.code}): ${r.stdout.slice(0, 500)} ${r.stderr.slice(0, 2000)}`);
  }
}

/**
 * The rule of this file: exit 0 and nothing missing, or exit 1 and every missing image named
 * as failed in --json. `missing` are the repositories (without host) absent or wrong.
 */
function assertHonest(t: TestContext, label: string, r: CliResult, missing: string[], proxy: FaultProxy): void {
  const summary = summaryOf(r);
  const failed = summary.items.filter((i) => i.status === 'failed');
  t.diagnostic(`${label}: exit ${r.code}, ${summary.items.length} items, ${failed.length} failed, ${missing.length} missing; faults ${JSON.stringify(proxy.chaosCounts)}`);
  if (r.code === 0) {
    assert.deepEqual(missing, [], `${label}: exit 0 with images missing`);
    assert.equal(failed.length, 0);
    return;
  }
  assert.equal(r.code, 1, `${label}: ${r.stderr.slice(0, 2000)}`);
  assert.ok(failed.length > 0, `${label}: exit 1 names no failed image`);
  for (const m of missing) assert.ok(failed.some((f) => f.source.includes(`${m}:`) || f.destination.includes(`${m}:`)), `${label}: ${m} is missing but not named as failed`);
  for (const f of failed) assert.ok(f.error, `${label}: ${f.source} failed without a reason`);
}

/** Which of `repos` (tag v1) are not in the store at `dir` with the expected digest; fsck must be clean either way. */
async function missingInStore(dir: string, host: string, repos: string[], digests: Map<string, string>): Promise<string[]> {
  const store = await openStore(dir);
  try {
    const tagged = new Map(store.list().map((r) => [r.ref, r.digest]));
    const missing = repos.filter((repo) => tagged.get(`${host}/${repo}:v1`) !== digests.get(repo));
    assert.deepEqual(await fsck(store), [], 'every stored blob re-hashes to its digest; nothing dangles');
    return missing;
  } finally {
    store.close();
  }
}

describe('pull, push and sync of many images through random faults', { skip: !available && SKIP }, () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  let sourceDir: string;
  const big = names('chaos', 100);
  const small = names('small', 20);
  const digests = new Map<string, string>();

  before(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.host);
    work = await mkdtemp(join(tmpdir(), 'gadget-chaos-'));
    sourceDir = join(work, 'source');
    const source = await openStore(sourceDir);
    try {
      for (const repos of [big, small]) {
        const indexes = await generatedImages(source, repos.map((r) => `example.com/${r}:v1`), 2048);
        repos.forEach((r, i) => digests.set(r, indexes[i]!.digest));
      }
    } finally {
      source.close();
    }
    // The registry gets the images without faults: the pulls below start from a known state.
    const seeded = await gadget(['--store', sourceDir, '--json', 'sync', '--concurrency', '16', '--from', 'store:example.com/*', '--to', reg.host]);
    assert.equal(seeded.code, 0, seeded.stderr);
  });
  after(async () => {
    await proxy?.close();
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const pulls: Array<[string, string[], number, number]> = [
    ['100 images, 5% faults, seed 11', big, 0.05, 11],
    ['20 images, 20% faults, seed 12', small, 0.2, 12],
  ];
  for (const [label, repos, rate, seed] of pulls) {
    test(`pull: ${label}`, async (t) => {
      const dir = join(await tempDir(t), 'store');
      proxy.chaos({ rate, seed });
      const prefix = repos[0]!.split('/')[0]!;
      const r = await gadget(['--store', dir, '--json', 'sync', '--concurrency', '16', '--from', `${proxy.host}/${prefix}/`, '--to', 'store']);
      proxy.chaos({ rate: 0, seed });
      assertHonest(t, `pull ${label}`, r, await missingInStore(dir, proxy.host, repos, digests), proxy);
    });
  }

  /** Pulls `repos` back from the registry itself (no faults) and says which are missing or wrong. */
  async function missingInRegistry(t: TestContext, namespace: string, repos: string[]): Promise<string[]> {
    const dir = join(await tempDir(t), 'check');
    const prefix = repos[0]!.split('/')[0]!;
    const back = await gadget(['--store', dir, '--json', 'sync', '--concurrency', '16', '--from', `${reg.host}/${namespace}/${prefix}/`, '--to', 'store']);
    const missing = await missingInStore(dir, reg.host, repos.map((r) => `${namespace}/${r}`), new Map(repos.map((r) => [`${namespace}/${r}`, digests.get(r)!])));
    // Missing on the registry is what the run under faults must own up to, not this check.
    if (back.code !== 0) assert.ok(missing.length > 0, back.stderr);
    return missing.map((m) => m.slice(namespace.length + 1));
  }

  const pushes: Array<[string, string[], number, number]> = [
    ['100 images, 5% faults, seed 21', big, 0.05, 21],
    ['20 images, 20% faults, seed 22', small, 0.2, 22],
  ];
  for (const [label, repos, rate, seed] of pushes) {
    test(`push: ${label}`, async (t) => {
      const namespace = `pushed${seed}`;
      const prefix = repos[0]!.split('/')[0]!;
      proxy.chaos({ rate, seed });
      const r = await gadget(['--store', sourceDir, '--json', 'sync', '--concurrency', '16', '--from', `store:example.com/${prefix}/*`, '--to', `${proxy.host}/${namespace}`]);
      proxy.chaos({ rate: 0, seed });
      const missing = await missingInRegistry(t, namespace, repos);
      assertHonest(t, `push ${label}`, r, missing.map((m) => `${namespace}/${m}`), proxy);
    });
  }

  const copies: Array<[string, string[], number, number]> = [
    ['100 images, 5% faults, seed 31', big, 0.05, 31],
    ['20 images, 20% faults, seed 32', small, 0.2, 32],
  ];
  for (const [label, repos, rate, seed] of copies) {
    test(`registry to registry: ${label}`, async (t) => {
      const namespace = `mirrored${seed}`;
      const prefix = repos[0]!.split('/')[0]!;
      proxy.chaos({ rate, seed });
      // Both ends through the proxy: faults on the reads and on the writes.
      const r = await gadget(['--json', 'sync', '--concurrency', '16', '--from', `${proxy.host}/${prefix}/`, '--to', `${proxy.host}/${namespace}`]);
      proxy.chaos({ rate: 0, seed });
      const missing = await missingInRegistry(t, namespace, repos);
      assertHonest(t, `copy ${label}`, r, missing.map((m) => `${namespace}/${m}`), proxy);
    });
  }
});
