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

/**
 * Runs `gadget ARGS` (a --watch) in `dir` while `body` reads its lines, then sends Ctrl-C,
 * which must end it with exit 0; the process is killed whatever happens.
 */
async function watching(args: string[], dir: string, body: (out: ReturnType<typeof lines>, child: ReturnType<typeof spawnGadget>) => Promise<void>): Promise<void> {
  const child = spawnGadget(args, { cwd: dir, env: { XDG_CACHE_HOME: join(dir, '.cache') } });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  try {
    await body(lines(child), child);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(code, 0, stderr);
  } finally {
    child.kill('SIGKILL');
  }
}

test('run --watch rebuilds exactly the gadget an edit touched, survives an error, ends on Ctrl-C', async () => {
  const dir = scratch('gadget-watch-');
  writeProject(dir);
  await watching(['run', 'default', '--watch'], dir, async (out, child) => {
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
  });
});

test('run --watch re-reads a CommonJS gadget.config.ts and the project files it requires', async () => {
  const dir = scratch('gadget-watch-cjs-');
  writeFileSync(join(dir, 'package.json'), '{}\n'); // no "type": "module": tsx compiles the config to CommonJS
  writeFileSync(join(dir, 'value.ts'), "export const value = 'a';\n");
  const config = (mark: string): string =>
    `import { writeFileSync } from 'node:fs';\nimport { value } from './value';\n` +
    `export default { store: '.gadget-store', tasks: { default: [{ name: 'mark', async run(_c: unknown, input: unknown[]) { writeFileSync('seen', '${mark} ' + value); return input; } }] } };\n`;
  writeFileSync(join(dir, 'gadget.config.ts'), config('v1'));
  const seen = (): string => readFileSync(join(dir, 'seen'), 'utf8');
  await watching(['run', 'default', '--watch'], dir, async (out) => {
    assert.match(await out.next(/^\d\d:\d\d:\d\d /, 'the first round'), /^\S+ ok /);
    assert.equal(seen(), 'v1 a');

    // The required file first, then the config (the watched file) that starts the round.
    writeFileSync(join(dir, 'value.ts'), "export const value = 'b';\n");
    writeFileSync(join(dir, 'gadget.config.ts'), config('v2'));
    // Both are watched: one round or two, whichever the file events give.
    await out.next(/gadget\.config\.ts( and 1 more)? changed|value\.ts and 1 more changed/, 'the config edit');
    assert.equal(seen(), 'v2 b', 'the edited config and the file it requires were evaluated again');

    writeFileSync(join(dir, 'gadget.config.ts'), 'export default {{{\n');
    assert.match(await out.next(/gadget\.config\.ts changed/, 'the syntax error'), /^\S+ failed gadget\.config\.ts changed: cannot load .*gadget\.config\.ts/);

    writeFileSync(join(dir, 'gadget.config.ts'), config('v3'));
    assert.match(await out.next(/gadget\.config\.ts changed/, 'the fix'), /^\S+ ok gadget\.config\.ts changed: /);
    assert.equal(seen(), 'v3 b');

    // The required file alone is watched too, and read again.
    writeFileSync(join(dir, 'value.ts'), "export const value = 'c';\n");
    assert.match(await out.next(/value\.ts changed/, 'the required file edit'), /^\S+ ok value\.ts changed: /);
    assert.equal(seen(), 'v3 c');
  });
});

test('run --watch re-reads an ES-module gadget.config.ts and the project files it imports; a broken import is watched until it is fixed', async () => {
  const dir = scratch('gadget-watch-esm-');
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(join(dir, 'value.ts'), "export const value = 'a';\n");
  writeFileSync(join(dir, 'gadget.config.ts'),
    `import { writeFileSync } from 'node:fs';\nimport { value } from './value.ts';\n` +
    `export default { store: '.gadget-store', tasks: { default: [{ name: 'mark', async run(_c: unknown, input: unknown[]) { writeFileSync('seen', value); return input; } }] } };\n`);
  const seen = (): string => readFileSync(join(dir, 'seen'), 'utf8');
  await watching(['run', 'default', '--watch'], dir, async (out) => {
    assert.match(await out.next(/^\d\d:\d\d:\d\d /, 'the first round'), /^\S+ ok /);
    assert.equal(seen(), 'a');

    writeFileSync(join(dir, 'value.ts'), "export const value = 'b';\n");
    assert.match(await out.next(/value\.ts changed/, 'the imported file edit'), /^\S+ ok value\.ts changed: /);
    assert.equal(seen(), 'b', 'the imported module was evaluated again');

    writeFileSync(join(dir, 'value.ts'), 'export const value = {{{;\n');
    assert.match(await out.next(/value\.ts changed/, 'the broken import'), /^\S+ failed value\.ts changed: cannot load /);

    writeFileSync(join(dir, 'value.ts'), "export const value = 'c';\n");
    assert.match(await out.next(/value\.ts changed/, 'the fix'), /^\S+ ok value\.ts changed: /);
    assert.equal(seen(), 'c');

    // A file first imported by a round that fails is watched all the same: its fix starts a round.
    writeFileSync(join(dir, 'extra.ts'), 'export const value = {{{;\n');
    writeFileSync(join(dir, 'value.ts'), "export { value } from './extra.ts';\n");
    assert.match(await out.next(/(value|extra)\.ts( and 1 more)? changed/, 'the new broken import'), /^\S+ failed /);
    writeFileSync(join(dir, 'extra.ts'), "export const value = 'd';\n");
    assert.match(await out.next(/extra\.ts changed/, 'the fix of the new import'), /^\S+ ok extra\.ts changed: /);
    assert.equal(seen(), 'd');
  });
});

test('build --watch keeps watching a header outside the gadget after a round that failed on it, so the fix starts a round', async () => {
  const dir = scratch('gadget-watch-header-');
  mkdirSync(join(dir, 'g'));
  mkdirSync(join(dir, 'inc'));
  writeFileSync(join(dir, 'g', 'program.bpf.c'), '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n#include <extra.h>\nchar LICENSE[] SEC("license") = "GPL";\nSEC("tracepoint/syscalls/sys_enter_openat")\nint handle(void *ctx) { return EXTRA; }\n');
  writeFileSync(join(dir, 'inc', 'extra.h'), '#define EXTRA 1\n');
  await watching(['--store', join(dir, 's'), 'build', 'g', '-t', 'example.com/w/g:v1', '--include', 'inc', '--watch'], dir, async (out) => {
    assert.match(await out.next(/^\d\d:\d\d:\d\d /, 'the first round'), /^\S+ ok rebuilt/);
    writeFileSync(join(dir, 'inc', 'extra.h'), '#define EXTRA (1+\n');
    assert.match(await out.next(/extra\.h changed/, 'the broken header'), /^\S+ failed inc\/extra\.h changed: /);
    writeFileSync(join(dir, 'inc', 'extra.h'), '#define EXTRA 3\n');
    assert.match(await out.next(/extra\.h changed/, 'the fixed header'), /^\S+ ok inc\/extra\.h changed: rebuilt example\.com\/w\/g:v1/);
  });
});

test('run --watch in a CommonJS project watches and re-reads a file it requires from outside its folder', async () => {
  const root = scratch('gadget-watch-outside-');
  const dir = join(root, 'project');
  mkdirSync(dir);
  mkdirSync(join(root, 'shared'));
  writeFileSync(join(dir, 'package.json'), '{}\n');
  writeFileSync(join(root, 'shared', 'value.ts'), "export const value = 'o1';\n");
  writeFileSync(join(dir, 'gadget.config.ts'),
    `import { writeFileSync } from 'node:fs';\nimport { value } from '../shared/value';\n` +
    `export default { store: '.gadget-store', tasks: { default: [{ name: 'mark', async run(_c: unknown, input: unknown[]) { writeFileSync('seen', value); return input; } }] } };\n`);
  const seen = (): string => readFileSync(join(dir, 'seen'), 'utf8');
  await watching(['run', 'default', '--watch'], dir, async (out) => {
    assert.match(await out.next(/^\d\d:\d\d:\d\d /, 'the first round'), /^\S+ ok /);
    assert.equal(seen(), 'o1');
    writeFileSync(join(root, 'shared', 'value.ts'), "export const value = 'o2';\n");
    assert.match(await out.next(/value\.ts changed/, 'the outside file edit'), /^\S+ ok \S*value\.ts changed: /);
    assert.equal(seen(), 'o2');
  });
});
