// Where `gadget export -o FILE` (and a sync to a bundle) may write. The tar goes to
// FILE.partial-PID and is renamed over FILE, so a FILE that is not a regular file (a device, a
// FIFO, a folder, a symbolic link) would be replaced by a regular file, and a FILE inside the
// store's own folder would overwrite the store: both are refused before anything is written,
// as are paths whose folder is missing or is a file, each with one sentence, a hint and exit
// code 2. Real files, real devices (mknod, as root) and FIFOs, through the real command line.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test, type TestContext } from 'node:test';
import { gadget, spawnGadget, type CliResult } from './helpers/cli.js';
import { FIXTURE_LAYOUT, scratch, sharedMissing } from './helpers/paths.js';

const REF = 'ttl.sh/signed_with_cosign_legacy:latest';
let template: string | undefined;

before(async () => {
  if (sharedMissing()) return;
  template = join(scratch(), 'template');
  const r = await gadget(['--store', template, 'import', FIXTURE_LAYOUT]);
  assert.equal(r.code, 0, r.stderr);
});

/** A scratch folder holding a copy `s` of a store with ig's signed images. */
function fixtureStore(t: TestContext): { dir: string; store: string } | undefined {
  const why = sharedMissing();
  if (why) {
    t.skip(why);
    return undefined;
  }
  const dir = scratch();
  const store = join(dir, 's');
  cpSync(template!, store, { recursive: true });
  return { dir, store };
}

/** What `gadget --store STORE export REF -o out` prints, checked as a refusal: exit 2, one error line, a hint, no stack trace. */
async function refusedExport(store: string, out: string, message: RegExp, json = false): Promise<CliResult> {
  const r = await gadget(['--store', store, ...(json ? ['--json'] : []), 'export', REF, '-o', out]);
  assert.equal(r.code, 2, `exit code for -o ${out}: ${r.stdout}${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at |unexpected failure/, 'no stack trace, no "unexpected failure"');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 2, `one error line and one hint line: ${r.stderr}`);
  assert.match(lines[0]!, /^error: /);
  assert.match(lines[0]!, message);
  assert.ok(lines[0]!.includes(out), `the error names ${out}: ${lines[0]}`);
  assert.match(lines[1]!, /^hint: \S/);
  if (json) {
    const doc = JSON.parse(r.stdout) as { error: { message: string; hint?: string; code: number } };
    assert.equal(doc.error.code, 2);
    assert.match(doc.error.message, message);
    assert.ok(doc.error.hint && doc.error.hint.length > 0, 'the JSON error has a hint');
  } else {
    assert.equal(r.stdout, '', 'nothing on stdout');
  }
  return r;
}

/** `gadget ARGS`, killed (SIGKILL: a blocked open ignores SIGTERM) when it runs longer than `ms`. */
function gadgetWithin(args: string[], ms: number): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnGadget(args);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdin!.end();
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${ms} ms)`;
      child.kill('SIGKILL');
    }, ms);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The store is as it was: fsck passes, index.json is byte-identical. */
async function assertStoreIntact(store: string, index: Buffer): Promise<void> {
  assert.deepEqual(readFileSync(join(store, 'index.json')), index, 'index.json is unchanged');
  const fsck = await gadget(['--store', store, 'fsck']);
  assert.equal(fsck.code, 0, `fsck: ${fsck.stdout}${fsck.stderr}`);
}

/** No FILE.partial-PID is left in `dir`. */
function assertNoPartials(dir: string): void {
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.partial-')), [], `no partial file in ${dir}`);
}

test('a character device is refused and stays a device (mknod c 1 3 in the scratch folder)', async (t) => {
  const f = fixtureStore(t);
  if (!f) return;
  const dev = join(f.dir, 'null-dev');
  const made = spawnSync('mknod', [dev, 'c', '1', '3']);
  if (made.status !== 0) return t.skip(`mknod failed (not root?): ${made.stderr}`);
  const index = readFileSync(join(f.store, 'index.json'));
  const rdev = statSync(dev).rdev;
  await refusedExport(f.store, dev, /is a character device, not a regular file/);
  await refusedExport(f.store, dev, /is a character device/, true);
  const st = lstatSync(dev);
  assert.ok(st.isCharacterDevice(), 'still a character device');
  assert.equal(st.rdev, rdev, 'same device numbers');
  assertNoPartials(f.dir);
  await assertStoreIntact(f.store, index);
});

test('a FIFO is refused and stays a FIFO', async (t) => {
  const f = fixtureStore(t);
  if (!f) return;
  const fifo = join(f.dir, 'fifo1');
  const made = spawnSync('mkfifo', [fifo]);
  assert.equal(made.status, 0, String(made.stderr));
  const index = readFileSync(join(f.store, 'index.json'));
  await refusedExport(f.store, fifo, /is a FIFO/);
  assert.ok(lstatSync(fifo).isFIFO(), 'still a FIFO');
  assertNoPartials(f.dir);
  await assertStoreIntact(f.store, index);
});

test('a symbolic link is refused, whatever it points to: the link stays, so does its target', async (t) => {
  const f = fixtureStore(t);
  if (!f) return;
  const index = readFileSync(join(f.store, 'index.json'));
  const stdoutLink = join(f.dir, 'link');
  symlinkSync('/proc/self/fd/1', stdoutLink);
  await refusedExport(f.store, stdoutLink, /is a symbolic link \(to \/proc\/self\/fd\/1\)/);
  // A link to a regular file is refused too: replacing the link, not its target, would surprise.
  const real = join(f.dir, 'real.tar');
  writeFileSync(real, 'an earlier export');
  const fileLink = join(f.dir, 'file-link.tar');
  symlinkSync('real.tar', fileLink);
  await refusedExport(f.store, fileLink, /is a symbolic link \(to real\.tar\)/);
  // A dangling link: refused as well (writing would replace the link).
  const dangling = join(f.dir, 'dangling.tar');
  symlinkSync('nowhere.tar', dangling);
  await refusedExport(f.store, dangling, /is a symbolic link/);
  for (const [link, to] of [[stdoutLink, '/proc/self/fd/1'], [fileLink, 'real.tar'], [dangling, 'nowhere.tar']] as const) {
    assert.ok(lstatSync(link).isSymbolicLink(), `${link} is still a symbolic link`);
    assert.equal(readlinkSync(link), to, `${link} still points to ${to}`);
  }
  assert.equal(readFileSync(real, 'utf8'), 'an earlier export', 'the link\'s target is untouched');
  assert.ok(!readdirSync(f.dir).includes('nowhere.tar'), 'nothing was created where the dangling link points');
  assertNoPartials(f.dir);
  await assertStoreIntact(f.store, index);
});

test('a folder is refused and stays as it was', async (t) => {
  const f = fixtureStore(t);
  if (!f) return;
  const index = readFileSync(join(f.store, 'index.json'));
  const folder = join(f.dir, 'out');
  mkdirSync(folder);
  writeFileSync(join(folder, 'keep'), 'kept');
  await refusedExport(f.store, folder, /is a folder/);
  assert.ok(lstatSync(folder).isDirectory());
  assert.deepEqual(readdirSync(folder), ['keep']);
  assertNoPartials(f.dir);
  await assertStoreIntact(f.store, index);
});

test("a path inside the store's own folder is refused, also through a symbolic link to it", async (t) => {
  const f = fixtureStore(t);
  if (!f) return;
  const index = readFileSync(join(f.store, 'index.json'));
  const blobDir = join(f.store, 'blobs', 'sha256');
  const blobName = readdirSync(blobDir).sort()[0]!;
  const blob = readFileSync(join(blobDir, blobName));
  const link = join(f.dir, 'store-link');
  symlinkSync('s', link);
  const storeFiles = readdirSync(f.store).sort();
  for (const out of [
    join(f.store, 'index.json'),
    join(blobDir, blobName),
    join(f.store, 'new.tar'),
    join(link, 'index.json'),
    join(link, 'blobs', 'sha256', blobName),
    join(link, 'new.tar'),
    join(f.store, 'blobs', '..', 'new.tar'),
  ]) {
    await refusedExport(f.store, out, /inside the store's own folder/);
  }
  await refusedExport(f.store, join(f.store, 'index.json'), /inside the store's own folder/, true);
  assert.deepEqual(readFileSync(join(blobDir, blobName)), blob, 'the blob is unchanged');
  assert.deepEqual(readdirSync(f.store).sort(), storeFiles, 'no file was added to the store\'s folder');
  assertNoPartials(f.store);
  assertNoPartials(blobDir);
  await assertStoreIntact(f.store, index);
});

test('a path through a regular file, or in a missing folder, is one sentence with a hint', async (t) => {
  const f = fixtureStore(t);
  if (!f) return;
  const index = readFileSync(join(f.store, 'index.json'));
  const afile = join(f.dir, 'afile');
  writeFileSync(afile, 'a regular file');
  const r = await refusedExport(f.store, join(afile, 'x.tar'), /afile is not a folder/);
  assert.ok(r.stderr.includes(`${afile} is not a folder`), 'names the file in the way');
  await refusedExport(f.store, join(afile, 'x.tar'), /is not a folder/, true);
  assert.equal(readFileSync(afile, 'utf8'), 'a regular file');
  // A folder whose file system makes no files: said so, without the temporary name.
  const proc = await refusedExport(f.store, '/proc/x.tar', /^error: cannot write \/proc\/x\.tar: no file can be made in \/proc$/);
  assert.doesNotMatch(proc.stderr, /partial|ENOENT/);
  const missing = join(f.dir, 'nonexist', 'dir', 'x.tar');
  const m = await refusedExport(f.store, missing, /the folder .*nonexist\/dir does not exist/);
  assert.match(m.stderr, /hint: create it first/);
  assert.ok(!readdirSync(f.dir).includes('nonexist'), 'no folder was created');
  await assertStoreIntact(f.store, index);
});

test('export and a sync to a bundle refuse a missing folder with the same sentence and hint, and create nothing', async (t) => {
  const f = fixtureStore(t);
  if (!f) return;
  const index = readFileSync(join(f.store, 'index.json'));
  const missing = join(f.dir, 'missing', 'dir');
  const out = join(missing, 'x.tar');
  const exported = await refusedExport(f.store, out, /the folder .*missing\/dir does not exist$/);
  const synced = await gadget(['--store', f.store, 'sync', '--from', 'store:*legacy*', '--to', out]);
  assert.equal(synced.code, 2, `${synced.stdout}${synced.stderr}`);
  assert.equal(synced.stdout, '', 'nothing on stdout');
  assert.equal(synced.stderr, exported.stderr, 'the same error and hint');
  assert.equal(exported.stderr.trimEnd().split('\n')[1], `hint: create it first: mkdir -p ${missing}`);
  assert.ok(!readdirSync(f.dir).includes('missing'), 'no folder was created');
  assert.deepEqual(readdirSync(f.dir).sort(), ['s'], 'no staging store, no partial file');
  await assertStoreIntact(f.store, index);
});

test('a new file, a regular file and a file in a symlinked folder outside the store are still written', async (t) => {
  const f = fixtureStore(t);
  if (!f) return;
  const out = join(f.dir, 'out.tar');
  const first = await gadget(['--store', f.store, 'export', REF, '-o', out]);
  assert.equal(first.code, 0, first.stderr);
  const bytes = readFileSync(out);
  writeFileSync(out, 'an earlier export');
  const again = await gadget(['--store', f.store, 'export', REF, '-o', out]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(readFileSync(out), bytes, 'the regular file is replaced by the same tar');
  mkdirSync(join(f.dir, 'real-out'));
  symlinkSync('real-out', join(f.dir, 'out-link'));
  const viaLink = await gadget(['--store', f.store, 'export', REF, '-o', join(f.dir, 'out-link', 'x.tar')]);
  assert.equal(viaLink.code, 0, viaLink.stderr);
  assert.deepEqual(readFileSync(join(f.dir, 'real-out', 'x.tar')), bytes);
  assertNoPartials(f.dir);
});

test('sync --to a FIFO, a device or a symbolic link is refused as export refuses it, and the file stays as it was', async (t) => {
  const f = fixtureStore(t);
  if (!f) return;
  const index = readFileSync(join(f.store, 'index.json'));
  const fifo = join(f.dir, 'fifo.tar');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  const link = join(f.dir, 'link.tar');
  symlinkSync('/proc/self/fd/1', link);
  const targets: Array<[string, RegExp]> = [[fifo, /is a FIFO/], [link, /is a symbolic link/]];
  const dev = join(f.dir, 'dev.tar');
  if (spawnSync('mknod', [dev, 'c', '1', '3']).status === 0) targets.push([dev, /is a character device/]);
  for (const [out, message] of targets) {
    // Within a time limit: opening a FIFO as the earlier bundle blocks until a writer comes.
    const r = await gadgetWithin(['--store', f.store, '--json', 'sync', '--from', 'store:*legacy*', '--to', out], 20_000);
    assert.equal(r.code, 2, `sync --to ${out}: ${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at |unexpected failure/);
    const doc = JSON.parse(r.stdout) as { error: { message: string; hint?: string; code: number } };
    assert.equal(doc.error.code, 2);
    assert.match(doc.error.message, message);
    assert.ok(doc.error.message.includes(out), `the error names ${out}`);
    assert.ok(doc.error.hint, 'with a hint');
  }
  assert.ok(lstatSync(fifo).isFIFO(), 'still a FIFO');
  assert.ok(lstatSync(link).isSymbolicLink() && readlinkSync(link) === '/proc/self/fd/1', 'still the same link');
  if (targets.length === 3) assert.ok(lstatSync(dev).isCharacterDevice(), 'still a device');
  assert.deepEqual(readdirSync(f.dir).filter((n) => n.includes('.partial-') || n.endsWith('.staging')), [], 'no partial file, no staging store');
  await assertStoreIntact(f.store, index);
});
