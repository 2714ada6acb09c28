// Rebuilds the committed prebuilt eBPF objects of the examples with this project's own
// compile step, so that `gadget build` works where clang is not installed and gives the
// same bytes as a build with clang 14. Run: node --import tsx examples/prebuild.ts
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileEbpf, findTool, toolVersion } from '../plugins/build/compile.js';
import { resolveGadget } from '../plugins/build/spec.js';

const here = path.dirname(fileURLToPath(import.meta.url));

for (const name of ['trace_open']) {
  // objects: {} so that missing prebuilt files (the ones being made) are no error.
  const g = await resolveGadget({ dir: path.join(here, name), ref: name, objects: {} }, { cwd: here });
  if (!g.ebpfsource) throw new Error(`${name} has no eBPF source`);
  const { objects } = await compileEbpf({ dir: g.dir, source: g.ebpfsource, shownSource: path.relative(here, g.ebpfsource), cflags: g.cflags });
  for (const [arch, bytes] of Object.entries(objects)) {
    const out = path.join(g.dir, 'prebuilt', `${arch}.o`);
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(out, bytes!);
    console.log(`${path.relative(here, out)}  ${bytes!.length} bytes`);
  }
  // Which compiler made them: the tests expect a fresh build to match only with the same one.
  await writeFile(path.join(g.dir, 'prebuilt', 'clang-version.txt'), (await toolVersion((await findTool('clang'))!)) + '\n');
}
