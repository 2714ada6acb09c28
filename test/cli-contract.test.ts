// The script contract, the same for every command: exit 0 ok, 1 something failed or is missing,
// 2 usage or environment; with --json stdout holds exactly one JSON document, errors included
// ({"error": {"message", "hint", "code"}}); -q prints nothing but errors. Every command listed
// by `gadget --help` is checked with a bad option; the table adds a success and a failure case
// per command, each run plain, with --json and with -q, against a store holding ig's signed
// images and the real docker-registry.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gadget, type CliResult } from './helpers/cli.js';
import { registryAvailable, startRegistry, type TestRegistry } from './helpers/registry.js';
import { FIXTURE_LAYOUT, SHARED, scratch, sharedMissing } from './helpers/paths.js';
import { SIGNED, UNSIGNED } from './helpers/sync.js';

const why = sharedMissing() ?? ((await registryAvailable()) ? undefined : 'docker-registry is not installed');
const LEGACY = SIGNED[0]!;
const GOOD_KEY = join(SHARED, 'fixtures', 'ig-signed-store', 'keys', 'cosign-good.pub');

interface Row {
  args: string[];
  code: 0 | 1 | 2;
  /** The failure is an error (the JSON document is {"error": ...}), not a report of failures. */
  error?: boolean;
}

const noStack = (r: CliResult, what: string): void => assert.doesNotMatch(r.stderr, /\n\s+at .*:\d+:\d+/, `${what}: no stack trace`);

/** The one JSON document of stdout (throws when there are none or several). */
function oneDocument(r: CliResult, what: string): Record<string, unknown> {
  assert.notEqual(r.stdout.trim(), '', `${what}: --json printed nothing on stdout`);
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>;
  } catch (err) {
    assert.fail(`${what}: stdout is not exactly one JSON document (${(err as Error).message}): ${r.stdout.slice(0, 300)}`);
  }
}

describe('the script contract of every command', { skip: why }, () => {
  let reg: TestRegistry;
  let dir: string;
  let base: string[];
  let rows: Row[];
  let env: NodeJS.ProcessEnv;

  before(async () => {
    reg = await startRegistry();
    dir = scratch('gadget-contract-');
    const store = join(dir, 'store');
    base = ['--store', store];
    env = { DOCKER_CONFIG: join(dir, 'docker'), HOME: dir, COSIGN_PASSWORD: 'contract' };
    assert.equal((await gadget([...base, 'import', FIXTURE_LAYOUT], { cwd: dir })).code, 0);
    const empty = join(dir, 'empty-gadget');
    mkdirSync(empty);
    const r = `${reg.host}/contract`;
    rows = [
      { args: ['list'], code: 0 },
      { args: ['inspect', LEGACY], code: 0 },
      { args: ['inspect', 'nope'], code: 1, error: true },
      { args: ['inspect', 'Not A Ref'], code: 2, error: true },
      { args: ['referrers', LEGACY], code: 0 },
      { args: ['discover', 'nope:v1'], code: 1, error: true },
      { args: ['push', LEGACY, `${r}/legacy:v1`], code: 0 },
      { args: ['push', 'nope:v1', `${r}/nope:v1`], code: 1 },
      { args: ['tags', `${r}/legacy`], code: 0 },
      { args: ['tags', `${r}/nothing`], code: 1, error: true },
      { args: ['repos', reg.host], code: 0 },
      { args: ['repos', 'nohost'], code: 2, error: true },
      { args: ['inspect', '--remote', `${r}/legacy:v1`], code: 0 },
      { args: ['referrers', '--remote', `${r}/nothing:v1`], code: 1, error: true },
      { args: ['pull', `${r}/legacy:v1`], code: 0 },
      { args: ['pull', `${r}/nothing:v1`], code: 1 },
      { args: ['copy', `${r}/legacy:v1`, `${r}/copied:v1`], code: 0 },
      { args: ['copy', `${r}/nothing:v1`, `${r}/copied:v2`], code: 1 },
      { args: ['sync', '--from', `${r}/legacy`, '--to', `${r}-mirror`], code: 0 },
      { args: ['sync'], code: 2, error: true },
      { args: ['tag', LEGACY, 'example.com/contract:v1'], code: 0 },
      { args: ['tag', 'nope', 'example.com/contract:v2'], code: 1, error: true },
      { args: ['rm', 'nope'], code: 1, error: true },
      { args: ['gc', '--dry-run'], code: 0 },
      { args: ['gc', '--grace', 'soon'], code: 2, error: true },
      { args: ['fsck'], code: 0 },
      { args: ['import', join(dir, 'missing.tar')], code: 2, error: true },
      { args: ['export', LEGACY, '-o', join(dir, 'out.tar')], code: 0 },
      { args: ['export', 'nope', '-o', join(dir, 'nope.tar')], code: 1, error: true },
      { args: ['verify', LEGACY, '--profile', 'ig'], code: 0 },
      { args: ['verify', 'nope:v1'], code: 1 }, // a report whose one entry failed (GADGET-IMAGE-MISSING)
      { args: ['verify', UNSIGNED, '--profile', 'ig', '--key', GOOD_KEY, '--require-signature'], code: 1 },
      { args: ['verify', '--remote', `${r}/legacy:v1`, '--profile', 'ig'], code: 0 },
      { args: ['annotate', 'example.com/contract:v1', '--set', 'org.example.contract=yes'], code: 0 },
      { args: ['annotate', 'nope', '--set', 'a=b'], code: 1, error: true },
      { args: ['build', empty, '-t', 'example.com/empty:v1'], code: 2, error: true },
      { args: ['run', 'default'], code: 2, error: true },
      { args: ['tasks'], code: 2, error: true },
      { args: ['login', reg.host, '-u', 'me'], code: 2, error: true },
      { args: ['logout', reg.host], code: 0 },
      { args: ['init', join(dir, 'project-@V')], code: 0 }, // @V: one folder per run (init writes over nothing)
      { args: ['generate-key-pair', '--output-key-prefix', join(dir, 'key-@V')], code: 0 },
      { args: ['generate-key-pair', '--output-key-prefix', join(dir, 'key-plain')], code: 2, error: true }, // exists by now
      { args: ['sign', 'example.com/contract:v1', '--key', join(dir, 'key-plain.key')], code: 0 },
      { args: ['sign', 'nope:v1', '--key', join(dir, 'key-plain.key')], code: 1, error: true },
      { args: ['serve', '--port', 'none'], code: 2, error: true }, // a success serves until stopped: test/serve tests it
      { args: ['verify-blob', join(dir, 'no-such-file'), '--bundle', join(dir, 'no-such.sigstore.json'), '--key', join(dir, 'key-plain.pub')], code: 2, error: true },
      { args: ['init', 'one', 'two'], code: 2, error: true },
      // serve's success runs until a signal: test/serve.test.ts checks its --json line and exit 0.
      { args: ['serve', '--address', '0.0.0.0', '--port', '0'], code: 2, error: true },
    ];
  });
  after(() => reg?.stop());

  test('every command: a bad option exits 2, with one JSON error document under --json and nothing but the error under -q', async () => {
    const help = await gadget(['--help'], { cwd: dir });
    const commands = [...help.stdout.split('\ncommands:\n')[1]!.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!);
    assert.ok(commands.length >= 20, `the commands of --help: ${commands.join(' ')}`);
    for (const c of commands) {
      const json = await gadget([...base, '--json', c, '--no-such-option'], { cwd: dir, env });
      assert.equal(json.code, 2, `${c}: ${json.stderr}`);
      const doc = oneDocument(json, c) as { error: { message: string; hint?: string; code: number } };
      assert.equal(doc.error.code, 2, c);
      assert.match(doc.error.message, /unknown option --no-such-option/, c);
      assert.match(json.stderr, /^error: /m, c);
      const quiet = await gadget([...base, '-q', c, '--no-such-option'], { cwd: dir, env });
      assert.equal(quiet.code, 2, c);
      assert.equal(quiet.stdout, '', `${c}: -q prints nothing on stdout`);
      assert.match(quiet.stderr, /^error: .*\nhint: /, c);
      noStack(quiet, c);
    }
    // The table below covers every command too (aliases count for their command).
    const covered = new Set(rows.map((r) => (r.args[0] === 'discover' ? 'referrers' : r.args[0]!)));
    assert.deepEqual(commands.filter((c) => !covered.has(c)), [], 'a new command needs its rows in the table of this test (a success and a failure)');
  });

  test('every command: the exit code, the --json document and -q of a success and a failure', async () => {
    for (const row of rows) {
      const what = `gadget ${row.args.join(' ')}`;
      const args = (variant: string): string[] => row.args.map((a) => a.replace('@V', variant));
      const plain = await gadget([...base, ...args('plain')], { cwd: dir, env });
      assert.equal(plain.code, row.code, `${what}: ${plain.stdout}${plain.stderr}`);
      noStack(plain, what);
      if (row.error) assert.match(plain.stderr, /^error: .+/m, what);

      const json = await gadget([...base, '--json', ...args('json')], { cwd: dir, env });
      assert.equal(json.code, row.code, `${what} --json: ${json.stderr}`);
      const doc = oneDocument(json, `${what} --json`);
      if (row.error) {
        const error = doc.error as { message: unknown; hint?: unknown; code: unknown };
        assert.equal(typeof error?.message, 'string', `${what}: {"error": {"message"}}`);
        assert.equal(error.code, row.code, `${what}: error.code is the exit code`);
        assert.ok(typeof error.hint === 'string' && error.hint !== '', `${what}: every error says how to fix it (a hint)`);
        assert.match(json.stderr, /^error: /m, `${what}: the sentence is on stderr too`);
      } else {
        assert.equal(doc.error, undefined, `${what}: a result, not an error`);
      }

      const quiet = await gadget([...base, '-q', ...args('quiet')], { cwd: dir, env });
      assert.equal(quiet.code, row.code, `${what} -q`);
      assert.equal(quiet.stdout, '', `${what} -q: nothing on stdout`);
      if (row.code === 0) assert.equal(quiet.stderr, '', `${what} -q: nothing on stderr either`);
      else if (row.error) assert.match(quiet.stderr, /^error: .*\nhint: /m, `${what} -q: the error and its hint are printed`);
    }
  });

  test('-v names the store and the config in use; --version and no command', async () => {
    const r = await gadget([...base, '-v', 'list'], { cwd: dir });
    assert.match(r.stderr, new RegExp(`store: ${join(dir, 'store').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(from --store\\)`));
    assert.match(r.stderr, /config: none \(no gadget\.config\.ts in /);
    const version = await gadget(['--json', '--version'], { cwd: dir });
    assert.match(JSON.parse(version.stdout).version, /^\d+\.\d+\.\d+/);
    const none = await gadget(['--json'], { cwd: dir });
    assert.equal(none.code, 2);
    assert.equal(JSON.parse(none.stdout).error.code, 2);
  });
});

test('the environment refusing a file or the index is one sentence with exit 2, with or without a path', async () => {
  const { fileSystemError } = await import('../lib/errors.js');
  const error = (code: string, fields: Record<string, string> = {}): Error => Object.assign(new Error(`raw ${code}`), { code, ...fields });
  const cases: Array<[Error, RegExp]> = [
    [error('EACCES', { syscall: 'open', path: '/x/y' }), /^cannot open \/x\/y: permission denied$/],
    [error('ENOSPC'), /^a file operation failed: no space left on the device$/],
    [error('SQLITE_READONLY'), /^the store's index is read-only$/],
    [error('SQLITE_FULL'), /^the store's index cannot grow: no space left on the device$/],
    [error('SQLITE_CORRUPT_INDEX'), /^the store's index is damaged$/],
    [error('SQLITE_NOTADB'), /^the store's index is damaged$/],
  ];
  for (const [err, message] of cases) {
    const found = fileSystemError(err);
    assert.ok(found, `${(err as NodeJS.ErrnoException).code} is the environment's`);
    assert.match(found.message, message);
    assert.equal(found.exitCode, 2);
    assert.ok(found.hint && found.hint.length > 0, 'with a hint');
  }
  assert.match(fileSystemError(error('SQLITE_CORRUPT'))!.hint!, /gadget fsck --reindex/);
  assert.equal(fileSystemError(error('EBADF')), undefined, 'anything else is not the environment');
});
