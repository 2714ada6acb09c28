// gc against concurrent writers, index.json under many writers, and bad input to import,
// with real `gadget` processes on real files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { closeSync, cpSync, existsSync, rmSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { IncompleteGraphError, openStore } from '../store/store.js';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { ANN_REF_NAME, GADGET_ARTIFACT_TYPE, GADGET_CONFIG, GADGET_EBPF, MT_INDEX, MT_MANIFEST } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';
import { gadget, spawnGadget, type CliResult } from './helpers/cli.js';
import { writeImage } from './helpers/images.js';
import { assertFsckClean, checkLayout } from './helpers/campaign.js';
import { exited, freezeWhen, run } from './helpers/crash.js';
import { REPO, scratch } from './helpers/paths.js';

const noStack = (stderr: string, what: string): void => assert.doesNotMatch(stderr, /\n\s+at .*:\d+:\d+/, `${what}: no stack trace`);

/** Every digest in the graph under `d`, read from the store's blobs. */
function graphOf(store: string, d: Descriptor, out = new Set<string>()): Set<string> {
  out.add(d.digest);
  if (d.mediaType !== MT_INDEX && d.mediaType !== MT_MANIFEST) return out;
  const doc = JSON.parse(readFileSync(join(store, 'blobs', 'sha256', d.digest.slice(7)), 'utf8')) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
  for (const c of [...(doc.manifests ?? []), ...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) graphOf(store, c, out);
  return out;
}

const DAY_AGO = new Date(Date.now() - 86_400_000);

test('tagging a digest whose graph is not whole fails and writes nothing; the store names what is missing', async () => {
  const dir = join(scratch(), 's');
  const store = await openStore(dir);
  const image = await writeImage(store, 'whole');
  const layer = [...graphOf(dir, image)].find((d) => readFileSync(join(dir, 'blobs', 'sha256', d.slice(7)), 'utf8').startsWith('ebpf whole arm64'))!;
  assert.deepEqual(store.missingFrom(image), []);
  const before = readFileSync(join(dir, 'index.json'));
  rmSync(join(dir, 'blobs', 'sha256', layer.slice(7)));
  assert.deepEqual(store.missingFrom(image), [layer]);
  assert.equal(await store.exists(image), false, 'exists() of an index answers for its whole graph');
  await assert.rejects(store.tag(image, 'example.com/whole:v1'), (err: unknown) => {
    assert.ok(err instanceof IncompleteGraphError);
    assert.match(err.message, new RegExp(`cannot tag example\\.com/whole:v1: the content of ${image.digest} is not all in store .*\\(${layer} is missing\\)`));
    return true;
  });
  assert.deepEqual(readFileSync(join(dir, 'index.json')), before, 'index.json is untouched');
  store.close();

  const cli = await gadget(['--store', dir, 'tag', image.digest, 'example.com/whole:v1']);
  assert.equal(cli.code, 1, cli.stderr);
  assert.match(cli.stderr, /^error: cannot tag example\.com\/whole:v1: .* is missing/);
  assert.match(cli.stderr, /\nhint: /);
  noStack(cli.stderr, 'tag');
  assert.deepEqual(readFileSync(join(dir, 'index.json')), before);
});

test('gc racing `gadget tag sha256:<index>` on old unreferenced blobs: the tag fails clearly or the content survives, never a dangling tag', async (t) => {
  const dir = join(scratch(), 's');
  const outcomes = { tagged: 0, refused: 0 };
  const ROUNDS = 8;
  for (let round = 0; round < ROUNDS; round++) {
    const store = await openStore(dir);
    const image = await writeImage(store, `rescued-${round}`);
    store.close();
    // Old and unreferenced: gc's default --grace (300 s) does not protect them.
    for (const d of graphOf(dir, image)) utimesSync(join(dir, 'blobs', 'sha256', d.slice(7)), DAY_AGO, DAY_AGO);
    const ref = `example.com/rescued:v${round}`;
    // Even rounds start gc first, odd rounds the tag, each staggered a little differently, so
    // the tag lands before, during and after gc's sweep.
    const stagger = (): Promise<void> => new Promise((r) => setTimeout(r, (round % 4) * 40));
    const first = round % 2 ? gadget(['--store', dir, 'tag', image.digest, ref]) : gadget(['--store', dir, 'gc']);
    await stagger();
    const second = round % 2 ? gadget(['--store', dir, 'gc']) : gadget(['--store', dir, 'tag', image.digest, ref]);
    const [tag, collected] = round % 2 ? [await first, await second] : [await second, await first];
    assert.equal(collected.code, 0, collected.stderr);
    noStack(tag.stderr, 'tag');
    const tags = checkLayout(dir); // every blob a tag reaches is present and intact
    if (tag.code === 0) {
      outcomes.tagged++;
      assert.equal(tags.get(ref), image.digest, `round ${round}: the tag points at the index`);
      for (const d of graphOf(dir, image)) assert.ok(existsSync(join(dir, 'blobs', 'sha256', d.slice(7))), `round ${round}: ${d} survives`);
    } else {
      outcomes.refused++;
      assert.equal(tag.code, 1, `round ${round}: ${tag.stderr}`);
      assert.match(tag.stderr, /^error: (cannot tag example\.com\/rescued:v\d+: the content of sha256:[a-f0-9]{64} is not all in store|sha256:[a-f0-9]{64}: no manifest with digest)/, `round ${round}`);
      assert.ok(!tags.has(ref), `round ${round}: no tag was written`);
    }
    await assertFsckClean(dir, `round ${round}`);
  }
  t.diagnostic(`tagged ${outcomes.tagged}, refused ${outcomes.refused} of ${ROUNDS}`);
});

// argv = module, store, digest, worker, n: tags n refs of its own, then untags the even ones.
const TAGGER = `
const [storeModule, dir, digest, worker, n] = process.argv.slice(2);
const { openStore } = await import(storeModule);
const store = await openStore(dir);
const d = store.resolveRef(digest);
for (let i = 0; i < Number(n); i++) await store.tag(d, 'example.com/w' + worker + '/t' + i + ':v1');
for (let i = 0; i < Number(n); i += 2) await store.untag(['example.com/w' + worker + '/t' + i + ':v1']);
store.close();
`;

/**
 * Reads index.json continuously (open, fstat, read through the same descriptor) until
 * stopped; every read must parse as an OCI index. Counts reads and distinct inodes.
 */
function watchIndex(file: string): { stop(): Promise<{ reads: number; inodes: number; bad: string[] }> } {
  let running = true;
  const inodes = new Set<number>();
  const bad: string[] = [];
  let reads = 0;
  const loop = (async () => {
    while (running) {
      const fd = openSync(file, 'r');
      try {
        const st = fstatSync(fd);
        const buf = Buffer.alloc(st.size);
        let off = 0;
        while (off < st.size) {
          const n = readSync(fd, buf, off, st.size - off, off);
          if (n === 0) break;
          off += n;
        }
        inodes.add(st.ino);
        reads++;
        try {
          const doc = JSON.parse(buf.subarray(0, off).toString('utf8')) as { manifests?: unknown };
          if (!Array.isArray(doc.manifests)) bad.push(`read ${reads}: no manifests list`);
        } catch (err) {
          bad.push(`read ${reads} (${off} bytes): ${(err as Error).message}`);
        }
      } finally {
        closeSync(fd);
      }
      await new Promise((r) => setImmediate(r));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { reads, inodes: inodes.size, bad };
    },
  };
}

test('16 processes tagging and untagging while an import and gc run: no operation lost, no dangling tag, index.json valid at every read', async (t) => {
  const dir = scratch();
  const store = join(dir, 's');
  const source = join(dir, 'src');
  // The source: 10 images to import; the store: one tagged image the taggers use.
  const src = await openStore(source);
  const imported: Array<{ ref: string; descriptor: Descriptor }> = [];
  for (let i = 0; i < 10; i++) imported.push({ ref: `example.com/imported/i${i}:v1`, descriptor: await writeImage(src, `imported-${i}`) });
  await src.tagMany(imported);
  src.close();
  const s = await openStore(store);
  const base = await writeImage(s, 'base');
  await s.tag(base, 'example.com/base:v1');
  // Old garbage for gc, sharing nothing with what is imported.
  for (let i = 0; i < 20; i++) await writeImage(s, `garbage-${i}`);
  s.close();
  for (const f of readdirSync(join(store, 'blobs', 'sha256'))) utimesSync(join(store, 'blobs', 'sha256', f), DAY_AGO, DAY_AGO);

  const script = join(dir, 'tagger.mjs');
  writeFileSync(script, TAGGER);
  const storeModule = pathToFileURL(join(REPO, 'dist', 'store', 'store.js')).href;
  const WORKERS = 16;
  const N = 6;
  const watcher = watchIndex(join(store, 'index.json'));
  const taggers = Array.from({ length: WORKERS }, (_, w) => run(process.execPath, [script, storeModule, store, base.digest, String(w), String(N)]));
  const importRun = gadget(['--store', store, 'import', source]);
  const gcRuns = (async () => {
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await gadget(['--store', store, 'gc', '--grace', '0']));
    return results;
  })();
  const [tagged, importResult, gcResults] = await Promise.all([Promise.all(taggers), importRun, gcRuns]);
  const watched = await watcher.stop();

  for (const [w, r] of tagged.entries()) assert.equal(r.code, 0, `tagger ${w}: ${r.stderr}`);
  assert.equal(importResult.code, 0, importResult.stdout + importResult.stderr);
  for (const r of gcResults) assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(watched.bad, [], 'every read of index.json parses');
  assert.ok(watched.reads > 20, `index.json was read while it changed (${watched.reads} reads)`);
  assert.ok(watched.inodes > 1, `index.json is replaced, not rewritten in place (${watched.inodes} inodes seen)`);

  const tags = checkLayout(store); // no dangling tag: every blob reached is present and intact
  for (let w = 0; w < WORKERS; w++) {
    for (let i = 0; i < N; i++) {
      const ref = `example.com/w${w}/t${i}:v1`;
      if (i % 2) assert.equal(tags.get(ref), base.digest, `${ref} was tagged`);
      else assert.ok(!tags.has(ref), `${ref} was untagged`);
    }
  }
  for (const { ref, descriptor } of imported) assert.equal(tags.get(ref), descriptor.digest, `${ref} was imported`);
  assert.equal(tags.get('example.com/base:v1'), base.digest);
  await assertFsckClean(store, 'after the mix');
  t.diagnostic(`${watched.reads} reads of index.json, ${watched.inodes} inodes`);
});

// ------------------------------------------------------------------ bad input to import

const BLOCK = 512;

/** A ustar header; sizes of 8 GiB and more in GNU base-256, as GNU tar writes them. */
function tarHeader(name: string, size: number, typeflag = '0'): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100, 'ascii');
  h.write('0000000\0', 108, 'ascii');
  h.write('0000000\0', 116, 'ascii');
  if (size < 8 ** 11) h.write(size.toString(8).padStart(11, '0') + '\0', 124, 'ascii');
  else {
    h[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      h[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  h.write('00000000000\0', 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(typeflag, 156, 'ascii');
  h.write('ustar\0' + '00', 257, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

const padded = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((BLOCK - (b.length % BLOCK)) % BLOCK)]);
const fileEntry = (name: string, body: Buffer): Buffer => Buffer.concat([tarHeader(name, body.length), padded(body)]);
const END = Buffer.alloc(BLOCK * 2);

/** A layout folder's files as tar entries (oci-layout, index.json, blobs). */
function layoutEntries(layout: string, indexJson?: Buffer): Buffer {
  const parts = [fileEntry('oci-layout', readFileSync(join(layout, 'oci-layout'))), fileEntry('index.json', indexJson ?? readFileSync(join(layout, 'index.json')))];
  for (const f of readdirSync(join(layout, 'blobs', 'sha256')).sort()) parts.push(fileEntry(`blobs/sha256/${f}`, readFileSync(join(layout, 'blobs', 'sha256', f))));
  return Buffer.concat(parts);
}

test('bad input to import: one clear sentence, the right exit code, the store unchanged, nothing written outside it', async (t) => {
  const dir = scratch();
  // A valid layout with two images, to derive the bad ones from.
  const good = join(dir, 'good');
  const g = await openStore(good);
  const a = await writeImage(g, 'a');
  const b = await writeImage(g, 'b');
  await g.tagMany([{ descriptor: a, ref: 'example.com/a:v1' }, { descriptor: b, ref: 'example.com/b:v1' }]);
  g.close();
  const goodIndex = JSON.parse(readFileSync(join(good, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const withIndex = (name: string, index: unknown | string): string => {
    const layout = join(dir, name);
    cpSync(good, layout, { recursive: true, filter: (p) => !p.includes('gadget-oci') });
    writeFileSync(join(layout, 'index.json'), typeof index === 'string' ? index : JSON.stringify(index));
    return layout;
  };
  const writeTar = (name: string, bytes: Buffer): string => {
    const file = join(dir, name);
    writeFileSync(file, bytes);
    return file;
  };
  const nested = '['.repeat(200_000) + ']'.repeat(200_000);
  const entryA = goodIndex.manifests.find((d) => d.annotations?.[ANN_REF_NAME] === 'example.com/a:v1')!;
  const mislabelled = withIndex('mislabelled', { schemaVersion: 2, manifests: [{ ...entryA, mediaType: MT_MANIFEST }] });
  const twice = withIndex('twice', {
    schemaVersion: 2,
    manifests: [entryA, { ...goodIndex.manifests.find((d) => d.digest === b.digest)!, annotations: { [ANN_REF_NAME]: 'example.com/a:v1' } }],
  });
  const layoutTar = layoutEntries(good);
  const cases: Array<{ name: string; source: string; code: number; message: RegExp }> = [
    {
      name: 'a tar whose last header claims 64 GiB and then ends',
      source: writeTar('claims64g.tar', Buffer.concat([layoutTar, tarHeader(`blobs/sha256/${'a'.repeat(64)}`, 64 * 2 ** 30)])),
      code: 1,
      message: /claims64g\.tar: entry "blobs\/sha256\/a{64}" is truncated/,
    },
    {
      name: 'a gzip tar cut short',
      source: writeTar('cut.tar.gz', (() => { const z = gzipSync(Buffer.concat([layoutTar, END])); return z.subarray(0, z.length >> 1); })()),
      code: 1,
      message: /cut\.tar\.gz: cannot read the archive: its gzip stream is damaged or cut short/,
    },
    { name: 'index.json [1,2,3]', source: withIndex('array', '[1,2,3]'), code: 2, message: /array\/index\.json is not an OCI index: it is a JSON array/ },
    { name: 'index.json nested 200 000 deep', source: withIndex('nested', nested), code: 2, message: /nested\/index\.json is not an OCI index: it is a JSON array/ },
    {
      name: 'index.json [1,2,3] in a tar (the tar is named, not a temporary path)',
      source: writeTar('array.tar', Buffer.concat([layoutEntries(good, Buffer.from('[1,2,3]')), END])),
      code: 2,
      message: /array\.tar: index\.json is not an OCI index: it is a JSON array/,
    },
    {
      name: 'index.json that is not JSON, in a tar',
      source: writeTar('notjson.tar', Buffer.concat([layoutEntries(good, Buffer.from('{"manifests": [')), END])),
      code: 2,
      message: /notjson\.tar: index\.json is not valid JSON/,
    },
    {
      name: 'a descriptor labelled manifest whose blob is an index',
      source: mislabelled,
      code: 1,
      message: new RegExp(`${a.digest} \\(index\\.json entry 0\\) is labelled a manifest \\(${MT_MANIFEST.replace(/[.+]/g, '\\$&')}\\) but its content is ${MT_INDEX.replace(/[.+]/g, '\\$&')}`),
    },
    {
      name: 'the same ref name twice with two digests',
      source: twice,
      code: 1,
      message: new RegExp(`names example\\.com/a:v1 twice, with two digests \\(${a.digest} and ${b.digest}\\); nothing was imported`),
    },
    {
      name: 'a FIFO in a tar',
      source: writeTar('fifo.tar', Buffer.concat([layoutTar, tarHeader('blobs/fifo', 0, '6'), END])),
      code: 1,
      message: /fifo\.tar: entry "blobs\/fifo" is a FIFO; an OCI layout tar holds only files and folders/,
    },
    {
      name: 'a symbolic link in a tar',
      source: writeTar('symlink.tar', Buffer.concat([layoutTar, tarHeader(`blobs/sha256/${'b'.repeat(64)}`, 0, '2'), END])),
      code: 1,
      message: new RegExp(`symlink\\.tar: entry "blobs/sha256/b{64}" is a symbolic link`),
    },
  ];

  const store = join(dir, 'store');
  const s = await openStore(store);
  await s.tag(await writeImage(s, 'already'), 'example.com/already:v1');
  s.close();
  const snapshot = (): unknown => ({
    index: readFileSync(join(store, 'index.json')).toString('base64'),
    blobs: readdirSync(join(store, 'blobs', 'sha256')).sort(),
    tmp: readdirSync(join(store, 'gadget-oci', 'tmp')),
    top: readdirSync(store).sort(),
  });
  const before = snapshot();
  const cwd = join(dir, 'cwd');
  const tmp = join(dir, 'tmp');
  mkdirSync(cwd);
  mkdirSync(tmp);
  const sources = readdirSync(dir).sort();
  for (const c of cases) {
    const r = await gadget(['--store', store, 'import', c.source], { cwd, env: { TMPDIR: tmp } });
    assert.equal(r.code, c.code, `${c.name}: exit code (${r.stderr})`);
    assert.match(r.stderr, c.message, c.name);
    const lines = r.stderr.trimEnd().split('\n');
    assert.ok(lines[0]!.startsWith('error: ') && lines.slice(1).every((l) => l.startsWith('hint: ')) && lines.length <= 2, `${c.name}: one error line and at most a hint: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /gadget-oci\/tmp|\.tmp-\d+/, `${c.name}: no temporary path in the message`);
    noStack(r.stderr, c.name);
    assert.deepEqual(snapshot(), before, `${c.name}: the store is unchanged`);
    assert.deepEqual(readdirSync(cwd), [], `${c.name}: nothing written in the working folder`);
    assert.deepEqual(readdirSync(tmp), [], `${c.name}: nothing written in TMPDIR`);
    assert.deepEqual(readdirSync(dir).sort(), sources, `${c.name}: nothing written beside the sources`);
  }
  t.diagnostic(`${cases.length} bad inputs refused`);
});

test('--store naming a regular file: exit 2, one sentence naming it, for every kind of command', async () => {
  const dir = scratch();
  const file = join(dir, 'a-file');
  writeFileSync(file, 'not a store\n');
  for (const [args, store] of [[['list'], file], [['import', dir], file], [['gc'], file], [['list'], join(file, 'below')]] as const) {
    const r = await gadget(['--store', store, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, store === file ? /^error: the store .*a-file is a file, not a folder\nhint: / : /^error: the store .*a-file\/below cannot be used: a part of its path is a file\nhint: /);
    noStack(r.stderr, args.join(' '));
    assert.equal(readFileSync(file, 'utf8'), 'not a store\n');
  }
  assert.deepEqual(readdirSync(dir), ['a-file']);
});

test('a crashed writer\'s temporary files: fsck exits 0 with a notice; the next writer removes them, a live writer\'s stay', async () => {
  const dir = join(scratch(), 's');
  const s = await openStore(dir);
  await s.tag(await writeImage(s, 'x'), 'example.com/x:v1');
  s.close();
  // A process that is gone for sure: one we started and waited for.
  const dead = spawn(process.execPath, ['-e', '0']);
  await exited(dead);
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  try {
    const tmp = join(dir, 'gadget-oci', 'tmp');
    const deadFile = join(tmp, `.tmp-${dead.pid}-0123456789ab-blob`);
    const deadDir = join(tmp, `.tmp-${dead.pid}-0123456789ac-import`);
    const liveFile = join(tmp, `.tmp-${live.pid}-0123456789ad-blob`);
    writeFileSync(deadFile, 'half a blob');
    mkdirSync(join(deadDir, 'blobs'), { recursive: true });
    writeFileSync(liveFile, 'being written');
    const r = await gadget(['--store', dir, 'fsck']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`notice: stale temporary file ${deadFile.replace(/[.]/g, '\\.')}`));
    assert.match(r.stdout, /no problems found/);
    assert.doesNotMatch(r.stdout, new RegExp(String(live.pid)), 'a live writer\'s file is not reported');
    const tagged = await gadget(['--store', dir, 'tag', 'example.com/x:v1', 'example.com/x:v2']);
    assert.equal(tagged.code, 0, tagged.stderr);
    assert.ok(!existsSync(deadFile) && !existsSync(deadDir), 'the next writer removed the dead writer\'s files');
    assert.ok(existsSync(liveFile), 'the live writer\'s file stays');
  } finally {
    live.kill('SIGKILL');
    await exited(live);
  }
});

test('SIGKILL of an import frozen mid-write: the next command works and removes what it left', async () => {
  const dir = scratch();
  const source = join(dir, 'src');
  const src = await openStore(source);
  const big = await src.putBytes(Buffer.alloc(8 << 20, 7), GADGET_EBPF);
  const config = await src.putBytes(Buffer.from('name: big\n'), GADGET_CONFIG);
  const m = await src.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: GADGET_ARTIFACT_TYPE, config, layers: [big] }), MT_MANIFEST);
  await src.tag(m, 'example.com/big:v1');
  src.close();
  const store = join(dir, 's');
  const child = spawnGadget(['--store', store, 'import', source]);
  child.stdout!.resume();
  child.stderr!.resume();
  const tmp = join(store, 'gadget-oci', 'tmp');
  const frozen = await freezeWhen(child, () => existsSync(tmp) && readdirSync(tmp).some((f) => f.startsWith(`.tmp-${child.pid}-`)));
  assert.ok(frozen, 'the import was stopped while it had a temporary file');
  child.kill('SIGKILL');
  await exited(child);
  assert.ok(readdirSync(tmp).length > 0, 'the kill left a temporary file');
  await assertFsckClean(store, 'after the kill');
  const again = await gadget(['--store', store, 'import', source]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(readdirSync(tmp), [], 'the next import removed it');
  assert.equal(checkLayout(store).get('example.com/big:v1'), m.digest);
});

test('a FIFO or a folder under a blob\'s name is never waited on: fsck names it and --repair removes it, verify calls the blob missing, import of a folder fails that image', async () => {
  const dir = scratch();
  const store = join(dir, 's');
  const s = await openStore(store);
  const image = await writeImage(s, 'x');
  await s.tag(image, 'example.com/fifo/x:v1');
  const config = (await s.readJSON<{ manifests: Descriptor[] }>(image)).manifests[0]!;
  const blob = (await s.readJSON<{ config: Descriptor }>(config)).config;
  s.close();
  const file = join(store, 'blobs', 'sha256', blob.digest.slice(7));
  const stray = join(store, 'blobs', 'sha256', 'c'.repeat(64));
  // Guards: a FIFO opened for reading waits for a writer for ever (the bug this pins).
  const run = (args: string[]): Promise<CliResult> => gadget(['--store', store, ...args], { killAfterMs: 60_000 });
  rmSync(file);
  execFileSync('mkfifo', [file]);
  execFileSync('mkfifo', [stray]);
  const fsck = await run(['fsck']);
  assert.equal(fsck.signal, null, 'fsck did not hang');
  assert.equal(fsck.code, 1, fsck.stderr);
  assert.match(fsck.stdout, new RegExp(`stray-file: ${stray} is a FIFO, not a blob file`));
  assert.match(fsck.stdout, new RegExp(`stray-file: ${file} is a FIFO, not a blob file`));
  const verify = await run(['verify', 'example.com/fifo/x:v1']);
  assert.equal(verify.signal, null, 'verify did not hang');
  assert.equal(verify.code, 1);
  assert.match(verify.stdout, new RegExp(`GADGET-BLOB-MISSING .*${blob.digest}`));
  const layout = join(dir, 'layout');
  assert.equal((await run(['export', 'example.com/fifo/x:v1', '-o', join(dir, 'x.tar')])).code, 1, 'export fails on it too');
  rmSync(file);
  mkdirSync(file);
  const folder = await run(['fsck']);
  assert.equal(folder.code, 1, folder.stderr);
  assert.match(folder.stdout, new RegExp(`stray-file: ${file} is a folder, not a blob file`));
  const repair = await run(['fsck', '--repair']);
  assert.equal(repair.code, 0, repair.stderr);
  assert.ok(!existsSync(file) && !existsSync(stray), 'both removed');
  // A layout folder with a FIFO for a blob: the image fails, named; nothing waits.
  const s2 = await openStore(join(dir, 's2'));
  const image2 = await writeImage(s2, 'y');
  await s2.tag(image2, 'example.com/fifo/y:v1');
  const blob2 = (await s2.readJSON<{ config: Descriptor }>((await s2.readJSON<{ manifests: Descriptor[] }>(image2)).manifests[0]!)).config;
  s2.close();
  cpSync(join(dir, 's2'), layout, { recursive: true });
  rmSync(join(layout, 'gadget-oci'), { recursive: true });
  const fifo2 = join(layout, 'blobs', 'sha256', blob2.digest.slice(7));
  rmSync(fifo2);
  execFileSync('mkfifo', [fifo2]);
  const imported = await gadget(['--store', join(dir, 's3'), 'import', layout], { killAfterMs: 60_000 });
  assert.equal(imported.signal, null, 'import did not hang');
  assert.equal(imported.code, 1, imported.stderr);
  assert.match(imported.stderr, new RegExp(`failed: example.com/fifo/y:v1: .*${blob2.digest} is missing`));
});

test('a manifest written by another program that cannot be followed: fsck names it (exit 1, also with --repair, which leaves it); gc keeps every blob it names', async () => {
  const store = join(scratch(), 's');
  const s = await openStore(store);
  const put = (bytes: Buffer): Descriptor => {
    const d: Descriptor = { mediaType: 'application/octet-stream', digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length };
    writeFileSync(s.blobPath(d.digest), bytes);
    return d;
  };
  const config = put(Buffer.from('name: x\n'));
  const layer = put(Buffer.from('abc'));
  // A layer descriptor without its media type: not a document this program follows.
  const manifest = put(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_MANIFEST, config: { ...config, mediaType: GADGET_CONFIG }, layers: [{ digest: layer.digest, size: layer.size }] }));
  // image-spec 1.1's short-lived artifact manifest: its children are `blobs`.
  const payload = put(Buffer.from('an artifact'));
  const artifact = put(encodeJSONBytes({ mediaType: 'application/vnd.oci.artifact.manifest.v1+json', artifactType: 'application/x.example', blobs: [{ ...payload, mediaType: 'text/plain' }] }));
  s.close();
  const indexFile = join(store, 'index.json');
  const index = JSON.parse(readFileSync(indexFile, 'utf8')) as { manifests: Descriptor[] };
  index.manifests.push({ ...manifest, mediaType: MT_MANIFEST, annotations: { [ANN_REF_NAME]: 'x.io/t/img:v1' } });
  index.manifests.push({ ...artifact, mediaType: 'application/vnd.oci.artifact.manifest.v1+json', annotations: { [ANN_REF_NAME]: 'x.io/t/artifact:v1' } });
  writeFileSync(indexFile, JSON.stringify(index));
  const old = new Date(Date.now() - 3600_000);
  for (const d of [config, layer, manifest, payload, artifact]) utimesSync(s.blobPath(d.digest), old, old);

  const fsck = await gadget(['--store', store, 'fsck']);
  assert.equal(fsck.code, 1, fsck.stdout + fsck.stderr);
  assert.match(fsck.stdout, new RegExp(`^unreadable-manifest: ${manifest.digest} \\(${esc(MT_MANIFEST)}\\) cannot be followed`, 'm'));
  const gc = await gadget(['--store', store, '--json', 'gc', '--grace', '0']);
  assert.equal(gc.code, 0, gc.stderr);
  assert.deepEqual(JSON.parse(gc.stdout).removedBlobs, [], 'nothing a tag names is removed');
  for (const d of [config, layer, manifest, payload, artifact]) assert.ok(existsSync(s.blobPath(d.digest)), `${d.digest} kept`);
  const repair = await gadget(['--store', store, 'fsck', '--repair']);
  assert.equal(repair.code, 1, 'what --repair leaves is still a failure');
  assert.ok(existsSync(s.blobPath(manifest.digest)), 'and it is left');
});

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test("index.json and the store's index disagreeing on which digest a tag names: fsck finds it; an edit in place that kept size and time is read and kept; a tag named twice is a notice", async () => {
  const dir = scratch();
  const store = join(dir, 's');
  const s = await openStore(store);
  await s.tag(await writeImage(s, 'a'), 'example.com/a:v1');
  await s.tag(await writeImage(s, 'b'), 'example.com/b:v1');
  const a = s.resolveRef('example.com/a:v1').digest;
  const b = s.resolveRef('example.com/b:v1').digest;
  s.close();
  // The index database swaps the two tags' digests (the same digests, the same tags).
  const db = new Database(join(store, 'gadget-oci', 'index.sqlite'));
  db.exec(`UPDATE entries SET ref = 'tmp' WHERE ref = 'example.com/a:v1'; UPDATE entries SET ref = 'example.com/a:v1' WHERE ref = 'example.com/b:v1'; UPDATE entries SET ref = 'example.com/b:v1' WHERE ref = 'tmp';`);
  db.close();
  const swapped = await gadget(['--store', store, 'fsck']);
  assert.equal(swapped.code, 1, swapped.stdout);
  assert.match(swapped.stdout, /^stale-index: the store's index pairs tags with other digests than index.json/m);
  assert.equal((await gadget(['--store', store, 'fsck', '--repair'])).code, 0);
  assert.equal((await gadget(['--store', store, 'fsck'])).code, 0, 'made again');

  // index.json edited in place, its size and time kept: the next write keeps the edit (it
  // rewrites the file from the index, which it first brings up to date with the content).
  const file = join(store, 'index.json');
  const before = join(dir, 'index.before');
  cpSync(file, before);
  execFileSync('touch', ['-r', file, before]); // its time to the nanosecond
  const text = readFileSync(file, 'utf8');
  writeFileSync(file, text.replace('example.com/a:v1', 'example.com/X:v1').replace('example.com/b:v1', 'example.com/a:v1').replace('example.com/X:v1', 'example.com/b:v1'));
  execFileSync('touch', ['-r', before, file]);
  // Reads see the edit too: a file's change time cannot be set back, and the fingerprint holds it.
  const listed = await gadget(['--store', store, '--json', 'list']);
  const rows = new Map((JSON.parse(listed.stdout) as Array<{ ref: string; digest: string }>).map((r) => [r.ref, r.digest]));
  assert.deepEqual([rows.get('example.com/a:v1'), rows.get('example.com/b:v1')], [b, a], 'list reads the edited index.json');
  const tagged = await gadget(['--store', store, 'tag', 'example.com/a:v1', 'example.com/c:v1']);
  assert.equal(tagged.code, 0, tagged.stderr);
  const after = await openStore(store);
  try {
    assert.equal(after.resolveRef('example.com/a:v1').digest, b, 'the edit is kept: a names what b named');
    assert.equal(after.resolveRef('example.com/b:v1').digest, a);
    assert.equal(after.resolveRef('example.com/c:v1').digest, b, 'and the new tag was resolved from the edit');
  } finally {
    after.close();
  }

  // A tag index.json names twice with two digests: a notice (the later is the tag), exit 0.
  const index = JSON.parse(readFileSync(file, 'utf8')) as { manifests: Descriptor[] };
  const first = index.manifests.find((m) => m.annotations?.[ANN_REF_NAME] === 'example.com/c:v1')!;
  const other = first.digest === a ? b : a;
  index.manifests.push({ ...index.manifests.find((m) => m.digest === other)!, annotations: { [ANN_REF_NAME]: 'example.com/c:v1' } });
  writeFileSync(file, JSON.stringify(index));
  const twice = await gadget(['--store', store, 'fsck']);
  assert.equal(twice.code, 0, twice.stdout);
  assert.match(twice.stdout, new RegExp(`^notice: index.json names example.com/c:v1 2 times \\(${first.digest}, ${other}\\): the last is the tag`, 'm'));
});

test("a tag whose size in index.json is not its blob's: fsck names it (export's hint sends users there), --repair removes the tag", async () => {
  const store = join(scratch(), 's');
  const s = await openStore(store);
  const image = await writeImage(s, 'x');
  await s.tag(image, 'example.com/size/x:v1');
  s.close();
  const file = join(store, 'index.json');
  writeFileSync(file, readFileSync(file, 'utf8').replace(`"size":${image.size}`, `"size":${image.size - 1}`));
  const exported = await gadget(['--store', store, 'export', 'example.com/size/x:v1', '-o', join(store, '..', 'x.tar')]);
  assert.equal(exported.code, 1);
  assert.match(exported.stderr, /gadget fsck/);
  const fsck = await gadget(['--store', store, 'fsck']);
  assert.equal(fsck.code, 1, fsck.stdout);
  assert.match(fsck.stdout, new RegExp(`^dangling-tag: tag example.com/size/x:v1 says ${image.digest} has ${image.size - 1} bytes, but the blob has ${image.size}$`, 'm'));
  const repair = await gadget(['--store', store, 'fsck', '--repair']);
  assert.equal(repair.code, 0, repair.stdout);
  assert.equal((await gadget(['--store', store, 'fsck'])).code, 0);
});

test("import: a layout's malformed ref names are refused naming the layout, with a hint, and nothing is imported", async () => {
  const dir = scratch();
  const s = await openStore(join(dir, 'src'));
  await s.tag(await writeImage(s, 'x'), 'example.com/ref/x:v1');
  s.close();
  for (const [name, ref, message] of [
    ['traversal', '../../etc:1', /index\.json names "\.\.\/\.\.\/etc:1", which is not an image reference/],
    ['number', 12345, /index\.json has a ref name that is not a string/],
    // A name that would forge a line and colour the terminal is quoted inert, on one line.
    ['forged', 'ttl.sh/x:v1\nerror: forged line \u001b[31mred', /index\.json names "ttl\.sh\/x:v1\\nerror: forged line \\u001b\[31mred", which is not an image reference \("ttl\.sh\/x:v1\\nerror: forged line \\e\[31mred" is not a valid/],
  ] as Array<[string, unknown, RegExp]>) {
    const layout = join(dir, name);
    cpSync(join(dir, 'src'), layout, { recursive: true });
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ annotations: Record<string, unknown> }> };
    index.manifests[0]!.annotations[ANN_REF_NAME] = ref;
    writeFileSync(join(layout, 'index.json'), JSON.stringify(index));
    const r = await gadget(['--store', join(dir, `into-${name}`), 'import', layout]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^error: layout ${esc(layout)}: `));
    assert.match(r.stderr, message);
    assert.match(r.stderr, /\nhint: the layout is malformed where it was written/);
    assert.equal(r.stderr.match(/^error: /gm)?.length, 1, `one error line: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\u001b/);
    assert.ok(!existsSync(join(dir, `into-${name}`)), 'nothing was imported, not even a store made');
  }
});

test('import: a layout that lists one tag twice (same digest) imports it once, and says so once', async () => {
  const dir = scratch();
  const s = await openStore(join(dir, 'src'));
  await s.tag(await writeImage(s, 'x'), 'example.com/twice/x:v1');
  s.close();
  const file = join(dir, 'src', 'index.json');
  const index = JSON.parse(readFileSync(file, 'utf8')) as { manifests: unknown[] };
  index.manifests.push(index.manifests[0]);
  writeFileSync(file, JSON.stringify(index));
  const r = await gadget(['--store', join(dir, 'into'), '--json', 'import', join(dir, 'src')]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).tags, ['example.com/twice/x:v1']);
});
