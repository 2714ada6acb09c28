// Progress you can watch: items and bytes with the rate on stderr, for pull, push, copy, sync,
// import, export and verify. On a pipe nothing unless --progress (then plain lines); on a
// terminal (a real pseudo-terminal from script(1)) one line redrawn in place.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { Writable } from 'node:stream';
import { createLogger, createProgress } from '../lib/runner/output.js';
import { CLI, gadget } from './helpers/cli.js';
import { registryAvailable, startRegistry, type TestRegistry } from './helpers/registry.js';
import { FIXTURE_LAYOUT, scratch, sharedMissing } from './helpers/paths.js';
import { SIGNED } from './helpers/sync.js';

const run = promisify(execFile);
const why = sharedMissing() ?? ((await registryAvailable()) ? undefined : 'docker-registry is not installed');
const LEGACY = SIGNED[0]!;
/** "pull 1/1  4.7 kB  12 kB/s": items, then bytes and the rate. */
const withBytes = (label: string, total: number): RegExp => new RegExp(`^${label} ${total}/${total} {2}[\\d.]+ k?B {2}[\\d.]+ [kMG]?B/s`, 'm');

describe('progress', { skip: why }, () => {
  let reg: TestRegistry;
  let dir: string;
  let store: string;
  before(async () => {
    reg = await startRegistry();
    dir = scratch('gadget-progress-');
    store = join(dir, 'store');
    assert.equal((await gadget(['--store', store, 'import', FIXTURE_LAYOUT])).code, 0);
  });
  after(() => reg?.stop());

  test('on a pipe: nothing without --progress, plain lines with it, nothing with -q', async () => {
    const silent = await gadget(['--store', store, 'push', LEGACY, `${reg.host}/p/legacy:v1`]);
    assert.equal(silent.code, 0, silent.stderr);
    assert.doesNotMatch(silent.stderr, /push \d+\/\d+/, 'no progress on a pipe');

    const pushed = await gadget(['--progress', '--store', store, 'push', SIGNED[1]!, `${reg.host}/p/oci11:v1`]);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stderr, withBytes('push', 1));
    assert.doesNotMatch(pushed.stderr, /\r|\x1b\[/, 'plain lines, no terminal control codes');

    const pulled = await gadget(['--progress', '--store', join(dir, 'pulled'), 'pull', `${reg.host}/p/legacy:v1`]);
    assert.match(pulled.stderr, withBytes('pull', 1));
    const copied = await gadget(['--progress', 'copy', `${reg.host}/p/legacy:v1`, `${reg.host}/p/copy:v1`]);
    assert.match(copied.stderr, /^copy 1\/1/m);
    const synced = await gadget(['--progress', '--store', join(dir, 'synced'), 'sync', '--from', `${reg.host}/p/`, '--to', 'store']);
    assert.equal(synced.code, 0, synced.stderr);
    assert.match(synced.stderr, withBytes('sync', 3));

    const exported = await gadget(['--progress', '--store', store, 'export', LEGACY, SIGNED[1]!, '-o', join(dir, 'two.tar')]);
    assert.match(exported.stderr, withBytes('export', 2));
    const imported = await gadget(['--progress', '--store', join(dir, 'imported'), 'import', join(dir, 'two.tar')]);
    assert.match(imported.stderr, /^import \d+\/\d+ {2}[\d.]+ k?B {2}[\d.]+ [kMG]?B\/s/m);
    // A plain tar is read in place: its blobs are checked in one pass before anything is written.
    assert.match(imported.stderr, /^check (\d+)\/\1 {2}[\d.]+ k?B/m);
    const verified = await gadget(['--progress', '--store', store, 'verify', '--all', '--profile', 'ig']);
    assert.match(verified.stderr, /^verify 6\/6$/m);

    const quiet = await gadget(['-q', '--progress', '--store', join(dir, 'quiet'), 'pull', `${reg.host}/p/legacy:v1`]);
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stderr, '', '-q wins over --progress');
  });

  test('on a terminal: one bar redrawn in place, cleared at the end', async (t) => {
    try {
      await run('script', ['--version']);
    } catch {
      return t.skip('script(1) is not installed');
    }
    // script(1) runs the command under a pseudo-terminal; the paths are this test's own.
    const command = [process.execPath, CLI, '--store', join(dir, 'tty'), 'pull', `${reg.host}/p/oci11:v1`].map((a) => `'${a}'`).join(' ');
    const { stdout } = await run('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, GADGET_STORE: '' } });
    assert.match(stdout, /\r\x1b\[Kpull \[[#.]{30}\] 1\/1 {2}[\d.]+ k?B {2}[\d.]+ [kMG]?B\/s/);
    assert.match(stdout, /\r\x1b\[K\r?\n?pulled /, 'the bar is cleared before the result');
  });
});

test('a log line written while a bar is drawn clears the bar first, and the bar comes back', () => {
  // A terminal's stderr as the output code sees it (isTTY, columns); script(1) above checks a real one.
  const chunks: string[] = [];
  const err = Object.assign(new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) }), { isTTY: true, columns: 80 }) as unknown as NodeJS.WriteStream;
  const opts = { json: false, verbose: false, quiet: false, stderr: err };
  const bar = createProgress(opts).start(1, 'build');
  bar.tick(0, 'compiling x/program.bpf.c');
  createLogger(opts).info('x: built sha256:1234');
  bar.tick(1, 'x');
  bar.done();
  assert.match(chunks.join(''), /compiling x\/program\.bpf\.c\r\x1b\[Kx: built sha256:1234\n\r\x1b\[Kbuild \[#{30}\] 1\/1 x\r\x1b\[K$/);
});
