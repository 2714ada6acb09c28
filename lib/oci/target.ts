// The storage interface that both ends of a copy implement: the local store and a remote
// repository (and, for import/export, an OCI layout folder). copyGraph (copy.ts) moves graphs
// between any two of them.
import type { Readable } from 'node:stream';
import type { Descriptor } from './types.js';

/** Something found through a subject: a signature, attestation or other referrer. */
export interface Referrer {
  descriptor: Descriptor;
  /**
   * Set only when this tag points AT `descriptor` itself, so that a copy re-creates it:
   * cosign's `sha256-<hex>.sig` / `.att` -> the signature manifest; the referrers fallback tag
   * `sha256-<hex>` -> the fallback index itself (its children are the referrer manifests).
   * Referrers found through the referrers API or their `subject` field have no tag.
   */
  tag?: string;
}

export interface Target {
  /** For messages: "store /var/lib/ig/oci-store", "localhost:5000/gadgets/x". */
  readonly name: string;
  /**
   * The bytes of a blob or manifest as a stream. Implementations may verify; callers that
   * store the bytes must verify (push does).
   */
  fetch(descriptor: Descriptor, signal?: AbortSignal): Promise<Readable>;
  exists(descriptor: Descriptor, signal?: AbortSignal): Promise<boolean>;
  /**
   * Stores the content of `descriptor`, verifying digest and size while streaming. Nothing is
   * visible to readers unless the content matches. Pushing a manifest whose children are
   * absent is the caller's error (copyGraph pushes children first).
   */
  push(descriptor: Descriptor, content: Readable, signal?: AbortSignal): Promise<void>;
  /** A tag (or digest) in this target's namespace to a descriptor; throws GadgetError if absent. */
  resolve(reference: string, signal?: AbortSignal): Promise<Descriptor>;
  /** Points `reference` (a tag in this target's namespace) at `descriptor`. */
  tag(descriptor: Descriptor, reference: string, signal?: AbortSignal): Promise<void>;
  /** Signatures and other artifacts that refer to `descriptor`. */
  referrers(descriptor: Descriptor, signal?: AbortSignal): Promise<Referrer[]>;
  /**
   * True when a manifest present here implies that its whole graph is (a registry refuses a
   * manifest whose children are missing). Otherwise (the store, whose blobs can be deleted one
   * by one) copyGraph checks every node of a present graph and re-copies what is missing.
   */
  readonly keepsGraphsWhole?: boolean;
  /**
   * Optional: what a tag points at, cheaply (a HEAD on a registry), or undefined when the tag
   * does not exist. copyGraph uses it to skip an image whose tags already point at it.
   */
  peek?(reference: string, signal?: AbortSignal): Promise<Descriptor | undefined>;
  /**
   * Optional: stores a blob unless the target holds it, learning which from the request that
   * starts the transfer (a registry's mount-or-upload POST), so that copyGraph asks no
   * existence question first. `open` is called only when the bytes are needed. 'mounted': a
   * registry took it from another of its repositories (copied, no bytes moved).
   */
  pushBlob?(descriptor: Descriptor, open: () => Promise<Readable>, signal?: AbortSignal, opts?: PushBlobOptions): Promise<'copied' | 'skipped' | 'mounted'>;
  /**
   * True when every descriptor in a manifest this target holds names its blob's true size (the
   * store: every blob was checked against its descriptor on the way in). copyGraph then tells
   * pushBlob so, and a blob the destination already has needs no size check.
   */
  readonly holdsTrueSizes?: boolean;
  /**
   * Optional: false when the target knows without asking that it does not hold `descriptor`
   * (a registry repository it was never seen in). copyGraph then pushes it without an
   * existence check; pushing what is there anyway is harmless.
   */
  mayHave?(descriptor: Descriptor): boolean;
  /** Optional: pushes a manifest and points the tag `reference` at it in one step (a registry's PUT by tag). */
  pushTagged?(descriptor: Descriptor, content: Readable, reference: string, signal?: AbortSignal): Promise<void>;
}

export interface PushBlobOptions {
  /**
   * The descriptor's size is the blob's (its source vouches for it). Otherwise a blob the
   * destination takes without reading it (already there, mounted) has its size checked there.
   */
  sizeKnown?: boolean;
}

/** The largest manifest or index this program reads into memory. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
