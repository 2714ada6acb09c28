// "Exit 0 means complete": a source, pattern or tag filter that yields no image is a failure
// (exit 1, naming the source and the filter, with a hint), never a quiet success. Against
// Debian's real docker-registry with generated images: a registry prefix the catalog lists
// nothing under, a repository without tags, a filter (--include, --semver) that keeps no tag of
// a repository, a bundle or the store; in a mix (one command or one mirror set of several
// sources) the sources that yield images are still copied, and the run exits 1.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openStore } from '../store/store.js';
import { generatedImages } from './helpers/images.js';
import { registryAvailable, startRegistry, type TestRegistry } from './helpers/registry.js';
import { configSource, Transcript } from './helpers/sync.js';

const available = await registryAvailable();
const SKIP = 'docker-registry is not installed (/usr/bin/docker-registry)';

interface Item { set?: string; source: string; destination: string; status: string; error?: string; hint?: string; refused?: string }
interface Summary { images: { copied: number; skipped: number; failed: number }; items: Item[] }

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('a source or filter that yields no image fails, named', { skip: !available && SKIP }, () => {
  const cli = new Transcript();
  let reg: TestRegistry;
  let dir: string;
  let source: string; // a store holding the images pushed to the registry
  let bundle: string;
  let n = 0;
  const fresh = (): string => join(dir, `store-${++n}`);

  /** The references stored in a store folder (none when it was never created). */
  const stored = async (root: string): Promise<string[]> => {
    if (!existsSync(root)) return [];
    const s = await openStore(root);
    try {
      return s.allEntries().flatMap((e) => (e.ref === null || e.ref.startsWith('sha256-') ? [] : [e.ref])).sort();
    } finally {
      s.close();
    }
  };

  before(async () => {
    reg = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'gadget-nothing-'));
    source = join(dir, 'source');
    const s = await openStore(source);
    try {
      await generatedImages(s, ['example.com/src/repo:v1.0.0', 'example.com/src/repo:v2.0.0', 'example.com/gone/repo:v1'], 512);
    } finally {
      s.close();
    }
    // HOST/src/repo: v1.0.0 and v2.0.0; HOST/empty/repo: listed by the catalog, no tag left.
    const pushed = await cli.gadget(['--store', source, 'sync', '--from', 'store:example.com/*', '--to', reg.host, '--rename', 'gone/=empty/']);
    assert.equal(pushed.code, 0, pushed.stderr);
    const head = await fetch(`${reg.url}/v2/empty/repo/manifests/v1`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.index.v1+json' } });
    assert.equal((await fetch(`${reg.url}/v2/empty/repo/manifests/${head.headers.get('docker-content-digest')}`, { method: 'DELETE' })).status, 202);
    assert.deepEqual(await (await fetch(`${reg.url}/v2/empty/repo/tags/list`)).json(), { name: 'empty/repo', tags: null });
    bundle = join(dir, 'good.tar');
    const exported = await cli.gadget(['--store', source, 'sync', '--from', 'store:example.com/src/*', '--to', bundle]);
    assert.equal(exported.code, 0, exported.stderr);
  });
  after(async () => {
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a registry prefix the catalog lists no repository under: exit 1, named, with a hint; --json, --dry-run', async () => {
    const prefix = `${reg.host}/nothing/`;
    const store = fresh();
    const r = await cli.gadget(['--store', store, 'sync', '--from', prefix, '--to', 'store']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`^failed: ${esc(prefix)} -> store: no repository under ${esc(prefix)}\\nhint: .*gadget repos ${esc(`${reg.host}/nothing`)}`, 'm'));
    assert.match(r.stdout, /0 images copied, 0 already there, 1 failed/);

    const j = await cli.gadget(['--store', store, '--json', 'sync', '--from', prefix, '--to', 'store']);
    assert.equal(j.code, 1, j.stdout + j.stderr);
    const doc = JSON.parse(j.stdout) as Summary;
    assert.deepEqual(doc.images, { copied: 0, skipped: 0, failed: 1 });
    assert.equal(doc.items.length, 1);
    assert.equal(doc.items[0]!.source, prefix);
    assert.equal(doc.items[0]!.status, 'failed');
    assert.equal(doc.items[0]!.error, `no repository under ${prefix}`);
    assert.match(doc.items[0]!.hint ?? '', /gadget repos/);

    const dry = await cli.gadget(['--store', store, 'sync', '--dry-run', '--from', prefix, '--to', 'store']);
    assert.equal(dry.code, 1, dry.stdout + dry.stderr);
    assert.match(dry.stderr, new RegExp(`^refused: ${esc(prefix)} -> store: no repository under ${esc(prefix)}\\nhint: `, 'm'));
    const dryJSON = await cli.gadget(['--store', store, '--json', 'sync', '--dry-run', '--from', prefix, '--to', 'store']);
    assert.equal(dryJSON.code, 1);
    assert.deepEqual((JSON.parse(dryJSON.stdout) as { items: Item[] }).items.map((i) => i.refused), [`no repository under ${prefix}`]);
    assert.deepEqual(await stored(store), [], 'nothing was written');
  });

  test('a repository without tags (no filter) fails, named, and so does a prefix whose repositories have none', async () => {
    const store = fresh();
    const r = await cli.gadget(['--store', store, 'sync', '--from', `${reg.host}/empty/repo`, '--to', 'store']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`: there is no tag in ${esc(`${reg.host}/empty/repo`)}\\nhint: .*gadget tags ${esc(`${reg.host}/empty/repo`)}`));
    const dry = await cli.gadget(['--store', store, 'sync', '--dry-run', '--from', `${reg.host}/empty/repo`, '--to', 'store']);
    assert.equal(dry.code, 1, dry.stdout + dry.stderr);
    assert.match(dry.stderr, /refused: .*there is no tag in/);
    const prefix = await cli.gadget(['--store', store, 'sync', '--from', `${reg.host}/empty/`, '--to', 'store']);
    assert.equal(prefix.code, 1, prefix.stdout + prefix.stderr);
    assert.match(prefix.stderr, new RegExp(`there is no tag in the 1 repository under ${esc(`${reg.host}/empty/`)}\\nhint: `));
    assert.deepEqual(await stored(store), []);
  });

  test('a tag filter (--include, --semver) that keeps no tag of a repository: exit 1, the filter and the tags named', async () => {
    const repo = `${reg.host}/src/repo`;
    const store = fresh();
    for (const [flags, shown] of [[['--include', 'zzz*'], '--include "zzz*"'], [['--semver', '>=9.0.0'], '--semver ">=9.0.0"']] as const) {
      const r = await cli.gadget(['--store', store, 'sync', '--from', repo, '--to', 'store', ...flags]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`^failed: ${esc(repo)} -> store: the filter ${esc(shown)} kept no tag of ${esc(repo)} \\(tags: v1\\.0\\.0, v2\\.0\\.0\\)\\nhint: .*gadget tags ${esc(repo)}`, 'm'));
      const j = await cli.gadget(['--store', store, '--json', 'sync', '--from', repo, '--to', 'store', ...flags]);
      assert.equal(j.code, 1);
      const doc = JSON.parse(j.stdout) as Summary;
      assert.equal(doc.items.length, 1);
      assert.equal(doc.items[0]!.status, 'failed');
      assert.match(doc.items[0]!.error!, new RegExp(`the filter ${esc(shown)} kept no tag`));
      assert.ok(doc.items[0]!.hint);
      const dry = await cli.gadget(['--store', store, 'sync', '--dry-run', '--from', repo, '--to', 'store', ...flags]);
      assert.equal(dry.code, 1);
      assert.match(dry.stderr, new RegExp(`refused: .*the filter ${esc(shown)} kept no tag`));
    }
    assert.deepEqual(await stored(store), []);
  });

  test('a bundle or store source whose filter keeps nothing fails, named', async () => {
    const store = fresh();
    const r = await cli.gadget(['--store', store, 'sync', '--from', bundle, '--to', 'store', '--include', 'zzz*']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`the filter --include "zzz\\*" kept no tag of bundle ${esc(bundle)} \\(tags: v1\\.0\\.0, v2\\.0\\.0\\)\\nhint: `));
    const j = await cli.gadget(['--store', store, '--json', 'sync', '--from', bundle, '--to', 'store', '--include', 'zzz*']);
    assert.equal(j.code, 1);
    assert.equal((JSON.parse(j.stdout) as Summary).items[0]!.status, 'failed');
    assert.deepEqual(await stored(store), []);

    const out = `${reg.host}/out`;
    const fromStore = await cli.gadget(['--store', source, 'sync', '--from', 'store:example.com/src/*', '--to', out, '--semver', '>=9']);
    assert.equal(fromStore.code, 1, fromStore.stdout + fromStore.stderr);
    assert.match(fromStore.stderr, /the filter --semver ">=9" kept no tag of store:example\.com\/src\/\* \(tags: v1\.0\.0, v2\.0\.0\)\nhint: /);
    assert.equal((await fetch(`${reg.url}/v2/out/src/repo/tags/list`)).status, 404, 'nothing was pushed');
  });

  test('a mix in one command: what matches is copied, what matches nothing fails, exit 1', async () => {
    const store = fresh();
    const args = ['--store', store, '--json', 'sync', '--from', `${reg.host}/src/repo`, '--from', `${reg.host}/nothing/`, '--to', 'store'];
    const r = await cli.gadget(args);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const doc = JSON.parse(r.stdout) as Summary;
    assert.deepEqual(doc.images, { copied: 2, skipped: 0, failed: 1 });
    assert.deepEqual(doc.items.filter((i) => i.status === 'failed').map((i) => [i.source, i.error]), [[`${reg.host}/nothing/`, `no repository under ${reg.host}/nothing/`]]);
    assert.deepEqual(await stored(store), [`${reg.host}/src/repo:v1.0.0`, `${reg.host}/src/repo:v2.0.0`]);

    // A store pattern that matches nothing fails that source; the other still runs.
    const out = `${reg.host}/mixed`;
    const push = await cli.gadget(['--store', source, 'sync', '--from', 'store:nothing*', '--from', 'store:example.com/src/*', '--to', out]);
    assert.equal(push.code, 1, push.stdout + push.stderr);
    assert.match(push.stderr, /^failed: store:nothing\* -> .*: the pattern "store:nothing\*" matched no image\nhint: /m);
    assert.deepEqual(((await (await fetch(`${reg.url}/v2/mixed/src/repo/tags/list`)).json()) as { tags: string[] }).tags.sort(), ['v1.0.0', 'v2.0.0']);
  });

  test('mirror sets: a source that yields nothing fails that source, named with its set and filter; the others run', async () => {
    const work = await mkdtemp(join(dir, 'work-'));
    const store = join(work, 'store');
    writeFileSync(join(work, 'gadget.config.ts'), configSource({
      mirrors: {
        both: { source: [`${reg.host}/src/repo`, `${reg.host}/nothing/`, `${reg.host}/empty/repo`], destination: 'store' },
        filtered: { source: `${reg.host}/src/repo`, tags: { include: ['zzz*'] }, destination: 'store' },
      },
    }));
    const r = await cli.gadget(['--store', store, 'sync'], { cwd: work });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`failed: ${esc(`${reg.host}/nothing/`)} -> store: mirror set both: no repository under ${esc(`${reg.host}/nothing/`)}\\nhint: `));
    assert.match(r.stderr, new RegExp(`failed: ${esc(`${reg.host}/empty/repo`)} -> store: mirror set both: there is no tag in ${esc(`${reg.host}/empty/repo`)}\\nhint: `));
    assert.match(r.stderr, new RegExp(`failed: ${esc(`${reg.host}/src/repo`)} -> store: mirror set filtered: the filter tags\\.include \\["zzz\\*"\\] kept no tag of ${esc(`${reg.host}/src/repo`)} \\(tags: v1\\.0\\.0, v2\\.0\\.0\\)\\nhint: `));
    assert.match(r.stdout, /2 images copied, 0 already there, 3 failed/);
    assert.deepEqual(await stored(store), [`${reg.host}/src/repo:v1.0.0`, `${reg.host}/src/repo:v2.0.0`]);

    const j = await cli.gadget(['--store', store, '--json', 'sync', '--dry-run', 'both'], { cwd: work });
    assert.equal(j.code, 1);
    const items = (JSON.parse(j.stdout) as { items: Item[] }).items;
    assert.deepEqual(items.filter((i) => i.refused).map((i) => [i.set, i.source]), [['both', `${reg.host}/nothing/`], ['both', `${reg.host}/empty/repo`]]);
    assert.equal(items.filter((i) => !i.refused).length, 2);
  });

  test('a bundle source that cannot be read fails its set, named with the set and the file; the other sets run', async () => {
    const work = await mkdtemp(join(dir, 'damaged-'));
    // The good bundle cut after its last entry: a tar without its end-of-archive marker.
    const bytes = readFileSync(bundle);
    let end = bytes.length;
    while (end > 0 && bytes[end - 1] === 0) end--;
    const trunc = join(work, 'trunc.tar');
    writeFileSync(trunc, bytes.subarray(0, Math.ceil(end / 512) * 512));
    writeFileSync(join(work, 'gadget.config.ts'), configSource({
      mirrors: {
        a: { source: { bundle: 'trunc.tar' }, destination: { registry: `${reg.host}/froma` } },
        b: { source: { store: 'example.com/src/*' }, destination: { registry: `${reg.host}/fromb` } },
      },
    }));
    const r = await cli.gadget(['--store', source, 'sync'], { cwd: work });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`^failed: bundle ${esc(trunc)} -> ${esc(`${reg.host}/froma`)}: mirror set a: ${esc(trunc)}: the archive ends without an end-of-archive marker\\nhint: \\S`, 'm'));
    assert.match(r.stdout, /2 images copied, 0 already there, 1 failed/);
    assert.deepEqual(((await (await fetch(`${reg.url}/v2/fromb/src/repo/tags/list`)).json()) as { tags: string[] }).tags.sort(), ['v1.0.0', 'v2.0.0'], 'set b ran');
    assert.equal((await fetch(`${reg.url}/v2/froma/src/repo/tags/list`)).status, 404, 'nothing of set a was pushed');

    const dry = await cli.gadget(['--store', source, '--json', 'sync', '--dry-run'], { cwd: work });
    assert.equal(dry.code, 1, dry.stdout + dry.stderr);
    const items = (JSON.parse(dry.stdout) as { items: Item[] }).items;
    assert.deepEqual(items.map((i) => [i.set, Boolean(i.refused)]), [['a', true], ['b', false], ['b', false]]);
    assert.equal(items[0]!.source, `bundle ${trunc}`);
    assert.ok(items[0]!.hint);

    // From the command line, the same: that source fails, the other is copied.
    const store = fresh();
    const mixed = await cli.gadget(['--store', store, 'sync', '--from', trunc, '--from', `${reg.host}/src/repo`, '--to', 'store']);
    assert.equal(mixed.code, 1, mixed.stdout + mixed.stderr);
    assert.match(mixed.stderr, new RegExp(`^failed: bundle ${esc(trunc)} -> store: ${esc(trunc)}: the archive ends without an end-of-archive marker\\nhint: \\S`, 'm'));
    assert.deepEqual(await stored(store), [`${reg.host}/src/repo:v1.0.0`, `${reg.host}/src/repo:v2.0.0`]);
  });

  test('a bundle source that does not exist is a usage error naming the set and the file: exit 2, no set runs', async () => {
    const work = await mkdtemp(join(dir, 'missing-'));
    const missing = join(work, 'missing.tar');
    writeFileSync(join(work, 'gadget.config.ts'), configSource({
      mirrors: {
        b: { source: { store: 'example.com/src/*' }, destination: { registry: `${reg.host}/beforemissing` } },
        a: { source: { bundle: 'missing.tar' }, destination: 'store' },
      },
    }));
    const r = await cli.gadget(['--store', source, 'sync'], { cwd: work });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`^error: mirror set a: the bundle ${esc(missing)} does not exist\\nhint: \\S`, 'm'));
    assert.equal((await fetch(`${reg.url}/v2/beforemissing/src/repo/tags/list`)).status, 404, 'no set ran');
    const store = fresh();
    const line = await cli.gadget(['--store', store, 'sync', '--from', missing, '--to', 'store']);
    assert.equal(line.code, 2, line.stdout + line.stderr);
    assert.match(line.stderr, new RegExp(`^error: the bundle ${esc(missing)} does not exist\\nhint: \\S`, 'm'));
  });

  test('a prefix that yields images is complete even when one of its repositories has no tag', async () => {
    const store = fresh();
    const r = await cli.gadget(['--store', store, 'sync', '--from', `${reg.host}/`, '--to', 'store', '--include', 'v1*']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const refs = await stored(store);
    assert.ok(refs.includes(`${reg.host}/src/repo:v1.0.0`), refs.join(', '));
    assert.ok(!refs.some((ref) => ref.includes('/empty/') || ref.endsWith(':v2.0.0')), refs.join(', '));
  });

  test('verify --remote of a prefix or repository that yields no image fails, named, in --json too', async () => {
    const prefix = `${reg.host}/nothing/`;
    const j = await cli.gadget(['--json', 'verify', '--remote', prefix]);
    assert.equal(j.code, 1, j.stdout + j.stderr);
    const doc = JSON.parse(j.stdout) as { summary: { passed: boolean; images: number; failed: number }; images: Array<{ ref: string; passed: boolean; hint?: string; findings: Array<{ rule: string; message: string }> }> };
    assert.equal(doc.summary.passed, false);
    assert.equal(doc.summary.failed, 1);
    assert.equal(doc.images[0]!.ref, prefix);
    assert.equal(doc.images[0]!.passed, false);
    assert.deepEqual(doc.images[0]!.findings.map((f) => [f.rule, f.message]), [['GADGET-REMOTE-EMPTY', `no repository under ${prefix}`]]);
    assert.match(doc.images[0]!.hint ?? '', /gadget repos/);

    const text = await cli.gadget(['verify', '--remote', prefix, `${reg.host}/empty/repo`]);
    assert.equal(text.code, 1, text.stdout + text.stderr);
    assert.match(text.stdout, new RegExp(`^FAIL  ${esc(prefix)}`, 'm'));
    assert.match(text.stderr, new RegExp(`error: no repository under ${esc(prefix)}\\nhint: `));
    assert.match(text.stderr, new RegExp(`error: there is no tag in ${esc(`${reg.host}/empty/repo`)}\\nhint: `));

    // A mix: the images found are verified, the input that yields none fails.
    const mix = await cli.gadget(['--json', 'verify', '--profile', 'ig', '--remote', `${reg.host}/src/repo`, prefix]);
    assert.equal(mix.code, 1);
    const refs = (JSON.parse(mix.stdout) as typeof doc).images.map((i) => i.ref);
    assert.deepEqual(refs, [`${reg.host}/src/repo:v1.0.0`, `${reg.host}/src/repo:v2.0.0`, prefix]);
  });
});
