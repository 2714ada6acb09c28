// Media types of OCI, Docker and Inspektor Gadget that the program reads or writes.

export const MT_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MT_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MT_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MT_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MT_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MT_EMPTY = 'application/vnd.oci.empty.v1+json';

/** The OCI empty descriptor's content: `{}`. */
export const EMPTY_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
export const EMPTY_BYTES = Buffer.from('{}');

export const GADGET_ARTIFACT_TYPE = 'application/vnd.gadget.v1+binary';
export const GADGET_CONFIG = 'application/vnd.gadget.config.v1+yaml';
export const GADGET_EBPF = 'application/vnd.gadget.ebpf.program.v1+binary';
export const GADGET_WASM = 'application/vnd.gadget.wasm.program.v1+binary';
export const GADGET_BTFGEN = 'application/vnd.gadget.btfgen.v1+binary';

export const COSIGN_SIG_ARTIFACT = 'application/vnd.dev.cosign.artifact.sig.v1+json';
export const COSIGN_SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGSTORE_BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const NOTATION_SIGNATURE = 'application/vnd.cncf.notary.signature';

export const ANN_REF_NAME = 'org.opencontainers.image.ref.name';
export const ANN_CREATED = 'org.opencontainers.image.created';
export const ANN_TITLE = 'org.opencontainers.image.title';
export const ANN_DESCRIPTION = 'org.opencontainers.image.description';
export const ANN_URL = 'org.opencontainers.image.url';
export const ANN_DOCUMENTATION = 'org.opencontainers.image.documentation';
export const ANN_SOURCE = 'org.opencontainers.image.source';
export const ANN_BUILDER_VERSION = 'io.inspektor-gadget.builder.version';

/** The OCI artifact manifest of image-spec 1.1's release candidates (children: `blobs`); old stores hold some. */
export const MT_ARTIFACT_MANIFEST = 'application/vnd.oci.artifact.manifest.v1+json';

/** Manifest types whose children are config + layers. */
export const MANIFEST_TYPES = new Set([MT_MANIFEST, MT_DOCKER_MANIFEST]);
/** Manifest types whose children are other manifests. */
export const INDEX_TYPES = new Set([MT_INDEX, MT_DOCKER_LIST]);

export function isManifestType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && (MANIFEST_TYPES.has(mediaType) || INDEX_TYPES.has(mediaType));
}

/** The Accept header that makes a registry return any of the four manifest types. */
export const MANIFEST_ACCEPT = [MT_INDEX, MT_MANIFEST, MT_DOCKER_LIST, MT_DOCKER_MANIFEST].join(', ');
