// SPDX-License-Identifier: GPL-2.0
// trace_open: reports every file opened on the host (pid, parent pid, command, file name).
// Built with Debian's clang + libbpf-dev only (no vmlinux.h): the few kernel types it reads
// are declared below with preserve_access_index, so the loader relocates them (CO-RE) and
// btfgen can cut kernel BTF down to exactly these fields.
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

// bpf_tracing.h reads kprobe arguments through the user-space register layout of the target
// architecture (the same as the kernel's), declared here so that one host builds both.
#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
	unsigned long rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss;
};
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
#endif
#include <bpf/bpf_tracing.h>

struct task_struct {
	int tgid;
	struct task_struct *real_parent;
} __attribute__((preserve_access_index));

#define TASK_COMM_LEN 16
#define NAME_MAX 255

struct event {
	__u32 pid;
	__u32 ppid;
	__s32 dfd;
	char comm[TASK_COMM_LEN];
	char fname[NAME_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

const volatile __u32 target_pid = 0;

SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(trace_open, int dfd, const char *filename)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (target_pid && pid != target_pid)
		return 0;

	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->pid = pid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->dfd = dfd;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_user_str(e->fname, sizeof(e->fname), filename);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
