// Build benchmark (issue 2): N example-sized gadgets from prebuilt objects, cold and with no
// change; `gadget list PATTERN --json` over 1 000 and 100 000 tags against `umoci ls | grep`.
// Every number is a whole `gadget` command run as users run it.
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openStore } from '../store/store.js';
import { gadget, printTable, ROOT, timed } from './measure.js';

const DATA = join(ROOT, 'bench', '.data', 'build');
const PREBUILT = join(ROOT, 'examples', 'trace_open', 'prebuilt');

function makeGadgets(n: number): string {
  const dir = join(DATA, `gadgets-${n}`);
  rmSync(dir, { recursive: true, force: true });
  const specs: string[] = [];
  for (let i = 0; i < n; i++) {
    const g = join(dir, `g${i}`);
    mkdirSync(g, { recursive: true });
    copyFileSync(join(PREBUILT, 'amd64.o'), join(g, 'amd64.o'));
    copyFileSync(join(PREBUILT, 'arm64.o'), join(g, 'arm64.o'));
    writeFileSync(join(g, 'gadget.yaml'), `name: bench_${i}\ndescription: benchmark gadget ${i}\nhomepageURL: https://example.com/${i}\n`);
    writeFileSync(join(g, 'build.yaml'), 'metadata: gadget.yaml\nobjects:\n  amd64: amd64.o\n  arm64: arm64.o\n');
    specs.push(`{ dir: 'g${i}', ref: 'bench.local/gadgets/g${i}:v1' }`);
  }
  // As a user's config does: the compiled package (bench/.data is inside it, so it resolves).
  writeFileSync(
    join(dir, 'gadget.config.ts'),
    `import { defineConfig, build } from 'gadget-oci';\nexport default defineConfig({ store: 'store', gadgets: [${specs.join(',\n')}], tasks: { default: [build()] } });\n`,
  );
  return dir;
}

async function tagStore(n: number): Promise<string> {
  const dir = join(DATA, `tags-${n}`);
  rmSync(dir, { recursive: true, force: true });
  const store = await openStore(dir);
  const config = await store.putBytes(Buffer.from('name: t\n'), 'application/vnd.gadget.config.v1+yaml');
  const manifest = await store.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, config, layers: [] })), 'application/vnd.oci.image.manifest.v1+json');
  const items = Array.from({ length: n }, (_, i) => ({ descriptor: manifest, ref: `registry.example.com/team${i % 100}/gadget${i}:v${i % 7}` }));
  await store.tagMany(items);
  store.close();
  return dir;
}

export async function benchBuild(sizes = [10, 100, 1000]): Promise<void> {
  const rows: Array<Array<string | number>> = [];
  for (const n of sizes) {
    const dir = makeGadgets(n);
    const cold = gadget(['run', 'default', '--quiet'], dir);
    const warm = gadget(['run', 'default', '--quiet'], dir);
    rows.push([n, cold.seconds, n / cold.seconds, warm.seconds, Math.max(cold.rssMB, warm.rssMB)]);
  }
  printTable('build from prebuilt objects (whole `gadget run` command)', ['gadgets', 'cold s', 'cold gadgets/s', 'no-change rebuild s', 'peak RSS MB'], rows);

  const listRows: Array<Array<string | number>> = [];
  for (const n of [1000, 100_000]) {
    const dir = await tagStore(n);
    gadget(['--store', dir, 'list', '--json']); // first open builds the SQLite index
    const all = gadget(['--store', dir, 'list', '--json']);
    const pattern = gadget(['--store', dir, 'list', '--json', '*/team42/*']);
    const umoci = timed('bash', ['-c', `umoci ls --layout "$1" | grep team42/`, 'bash', dir]);
    listRows.push([n, all.seconds, pattern.seconds, umoci.seconds, Math.max(all.rssMB, pattern.rssMB)]);
  }
  printTable('`gadget list` over many tags (whole command)', ['tags', 'list --json s', 'list PATTERN --json s', 'umoci ls + grep s', 'peak RSS MB'], listRows);
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
  await benchBuild(sizes.length ? sizes : undefined);
}
