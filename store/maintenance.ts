// gc and fsck: what the tags and signatures reach, and what is damaged.
import { closeSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ANN_REF_NAME, isManifestType, MT_ARTIFACT_MANIFEST } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';
import { descriptorOfEntry, getMeta, statement, type EntryRow } from './db.js';
import { parseTempName } from './files.js';
import { indexFingerprint, readIndexFile } from './layout.js';
import { namedChildrenSync, readChildrenSync } from './graph.js';
import type { Store } from './store.js';
import { removeStaleTemps, staleTemps } from './temps.js';
import { fileKind, openRegular, regularFile, streamRegular } from './regular-files.js';

/** Reads a manifest's children straight from its blob (no trust in the index). */
async function childrenFromBlob(store: Store, d: Descriptor): Promise<Descriptor[] | undefined> {
  if (!isManifestType(d.mediaType)) return undefined;
  return readChildrenSync(store.root, d);
}

/**
 * Adds to `keep` every digest reached from the tagged entries and from the untagged entries
 * (signatures) whose subject is kept. Digests already in `keep` are not walked again, so a
 * second call under the lock costs only what was tagged since the first.
 */
function markReachable(store: Store, keep: Set<string>): void {
  const entries = store.allEntries();
  for (const row of entries) if (row.ref !== null) keepWithChildren(store, keep, descriptorOfEntry(row));
  // Untagged entries are kept when they refer (through `subject`) to something kept.
  for (let grew = true; grew; ) {
    grew = false;
    for (const row of entries) {
      if (row.ref !== null || keep.has(row.digest)) continue;
      const subject = store.manifestRow(row.digest)?.subject;
      if (subject && keep.has(subject)) {
        keepWithChildren(store, keep, descriptorOfEntry(row));
        grew = true;
      }
    }
  }
}

/**
 * Adds `d` and everything it names to `keep`, walking every document that may name more: a
 * manifest or index, an artifact manifest, and a child whose descriptor lacks its media type
 * (a badly formed manifest written by another program still keeps all it names).
 */
function keepWithChildren(store: Store, keep: Set<string>, d: { digest: string; mediaType?: string }): void {
  if (keep.has(d.digest)) return;
  keep.add(d.digest);
  if (d.mediaType !== undefined && !isManifestType(d.mediaType) && d.mediaType !== MT_ARTIFACT_MANIFEST) return;
  for (const child of namedChildrenSync(store.root, d.digest)) keepWithChildren(store, keep, child);
}

function blobFiles(store: Store): string[] {
  return readdirSync(join(store.root, 'blobs', 'sha256'));
}

export interface GcResult {
  removedBlobs: string[];
  removedEntries: string[];
  /** Temporary files of dead writers. */
  removedTemps: string[];
  freedBytes: number;
}

/**
 * Removes every blob and untagged index.json entry that no tag and no signature reaches.
 *
 * Safe against concurrent writers (which copy without the lock and tag under it): the mark
 * runs once without the lock, then again under the store's write lock from the tags as they
 * are then, and the sweep happens under that same lock. A tag written before gc takes the
 * lock is seen and its graph kept; one written after finds its content gone and is refused
 * (Store.tagMany checks the whole graph under the lock). Blobs younger than `graceSeconds`
 * stay, and so does everything a young manifest refers to: a writer that reuses old blobs
 * under a new manifest then finds them still there.
 */
export async function gc(store: Store, opts: { graceSeconds?: number; dryRun?: boolean } = {}): Promise<GcResult> {
  const removedTemps = opts.dryRun ? [] : removeStaleTemps(store.root);
  store.refreshIfChanged();
  const keep = new Set<string>();
  markReachable(store, keep);
  const cutoff = Date.now() - (opts.graceSeconds ?? 0) * 1000;
  return store.withWriteLock(() => {
    markReachable(store, keep);
    const result: GcResult = { removedBlobs: [], removedEntries: [], removedTemps, freedBytes: 0 };
    const candidates: Array<{ digest: string; path: string; size: number }> = [];
    const young: string[] = [];
    for (const file of blobFiles(store)) {
      if (!/^[a-f0-9]{64}$/.test(file) || keep.has(`sha256:${file}`)) continue;
      const path = join(store.root, 'blobs', 'sha256', file);
      const st = statSync(path, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.mtimeMs > cutoff) young.push(`sha256:${file}`);
      else candidates.push({ digest: `sha256:${file}`, path, size: st.size });
    }
    for (const digest of young) {
      const row = store.manifestRow(digest);
      if (!row) continue;
      keepWithChildren(store, keep, { mediaType: row.media_type, digest });
    }
    // Untagged entries go only once their manifest is past the grace too: a writer adds a
    // referrer's entry when it copies it and tags its subject later (an import tags at the end,
    // a registry client pushes the tag last), so an entry whose subject is not tagged yet may be
    // a signature on its way in.
    const dropped = new Set(store.allEntries().filter((e) => e.ref === null && !keep.has(e.digest)).map((e) => e.digest));
    result.removedEntries = [...dropped];
    if (!opts.dryRun && dropped.size) store.removeEntries((e) => e.ref === null && dropped.has(e.descriptor.digest));
    for (const c of candidates) {
      if (keep.has(c.digest)) continue;
      result.removedBlobs.push(c.digest);
      result.freedBytes += c.size;
    }
    if (!opts.dryRun && result.removedBlobs.length) {
      // The rows go in the same transaction; a kill in the middle of the unlinks leaves rows of
      // removed blobs, which only describe content (Store.exists and tags check the files).
      for (const d of result.removedBlobs) dropManifestRows(store, d);
      for (const d of result.removedBlobs) rmSync(store.blobPath(d), { force: true });
    }
    return result;
  });
}

/**
 * Removes one manifest at once when nothing of the store reaches it any more (no entry of
 * index.json, no manifest of the store that lists it, even one pushed by digest alone): a
 * registry's DELETE by digest (`gadget serve`), after which the manifest is gone for readers and
 * the referrers API. Its blobs stay until gc. False when something still reaches it (it stays)
 * or it is not a manifest of the store.
 */
export function removeUnreachableManifest(store: Store, digest: string): boolean {
  store.refreshIfChanged();
  return store.withWriteLock(() => {
    if (!store.manifestRow(digest)) return false;
    // index.json names it (an entry, even one whose subject is gone), or an image lists it (an
    // index pushed by digest, waiting for its tag). An index of referrers only (a fallback index
    // that lost its tag, or lost a race for it) keeps nothing: it is on its way out itself.
    if (store.entriesOf(digest).length > 0) return false;
    if (store.parentsOf(digest).some((p) => store.hasBlob(p) && !listsReferrersOnly(store, p))) return false;
    const keep = new Set<string>();
    markReachable(store, keep);
    if (keep.has(digest)) return false;
    dropManifestRows(store, digest);
    rmSync(store.blobPath(digest), { force: true });
    return true;
  });
}

/** Whether `digest` is an index whose every entry names an artifact type (what a fallback tag index lists). */
function listsReferrersOnly(store: Store, digest: string): boolean {
  const row = store.manifestRow(digest);
  const children = row ? readChildrenSync(store.root, { mediaType: row.media_type, digest, size: row.size }) : undefined;
  return children !== undefined && children.length > 0 && children.every((c) => typeof c.artifactType === 'string');
}

/** The index's rows of a manifest whose blob is being removed. */
function dropManifestRows(store: Store, digest: string): void {
  statement(store.db, 'DELETE FROM manifests WHERE digest = ?').run(digest);
  statement(store.db, 'DELETE FROM children WHERE parent = ?').run(digest);
  statement(store.db, 'DELETE FROM annotations WHERE digest = ?').run(digest);
}

export type ProblemKind = 'corrupt-blob' | 'dangling-tag' | 'missing-entry-blob' | 'missing-child' | 'stray-file' | 'stale-index' | 'unreadable-manifest';

/**
 * Not damage: what a killed writer left (removed by the next writer, gc or `fsck --repair`),
 * and a tag index.json names twice (the later wins, as the store reads it).
 */
export interface FsckNotice {
  kind: 'stale-temp' | 'duplicate-tag';
  subject: string;
  message: string;
  repaired?: string;
}

export interface FsckReport {
  problems: FsckProblem[];
  notices: FsckNotice[];
}

export interface FsckProblem {
  kind: ProblemKind;
  /** The blob, tag or file the problem is about. */
  subject: string;
  message: string;
  repaired?: string;
  /** What --repair cannot settle (a manifest it cannot judge): the command still fails. */
  lasting?: true;
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of streamRegular(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return 'sha256:' + hash.digest('hex');
}

/** hashFile for use under the store's lock (an SQLite transaction: no awaiting); undefined when absent. */
function hashFileSync(path: string): string | undefined {
  let fd: number;
  try {
    fd = openRegular(path).fd;
  } catch {
    return undefined;
  }
  try {
    const hash = createHash('sha256');
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (let n: number; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) hash.update(buffer.subarray(0, n));
    return 'sha256:' + hash.digest('hex');
  } finally {
    closeSync(fd);
  }
}

/**
 * Re-hashes every blob and checks every entry's graph. With `repair`, removes corrupt blobs,
 * tags and entries whose content is missing, and stray temporary files, saying what it did.
 */
export async function fsck(store: Store, opts: { repair?: boolean; onProgress?: (done: number, total: number) => void } = {}): Promise<FsckProblem[]> {
  return (await fsckReport(store, opts)).problems;
}

/** fsck with its notices: temporary files of dead writers (not damage; see temps.ts). */
export async function fsckReport(store: Store, opts: { repair?: boolean; onProgress?: (done: number, total: number) => void } = {}): Promise<FsckReport> {
  store.refreshIfChanged();
  const problems: FsckProblem[] = [];
  // The index is a copy of index.json, trusted by list and verify: one that lost rows would
  // hide images from both. With --repair it is made again first, so what follows checks all.
  const { listed, drift } = await checkIndex(store);
  if (drift) {
    const problem: FsckProblem = { kind: 'stale-index', subject: 'index.sqlite', message: `${drift} (\`gadget fsck --reindex\` makes it again)` };
    if (opts.repair) {
      store.reindex();
      problem.repaired = 'made the index again from index.json';
    }
    problems.push(problem);
  }
  const notices: FsckNotice[] = [
    ...staleTemps(store.root).map((path): FsckNotice => ({ kind: 'stale-temp', subject: path, message: `stale temporary file ${path} (its writer is gone; the next write or gc removes it)` })),
    ...duplicateTags(listed),
  ];
  const blobDir = join(store.root, 'blobs', 'sha256');
  const files = blobFiles(store);
  const corrupt = new Set<string>();
  let done = 0;
  for (const file of files) {
    const path = join(blobDir, file);
    if (parseTempName(file)) {
      // a writer's temporary file (old versions wrote them here): a notice above, or live
    } else if (!/^[a-f0-9]{64}$/.test(file)) {
      problems.push({ kind: 'stray-file', subject: path, message: `${path} is not named after a sha256 digest` });
    } else if (!regularFile(path)) {
      // A folder or a FIFO under a blob's name: never opened (a FIFO would wait for ever).
      const st = statSync(path, { throwIfNoEntry: false });
      if (st) problems.push({ kind: 'stray-file', subject: path, message: `${path} is ${fileKind(st)}, not a blob file` });
    } else if ((await hashFile(path)) !== `sha256:${file}`) {
      corrupt.add(`sha256:${file}`);
      problems.push({ kind: 'corrupt-blob', subject: `sha256:${file}`, message: `blob sha256:${file} is corrupt: its content has another digest` });
    }
    opts.onProgress?.(++done, files.length);
  }

  // Asked once per digest: 100 000 tags of a few images are a few file checks, not 100 000.
  const presence = new Map<string, boolean>();
  const present = (d: Descriptor): boolean => {
    let known = presence.get(d.digest);
    if (known === undefined) presence.set(d.digest, (known = store.hasBlob(d.digest) && !corrupt.has(d.digest)));
    return known;
  };
  const broken = new Set<number>();
  const checked = new Map<string, string | undefined>(); // digest -> first missing descendant
  const incomplete = new Map<string, Descriptor>(); // present manifests with a missing or corrupt descendant
  const firstMissing = async (d: Descriptor): Promise<string | undefined> => {
    if (checked.has(d.digest)) return checked.get(d.digest);
    checked.set(d.digest, undefined);
    let missing: string | undefined;
    if (!present(d)) missing = d.digest;
    else {
      const children = await childrenFromBlob(store, d);
      if (children === undefined && isManifestType(d.mediaType)) {
        // Written by another program: verify names what is wrong; gc keeps all it names.
        problems.push({ kind: 'unreadable-manifest', lasting: true, subject: d.digest, message: `${d.digest} (${d.mediaType}) cannot be followed: it is not JSON with valid child descriptors (media type, sha256 digest, size); \`gadget verify\` says what is wrong, and --repair leaves it (remove its tag with \`gadget rm\`)` });
      }
      for (const child of children ?? []) {
        missing = await firstMissing(child);
        if (missing) {
          if (!present(child)) problems.push({ kind: 'missing-child', subject: child.digest, message: `${d.digest} refers to ${child.digest}, which is ${store.hasBlob(child.digest) ? 'corrupt' : 'missing'}` });
          break;
        }
      }
    }
    checked.set(d.digest, missing);
    if (missing && missing !== d.digest) incomplete.set(d.digest, d);
    return missing;
  };
  const roots = new Map<FsckProblem, Descriptor>(); // dangling tags whose root is incomplete
  for (const row of store.entrySummaries()) {
    const d: Descriptor = { mediaType: row.media_type, digest: row.digest, size: row.size }; // no JSON to parse per tag
    if (!present(d)) {
      broken.add(row.seq);
      problems.push(
        row.ref
          ? { kind: 'dangling-tag', subject: row.ref, message: `tag ${row.ref} points at ${d.digest}, which is ${store.hasBlob(d.digest) ? 'corrupt' : 'missing'}` }
          : { kind: 'missing-entry-blob', subject: d.digest, message: `index.json lists ${d.digest}, which is missing` },
      );
    } else if (regularFile(store.blobPath(d.digest))?.size !== d.size) {
      // index.json's descriptor disagrees with the blob: readers that trust it (export, a push) fail.
      broken.add(row.seq);
      const actual = regularFile(store.blobPath(d.digest))?.size;
      problems.push({ kind: 'dangling-tag', subject: row.ref ?? d.digest, message: `${row.ref ? `tag ${row.ref}` : 'an untagged entry of index.json'} says ${d.digest} has ${d.size} bytes, but the blob has ${actual}` });
    } else if (await firstMissing(d)) {
      broken.add(row.seq);
      const missing = (await firstMissing(d))!;
      if (row.ref) {
        const problem: FsckProblem = { kind: 'dangling-tag', subject: row.ref, message: `tag ${row.ref} points at an incomplete image (${missing} is ${corrupt.has(missing) ? 'corrupt' : 'missing'})` };
        problems.push(problem);
        roots.set(problem, d);
      }
    }
  }

  if (opts.repair) {
    // The graph copy skips the children of a manifest it finds present, so an incomplete one
    // left behind would make the next import or pull of the image "succeed" without the
    // missing blob: those manifests go too (counted before anything is removed).
    const under = new Map<FsckProblem, number>();
    for (const [p, root] of roots) under.set(p, (await incompleteUnder(store, root, incomplete)).size);
    for (const n of notices) {
      if (n.kind !== 'stale-temp') continue; // a duplicate tag is settled by the next write
      rmSync(n.subject, { force: true, recursive: true });
      n.repaired = `removed ${n.subject}`;
    }
    // Removals happen under the store's write lock, each checked again there: a writer working
    // meanwhile may have replaced a corrupt blob or completed an image (writers copy without
    // the lock and tag under it, so what is removed here no later tag can rely on unseen).
    store.withWriteLock(() => {
      for (const p of problems) {
        if (p.kind === 'stray-file') {
          rmSync(p.subject, { force: true, recursive: true });
          p.repaired = `removed ${p.subject}`;
        } else if (p.kind === 'corrupt-blob') {
          if (hashFileSync(store.blobPath(p.subject)) === p.subject) {
            p.repaired = `kept ${p.subject}: a writer stored it again meanwhile, intact`;
            continue;
          }
          rmSync(store.blobPath(p.subject), { force: true });
          p.repaired = `removed corrupt blob ${p.subject}`;
        }
      }
      for (const d of incomplete.values()) if (store.missingFrom(d).length) rmSync(store.blobPath(d.digest), { force: true });
      const brokenRows = store.allEntries().filter((r) => broken.has(r.seq));
      const brokenKeys = new Set(brokenRows.map((r) => `${r.ref}\0${r.digest}`));
      const healed = new Set<string>();
      store.removeEntries((e) => {
        if (!brokenKeys.has(`${e.ref}\0${e.descriptor.digest}`)) return false;
        if (store.missingFrom(e.descriptor).length) return true;
        healed.add(e.ref ?? e.descriptor.digest);
        return false;
      });
      for (const p of problems) {
        const entry = p.kind === 'dangling-tag' || p.kind === 'missing-entry-blob';
        if (entry && healed.has(p.subject)) p.repaired = `kept ${p.subject}: a writer completed its image meanwhile`;
        else if (p.kind === 'dangling-tag') p.repaired = `removed tag ${p.subject}`;
        else if (p.kind === 'missing-entry-blob') p.repaired = `removed index.json entry ${p.subject}`;
        const n = under.get(p);
        if (n && !healed.has(p.subject)) p.repaired += ` and the ${n} incomplete manifest${n > 1 ? 's' : ''} of its image (import or pull it again to restore it)`;
      }
    });
    store.reindex();
  }
  return { problems, notices };
}

/** The incomplete manifests in the graph under `d` (read before any of them is removed). */
async function incompleteUnder(store: Store, d: Descriptor, incomplete: Map<string, Descriptor>, out = new Set<string>()): Promise<Set<string>> {
  if (!incomplete.has(d.digest) || out.has(d.digest)) return out;
  out.add(d.digest);
  for (const child of (await childrenFromBlob(store, d)) ?? []) await incompleteUnder(store, child, incomplete, out);
  return out;
}

/** Each tag of index.json and its digest, the later of duplicates winning (as the store reads it). */
function tagsOf(listed: Descriptor[]): Map<string, string> {
  const tagged = new Map<string, string>();
  for (const d of listed) {
    const ref = d.annotations?.[ANN_REF_NAME];
    if (typeof ref === 'string') tagged.set(ref, d.digest);
  }
  return tagged;
}

/**
 * index.json's entries, and how the index's differ from them. A difference seen while a writer
 * is at work (the file changed during the check, or the rows of its last write are not
 * committed yet: the index's recorded fingerprint is not the file's) is looked at again.
 */
async function checkIndex(store: Store): Promise<{ listed: Descriptor[]; drift?: string }> {
  for (let attempt = 1; ; attempt++) {
    const before = indexFingerprint(store.root);
    const listed = readIndexFile(store.root).entries;
    const { rows, recorded } = store.db.transaction(() => ({ rows: store.allEntries(), recorded: getMeta(store.db, 'index_fingerprint') }))();
    const drift = indexDrift(rows, listed);
    if (!drift || (indexFingerprint(store.root) === before && recorded === before) || attempt === 20) return { listed, drift };
    await sleep(50);
  }
}

/** How the index's entries differ from index.json's, or undefined when they are the same. */
function indexDrift(rows: EntryRow[], listed: Descriptor[]): string | undefined {
  const digests = (all: string[]): string => all.sort().join();
  const pairs = (all: Iterable<[string, string]>): string => [...all].map(([ref, digest]) => `${ref}\0${digest}`).sort().join('\n');
  const rowTags = rows.filter((r) => r.ref !== null).map((r): [string, string] => [r.ref!, r.digest]);
  if (listed.length !== rows.length) return `the store's index holds ${rows.length} entries where index.json has ${listed.length}`;
  if (digests(listed.map((d) => d.digest)) !== digests(rows.map((r) => r.digest))) return "the store's index names other images than index.json";
  if (pairs(tagsOf(listed)) !== pairs(rowTags)) return "the store's index pairs tags with other digests than index.json";
  return undefined;
}

/** Tags index.json names more than once with different digests (the later wins; the next write drops the earlier). */
function duplicateTags(listed: Descriptor[]): FsckNotice[] {
  const seen = new Map<string, string[]>();
  for (const d of listed) {
    const ref = d.annotations?.[ANN_REF_NAME];
    if (typeof ref === 'string') seen.set(ref, [...(seen.get(ref) ?? []), d.digest]);
  }
  return [...seen]
    .filter(([, digests]) => new Set(digests).size > 1)
    .map(([ref, digests]) => ({ kind: 'duplicate-tag', subject: ref, message: `index.json names ${ref} ${digests.length} times (${digests.join(', ')}): the last is the tag, the next write leaves the others untagged (and gc then removes them unless tagged again)` }));
}
