//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/* The tracer: sees what selected processes read from and write to their TCP
 * sockets, using only raw syscall tracepoints and CO-RE reads, so it runs on
 * kernels without kprobes or fentry.
 *
 * sys_enter remembers the arguments of the syscalls of interest, per thread;
 * sys_exit knows how many bytes moved and sends one event with the socket's
 * identity and a prefix of the bytes. Everything else (protocols, pairing)
 * happens in user space. The parts live in headers/, one concern each:
 * events.h (the event layout and the ring buffer), threads.h (per-thread
 * values), sockets.h (fd to connection), capture.h (copying user memory),
 * frames.h (HTTP/2 frames past the head), selection.h (which processes),
 * and for context propagation propagation.h, request_head.h and
 * serving.h. */
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

char __license[] SEC("license") = "GPL";

/* What a syscall does, decided at sys_enter. */
enum op {
	OP_READ = 1,     /* read, recvfrom: (fd, buf, len) */
	OP_WRITE,        /* write, sendto: (fd, buf, len) */
	OP_READV,        /* readv: (fd, iov, iovcnt) */
	OP_WRITEV,       /* writev: (fd, iov, iovcnt) */
	OP_RECVMSG,      /* recvmsg: (fd, msghdr, flags) */
	OP_SENDMSG,      /* sendmsg: (fd, msghdr, flags) */
	OP_SENDFILE,     /* sendfile: (out_fd, in_fd, off, count), bytes not captured */
	OP_CONNECT,      /* connect: (fd, addr, len) */
	OP_ACCEPT,       /* accept, accept4: the new fd is the result */
};

/* The arguments of the syscall a thread is in, from sys_enter to sys_exit.
 * op 0: in no syscall of interest. */
struct args {
	__u64 buf;  /* buffer, iovec array or msghdr */
	__u64 count;
	__u32 fd;
	__u16 op;
	__u8 not_injected; /* enum not_injected: why this write's request carries no traceparent */
	__u8 pad;
};

THREAD_MAP(inflight, struct args);

/* Set by the loader before the programs are loaded. */
volatile const __u32 self_tgid = 0;
/* Non-zero with context_propagation: headers. */
volatile const __u32 propagate = 0;

/* Syscall numbers differ per architecture; the loader fills them in. */
volatile const __s64 nr_read = -1, nr_write = -1, nr_readv = -1, nr_writev = -1;
volatile const __s64 nr_recvfrom = -1, nr_sendto = -1, nr_recvmsg = -1, nr_sendmsg = -1;
volatile const __s64 nr_sendfile = -1, nr_close = -1, nr_connect = -1;
volatile const __s64 nr_accept = -1, nr_accept4 = -1;

/* Ports whose connect() selects the calling process: port -> 1. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} connect_ports SEC(".maps");

/* A plan is built here: too big for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct plan);
} scratch_plan SEC(".maps");

static __always_inline struct args *remember(__u64 pid_tgid, __u16 op, __u64 fd, __u64 buf, __u64 count_)
{
	struct args *a = THREAD_GET(inflight, pid_tgid, true);
	if (!a) {
		count(COUNTER_LOST_ARGS);
		return 0;
	}
	a->buf = buf;
	a->count = count_;
	a->fd = fd;
	a->op = op;
	a->not_injected = 0;
	return a;
}

/* take_args moves the arguments sys_enter remembered into *in. */
static __always_inline bool take_args(__u64 pid_tgid, struct args *in)
{
	struct args *a = THREAD_GET(inflight, pid_tgid, false);
	if (!a || !a->op)
		return false;
	*in = *a;
	a->op = 0;
	return true;
}

/* ---- Context propagation (only with propagate set) ---- */

/* injectable tells whether the connection behind fd can carry a
 * traceparent in this write: 0 if it can, else why not. */
static __always_inline __u8 injectable(__u32 fd)
{
	struct sock *sk = fd_socket(fd);
	__u64 cookie = sk ? sock_cookie(sk) : 0;
	__u8 *st = cookie ? bpf_map_lookup_elem(&sock_states, &cookie) : 0;
	if (!st)
		return NOT_INJECTED_UNTRACKED;
	switch (*st) {
	case SOCK_ENROLLED:
		return 0;
	case SOCK_LEFT:
		return NOT_INJECTED_REUSED;
	case SOCK_REFUSED_SOCKMAP:
		return NOT_INJECTED_SOCKMAP;
	case SOCK_REFUSED_ZEROCOPY:
		return NOT_INJECTED_ZEROCOPY;
	case SOCK_REFUSED_FULL:
		return NOT_INJECTED_FULL;
	}
	return NOT_INJECTED_UNTRACKED;
}

/* outgoing is what a write is about to send, from its arguments. */
static __always_inline bool outgoing(struct moved *m, struct args *a)
{
	m->niov = 0;
	switch (a->op) {
	case OP_WRITE:
		m->base = a->buf;
		m->len = a->count;
		break;
	case OP_WRITEV:
		m->len = moved_iov(m, a->buf, a->count);
		break;
	case OP_SENDMSG:
		m->len = moved_msg(m, a->buf);
		break;
	}
	return m->len > 0;
}

/* new_plan builds the plan of the request s scanned: a new client span in
 * the trace of the request the thread serves, if any. */
static __always_inline void new_plan(__u64 pid_tgid, struct head_scan *s)
{
	__u32 zero = 0;
	struct plan *p = bpf_map_lookup_elem(&scratch_plan, &zero);
	if (!p)
		return;
	__builtin_memset(&p->ctx, 0, sizeof(p->ctx));
	p->state = PLAN_READY;
	p->offset = s->headers;
	__u64 now = bpf_ktime_get_ns();
	struct trace_ctx parent;
	if (served_by(pid_tgid, s->line_hash, now, &parent)) {
		__builtin_memcpy(p->ctx.trace_id, parent.trace_id, 16);
		__builtin_memcpy(p->ctx.parent_id, parent.span_id, 8);
		p->ctx.flags = parent.flags;
	} else {
		random_id(p->ctx.trace_id, 16);
		p->ctx.flags = 1;
	}
	random_id(p->ctx.span_id, 8);
	p->ctx.ts = now;
	write_line(p);
	bpf_map_update_elem(&plans, &pid_tgid, p, BPF_ANY);
}

/* plan_injection looks at what a write is about to send and, when it begins
 * a request without a traceparent on a connection that can carry one,
 * leaves the sk_msg program a plan; when it cannot, a says why. */
static __always_inline void plan_injection(__u64 pid_tgid, struct args *a)
{
	__u32 zero = 0;
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return;
	e->tail_len = 0;
	struct moved m;
	if (!outgoing(&m, a))
		return;
	/* The first bytes tell a response or anything else from a request:
	 * only a request's head is copied whole. */
	capture(e, &m, 8);
	if (response_head(e)) {
		/* At sys_enter, not exit: on loopback the peer may read the
		 * response and send its next request before this write returns. */
		end_serving(pid_tgid);
		return;
	}
	if (!may_be_request(e))
		return;
	capture(e, &m, CAPTURE_MAX);
	struct head_scan s = {};
	if (!scan_head(e, &s) || s.traceparent)
		return;
	__u8 why = injectable(a->fd);
	if (!why && !s.ended)
		why = NOT_INJECTED_HEAD; /* the head goes on beyond what we saw */
	if (why) {
		a->not_injected = why;
		return;
	}
	new_plan(pid_tgid, &s);
}

/* take_plan ends the plan of a write: the event says what became of it. */
static __always_inline void take_plan(__u64 pid_tgid, struct args *in, struct event *e)
{
	if (in->not_injected) {
		e->flags |= EVENT_FLAG_NOT_INJECTED;
		e->reason = in->not_injected;
		return;
	}
	struct plan *p = bpf_map_lookup_elem(&plans, &pid_tgid);
	if (!p)
		return;
	if (p->state == PLAN_DONE) {
		put_context(e, &p->ctx, EVENT_FLAG_INJECTED);
	} else {
		e->flags |= EVENT_FLAG_NOT_INJECTED;
		e->reason = NOT_INJECTED_FAILED;
	}
	bpf_map_delete_elem(&plans, &pid_tgid);
}

/* ---- Selection and connections ---- */

/* on_connect selects a process that connects to a watched port, before its
 * first byte moves, so client spans of short-lived clients are not missed. */
static __always_inline void on_connect(struct pt_regs *regs, __u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;
	if (tgid == self_tgid || selected(tgid))
		return;
	struct {
		__u16 family;
		__be16 port;
	} sa = {};
	if (bpf_probe_read_user(&sa, sizeof(sa), (void *)SYSCALL_ARG2(regs)) != 0)
		return;
	if (sa.family != AF_INET && sa.family != AF_INET6)
		return;
	__u32 port = bpf_ntohs(sa.port);
	__u8 *watched = bpf_map_lookup_elem(&connect_ports, &port);
	if (!watched || !*watched)
		return;
	set_selected(tgid, true);
	struct event *e = new_event(EVENT_SELECT, pid_tgid, 0);
	if (!e)
		return;
	e->rport = port;
	/* The command name, for a process gone before user space looks at it. */
	if (bpf_get_current_comm(e->data, TASK_COMM_LEN) == 0)
		e->cap_len = TASK_COMM_LEN;
	send(e, COUNTER_LOST_CONTROL);
}

/* send_conn reports a connection event (close, connect, accept) of fd. */
static __always_inline void send_conn(__u8 kind, __u64 pid_tgid, __u32 fd)
{
	struct sock *sk = fd_socket(fd);
	if (!sk)
		return;
	if (kind == EVENT_CLOSE)
		forget_frames((__u64)sk);
	struct event *e = new_event(kind, pid_tgid, fd);
	if (e && fill_tuple(e, sk))
		send(e, COUNTER_LOST_CONTROL);
}

/* syscall_op is what the selected process's syscall nr does with a socket,
 * or 0 for one of no interest. */
static __always_inline __u16 syscall_op(__s64 nr)
{
	if (nr == nr_read || nr == nr_recvfrom)
		return OP_READ;
	if (nr == nr_write || nr == nr_sendto)
		return OP_WRITE;
	if (nr == nr_readv)
		return OP_READV;
	if (nr == nr_writev)
		return OP_WRITEV;
	if (nr == nr_recvmsg)
		return OP_RECVMSG;
	if (nr == nr_sendmsg)
		return OP_SENDMSG;
	if (nr == nr_sendfile)
		return OP_SENDFILE;
	if (nr == nr_connect)
		return OP_CONNECT;
	if (nr == nr_accept || nr == nr_accept4)
		return OP_ACCEPT;
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int on_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	__s64 nr = (__s64)ctx->args[1];
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (nr == nr_connect)
		on_connect(regs, pid_tgid);
	/* Nearly every syscall is an unselected process's: one bit test. */
	if (!selected(pid_tgid >> 32))
		return 0;
	if (nr == nr_close) {
		send_conn(EVENT_CLOSE, pid_tgid, SYSCALL_ARG1(regs));
		return 0;
	}
	__u16 op = syscall_op(nr);
	switch (op) {
	case 0:
		return 0;
	case OP_SENDFILE: /* (out_fd, in_fd, offset, count): only out_fd matters */
	case OP_CONNECT:
		remember(pid_tgid, op, SYSCALL_ARG1(regs), 0, 0);
		return 0;
	case OP_ACCEPT:
		remember(pid_tgid, op, 0, 0, 0);
		return 0;
	}
	struct args *a = remember(pid_tgid, op, SYSCALL_ARG1(regs), SYSCALL_ARG2(regs), SYSCALL_ARG3(regs));
	if (a && propagate && (op == OP_WRITE || op == OP_WRITEV || op == OP_SENDMSG))
		plan_injection(pid_tgid, a);
	return 0;
}

/* data_event reports what a read or write moved. */
static __always_inline void data_event(__u64 pid_tgid, struct args *in, __s64 ret)
{
	bool reading = in->op == OP_READ || in->op == OP_READV || in->op == OP_RECVMSG;
	struct sock *sk = ret > 0 ? fd_socket(in->fd) : 0;
	struct event *e = sk ? new_event(reading ? EVENT_READ : EVENT_WRITE, pid_tgid, in->fd) : 0;
	if (!e || !fill_tuple(e, sk)) {
		if (propagate && !reading) /* no event will say what became of it */
			bpf_map_delete_elem(&plans, &pid_tgid);
		return;
	}
	__u32 len = ret > 0xffffffff ? 0xffffffff : (__u32)ret;
	e->len = len;
	struct moved m = {.base = in->buf, .len = len};
	bool readable = true;
	switch (in->op) {
	case OP_READV:
	case OP_WRITEV:
		readable = moved_iov(&m, in->buf, in->count) > 0;
		break;
	case OP_RECVMSG:
	case OP_SENDMSG:
		readable = moved_msg(&m, in->buf) > 0;
		break;
	case OP_SENDFILE: /* the bytes come from a file; only their count matters */
		readable = false;
		break;
	}
	if (readable) {
		capture(e, &m, CAPTURE_MAX);
		walk_frames(e, &m, reading);
	}
	if (propagate) {
		if (reading)
			serve_request(pid_tgid, e);
		else
			take_plan(pid_tgid, in, e);
	}
	send_data(e);
}

SEC("raw_tracepoint/sys_exit")
int on_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!selected(pid_tgid >> 32))
		return 0;
	struct args in;
	if (!take_args(pid_tgid, &in))
		return 0;
	__s64 ret = (__s64)ctx->args[1];
	switch (in.op) {
	case OP_CONNECT:
		if (ret == 0 || ret == -EINPROGRESS)
			send_conn(EVENT_CONNECT, pid_tgid, in.fd);
		return 0;
	case OP_ACCEPT:
		if (ret >= 0)
			send_conn(EVENT_ACCEPT, pid_tgid, ret);
		return 0;
	}
	data_event(pid_tgid, &in, ret);
	return 0;
}

SEC("raw_tracepoint/sched_process_exit")
int on_process_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	/* Any thread: what it kept goes with it. */
	THREAD_FORGET(inflight, pid_tgid);
	if (propagate)
		THREAD_FORGET(serving, pid_tgid);
	/* Only the thread group leader's exit ends the process for us. */
	if ((__u32)pid_tgid != tgid || !selected(tgid))
		return 0;
	set_selected(tgid, false);
	if (propagate)
		bpf_map_delete_elem(&process_serving, &tgid);
	struct event *e = new_event(EVENT_EXIT, pid_tgid, 0);
	if (e)
		send(e, COUNTER_LOST_CONTROL);
	return 0;
}
