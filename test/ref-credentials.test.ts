// Credentials typed into a reference or registry name (`user:pass@host/x`, `http://user:pass@...`,
// `TOKEN@host/x`) are refused by the parser with a usage error (exit 2) that never shows the
// password: not on stderr, not in the --json document, not lower-cased. No registry is needed:
// parsing fails before anything is contacted.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { GadgetError } from '../lib/errors.js';
import { findUserinfo, parseRef } from '../lib/oci/reference.js';
import { normalizeRegistryHost } from '../lib/registry/index.js';
import { gadget } from './helpers/cli.js';

const PW = 'Zq9SecretPw';
const HEX = 'c'.repeat(64);

const scratch = mkdtempSync(join(tmpdir(), 'gadget-ref-credentials-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const ENV = { GADGET_STORE: join(scratch, 'store'), DOCKER_CONFIG: join(scratch, 'docker'), NO_COLOR: '1' };

function assertNoSecret(text: string, what: string): void {
  assert.ok(!text.toLowerCase().includes(PW.toLowerCase()), `${what} shows the password:\n${text}`);
}

function throwsWithoutSecret(fn: () => unknown, expect: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof GadgetError, String(err));
    assert.equal(err.exitCode, 2);
    assertNoSecret(`${err.message}\n${err.hint ?? ''}\n${err.stack ?? ''}`, 'the error');
    assert.match(err.message, expect);
    return true;
  });
}

describe('parseRef', () => {
  test('still parses tag+digest references, ports and digests without a path', () => {
    const cases: Array<[string, string]> = [
      [`ghcr.io/x/y:v1@sha256:${HEX}`, `ghcr.io/x/y:v1@sha256:${HEX}`],
      [`127.0.0.1:5000/a/b:t@sha256:${HEX}`, `127.0.0.1:5000/a/b:t@sha256:${HEX}`],
      [`x@sha256:${HEX}`, `ghcr.io/inspektor-gadget/gadget/x@sha256:${HEX}`],
      [`trace_exec:v0.40.0@sha256:${HEX}`, `ghcr.io/inspektor-gadget/gadget/trace_exec:v0.40.0@sha256:${HEX}`],
      ['localhost:5000/x', 'localhost:5000/x:latest'],
      ['localhost/x:1', 'localhost/x:1'],
    ];
    for (const [input, expected] of cases) {
      assert.equal(parseRef(input).toString(), expected, input);
      assert.equal(findUserinfo(input, 'reference'), undefined, input);
    }
  });

  test('refuses user information before the host, with or without a scheme, never showing the password', () => {
    const cases: Array<[string, string]> = [
      [`alice:${PW}@127.0.0.1:15002/a/b`, 'alice:***@127.0.0.1:15002/a/b'],
      [`user:${PW}@127.0.0.1:15001/x:v1`, 'user:***@127.0.0.1:15001/x:v1'],
      [`http://user:${PW}@127.0.0.1:15001/x:v1`, 'http://user:***@127.0.0.1:15001/x:v1'],
      [`https://user:${PW}@ghcr.io/x/y:v1@sha256:${HEX}`, `https://user:***@ghcr.io/x/y:v1@sha256:${HEX}`],
      [`user:${PW}@localhost:5000/x`, 'user:***@localhost:5000/x'],
      [`alice:${PW}@localhost:5000`, 'alice:***@localhost:5000'],
      // A user name alone may be a token: it is not shown either.
      [`ghp_${PW}@ghcr.io/x/y`, '***@ghcr.io/x/y'],
      [`alice@ghcr.io/x/y`, '***@ghcr.io/x/y'],
      // Passwords with '@', '/', ':' and upper case.
      [`alice:${PW}@x@127.0.0.1:15001/x:v1`, 'alice:***@127.0.0.1:15001/x:v1'],
      [`alice:a/${PW}@127.0.0.1:15001/x:v1`, 'alice:***@127.0.0.1:15001/x:v1'],
      [`alice:a:${PW}@[::1]:5000/x`, 'alice:***@[::1]:5000/x'],
    ];
    for (const [input, shown] of cases) {
      throwsWithoutSecret(() => parseRef(input), new RegExp(`^a reference may not carry credentials: ${shown.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
      assert.match((() => {
        try {
          parseRef(input);
        } catch (err) {
          return (err as GadgetError).hint ?? '';
        }
        return '';
      })(), /gadget login /);
    }
  });

  test('a mistyped tag after "@" is an invalid reference, not credentials; a token-like text before it is not shown', () => {
    throwsWithoutSecret(() => parseRef('ghcr.io/x@1.2'), /^"ghcr\.io\/x@1\.2" is not a valid image reference/);
    throwsWithoutSecret(() => parseRef('trace_exec@v0.40.0'), /not a valid image reference/);
    throwsWithoutSecret(() => parseRef(`tok${PW}@ghcr.io`), /^"\*\*\*@ghcr\.io" is not a valid image reference/);
    throwsWithoutSecret(() => parseRef(`alice:pa/ss${PW}@ghcr.io`), /not a valid image reference/);
    throwsWithoutSecret(() => parseRef(`x@sha256:123`), /not a valid image reference/);
    // A mistyped digest on a one-word name is quoted as typed (it is not a host).
    assert.throws(() => parseRef('x@sha256:zz'), /^GadgetError: "x@sha256:zz" is not a valid image reference/);
    // Other errors come after the credentials check, so they never quote a password either.
    throwsWithoutSecret(() => parseRef(`user:${PW}@host.io/x y`), /may not carry credentials/);
    throwsWithoutSecret(() => parseRef(`user:${PW}@host.io/${'x'.repeat(600)}`), /longer than 512/);
  });
});

describe('registry names (login, logout, repos)', () => {
  test('user information is refused; plain names still normalize', () => {
    throwsWithoutSecret(() => normalizeRegistryHost(`alice:${PW}@127.0.0.1:15002`), /^a registry name may not carry credentials: alice:\*\*\*@127\.0\.0\.1:15002$/);
    throwsWithoutSecret(() => normalizeRegistryHost(`https://alice:${PW}@index.docker.io/v1/`), /may not carry credentials/);
    throwsWithoutSecret(() => normalizeRegistryHost(`${PW}@ghcr.io`), /^a registry name may not carry credentials: \*\*\*@ghcr\.io$/);
    throwsWithoutSecret(() => normalizeRegistryHost(`alice:a/${PW}@ghcr.io`), /may not carry credentials: alice:\*\*\*@ghcr\.io$/);
    assert.equal(normalizeRegistryHost('https://index.docker.io/v1/'), 'docker.io');
    assert.equal(normalizeRegistryHost('127.0.0.1:5000'), '127.0.0.1:5000');
    assert.equal(normalizeRegistryHost('GHCR.io'), 'ghcr.io');
  });
});

/** Every command that takes a reference or a registry name, with credentials in it. */
const COMMANDS: Array<{ name: string; args: string[]; input?: string }> = [
  { name: 'logout', args: ['logout', `alice:${PW}@127.0.0.1:15002`] },
  { name: 'logout (URL)', args: ['logout', `https://alice:${PW}@127.0.0.1:15002/v1/`] },
  { name: 'login', args: ['login', `alice:${PW}@127.0.0.1:15002`, '-u', 'alice', '--password-stdin'], input: 'another-password\n' },
  { name: 'tags', args: ['tags', `alice:${PW}@127.0.0.1:15002/a/b`] },
  { name: 'repos', args: ['repos', `alice:${PW}@127.0.0.1:15002/a`] },
  { name: 'pull', args: ['pull', `user:${PW}@127.0.0.1:15001/x:v1`] },
  { name: 'push (URL destination)', args: ['push', 'x:v1', `http://user:${PW}@127.0.0.1:15001/x:v1`] },
  { name: 'copy (source)', args: ['copy', `user:${PW}@127.0.0.1:15001/x:v1`, '127.0.0.1:15001/y:v1'] },
  { name: 'copy (token destination)', args: ['copy', '127.0.0.1:15001/y:v1', `ghp_${PW}@127.0.0.1:15001/x:v1`] },
  { name: 'verify --remote', args: ['verify', '--remote', `user:${PW}@127.0.0.1:15001/x:v1`] },
  { name: 'inspect --remote', args: ['inspect', '--remote', `user:${PW}@127.0.0.1:15001/x:v1`] },
  { name: 'sync --from (repository)', args: ['sync', '--from', `user:${PW}@127.0.0.1:15001/x`, '--to', 'store'] },
  { name: 'sync --from (prefix)', args: ['sync', '--from', `user:${PW}@127.0.0.1:15001/a/`, '--to', 'store'] },
  { name: 'sync --to (registry)', args: ['sync', '--from', '127.0.0.1:15001/x:v1', '--to', `user:${PW}@127.0.0.1:15001/mirror`] },
  { name: 'pull (password with "@" and "/")', args: ['pull', `alice:a/${PW}@b@127.0.0.1:15001/x:v1`] },
];

describe('the CLI never shows a password typed into a reference', () => {
  for (const { name, args, input } of COMMANDS) {
    for (const json of [false, true]) {
      test(`${name}${json ? ' --json' : ''}`, async () => {
        const r = await gadget(json ? ['--json', ...args] : args, { cwd: scratch, env: ENV, input });
        assertNoSecret(r.stderr, 'stderr');
        assertNoSecret(r.stdout, 'stdout');
        assert.equal(r.code, 2, `exit code\n${r.stderr}`);
        const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
        assert.equal(errors.length, 1, r.stderr);
        assert.match(errors[0]!, /may not carry credentials: .*\*\*\*@/);
        assert.match(r.stderr, /^hint: log in once with `gadget login [^`]+`/m);
        if (json) {
          const doc = JSON.parse(r.stdout) as { error: { message: string; hint: string; code: number } };
          assert.equal(doc.error.code, 2);
          assert.match(doc.error.message, /may not carry credentials/);
        } else {
          assert.equal(r.stdout, '');
        }
      });
    }
  }

  // Paths where a message could quote the argument before the reference parser sees it.
  test('login without --password-stdin does not quote the registry name in its hint', async () => {
    const r = await gadget(['login', `alice:${PW}@127.0.0.1:15002`, '-u', 'alice'], { cwd: scratch, env: ENV });
    assertNoSecret(r.stderr + r.stdout, 'output');
    assert.equal(r.code, 2);
  });

  test('sync --from a prefix whose user name (a token) precedes a host without "." or ":"', async () => {
    const r = await gadget(['sync', '--from', `tok${PW}@myreg/a/`, '--to', 'store'], { cwd: scratch, env: ENV });
    assertNoSecret(r.stderr + r.stdout, 'output');
    assert.equal(r.code, 2);
  });

  test('sync --to with credentials and a source that yields nothing', async () => {
    for (const json of [false, true]) {
      const args = ['sync', '--from', 'store:nothing-matches-this', '--to', `user:${PW}@127.0.0.1:15001/mirror`];
      const r = await gadget(json ? ['--json', ...args] : args, { cwd: scratch, env: ENV });
      assertNoSecret(r.stderr + r.stdout, 'output');
      assert.equal(r.code, 2);
    }
  });
});
