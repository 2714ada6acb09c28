// Help that fits a terminal, "did you mean", ig's and docker's command names, and colour only
// for a person at a terminal. The TTY is real: util-linux's `script` runs the command on a
// pseudo-terminal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openStore } from '../store/store.js';
import { CLI, gadget } from './helpers/cli.js';
import { putImage } from './helpers/images.js';
import { REPO, scratch } from './helpers/paths.js';

const run = promisify(execFile);

function commandNames(help: string): string[] {
  const section = help.split('\ncommands:\n')[1]!.split('\n\n')[0]!;
  return [...section.matchAll(/^ {2}(\w[\w-]*)/gm)].map((m) => m[1]!);
}

test('every help page fits 80 columns on a pipe and lists the options, their defaults and the global ones', async () => {
  const main = await gadget(['--help']);
  assert.equal(main.code, 0);
  const names = commandNames(main.stdout);
  assert.ok(names.length >= 20, `the command list: ${names.join(' ')}`);
  for (const page of [main.stdout, ...(await Promise.all(names.map(async (n) => (await gadget([n, '--help'])).stdout)))]) {
    const long = page.split('\n').filter((l) => l.length > 80);
    assert.deepEqual(long, [], `lines over 80 columns in:\n${page.slice(0, 200)}`);
  }
  const build = (await gadget(['build', '--help'])).stdout;
  for (const option of ['--tag REF', '--annotation K=V', '--no-cache', '--json', '--store DIR', '--quiet']) assert.ok(build.includes(option), `build --help names ${option}`);
  assert.match(build, /Exit codes: 0 ok, 1 a failure found/);
});

test('a mistyped command or option gets a "did you mean", exit 2', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['lsit'], /did you mean `gadget list`/],
    [['verfy'], /did you mean `gadget verify`/],
    [['remov'], /did you mean `gadget remove`/],
    [['list', '--jsn'], /did you mean --json\?/],
    [['build', '--no-cahce'], /did you mean --no-cache\?/],
  ];
  for (const [args, hint] of cases) {
    const r = await gadget(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, hint);
  }
});

test('ig\'s and docker\'s names: `image` prefix, remove, ls', async () => {
  const dir = join(scratch(), 'store');
  const store = await openStore(dir);
  await store.tag(await putImage(store, 'alias'), 'example.com/alias:v1');
  store.close();
  const listed = await gadget(['--store', dir, 'image', 'ls', '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual((JSON.parse(listed.stdout) as { ref: string }[]).map((i) => i.ref), ['example.com/alias:v1']);
  const removed = await gadget(['--store', dir, 'image', 'remove', 'example.com/alias:v1']);
  assert.equal(removed.code, 0, removed.stderr);
  const after = await gadget(['--store', dir, 'list', '--json']);
  assert.equal(JSON.parse(after.stdout || '[]').length ?? 0, 0);
});

test('colour on a TTY only, and never with NO_COLOR', async () => {
  const red = '\x1b[31merror:';
  const onTTY = async (env: NodeJS.ProcessEnv): Promise<string> =>
    (await run('script', ['-qec', `${process.execPath} ${CLI} frobnicate`, '/dev/null'], { env: { ...process.env, ...env } }).catch((e: { stdout: string }) => e)).stdout;
  assert.ok((await onTTY({ NO_COLOR: '' })).includes(red), 'red "error:" on a terminal');
  assert.ok(!(await onTTY({ NO_COLOR: '1' })).includes('\x1b['), 'no escape codes with NO_COLOR');
  const piped = await gadget(['frobnicate'], { env: { NO_COLOR: '' } });
  assert.ok(piped.stderr.startsWith('error:'), 'plain "error:" on a pipe');
});

test('a build on a TTY says what it is compiling; on a pipe it does not', async () => {
  const store = join(scratch(), 'store');
  const args = ['--store', store, 'build', join(REPO, 'examples', 'trace_open'), '-t', 'example.com/progress:v1', '--no-cache'];
  const tty = await run('script', ['-qec', [process.execPath, CLI, ...args].join(' '), '/dev/null'], { env: { ...process.env, NO_COLOR: '1' } });
  assert.match(tty.stdout, /compiling examples\/trace_open\/program\.bpf\.c for amd64, arm64|compiling \S*program\.bpf\.c for amd64, arm64/);
  const piped = await gadget(args);
  assert.equal(piped.code, 0, piped.stderr);
  assert.doesNotMatch(piped.stderr + piped.stdout, /compiling/);
});
