// gc and fsck: what the tags and signatures reach, and what is damaged.
import { createReadStream, readdirSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { INDEX_TYPES, isManifestType } from '../lib/oci/mediatypes.js';
import type { Descriptor, Index, Manifest } from '../lib/oci/types.js';
import { descriptorOfEntry } from './db.js';
import { parseTempName } from './files.js';
import { OWN_DIR } from './layout.js';
import type { Store } from './store.js';

/** Reads a manifest's children straight from its blob (no trust in the index). */
async function childrenFromBlob(store: Store, d: Descriptor): Promise<Descriptor[] | undefined> {
  if (!isManifestType(d.mediaType) || !store.hasBlob(d.digest)) return undefined;
  try {
    const doc = await store.readJSON<Manifest & Index>(d);
    if (INDEX_TYPES.has(doc.mediaType ?? d.mediaType)) return doc.manifests ?? [];
    return [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])];
  } catch {
    return undefined;
  }
}

/** Every digest reached from the tagged entries and from signatures of what they reach. */
async function reachable(store: Store): Promise<Set<string>> {
  const seen = new Set<string>();
  const visit = async (d: Descriptor): Promise<void> => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    for (const child of (await childrenFromBlob(store, d)) ?? []) await visit(child);
  };
  const entries = store.allEntries();
  for (const row of entries) if (row.ref !== null) await visit(descriptorOfEntry(row));
  // Untagged entries are kept when they refer (through `subject`) to something kept.
  for (let grew = true; grew; ) {
    grew = false;
    for (const row of entries) {
      if (row.ref !== null || seen.has(row.digest)) continue;
      const subject = store.manifestRow(row.digest)?.subject;
      if (subject && seen.has(subject)) {
        await visit(descriptorOfEntry(row));
        grew = true;
      }
    }
  }
  return seen;
}

function blobFiles(store: Store): string[] {
  return readdirSync(join(store.root, 'blobs', 'sha256'));
}

export interface GcResult {
  removedBlobs: string[];
  removedEntries: string[];
  freedBytes: number;
}

/**
 * Removes every blob and untagged index.json entry that no tag and no signature reaches.
 * Blobs younger than `graceSeconds` stay: another process may be about to tag them.
 */
export async function gc(store: Store, opts: { graceSeconds?: number; dryRun?: boolean } = {}): Promise<GcResult> {
  store.refreshIfChanged();
  const keep = await reachable(store);
  const result: GcResult = { removedBlobs: [], removedEntries: [], freedBytes: 0 };
  const dropped = new Set(store.allEntries().filter((e) => e.ref === null && !keep.has(e.digest)).map((e) => e.digest));
  result.removedEntries = [...dropped];
  if (!opts.dryRun && dropped.size) store.removeEntries((e) => e.ref === null && dropped.has(e.descriptor.digest));
  const cutoff = Date.now() - (opts.graceSeconds ?? 0) * 1000;
  for (const file of blobFiles(store)) {
    if (!/^[a-f0-9]{64}$/.test(file) || keep.has(`sha256:${file}`)) continue;
    const path = join(store.root, 'blobs', 'sha256', file);
    const st = statSync(path);
    if (st.mtimeMs > cutoff) continue;
    result.removedBlobs.push(`sha256:${file}`);
    result.freedBytes += st.size;
    if (!opts.dryRun) rmSync(path, { force: true });
  }
  if (!opts.dryRun && result.removedBlobs.length) {
    const del = store.db.transaction((digests: string[]) => {
      for (const d of digests) {
        store.db.prepare('DELETE FROM manifests WHERE digest = ?').run(d);
        store.db.prepare('DELETE FROM children WHERE parent = ?').run(d);
        store.db.prepare('DELETE FROM annotations WHERE digest = ?').run(d);
      }
    });
    del(result.removedBlobs);
  }
  return result;
}

export type ProblemKind = 'corrupt-blob' | 'dangling-tag' | 'missing-entry-blob' | 'missing-child' | 'stray-temp' | 'stray-file';

export interface FsckProblem {
  kind: ProblemKind;
  /** The blob, tag or file the problem is about. */
  subject: string;
  message: string;
  repaired?: string;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return 'sha256:' + hash.digest('hex');
}

/**
 * Re-hashes every blob and checks every entry's graph. With `repair`, removes corrupt blobs,
 * tags and entries whose content is missing, and stray temporary files, saying what it did.
 */
export async function fsck(store: Store, opts: { repair?: boolean; onProgress?: (done: number, total: number) => void } = {}): Promise<FsckProblem[]> {
  store.refreshIfChanged();
  const problems: FsckProblem[] = [];
  const blobDir = join(store.root, 'blobs', 'sha256');
  const files = blobFiles(store);
  const corrupt = new Set<string>();
  let done = 0;
  for (const file of files) {
    const path = join(blobDir, file);
    const temp = parseTempName(file);
    if (temp) {
      if (!processAlive(temp.pid)) problems.push({ kind: 'stray-temp', subject: path, message: `stray temporary file ${path} (left by an interrupted write)` });
    } else if (!/^[a-f0-9]{64}$/.test(file)) {
      problems.push({ kind: 'stray-file', subject: path, message: `${path} is not named after a sha256 digest` });
    } else if ((await hashFile(path)) !== `sha256:${file}`) {
      corrupt.add(`sha256:${file}`);
      problems.push({ kind: 'corrupt-blob', subject: `sha256:${file}`, message: `blob sha256:${file} is corrupt: its content has another digest` });
    }
    opts.onProgress?.(++done, files.length);
  }
  const tmpDir = join(store.root, OWN_DIR, 'tmp');
  for (const file of safeList(tmpDir)) {
    const temp = parseTempName(file);
    if (!temp || !processAlive(temp.pid)) problems.push({ kind: 'stray-temp', subject: join(tmpDir, file), message: `stray temporary file ${join(tmpDir, file)} (left by an interrupted write)` });
  }

  const present = (d: Descriptor): boolean => store.hasBlob(d.digest) && !corrupt.has(d.digest);
  const broken = new Set<number>();
  const checked = new Map<string, string | undefined>(); // digest -> first missing descendant
  const incomplete = new Set<string>(); // present manifests with a missing or corrupt descendant
  const firstMissing = async (d: Descriptor): Promise<string | undefined> => {
    if (checked.has(d.digest)) return checked.get(d.digest);
    checked.set(d.digest, undefined);
    let missing: string | undefined;
    if (!present(d)) missing = d.digest;
    else {
      for (const child of (await childrenFromBlob(store, d)) ?? []) {
        missing = await firstMissing(child);
        if (missing) {
          if (!present(child)) problems.push({ kind: 'missing-child', subject: child.digest, message: `${d.digest} refers to ${child.digest}, which is ${store.hasBlob(child.digest) ? 'corrupt' : 'missing'}` });
          break;
        }
      }
    }
    checked.set(d.digest, missing);
    if (missing && missing !== d.digest) incomplete.add(d.digest);
    return missing;
  };
  const roots = new Map<FsckProblem, Descriptor>(); // dangling tags whose root is incomplete
  for (const row of store.allEntries()) {
    const d = descriptorOfEntry(row);
    if (!present(d)) {
      broken.add(row.seq);
      problems.push(
        row.ref
          ? { kind: 'dangling-tag', subject: row.ref, message: `tag ${row.ref} points at ${d.digest}, which is ${store.hasBlob(d.digest) ? 'corrupt' : 'missing'}` }
          : { kind: 'missing-entry-blob', subject: d.digest, message: `index.json lists ${d.digest}, which is missing` },
      );
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
    for (const digest of incomplete) rmSync(store.blobPath(digest), { force: true });
    for (const p of problems) {
      if (p.kind === 'stray-temp' || p.kind === 'stray-file') {
        rmSync(p.subject, { force: true, recursive: true });
        p.repaired = `removed ${p.subject}`;
      } else if (p.kind === 'corrupt-blob') {
        rmSync(store.blobPath(p.subject), { force: true });
        p.repaired = `removed corrupt blob ${p.subject}`;
      }
    }
    const brokenRows = store.allEntries().filter((r) => broken.has(r.seq));
    const brokenDigests = new Set(brokenRows.map((r) => `${r.ref}\0${r.digest}`));
    store.removeEntries((e) => brokenDigests.has(`${e.ref}\0${e.descriptor.digest}`));
    for (const p of problems) {
      if (p.kind === 'dangling-tag') p.repaired = `removed tag ${p.subject}`;
      const n = under.get(p);
      if (n) p.repaired += ` and the ${n} incomplete manifest${n > 1 ? 's' : ''} of its image (import or pull it again to restore it)`;
      if (p.kind === 'missing-entry-blob') p.repaired = `removed index.json entry ${p.subject}`;
    }
    store.reindex();
  }
  return problems;
}

/** The incomplete manifests in the graph under `d` (read before any of them is removed). */
async function incompleteUnder(store: Store, d: Descriptor, incomplete: Set<string>, out = new Set<string>()): Promise<Set<string>> {
  if (!incomplete.has(d.digest) || out.has(d.digest)) return out;
  out.add(d.digest);
  for (const child of (await childrenFromBlob(store, d)) ?? []) await incompleteUnder(store, child, incomplete, out);
  return out;
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
