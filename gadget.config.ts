// This repository's own gadgets: the demo that `npm start` runs (`gadget run default`).
import { defineConfig, build, serve, verify } from 'gadget-oci';

export default defineConfig({
  // A store of its own, so that the demo leaves ig's store (~/.ig/oci-store) alone.
  store: '.gadget-store',
  gadgets: [
    { dir: 'examples/trace_open', ref: 'ghcr.io/gadget-oci/examples/trace_open:latest' },
    { dir: 'examples/hello_wasm', ref: 'ghcr.io/gadget-oci/examples/hello_wasm:latest' },
  ],
  tasks: {
    default: { description: 'build the example gadgets for amd64 and arm64 into the store', steps: [build()] },
    // hello_wasm is wasm-only: the spec profile would reject it, ig's accepts it with warnings.
    check: { description: 'build, then verify the images as ig runs them', dependsOn: ['default'], steps: [verify({ profile: 'ig' })] },
    serve: { description: 'build and verify, then serve the store at http://127.0.0.1:5000 until Ctrl-C', dependsOn: ['check'], steps: [serve()] },
  },
});
