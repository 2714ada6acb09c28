// Inspektor Gadget's own gadgets (../shared/fixtures/ig-gadgets: its build headers and about
// half of its gadget folders), built as a user would with `gadget build DIR --include
// ig/include` (amd64 and arm64) and verified with both profiles. Every gadget either builds and
// passes, or fails with the one-sentence reason this table expects for this machine: a Go or
// Rust wasm toolchain that is missing, or clang/libbpf headers older than ig's (clang 18,
// libbpf 1.3). Builds run through the real CLI, two at a time.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { Index, Manifest } from '../lib/oci/types.js';
import { findTool } from '../plugins/build/compile.js';
import { openStore } from '../store/store.js';
import { gadget, CLI, type CliResult } from './helpers/cli.js';
import { FIXTURE_IG_GADGETS, FIXTURE_METADATA, scratch } from './helpers/paths.js';

const run = promisify(execFile);
const INCLUDE = path.join(FIXTURE_IG_GADGETS, 'include');
const GADGETS = path.join(FIXTURE_IG_GADGETS, 'gadgets');

type Outcome = 'builds' | 'metadata-only' | 'go' | 'rust' | 'older-toolchain';

/** Why each of ig's gadgets builds here or not (the README lists the same). */
const EXPECTED: Record<string, Outcome> = {
  advise_networkpolicy: 'builds',
  audit_seccomp: 'builds',
  deadlock: 'go', // wasm: go/program.go (its eBPF also needs BPF_UPROBE, libbpf 1.2+)
  fsnotify: 'go', // wasm: go/program.go (its eBPF also needs 6-argument BPF_KPROBE, libbpf 1.2+)
  gpu_top_per_pid: 'builds',
  profile_cpu: 'builds', // its gadget.yaml has the run-time key "programs": a warning
  profile_qdisc_latency: 'builds',
  snapshot_file: 'builds',
  snapshot_socket: 'builds',
  top_blockio: 'builds',
  top_cuda_memory: 'older-toolchain', // BPF_UPROBE / BPF_URETPROBE
  top_process: 'metadata-only',
  trace_bind: 'builds',
  trace_dns: 'go',
  trace_fsslower: 'go',
  trace_init_module: 'builds',
  trace_lsm: 'builds',
  trace_mount: 'rust', // wasm: rust/src/lib.rs
  trace_open: 'builds',
  trace_sni: 'builds',
  trace_tcp: 'builds',
  trace_tcpretrans: 'builds',
  ttysnoop: 'builds',
};

const REASONS: Record<Exclude<Outcome, 'builds' | 'metadata-only'>, RegExp> = {
  go: /^error: building \S+\/go\/program\.go to wasm needs Go 1\.24 or newer \(GOOS=wasip1 with -buildmode=c-shared\), but go is not installed$/m,
  rust: /^error: building \S+\/rust\/src\/lib\.rs to wasm needs Rust 1\.78 or newer with the wasm32-wasip1 target, but (the wasm32-wasip1 target is not installed for rustc [\d.]+|cargo is not installed|rustc is not installed)$/m,
  'older-toolchain': /^error: clang could not compile \S+\/program\.bpf\.c for (amd64|arm64): it uses [A-Z_, ]+, which the libbpf headers here do not define: ig builds with clang 18 and libbpf 1\.3, this machine has clang 14[\d.]* and libbpf 1\.1 headers$/m,
};

const present = existsSync(GADGETS) && existsSync(CLI);
const why = !existsSync(GADGETS) ? `../shared/fixtures/ig-gadgets is absent (${GADGETS})` : `${CLI} is not built (npm run build)`;

/** What this machine can be expected to do (the table is for a machine without Go and wasm32-wasip1, with clang < 18). */
async function machine(): Promise<{ go: boolean; rustTarget: boolean; clangMajor: number }> {
  const go = Boolean(await findTool('go'));
  let rustTarget = false;
  const rustc = await findTool('rustc');
  if (rustc) {
    const sysroot = (await run(rustc, ['--print', 'sysroot']).catch(() => ({ stdout: '' }))).stdout.trim();
    rustTarget = sysroot !== '' && existsSync(path.join(sysroot, 'lib/rustlib/wasm32-wasip1'));
  }
  const clang = await findTool('clang');
  const version = clang ? (await run(clang, ['--version'])).stdout : '';
  return { go, rustTarget, clangMajor: Number(/clang version (\d+)/.exec(version)?.[1] ?? 0) };
}

async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

interface VerifyDoc {
  summary: { passed: boolean };
  images: Array<{ passed: boolean; findings: Array<{ rule: string; severity: string; message: string }> }>;
}

test("every ig gadget builds for amd64 and arm64 and verifies, or fails with its expected reason", { timeout: 30 * 60_000 }, async (t) => {
  if (!present) return t.skip(why);
  if (!(await findTool('clang'))) return t.skip('clang is not installed');
  const here = await machine();
  const folders = (await readdir(GADGETS, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  assert.deepEqual(folders, Object.keys(EXPECTED).sort(), 'the table lists every gadget folder of the fixture');
  const work = scratch('ig-gadgets-');
  const store = path.join(work, 'store');
  const env = { SOURCE_DATE_EPOCH: '1700000000', GADGET_STORE: store };
  const results = new Map<string, CliResult>();
  const verified = new Map<string, Record<'spec' | 'ig', CliResult>>();
  await pool(folders, 2, async (name) => {
    // A copy: the fixtures are never written to.
    await cp(path.join(GADGETS, name), path.join(work, name), { recursive: true });
    const ref = `ig.local/${name}:test`;
    const r = await gadget(['build', path.join(work, name), '-t', ref, '--include', INCLUDE], { env });
    results.set(name, r);
    if (r.code === 0) {
      const [spec, ig] = await Promise.all([gadget(['--json', 'verify', ref, '--profile', 'spec'], { env }), gadget(['--json', 'verify', ref, '--profile', 'ig'], { env })]);
      verified.set(name, { spec: spec!, ig: ig! });
    }
  });

  const summary: string[] = [];
  for (const name of folders) {
    const r = results.get(name)!;
    const want = EXPECTED[name]!;
    // The table is for this kind of machine; where a newer toolchain exists, say so and move on.
    if ((want === 'go' && here.go) || (want === 'rust' && here.rustTarget) || (want === 'older-toolchain' && here.clangMajor >= 18)) {
      t.diagnostic(`${name}: this machine has the toolchain the table says is missing; outcome not asserted (exit ${r.code})`);
      continue;
    }
    if (want === 'go' || want === 'rust' || want === 'older-toolchain') {
      assert.equal(r.code, 2, `${name}: exit 2 (environment)\n${r.stderr}`);
      assert.match(r.stderr, REASONS[want], `${name}: the ${want} reason\n${r.stderr}`);
      assert.equal(r.stderr.match(/^error: /gm)?.length, 1, `${name}: one error sentence`);
      assert.match(r.stderr, /^hint: /m);
      assert.doesNotMatch(r.stderr, /\n\s+at /, `${name}: no stack trace`);
      summary.push(`${name}: ${want}`);
      continue;
    }
    assert.equal(r.code, 0, `${name}: builds\n${r.stderr}`);
    for (const profile of ['spec', 'ig'] as const) {
      const v = verified.get(name)![profile];
      const doc = JSON.parse(v.stdout) as VerifyDoc;
      const findings = doc.images[0]!.findings;
      const errors = findings.filter((f) => f.severity === 'error');
      if (want === 'metadata-only' && profile === 'spec') {
        // The spec requires exactly one eBPF layer; ig runs metadata-only gadgets (the ig profile passes).
        assert.equal(v.code, 1, `${name}: spec profile`);
        assert.deepEqual([...new Set(errors.map((f) => f.rule))], ['GADGET-EBPF-COUNT'], `${name}: ${v.stdout}`);
        continue;
      }
      assert.equal(v.code, 0, `${name}: verify --profile ${profile}\n${v.stdout}`);
      assert.deepEqual(errors, [], name);
      assert.ok(!findings.some((f) => f.rule === 'GADGET-PLATFORM-SHARED' && f.severity !== 'notice'), 'a shared manifest is at most a notice');
      if (name === 'profile_cpu') assert.ok(findings.some((f) => f.rule === 'GADGET-METADATA-UNKNOWN-KEY' && /"programs"/.test(f.message) && f.severity === 'warning'), 'profile_cpu: programs is a warning');
    }
    summary.push(`${name}: ${want}`);
  }
  t.diagnostic(summary.join('; '));
});

test("every gadget.yaml of ig-gadget-metadata/ and of the ig-gadgets folders builds, its bytes unchanged", async (t) => {
  if (!existsSync(FIXTURE_METADATA) || !existsSync(GADGETS)) return t.skip('../shared/fixtures is absent');
  if (!existsSync(CLI)) return t.skip(`${CLI} is not built (npm run build)`);
  const work = scratch('ig-metadata-');
  const files: Array<{ name: string; file: string }> = [];
  for (const f of (await readdir(FIXTURE_METADATA)).filter((x) => x.endsWith('.yaml')).sort()) files.push({ name: `meta-${f.replace(/\.yaml$/, '')}`, file: path.join(FIXTURE_METADATA, f) });
  for (const d of (await readdir(GADGETS)).sort()) if (existsSync(path.join(GADGETS, d, 'gadget.yaml'))) files.push({ name: `folder-${d}`, file: path.join(GADGETS, d, 'gadget.yaml') });
  assert.ok(files.length >= 40, `${files.length} files`);
  // One project with every file as a metadata-only gadget, built in one run.
  const specs: string[] = [];
  for (const { name, file } of files) {
    await mkdir(path.join(work, name));
    await writeFile(path.join(work, name, 'gadget.yaml'), await readFile(file));
    specs.push(`{ dir: ${JSON.stringify(name)}, ref: ${JSON.stringify(`ig.local/${name}:v1`)} }`);
  }
  const index = path.join(path.dirname(CLI), '..', '..', 'index.ts');
  await writeFile(path.join(work, 'gadget.config.ts'), `import { defineConfig, build } from ${JSON.stringify(index)};\nexport default defineConfig({ store: 'store', concurrency: 2, gadgets: [${specs.join(',\n')}], tasks: { default: { steps: [build()] } } });\n`);
  const r = await gadget(['run', 'default'], { cwd: work });
  assert.equal(r.code, 0, r.stderr);
  const v = await gadget(['--json', 'verify', '--all', '--profile', 'ig'], { cwd: work });
  const doc = JSON.parse(v.stdout) as VerifyDoc;
  assert.equal(doc.images.length, files.length);
  assert.equal(v.code, 0, v.stdout);
  const store = await openStore(path.join(work, 'store'));
  try {
    for (const { name, file } of files) {
      const index = await store.readJSON<Index>(store.resolveRef(`ig.local/${name}:v1`));
      const manifest = await store.readJSON<Manifest>(index.manifests[0]!);
      assert.ok((await store.readBytes(manifest.config)).equals(await readFile(file)), `${name}: the config blob is the file's bytes`);
    }
  } finally {
    store.close();
  }
});

test("the README's `gadget build ig/gadgets/trace_open --include ig/include` gives one image from two checkouts of ig", { timeout: 5 * 60_000 }, async (t) => {
  if (!present) return t.skip(why);
  if (!(await findTool('clang'))) return t.skip('clang is not installed');
  const work = scratch('ig-two-checkouts-');
  const digests: string[] = [];
  for (const where of ['a', 'elsewhere/b']) {
    const checkout = path.join(work, where, 'ig');
    await mkdir(checkout, { recursive: true });
    await cp(INCLUDE, path.join(checkout, 'include'), { recursive: true });
    await cp(path.join(GADGETS, 'trace_open'), path.join(checkout, 'gadgets/trace_open'), { recursive: true });
    const store = path.join(work, `store-${digests.length}`);
    const r = await gadget(['--json', 'build', 'ig/gadgets/trace_open', '-t', 'trace_open', '--include', 'ig/include'], { cwd: path.join(work, where), env: { SOURCE_DATE_EPOCH: '1700000000', GADGET_STORE: store } });
    assert.equal(r.code, 0, r.stderr);
    digests.push((JSON.parse(r.stdout) as { descriptor: { digest: string } }).descriptor.digest);
    // The headers are named as ig's builder image has them, not by this checkout's path.
    const s = await openStore(store);
    try {
      const index = await s.readJSON<Index>(digests.at(-1)!);
      const manifest = await s.readJSON<Manifest>(index.manifests[0]!);
      const object = await s.readBytes(manifest.layers[0]!);
      assert.ok(object.includes('/usr/include/gadget/mntns.h'), 'mntns.h is named /usr/include/gadget/mntns.h');
      assert.ok(!object.includes(work), 'no path of the checkout is in the object');
    } finally {
      s.close();
    }
  }
  assert.equal(digests[0], digests[1], 'the same image wherever ig is checked out');
});
