// The files of a new gadget project (`gadget init`): small, real, and buildable on a machine
// with clang and libbpf's headers (Debian: clang llvm libbpf-dev), without vmlinux.h.

export interface TemplateOptions {
  /** The project's package name. */
  name: string;
  /** The image repository prefix, e.g. `ghcr.io/myorg`. */
  registry: string;
  /** The version range of gadget-oci that package.json depends on. */
  version: string;
  /** The version range of typescript, for `npx tsc` (the one this package is built with). */
  typescript: string;
  wasm: boolean;
}

export function packageJSON(o: TemplateOptions): string {
  const pkg = {
    name: o.name,
    version: '0.1.0',
    private: true,
    type: 'module',
    scripts: { build: 'gadget run default', check: 'gadget run check', list: 'gadget list' },
    dependencies: { 'gadget-oci': o.version },
    // `npx tsc` type-checks gadget.config.ts; without it npx offers the unrelated `tsc` package.
    devDependencies: { typescript: o.typescript },
  };
  return JSON.stringify(pkg, null, 2) + '\n';
}

export const TSCONFIG = `{
  "compilerOptions": {
    "target": "ES2022",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "strict": true,
    "noEmit": true,
    "skipLibCheck": true
  },
  "include": ["gadget.config.ts"]
}
`;

export const GITIGNORE = `node_modules/
.gadget-store/
`;

/** `text` as a single-quoted TypeScript string literal: whatever it holds, nothing breaks out. */
export function stringLiteral(text: string): string {
  return `'${JSON.stringify(text).slice(1, -1).replace(/'/g, "\\'")}'`;
}

export function configFile(o: TemplateOptions): string {
  const gadget = (name: string): string => `    { dir: ${stringLiteral(`gadgets/${name}`)}, ref: ${stringLiteral(`${o.registry}/${name}:latest`)} },`;
  const gadgets = [gadget('trace_exec')];
  if (o.wasm) gadgets.push(gadget('hello_wasm'));
  return `// Your gadgets and the tasks that build, check and ship them. Run \`npx gadget tasks\`.
import { defineConfig, build, verify } from 'gadget-oci';

export default defineConfig({
  // The project's own store, so that ig's store (~/.ig/oci-store) is left alone.
  store: '.gadget-store',
  gadgets: [
${gadgets.join('\n')}
  ],
  tasks: {
    default: { description: 'build every gadget for amd64 and arm64', steps: [build()] },
    check: { description: 'build, then verify as ig runs them', dependsOn: ['default'], steps: [verify({ profile: 'ig' })] },
  },
});
`;
}

export const EBPF_SOURCE = `// SPDX-License-Identifier: GPL-2.0
// trace_exec: one event per execve() on the host, with the process ID and command name.
// Needs only clang and libbpf's headers; no vmlinux.h.
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#define TASK_COMM_LEN 16

struct event {
	__u32 pid;
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

// A parameter: gadget.yaml's params.ebpf.target_pid sets it when the gadget starts.
const volatile __u32 target_pid = 0;

SEC("tracepoint/syscalls/sys_enter_execve")
int trace_exec(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (target_pid && pid != target_pid)
		return 0;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
`;

export const EBPF_METADATA = `name: trace exec
description: Trace the programs that processes start
params:
  ebpf:
    target_pid:
      key: pid
      defaultValue: "0"
      description: Show only this process ID (0 for all)
`;

export const EBPF_BUILD = `# ig's build.yaml format: \`ig image build gadgets/trace_exec\` reads it too.
ebpfsource: program.bpf.c
metadata: gadget.yaml
`;

export const WASM_METADATA = `name: hello wasm
description: A wasm-only gadget that says which wasm API it speaks
`;

export const WASM_BUILD = `# A wasm-only gadget: the module is already compiled (from program.wat with wabt's wat2wasm).
wasm: program.wasm
metadata: gadget.yaml
`;

export const WASM_TEXT = `;; The smallest wasm gadget ig accepts: gadgetAPIVersion() says which wasm API the module
;; speaks, the lifecycle hooks return 0 for success. Rebuild with: wat2wasm program.wat -o program.wasm
(module
  (func (export "gadgetAPIVersion") (result i64)
    i64.const 1)
  (func (export "gadgetInit") (result i32)
    i32.const 0)
  (func (export "gadgetStart") (result i32)
    i32.const 0)
  (func (export "gadgetStop") (result i32)
    i32.const 0))
`;

/** WASM_TEXT compiled by wat2wasm (111 bytes). */
export const WASM_MODULE = Buffer.from(
  'AGFzbQEAAAABCQJgAAF+YAABfwMFBAABAQEHPAQQZ2FkZ2V0QVBJVmVyc2lvbgAACmdhZGdldEluaXQAAQtnYWRnZXRTdGFydAACCmdhZGdldFN0b3AAAwoVBAQAQgELBABBAAsEAEEACwQAQQAL',
  'base64',
);
