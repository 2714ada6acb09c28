// SIGKILL campaigns: run a writing command many times, kill it at a random moment, then
// check that the next run completes, that `gadget fsck` exits 0, and an independent check of
// the layout (index.json valid, every blob it reaches present and matching its digest) made
// here without the store's code. Moments are drawn from a seeded generator, so a failing try
// can be replayed; each try's report says when it was killed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { gadget } from './cli.js';
import { exited, hasExited } from './crash.js';
import { seededRandom } from './random.js';
import { setTimeout as sleep } from 'node:timers/promises';

const MANIFEST_TYPES = new Set([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/**
 * The independent check: index.json is an OCI index, and every blob reached from its entries
 * is present, has its descriptor's size and hashes to its digest. Returns the tags.
 */
export function checkLayout(store: string): Map<string, string> {
  const doc = JSON.parse(readFileSync(join(store, 'index.json'), 'utf8')) as { schemaVersion: number; manifests: Desc[] };
  assert.equal(doc.schemaVersion, 2, 'index.json: schemaVersion 2');
  assert.ok(Array.isArray(doc.manifests), 'index.json: a manifests list');
  const tags = new Map<string, string>();
  const seen = new Set<string>();
  const visit = (d: Desc, from: string): void => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    const file = join(store, 'blobs', 'sha256', d.digest.slice(7));
    assert.ok(existsSync(file), `${from}: ${d.digest} is present`);
    const bytes = readFileSync(file);
    assert.equal(bytes.length, d.size, `${from}: ${d.digest} has its size`);
    assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, d.digest, `${from}: ${d.digest} matches its digest`);
    if (!MANIFEST_TYPES.has(d.mediaType)) return;
    const m = JSON.parse(bytes.toString('utf8')) as { manifests?: Desc[]; config?: Desc; layers?: Desc[] };
    for (const child of [...(m.manifests ?? []), ...(m.config ? [m.config] : []), ...(m.layers ?? [])]) visit(child, from);
  };
  for (const d of doc.manifests) {
    const ref = d.annotations?.['org.opencontainers.image.ref.name'];
    if (ref) tags.set(ref, d.digest);
    visit(d, ref ?? d.digest);
  }
  return tags;
}

/** `gadget fsck` exits 0 with no problem (notices about dead writers' files are allowed). */
export async function assertFsckClean(store: string, what: string): Promise<void> {
  const r = await gadget(['--store', store, '--json', 'fsck']);
  assert.equal(r.code, 0, `${what}: fsck exits 0: ${r.stdout}${r.stderr}`);
  assert.deepEqual((JSON.parse(r.stdout) as { problems: unknown[] }).problems, [], `${what}: fsck finds no problem`);
}

export interface CampaignRow {
  test: string;
  tried: number;
  /** Tries where the kill landed while the command ran (the others had finished first). */
  killed: number;
  clean: number;
  failed: number;
}

export interface Campaign {
  name: string;
  tries: number;
  seed: number;
  /** Starts the command to kill for try `i` (on a store of its own or a shared one). */
  start(i: number): Promise<{ child: ChildProcess; store: string }>;
  /** The next run after the kill: must complete (asserts its own exit code and result). */
  recover(store: string, i: number): Promise<void>;
  /** How long an unkilled run takes, so that kill moments cover the whole run. */
  durationMs: number;
}

/**
 * Runs the campaign; every try is checked (next run, fsck, independent check) whether or not
 * the kill landed. Returns the table row; asserts that no try failed and that most kills
 * really interrupted a running command.
 */
export async function runCampaign(c: Campaign, log: (line: string) => void): Promise<CampaignRow> {
  const next = seededRandom(c.seed);
  const row: CampaignRow = { test: c.name, tried: 0, killed: 0, clean: 0, failed: 0 };
  const failures: string[] = [];
  let duration = c.durationMs;
  for (let i = 0; i < c.tries; i++) {
    const delay = Math.round(duration * (0.1 + 0.85 * next()));
    const { child, store } = await c.start(i);
    const began = Date.now();
    child.stdout?.resume();
    child.stderr?.resume();
    await Promise.race([sleep(delay), exited(child)]);
    const killed = !hasExited(child);
    // A run that finished first says the machine got faster: aim the next kills inside that.
    if (!killed) duration = Math.min(duration, Date.now() - began);
    if (killed) child.kill('SIGKILL');
    await exited(child);
    row.tried++;
    if (killed) row.killed++;
    const what = `${c.name} try ${i} (${killed ? `killed after ${delay} ms` : 'finished first'})`;
    try {
      await c.recover(store, i);
      await assertFsckClean(store, what);
      checkLayout(store);
      row.clean++;
    } catch (err) {
      row.failed++;
      failures.push(`${what}: ${(err as Error).message}`);
    }
  }
  log(`${c.name}: tried ${row.tried}, killed while running ${row.killed}, clean ${row.clean}, failed ${row.failed}`);
  assert.deepEqual(failures, [], `${c.name}: every try recovers`);
  assert.ok(row.killed >= Math.ceil(c.tries / 2), `${c.name}: at least half the kills interrupted a running command (${row.killed} of ${c.tries})`);
  return row;
}

/** Measures one unkilled run of `start` (which must exit 0). */
export async function timeRun(start: () => Promise<{ child: ChildProcess }>): Promise<number> {
  const begin = Date.now();
  const { child } = await start();
  let stderr = '';
  child.stdout?.resume();
  child.stderr?.on('data', (d) => (stderr += d));
  const { code } = await exited(child);
  assert.equal(code, 0, `the calibration run succeeds: ${stderr}`);
  return Date.now() - begin;
}

/** The markdown table of campaign rows (printed by the tests for the report). */
export function table(rows: CampaignRow[]): string {
  return ['| test | tried | killed while running | clean | failed |', '|---|---|---|---|---|', ...rows.map((r) => `| ${r.test} | ${r.tried} | ${r.killed} | ${r.clean} | ${r.failed} |`)].join('\n');
}
