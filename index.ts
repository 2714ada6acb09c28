// The library API of gadget-oci: `import { openStore, defineConfig, build } from 'gadget-oci'`.
export { GadgetError, usageError, isGadgetError } from './lib/errors.js';
export * from './lib/oci/mediatypes.js';
export type { Descriptor, Manifest, Index, Platform, Annotations } from './lib/oci/types.js';
export { sha256, DigestVerifier, isDigest } from './lib/oci/digest.js';
export { encodeJSON, encodeJSONBytes } from './lib/oci/json.js';
export { parseRef, Reference, isSignatureTag } from './lib/oci/reference.js';
export type { Target, Referrer } from './lib/oci/target.js';
export { copyGraph, CopySession, type CopyOptions, type CopyStats } from './lib/oci/copy.js';
export { openStore, Store, storeKey, type ImageRecord } from './store/store.js';
export { importImages, exportImages } from './store/transfer.js';
export { gc, fsck, type FsckProblem } from './store/maintenance.js';
export { inspectImage, type Inspection } from './store/inspect.js';
export { LayoutSource } from './store/layout-source.js';
export { defineConfig, loadConfig, type GadgetConfig, type TaskDefinition } from './lib/runner/config.js';
export type { Plugin, PluginContext, Artifact, Logger, Progress } from './lib/runner/plugin.js';
export { runTask, runSteps } from './lib/runner/tasks.js';
export { build, buildGadget } from './plugins/build.js';
export type { GadgetSpec } from './plugins/build/spec.js';
