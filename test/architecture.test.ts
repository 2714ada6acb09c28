// The shape of the source tree: no import circles (type imports included), and each floor
// imports only from the floors below it: lib/ < store/ < serve/ < plugins/ < index.ts, cli/.
// Read from the sources themselves, so a new import that breaks the shape fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FLOORS = ['lib', 'store', 'serve', 'plugins', 'index.ts', 'cli'];
/** Type-only references to a higher floor that the design asks for, each with its reason. */
const ALLOWED_UP = new Map([['lib/runner/types.ts -> store/store.ts', 'the plugin API hands plugins the store']]);

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) return sources(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

/** Every project file each file imports (static, dynamic, `export ... from`, type-only). */
function importGraph(): Map<string, string[]> {
  const files = [...FLOORS.filter((f) => f !== 'index.ts').flatMap(sources), 'index.ts'];
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*|^import\s+)'(\.{1,2}\/[^']+)'/gm)].map((m) => m[1]!);
    const targets = specs.map((s) => relative(ROOT, resolve(ROOT, dirname(file), s)).replace(/\.js$/, '.ts'));
    for (const t of targets) assert.ok(known.has(t), `${file} imports ${t}, which is not a source file`);
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

const floorOf = (file: string) => FLOORS.indexOf(file === 'index.ts' ? 'index.ts' : file.split('/')[0]!);

test('the import graph is read from the sources (not empty)', () => {
  const graph = importGraph();
  assert.ok(graph.size > 100, `only ${graph.size} files found`);
  assert.ok([...graph.values()].flat().length > 300);
});

test('no import circles, type imports included', () => {
  const graph = importGraph();
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      circles.push([...path.slice(path.indexOf(file)), file].join(' -> '));
      return;
    }
    state.set(file, 'open');
    for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of graph.keys()) visit(file, []);
  assert.deepEqual(circles, []);
});

test('each floor imports only from the floors below it; nothing imports the command line', () => {
  const upward: string[] = [];
  for (const [file, targets] of importGraph()) {
    for (const target of targets) {
      const edge = `${file} -> ${target}`;
      if (floorOf(target) > floorOf(file) && !ALLOWED_UP.has(edge)) upward.push(edge);
      if (target.startsWith('cli/') && !file.startsWith('cli/')) upward.push(edge);
    }
  }
  assert.deepEqual(upward, []);
});

test('the allowed exceptions still exist (a stale one would hide nothing but mislead)', () => {
  const graph = importGraph();
  for (const edge of ALLOWED_UP.keys()) {
    const [from, to] = edge.split(' -> ');
    assert.ok(graph.get(from!)?.includes(to!), `${edge} is no longer imported: remove it from ALLOWED_UP`);
  }
});
