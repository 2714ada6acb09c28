// Crash safety and concurrency of the store, with real `gadget` processes on real files:
// parallel writers, SIGKILL in the middle of imports, damaged blobs and index.json, other
// programs (skopeo, umoci, a plain file write) working on the same layout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pathToFileURL } from 'node:url';
import { openStore } from '../store/store.js';
import { fsck as fsckStore } from '../store/maintenance.js';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { ANN_REF_NAME, GADGET_ARTIFACT_TYPE, GADGET_CONFIG, GADGET_EBPF, MT_INDEX, MT_MANIFEST, isManifestType } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';
import { gadget, spawnGadget } from './helpers/cli.js';
import { exited, freezeWhen, killAt, run, type KillPoint } from './helpers/crash.js';
import { FIXTURE_LAYOUT, REPO, scratch, sharedMissing } from './helpers/paths.js';

const LEGACY = 'ttl.sh/signed_with_cosign_legacy:latest';
const noStack = (stderr: string): void => assert.doesNotMatch(stderr, /\n\s+at .*:\d+:\d+/, 'no stack trace');

type Problem = { kind: string; subject: string; message: string; repaired?: string };
type ListedImage = { ref: string; digest: string };

/** The refs in index.json, the truth on disk, after checking that it is an OCI index. */
function indexRefs(store: string): string[] {
  const doc = JSON.parse(readFileSync(join(store, 'index.json'), 'utf8')) as { schemaVersion: number; manifests: Descriptor[] };
  assert.equal(doc.schemaVersion, 2);
  assert.ok(Array.isArray(doc.manifests), 'index.json has a manifests list');
  return doc.manifests.flatMap((d) => (d.annotations?.[ANN_REF_NAME] ? [d.annotations[ANN_REF_NAME]] : []));
}

async function list(store: string): Promise<ListedImage[]> {
  const r = await gadget(['--store', store, '--json', 'list']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ListedImage[];
}

async function fsck(store: string, ...flags: string[]): Promise<{ code: number | null; problems: Problem[] }> {
  return (await fsckWithNotices(store, ...flags)).result;
}

async function fsckWithNotices(store: string, ...flags: string[]): Promise<{ result: { code: number | null; problems: Problem[] }; notices: Problem[] }> {
  const r = await gadget(['--store', store, '--json', 'fsck', ...flags]);
  assert.ok(r.code === 0 || r.code === 1, `fsck ${flags.join(' ')}: ${r.stderr}`);
  const doc = JSON.parse(r.stdout) as { problems: Problem[]; notices: Problem[] };
  return { result: { code: r.code, problems: doc.problems }, notices: doc.notices };
}

async function importInto(store: string, source: string): Promise<void> {
  const r = await gadget(['--store', store, 'import', source]);
  assert.equal(r.code, 0, r.stderr);
}

const blobFile = (store: string, digest: string): string => join(store, 'blobs', 'sha256', digest.slice(7));

/** Whether the graph under `d` (read from the store's blobs) contains `digest`. */
function reaches(store: string, d: Descriptor, digest: string): boolean {
  if (d.digest === digest) return true;
  if (!isManifestType(d.mediaType) || !existsSync(blobFile(store, d.digest))) return false;
  const doc = JSON.parse(readFileSync(blobFile(store, d.digest), 'utf8')) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
  const children = doc.manifests ?? [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])];
  return children.some((c) => reaches(store, c, digest));
}

// Tags through the library, as a plugin or script would: argv = module, store, src, prefix, n.
const TAGGER = `
const [storeModule, dir, src, prefix, n] = process.argv.slice(2);
const { openStore } = await import(storeModule);
const store = await openStore(dir);
const descriptor = store.resolveRef(src);
for (let i = 0; i < Number(n); i++) await store.tag(descriptor, prefix + ':t' + i);
store.close();
`;

test('sixteen processes tagging one store at once (library and CLI) lose no tag', async (t) => {
  const why = sharedMissing();
  if (why) return t.skip(why);
  const dir = scratch();
  const store = join(dir, 's');
  await importInto(store, FIXTURE_LAYOUT);
  const before = indexRefs(store);
  const script = join(dir, 'tagger.mjs');
  writeFileSync(script, TAGGER);
  const storeModule = pathToFileURL(join(REPO, 'dist', 'store', 'store.js')).href;
  const [LIB_TAGS, CLI_TAGS] = [20, 2];
  const refs = (kind: string, n: number): string[] => Array.from({ length: 8 * n }, (_, k) => `example.com/${kind}/w${k % 8}:t${Math.floor(k / 8)}`);
  const expected = [...refs('lib', LIB_TAGS), ...refs('cli', CLI_TAGS)];

  const library = Array.from({ length: 8 }, (_, w) => run(process.execPath, [script, storeModule, store, LEGACY, `example.com/lib/w${w}`, String(LIB_TAGS)]));
  const cli = Array.from({ length: 8 }, async (_, w) => {
    const results = [];
    for (let i = 0; i < CLI_TAGS; i++) results.push(await gadget(['--store', store, 'tag', LEGACY, `example.com/cli/w${w}:t${i}`]));
    return results;
  });
  const results = [...(await Promise.all(library)), ...(await Promise.all(cli)).flat()];
  for (const r of results) assert.equal(r.code, 0, r.stderr);

  const onDisk = indexRefs(store);
  for (const ref of expected) assert.equal(onDisk.filter((r) => r === ref).length, 1, `${ref} is in index.json once`);
  assert.equal(onDisk.length, before.length + expected.length);
  const listed = new Map((await list(store)).map((r) => [r.ref, r.digest]));
  const legacyDigest = listed.get(LEGACY);
  for (const ref of expected) assert.equal(listed.get(ref), legacyDigest, `gadget list shows ${ref}`);
  assert.deepEqual(await fsck(store), { code: 0, problems: [] });
});

// Processes opening a store whose index database does not exist yet create its schema under
// the write lock (store/db.ts); before that, some of them failed with "table meta already exists".
test("eight processes making first use of ig's own store (no gadget-oci folder yet) lose no tag", async (t) => {
  const why = sharedMissing();
  if (why) return t.skip(why);
  const [store, untouched] = [join(scratch(), 's'), join(scratch(), 'u')];
  for (const dir of [store, untouched]) cpSync(FIXTURE_LAYOUT, dir, { recursive: true });
  const refs = Array.from({ length: 8 }, (_, w) => `example.com/first/w${w}:v1`);
  const results = await Promise.all(refs.map((ref) => gadget(['--store', store, 'tag', LEGACY, ref])));
  for (const r of results) {
    assert.equal(r.code, 0, r.stderr);
    noStack(r.stderr);
  }
  const onDisk = indexRefs(store);
  for (const ref of refs) assert.ok(onDisk.includes(ref), ref);
  assert.deepEqual(await fsck(store), await fsck(untouched), 'the tags add no problem to the ones ig\'s store has');
});

const IMAGES = 12;
const BIG = 1; // images whose layers are 4 MB, so that a kill can land in the middle of a blob

/** A source store of IMAGES two-platform images with random layers; returns their refs. */
async function writeSource(dir: string): Promise<string[]> {
  const store = await openStore(dir);
  const items: Array<{ descriptor: Descriptor; ref: string }> = [];
  for (let i = 0; i < IMAGES; i++) {
    const config = await store.putBytes(Buffer.from(`name: crash${i}\n`), GADGET_CONFIG);
    const manifests: Descriptor[] = [];
    for (const arch of ['amd64', 'arm64']) {
      const layer = await store.putBytes(randomBytes(i < BIG ? 4 << 20 : 1024 + i), GADGET_EBPF);
      const manifest = { schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: GADGET_ARTIFACT_TYPE, config, layers: [layer] };
      manifests.push({ ...(await store.putBytes(encodeJSONBytes(manifest), MT_MANIFEST)), platform: { architecture: arch, os: 'linux' } });
    }
    const index = await store.putBytes(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_INDEX, manifests }), MT_INDEX);
    items.push({ descriptor: index, ref: `example.com/crash/img${i}:v1` });
  }
  await store.tagMany(items);
  store.close();
  return items.map((i) => i.ref);
}

/** The temporary files and folders a process left in the layout (top level of each place). */
function tempsOf(store: string, pid: number): string[] {
  const places = [join(store, 'gadget-oci', 'tmp'), join(store, 'blobs', 'sha256')];
  return places.flatMap((dir) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith(`.tmp-${pid}-`)).map((f) => join(dir, f)) : [])).sort();
}

/** Where to kill an import; with `freeze`, first stop it there and fsck the live store. */
type CrashPoint = { label: string; tar?: 'plain' | 'gzip'; freeze?: boolean; at: (dst: string, pid: number, baseBlobs: number) => KillPoint };

const blobCount = (store: string): number => readdirSync(join(store, 'blobs', 'sha256')).length;
const afterBlobs = (n: number): CrashPoint => ({ label: `after ${n} new blobs`, at: (dst, _pid, base) => ({ label: `${n} new blobs`, when: () => blobCount(dst) >= base + n }) });
const CRASH_POINTS: CrashPoint[] = [
  ...[5, 100, 300, 1000].map((ms): CrashPoint => ({ label: `after ${ms} ms`, at: () => ({ delayMs: ms }) })),
  ...[5, 25, 50, IMAGES * 6].map(afterBlobs),
  { label: 'while writing a blob', freeze: true, at: (dst, pid) => ({ label: 'a temporary blob', when: () => tempsOf(dst, pid).some((f) => f.endsWith('-blob')) }) },
  // A plain tar is read in place (nothing unpacked); a gzip one is unpacked first.
  { label: 'while writing a blob from a plain tar', tar: 'plain', freeze: true, at: (dst, pid) => ({ label: 'a temporary blob', when: () => tempsOf(dst, pid).some((f) => f.endsWith('-blob')) }) },
  { label: 'while unpacking a gzip tar', tar: 'gzip', freeze: true, at: (dst, pid) => ({ label: 'an unpacking folder', when: () => tempsOf(dst, pid).some((f) => f.endsWith('-import')) }) },
];

type CrashSetup = { dir: string; source: string; tar: string; tarGz: string; sourceRefs: string[]; base: string; baseRefs: string[]; baseImages: string[]; baseBlobs: number };

/** One import into a copy of the base store, killed at `point`, checked, re-run. Returns whether temporary files were left. */
async function crashAndRecover(c: CrashSetup, point: CrashPoint, n: number): Promise<boolean> {
  const what = `kill ${point.label}`;
  const dst = join(c.dir, `dst${n}`);
  cpSync(c.base, dst, { recursive: true });
  const src = point.tar === 'plain' ? c.tar : point.tar === 'gzip' ? c.tarGz : c.source;
  const child = spawnGadget(['--store', dst, 'import', src]);
  child.stdout!.resume();
  child.stderr!.resume();
  const pid = child.pid!;
  try {
    const kill = point.at(dst, pid, c.baseBlobs);
    if (point.freeze) {
      assert.ok('when' in kill && (await freezeWhen(child, kill.when)), `${what}: the import reached that point`);
      // A live process's temporary files are not damage: fsck of the store in use is clean.
      const live = await fsck(dst);
      assert.deepEqual(live.problems, [], `${what}: fsck while the import runs`);
      child.kill('SIGKILL');
      await exited(child);
    } else {
      await killAt(child, kill);
    }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited(child);
  }

  // fsck exits 0: the dead process's temporary files are notices (each one named), not damage.
  const left = tempsOf(dst, pid);
  if (point.freeze) assert.ok(left.length > 0, `${what}: a temporary file is left`);
  const first = await fsckWithNotices(dst);
  assert.deepEqual(first.result, { code: 0, problems: [] }, `${what}: no damage`);
  assert.deepEqual(first.notices.map((p) => p.subject).sort(), left, `${what}: every stale temporary file is a notice`);
  for (const n of first.notices) assert.equal(n.kind, 'stale-temp');

  // Tags from before survive; the import's own tags are all there or none (one index.json update).
  const refs = indexRefs(dst);
  for (const ref of c.baseRefs) assert.ok(refs.includes(ref), `${what}: ${ref} survives`);
  const added = c.sourceRefs.filter((r) => refs.includes(r)).length;
  assert.ok(added === 0 || added === c.sourceRefs.length, `${what}: ${added} of ${c.sourceRefs.length} tags`);

  // The re-run (the next writer) removes the dead import's temporary files, skips what is
  // there (a present manifest and its whole graph) and completes.
  await importInto(dst, src);
  for (const f of left) assert.ok(!existsSync(f), `${what}: the next writer removed ${f}`);
  assert.deepEqual((await fsckWithNotices(dst)).notices, [], `${what}: no notice after the re-run`);
  const store = await openStore(dst);
  try {
    assert.deepEqual(await fsckStore(store), [], `${what}: clean after the re-run`);
    const listed = new Set(store.list().map((r) => r.ref));
    for (const ref of [...c.baseImages, ...c.sourceRefs]) assert.ok(listed.has(ref), `${what}, re-run: ${ref} is listed`);
    for (const ref of c.baseRefs) store.resolveRef(ref);
  } finally {
    store.close();
  }
  rmSync(dst, { recursive: true, force: true });
  return left.length > 0;
}

test('SIGKILL during import at many points: fsck finds only the dead import\'s temporary files, no tag is lost, a re-run completes', async (t) => {
  const why = sharedMissing();
  if (why) return t.skip(why);
  const dir = scratch();
  const source = join(dir, 'src');
  const sourceRefs = await writeSource(source);
  const tar = join(dir, 'src.tar');
  const exported = await gadget(['--store', source, 'export', ...sourceRefs, '-o', tar]);
  assert.equal(exported.code, 0, exported.stderr);
  const tarGz = join(dir, 'src.tar.gz');
  writeFileSync(tarGz, gzipSync(readFileSync(tar)));
  const base = join(dir, 'base');
  await importInto(base, FIXTURE_LAYOUT);
  const baseRefs = indexRefs(base);
  const baseImages = (await list(base)).map((r) => r.ref);

  const setup: CrashSetup = { dir, source, tar, tarGz, sourceRefs, base, baseRefs, baseImages, baseBlobs: blobCount(base) };
  let strays = 0;
  // Two at a time: each works on its own copy of the store.
  for (let i = 0; i < CRASH_POINTS.length; i += 2) {
    const pair = CRASH_POINTS.slice(i, i + 2).map((point, k) => crashAndRecover(setup, point, i + k));
    strays += (await Promise.all(pair)).filter(Boolean).length;
  }
  assert.ok(strays >= 2, 'some kills left temporary files for fsck to find');
});

test('a blob whose bytes do not match its name: fsck names it, --repair removes it and the tags that need it', async (t) => {
  const why = sharedMissing();
  if (why) return t.skip(why);
  const dir = scratch();
  const store = join(dir, 's');
  await importInto(store, FIXTURE_LAYOUT);
  const tar = join(dir, 'legacy.tar');
  assert.equal((await gadget(['--store', store, 'export', LEGACY, '-o', tar])).code, 0);
  const entries = (JSON.parse(readFileSync(join(store, 'index.json'), 'utf8')) as { manifests: Descriptor[] }).manifests;
  const legacy = entries.find((d) => d.annotations?.[ANN_REF_NAME] === LEGACY)!;
  const legacyIndex = JSON.parse(readFileSync(blobFile(store, legacy.digest), 'utf8')) as { manifests: Descriptor[] };
  const victim = legacyIndex.manifests.find((m) => m.platform?.architecture === 'arm64')!.digest;
  const tagged = entries.filter((d) => d.annotations?.[ANN_REF_NAME]);
  const broken = tagged.filter((d) => reaches(store, d, victim)).map((d) => d.annotations![ANN_REF_NAME]!);
  const intact = tagged.filter((d) => !reaches(store, d, victim)).map((d) => d.annotations![ANN_REF_NAME]!);
  assert.ok(broken.includes(LEGACY) && intact.length > 0);

  const bytes = readFileSync(blobFile(store, victim));
  bytes[bytes.length >> 1] ^= 0x01;
  writeFileSync(blobFile(store, victim), bytes);

  const found = await gadget(['--store', store, 'fsck']);
  assert.equal(found.code, 1, found.stderr);
  assert.match(found.stdout, new RegExp(`corrupt-blob: blob ${victim} is corrupt`));
  for (const ref of broken) assert.ok(found.stdout.includes(ref), `fsck names ${ref}`);
  assert.ok(indexRefs(store).includes(LEGACY), 'fsck without --repair changes nothing');

  const repaired = await gadget(['--store', store, 'fsck', '--repair']);
  assert.equal(repaired.code, 0, repaired.stderr);
  assert.ok(repaired.stdout.includes(`removed corrupt blob ${victim}`), repaired.stdout);
  for (const ref of broken) assert.ok(repaired.stdout.includes(`removed tag ${ref}`), `says it removed ${ref}`);
  assert.ok(!existsSync(blobFile(store, victim)));
  const refs = indexRefs(store);
  for (const ref of broken) assert.ok(!refs.includes(ref), `${ref} is gone`);
  for (const ref of intact) assert.ok(refs.includes(ref), `${ref} stays`);
  assert.deepEqual((await fsck(store)).problems, []);

  // The incomplete manifests above the bad blob went too, so importing the image again restores it whole.
  assert.match(repaired.stdout, /incomplete manifest/);
  await importInto(store, tar);
  assert.ok(indexRefs(store).includes(LEGACY));
  assert.deepEqual((await fsck(store)).problems, [], 'the re-imported image is complete');
});

test('an index.json that is not JSON: every command exits 2 naming it, no stack trace, nothing changed', async (t) => {
  const why = sharedMissing();
  if (why) return t.skip(why);
  const dir = scratch();
  const store = join(dir, 's');
  await importInto(store, FIXTURE_LAYOUT);
  const indexFile = join(store, 'index.json');
  writeFileSync(indexFile, readFileSync(indexFile).subarray(0, 300)); // cut short, as by a crashed writer
  const bytes = readFileSync(indexFile);
  const blobs = readdirSync(join(store, 'blobs', 'sha256')).sort();
  const commands = [
    ['list'], ['inspect', LEGACY], ['tag', LEGACY, 'example.com/x:y'], ['rm', LEGACY], ['gc'],
    ['fsck'], ['fsck', '--repair'], ['fsck', '--reindex'], ['import', FIXTURE_LAYOUT], ['export', LEGACY, '-o', join(dir, 'x.tar')],
  ];
  for (const args of commands) {
    const r = await gadget(['--store', store, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.includes(`${indexFile} is not valid JSON`), `${args.join(' ')}: ${r.stderr}`);
    noStack(r.stderr);
    assert.deepEqual(readFileSync(indexFile), bytes, `${args.join(' ')} leaves index.json as it was`);
  }
  assert.deepEqual(readdirSync(join(store, 'blobs', 'sha256')).sort(), blobs);
  assert.ok(!existsSync(join(dir, 'x.tar')));
});

test('another program changing index.json is noticed, and a deleted index database is rebuilt by fsck --reindex', async (t) => {
  const why = sharedMissing();
  if (why) return t.skip(why);
  const store = join(scratch(), 's');
  await importInto(store, FIXTURE_LAYOUT);
  const indexFile = join(store, 'index.json');
  await list(store); // the SQLite index is up to date with the file now
  const doc = JSON.parse(readFileSync(indexFile, 'utf8')) as { manifests: Descriptor[] };
  const legacy = doc.manifests.find((d) => d.annotations?.[ANN_REF_NAME] === LEGACY)!;
  const added = 'example.com/external/added:v9';
  doc.manifests.push({ ...legacy, annotations: { ...legacy.annotations, [ANN_REF_NAME]: added } });
  writeFileSync(indexFile, JSON.stringify(doc)); // in place, as Go's os.WriteFile (ig, skopeo) does

  const listed = await list(store);
  assert.equal(listed.find((r) => r.ref === added)?.digest, legacy.digest, 'gadget list shows the new tag');
  const inspected = await gadget(['--store', store, '--json', 'inspect', added]);
  assert.equal(inspected.code, 0, inspected.stderr);

  const db = join(store, 'gadget-oci', 'index.sqlite');
  assert.ok(existsSync(db), 'the index database is where the design says');
  for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
  const reindexed = await fsck(store, '--reindex');
  assert.deepEqual(reindexed.problems, []);
  assert.deepEqual(await list(store), listed);

  doc.manifests.pop();
  writeFileSync(indexFile, JSON.stringify(doc));
  assert.ok(!(await list(store)).some((r) => r.ref === added), 'a tag removed by another program disappears');
});

test('skopeo and umoci read a store written by gadget; skopeo writes into it and gadget accepts the result', async (t) => {
  const why = sharedMissing() ?? (['skopeo', 'umoci'].some((c) => !existsSync(`/usr/bin/${c}`)) ? 'skopeo or umoci is not installed' : undefined);
  if (why) return t.skip(why);
  const dir = scratch();
  const store = join(dir, 's');
  await importInto(store, FIXTURE_LAYOUT);
  const images = await list(store);
  for (const image of images) {
    const r = await run('skopeo', ['inspect', '--raw', `oci:${store}:${image.ref}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.raw, readFileSync(blobFile(store, image.digest)), `skopeo reads ${image.ref} byte for byte`);
  }

  const source = join(dir, 'src');
  cpSync(FIXTURE_LAYOUT, source, { recursive: true });
  const ref = 'ttl.sh/signed_with_cosign_oci11:latest';
  const copied = 'example.com/copied/by-skopeo:v2';
  const copy = await run('skopeo', ['copy', '--quiet', '--all', `oci:${source}:${ref}`, `oci:${store}:${copied}`]);
  assert.equal(copy.code, 0, copy.stderr);
  assert.deepEqual((await fsck(store)).problems, [], 'fsck accepts what skopeo wrote');
  const after = await list(store);
  assert.equal(after.find((r) => r.ref === copied)?.digest, images.find((r) => r.ref === ref)!.digest);

  const umoci = await run('umoci', ['ls', '--layout', store]);
  assert.equal(umoci.code, 0, umoci.stderr);
  for (const r of [...images.map((i) => i.ref), copied]) assert.ok(umoci.stdout.split('\n').includes(r), `umoci lists ${r}`);
});
