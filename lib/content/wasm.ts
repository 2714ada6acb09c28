// Checks of the wasm layer: a WebAssembly 1.0 binary that the engine accepts, exporting the
// `gadgetAPIVersion` function that ig calls to learn which wasm API the module speaks.
// The module is compiled (to list its exports) but never instantiated: no gadget code runs.
import { contentError, contentWarning, type ContentProblem } from './problem.js';

const MAGIC = Buffer.from([0x00, 0x61, 0x73, 0x6d]);
const VERSION_1 = Buffer.from([0x01, 0x00, 0x00, 0x00]);
export const GADGET_API_VERSION_EXPORT = 'gadgetAPIVersion';

export function checkWasm(bytes: Buffer): ContentProblem[] {
  if (bytes.length < 8 || !bytes.subarray(0, 4).equals(MAGIC)) {
    return [contentError('WASM-MAGIC', 'not a WebAssembly binary: it does not start with "\\0asm"')];
  }
  if (!bytes.subarray(4, 8).equals(VERSION_1)) {
    return [contentError('WASM-MAGIC', `unsupported WebAssembly binary version ${bytes.readUInt32LE(4)} (expected 1)`)];
  }
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(new Uint8Array(bytes));
  } catch (err) {
    // The engine's reason ("Compiling function #3 failed: ...") is the useful part.
    const reason = err instanceof Error ? err.message.replace(/^WebAssembly\.Module\(\): /, '') : String(err);
    return [contentError('WASM-INVALID', `the WebAssembly module does not validate: ${reason}`)];
  }
  const exported = WebAssembly.Module.exports(module).find((e) => e.name === GADGET_API_VERSION_EXPORT);
  if (!exported) {
    return [contentWarning('WASM-API-VERSION', `the module does not export ${GADGET_API_VERSION_EXPORT}(), so ig cannot tell which wasm API it uses`)];
  }
  if (exported.kind !== 'function') {
    return [contentWarning('WASM-API-VERSION', `the module exports ${GADGET_API_VERSION_EXPORT} as a ${exported.kind}, but ig calls it as a function`)];
  }
  return [];
}
