// verify on images made by this project's own build from real tools (clang, wat2wasm,
// bpftool min_core_btf against /sys/kernel/btf/vmlinux), and on a corpus of broken images,
// each made here from the good one and each expected to raise its one rule.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { readTar } from '../lib/archive/tar.js';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { ANN_CREATED, ANN_SOURCE, ANN_TITLE, GADGET_BTFGEN, GADGET_EBPF, GADGET_WASM, MT_INDEX, MT_MANIFEST } from '../lib/oci/mediatypes.js';
import type { Descriptor, Index, Manifest } from '../lib/oci/types.js';
import type { PluginContext } from '../lib/runner/types.js';
import { buildGadget } from '../plugins/build.js';
import { multiarchInclude } from '../plugins/build/compile.js';
import { verifyArtifacts, verifyImages, type VerifyReport } from '../plugins/verify.js';
import { CONTENT_CAP } from '../plugins/verify/content.js';
import { formatReport } from '../plugins/verify/report.js';
import { IncompleteGraphError, openStore, type Store } from '../store/store.js';
import { CLI, gadget } from './helpers/cli.js';
import { quietContext } from './helpers/context.js';
import { REPO } from './helpers/paths.js';

const run = promisify(execFile);
const VMLINUX = '/sys/kernel/btf/vmlinux';
const GOOD = 'example.com/corpus/good:v1';
const ARCHS = ['amd64', 'arm64'] as const;
type Arch = (typeof ARCHS)[number];

const GADGET_YAML = [
  'name: trace open',
  'description: Trace the files that processes open',
  'homepageURL: https://example.com/trace_open',
  'documentationURL: https://example.com/trace_open/docs',
  'sourceURL: https://example.com/trace_open/src',
  '',
].join('\n');

const SIMPLE_BPF = `
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
SEC("tracepoint/syscalls/sys_enter_openat")
int trace_openat(void *ctx) { return 0; }
`;

let dir = '';
let store: Store | undefined;
let skipReason: string | undefined;
/** The good image, taken apart. */
const good = {
  index: undefined as unknown as Index,
  manifests: {} as Record<Arch, Manifest>,
  layer: {} as Record<Arch, Record<'ebpf' | 'wasm' | 'btfgen', Buffer>>,
  config: Buffer.alloc(0) as Buffer,
  btf: Buffer.alloc(0) as Buffer,
};
const objects: Record<'x86' | 'bpfeb', Buffer> = { x86: Buffer.alloc(0) as Buffer, bpfeb: Buffer.alloc(0) as Buffer };

async function readBlob(s: Store, digest: string): Promise<Buffer> {
  return s.readBytes(digest, 64 << 20);
}

before(async () => {
  if (!existsSync(VMLINUX)) {
    skipReason = `${VMLINUX} is absent: this kernel has no BTF for bpftool gen min_core_btf`;
    return;
  }
  dir = mkdtempSync(path.join(os.tmpdir(), 'gadget-verify-corpus-'));
  store = await openStore(path.join(dir, 'store'));

  // The gadget: examples/trace_open (CO-RE C), a wat2wasm module, a btfhub-like folder whose
  // kernel BTF is this machine's vmlinux (used for both architectures' folders).
  const g = path.join(dir, 'gadget');
  cpSync(path.join(REPO, 'examples', 'trace_open'), g, { recursive: true });
  writeFileSync(path.join(g, 'gadget.yaml'), GADGET_YAML);
  writeFileSync(path.join(g, 'program.wat'), '(module (func (export "gadgetAPIVersion") (result i64) i64.const 1))');
  await run('wat2wasm', [path.join(g, 'program.wat'), '-o', path.join(g, 'program.wasm')]);
  writeFileSync(path.join(g, 'build.yaml'), 'ebpfsource: program.bpf.c\nwasm: program.wasm\nmetadata: gadget.yaml\n');
  for (const folder of ['x86_64', 'arm64']) {
    const kernelDir = path.join(dir, 'btfhub', 'ubuntu', '22.04', folder);
    mkdirSync(kernelDir, { recursive: true });
    copyFileSync(VMLINUX, path.join(kernelDir, '5.15.0-1-generic.btf'));
  }
  const built = await buildGadget(quietContext(store, dir), { dir: g, ref: GOOD, btfhub: path.join(dir, 'btfhub') }, { noCache: true });

  good.index = JSON.parse((await readBlob(store, built.descriptor.digest)).toString()) as Index;
  for (const entry of good.index.manifests) {
    const arch = entry.platform!.architecture as Arch;
    const m = JSON.parse((await readBlob(store, entry.digest)).toString()) as Manifest;
    good.manifests[arch] = m;
    const layer = async (mt: string): Promise<Buffer> => {
      const d = m.layers.find((l) => l.mediaType === mt);
      assert.ok(d, `the built ${arch} manifest has no ${mt} layer`);
      return readBlob(store!, d.digest);
    };
    good.layer[arch] = { ebpf: await layer(GADGET_EBPF), wasm: await layer(GADGET_WASM), btfgen: await layer(GADGET_BTFGEN) };
    good.config = await readBlob(store, m.config.digest);
  }
  for await (const entry of readTar(await store.fetch({ mediaType: GADGET_BTFGEN, digest: good.manifests.amd64.layers[2]!.digest, size: good.manifests.amd64.layers[2]!.size }))) {
    const chunks: Buffer[] = [];
    for await (const c of entry.body) chunks.push(c as Buffer);
    if (entry.type === 'file' && !good.btf.length) good.btf = Buffer.concat(chunks);
  }

  writeFileSync(path.join(dir, 'simple.bpf.c'), SIMPLE_BPF);
  writeFileSync(path.join(dir, 'host.c'), 'int answer(void) { return 42; }\n');
  // <asm/types.h> lives in Debian's multiarch folder (as plugins/build/compile.ts finds it).
  const include = ['-I', await multiarchInclude()];
  await run('clang', ['-O2', '-g', '-target', 'bpfeb', ...include, '-c', path.join(dir, 'simple.bpf.c'), '-o', path.join(dir, 'be.o')]);
  await run('clang', ['-O2', '-target', 'x86_64-linux-gnu', '-c', path.join(dir, 'host.c'), '-o', path.join(dir, 'x86.o')]);
  objects.bpfeb = readFileSync(path.join(dir, 'be.o'));
  objects.x86 = readFileSync(path.join(dir, 'x86.o'));
});

after(() => {
  store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function corpusTest(name: string, fn: (t: TestContext, s: Store) => Promise<void>): void {
  test(name, async (t) => {
    if (skipReason || !store) {
      t.skip(skipReason ?? 'the good image could not be built');
      return;
    }
    await fn(t, store);
  });
}

// ---- making variants of the good image ---------------------------------------------------

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

async function put(s: Store, bytes: Buffer, mediaType: string): Promise<Descriptor> {
  const d = await s.putBytes(bytes, mediaType);
  return { mediaType, digest: d.digest, size: d.size };
}

function layerIndex(m: Manifest, mediaType: string): number {
  const i = m.layers.findIndex((l) => l.mediaType === mediaType);
  assert.ok(i >= 0);
  return i;
}

interface Variant {
  manifests: Record<Arch, Manifest>;
  /** Extra index entries (manifest descriptor with platform). */
  extra: Descriptor[];
  /** Replace the entries completely (after the manifests are stored). */
  entries?: (stored: Record<Arch, Descriptor>) => Descriptor[];
  /** Edit the JSON text of a manifest or of the index before it is stored (keys JSON.parse would merge). */
  manifestText?: Partial<Record<Arch, (json: string) => string>>;
  indexText?: (json: string) => string;
}

/** Stores a variant of the good image (edited by `edit`) and tags it; returns its reference. */
async function variant(s: Store, name: string, edit: (v: Variant) => Promise<void> | void): Promise<string> {
  const v: Variant = { manifests: clone(good.manifests), extra: [] };
  await edit(v);
  const stored = {} as Record<Arch, Descriptor>;
  for (const arch of ARCHS) {
    const json = encodeJSONBytes(v.manifests[arch]);
    stored[arch] = await put(s, v.manifestText?.[arch] ? Buffer.from(v.manifestText[arch](json.toString('utf8'))) : json, MT_MANIFEST);
  }
  const entries = v.entries
    ? v.entries(stored)
    : good.index.manifests.map((e) => ({ ...e, digest: stored[e.platform!.architecture as Arch].digest, size: stored[e.platform!.architecture as Arch].size }));
  const index: Index = { schemaVersion: 2, mediaType: MT_INDEX, manifests: [...entries, ...v.extra], annotations: good.index.annotations! };
  const indexJSON = encodeJSONBytes(index);
  const d = await put(s, v.indexText ? Buffer.from(v.indexText(indexJSON.toString('utf8'))) : indexJSON, MT_INDEX);
  const ref = `example.com/corpus/${name}:v1`;
  try {
    await s.tag(d, ref);
  } catch (err) {
    if (!(err instanceof IncompleteGraphError)) throw err;
    // The store refuses to tag a graph that is not whole; a damaged image is tagged as another
    // program (or a bad disk) would leave it: straight into index.json.
    const file = path.join(s.root, 'index.json');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as Index;
    doc.manifests.push({ ...d, annotations: { 'org.opencontainers.image.ref.name': ref } });
    writeFileSync(file, JSON.stringify(doc));
    s.refreshIfChanged();
  }
  return ref;
}

/** The index JSON text, parsed, edited and encoded again. */
function editJSON(json: string, edit: (index: Index) => void): string {
  const index = JSON.parse(json) as Index;
  edit(index);
  return encodeJSONBytes(index).toString('utf8');
}

async function replaceLayer(s: Store, m: Manifest, mediaType: string, bytes: Buffer): Promise<void> {
  m.layers[layerIndex(m, mediaType)] = await put(s, bytes, mediaType);
}

async function replaceConfig(s: Store, v: Variant, bytes: Buffer): Promise<Descriptor> {
  const d = await put(s, bytes, good.manifests.amd64.config.mediaType);
  for (const arch of ARCHS) v.manifests[arch].config = { ...v.manifests[arch].config, digest: d.digest, size: d.size };
  return d;
}

/** A ustar header; our tar writer refuses to write links and "..", so these are made by hand. */
function ustarHeader(name: string, size: number, typeflag: string, linkname = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(typeflag, 156);
  h.write(linkname, 157, 100);
  h.write('ustar\0' + '00', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

function gzTar(entries: Array<{ name: string; type?: string; link?: string; body?: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.body ?? Buffer.alloc(0);
    parts.push(ustarHeader(e.name, body.length, e.type ?? '0', e.link), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(parts));
}

async function verifyOne(s: Store, ref: string): Promise<VerifyReport> {
  const [report] = await verifyImages(s, [ref], { profile: 'spec' });
  return report!;
}

const errorRules = (r: VerifyReport): string[] => [...new Set(r.findings.filter((f) => f.severity === 'error').map((f) => f.rule))].sort();

// ---- the good image ------------------------------------------------------------------------

describe('images built by this project', () => {
  corpusTest('the build gives ebpf, wasm and btfgen layers for amd64 and arm64', async () => {
    assert.deepEqual(good.index.manifests.map((e) => `${e.platform!.os}/${e.platform!.architecture}`), ['linux/amd64', 'linux/arm64']);
    for (const arch of ARCHS) assert.deepEqual(good.manifests[arch].layers.map((l) => l.mediaType), [GADGET_EBPF, GADGET_WASM, GADGET_BTFGEN]);
    assert.equal(good.btf.readUInt16LE(0), 0xeb9f, 'the btfgen layer holds minimised BTF');
  });
  corpusTest('pass the spec profile with no finding at all', async (_t, s) => {
    const r = await verifyOne(s, GOOD);
    assert.equal(r.passed, true, formatReport(r).join('\n'));
    assert.deepEqual(r.findings, []);
  });
  corpusTest('pass the ig profile too', async (_t, s) => {
    const [r] = await verifyImages(s, [GOOD], { profile: 'ig' });
    assert.deepEqual(r!.findings, []);
  });
});

// ---- the corpus ------------------------------------------------------------------------------

interface Case {
  name: string;
  rule: string;
  make: (s: Store) => Promise<string>;
  /** Checks on the finding beyond its rule. */
  check?: (r: VerifyReport) => void;
}

const CASES: Case[] = [
  {
    name: 'truncated-elf', rule: 'GADGET-EBPF-ELF',
    make: (s) => variant(s, 'truncated-elf', (v) => replaceLayer(s, v.manifests.amd64, GADGET_EBPF, good.layer.amd64.ebpf.subarray(0, good.layer.amd64.ebpf.length >> 1))),
    check: (r) => assert.match(r.findings[0]!.message, /section header table .*outside the file/),
  },
  {
    name: 'x86-elf', rule: 'GADGET-EBPF-MACHINE',
    make: (s) => variant(s, 'x86-elf', (v) => replaceLayer(s, v.manifests.amd64, GADGET_EBPF, objects.x86)),
    check: (r) => assert.match(r.findings[0]!.message, /e_machine is 62 \(x86-64\)/),
  },
  {
    name: 'big-endian-elf', rule: 'GADGET-EBPF-ENDIAN',
    make: (s) => variant(s, 'big-endian-elf', (v) => replaceLayer(s, v.manifests.amd64, GADGET_EBPF, objects.bpfeb)),
    check: (r) => assert.equal(r.findings[0]!.path, '/manifests/0/layers/0'),
  },
  {
    name: 'empty-ebpf', rule: 'GADGET-LAYER-EMPTY',
    make: (s) => variant(s, 'empty-ebpf', (v) => replaceLayer(s, v.manifests.amd64, GADGET_EBPF, Buffer.alloc(0))),
  },
  {
    name: 'two-ebpf', rule: 'GADGET-EBPF-COUNT',
    make: (s) => variant(s, 'two-ebpf', async (v) => {
      v.manifests.amd64.layers.splice(1, 0, await put(s, good.layer.arm64.ebpf, GADGET_EBPF));
    }),
    check: (r) => assert.match(r.findings[0]!.message, /has 2 ebpf layers/),
  },
  {
    name: 'wasm-bad-magic', rule: 'GADGET-WASM-INVALID',
    make: (s) => variant(s, 'wasm-bad-magic', (v) => {
      const bad = Buffer.from(good.layer.amd64.wasm);
      bad[1] = 0x78;
      return replaceLayer(s, v.manifests.amd64, GADGET_WASM, bad);
    }),
  },
  {
    name: 'btfgen-dotdot', rule: 'GADGET-BTFGEN-UNSAFE',
    make: (s) => variant(s, 'btfgen-dotdot', (v) =>
      replaceLayer(s, v.manifests.amd64, GADGET_BTFGEN, gzTar([{ name: 'ubuntu/22.04/x86_64/../../../../escape.btf', body: good.btf }]))),
    check: (r) => assert.match(r.findings[0]!.message, /escape\.btf/),
  },
  {
    name: 'btfgen-symlink', rule: 'GADGET-BTFGEN-UNSAFE',
    make: (s) => variant(s, 'btfgen-symlink', (v) =>
      replaceLayer(s, v.manifests.amd64, GADGET_BTFGEN, gzTar([
        { name: 'ubuntu/22.04/x86_64/5.15.0-1-generic.btf', body: good.btf },
        { name: 'ubuntu/22.04/x86_64/5.15.0-2-generic.btf', type: '2', link: '/etc/passwd' },
      ]))),
    check: (r) => assert.match(r.findings[0]!.message, /symlink/),
  },
  {
    name: 'btf-no-magic', rule: 'GADGET-BTFGEN-BTF',
    make: (s) => variant(s, 'btf-no-magic', (v) =>
      replaceLayer(s, v.manifests.amd64, GADGET_BTFGEN, gzTar([{ name: 'ubuntu/22.04/x86_64/5.15.0-1-generic.btf', body: Buffer.from('this is not a BTF file, only some text') }]))),
  },
  {
    name: 'btfgen-wrong-arch', rule: 'GADGET-BTFGEN-ARCH',
    make: (s) => variant(s, 'btfgen-wrong-arch', (v) => replaceLayer(s, v.manifests.amd64, GADGET_BTFGEN, good.layer.arm64.btfgen)),
    check: (r) => assert.match(r.findings[0]!.message, /x86_64/),
  },
  {
    name: 'flipped-byte', rule: 'GADGET-BLOB-DIGEST',
    make: async (s) => {
      let config: Descriptor | undefined;
      const ref = await variant(s, 'flipped-byte', async (v) => {
        config = await replaceConfig(s, v, Buffer.concat([good.config, Buffer.from('# flipped-byte variant\n')]));
      });
      const file = s.blobPath(config!.digest);
      const bytes = readFileSync(file);
      bytes[0]! ^= 0x01;
      writeFileSync(file, bytes);
      return ref;
    },
    check: (r) => assert.equal(r.findings[0]!.path, '/manifests/0/config'),
  },
  {
    name: 'missing-blob', rule: 'GADGET-BLOB-MISSING',
    make: async (s) => {
      let config: Descriptor | undefined;
      const ref = await variant(s, 'missing-blob', async (v) => {
        config = await replaceConfig(s, v, Buffer.concat([good.config, Buffer.from('# missing-blob variant\n')]));
      });
      rmSync(s.blobPath(config!.digest));
      return ref;
    },
    check: (r) => {
      const f = r.findings[0]!;
      assert.ok(f.message.includes(f.digest), 'the message names the missing blob');
    },
  },
  {
    name: 'wrong-size', rule: 'GADGET-BLOB-SIZE',
    make: (s) => variant(s, 'wrong-size', (v) => {
      const i = layerIndex(v.manifests.amd64, GADGET_WASM);
      v.manifests.amd64.layers[i] = { ...v.manifests.amd64.layers[i]!, size: v.manifests.amd64.layers[i]!.size + 1 };
    }),
  },
  {
    name: 'no-created', rule: 'GADGET-ANNOTATION-MISSING',
    make: (s) => variant(s, 'no-created', (v) => {
      for (const arch of ARCHS) {
        delete v.manifests[arch].annotations![ANN_CREATED];
        delete v.manifests[arch].config.annotations![ANN_CREATED];
      }
    }),
    check: (r) => assert.match(r.findings[0]!.message, /lacks the annotation org\.opencontainers\.image\.created/),
  },
  {
    name: 'config-not-yaml', rule: 'GADGET-CONFIG-YAML',
    make: (s) => variant(s, 'config-not-yaml', async (v) => void (await replaceConfig(s, v, Buffer.from('name: [unclosed\ndescription: "x\n')))),
  },
  {
    name: 'third-platform', rule: 'GADGET-PLATFORM',
    make: (s) => variant(s, 'third-platform', async (v) => {
      // The same content under other bytes: its own manifest, for a platform gadgets do not run on.
      const m = await put(s, Buffer.from(JSON.stringify(v.manifests.arm64, null, 1)), MT_MANIFEST);
      v.extra.push({ ...m, annotations: good.index.manifests[1]!.annotations!, platform: { architecture: 'riscv64', os: 'linux' } });
    }),
    check: (r) => assert.match(r.findings[0]!.message, /linux\/riscv64/),
  },
  // ---- more rules, beyond the list
  {
    name: 'manifest-not-json', rule: 'GADGET-MANIFEST-INVALID',
    make: (s) => variant(s, 'manifest-not-json', async (v) => {
      const m = await put(s, Buffer.from('this is not a manifest'), MT_MANIFEST);
      v.entries = (stored) => [
        { ...m, annotations: good.index.manifests[0]!.annotations!, platform: { architecture: 'amd64', os: 'linux' } },
        { ...stored.arm64, annotations: good.index.manifests[1]!.annotations!, platform: { architecture: 'arm64', os: 'linux' } },
      ];
    }),
  },
  {
    name: 'unknown-layer', rule: 'GADGET-LAYER-TYPE',
    make: (s) => variant(s, 'unknown-layer', async (v) => void v.manifests.amd64.layers.push(await put(s, Buffer.from('hello'), 'application/octet-stream'))),
  },
  {
    name: 'no-artifact-type', rule: 'GADGET-ARTIFACT-TYPE-LEGACY',
    make: (s) => variant(s, 'no-artifact-type', (v) => {
      for (const arch of ARCHS) delete v.manifests[arch].artifactType;
    }),
  },
  {
    name: 'bad-created', rule: 'GADGET-CREATED-FORMAT',
    make: (s) => variant(s, 'bad-created', (v) => {
      for (const arch of ARCHS) v.manifests[arch].annotations![ANN_CREATED] = v.manifests[arch].config.annotations![ANN_CREATED] = 'Mon, 20 Oct 2025 14:06:44';
    }),
  },
  {
    name: 'title-disagrees', rule: 'GADGET-METADATA-ANNOTATIONS',
    make: (s) => variant(s, 'title-disagrees', (v) => {
      for (const arch of ARCHS) v.manifests[arch].annotations![ANN_TITLE] = 'something else';
    }),
    check: (r) => assert.match(r.findings[0]!.message, /"something else" but gadget\.yaml gives "trace open"/),
  },
  {
    name: 'metadata-schema', rule: 'GADGET-METADATA-SCHEMA',
    // A known key of the wrong type breaks ig's decoding (an unknown key is only a warning).
    make: (s) => variant(s, 'metadata-schema', async (v) => void (await replaceConfig(s, v, Buffer.from(`${GADGET_YAML}annotations: [a, b]\nhomepageUrl: https://example.com/typo\n`)))),
    check: (r) => {
      assert.match(r.findings[0]!.message, /annotations must be a mapping/);
      const typo = r.findings.find((f) => f.rule === 'GADGET-METADATA-UNKNOWN-KEY');
      assert.equal(typo, undefined, 'a file ig cannot decode reports its decoding error only');
    },
  },
  {
    // ig decodes with Go's encoding/json: the later "Manifests" is the list it runs, here an
    // x86 executable as the eBPF object, which JSON.parse (and so every other check) never sees.
    name: 'index-key-case', rule: 'GADGET-MANIFEST-INVALID',
    make: (s) => variant(s, 'index-key-case', async (v) => {
      const evil = clone(good.manifests.amd64);
      evil.layers[layerIndex(evil, GADGET_EBPF)] = await put(s, objects.x86, GADGET_EBPF);
      const hidden = await put(s, encodeJSONBytes(evil), MT_MANIFEST);
      const list = good.index.manifests.map((e) => ({ ...e, digest: hidden.digest, size: hidden.size }));
      v.indexText = (json) => `${json.slice(0, -1)},"Manifests":${JSON.stringify(list)}}`;
    }),
    check: (r) => {
      assert.equal(r.findings[0]!.path, '/');
      assert.match(r.findings[0]!.message, /holds both "manifests" and "Manifests" at \/, which ig \(Go's encoding\/json\) reads as one key/);
    },
  },
  {
    name: 'manifest-key-case', rule: 'GADGET-MANIFEST-INVALID',
    make: (s) => variant(s, 'manifest-key-case', async (v) => {
      const x86 = await put(s, objects.x86, GADGET_EBPF);
      const layers = v.manifests.arm64.layers.map((l) => (l.mediaType === GADGET_EBPF ? x86 : l));
      v.manifestText = { arm64: (json) => `${json.slice(0, -1)},"Layers":${JSON.stringify(layers)}}` };
    }),
    check: (r) => {
      assert.equal(r.findings[0]!.path, '/manifests/1');
      assert.match(r.findings[0]!.message, /holds both "layers" and "Layers" at \//);
    },
  },
  {
    // An escape spells the same key; the later one is the one both Go and JSON.parse keep.
    name: 'platform-duplicate-key', rule: 'GADGET-MANIFEST-INVALID',
    make: (s) => variant(s, 'platform-duplicate-key', (v) => {
      v.indexText = (json) => json.replace('"platform":{"architecture":"amd64",', '"platform":{"architecture":"amd64","\\u0061rchitecture":"arm64",');
    }),
    check: (r) => assert.match(r.findings[0]!.message, /holds the key "architecture" twice at \/manifests\/0\/platform/),
  },
  // The index and its entries carry the same annotations as the manifests (ig writes one map on
  // all four levels), and `gadget list` shows the index's: they are checked the same way.
  {
    name: 'index-title-disagrees', rule: 'GADGET-METADATA-ANNOTATIONS',
    make: (s) => variant(s, 'index-title-disagrees', (v) => {
      v.indexText = (json) => editJSON(json, (d) => void (d.annotations![ANN_TITLE] = 'official-ig-gadget'));
    }),
    check: (r) => {
      assert.deepEqual(r.findings.map((f) => f.path), ['/']);
      assert.match(r.findings[0]!.message, /^The index disagrees with gadget\.yaml: org\.opencontainers\.image\.title is "official-ig-gadget" but gadget\.yaml gives "trace open"\.$/);
    },
  },
  {
    name: 'entry-source-disagrees', rule: 'GADGET-METADATA-ANNOTATIONS',
    make: (s) => variant(s, 'entry-source-disagrees', (v) => {
      v.indexText = (json) => editJSON(json, (d) => void (d.manifests[1]!.annotations![ANN_SOURCE] = 'https://github.com/inspektor-gadget/inspektor-gadget'));
    }),
    check: (r) => {
      assert.deepEqual(r.findings.map((f) => f.path), ['/manifests/1']);
      assert.equal(r.findings[0]!.digest, r.digest, 'the entry is in the index');
      assert.match(r.findings[0]!.message, /^The index entry 1 \(linux\/arm64\) disagrees with gadget\.yaml: org\.opencontainers\.image\.source/);
    },
  },
  {
    name: 'index-bad-created', rule: 'GADGET-CREATED-FORMAT',
    make: (s) => variant(s, 'index-bad-created', (v) => {
      v.indexText = (json) => editJSON(json, (d) => {
        d.annotations![ANN_CREATED] = 'not a date';
        d.manifests[0]!.annotations![ANN_CREATED] = 'yesterday';
      });
    }),
    check: (r) => assert.deepEqual(r.findings.map((f) => `${f.path} ${f.message}`), [
      '/ The index has org.opencontainers.image.created "not a date", which is not an RFC 3339 date-time.',
      '/manifests/0 The index entry 0 (linux/amd64) has org.opencontainers.image.created "yesterday", which is not an RFC 3339 date-time.',
    ]),
  },
  {
    name: 'index-no-created', rule: 'GADGET-ANNOTATION-MISSING',
    make: (s) => variant(s, 'index-no-created', (v) => {
      v.indexText = (json) => editJSON(json, (d) => void delete d.annotations![ANN_CREATED]);
    }),
    check: (r) => assert.match(r.findings[0]!.message, /^The index lacks the annotation org\.opencontainers\.image\.created\.$/),
  },
  {
    name: 'duplicate-platform', rule: 'GADGET-PLATFORM-DUPLICATE',
    make: (s) => variant(s, 'duplicate-platform', async (v) => {
      const again = await put(s, Buffer.from(JSON.stringify(v.manifests.amd64, null, 1)), MT_MANIFEST);
      const annotations = good.index.manifests[0]!.annotations!;
      v.entries = (stored) => [{ ...stored.amd64, annotations, platform: { architecture: 'amd64', os: 'linux' } }, { ...again, annotations, platform: { architecture: 'amd64', os: 'linux' } }];
    }),
  },
];

describe('the broken-image corpus: each raises its one rule', () => {
  const made = new Map<string, string>();
  for (const c of CASES) {
    corpusTest(`${c.name}: ${c.rule}`, async (_t, s) => {
      const ref = await c.make(s);
      made.set(c.name, ref);
      const r = await verifyOne(s, ref);
      assert.equal(r.passed, false);
      assert.deepEqual(errorRules(r), [c.rule], formatReport(r).join('\n'));
      assert.equal(r.findings[0]!.rule, c.rule);
      for (const f of r.findings) {
        assert.match(f.message, /^\S[^\n]*[.)]$/, 'one sentence');
        assert.match(f.path, /^\/(manifests\/\d+(\/(config|layers\/\d+))?)?$/);
      }
      c.check?.(r);
    });
  }

  corpusTest('unknown gadget.yaml keys are a warning in both profiles, with the "did you mean"', async (_t, s) => {
    const ref = await variant(s, 'metadata-unknown-key', async (v) => void (await replaceConfig(s, v, Buffer.from(`${GADGET_YAML}descriptoin: typo\nprograms:\n  x: {}\n`))));
    for (const profile of ['spec', 'ig'] as const) {
      const r = (await verifyImages(s, [ref], { profile }))[0]!;
      assert.equal(r.passed, true, formatReport(r).join('\n'));
      const found = r.findings.filter((f) => f.rule === 'GADGET-METADATA-UNKNOWN-KEY');
      assert.ok(found.length >= 2 && found.every((f) => f.severity === 'warning'), formatReport(r).join('\n'));
      assert.ok(found.some((f) => /"descriptoin".*did you mean "description"/.test(f.message)), formatReport(r).join('\n'));
      assert.ok(found.some((f) => /"programs"/.test(f.message)));
    }
  });

  corpusTest('a wasm module without gadgetAPIVersion is a warning only', async (_t, s) => {
    const wasm = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    const ref = await variant(s, 'wasm-no-api', async (v) => {
      for (const arch of ARCHS) await replaceLayer(s, v.manifests[arch], GADGET_WASM, wasm);
    });
    const r = await verifyOne(s, ref);
    assert.equal(r.passed, true, formatReport(r).join('\n'));
    assert.deepEqual(r.findings.map((f) => f.rule), ['GADGET-WASM-API-VERSION', 'GADGET-WASM-API-VERSION']);
  });

  corpusTest('a wasm layer past the in-memory cap is hashed, not loaded: a warning', async (_t, s) => {
    const big = Buffer.alloc(CONTENT_CAP.wasm + 1, 0x2a);
    good.layer.amd64.wasm.copy(big);
    const ref = await variant(s, 'wasm-too-large', (v) => replaceLayer(s, v.manifests.amd64, GADGET_WASM, big));
    const r = await verifyOne(s, ref);
    assert.equal(r.passed, true, formatReport(r).join('\n'));
    assert.deepEqual(r.findings.map((f) => `${f.rule} ${f.path}`), ['GADGET-CONTENT-SKIPPED /manifests/0/layers/1']);
    // Its digest is still checked: a flipped byte in the big blob is found.
    const file = s.blobPath(`sha256:${createHash('sha256').update(big).digest('hex')}`);
    const bytes = readFileSync(file);
    bytes[bytes.length - 1]! ^= 0x01;
    writeFileSync(file, bytes);
    assert.deepEqual(errorRules(await verifyOne(s, ref)), ['GADGET-BLOB-DIGEST']);
  });

  corpusTest('a single manifest (no index) gets every content check that does not need its platform', async (_t, s) => {
    const single = async (name: string, edit: (m: Manifest) => Promise<void>): Promise<VerifyReport> => {
      const m = clone(good.manifests.amd64);
      await edit(m);
      const d = await put(s, encodeJSONBytes(m), MT_MANIFEST);
      const ref = `example.com/corpus/${name}:v1`;
      await s.tag(d, ref);
      return (await verifyImages(s, [ref], { profile: 'ig' }))[0]!;
    };
    // The good content passes: GADGET-INDEX (a warning here) alone, no arch folder is judged.
    const fine = await single('single-good', async () => {});
    assert.deepEqual(fine.findings.map((f) => `${f.severity} ${f.rule}`), ['warning GADGET-INDEX'], formatReport(fine).join('\n'));
    // A shell script as the eBPF object, an x86 object, and a btfgen tar with ".." and a symlink.
    const script = await single('single-script', (m) => replaceLayer(s, m, GADGET_EBPF, Buffer.from('#!/bin/sh\nrm -rf /\n')));
    assert.deepEqual(errorRules(script), ['GADGET-EBPF-ELF'], formatReport(script).join('\n'));
    assert.equal(script.findings[0]!.path, '/layers/0');
    const x86 = await single('single-x86', (m) => replaceLayer(s, m, GADGET_EBPF, objects.x86));
    assert.deepEqual(errorRules(x86), ['GADGET-EBPF-MACHINE'], formatReport(x86).join('\n'));
    const tar = await single('single-btfgen', (m) => replaceLayer(s, m, GADGET_BTFGEN, gzTar([
      { name: '../../etc/evil.btf', body: good.btf },
      { name: 'link', type: '2', link: '/etc/passwd' },
    ])));
    assert.deepEqual(errorRules(tar), ['GADGET-BTFGEN-UNSAFE'], formatReport(tar).join('\n'));
    assert.equal(tar.findings.filter((f) => f.rule === 'GADGET-BTFGEN-UNSAFE').length, 2);
    // The config descriptor's platform, when it names one, is the manifest's: arm64 with x86_64 BTF.
    const arm = await single('single-arm64', async (m) => void (m.config = { ...m.config, platform: { architecture: 'arm64', os: 'linux' } }));
    assert.deepEqual(errorRules(arm), ['GADGET-BTFGEN-ARCH'], formatReport(arm).join('\n'));
    assert.match(arm.findings.find((f) => f.rule === 'GADGET-BTFGEN-ARCH')!.message, /^The arm64 btfgen layer: .*"x86_64" folder/);
  });

  corpusTest('hostile documents: wrong JSON types and unusable digests are findings, not crashes', async (_t, s) => {
    // Written straight into the layout and verified untagged: the store's own indexer is not
    // what is tested here.
    const raw = (value: unknown, mediaType: string): Descriptor => {
      const bytes = Buffer.from(JSON.stringify(value));
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      writeFileSync(s.blobPath(digest), bytes);
      return { mediaType, digest, size: bytes.length };
    };
    const verifyRaw = async (index: Descriptor): Promise<VerifyReport> => (await verifyArtifacts(s, [{ ref: index.digest, descriptor: index }], { profile: 'spec' }))[0]!;
    const config = good.manifests.amd64.config;
    const docs: Array<{ doc: unknown; rules: string[] }> = [
      { doc: [], rules: ['GADGET-MANIFEST-INVALID'] },
      { doc: { schemaVersion: 2, config: null, layers: [] }, rules: ['GADGET-MANIFEST-INVALID'] },
      {
        doc: {
          schemaVersion: 2, artifactType: good.manifests.amd64.artifactType, config,
          layers: [null, { mediaType: 5 }, { mediaType: GADGET_EBPF, digest: 'sha256:../../../etc/passwd', size: 1 }, { mediaType: GADGET_WASM, digest: config.digest, size: -1 }],
          annotations: good.manifests.amd64.annotations,
        },
        rules: ['GADGET-DESCRIPTOR', 'GADGET-EBPF-COUNT'],
      },
      { doc: { schemaVersion: 2, artifactType: 7, config: { ...config, annotations: ['x'] }, layers: good.manifests.amd64.layers, annotations: 'none' }, rules: ['GADGET-ANNOTATION-MISSING', 'GADGET-ARTIFACT-TYPE'] },
    ];
    for (const { doc, rules } of docs) {
      const m = raw(doc, MT_MANIFEST);
      const annotations = good.index.annotations!;
      const r = await verifyRaw(raw({ schemaVersion: 2, mediaType: MT_INDEX, manifests: [{ ...m, annotations, platform: { architecture: 'amd64', os: 'linux' } }], annotations }, MT_INDEX));
      assert.deepEqual(errorRules(r), rules, formatReport(r).join('\n'));
    }
    // The index itself: entries that are not descriptors, and a digest that would leave the store.
    const r = await verifyRaw(raw({ schemaVersion: 2, mediaType: MT_INDEX, manifests: [null, 5, { mediaType: MT_MANIFEST, digest: 'sha256:../../../etc/passwd', size: 1 }], annotations: good.index.annotations }, MT_INDEX));
    assert.deepEqual(errorRules(r), ['GADGET-DESCRIPTOR']);
    assert.equal(r.findings.length, 3);
    // A root descriptor that is not one.
    const bad = await verifyArtifacts(s, [{ ref: 'example.com/corpus/bad-root:v1', descriptor: { mediaType: MT_INDEX, digest: 'sha256:nothex', size: 2 } }]);
    assert.deepEqual(errorRules(bad[0]!), ['GADGET-DESCRIPTOR']);
  });

  corpusTest('the whole store at once: no crash, every image gets its result', async (_t, s) => {
    const reports = await verifyImages(s, 'all', { profile: 'spec' });
    assert.ok(reports.length >= CASES.length + 1);
    assert.equal(reports.find((r) => r.ref === GOOD)?.passed, true);
    for (const c of CASES) {
      const ref = made.get(c.name);
      if (ref) assert.deepEqual(errorRules(reports.find((r) => r.ref === ref)!), [c.rule], c.name);
    }
  });

  corpusTest('through the command line: exit codes, the rule, no stack trace', async (t, s) => {
    assert.ok(existsSync(CLI), `${CLI} is not built (npm run build)`);
    const storeDir = s.root;
    const probe = await gadget(['--store', storeDir, 'verify', GOOD]);
    assert.doesNotMatch(probe.stderr, /unknown command "verify"/, '`verify` must be registered in cli/gadget.ts: a missing command is a failure, not a skip');
    assert.equal(probe.code, 0, probe.stdout + probe.stderr);
    assert.match(probe.stdout, /^PASS {2}example\.com\/corpus\/good:v1 {2}sha256:[a-f0-9]{64}\n$/);
    for (const name of ['truncated-elf', 'btfgen-symlink', 'flipped-byte', 'missing-blob', 'config-not-yaml', 'manifest-not-json']) {
      const c = CASES.find((x) => x.name === name)!;
      const ref = made.get(name);
      if (!ref) continue;
      const r = await gadget(['--store', storeDir, 'verify', ref]);
      assert.equal(r.code, 1, `${name}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^FAIL  ${ref.replace(/[.]/g, '\\.')}  sha256:`));
      assert.match(r.stdout, new RegExp(`^  error {4}${c.rule}  /`, 'm'));
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      const json = await gadget(['--store', storeDir, '--json', 'verify', ref]);
      assert.equal(json.code, 1);
      const doc = JSON.parse(json.stdout) as { images: VerifyReport[] };
      assert.deepEqual(errorRules(doc.images[0]!), [c.rule]);
    }
  });
});
