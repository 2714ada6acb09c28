// Shared by the sync tests: stores with real content (the example gadgets built by the
// project, ig's signed store imported), a transcript of every `gadget` run (to grep for
// secrets), and quick retries so that injected faults do not slow the tests down.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { buildGadget } from '../../plugins/build.js';
import { openStore, type Store } from '../../store/store.js';
import { importImages } from '../../store/transfer.js';
import { gadget, type CliResult } from './cli.js';
import { quietContext } from './context.js';
import { FIXTURE_LAYOUT, REPO, sharedMissing } from './paths.js';

export const FAST_RETRY = { retry: { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 } };

/** The refs of the example images built by exampleStore(). */
export const EXAMPLES = {
  traceOpen: 'ghcr.io/gadget-oci/examples/trace_open:v1',
  helloWasm: 'ghcr.io/gadget-oci/examples/hello_wasm:v1',
};

export const SIGNED = [
  'ttl.sh/signed_with_cosign_legacy:latest',
  'ttl.sh/signed_with_cosign_oci11:latest',
  'ttl.sh/signed_with_cosign_bundle:latest',
  'ttl.sh/signed_with_notation_config_media_type_signature:latest',
  'ttl.sh/signed_with_notation_config_media_type_empty:latest',
];
export const UNSIGNED = 'ghcr.io/inspektor-gadget/gadget/unsigned:francis-signature-unit-tests';

export async function tempDir(t: TestContext | { after(fn: () => unknown): void }, prefix = 'gadget-sync-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The sync tests take the shared quiet plugin context from here too. */
export { quietContext };

/** A store holding the two example gadgets, built by the project from examples/. */
export async function exampleStore(dir: string): Promise<Store> {
  const store = await openStore(join(dir, 'examples-store'));
  const ctx = quietContext(store);
  await buildGadget(ctx, { dir: join(REPO, 'examples', 'trace_open'), ref: EXAMPLES.traceOpen });
  await buildGadget(ctx, { dir: join(REPO, 'examples', 'hello_wasm'), ref: EXAMPLES.helloWasm });
  return store;
}

/** ig's signed store imported into a fresh store, or undefined when ../shared is absent. */
export async function fixtureStore(dir: string): Promise<Store | undefined> {
  if (sharedMissing()) return undefined;
  const store = await openStore(join(dir, 'fixture-store'));
  const result = await importImages(store, FIXTURE_LAYOUT);
  if (result.failed.length) throw new Error(`importing the fixture failed: ${JSON.stringify(result.failed)}`);
  return store;
}

/** Every `gadget` run of a test file, so that a last test can grep them all for secrets. */
export class Transcript {
  readonly outputs: string[] = [];

  async gadget(args: string[], opts: Parameters<typeof gadget>[1] = {}): Promise<CliResult> {
    const result = await gadget(args, opts);
    this.outputs.push(`$ gadget ${args.join(' ')}\n${result.stdout}\n${result.stderr}`);
    return result;
  }

  /** The runs whose output contains any of `secrets`. */
  leaks(secrets: string[]): string[] {
    return this.outputs.filter((o) => secrets.some((s) => s && o.includes(s)));
  }
}

/** A config file for a test folder: a plain object (the folder cannot import the package). */
export function configSource(config: unknown): string {
  return `export default ${JSON.stringify(config, null, 2)};\n`;
}
