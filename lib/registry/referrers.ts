// Referrers of a manifest (signatures, attestations, SBOMs): the OCI 1.1 referrers API
// `/v2/<name>/referrers/<digest>`, else the fallback tag `sha256-<hex>` holding an OCI index
// of them, plus cosign's legacy `sha256-<hex>.sig` / `.att` tags. A registry without the API
// (Debian's distribution 2.8 answers a plain-text 404) needs the client to keep the fallback
// index up to date when it pushes a manifest with a `subject`.
import { GadgetError } from '../errors.js';
import { ODD_ANSWER_HINT } from './errors.js';
import { isDigest, sha256 } from '../oci/digest.js';
import { encodeJSONBytes } from '../oci/json.js';
import { INDEX_TYPES, MT_INDEX } from '../oci/mediatypes.js';
import type { Referrer } from '../oci/target.js';
import type { Descriptor, Index } from '../oci/types.js';
import { nextLink } from './http.js';
import type { RepositoryPlumbing } from './plumbing.js';

const MAX_REFERRER_PAGES = 100;

/** `sha256:<hex>` -> `sha256-<hex>`, the referrers fallback tag of a subject. */
export function fallbackTag(digest: string): string {
  return digest.replace(':', '-');
}

/** The subject digest a fallback tag stands for (`sha256-<hex>` only, not `.sig`/`.att`). */
export function fallbackTagSubject(tag: string): string | undefined {
  return /^sha256-[a-f0-9]{64}$/.test(tag) ? `sha256:${tag.slice('sha256-'.length)}` : undefined;
}

/**
 * The index entry for a referrer: its descriptor with the manifest's `artifactType` (else its
 * config's media type) and `annotations`, unless the given descriptor already carries them.
 */
export function referrerEntry(desc: Descriptor, manifestBytes: Buffer): Descriptor {
  let doc: { artifactType?: unknown; config?: { mediaType?: unknown }; annotations?: unknown } = {};
  try {
    doc = JSON.parse(manifestBytes.toString('utf8')) as typeof doc;
  } catch {
    // not JSON: the registry would have refused it; keep the plain descriptor
  }
  const artifactType = desc.artifactType
    ?? (typeof doc.artifactType === 'string' ? doc.artifactType : typeof doc.config?.mediaType === 'string' ? doc.config.mediaType : undefined);
  const annotations = desc.annotations
    ?? (doc.annotations && typeof doc.annotations === 'object' ? (doc.annotations as Record<string, string>) : undefined);
  // Go's field order of an OCI descriptor.
  return { mediaType: desc.mediaType, digest: desc.digest, size: desc.size, annotations, artifactType };
}

function checkEntries(value: unknown, where: string): Descriptor[] {
  if (!Array.isArray(value)) throw new GadgetError(`${where}: "manifests" is not a list`, { hint: ODD_ANSWER_HINT });
  for (const d of value as Partial<Descriptor>[]) {
    if (typeof d !== 'object' || d === null || typeof d.mediaType !== 'string' || typeof d.digest !== 'string' || !isDigest(d.digest)
      || typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
      throw new GadgetError(`${where}: an entry is not a valid descriptor`, { hint: 'the referrers index is corrupt; re-push the signatures' });
    }
  }
  return value as Descriptor[];
}

/** The referrers API's answer, or undefined when the registry does not have the API. */
async function fromApi(repo: RepositoryPlumbing, digest: string, signal?: AbortSignal): Promise<Descriptor[] | undefined> {
  const out: Descriptor[] = [];
  let url: URL | undefined = repo.url(`referrers/${digest}`);
  for (let page = 0; url && page < MAX_REFERRER_PAGES; page++) {
    const what = `the referrers of ${repo.name}@${digest}`;
    const pageUrl: URL = url;
    // A page damaged on the way (cut short, not JSON although it says it is) is asked for again.
    const answer = await repo.retrying(async () => {
      const { res, authSent } = await repo.send({ method: 'GET', url: pageUrl, headers: { accept: MT_INDEX }, signal });
      if ([400, 404, 405, 406, 501].includes(res.status)) {
        res.discard();
        return undefined;
      }
      if (res.status !== 200) await repo.raise(res, authSent, what);
      const contentType = (res.header('content-type') ?? '').split(';')[0]!.trim();
      const body = await res.read(4 * 1024 * 1024, what);
      const saysJSON = contentType === MT_INDEX || contentType === 'application/json';
      try {
        return { res, contentType, doc: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)) as { manifests?: unknown; mediaType?: unknown } };
      } catch {
        if (saysJSON) throw new GadgetError(`${what}: a page of the answer is not JSON`, { transient: true, hint: ODD_ANSWER_HINT });
        return { res, contentType, doc: undefined };
      }
    }, signal);
    if (!answer) {
      if (page === 0) return undefined;
      break;
    }
    const { res, contentType, doc } = answer;
    if (!doc) {
      if (page === 0) return undefined; // not an index: no API (some proxies answer HTML)
      throw new GadgetError(`${what}: a page of the answer is not JSON`, { hint: ODD_ANSWER_HINT });
    }
    if (contentType !== MT_INDEX && doc.mediaType !== MT_INDEX) {
      if (page === 0) return undefined;
      throw new GadgetError(`${what}: a page of the answer is not an OCI index`, { hint: ODD_ANSWER_HINT });
    }
    out.push(...checkEntries(doc.manifests ?? [], what));
    const next = nextLink(res.header('link'), url);
    url = next && next.origin === repo.origin ? next : undefined;
  }
  return out;
}

/**
 * The referrers of `desc`: those of the referrers API (untagged), the fallback tag's index
 * itself (tagged `sha256-<hex>`: copying it copies the referrer manifests, its children),
 * and cosign's `.sig` / `.att` manifests (tagged). A tag is given only when it points at the
 * returned descriptor, so a copy can re-create it as it is.
 */
export async function listReferrers(repo: RepositoryPlumbing, desc: Descriptor, signal?: AbortSignal): Promise<Referrer[]> {
  const found = new Map<string, Referrer>();
  const add = (r: Referrer): void => {
    if (!found.has(r.descriptor.digest)) found.set(r.descriptor.digest, r);
  };
  // The first lookup on a registry finds out whether it has the API; the others wait for it.
  const facts = repo.facts;
  while (facts.referrersApi === undefined && facts.referrersProbe) await facts.referrersProbe;
  if (facts.referrersApi !== false) {
    const lookup = fromApi(repo, desc.digest, signal);
    if (facts.referrersApi === undefined) {
      const probe = lookup.then(() => undefined, () => undefined);
      facts.referrersProbe = probe;
      void probe.then(() => {
        if (facts.referrersProbe === probe) facts.referrersProbe = undefined;
      });
    }
    const api = await lookup;
    facts.referrersApi = api !== undefined;
    for (const d of api ?? []) add({ descriptor: d });
  }
  const base = fallbackTag(desc.digest);
  const tags = (repo.referrersApi ? [`${base}.sig`, `${base}.att`] : [base, `${base}.sig`, `${base}.att`])
    .filter((t) => !repo.tagSnapshot || repo.tagSnapshot.has(t));
  const manifests = await Promise.all(tags.map((t) => repo.getManifest(t, signal)));
  tags.forEach((tag, i) => {
    const m = manifests[i];
    if (!m) return;
    if (tag === base) {
      if (!INDEX_TYPES.has(m.mediaType)) return; // not a referrers index; nothing to list
      // Checked here so that a corrupt index fails the listing, not a later copy.
      checkEntries(parseIndex(m.bytes, `${repo.name}:${tag}`).manifests ?? [], `${repo.name}:${tag}`);
    }
    add({ descriptor: { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length }, tag });
  });
  return [...found.values()];
}

function parseIndex(bytes: Buffer, where: string): Index {
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as Index;
    if (typeof doc !== 'object' || doc === null) throw new Error('not an object');
    return doc;
  } catch {
    throw new GadgetError(`${where}: the referrers index is not valid JSON`, { hint: 'the referrers index is corrupt; re-push the signatures' });
  }
}

/** Runs `work` after the earlier updates of `subject`'s fallback index in this process. */
async function serialised(repo: RepositoryPlumbing, subject: string, work: () => Promise<void>): Promise<void> {
  const previous = repo.fallbackLocks.get(subject) ?? Promise.resolve();
  const run = previous.then(work);
  const settled = run.then(() => {}, () => {});
  repo.fallbackLocks.set(subject, settled);
  try {
    await run;
  } finally {
    if (repo.fallbackLocks.get(subject) === settled) repo.fallbackLocks.delete(subject);
  }
}

/**
 * Points the fallback tag of `subject` at `incoming` (an index of referrers, e.g. the source's
 * fallback index during a copy) without losing the referrers the repository already lists:
 * when the current index lists nothing that `incoming` lacks, `incoming` is put as it is (so a
 * copy stays byte-identical); otherwise the missing entries are appended to it.
 */
export async function mergeFallbackIndex(repo: RepositoryPlumbing, subject: string, incoming: Buffer, signal?: AbortSignal): Promise<void> {
  await serialised(repo, subject, async () => {
    const tag = fallbackTag(subject);
    const where = `${repo.name}:${tag}`;
    const doc = parseIndex(incoming, `the index to tag ${where}`);
    const entries = checkEntries(doc.manifests ?? [], `the index to tag ${where}`);
    const current = await repo.getManifest(tag, signal);
    if (current && !INDEX_TYPES.has(current.mediaType)) {
      throw new GadgetError(`${where} exists but is not an index, so the referrers of ${subject} cannot be recorded in it`, {
        hint: `remove the tag ${tag} or push to a registry with the referrers API`,
      });
    }
    const known = new Set(entries.map((d) => d.digest));
    const missing = current ? checkEntries(parseIndex(current.bytes, where).manifests ?? [], where).filter((d) => !known.has(d.digest)) : [];
    if (current && missing.length === 0 && current.digest === sha256(incoming)) return;
    const bytes = missing.length === 0 ? incoming : encodeJSONBytes({ ...doc, manifests: [...entries, ...missing] });
    await repo.putManifest(tag, bytes, MT_INDEX, signal);
  });
}

/**
 * Adds `entry` to the fallback tag index of `subject` (creating it), unless it is there.
 * Updates of one subject are serialised within this process; the registry offers no lock
 * across processes (the spec accepts that race).
 */
export async function addToFallbackIndex(repo: RepositoryPlumbing, subject: string, entry: Descriptor, signal?: AbortSignal): Promise<void> {
  await serialised(repo, subject, () => updateIndex(repo, subject, entry, signal));
}

async function updateIndex(repo: RepositoryPlumbing, subject: string, entry: Descriptor, signal?: AbortSignal): Promise<void> {
  const tag = fallbackTag(subject);
  const where = `${repo.name}:${tag}`;
  const current = await repo.getManifest(tag, signal);
  let index: Index;
  if (!current) {
    index = { schemaVersion: 2, mediaType: MT_INDEX, manifests: [] };
  } else if (!INDEX_TYPES.has(current.mediaType)) {
    throw new GadgetError(`${where} exists but is not an index, so the referrer ${entry.digest} cannot be recorded in it`, {
      hint: `remove the tag ${tag} or push to a registry with the referrers API`,
    });
  } else {
    index = parseIndex(current.bytes, where);
    index.manifests = checkEntries(index.manifests, where);
  }
  if (index.manifests.some((d) => d.digest === entry.digest)) return;
  index.manifests.push(entry);
  await repo.putManifest(tag, encodeJSONBytes(index), MT_INDEX, signal);
}
