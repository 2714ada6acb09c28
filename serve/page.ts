// The page at `/`: what is in the store, and one image in full (index, manifests, layers,
// gadget.yaml, annotations, signatures and other referrers, the last verification). Server-
// rendered HTML without JavaScript; read-only; every value from the store is escaped.
import { GADGET_CONFIG, MT_INDEX } from '../lib/oci/mediatypes.js';
import type { Descriptor, Index, Manifest } from '../lib/oci/types.js';
import { formatSize, shortDigest } from '../lib/format.js';
import { lastVerification, type LastVerification } from '../store/verifications.js';
import type { Store } from '../store/store.js';

export function escapeHTML(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border-bottom:1px solid #ddd;padding:.3em .8em;text-align:left;vertical-align:top}code,pre{font:12px ui-monospace,monospace}
pre{background:#f6f6f6;padding:1em;overflow:auto;max-height:30em}.pass{color:#060}.fail{color:#b00}.muted{color:#777}`;

function layout(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHTML(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;
}

/** A page that says what went wrong (its message escaped like every other value). */
export function errorPage(title: string, message: string): string {
  return layout(title, `<p><a href="/">all images</a></p><h1>${escapeHTML(title)}</h1><p class="fail">${escapeHTML(message)}</p>`);
}

function verdict(v: LastVerification | undefined): string {
  if (!v) return '<span class="muted">not verified</span>';
  const why = v.passed ? '' : ` (${escapeHTML(v.rules.slice(0, 3).join(', '))})`;
  const sig = v.signature ? `; signature ${v.signature.verified ? 'verified' : 'not verified'}` : '';
  return `<span class="${v.passed ? 'pass' : 'fail'}">${v.passed ? 'PASS' : 'FAIL'}</span>${why} <span class="muted">profile ${escapeHTML(v.profile)}${escapeHTML(sig)}, ${escapeHTML(v.time)}</span>`;
}

const imageLink = (ref: string): string => `/image?ref=${encodeURIComponent(ref)}`;

export function listPage(store: Store, filter: string): string {
  const images = store.list().filter((i) => !filter || i.ref.includes(filter));
  const rows = images
    .map(
      (i) =>
        `<tr><td><a href="${escapeHTML(imageLink(i.ref))}">${escapeHTML(i.ref)}</a></td><td><code>${escapeHTML(shortDigest(i.digest))}</code></td>` +
        `<td>${escapeHTML(i.platforms.map((p) => p.replace('linux/', '')).join(', ') || '-')}</td><td>${escapeHTML(formatSize(i.size))}</td>` +
        `<td>${escapeHTML(i.created ?? '-')}</td><td>${verdict(lastVerification(store, i.digest))}</td></tr>`,
    )
    .join('');
  return layout(
    'gadget serve',
    `<h1>Gadget images</h1><form method="get" action="/"><input name="q" value="${escapeHTML(filter)}" placeholder="filter by name"> <button>Filter</button></form>` +
      `<p class="muted">${images.length} image${images.length === 1 ? '' : 's'} in ${escapeHTML(store.root)}</p>` +
      `<table><thead><tr><th>Reference</th><th>Digest</th><th>Platforms</th><th>Size</th><th>Created</th><th>Last verify</th></tr></thead><tbody>${rows}</tbody></table>`,
  );
}

function annotationsTable(annotations: Record<string, string> | undefined): string {
  const rows = Object.entries(annotations ?? {}).map(([k, v]) => `<tr><td><code>${escapeHTML(k)}</code></td><td>${escapeHTML(v)}</td></tr>`);
  return rows.length ? `<table>${rows.join('')}</table>` : '<p class="muted">none</p>';
}

async function referrerTree(store: Store, subject: Descriptor, depth: number): Promise<string> {
  const referrers = await store.referrers(subject);
  if (!referrers.length) return depth === 0 ? '<p class="muted">no signatures or other referrers</p>' : '';
  const items = await Promise.all(
    referrers.map(async (r) => {
      const doc = await store.readJSON<Manifest & Index>(r.descriptor).catch(() => undefined);
      const kind = r.descriptor.artifactType ?? doc?.artifactType ?? doc?.config?.mediaType ?? r.descriptor.mediaType;
      const children = depth < 2 ? await referrerTree(store, r.descriptor, depth + 1) : '';
      return `<li><code>${escapeHTML(kind)}</code> <code>${escapeHTML(shortDigest(r.descriptor.digest))}</code>${r.tag ? ` tag <code>${escapeHTML(r.tag)}</code>` : ''}${children}</li>`;
    }),
  );
  return `<ul>${items.join('')}</ul>`;
}

/**
 * The index as indented JSON; one nested too deeply for JSON.stringify's recursion (another
 * tool may have stored it: gadget serve refuses such pushes) as its stored bytes, so the page
 * still shows.
 */
async function laidOut(store: Store, index: Descriptor, doc: unknown): Promise<string> {
  try {
    return JSON.stringify(doc, null, 2);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    return `(nested too deeply to lay out: as stored)\n${(await store.readBytes(index)).toString('utf8')}`;
  }
}

export async function imagePage(store: Store, ref: string): Promise<string | undefined> {
  let index: Descriptor;
  try {
    index = store.resolveRef(ref);
  } catch {
    return undefined;
  }
  const doc = await store.readJSON<Manifest & Index>(index);
  const manifests = index.mediaType === MT_INDEX || Array.isArray(doc.manifests) ? doc.manifests : [index];
  let gadgetYaml: string | undefined;
  const sections = await Promise.all(
    manifests.map(async (m) => {
      const manifest = m.digest === index.digest ? doc : await store.readJSON<Manifest>(m).catch(() => undefined);
      if (!manifest) return `<h3>${escapeHTML(m.digest)}</h3><p class="fail">missing from the store</p>`;
      if (manifest.config?.mediaType === GADGET_CONFIG && gadgetYaml === undefined) gadgetYaml = (await store.readBytes(manifest.config).catch(() => Buffer.from(''))).toString('utf8');
      const blobs = [...(manifest.config ? [['config', manifest.config] as const] : []), ...(manifest.layers ?? []).map((l) => ['layer', l] as const)];
      const rows = blobs.map(([role, d]) => `<tr><td>${role}</td><td><code>${escapeHTML(d.mediaType)}</code></td><td><code>${escapeHTML(shortDigest(d.digest))}</code></td><td>${escapeHTML(formatSize(d.size))}</td></tr>`);
      const platform = m.platform ? `${m.platform.os}/${m.platform.architecture}` : 'manifest';
      return `<h3>${escapeHTML(platform)} <code>${escapeHTML(shortDigest(m.digest))}</code></h3><table>${rows.join('')}</table><h4>Annotations</h4>${annotationsTable(manifest.annotations)}`;
    }),
  );
  const body =
    `<p><a href="/">all images</a></p><h1>${escapeHTML(ref)}</h1><p><code>${escapeHTML(index.digest)}</code></p>` +
    `<h2>Last verification</h2><p>${verdict(lastVerification(store, index.digest))}</p>` +
    `<h2>Signatures and other referrers</h2>${await referrerTree(store, index, 0)}` +
    `<h2>Annotations</h2>${annotationsTable(doc.annotations)}` +
    `<h2>gadget.yaml</h2>${gadgetYaml === undefined ? '<p class="muted">none (the OCI empty config)</p>' : `<pre>${escapeHTML(gadgetYaml)}</pre>`}` +
    `<h2>Manifests</h2>${sections.join('')}` +
    `<h2>Index</h2><pre>${escapeHTML(await laidOut(store, index, doc))}</pre>`;
  return layout(ref, body);
}
