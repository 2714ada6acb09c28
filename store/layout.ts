// The OCI image layout on disk: oci-layout, index.json and blobs/sha256/<hex>.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GadgetError } from '../lib/errors.js';
import { isDigest } from '../lib/oci/digest.js';
import { encodeJSON } from '../lib/oci/json.js';
import { MT_INDEX } from '../lib/oci/mediatypes.js';
import type { Descriptor } from '../lib/oci/types.js';
import { makeFolders } from '../lib/folders.js';
import { writeFileAtomicSync } from './files.js';
import { readRegular } from './regular-files.js';

export const LAYOUT_FILE = 'oci-layout';
export const INDEX_FILE = 'index.json';
export const OWN_DIR = 'gadget-oci';

export function blobPath(root: string, digest: string): string {
  if (!isDigest(digest)) throw new GadgetError(`"${digest}" is not a sha256 digest`);
  return join(root, 'blobs', 'sha256', digest.slice(7));
}

/** What to do about a store folder that cannot be made (see makeFolders). */
export const STORE_FOLDER_HINT = 'point --store (or $GADGET_STORE) at an OCI layout folder, or at a new folder on a writable file system to create one';

/**
 * Creates the layout's skeleton where it is missing; leaves an existing layout alone. A folder
 * that cannot be made (a read-only file system, /proc) is one sentence naming it, exit 2.
 */
export function initLayout(root: string): void {
  makeFolders(join(root, 'blobs', 'sha256'), STORE_FOLDER_HINT);
  makeFolders(join(root, OWN_DIR, 'tmp'), STORE_FOLDER_HINT);
  const layoutFile = join(root, LAYOUT_FILE);
  if (!existsSync(layoutFile)) writeFileAtomicSync(layoutFile, '{"imageLayoutVersion":"1.0.0"}', join(root, OWN_DIR, 'tmp'));
  const indexFile = join(root, INDEX_FILE);
  if (!existsSync(indexFile)) writeIndexFile(root, []);
}

/** Checks oci-layout. `label` names the layout in messages (a tar's name for an extracted tar). */
export function checkLayoutFile(root: string, label = root): void {
  const file = join(root, LAYOUT_FILE);
  let bytes: Buffer | undefined;
  try {
    bytes = readRegular(file);
  } catch {
    bytes = undefined;
  }
  checkLayoutBytes(bytes, label === root ? file : `${label}: ${LAYOUT_FILE}`, label);
}

/** Checks the bytes of an oci-layout file (undefined: missing) of the layout `where`. */
export function checkLayoutBytes(bytes: Buffer | undefined, file: string, where: string): void {
  let version: unknown;
  try {
    version = (JSON.parse(bytes!.toString('utf8')) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  } catch {
    throw new GadgetError(`${file} is missing or not JSON, so ${where} is not an OCI image layout`, {
      exitCode: 2,
      hint: 'point --store at an OCI layout folder, or at an empty folder to create one',
    });
  }
  if (typeof version !== 'string' || !version.startsWith('1.')) {
    throw new GadgetError(`${file}: unsupported imageLayoutVersion ${JSON.stringify(version)}`, { exitCode: 2 });
  }
}

/**
 * Reads and checks index.json (see parseIndexBytes). `label` names the layout in messages (a
 * tar's name for an extracted tar).
 */
export function readIndexFile(root: string, label = root): { entries: Descriptor[]; bytes: Buffer } {
  const file = label === root ? join(root, INDEX_FILE) : `${label}: ${INDEX_FILE}`;
  let bytes: Buffer;
  try {
    bytes = readRegular(join(root, INDEX_FILE));
  } catch {
    throw new GadgetError(`${file} is missing`, { exitCode: 2, hint: 'restore index.json from a backup (its blobs are still in blobs/sha256), or point --store at an OCI layout' });
  }
  return { entries: parseIndexBytes(bytes, file), bytes };
}

/**
 * The entries of an index.json's bytes (`file` names it in errors): a JSON object with a
 * "manifests" list whose every entry is a descriptor with a sha256 digest.
 */
export function parseIndexBytes(bytes: Buffer, file: string): Descriptor[] {
  let doc: unknown;
  try {
    // V8's JSON.parse is not recursive: deeply nested input parses (and is refused below).
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new GadgetError(`${file} is not valid JSON (${(err as Error).message})`, {
      exitCode: 2,
      hint: 'restore it from a backup; the blobs are untouched, and `gadget import` of an exported tar restores tags too',
    });
  }
  const manifests = (doc as { manifests?: unknown } | null)?.manifests;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || !Array.isArray(manifests)) {
    const what = Array.isArray(doc) ? 'a JSON array' : typeof doc !== 'object' || doc === null ? `a JSON ${doc === null ? 'null' : typeof doc}` : 'an object without a "manifests" list';
    throw new GadgetError(`${file} is not an OCI index: it is ${what}`, { exitCode: 2, hint: 'an OCI index is {"schemaVersion": 2, "manifests": [...]}' });
  }
  const schemaVersion = (doc as { schemaVersion?: unknown }).schemaVersion;
  if (schemaVersion !== undefined && schemaVersion !== 2) {
    throw new GadgetError(`${file} is not an OCI index: schemaVersion is ${JSON.stringify(schemaVersion)}, not 2`, { exitCode: 2 });
  }
  const entries = manifests as Descriptor[];
  entries.forEach((d, i) => {
    if (typeof d !== 'object' || d === null || !isDigest(String(d.digest)) || typeof d.mediaType !== 'string' || !Number.isSafeInteger(d.size) || d.size < 0) {
      throw new GadgetError(`${file}: entry ${i} is not a valid descriptor (mediaType, sha256 digest and size are required)`, { exitCode: 2 });
    }
    if (d.annotations !== undefined && (typeof d.annotations !== 'object' || d.annotations === null || Array.isArray(d.annotations))) {
      throw new GadgetError(`${file}: entry ${i} has annotations that are not an object of strings`, { exitCode: 2 });
    }
  });
  return entries;
}

export function writeIndexFile(root: string, entries: Descriptor[]): void {
  const doc = { schemaVersion: 2, mediaType: MT_INDEX, manifests: entries };
  writeFileAtomicSync(join(root, INDEX_FILE), encodeJSON(doc), join(root, OWN_DIR, 'tmp'));
}

/**
 * A cheap fingerprint of index.json that changes whenever any program replaces or edits the
 * file: its change time is in it, which no program can set back (an editor can keep the size
 * and restore the modification time, as `touch -r` does).
 */
export function indexFingerprint(root: string): string {
  try {
    const st = statSync(join(root, INDEX_FILE), { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    return 'missing';
  }
}
