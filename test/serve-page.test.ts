// The page of `gadget serve` in a real headless browser (Debian's chromium driven by
// playwright-core): the list shows the images, an image's page shows its signatures and its
// last verification, and a gadget.yaml description holding <script> is shown as text, never run.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { openStore } from '../store/store.js';
import { gadget } from './helpers/cli.js';
import { FIXTURE_LAYOUT, scratch } from './helpers/paths.js';
import { startServe, type TestServe } from './helpers/serve.js';

const CHROMIUM = '/usr/bin/chromium';
const HOSTILE = 'ghcr.io/example/hostile:v1';
const SIGNED = 'ttl.sh/signed_with_cosign_oci11:latest';

let serve: TestServe;
let browser: Browser;
before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (test/run.sh installs it)`);
  const dir = scratch('gadget-serve-page-');
  const store = join(dir, 'store');
  assert.equal((await gadget(['--store', store, 'import', FIXTURE_LAYOUT])).code, 0);
  const hostile = join(dir, 'hostile');
  mkdirSync(hostile);
  writeFileSync(join(hostile, 'gadget.yaml'), 'name: hostile\ndescription: "<script>window.pwned = true</script><b>bold</b>"\n');
  assert.equal((await gadget(['--store', store, 'build', hostile, '-t', HOSTILE])).code, 0);
  await gadget(['--store', store, 'verify', '--profile', 'ig', HOSTILE]);
  serve = await startServe(store, ['--read-only']);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await browser?.close();
  await serve?.stop();
});

test('the list shows the store\'s images and filters them by name, with JavaScript off', async () => {
  const page = await browser.newPage({ javaScriptEnabled: false });
  await page.goto(`${serve.url}/`);
  const refs = await page.locator('tbody tr td:first-child a').allTextContents();
  assert.ok(refs.includes(HOSTILE) && refs.includes(SIGNED), refs.join(', '));
  await page.fill('input[name=q]', 'hostile');
  await page.click('button');
  assert.deepEqual(await page.locator('tbody tr td:first-child a').allTextContents(), [HOSTILE]);
  assert.match(page.url(), /\?q=hostile$/, 'a filtered list is a link that can be shared');
});

test('an image page shows its signatures and the last verification', async () => {
  const page = await browser.newPage();
  await page.goto(`${serve.url}/`);
  await page.click(`a:text-is("${SIGNED}")`);
  assert.match(await page.locator('h1').textContent() ?? '', /signed_with_cosign_oci11/);
  const referrers = await page.locator('h2:text-is("Signatures and other referrers") + ul').textContent();
  assert.match(referrers ?? '', /application\/vnd\.dev\.cosign\.artifact\.sig\.v1\+json/);
  await page.goto(`${serve.url}/image?ref=${encodeURIComponent(HOSTILE)}`);
  assert.match(await page.locator('h2:text-is("Last verification") + p').textContent() ?? '', /PASS/);
});

test('a <script> in gadget.yaml is shown as text and never runs', async () => {
  const page = await browser.newPage();
  await page.goto(`${serve.url}/image?ref=${encodeURIComponent(HOSTILE)}`);
  assert.equal(await page.evaluate(() => (window as unknown as { pwned?: boolean }).pwned), undefined);
  assert.equal(await page.locator('b').count(), 0, 'no markup from the store is rendered');
  assert.match(await page.locator('pre').first().textContent() ?? '', /<script>window\.pwned = true<\/script>/);
});

test('a page that cannot be shown is an HTML page that says why, every value escaped', async () => {
  const store = join(scratch('gadget-serve-page-'), 'store');
  assert.equal((await gadget(['--store', store, 'import', FIXTURE_LAYOUT])).code, 0);
  const s = await openStore(store);
  const digest = s.resolveRef(SIGNED).digest;
  s.close();
  const file = join(store, 'blobs', 'sha256', digest.slice(7));
  chmodSync(file, 0o644);
  writeFileSync(file, Buffer.alloc(statSync(file).size, 'x'));
  const damaged = await startServe(store, ['--read-only']);
  try {
    const broken = await fetch(`${damaged.url}/image?ref=${encodeURIComponent(SIGNED)}`);
    assert.equal(broken.status, 500);
    assert.match(broken.headers.get('content-type') ?? '', /^text\/html/);
    const text = await broken.text();
    assert.match(text, new RegExp(`${digest} is corrupt`));
    assert.doesNotMatch(text, /"code"/, 'not the registry\'s JSON');
    const missing = await fetch(`${damaged.url}/image?ref=${encodeURIComponent('<b>nope</b>')}`);
    assert.equal(missing.status, 404);
    assert.match(missing.headers.get('content-type') ?? '', /^text\/html/);
    const said = await missing.text();
    assert.match(said, /&#60;b&#62;nope&#60;\/b&#62; is not in the store/);
    assert.doesNotMatch(said, /<b>/);
  } finally {
    await damaged.stop();
  }
});

test('a manifest nested 1.5 million lists deep: its push is MANIFEST_INVALID naming the limit, and one another tool stored still has its page', async (t) => {
  const store = join(scratch('gadget-serve-deep-'), 'store');
  const writable = await startServe(store);
  t.after(() => writable.stop());
  const empty = Buffer.from('{}');
  const emptyDigest = `sha256:${createHash('sha256').update(empty).digest('hex')}`;
  assert.equal((await fetch(`${writable.url}/v2/myorg/deep/blobs/uploads/?digest=${emptyDigest}`, { method: 'POST', body: empty })).status, 201);
  const n = 1_500_000;
  const deep = Buffer.from(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"${emptyDigest}","size":2},"layers":[],"x":${'['.repeat(n)}${']'.repeat(n)}}`);
  const put = await fetch(`${writable.url}/v2/myorg/deep/manifests/v1`, { method: 'PUT', body: new Uint8Array(deep), headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(put.status, 400);
  const error = ((await put.json()) as { errors: Array<{ code: string; message: string }> }).errors[0]!;
  assert.equal(error.code, 'MANIFEST_INVALID');
  assert.match(error.message, /more than 64 levels deep/);
  const digest = `sha256:${createHash('sha256').update(deep).digest('hex')}`;
  assert.ok(!existsSync(join(store, 'blobs', 'sha256', digest.slice(7))), 'nothing written');
  // Written by another program (gadget import takes it): the page shows it as stored.
  const s = await openStore(store);
  await s.tag(await s.putBytes(deep, 'application/vnd.oci.image.manifest.v1+json'), 'ghcr.io/myorg/deep:v1');
  s.close();
  const page = await fetch(`${writable.url}/image?ref=${encodeURIComponent('ghcr.io/myorg/deep:v1')}`);
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /nested too deeply to lay out: as stored/);
  assert.ok(html.includes(`${'['.repeat(1000)}`), 'the stored bytes are shown');
});
