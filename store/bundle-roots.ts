// What a bundle write adds, as roots: the tags this run set (images, and cosign's signature
// tags) and the untagged OCI 1.1 referrers it copied, each with every digest its graph needs.
// When a blob turns out damaged as the tar is written, these say what it costs: the roots whose
// graph holds it, and, since an image never travels without its signatures, the roots that a
// failed signature signs, up the chain.
import type { GadgetError } from '../lib/errors.js';
import type { Descriptor } from '../lib/oci/types.js';

export interface BundleRoot {
  /** The tag, or the referrer's digest (untagged). */
  id: string;
  descriptor: Descriptor;
  tagged: boolean;
  /** For a signature (a referrer, or a cosign tag `sha256-<hex>.sig`): the digest it is about. */
  subject?: string;
  /** Every digest of its graph, its own included. */
  graph: Set<string>;
}

/** The digest a cosign tag (`[REPO:]sha256-<hex>.sig`, `.att`, `.sbom`, or the fallback `sha256-<hex>`) is about. */
export function taggedSubject(ref: string): string | undefined {
  const tag = /(?:^|:)(sha256-[a-f0-9]{64})(\.(sig|att|sbom))?$/.exec(ref)?.[1];
  return tag ? `sha256:${tag.slice('sha256-'.length)}` : undefined;
}

/**
 * The roots `damaged` costs, each with the error of the damage that costs it: those whose graph
 * holds a damaged digest, then every root whose graph holds the subject of a signature that
 * failed (an image is not written without its signature), until nothing more fails.
 */
export function rootsCostBy(roots: BundleRoot[], damaged: Map<string, GadgetError>): Map<BundleRoot, GadgetError> {
  const failed = new Map<BundleRoot, GadgetError>();
  for (const root of roots) {
    for (const [digest, error] of damaged) {
      if (root.graph.has(digest)) {
        failed.set(root, error);
        break;
      }
    }
  }
  for (let grew = true; grew; ) {
    grew = false;
    for (const [signature, error] of [...failed]) {
      if (!signature.subject) continue;
      for (const root of roots) {
        if (!failed.has(root) && root.graph.has(signature.subject)) {
          failed.set(root, error);
          grew = true;
        }
      }
    }
  }
  return failed;
}

/** The digests failed roots stood for: each root's own, and the subject a failed signature is about. */
export function digestsOf(failed: Iterable<BundleRoot>): Set<string> {
  const out = new Set<string>();
  for (const root of failed) {
    out.add(root.descriptor.digest);
    if (root.subject) out.add(root.subject);
  }
  return out;
}
