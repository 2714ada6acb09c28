import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { checkEntryPath, readTar, writeTar } from '../lib/archive/tar.js';
import { scratch } from './helpers/paths.js';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const longName = 'ubuntu/22.04/x86_64/' + 'k'.repeat(150) + '.btf';

test('writeTar is deterministic and GNU tar reads it', async () => {
  const entries = () => [
    { path: 'a', type: 'directory' as const },
    { path: 'a/one.txt', content: Buffer.from('one') },
    { path: longName, content: Buffer.alloc(1000, 7) },
  ];
  const first = await collect(writeTar(entries()));
  const second = await collect(writeTar(entries()));
  assert.deepEqual(first, second);
  const dir = scratch();
  writeFileSync(join(dir, 'x.tar'), first);
  const listing = execFileSync('tar', ['-tvf', join(dir, 'x.tar')], { encoding: 'utf8' });
  assert.match(listing, /a\/one\.txt/);
  assert.ok(listing.includes(longName), 'long name survives through a pax header');
  execFileSync('tar', ['-xf', join(dir, 'x.tar'), '-C', dir]);
  assert.equal(readFileSync(join(dir, 'a/one.txt'), 'utf8'), 'one');
});

test('readTar streams entries of GNU tar archives, plain and gzip', async () => {
  const dir = scratch();
  mkdirSync(join(dir, 'src/d'), { recursive: true });
  writeFileSync(join(dir, 'src/d/f.bin'), Buffer.alloc(70000, 1));
  symlinkSync('f.bin', join(dir, 'src/d/link'));
  execFileSync('tar', ['-cf', join(dir, 'g.tar'), '-C', join(dir, 'src'), 'd']);
  const plain = readFileSync(join(dir, 'g.tar'));
  const gzip = gzipSync(plain);
  // The last: gzip arriving a byte at a time (its two magic bytes in two chunks).
  for (const chunks of [[plain], [gzip], [gzip.subarray(0, 1), gzip.subarray(1, 2), gzip.subarray(2)]]) {
    const seen: Record<string, string> = {};
    for await (const e of readTar(Readable.from(chunks))) {
      seen[e.path] = e.type;
      if (e.path === 'd/f.bin') assert.equal((await collect(e.body)).length, 70000);
    }
    assert.deepEqual(seen, { 'd/': 'directory', 'd/f.bin': 'file', 'd/link': 'symlink' });
  }
  const roundTrip: string[] = [];
  for await (const e of readTar(writeTar([{ path: longName, content: Buffer.from('x') }]))) roundTrip.push(e.path);
  assert.deepEqual(roundTrip, [longName]);
});

test('readTar fails clearly on a truncated or corrupt archive', async () => {
  const good = await collect(writeTar([{ path: 'f', content: Buffer.alloc(2000, 3) }]));
  await assert.rejects(async () => {
    for await (const e of readTar(Readable.from([good.subarray(0, 1200)]))) await collect(e.body);
  }, /truncated/);
  const corrupt = Buffer.from(good);
  corrupt[0] ^= 0xff;
  await assert.rejects(async () => {
    for await (const e of readTar(Readable.from([corrupt]))) e.body.resume();
  }, /checksum/);
});

test('entry paths never leave their folder', () => {
  assert.equal(checkEntryPath('a/./b', 't'), 'a/b');
  assert.equal(checkEntryPath('./a/', 't'), 'a');
  for (const bad of ['../x', 'a/../../x', '/etc/passwd', '', 'a\0b', '.', 'C:\\x']) assert.throws(() => checkEntryPath(bad, 't'), bad);
});
