// What a transfer promises before and after it runs, against the real docker-registry: damaged
// tag lists are asked for again; a registry that never answers is given up on within the
// configured timeouts; real pagination (Link and `last=`) is followed to its end and an endless
// one fails loudly; patterns that match nothing are errors, bare tags are matchable; two
// sources for one destination (checkCollisions) and platform subsets are refused by the plan,
// in --dry-run as in the run; and an import or pull into a store that lost a blob heals it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { digestHex } from '../lib/oci/digest.js';
import { openStore } from '../store/store.js';
import { gadget } from './helpers/cli.js';
import { generatedImages } from './helpers/images.js';
import { registryAvailable, startFaultProxy, startRegistry, type FaultProxy, type TestRegistry } from './helpers/registry.js';
import { configSource, tempDir } from './helpers/sync.js';

const execFileP = promisify(execFile);
const available = await registryAvailable();
const SKIP = 'docker-registry is not installed (/usr/bin/docker-registry)';

async function listen(server: http.Server | net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Forwards a request to the real registry unchanged. */
function forward(target: string, req: IncomingMessage, res: ServerResponse): void {
  const [host, port] = target.split(':');
  const up = http.request({ host, port: Number(port), method: req.method, path: req.url, headers: req.headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
}

/**
 * A stand-in for a registry that really pages its tag lists (docker-registry 2.8 ignores `n`
 * and `last` and sends no Link header, so it cannot show pagination): in front of the real
 * registry, `tags/list` answers at most `pageSize` tags after `last=`, with a
 * `Link: <...?n=..&last=..>; rel="next"` while more remain. With `endless`, every page names
 * a next one. Everything else goes to the registry.
 */
async function startPagingStandIn(target: string, opts: { pageSize: number; endless?: boolean }): Promise<{ host: string; pages: number; close(): Promise<void> }> {
  const state = { pages: 0 };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/v2\/(.+)\/tags\/list$/.exec(url.pathname);
    if (!m || req.method !== 'GET') return forward(target, req, res);
    state.pages++;
    const last = url.searchParams.get('last') ?? '';
    let all: string[];
    if (opts.endless) {
      all = [`t${Number(last.slice(1) || 0) + 1}`];
    } else {
      const answer = await fetch(`http://${target}/v2/${m[1]}/tags/list`);
      all = (((await answer.json()) as { tags: string[] | null }).tags ?? []).sort();
    }
    const n = Math.min(Number(url.searchParams.get('n') ?? opts.pageSize), opts.pageSize);
    const rest = opts.endless ? all : all.filter((t) => t > last);
    const page = rest.slice(0, n);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (opts.endless || rest.length > n) headers.link = `</v2/${m[1]}/tags/list?n=${n}&last=${page[page.length - 1]}>; rel="next"`;
    res.writeHead(200, headers);
    res.end(JSON.stringify({ name: m[1], tags: page }));
  });
  const host = await listen(server);
  return {
    host,
    get pages() {
      return state.pages;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/**
 * A registry that cuts its pages at a limit of its own and sends no Link (as some answer `n`
 * larger than they allow): in front of the real registry, `_catalog` and `tags/list` answer at
 * most `cap` names after `last=`, sorted, whatever `n` asks. Everything else goes to the registry.
 */
async function startCappingStandIn(target: string, cap: number): Promise<{ host: string; close(): Promise<void> }> {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const tags = /^\/v2\/(.+)\/tags\/list$/.exec(url.pathname);
    if (req.method !== 'GET' || (!tags && url.pathname !== '/v2/_catalog')) return forward(target, req, res);
    const key = tags ? 'tags' : 'repositories';
    const answer = await fetch(`http://${target}${url.pathname}?n=1000`);
    const all = (((await answer.json()) as Record<string, string[] | null>)[key] ?? []).sort();
    const last = url.searchParams.get('last') ?? '';
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ...(tags ? { name: tags[1] } : {}), [key]: all.filter((n) => n > last).slice(0, cap) }));
  });
  const host = await listen(server);
  return {
    host,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

describe('plans, patterns, pagination, timeouts and healing', { skip: !available && SKIP }, () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let dir: string;
  let storeDir: string;
  const refs = ['ttl.sh/dup:latest', 'quay.io/dup:latest', 'ttl.sh/other:latest', 'example.com/bench/g0001:v1'];

  before(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.host);
    dir = await mkdtemp(join(tmpdir(), 'gadget-plan-'));
    storeDir = join(dir, 'store');
    const store = await openStore(storeDir);
    try {
      await generatedImages(store, refs, 1024);
    } finally {
      store.close();
    }
    // Twelve tags in one repository, for pagination.
    const many = join(dir, 'many');
    const s = await openStore(many);
    try {
      await generatedImages(s, Array.from({ length: 12 }, (_, i) => `example.com/many/app:v${i}`), 512);
    } finally {
      s.close();
    }
    const seeded = await gadget(['--store', many, 'sync', '--from', 'store:example.com/many/*', '--to', reg.host]);
    assert.equal(seeded.code, 0, seeded.stderr);
  });
  after(async () => {
    await proxy?.close();
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a damaged tag list (flipped byte, a page of the wrong shape, cut short) is asked for again', async (t) => {
    const target = join(await tempDir(t), 's');
    proxy.flip({ method: 'GET', path: /\/tags\/list/ }, { offset: 10 });
    proxy.fail({ method: 'GET', path: /\/tags\/list/ }, 200, { body: '{"name":"many/app","tags":"not a list"}' });
    proxy.cut({ method: 'GET', path: /\/tags\/list/ }, 20);
    const r = await gadget(['--store', target, '--json', 'sync', '--from', `${proxy.host}/many/app`, '--to', 'store', '--include', 'v1*']);
    proxy.clear();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(proxy.requests.filter((q) => q.injected && /tags\/list/.test(q.path)).length, 3, 'every fault was met');
    const summary = JSON.parse(r.stdout) as { images: { copied: number } };
    assert.equal(summary.images.copied, 3, 'v1, v10, v11');
  });

  test('a registry that accepts the connection and never answers: the command gives up within the configured timeouts', async (t) => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => sockets.add(socket)); // accepts, never answers
    const host = await listen(silent);
    t.after(() => {
      for (const s of sockets) s.destroy();
      silent.close();
    });
    const config = await tempDir(t);
    writeFileSync(join(config, 'gadget.config.ts'), configSource({ registries: { retries: 2 } }));
    const store = join(config, 'store');
    // Generous bound: only a hang reaches it (2 tries of 1 s plus a backoff, here about 3 s).
    const r = await gadget(['--store', store, 'pull', `${host}/silent/app:v1`, '--request-timeout', '1', '--idle-timeout', '1'], { cwd: config });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`failed: ${host}/silent/app:v1 -> store ${host}/silent/app:v1: cannot reach the registry ${host}.*(no answer within 1 s|silent for 1 s) after 2 attempts`));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    const bad = await gadget(['--store', store, 'pull', `${host}/silent/app:v1`, '--request-timeout', 'soon']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--request-timeout must be a number of seconds/);
  });

  test('a registry that really pages (Link with last=): every tag is found', async (t) => {
    const standIn = await startPagingStandIn(reg.host, { pageSize: 5 });
    t.after(() => standIn.close());
    const r = await gadget(['--json', 'sync', '--dry-run', '--from', `${standIn.host}/many/app`, '--to', `${reg.host}/paged`]);
    assert.equal(r.code, 0, r.stderr);
    const planned = (JSON.parse(r.stdout) as { items: Array<{ source: string }> }).items.map((i) => i.source.split(':').pop());
    // Capped at one page, this would find 5 of the 12 tags.
    assert.deepEqual(planned.sort(), Array.from({ length: 12 }, (_, i) => `v${i}`).sort());
    assert.equal(standIn.pages, 3, '12 tags at 5 a page');
  });

  test('a registry that cuts its pages short without Link: every tag and repository is still found', async (t) => {
    const seeded = await gadget(['--store', storeDir, 'sync', '--from', 'store:ttl.sh/*', '--from', 'store:example.com/*', '--to', `${reg.host}/capped`]);
    assert.equal(seeded.code, 0, seeded.stderr);
    const standIn = await startCappingStandIn(reg.host, 2);
    t.after(() => standIn.close());
    // Taken for the end, the first page of 2 would give 2 of the 12 tags and 2 of the 3 repositories, with exit 0.
    const tags = await gadget(['tags', `${standIn.host}/many/app`]);
    assert.equal(tags.code, 0, tags.stderr);
    assert.deepEqual(tags.stdout.trim().split('\n').sort(), Array.from({ length: 12 }, (_, i) => `v${i}`).sort());
    const repos = await gadget(['repos', `${standIn.host}/capped`]);
    assert.equal(repos.code, 0, repos.stderr);
    assert.deepEqual(repos.stdout.trim().split('\n'), ['bench/g0001', 'dup', 'other'].map((r) => `${standIn.host}/capped/${r}`));
    const planned = await gadget(['--json', 'sync', '--dry-run', '--from', `${standIn.host}/capped/`, '--to', `${reg.host}/recapped`]);
    assert.equal(planned.code, 0, planned.stderr);
    assert.equal((JSON.parse(planned.stdout) as { items: unknown[] }).items.length, 3);
  });

  test('a destination inside its own prefix source is refused before anything is listed or copied (it would nest deeper every run)', async (t) => {
    proxy.requests.length = 0;
    const inside = await gadget(['sync', '--from', `${proxy.host}/many/`, '--to', `${proxy.host}/many/mirror`]);
    assert.equal(inside.code, 2, inside.stdout + inside.stderr);
    assert.match(inside.stderr, new RegExp(`^error: the destination ${proxy.host}/many/mirror lies inside its source ${proxy.host}/many/, so every run would copy its own copies again, one level deeper; nothing was copied\nhint: give it a destination outside`));
    assert.deepEqual(proxy.requests, [], 'nothing was listed');
    // The whole registry as the source: any destination on it.
    const root = await gadget(['--json', 'sync', '--dry-run', '--from', `${proxy.host}/`, '--to', `${proxy.host}/elsewhere`]);
    assert.equal(root.code, 2, root.stdout + root.stderr);
    // A rename that lands the copies under the source's prefix: refused once the plan names them, before any copy.
    const config = await tempDir(t);
    writeFileSync(join(config, 'gadget.config.ts'), configSource({ mirrors: { loop: { source: `${reg.host}/many/`, rename: { from: 'many/', to: 'many/copy/' }, destination: { registry: reg.host } } } }));
    const renamed = await gadget(['sync', 'loop'], { cwd: config });
    assert.equal(renamed.code, 2, renamed.stdout + renamed.stderr);
    assert.match(renamed.stderr, /^error: mirror set loop: .*many\/app:v\d+ would be copied to .*many\/copy\/app:v\d+, which its source .*many\/ lists too/);
    assert.equal((await fetch(`${reg.url}/v2/many/copy/app/tags/list`)).status, 404, 'nothing was copied');
    // Outside the prefix, or on another registry, it runs.
    const outside = await gadget(['sync', '--dry-run', '--from', `${reg.host}/many/`, '--to', `${reg.host}/outside`]);
    assert.equal(outside.code, 0, outside.stderr);
  });

  test('an endless Link chain hits the page bound and fails loudly', async (t) => {
    const standIn = await startPagingStandIn(reg.host, { pageSize: 1, endless: true });
    t.after(() => standIn.close());
    const config = await tempDir(t);
    writeFileSync(join(config, 'gadget.config.ts'), configSource({ registries: { maxPages: 40 } }));
    const r = await gadget(['--json', 'sync', '--from', `${standIn.host}/many/app`, '--to', `${reg.host}/endless`], { cwd: config });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const failed = (JSON.parse(r.stdout) as { items: Array<{ status: string; error: string }> }).items.filter((i) => i.status === 'failed');
    assert.equal(failed.length, 1);
    assert.match(failed[0]!.error, /the tags of .*many\/app: stopped after 40 pages, and the registry still names a next page/);
    assert.equal(standIn.pages, 40);
  });

  test('bare tags (as skopeo writes them) are matchable; a pattern without "/" finds name and name:tag', async (t) => {
    const layout = join(await tempDir(t), 'bare');
    for (const [from, bare] of [['ttl.sh/other:latest', 'g0001'], ['example.com/bench/g0001:v1', 'g0002']] as const) {
      await execFileP('/usr/bin/skopeo', ['copy', '--all', '--quiet', `oci:${storeDir}:${from}`, `oci:${layout}:${bare}`]);
    }
    const all = await gadget(['--store', layout, '--json', 'list', '*']);
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual((JSON.parse(all.stdout) as Array<{ ref: string }>).map((i) => i.ref), ['g0001', 'g0002']);
    const one = await gadget(['--store', layout, '--json', 'list', 'g0001']);
    assert.deepEqual((JSON.parse(one.stdout) as Array<{ ref: string }>).map((i) => i.ref), ['g0001']);
    // In a store of full references, `g0001` finds `.../g0001:v1`, and so does `g0001:v1`.
    for (const pattern of ['g0001', 'g0001:v1', 'g000?', 'example.com/*/g0001:*']) {
      const found = await gadget(['--store', storeDir, '--json', 'list', pattern]);
      assert.equal(found.code, 0, `${pattern}: ${found.stderr}`);
      assert.deepEqual((JSON.parse(found.stdout) as Array<{ ref: string }>).map((i) => i.ref), ['example.com/bench/g0001:v1'], pattern);
    }
    const synced = await gadget(['--store', layout, '--json', 'sync', '--from', 'store:*', '--to', `${reg.host}/bare`]);
    assert.equal(synced.code, 0, synced.stderr);
    assert.equal((JSON.parse(synced.stdout) as { images: { copied: number } }).images.copied, 2);
  });

  test('a pattern that matches no image is an error naming it', async () => {
    const listed = await gadget(['--store', storeDir, 'list', 'nothing*']);
    assert.equal(listed.code, 1);
    assert.match(listed.stderr, /error: the pattern "nothing\*" matched no image\nhint: /);
    const synced = await gadget(['--store', storeDir, 'sync', '--from', 'store:nothing*', '--to', `${reg.host}/none`]);
    assert.equal(synced.code, 1);
    assert.match(synced.stderr, /the pattern "store:nothing\*" matched no image/);
    const dry = await gadget(['--store', storeDir, 'sync', '--dry-run', '--from', 'store:nothing*', '--to', `${reg.host}/none`]);
    assert.equal(dry.code, 1);
    assert.match(dry.stderr, /matched no image/);
  });

  test('two sources for one destination refuse the plan, both named, in --dry-run as in the run', async () => {
    const args = ['--store', storeDir, 'sync', '--from', 'store:*/dup:*', '--from', 'store:ttl.sh/other:*', '--to', `${reg.host}/coll`];
    for (const dryRun of [true, false]) {
      const r = await gadget(dryRun ? [...args, '--dry-run'] : args);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`error: 1 destination would receive the images of two sources, so nothing was copied: (quay\\.io/dup:latest and ttl\\.sh/dup:latest|ttl\\.sh/dup:latest and quay\\.io/dup:latest) -> ${reg.host}/coll/dup:latest`));
    }
    for (const repo of ['coll/dup', 'coll/other']) assert.equal((await fetch(`${reg.url}/v2/${repo}/tags/list`)).status, 404, `nothing was written (${repo})`);
  });

  test('--dry-run predicts the platform-subset refusal of the run, and writes nothing', async () => {
    const args = ['--store', storeDir, 'sync', '--from', 'store:ttl.sh/other:*', '--to', `${reg.host}/subset`, '--platform', 'amd64'];
    const dry = await gadget([...args, '--dry-run']);
    const real = await gadget(args);
    for (const r of [dry, real]) {
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /ttl\.sh\/other:latest -> .*subset\/other:latest: ttl\.sh\/other:latest: keeping only linux\/amd64 of its platforms/);
    }
    assert.match(dry.stdout, /0 images planned, 1 refused \(dry run: nothing copied\)/);
    assert.equal((await fetch(`${reg.url}/v2/subset/other/tags/list`)).status, 404);
  });

  test('a store that lost a config blob: import and pull again heal it, and fsck is clean', async (t) => {
    const work = await tempDir(t);
    const layout = join(work, 'layout.tar');
    const exported = await gadget(['--store', storeDir, 'export', 'ttl.sh/other:latest', 'example.com/bench/g0001:v1', '-o', layout]);
    assert.equal(exported.code, 0, exported.stderr);
    const target = join(work, 'target');
    assert.equal((await gadget(['--store', target, 'import', layout])).code, 0);
    const pulled = await gadget(['--store', target, 'pull', `${reg.host}/many/app:v3`]);
    assert.equal(pulled.code, 0, pulled.stderr);

    const store = await openStore(target);
    const configs: string[] = [];
    try {
      for (const ref of ['ttl.sh/other:latest', `${reg.host}/many/app:v3`]) {
        const index = JSON.parse((await store.readBytes(store.resolveRef(ref))).toString()) as { manifests: Array<{ digest: string }> };
        const manifest = JSON.parse((await store.readBytes(index.manifests[0]!.digest)).toString()) as { config: { digest: string } };
        configs.push(manifest.config.digest);
      }
    } finally {
      store.close();
    }
    for (const digest of configs) rmSync(join(target, 'blobs', 'sha256', digestHex(digest)));
    const broken = await gadget(['--store', target, 'fsck']);
    assert.equal(broken.code, 1, 'fsck sees the loss');

    const imported = await gadget(['--store', target, 'import', layout]);
    assert.equal(imported.code, 0, imported.stderr);
    const repulled = await gadget(['--store', target, '--json', 'pull', `${reg.host}/many/app:v3`]);
    assert.equal(repulled.code, 0, repulled.stderr);
    assert.equal((JSON.parse(repulled.stdout) as { items: Array<{ copied: number }> }).items[0]!.copied, 1, 'the pull copied the one lost blob');
    for (const digest of configs) assert.ok(existsSync(join(target, 'blobs', 'sha256', digestHex(digest))), `${digest} is back`);
    const clean = await gadget(['--store', target, 'fsck']);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
  });
});
