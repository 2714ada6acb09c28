// Content checkers against real inputs: eBPF objects from clang, wasm from wat2wasm, BTF
// minimised by bpftool, tarballs from our tar writer (and hand-made headers for the entries
// it refuses to write).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { writeTar, type TarInput } from '../lib/archive/tar.js';
import { checkBtfFile, checkBtfTarball } from '../lib/content/btf.js';
import { checkEbpfElf, elfSummary } from '../lib/content/elf.js';
import { hasContentErrors, type ContentProblem } from '../lib/content/problem.js';
import { checkWasm } from '../lib/content/wasm.js';

const run = promisify(execFile);
const VMLINUX = '/sys/kernel/btf/vmlinux';
const MULTIARCH = '/usr/include/x86_64-linux-gnu';

function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin'];
  return dirs.map((d) => path.join(d, name)).find((p) => p.startsWith('/') && existsSync(p));
}

const codes = (problems: ContentProblem[]): string[] => problems.map((p) => p.code);

let dir = '';
const bin: Record<string, Buffer> = {};
let btf: Buffer | undefined; // undefined when the kernel has no BTF to minimise

const SIMPLE_BPF = `
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
SEC("tracepoint/syscalls/sys_enter_openat")
int trace_openat(void *ctx) { return 0; }
`;

// CO-RE: reading task->real_parent->tgid records relocations that min_core_btf keeps.
const CORE_BPF = `
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
char LICENSE[] SEC("license") = "GPL";
SEC("tracepoint/syscalls/sys_enter_execve")
int trace_execve(void *ctx) {
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  int ppid = BPF_CORE_READ(task, real_parent, tgid);
  bpf_printk("ppid %d", ppid);
  return 0;
}
`;

const WAT_WITH_VERSION = '(module (func (export "gadgetAPIVersion") (result i64) i64.const 1))';
const WAT_WITHOUT_VERSION = '(module (func (export "gadgetStart") (result i32) i32.const 0))';
const WAT_VERSION_AS_GLOBAL = '(module (global (export "gadgetAPIVersion") i64 (i64.const 1)))';
// Valid text, invalid module (wrong result type): wat2wasm writes it only with --no-check.
const WAT_INVALID = '(module (func (result i32) i64.const 1))';

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gadget-content-'));
  const clang = ['-O2', '-I', MULTIARCH, '-c'];
  await writeFile(path.join(dir, 'simple.bpf.c'), SIMPLE_BPF);
  await run('clang', [...clang, '-g', '-target', 'bpf', path.join(dir, 'simple.bpf.c'), '-o', path.join(dir, 'le.o')]);
  await run('clang', [...clang, '-g', '-target', 'bpfeb', path.join(dir, 'simple.bpf.c'), '-o', path.join(dir, 'be.o')]);
  await run('clang', [...clang, '-target', 'bpf', path.join(dir, 'simple.bpf.c'), '-o', path.join(dir, 'nobtf.o')]);
  await writeFile(path.join(dir, 'host.c'), 'int answer(void) { return 42; }\n');
  await run('clang', ['-O2', '-c', path.join(dir, 'host.c'), '-o', path.join(dir, 'x86.o')]);
  for (const name of ['le', 'be', 'nobtf', 'x86']) bin[name] = await readFile(path.join(dir, `${name}.o`));

  const wasm = async (name: string, wat: string, extra: string[] = []): Promise<void> => {
    await writeFile(path.join(dir, `${name}.wat`), wat);
    await run('wat2wasm', [...extra, path.join(dir, `${name}.wat`), '-o', path.join(dir, `${name}.wasm`)]);
    bin[`${name}.wasm`] = await readFile(path.join(dir, `${name}.wasm`));
  };
  await wasm('version', WAT_WITH_VERSION);
  await wasm('noversion', WAT_WITHOUT_VERSION);
  await wasm('global', WAT_VERSION_AS_GLOBAL);
  await wasm('invalid', WAT_INVALID, ['--no-check']);

  const bpftool = findTool('bpftool');
  if (bpftool && existsSync(VMLINUX)) {
    const { stdout } = await run(bpftool, ['btf', 'dump', 'file', VMLINUX, 'format', 'c'], { maxBuffer: 64 * 1024 * 1024 });
    await writeFile(path.join(dir, 'vmlinux.h'), stdout);
    await writeFile(path.join(dir, 'core.bpf.c'), CORE_BPF);
    await run('clang', [...clang, '-g', '-target', 'bpf', '-D__TARGET_ARCH_x86', path.join(dir, 'core.bpf.c'), '-o', path.join(dir, 'core.o')]);
    await run(bpftool, ['gen', 'min_core_btf', VMLINUX, path.join(dir, 'min.btf'), path.join(dir, 'core.o')]);
    bin.core = await readFile(path.join(dir, 'core.o'));
    btf = await readFile(path.join(dir, 'min.btf'));
  }
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A copy of `buf` with `edit` applied. */
function patched(buf: Buffer, edit: (b: Buffer) => void): Buffer {
  const copy = Buffer.from(buf);
  edit(copy);
  return copy;
}

describe('eBPF ELF objects', () => {
  test('a clang -target bpf object with BTF has no problems and is summarised', () => {
    assert.deepEqual(checkEbpfElf(bin.le!, 'amd64'), []);
    assert.deepEqual(checkEbpfElf(bin.le!, 'arm64'), []);
    const summary = elfSummary(bin.le!);
    assert.equal(summary.class, 'ELF64');
    assert.equal(summary.endianness, 'little');
    assert.equal(summary.machine, 247);
    assert.equal(summary.machineName, 'eBPF');
    assert.equal(summary.type, 1);
    assert.equal(summary.typeName, 'REL');
    assert.ok(summary.sections.includes('tracepoint/syscalls/sys_enter_openat'), summary.sections.join(','));
    assert.ok(summary.sections.includes('license'));
    assert.ok(summary.sections.includes('.BTF'));
  });

  test('a CO-RE object with relocations is accepted', (t) => {
    if (!bin.core) return t.skip('bpftool or /sys/kernel/btf/vmlinux is missing');
    assert.deepEqual(checkEbpfElf(bin.core, 'amd64'), []);
    assert.ok(elfSummary(bin.core).sections.includes('.BTF.ext'));
  });

  test('a big-endian object (-target bpfeb) is flagged, and only for its byte order', () => {
    const problems = checkEbpfElf(bin.be!, 'amd64');
    assert.deepEqual(codes(problems), ['ELF-ENDIAN']);
    assert.match(problems[0]!.message, /big-endian.*amd64/);
    // The platform not known: the same check, the message names both.
    assert.deepEqual(codes(checkEbpfElf(bin.be!, undefined)), ['ELF-ENDIAN']);
    assert.match(checkEbpfElf(bin.be!, undefined)[0]!.message, /amd64 and arm64 run little-endian eBPF/);
    assert.equal(elfSummary(bin.be!).endianness, 'big');
    assert.equal(elfSummary(bin.be!).machine, 247);
  });

  test('a host (x86-64) object is not eBPF', () => {
    const problems = checkEbpfElf(bin.x86!, 'amd64');
    assert.ok(codes(problems).includes('ELF-MACHINE'), JSON.stringify(problems));
    assert.match(problems.find((p) => p.code === 'ELF-MACHINE')!.message, /62 \(x86-64\).*247/);
  });

  test('an object without -g only warns that BTF is missing', () => {
    const problems = checkEbpfElf(bin.nobtf!, 'amd64');
    assert.deepEqual(codes(problems), ['ELF-NO-BTF']);
    assert.equal(hasContentErrors(problems), false);
  });

  test('broken headers: magic, class, type, truncation', () => {
    assert.deepEqual(codes(checkEbpfElf(patched(bin.le!, (b) => (b[1] = 0x46)), 'amd64')), ['ELF-MAGIC']);
    assert.deepEqual(codes(checkEbpfElf(Buffer.alloc(0), 'amd64')), ['ELF-MAGIC']);
    assert.deepEqual(codes(checkEbpfElf(bin['version.wasm']!, 'amd64')), ['ELF-MAGIC']);
    assert.deepEqual(codes(checkEbpfElf(patched(bin.le!, (b) => (b[4] = 1)), 'amd64')), ['ELF-CLASS']);
    assert.deepEqual(codes(checkEbpfElf(patched(bin.le!, (b) => b.writeUInt16LE(2, 16)), 'amd64')), ['ELF-TYPE']);
    assert.deepEqual(codes(checkEbpfElf(bin.le!.subarray(0, 40), 'amd64')), ['ELF-TRUNCATED']);
    assert.deepEqual(codes(checkEbpfElf(bin.le!.subarray(0, 10), 'amd64')), ['ELF-TRUNCATED']);
  });

  test('section tables and sections outside the file', () => {
    // The section header table sits at the end of a clang object: cutting the file loses it.
    const cut = checkEbpfElf(bin.le!.subarray(0, bin.le!.length - 100), 'amd64');
    assert.deepEqual(codes(cut), ['ELF-SECTIONS']);
    assert.match(cut[0]!.message, /section header table .* lies outside the file/);

    const shoff = Number(bin.le!.readBigUInt64LE(40));
    const shnum = bin.le!.readUInt16LE(60);
    // Move the data of section 1 past the end of the file.
    const moved = patched(bin.le!, (b) => b.writeBigUInt64LE(BigInt(b.length + 4096), shoff + 64 + 24));
    const problems = checkEbpfElf(moved, 'amd64');
    assert.ok(codes(problems).includes('ELF-SECTIONS'), JSON.stringify(problems));
    assert.match(problems.find((p) => p.code === 'ELF-SECTIONS')!.message, /section 1 .* lies outside the file/);

    assert.deepEqual(codes(checkEbpfElf(patched(bin.le!, (b) => b.writeUInt16LE(shnum + 5, 62)), 'amd64')), ['ELF-SHSTRNDX']);
    assert.deepEqual(codes(checkEbpfElf(patched(bin.le!, (b) => b.writeBigUInt64LE(0n, 40)), 'amd64')), ['ELF-SECTIONS']);
    assert.deepEqual(codes(checkEbpfElf(patched(bin.le!, (b) => b.writeUInt16LE(40, 58)), 'amd64')), ['ELF-SECTIONS']);
    // An absurd offset (beyond 2^53) is outside any file, not a crash.
    assert.deepEqual(codes(checkEbpfElf(patched(bin.le!, (b) => b.writeBigUInt64LE(2n ** 63n, 40)), 'amd64')), ['ELF-SECTIONS']);
  });
});

describe('wasm modules', () => {
  test('a module exporting gadgetAPIVersion() has no problems', () => {
    assert.deepEqual(checkWasm(bin['version.wasm']!), []);
  });

  test('a module without gadgetAPIVersion gets a warning, not an error', () => {
    const problems = checkWasm(bin['noversion.wasm']!);
    assert.deepEqual(codes(problems), ['WASM-API-VERSION']);
    assert.equal(problems[0]!.severity, 'warning');
    assert.equal(hasContentErrors(problems), false);
    const global = checkWasm(bin['global.wasm']!);
    assert.deepEqual(codes(global), ['WASM-API-VERSION']);
    assert.match(global[0]!.message, /as a global/);
  });

  test('an invalid module and non-wasm bytes are errors', () => {
    const invalid = checkWasm(bin['invalid.wasm']!);
    assert.deepEqual(codes(invalid), ['WASM-INVALID']);
    assert.equal(invalid[0]!.severity, 'error');
    assert.deepEqual(codes(checkWasm(bin.le!)), ['WASM-MAGIC']);
    assert.deepEqual(codes(checkWasm(Buffer.from('\0as'))), ['WASM-MAGIC']);
    assert.deepEqual(codes(checkWasm(patched(bin['version.wasm']!, (b) => (b[4] = 2)))), ['WASM-MAGIC']);
    // A module cut in the middle of its code section.
    assert.deepEqual(codes(checkWasm(bin['version.wasm']!.subarray(0, bin['version.wasm']!.length - 3))), ['WASM-INVALID']);
  });
});

// ---------------------------------------------------------------- BTF

/** A 512-byte ustar header, for the entries writeTar refuses to write. */
function ustarHeader(name: string, size: number, typeflag: string, linkname = ''): Buffer {
  const h = Buffer.alloc(512);
  const octal = (v: number, width: number): string => v.toString(8).padStart(width - 1, '0') + '\0';
  h.write(name, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(0, 12), 136);
  h.write('        ', 148);
  h.write(typeflag, 156);
  h.write(linkname, 157, 100, 'utf8');
  h.write('ustar\0' + '00', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148);
  return h;
}

/** A hand-made tar of raw entries (headers with their padded bodies), with the end marker. */
function rawTar(entries: { name: string; type?: string; link?: string; body?: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.body ?? Buffer.alloc(0);
    parts.push(ustarHeader(e.name, body.length, e.type ?? '0', e.link));
    parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

async function tarBytes(entries: TarInput[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of writeTar(entries)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function btfhubEntries(arch: string, blob: Buffer): TarInput[] {
  return [
    { path: 'ubuntu', type: 'directory' },
    { path: 'ubuntu/22.04', type: 'directory' },
    { path: `ubuntu/22.04/${arch}`, type: 'directory' },
    { path: `ubuntu/22.04/${arch}/5.15.0-91-generic.btf`, content: blob },
    { path: `debian/12/${arch}/6.1.0-17-cloud-amd64.btf`, content: blob },
  ];
}

describe('BTF files and btfgen tarballs', () => {
  test('bpftool min_core_btf output is valid BTF; so is the kernel BTF', async (t) => {
    if (!btf) return t.skip('bpftool or /sys/kernel/btf/vmlinux is missing');
    assert.deepEqual(checkBtfFile(btf), []);
    assert.deepEqual(checkBtfFile(await readFile(VMLINUX)), []);
  });

  test('broken BTF blobs', (t) => {
    if (!btf) return t.skip('bpftool or /sys/kernel/btf/vmlinux is missing');
    assert.deepEqual(codes(checkBtfFile(bin.le!)), ['BTF-MAGIC']);
    assert.deepEqual(codes(checkBtfFile(Buffer.alloc(0))), ['BTF-MAGIC']);
    assert.deepEqual(codes(checkBtfFile(patched(btf, (b) => b.writeUInt16BE(0xeb9f, 0)))), ['BTF-ENDIAN']);
    assert.deepEqual(codes(checkBtfFile(btf.subarray(0, 10))), ['BTF-TRUNCATED']);
    assert.deepEqual(codes(checkBtfFile(btf.subarray(0, btf.length - 8))), ['BTF-TRUNCATED']);
    assert.deepEqual(codes(checkBtfFile(patched(btf, (b) => (b[2] = 9)))), ['BTF-VERSION']);
  });

  test('a btfhub-style gzip tarball passes for its architecture only', async (t) => {
    if (!btf) return t.skip('bpftool or /sys/kernel/btf/vmlinux is missing');
    const amd = gzipSync(await tarBytes(btfhubEntries('x86_64', btf)));
    assert.deepEqual(await checkBtfTarball(Readable.from([amd]), 'amd64'), []);
    const wrong = await checkBtfTarball(Readable.from([amd]), 'arm64');
    assert.ok(wrong.length >= 2 && wrong.every((p) => p.code === 'BTF-ARCH'), JSON.stringify(wrong));
    assert.match(wrong[0]!.message, /"x86_64" folder.*arm64/);

    const arm = await tarBytes(btfhubEntries('arm64', btf)); // plain tar, no gzip
    assert.deepEqual(await checkBtfTarball(Readable.from([arm]), 'arm64'), []);

    // The platform not known (a single manifest): either folder passes, the rest is checked.
    assert.deepEqual(await checkBtfTarball(Readable.from([amd]), undefined), []);
    assert.deepEqual(await checkBtfTarball(Readable.from([arm]), undefined), []);
    const bad = gzipSync(await tarBytes([{ path: 'ubuntu/22.04/arm64/5.15.btf', content: Buffer.from('not BTF') }]));
    assert.deepEqual(codes(await checkBtfTarball(Readable.from([bad]), undefined)), ['BTF-MAGIC']);
    const empty = await checkBtfTarball(Readable.from([await tarBytes([])]), undefined);
    assert.deepEqual(codes(empty), ['BTF-EMPTY']);
    assert.match(empty[0]!.message, /holds no BTF file/);
  });

  test('a large entry is streamed through in small chunks', async (t) => {
    if (!btf) return t.skip('bpftool or /sys/kernel/btf/vmlinux is missing');
    const size = 8 * 1024 * 1024;
    const entries: TarInput[] = [
      {
        path: 'big/1/x86_64/huge.btf',
        size,
        open: () =>
          Readable.from(
            (function* () {
              yield btf!;
              for (let left = size - btf!.length; left > 0; left -= 65536) yield Buffer.alloc(Math.min(65536, left));
            })(),
          ),
      },
    ];
    const gz = gzipSync(await tarBytes(entries));
    // Feed the gzip in 4 KiB pieces, as a file or socket would.
    const pieces = Array.from({ length: Math.ceil(gz.length / 4096) }, (_, i) => gz.subarray(i * 4096, (i + 1) * 4096));
    assert.deepEqual(await checkBtfTarball(Readable.from(pieces), 'amd64'), []);
  });

  test('wrong layouts and non-BTF files', async (t) => {
    if (!btf) return t.skip('bpftool or /sys/kernel/btf/vmlinux is missing');
    const tar = await tarBytes([
      { path: 'flat.btf', content: btf },
      { path: 'ubuntu/22.04/x86_64/kernel.txt', content: btf },
      { path: 'ubuntu/22.04/x86_64/extra/deep.btf', content: btf },
      { path: 'ubuntu/22.04/x86_64/extra/more', type: 'directory' },
      { path: 'ubuntu/22.04/x86_64/elf.btf', content: bin.le! },
    ]);
    const problems = await checkBtfTarball(Readable.from([tar]), 'amd64');
    assert.deepEqual(codes(problems), ['BTF-FLAT', 'BTF-PATH', 'BTF-PATH', 'BTF-PATH', 'BTF-MAGIC']);
    assert.equal(problems[0]!.severity, 'warning', 'a flat <kernel>.btf (as ig packs a flat folder) is a warning');
    assert.match(problems[0]!.message, /"flat.btf" is at the top of the tarball, not at <distro>\/<version>\/<arch>\/<kernel>\.btf/);
    assert.match(problems[4]!.message, /elf\.btf/);
  });

  test("ig's own tarballs (`tar czf - -C dir .`): the ./ entry is fine, a flat ./<kernel>.btf is a warning", async (t) => {
    if (!btf) return t.skip('bpftool or /sys/kernel/btf/vmlinux is missing');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'btfgen-ig-'));
    try {
      const { mkdir } = await import('node:fs/promises');
      await mkdir(path.join(dir, 'full/ubuntu/22.04/x86_64'), { recursive: true });
      await writeFile(path.join(dir, 'full/ubuntu/22.04/x86_64/5.15.0-1-generic.btf'), btf);
      await mkdir(path.join(dir, 'flat'));
      await writeFile(path.join(dir, 'flat/5.15.0-1-generic.btf'), btf);
      // The real tar, run as ig's Makefile runs it (its first entry is "./").
      const pack = async (sub: string): Promise<Buffer> => (await run('tar', ['czf', '-', '-C', path.join(dir, sub), '.'], { encoding: 'buffer' })).stdout;
      const full = await pack('full');
      assert.deepEqual(await checkBtfTarball(Readable.from([full]), 'amd64'), []);
      const flat = await checkBtfTarball(Readable.from([await pack('flat')]), 'amd64');
      assert.deepEqual(codes(flat), ['BTF-FLAT']);
      assert.equal(hasContentErrors(flat), false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('unsafe entries: "..", absolute paths, links and devices', async (t) => {
    if (!btf) return t.skip('bpftool or /sys/kernel/btf/vmlinux is missing');
    const tar = rawTar([
      { name: '../x.btf', body: btf },
      { name: 'ubuntu/../../x86_64/k.btf', body: btf },
      { name: '/etc/ubuntu/22.04/x86_64/k.btf', body: btf },
      { name: 'ubuntu/22.04/x86_64/link.btf', type: '2', link: '/etc/shadow' },
      { name: 'ubuntu/22.04/x86_64/hard.btf', type: '1', link: 'ubuntu/22.04/x86_64/k.btf' },
      { name: 'ubuntu/22.04/x86_64/dev.btf', type: '3' },
      // An unknown entry type with a body: it must be skipped cleanly, the next entry read.
      { name: 'ubuntu/22.04/x86_64/odd.btf', type: 'Z', body: Buffer.alloc(3000, 0x5a) },
      { name: 'ubuntu/22.04/x86_64/ok.btf', body: btf },
      { name: 'ubuntu/22.04/x86_64/last.btf', body: bin.le! },
    ]);
    const problems = await checkBtfTarball(Readable.from([gzipSync(tar)]), 'amd64');
    assert.deepEqual(codes(problems), [...Array(7).fill('BTF-UNSAFE'), 'BTF-MAGIC']);
    assert.match(problems[0]!.message, /"\.\.\/x\.btf".*outside/);
    assert.match(problems[3]!.message, /symlink to "\/etc\/shadow"/);
    assert.match(problems[4]!.message, /hardlink/);
    assert.match(problems[5]!.message, /special file/);
    assert.match(problems[7]!.message, /last\.btf/);
  });

  test('duplicates, empty tarballs and the problem cap', async (t) => {
    if (!btf) return t.skip('bpftool or /sys/kernel/btf/vmlinux is missing');
    const dup = rawTar([
      { name: 'a/1/x86_64/k.btf', body: btf },
      { name: './a/1/x86_64/k.btf', body: btf },
    ]);
    assert.deepEqual(codes(await checkBtfTarball(Readable.from([dup]), 'amd64')), ['BTF-PATH']);

    const empty = await checkBtfTarball(Readable.from([await tarBytes([])]), 'amd64');
    assert.deepEqual(codes(empty), ['BTF-EMPTY']);
    assert.equal(empty[0]!.severity, 'warning');

    const many = rawTar(Array.from({ length: 150 }, (_, i) => ({ name: `bad${i}.txt`, body: btf })));
    const capped = await checkBtfTarball(Readable.from([many]), 'amd64');
    assert.equal(capped.length, 101);
    assert.equal(capped[100]!.code, 'BTF-MORE');
    assert.match(capped[100]!.message, /^50 more/);
  });

  test('corrupt archives are BTF-TAR', async (t) => {
    if (!btf) return t.skip('bpftool or /sys/kernel/btf/vmlinux is missing');
    const gz = gzipSync(await tarBytes(btfhubEntries('x86_64', btf)));
    const cut = await checkBtfTarball(Readable.from([gz.subarray(0, Math.floor(gz.length / 2))]), 'amd64');
    assert.equal(cut.at(-1)!.code, 'BTF-TAR', JSON.stringify(cut));

    const plain = await tarBytes(btfhubEntries('x86_64', btf));
    const truncated = await checkBtfTarball(Readable.from([plain.subarray(0, 1024 + 100)]), 'amd64');
    assert.deepEqual(codes(truncated), ['BTF-TAR']);

    const garbage = await checkBtfTarball(Readable.from([Buffer.alloc(2048, 0x41)]), 'amd64');
    assert.deepEqual(codes(garbage), ['BTF-TAR']);
    assert.match(garbage[0]!.message, /not a readable/);

    const nothing = await checkBtfTarball(Readable.from([]), 'amd64');
    assert.deepEqual(codes(nothing), ['BTF-TAR']);
  });
});
