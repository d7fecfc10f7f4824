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
 * forks.h (the forks of selected processes), connections.h (connect,
 * accept, close), and for context propagation
 * propagation.h, request_head.h, serving.h and planning.h. The fentry hooks
 * of sockhooks.bpf.c share all of them. */
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
#include "headers/forks.h"

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

/* Syscall numbers differ per architecture; the loader fills them in. */
volatile const __s64 nr_read = -1, nr_write = -1, nr_readv = -1, nr_writev = -1;
volatile const __s64 nr_recvfrom = -1, nr_sendto = -1, nr_recvmsg = -1, nr_sendmsg = -1;
volatile const __s64 nr_sendfile = -1, nr_close = -1, nr_connect = -1;
volatile const __s64 nr_accept = -1, nr_accept4 = -1;

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

/* ---- Context propagation (only with propagate set): planning.h ---- */

/* outgoing is what a write is about to send, from its arguments. */
static __always_inline bool outgoing(struct moved *m, struct args *a)
{
	m->niov = 0;
	m->count = 0;
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

/* ---- Selection and connections: connections.h ---- */

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
		on_connect(pid_tgid, SYSCALL_ARG2(regs));
	/* Nearly every syscall is an unselected process's: one bit test. */
	if (!selected(pid_tgid >> 32))
		return 0;
	if (nr == nr_close) {
		send_conn(EVENT_CLOSE, pid_tgid, SYSCALL_ARG1(regs));
		task_fd_closed(pid_tgid, SYSCALL_ARG1(regs));
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
	/* A peek reads bytes the next read takes again: they are reported
	 * then, once (curl peeks a byte to see whether a connection lives). */
	if ((nr == nr_recvfrom && (SYSCALL_ARG4(regs) & MSG_PEEK)) || (nr == nr_recvmsg && (SYSCALL_ARG3(regs) & MSG_PEEK)))
		return 0;
	struct args *a = remember(pid_tgid, op, SYSCALL_ARG1(regs), SYSCALL_ARG2(regs), SYSCALL_ARG3(regs));
	struct moved *m;
	if (a && (propagate || propagate_tcp) && (op == OP_WRITE || op == OP_WRITEV || op == OP_SENDMSG) && (m = moved_scratch()) &&
	    outgoing(m, a))
		a->not_injected = plan_injection(pid_tgid, m, a->fd, 0);
	return 0;
}

/* data_event reports what a read or write moved. */
static __always_inline void data_event(__u64 pid_tgid, struct args *in, __s64 ret)
{
	bool reading = in->op == OP_READ || in->op == OP_READV || in->op == OP_RECVMSG;
	struct sock *sk = ret > 0 ? fd_socket(in->fd) : 0;
	struct event *e = sk ? new_event(reading ? EVENT_READ : EVENT_WRITE, pid_tgid, in->fd) : 0;
	if (!e || !fill_tuple(e, sk)) {
		if (!reading) /* no event will say what became of it */
			drop_plan(pid_tgid);
		return;
	}
	__u32 len = ret > 0xffffffff ? 0xffffffff : (__u32)ret;
	e->len = len;
	struct moved *m = moved_scratch();
	if (!m)
		return;
	m->base = in->buf;
	m->len = len;
	m->niov = 0;
	m->count = 0;
	bool readable = true;
	switch (in->op) {
	case OP_READV:
	case OP_WRITEV:
		readable = moved_iov(m, in->buf, in->count) > 0;
		break;
	case OP_RECVMSG:
	case OP_SENDMSG:
		readable = moved_msg(m, in->buf) > 0;
		break;
	case OP_SENDFILE: /* the bytes come from a file; only their count matters */
		readable = false;
		break;
	}
	/* TLS records of a probed library call: its plaintext is sent instead. */
	if (readable && tls_ciphertext(pid_tgid, e->sock, m, reading)) {
		if (reading)
			tcp_records_read(sk, len);
		return;
	}
	send_moved(pid_tgid, e, m, readable, reading, in->not_injected);
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
	if ((__u32)pid_tgid != tgid)
		return 0;
	bpf_map_delete_elem(&forked, &tgid); /* selected still or not */
	if (!selected(tgid))
		return 0;
	set_selected(tgid, false);
	if (propagate)
		bpf_map_delete_elem(&process_serving, &tgid);
	struct event *e = new_event(EVENT_EXIT, pid_tgid, 0);
	if (e)
		send(e, COUNTER_LOST_CONTROL);
	/* Its pid may be another process's next: tasks.h reads no runtime of it. */
	bpf_map_delete_elem(&task_procs, &tgid);
	return 0;
}

SEC("raw_tracepoint/sched_process_fork")
int on_process_fork(struct bpf_raw_tracepoint_args *ctx)
{
	inherit_selection((struct task_struct *)ctx->args[0], (struct task_struct *)ctx->args[1]);
	return 0;
}

SEC("raw_tracepoint/sched_process_exec")
int on_process_exec(struct bpf_raw_tracepoint_args *ctx)
{
	exec_ends_inheritance(bpf_get_current_pid_tgid());
	return 0;
}
