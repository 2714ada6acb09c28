// The architectures a gadget image carries.

export type Arch = 'amd64' | 'arm64';
/** The architectures ig builds, in the order its index lists them. */
export const ARCHS: readonly Arch[] = ['amd64', 'arm64'];
