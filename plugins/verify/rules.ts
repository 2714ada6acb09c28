// The rule catalogue of `gadget verify`: every finding names one of these ids, which scripts
// may match on (they never change meaning). Each rule has a severity per profile: `spec`
// enforces the seed gadget artifact spec; `ig` accepts what Inspektor Gadget itself builds and
// runs, reporting the differences as warnings. 'off' means the profile does not raise it.

export type Profile = 'spec' | 'ig';
export const PROFILES: readonly Profile[] = ['spec', 'ig'];

/** A notice is information only: it neither fails an image nor counts as a warning. */
export type RuleSeverity = 'error' | 'warning' | 'notice' | 'off';

export interface RuleInfo {
  id: string;
  /** What the rule looks at (for grouping the table). */
  area: 'structure' | 'metadata' | 'content' | 'integrity' | 'signature' | 'policy';
  severity: Record<Profile, RuleSeverity>;
  /** Set for GADGET-SIGNATURE-MISSING: --require-signature makes it an error. */
  errorWithRequireSignature?: boolean;
  description: string;
}

const both = (s: RuleSeverity): Record<Profile, RuleSeverity> => ({ spec: s, ig: s });
const relaxed: Record<Profile, RuleSeverity> = { spec: 'error', ig: 'warning' };

export const RULES = [
  // ---- structure of the graph
  { id: 'GADGET-MANIFEST-INVALID', area: 'structure', severity: both('error'), description: 'Every manifest and index is JSON of the right kind (an OCI image index of image manifests, each with a config and a layer list), no object of it holds the same key twice, two keys that differ only in case, or a field\'s name in another case (ig\'s Go decoder reads them as one key, the last, whatever its case; an annotations map may hold keys that differ in case), and the index lists at least one manifest.' },
  { id: 'GADGET-DESCRIPTOR', area: 'structure', severity: both('error'), description: 'Every descriptor has a media type, a sha256:<64 hex> digest and a size that is a non-negative integer.' },
  { id: 'GADGET-INDEX', area: 'structure', severity: relaxed, description: 'The image is an OCI image index with one manifest per platform, not a single manifest.' },
  { id: 'GADGET-PLATFORM', area: 'structure', severity: both('error'), description: 'Every index entry names its platform, and the platform is linux/amd64 or linux/arm64.' },
  { id: 'GADGET-PLATFORM-DUPLICATE', area: 'structure', severity: both('error'), description: 'No platform is listed twice with different manifests.' },
  { id: 'GADGET-PLATFORM-SHARED', area: 'structure', severity: both('notice'), description: 'A notice: one manifest is listed for both platforms, as ig does when they are byte-identical (metadata-only, wasm-only and arch-independent images); the spec allows it.' },
  { id: 'GADGET-ARTIFACT-TYPE', area: 'structure', severity: both('error'), description: 'The manifest\'s artifactType, when present, is a gadget type: application/vnd.gadget.v1+binary, or the ebpf layer type that old images carry.' },
  { id: 'GADGET-ARTIFACT-TYPE-LEGACY', area: 'structure', severity: relaxed, description: 'The manifest has the artifactType application/vnd.gadget.v1+binary, not the pre-2024-09 form (none, or the ebpf layer type).' },
  { id: 'GADGET-CONFIG-TYPE', area: 'structure', severity: both('error'), description: 'The config\'s media type is application/vnd.gadget.config.v1+yaml (or the OCI empty config, see GADGET-CONFIG-EMPTY).' },
  { id: 'GADGET-CONFIG-EMPTY', area: 'structure', severity: relaxed, description: 'The config is gadget.yaml, not the OCI empty config that ig writes for a gadget without gadget.yaml.' },
  { id: 'GADGET-LAYER-TYPE', area: 'structure', severity: relaxed, description: 'Every layer is an ebpf, wasm or btfgen layer (ig skips layers of other types).' },
  { id: 'GADGET-LAYER-EMPTY', area: 'structure', severity: both('error'), description: 'No ebpf, wasm or btfgen layer is empty.' },
  { id: 'GADGET-EBPF-COUNT', area: 'structure', severity: both('error'), description: 'Every manifest has exactly one ebpf layer (the ig profile accepts none, see GADGET-NO-EBPF, but never two).' },
  { id: 'GADGET-NO-EBPF', area: 'structure', severity: { spec: 'off', ig: 'warning' }, description: 'A manifest without an ebpf layer (a metadata-only or wasm-only image, which ig runs); the spec profile reports GADGET-EBPF-COUNT instead.' },
  { id: 'GADGET-WASM-COUNT', area: 'structure', severity: both('error'), description: 'A manifest has at most one wasm layer.' },
  { id: 'GADGET-BTFGEN-COUNT', area: 'structure', severity: both('error'), description: 'A manifest has at most one btfgen layer.' },
  { id: 'GADGET-ANNOTATION-MISSING', area: 'structure', severity: relaxed, description: 'The annotations org.opencontainers.image.title, description, url, documentation, source and created are present on the index, on each index entry, on the manifest and on its config descriptor (ig writes the same map on all four).' },
  { id: 'GADGET-CREATED-FORMAT', area: 'structure', severity: relaxed, description: 'org.opencontainers.image.created is an RFC 3339 date-time (e.g. 2025-10-20T14:06:44+02:00) on the index, each index entry, the manifest and its config descriptor.' },
  // ---- gadget.yaml
  { id: 'GADGET-CONFIG-YAML', area: 'metadata', severity: both('error'), description: 'The gadget config blob (gadget.yaml) is UTF-8 YAML holding one mapping, at most 1 MiB.' },
  { id: 'GADGET-METADATA-SCHEMA', area: 'metadata', severity: both('error'), description: 'gadget.yaml is what ig can decode: known keys have the right types (a plain value, a list or a mapping where ig expects one).' },
  { id: 'GADGET-METADATA-UNKNOWN-KEY', area: 'metadata', severity: both('warning'), description: 'gadget.yaml has no key that ig ignores: an unknown key (a typo such as descriptoin, or a key ig reads only at run time such as profile_cpu\'s programs) is reported with its "did you mean".' },
  { id: 'GADGET-METADATA-ANNOTATIONS', area: 'metadata', severity: relaxed, description: 'The title, description, url, documentation and source annotations of the index, each index entry, the manifest and its config descriptor agree with gadget.yaml\'s name, description, homepageURL, documentationURL and sourceURL (after its own annotations map); `gadget list` shows the index\'s.' },
  // ---- layer content
  { id: 'GADGET-EBPF-ELF', area: 'content', severity: both('error'), description: 'The ebpf layer is a 64-bit relocatable ELF object (ET_REL) whose header and section table lie inside the file.' },
  { id: 'GADGET-EBPF-MACHINE', area: 'content', severity: both('error'), description: 'The ebpf object is built for eBPF: e_machine is EM_BPF (247).' },
  { id: 'GADGET-EBPF-ENDIAN', area: 'content', severity: both('error'), description: 'The ebpf object is little-endian, as amd64 and arm64 kernels need.' },
  { id: 'GADGET-EBPF-NO-BTF', area: 'content', severity: both('warning'), description: 'The ebpf object has a .BTF section (compile with -g), so that ig can read its types.' },
  { id: 'GADGET-WASM-INVALID', area: 'content', severity: both('error'), description: 'The wasm layer is a WebAssembly 1.0 binary that passes WebAssembly validation.' },
  { id: 'GADGET-WASM-API-VERSION', area: 'content', severity: both('warning'), description: 'The wasm module exports the function gadgetAPIVersion, which ig calls to learn its API version.' },
  { id: 'GADGET-BTFGEN-TAR', area: 'content', severity: both('error'), description: 'The btfgen layer is a readable tar archive, gzip-compressed or plain.' },
  { id: 'GADGET-BTFGEN-UNSAFE', area: 'content', severity: both('error'), description: 'The btfgen tarball holds only regular files and folders: no link, device, absolute path or ".." (the "./" entry of `tar -C dir .` is fine).' },
  { id: 'GADGET-BTFGEN-PATH', area: 'content', severity: both('error'), description: 'Every btfgen file is at <distro>/<version>/<arch>/<kernel>.btf, as in btfhub-archive, and appears once.' },
  { id: 'GADGET-BTFGEN-FLAT', area: 'content', severity: both('warning'), description: 'A btfgen file is at the top of the tarball (<kernel>.btf, as ig packs a flat btfgen folder) rather than at <distro>/<version>/<arch>/<kernel>.btf, where ig\'s loader looks.' },
  { id: 'GADGET-BTFGEN-ARCH', area: 'content', severity: both('error'), description: 'The btfgen arch folder matches the manifest\'s platform: x86_64 for amd64, arm64 for arm64 (a single manifest\'s platform is the one its descriptor or config descriptor names; when none is known this is the only content check left out).' },
  { id: 'GADGET-BTFGEN-BTF', area: 'content', severity: both('error'), description: 'Every btfgen file is little-endian BTF: it begins with the magic 0xeB9F and its header fits the file.' },
  { id: 'GADGET-BTFGEN-EMPTY', area: 'content', severity: both('warning'), description: 'The btfgen tarball holds at least one BTF file for the platform.' },
  { id: 'GADGET-CONTENT-SKIPPED', area: 'content', severity: both('warning'), description: 'An ebpf layer larger than 64 MiB or a wasm layer larger than 24 MiB is hashed, but its content is not checked (it would have to be held in memory).' },
  // ---- integrity
  { id: 'GADGET-BLOB-MISSING', area: 'integrity', severity: both('error'), description: 'Every blob of the graph (index, manifests, configs, layers) is in the store.' },
  { id: 'GADGET-BLOB-SIZE', area: 'integrity', severity: both('error'), description: 'Every blob has the size its descriptor says.' },
  { id: 'GADGET-BLOB-DIGEST', area: 'integrity', severity: both('error'), description: 'Every blob, re-hashed, has the sha256 digest its descriptor says.' },
  // ---- signatures (checked on the index digest, as ig does)
  { id: 'GADGET-SIGNATURE-MISSING', area: 'signature', severity: both('warning'), errorWithRequireSignature: true, description: 'With --key, --trusted-root or --notation-cert: the image has a cosign or notation signature (an error with --require-signature).' },
  { id: 'GADGET-SIGNATURE-INVALID', area: 'signature', severity: both('error'), description: 'With --key, --trusted-root or --notation-cert: at least one signature of the image verifies with a given key or certificate (reported when no more specific rule below applies).' },
  { id: 'GADGET-SIGNATURE-IDENTITY', area: 'signature', severity: both('error'), description: 'Keyless: the signing certificate names the identity and OIDC issuer given with --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp].' },
  { id: 'GADGET-SIGNATURE-UNTRUSTED', area: 'signature', severity: both('error'), description: 'Keyless: the signing certificate chains to a certificate authority of the trusted root, and its signed certificate timestamp verifies with a CT log of it.' },
  { id: 'GADGET-SIGNATURE-EXPIRED', area: 'signature', severity: both('error'), description: 'Keyless: the signing certificate was valid when the signature was logged or timestamped.' },
  { id: 'GADGET-SIGNATURE-TLOG', area: 'signature', severity: both('error'), description: 'Keyless: the transparency log entry proves inclusion (inclusion proof and signed checkpoint, or signed entry timestamp) with a log key of the trusted root.' },
  { id: 'GADGET-SIGNATURE-DIGEST', area: 'signature', severity: both('error'), description: 'The signed payload (cosign payload, in-toto subject, message digest, log entry) names the image\'s own digest.' },
  { id: 'GADGET-IMAGE-MISSING', area: 'integrity', severity: both('error'), description: 'Every reference given to verify names an image of the store (each one that does not fails by itself, named; the others are still verified).' },
  // ---- what verify --remote reads
  { id: 'GADGET-REMOTE-EMPTY', area: 'integrity', severity: both('error'), description: 'With --remote: every input yields at least one image to verify (a prefix under which the catalog lists no repository, or a repository without tags, fails instead of passing).' },
  { id: 'GADGET-REMOTE-UNLISTED', area: 'integrity', severity: both('error'), description: 'With --remote: the tags of every repository an input names can be listed (a repository that does not exist, or one under a prefix whose tag list the registry fails on, fails by itself while the other inputs are still verified).' },
  { id: 'GADGET-REMOTE-UNREADABLE', area: 'integrity', severity: both('error'), description: 'With --remote: every manifest and blob of the image can be read from the registry to the end (one whose transfer breaks off on every try and resumption, or on which the registry keeps failing with HTTP 5xx or 429 after the retries, fails the image by itself: it is not known to be missing, GADGET-BLOB-MISSING, or damaged, GADGET-BLOB-DIGEST; the other images are still verified). A registry that cannot be reached at all stops the command (exit 2).' },
  // ---- policy
  { id: 'GADGET-NOT-ALLOWED', area: 'policy', severity: both('error'), description: 'With --allow: the image matches one of the patterns (name@sha256:..., name:tag, or a prefix ending in *), as ig\'s --allowed-gadgets.' },
] as const satisfies readonly RuleInfo[];

export type RuleId = (typeof RULES)[number]['id'];

const BY_ID = new Map<string, RuleInfo>(RULES.map((r) => [r.id, r]));

export function ruleInfo(id: RuleId): RuleInfo {
  return BY_ID.get(id)!;
}

/** The severity a finding of `id` has in `profile`; 'off' findings are dropped. */
export function severityOf(id: RuleId, profile: Profile, opts: { requireSignature?: boolean } = {}): RuleSeverity {
  const rule = ruleInfo(id);
  if (rule.errorWithRequireSignature && opts.requireSignature) return 'error';
  return rule.severity[profile];
}

export function isProfile(value: unknown): value is Profile {
  return value === 'spec' || value === 'ig';
}
