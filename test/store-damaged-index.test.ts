// A damaged SQLite index (not a database, cut short, a table dropped) is rebuilt from the
// layout, which is the truth; and a --store on a file system that refuses new folders (/proc)
// ends with one sentence instead of spinning forever. Real files, the real CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore } from '../store/store.js';
import { gadget, spawnGadget } from './helpers/cli.js';
import { writeImage } from './helpers/images.js';
import { assertFsckClean, checkLayout } from './helpers/campaign.js';
import { exited } from './helpers/crash.js';
import { REPO, scratch } from './helpers/paths.js';

const noStack = (stderr: string, what: string): void => assert.doesNotMatch(stderr, /\n\s+at .*:\d+:\d+/, `${what}: no stack trace`);

interface Listed {
  ref: string;
  digest: string;
  platforms: string[];
  size: number;
}

async function list(store: string): Promise<{ images: Listed[]; stderr: string }> {
  const r = await gadget(['--store', store, '--json', 'list']);
  assert.equal(r.code, 0, `list exits 0: ${r.stderr}`);
  noStack(r.stderr, 'list');
  return { images: JSON.parse(r.stdout) as Listed[], stderr: r.stderr };
}

/** A store with three tags of two images, listed once by the CLI (its index is then up to date). */
async function storeWithTags(): Promise<{ dir: string; db: string; before: Listed[] }> {
  const dir = join(scratch(), 's');
  const store = await openStore(dir);
  const one = await writeImage(store, 'one');
  const two = await writeImage(store, 'two');
  await store.tagMany([
    { descriptor: one, ref: 'example.com/damaged/one:v1' },
    { descriptor: one, ref: 'example.com/damaged/one:latest' },
    { descriptor: two, ref: 'example.com/damaged/two:v1' },
  ]);
  store.close();
  const { images: before } = await list(dir);
  assert.deepEqual(before.map((i) => i.ref).sort(), ['example.com/damaged/one:latest', 'example.com/damaged/one:v1', 'example.com/damaged/two:v1']);
  assert.ok(before.every((i) => i.platforms.length === 2), 'the platforms come from the index (a rebuilt one must find them again)');
  const db = join(dir, 'gadget-oci', 'index.sqlite');
  assert.ok(existsSync(db), 'the index database is where store/db.ts puts it');
  return { dir, db, before };
}

/** Whether `file` can be read as the store's index (the damage really took). */
function readableIndex(file: string): boolean {
  try {
    const db = new Database(file, { fileMustExist: true });
    try {
      db.prepare('SELECT count(*) FROM entries').get();
      db.prepare('SELECT count(*) FROM manifests').get();
      return true;
    } finally {
      db.close();
    }
  } catch {
    return false;
  }
}

const DAMAGES: Array<{ name: string; damage: (db: string) => void }> = [
  {
    name: 'garbage bytes (not a database)',
    damage: (db) => {
      rmSync(`${db}-wal`, { force: true });
      rmSync(`${db}-shm`, { force: true });
      writeFileSync(db, Buffer.alloc(64 * 1024, 'this is not an SQLite database; '));
    },
  },
  {
    name: 'truncated to half its size',
    damage: (db) => {
      const size = statSync(db).size;
      assert.ok(size >= 8192, `the index has several pages (${size} bytes)`);
      truncateSync(db, Math.floor(size / 2));
    },
  },
  {
    name: 'missing its entries table',
    damage: (db) => {
      const conn = new Database(db);
      conn.exec('DROP TABLE entries');
      conn.close();
    },
  },
  {
    name: 'missing every table',
    damage: (db) => {
      const conn = new Database(db);
      for (const { name } of conn.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).all() as Array<{ name: string }>) conn.exec(`DROP TABLE "${name}"`);
      conn.close();
    },
  },
];

for (const { name, damage } of DAMAGES) {
  test(`an index that is ${name} is rebuilt from the layout: list shows the same tags, fsck exits 0, later commands work`, async () => {
    const { dir, db, before } = await storeWithTags();
    damage(db);
    assert.equal(readableIndex(db), false, 'the damage took: the index cannot be read');

    const { images, stderr } = await list(dir);
    assert.deepEqual(images, before, 'list shows what it showed before the damage');
    assert.equal(stderr, '', 'a normal command says nothing alarming');
    assert.equal(readableIndex(db), true, 'the index is a whole database again');
    assert.deepEqual(readdirSync(join(dir, 'gadget-oci')).filter((f) => /damaged|\.tmp-/.test(f)), [], 'no damaged file is left beside the index');

    const fsck = await gadget(['--store', dir, 'fsck']);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    noStack(fsck.stderr, 'fsck');
    await assertFsckClean(dir, name);

    const tagged = await gadget(['--store', dir, 'tag', 'example.com/damaged/two:v1', 'example.com/damaged/two:v2']);
    assert.equal(tagged.code, 0, tagged.stderr);
    const after = await list(dir);
    assert.deepEqual(after.images.map((i) => i.ref).sort(), [...before.map((i) => i.ref), 'example.com/damaged/two:v2'].sort());
    assert.equal(checkLayout(dir).get('example.com/damaged/two:v2'), before.find((i) => i.ref === 'example.com/damaged/two:v1')!.digest);
  });
}

for (const { name, damage } of DAMAGES.slice(0, 2)) {
  test(`fsck and fsck --reindex as the first commands on an index that is ${name}: exit 0, no stack trace`, async () => {
    const { dir, db, before } = await storeWithTags();
    damage(db);
    assert.equal(readableIndex(db), false, 'the damage took');
    const reindex = await gadget(['--store', dir, 'fsck', '--reindex']);
    assert.equal(reindex.code, 0, reindex.stdout + reindex.stderr);
    noStack(reindex.stderr, 'fsck --reindex');
    assert.match(reindex.stdout, /no problems found/);

    damage(db);
    assert.equal(readableIndex(db), false, 'the damage took again');
    const fsck = await gadget(['--store', dir, 'fsck']);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    noStack(fsck.stderr, 'fsck');
    assert.deepEqual((await list(dir)).images, before);
  });
}

test('several commands at once on a store whose index is not a database: one index is rebuilt, every tag is kept', async () => {
  const { dir, db, before } = await storeWithTags();
  DAMAGES[0]!.damage(db);
  assert.equal(readableIndex(db), false, 'the damage took');
  const N = 6;
  // Writers that each read index.json, add a tag and write it under the store's lock: were two
  // of them to rebuild over each other (each with its own database, so its own lock), a tag
  // would be lost.
  const runs = await Promise.all([
    ...Array.from({ length: N }, (_, i) => gadget(['--store', dir, 'tag', 'example.com/damaged/one:v1', `example.com/damaged/many:v${i}`])),
    gadget(['--store', dir, '--json', 'list']),
    gadget(['--store', dir, 'fsck']),
  ]);
  for (const r of runs) {
    assert.equal(r.code, 0, r.stdout + r.stderr);
    noStack(r.stderr, 'a concurrent command');
  }
  assert.deepEqual((JSON.parse(runs[N]!.stdout) as Listed[]).filter((i) => !i.ref.includes('/many:')), before, 'the concurrent list shows the old tags');
  const after = (await list(dir)).images.map((i) => i.ref);
  for (let i = 0; i < N; i++) assert.ok(after.includes(`example.com/damaged/many:v${i}`), `tag ${i} is kept`);
  assert.equal(after.length, before.length + N);
  assert.equal(checkLayout(dir).size, before.length + N, 'index.json holds every tag');
  assert.equal(readableIndex(db), true);
  assert.deepEqual(readdirSync(join(dir, 'gadget-oci')).filter((f) => /damaged/.test(f)), [], 'no damaged file is left');
  await assertFsckClean(dir, 'after the concurrent rebuild');
});

// ------------------------------------------------------------- a store where no folder can be made

/** Runs gadget, killing it (and failing) if it has not ended after `ms`: the bug was a command spinning forever. */
async function bounded(args: string[], ms = 15_000): Promise<{ code: number | null; stderr: string }> {
  const child = spawnGadget(args);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.resume();
  child.stdin!.end();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  const outcome = await Promise.race([exited(child), timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    child.kill('SIGKILL');
    await exited(child);
    assert.fail(`gadget ${args.join(' ')} still ran after ${ms} ms (killed); stderr: ${stderr.slice(0, 500)}`);
  }
  await new Promise((resolve) => setImmediate(resolve));
  return { code: outcome.code, stderr };
}

/** Why /proc cannot show the bug here, or undefined when mkdir in it fails with ENOENT. */
function procMissing(): string | undefined {
  if (!existsSync('/proc/self')) return 'no /proc on this system';
  try {
    mkdirSync('/proc/gadget-oci-probe');
    rmSync('/proc/gadget-oci-probe', { recursive: true, force: true });
    return 'mkdir in /proc succeeds here';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : `mkdir in /proc fails with ${(err as NodeJS.ErrnoException).code}, not ENOENT`;
  }
}

// Writers: they create a missing store (a reader refuses one before it tries: store-missing.test.ts).
const BUILD = ['build', join(REPO, 'examples', 'hello_wasm'), '-t', 'example.com/proc/hello:v1'];
for (const { store, args, says } of [
  // /proc itself is a folder of other files: no store is made among them.
  { store: '/proc', args: BUILD, says: /^error: \/proc is not an OCI image layout: it has no index\.json, and holds other files/ },
  { store: '/proc/gadget-oci-new-store', args: BUILD, says: /^error: cannot create the folder \/proc\/\S+/ },
  { store: '/proc/gadget-oci-new-store/deeper', args: BUILD, says: /^error: cannot create the folder \/proc\/\S+/ },
]) {
  test(`--store ${store} ${args.join(' ')}: exit 2 at once with one error sentence naming the folder and a hint`, async (t) => {
    const why = procMissing();
    if (why) return t.skip(why);
    const r = await bounded(['--store', store, ...args]);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 2, `an error line and a hint line: ${r.stderr}`);
    assert.match(lines[0]!, says);
    assert.doesNotMatch(lines[0]!, /unexpected failure/);
    assert.match(lines[1]!, /^hint: \S/);
    noStack(r.stderr, store);
  });
}

test('--store /proc/NEW import TAR: exit 2 at once, the tar untouched', async (t) => {
  const why = procMissing();
  if (why) return t.skip(why);
  const { dir } = await storeWithTags();
  const tar = join(scratch(), 'images.tar');
  const exported = await gadget(['--store', dir, 'export', 'example.com/damaged/one:v1', '-o', tar]);
  assert.equal(exported.code, 0, exported.stderr);
  const size = statSync(tar).size;
  const r = await bounded(['--store', '/proc/gadget-oci-new-store', 'import', tar]);
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 2, r.stderr);
  assert.match(lines[0]!, /^error: cannot create the folder \/proc\//);
  assert.match(lines[1]!, /^hint: /);
  assert.equal(statSync(tar).size, size);
});

/** Overwrites the first bytes of every page of `tables` (found by SQLite's dbstat). */
function damageTables(file: string, tables: string[]): number {
  const db = new Database(file, { fileMustExist: true });
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const pages = db.prepare(`SELECT pageno FROM dbstat WHERE name IN (${tables.map(() => '?').join(',')})`).pluck().all(...tables) as number[];
  db.close(); // the last connection: the WAL is checkpointed into the file and removed
  assert.ok(!existsSync(`${file}-wal`) || statSync(`${file}-wal`).size === 0, 'the pages are all in the main file');
  const fd = openSync(file, 'r+');
  try {
    for (const page of pages) writeSync(fd, Buffer.alloc(100, 0xff), 0, 100, (page - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
  return pages.length;
}

test('damage met in the middle of a command (a table the first read does not touch): exit 2, one sentence, the fsck --reindex hint; fsck --reindex repairs it', async () => {
  const { dir, db, before } = await storeWithTags();
  const first = await gadget(['--store', dir, 'verify', '--all']);
  assert.ok(first.code === 0 || first.code === 1, `verify runs: ${first.stderr}`);
  assert.ok(damageTables(db, ['cache', 'sqlite_autoindex_cache_1']) > 0, 'the verification cache has pages to damage');
  assert.equal(readableIndex(db), true, 'the tables the first read uses are whole: only the middle of the command meets the damage');

  for (const json of [false, true]) {
    const r = await gadget(['--store', dir, ...(json ? ['--json'] : []), 'verify', '--all']);
    assert.equal(r.code, 2, `exit 2 (the environment): ${r.stderr}`);
    noStack(r.stderr, 'verify on a damaged cache table');
    assert.match(r.stderr, /^error: the store's index is damaged\nhint: run `gadget fsck --reindex`/m);
    assert.doesNotMatch(r.stderr, /unexpected failure/);
    if (json) assert.equal((JSON.parse(r.stdout) as { error: { code: number; message: string } }).error.message, "the store's index is damaged");
  }

  const fsck = await gadget(['--store', dir, 'fsck', '--reindex']);
  assert.equal(fsck.code, 0, fsck.stderr);
  const again = await gadget(['--store', dir, 'verify', '--all']);
  assert.equal(again.code, first.code, `verify runs as before the damage: ${again.stderr}`);
  assert.deepEqual((await list(dir)).images, before, 'every tag is kept');
});

test('an index that lost rows (still a whole database) is found by fsck, and fsck --repair makes it again', async () => {
  const { dir, db, before } = await storeWithTags();
  const sql = new Database(db, { fileMustExist: true });
  sql.prepare(`DELETE FROM entries WHERE ref = ?`).run('example.com/damaged/two:v1');
  sql.close();
  const hidden = await list(dir);
  assert.equal(hidden.images.length, before.length - 1, 'list trusts the index: the image is hidden');

  const check = await gadget(['--store', dir, 'fsck']);
  assert.equal(check.code, 1, check.stdout + check.stderr);
  assert.match(check.stdout, /^stale-index: the store's index holds 2 entries where index\.json has 3 \(`gadget fsck --reindex` makes it again\)$/m);
  const repair = await gadget(['--store', dir, '--json', 'fsck', '--repair']);
  assert.equal(repair.code, 0, repair.stderr);
  assert.deepEqual((JSON.parse(repair.stdout) as { problems: Array<{ kind: string; repaired?: string }> }).problems, [{ kind: 'stale-index', subject: 'index.sqlite', message: "the store's index holds 2 entries where index.json has 3 (`gadget fsck --reindex` makes it again)", repaired: 'made the index again from index.json' }]);
  assert.deepEqual((await list(dir)).images, before, 'every image is listed again');
  assert.equal((await gadget(['--store', dir, 'fsck'])).code, 0);
});

test('an index made before cache_time existed gets it where it is: nothing rebuilt, the caches kept, old entries found through it', async () => {
  const { dir, db } = await storeWithTags();
  let store = await openStore(dir);
  store.cachePut('test-namespace', [{ key: 'k', value: { kept: true } }]);
  store.close();
  const conn = new Database(db);
  try {
    conn.exec('DROP INDEX cache_time');
    conn.exec(`INSERT INTO meta VALUES ('marker', 'the same database')`); // a rebuilt index would not have it
  } finally {
    conn.close();
  }
  store = await openStore(dir);
  try {
    assert.deepEqual(store.cacheGet('test-namespace', 'k'), { kept: true }, 'the cache survived the upgrade');
    assert.equal(store.cacheForget('test-namespace', new Date(Date.now() + 60_000)), 1, 'forgetting still finds the entry');
  } finally {
    store.close();
  }
  const after = new Database(db, { readonly: true });
  try {
    assert.equal(after.prepare(`SELECT value FROM meta WHERE key = 'marker'`).pluck().get(), 'the same database', 'not rebuilt');
    const plan = (after.prepare(`EXPLAIN QUERY PLAN DELETE FROM cache WHERE namespace = ? AND time < ?`).all('n', 't') as Array<{ detail: string }>).map((r) => r.detail).join('; ');
    assert.match(plan, /cache_time/, `cacheForget's delete reads the time index, not the whole namespace: ${plan}`);
  } finally {
    after.close();
  }
});
