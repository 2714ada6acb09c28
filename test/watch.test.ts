// Watch mode, as an author uses it: a real `gadget run default --watch` process over two
// gadgets; each edit must rebuild exactly the gadget it touched, an error must be reported
// without ending the watch, and Ctrl-C (SIGINT) must end it with exit 0.
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectFiles } from '../lib/init/project.js';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { spawnGadget } from './helpers/cli.js';
import { REPO, scratch } from './helpers/paths.js';

function writeProject(dir: string): void {
  for (const [rel, content] of projectFiles(dir, { wasm: true, registry: 'example.com/w' })) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  // The config imports this working tree directly (no npm install in this test).
  const config = readFileSync(join(dir, 'gadget.config.ts'), 'utf8').replace("from 'gadget-oci'", `from '${join(REPO, 'index.ts')}'`);
  writeFileSync(join(dir, 'gadget.config.ts'), config);
}

/** Collects stdout lines and waits for the next one matching a pattern. */
function lines(child: ReturnType<typeof spawnGadget>): { next(pattern: RegExp, what: string): Promise<string>; all: string[] } {
  const all: string[] = [];
  let buffer = '';
  let waiters: Array<() => void> = [];
  child.stdout!.on('data', (d) => {
    buffer += d;
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    all.push(...parts);
    for (const w of waiters) w();
  });
  let seen = 0;
  return {
    all,
    next(pattern, what) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line for ${what} after 60 s; lines so far:\n${all.join('\n')}`)), 60_000);
        const check = (): void => {
          while (seen < all.length) {
            const line = all[seen++]!;
            if (pattern.test(line)) {
              clearTimeout(timer);
              waiters = waiters.filter((w) => w !== check);
              return resolve(line);
            }
          }
        };
        waiters.push(check);
        check();
      });
    },
  };
}

test('run --watch rebuilds exactly the gadget an edit touched, survives an error, ends on Ctrl-C', async () => {
  const dir = scratch('gadget-watch-');
  writeProject(dir);
  const child = spawnGadget(['run', 'default', '--watch'], { cwd: dir, env: { XDG_CACHE_HOME: join(dir, '.cache') } });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const out = lines(child);
  try {
    assert.match(await out.next(/^\d\d:\d\d:\d\d /, 'the first round'), /ok .*2 unchanged|ok rebuilt/);

    appendFileSync(join(dir, 'gadgets/trace_exec/program.bpf.c'), '// an edit\n');
    const first = await out.next(/program\.bpf\.c changed/, 'the source edit');
    assert.match(first, /^\S+ ok gadgets\/trace_exec\/program\.bpf\.c changed: rebuilt example\.com\/w\/trace_exec:latest; 1 unchanged/);

    appendFileSync(join(dir, 'gadgets/hello_wasm/gadget.yaml'), 'documentationURL: https://example.com/docs\n');
    const second = await out.next(/gadget\.yaml changed/, 'the gadget.yaml edit');
    assert.match(second, /rebuilt example\.com\/w\/hello_wasm:latest; 1 unchanged/);

    // Broken by `sed -i`, which writes a temporary file beside the source and renames it over.
    assert.equal(spawnSync('sed', ['-i', '$a this is not C', join(dir, 'gadgets/trace_exec/program.bpf.c')]).status, 0);
    const broken = await out.next(/changed/, 'the broken edit');
    assert.match(broken, /^\S+ failed gadgets\/trace_exec\/program\.bpf\.c changed: .*error/, 'the source is named, not sed\'s temporary file');
    assert.equal(child.exitCode, null, 'the watch goes on after a failed round');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(out.all.filter((l) => !/^\d\d:\d\d:\d\d (ok|failed) /.test(l)), [], 'every round printed one line, clang\'s output included');

    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(code, 0, stderr);
  } finally {
    child.kill('SIGKILL');
  }
});

test('run --watch re-reads a CommonJS gadget.config.ts and the project files it requires', async () => {
  const dir = scratch('gadget-watch-cjs-');
  writeFileSync(join(dir, 'package.json'), '{}\n'); // no "type": "module": tsx compiles the config to CommonJS
  writeFileSync(join(dir, 'value.ts'), "export const value = 'a';\n");
  const config = (mark: string): string =>
    `import { writeFileSync } from 'node:fs';\nimport { value } from './value';\n` +
    `export default { store: '.gadget-store', tasks: { default: [{ name: 'mark', async run(_c: unknown, input: unknown[]) { writeFileSync('seen', '${mark} ' + value); return input; } }] } };\n`;
  writeFileSync(join(dir, 'gadget.config.ts'), config('v1'));
  const child = spawnGadget(['run', 'default', '--watch'], { cwd: dir, env: { XDG_CACHE_HOME: join(dir, '.cache') } });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const out = lines(child);
  const seen = (): string => readFileSync(join(dir, 'seen'), 'utf8');
  try {
    assert.match(await out.next(/^\d\d:\d\d:\d\d /, 'the first round'), /^\S+ ok /);
    assert.equal(seen(), 'v1 a');

    // The required file first, then the config (the watched file) that starts the round.
    writeFileSync(join(dir, 'value.ts'), "export const value = 'b';\n");
    writeFileSync(join(dir, 'gadget.config.ts'), config('v2'));
    assert.match(await out.next(/gadget\.config\.ts changed/, 'the config edit'), /^\S+ ok gadget\.config\.ts changed: /);
    assert.equal(seen(), 'v2 b', 'the edited config and the file it requires were evaluated again');

    writeFileSync(join(dir, 'gadget.config.ts'), 'export default {{{\n');
    assert.match(await out.next(/gadget\.config\.ts changed/, 'the syntax error'), /^\S+ failed gadget\.config\.ts changed: cannot load .*gadget\.config\.ts/);

    writeFileSync(join(dir, 'gadget.config.ts'), config('v3'));
    assert.match(await out.next(/gadget\.config\.ts changed/, 'the fix'), /^\S+ ok gadget\.config\.ts changed: /);
    assert.equal(seen(), 'v3 b');

    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(code, 0, stderr);
  } finally {
    child.kill('SIGKILL');
  }
});
