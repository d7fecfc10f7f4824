//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/* The socket hooks: what tracer.bpf.c sees with raw syscall tracepoints,
 * seen with fentry/fexit at the kernel's socket layer instead, on kernels
 * that have them (5.15+: BTF trampolines and bpf_task_pt_regs). A process
 * that moves no bytes over an inet socket pays nothing for them; the
 * syscall tracepoints run for every syscall of every process.
 *
 * The events are the tracer's, built by the same code (the headers), so
 * user space cannot tell the paths apart:
 * - reads and writes: inet_recvmsg and inet_sendmsg (and inet6_*), which
 *   every read, readv, recvfrom, recvmsg, write, writev, sendto and sendmsg
 *   of a TCP socket goes through (also while the socket is in the
 *   propagation's sock hash, where tcp_sendmsg is not called). Entry keeps
 *   where the bytes are (the msghdr's iov_iter: a user buffer, or the
 *   kernel's copy of an iovec array); exit copies what moved. Calls from
 *   other syscalls (io_uring, sendmmsg, splice, sendfile's pages) are
 *   left out: the tracer does not see them either.
 * - sendfile: its syscall's exit, with the bytes' count only, as the tracer.
 * - connect, accept: __sys_connect and __sys_accept4; close: its syscall.
 * The fd an event names is the syscall's, read from the task's saved user
 * registers. Everything else (process exits) stays with the tracer's
 * sched_process_exit program, and every map is the tracer's (the loader
 * passes them in), except where a call keeps its arguments. */
#include "headers/kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "headers/selection.h"
#include "headers/events.h"
#include "headers/threads.h"
#include "headers/sockets.h"
#include "headers/capture.h"
#include "headers/frames.h"
#include "headers/propagation.h"
#include "headers/request_head.h"
#include "headers/serving.h"
#include "headers/connections.h"
#include "headers/planning.h"
#include "headers/tls.h"

char __license[] SEC("license") = "GPL";

/* ---- The kernel's types, as far as these hooks read them (CO-RE) ---- */

/* The kinds of iov_iter read here; their values differ between kernels
 * (6.1: IOVEC 0 .. UBUF 6; 6.18: UBUF 0, IOVEC 1) and are taken by name. */
enum iter_type {
	ITER_UBUF = 0,
	ITER_IOVEC = 1,
};

struct iov_iter {
	__u8 iter_type;
	__u64 iov_offset;
	__u64 count;
	void *ubuf;
	const struct iovec *__iov; /* 6.4 on; iov before */
	__u64 nr_segs;
} __attribute__((preserve_access_index));

/* The iovec array's field before 6.4. */
struct iov_iter___iov {
	const struct iovec *iov;
} __attribute__((preserve_access_index));

struct msghdr {
	struct iov_iter msg_iter;
} __attribute__((preserve_access_index));

/* Syscall numbers differ per architecture; the loader fills them in. */
volatile const __s64 nr_read = -1, nr_write = -1, nr_readv = -1, nr_writev = -1;
volatile const __s64 nr_recvfrom = -1, nr_sendto = -1, nr_recvmsg = -1, nr_sendmsg = -1;

#if defined(__TARGET_ARCH_x86)
#define SYSCALL_NR(r) ((r)->orig_ax)
#define SYSCALL_FD(r) ((r)->di)
#elif defined(__TARGET_ARCH_arm64)
#define SYSCALL_NR(r) ((r)->syscallno)
#define SYSCALL_FD(r) ((r)->orig_x0)
#endif

/* ---- Reads and writes ---- */

/* A send or receive call, from its entry to its exit. */
struct sock_call {
	__u64 base;     /* the user buffer, or the kernel's copy of the iovec array */
	__u64 iov_user; /* with iovec: the process's iovec array (entries past MAX_IOV, frames) */
	__u64 sk;       /* struct sock */
	__u32 fd;
	__u32 nr_segs;  /* with iovec: entries of the array */
	__u32 offset;   /* bytes of the buffer (or the first entry) already used at entry */
	__u8 active;    /* a call of interest is under way */
	__u8 iovec;     /* base is an iovec array of more than one entry */
	__u8 not_injected; /* enum not_injected: why this write's request carries no traceparent */
	__u8 pad;
};

THREAD_MAP(sock_calls, struct sock_call);

/* followed says whether syscall nr is one the tracer follows as a read (or
 * a write). */
static __always_inline bool followed(__s64 nr, bool writing)
{
	return writing ? nr == nr_write || nr == nr_sendto || nr == nr_writev || nr == nr_sendmsg
		       : nr == nr_read || nr == nr_recvfrom || nr == nr_readv || nr == nr_recvmsg;
}

/* user_iovecs is where the process's iovec array of syscall nr is: the
 * kernel's copy holds its entries, but the tracer reads those past
 * MAX_IOV from the process, and so must the socket hooks. */
static __always_inline __u64 user_iovecs(struct pt_regs *regs, __s64 nr)
{
	if (nr == nr_readv || nr == nr_writev)
		return SYSCALL_ARG2(regs);
	struct user_msghdr msg;
	if ((nr == nr_recvmsg || nr == nr_sendmsg) &&
	    bpf_probe_read_user(&msg, sizeof(msg), (void *)SYSCALL_ARG2(regs)) == 0)
		return (__u64)msg.msg_iov;
	return 0;
}

/* keep_iter remembers where the bytes of msg are, as they are at entry:
 * by exit the iterator has moved past them. It returns false for an
 * iterator over anything but user memory. One iovec entry (recvfrom and
 * sendto before 6.4) is kept as the buffer it is. */
static __always_inline bool keep_iter(struct sock_call *c, struct msghdr *msg)
{
	struct iov_iter *it = &msg->msg_iter;
	__u8 type = BPF_CORE_READ(it, iter_type);
	c->offset = BPF_CORE_READ(it, iov_offset);
	if (bpf_core_enum_value_exists(enum iter_type, ITER_UBUF) &&
	    type == bpf_core_enum_value(enum iter_type, ITER_UBUF)) {
		c->iovec = 0;
		c->base = (__u64)BPF_CORE_READ(it, ubuf);
		return true;
	}
	if (type != bpf_core_enum_value(enum iter_type, ITER_IOVEC))
		return false;
	const struct iovec *iov;
	if (bpf_core_field_exists(it->__iov))
		iov = BPF_CORE_READ(it, __iov);
	else
		iov = BPF_CORE_READ((struct iov_iter___iov *)it, iov);
	c->nr_segs = BPF_CORE_READ(it, nr_segs);
	c->iovec = c->nr_segs > 1;
	if (c->iovec) {
		c->base = (__u64)iov;
		return true;
	}
	/* The array is the kernel's copy: kernel memory. */
	return bpf_core_read(&c->base, sizeof(c->base), &iov->iov_base) == 0;
}

/* call_moved makes c's bytes readable as the tracer's struct moved: len
 * bytes from the start. It returns false when they cannot be read. */
static __always_inline bool call_moved(struct moved *m, struct sock_call *c, __u32 len)
{
	m->len = len;
	if (!c->iovec) {
		m->niov = 0;
		m->count = 0;
		m->base = c->base + c->offset;
		return true;
	}
	m->iov_user = c->iov_user;
	m->count = c->nr_segs < IOV_ALL_MAX ? c->nr_segs : IOV_ALL_MAX;
	m->niov = c->nr_segs < MAX_IOV ? c->nr_segs : MAX_IOV;
	/* The array is the kernel's copy: kernel memory. */
	if (bpf_probe_read_kernel(m->iov, sizeof(m->iov[0]) * (m->niov & (MAX_IOV * 2 - 1)), (void *)c->base) != 0)
		return false;
	if (c->offset) { /* within the first entry, at entry */
		if (c->offset >= m->iov[0].iov_len)
			return false;
		m->iov[0].iov_base += c->offset;
		m->iov[0].iov_len -= c->offset;
	}
	return true;
}

/* call_entry keeps a call of interest's arguments for its exit, and plans
 * a write's traceparent as the tracer does at sys_enter. */
static __always_inline void call_entry(struct socket *sock, struct msghdr *msg, bool writing)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	/* Every inet send and receive of every process: one bit test. */
	if (!selected(pid_tgid >> 32))
		return;
	/* The syscall's registers: the fd the event names is the syscall's. */
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	__s64 nr = SYSCALL_NR(regs);
	if (!followed(nr, writing) || BPF_CORE_READ(sock, type) != SOCK_STREAM)
		return;
	struct sock_call *c = THREAD_GET(sock_calls, pid_tgid, true);
	if (!c) {
		count(COUNTER_LOST_ARGS);
		return;
	}
	c->active = 0;
	if (!keep_iter(c, msg))
		return;
	if (c->iovec)
		c->iov_user = user_iovecs(regs, nr);
	c->fd = (__u32)SYSCALL_FD(regs);
	c->sk = (__u64)BPF_CORE_READ(sock, sk);
	c->not_injected = 0;
	c->active = 1;
	if (!writing || !(propagate || propagate_tcp))
		return;
	struct moved *m = moved_scratch();
	if (m && call_moved(m, c, BPF_CORE_READ(msg, msg_iter.count)) && m->len > 0)
		c->not_injected = plan_injection(pid_tgid, m, c->fd, (struct sock *)c->sk);
}

/* call_exit reports what the call moved, as the tracer does at sys_exit. */
static __always_inline void call_exit(int ret, bool reading)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!selected(pid_tgid >> 32))
		return;
	struct sock_call *c = THREAD_GET(sock_calls, pid_tgid, false);
	if (!c || !c->active)
		return;
	c->active = 0;
	struct sock *sk = (struct sock *)c->sk;
	struct event *e = ret > 0 ? new_event(reading ? EVENT_READ : EVENT_WRITE, pid_tgid, c->fd) : 0;
	if (!e || !fill_tuple(e, sk)) {
		if (!reading) /* no event will say what became of it */
			drop_plan(pid_tgid);
		return;
	}
	e->len = ret;
	struct moved *m = moved_scratch();
	if (!m)
		return;
	bool readable = call_moved(m, c, ret);
	/* TLS records of a probed library call: its plaintext is sent instead. */
	if (readable && tls_ciphertext(pid_tgid, e->sock, m, reading))
		return;
	send_moved(pid_tgid, e, m, readable, reading, c->not_injected);
}

/* Two sets of the same four programs: inet_* serve IPv4 sockets, inet6_*
 * IPv6 ones (and IPv4-mapped). A fexit program's return value follows its
 * function's arguments. */
#define SOCK_HOOKS(send_enter, send_exit, recv_enter, recv_exit, sendmsg, recvmsg)   \
	SEC("fentry/" #sendmsg)                                                     \
	int send_enter(__u64 *ctx)                                                  \
	{                                                                           \
		call_entry((struct socket *)ctx[0], (struct msghdr *)ctx[1], true);  \
		return 0;                                                           \
	}                                                                           \
	/* (sock, msg, size) -> int */                                              \
	SEC("fexit/" #sendmsg)                                                      \
	int send_exit(__u64 *ctx)                                                   \
	{                                                                           \
		call_exit((int)ctx[3], false);                                      \
		return 0;                                                           \
	}                                                                           \
	/* A peek (flags MSG_PEEK) is not followed: the next read takes the     \
	 * same bytes, and reports them. */                                         \
	SEC("fentry/" #recvmsg)                                                     \
	int recv_enter(__u64 *ctx)                                                  \
	{                                                                           \
		if (!((int)ctx[3] & MSG_PEEK))                                      \
			call_entry((struct socket *)ctx[0], (struct msghdr *)ctx[1], false); \
		return 0;                                                           \
	}                                                                           \
	/* (sock, msg, size, flags) -> int */                                       \
	SEC("fexit/" #recvmsg)                                                      \
	int recv_exit(__u64 *ctx)                                                   \
	{                                                                           \
		call_exit((int)ctx[4], true);                                       \
		return 0;                                                           \
	}

SOCK_HOOKS(send4_enter, send4_exit, recv4_enter, recv4_exit, inet_sendmsg, inet_recvmsg)
SOCK_HOOKS(send6_enter, send6_exit, recv6_enter, recv6_exit, inet6_sendmsg, inet6_recvmsg)

/* ---- sendfile, connect, accept, close ---- */

/* The syscall wrappers are named per architecture (__x64_sys_close,
 * __arm64_sys_close): the loader puts the prefix in front. Their one
 * argument is the user registers. */

/* sendfile(out_fd, in_fd, offset, count) -> long: the bytes come from a
 * file; only their count is reported. */
SEC("fexit/sys_sendfile64")
int sendfile_exit(__u64 *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!selected(pid_tgid >> 32))
		return 0;
	__s64 ret = (__s64)ctx[1];
	__u32 fd = SYSCALL_ARG1((struct pt_regs *)ctx[0]);
	struct sock *sk = ret > 0 ? fd_socket(fd) : 0;
	struct event *e = sk ? new_event(EVENT_WRITE, pid_tgid, fd) : 0;
	if (!e || !fill_tuple(e, sk)) {
		drop_plan(pid_tgid);
		return 0;
	}
	e->len = ret > 0xffffffff ? 0xffffffff : (__u32)ret;
	struct moved *m = moved_scratch();
	if (m) /* the bytes come from a file; only their count matters */
		send_moved(pid_tgid, e, m, false, false, 0);
	return 0;
}

SEC("fentry/sys_close")
int close_enter(__u64 *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (selected(pid_tgid >> 32))
		send_conn(EVENT_CLOSE, pid_tgid, SYSCALL_ARG1((struct pt_regs *)ctx[0]));
	return 0;
}

/* __sys_connect(fd, uservaddr, addrlen) -> int: every process's connect
 * may select it. */
SEC("fentry/__sys_connect")
int connect_enter(__u64 *ctx)
{
	on_connect(bpf_get_current_pid_tgid(), ctx[1]);
	return 0;
}

SEC("fexit/__sys_connect")
int connect_exit(__u64 *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	int ret = (int)ctx[3];
	if (selected(pid_tgid >> 32) && (ret == 0 || ret == -EINPROGRESS))
		send_conn(EVENT_CONNECT, pid_tgid, (__u32)ctx[0]);
	return 0;
}

/* __sys_accept4(fd, upeer_sockaddr, upeer_addrlen, flags) -> int: accept
 * and accept4 both; the result is the new fd. */
SEC("fexit/__sys_accept4")
int accept_exit(__u64 *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	int ret = (int)ctx[4];
	if (selected(pid_tgid >> 32) && ret >= 0)
		send_conn(EVENT_ACCEPT, pid_tgid, ret);
	return 0;
}
