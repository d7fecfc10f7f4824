/* Context propagation around a write, for any set of hooks that sees a
 * write before and after its bytes go out (the raw syscall tracepoints of
 * tracer.bpf.c, or the fentry/fexit hooks of sockhooks.bpf.c): before, the
 * plan the sk_msg program follows; after, what became of it. And what every
 * read or write event gets before it is sent. */
#ifndef TRACER_PLANNING_H
#define TRACER_PLANNING_H

/* Non-zero with context_propagation: headers. Set by the loader. */
volatile const __u32 propagate = 0;

#include "sampling.h"
#include "tcp_option_trace.h" /* context_propagation: tcp */

/* A plan is built here: too big for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct plan);
} scratch_plan SEC(".maps");

/* injectable tells whether connection sk can carry a traceparent in this
 * write: 0 if it can, else why not. */
static __always_inline __u8 injectable(struct sock *sk)
{
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

/* new_plan builds the plan of the request s scanned: a new client span in
 * the trace of the request the thread serves, if any. */
static __always_inline void new_plan(__u64 pid_tgid, __u32 fd, struct head_scan *s)
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
	if (served_by_fd(pid_tgid, fd, s->line_hash, now, &parent)) {
		__builtin_memcpy(p->ctx.trace_id, parent.trace_id, 16);
		__builtin_memcpy(p->ctx.parent_id, parent.span_id, 8);
		p->ctx.flags = parent.flags;
	} else {
		random_id(p->ctx.trace_id, 16);
		p->ctx.flags = sample_flags(p->ctx.trace_id, false, 0);
	}
	random_id(p->ctx.span_id, 8);
	p->ctx.ts = now;
	write_line(p);
	bpf_map_update_elem(&plans, &pid_tgid, p, BPF_ANY);
}

/* plan_injection looks at what a write is about to send (m, on socket sk,
 * or on the socket behind fd when sk is 0: found only if needed) and,
 * when it begins a request without a traceparent on a connection that can
 * carry one, leaves the sk_msg program a plan. It returns why the request
 * cannot carry one (enum not_injected), or 0. */
static __always_inline __u8 plan_injection(__u64 pid_tgid, struct moved *m, __u32 fd, struct sock *sk)
{
	tcp_plan(pid_tgid, m, fd, sk);
	if (!propagate)
		return 0;
	__u32 zero = 0;
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	e->tail_len = 0;
	/* The first bytes tell a response or anything else from a request:
	 * only a request's head is copied whole. */
	capture(e, m, 8);
	if (response_head(e)) {
		/* Before the bytes go out: on loopback the peer may read the
		 * response and send its next request before this write returns. */
		end_serving(pid_tgid);
		return 0;
	}
	if (!may_be_request(e))
		return 0;
	capture(e, m, CAPTURE_MAX);
	struct head_scan s = {};
	if (!scan_head(e, &s) || s.traceparent)
		return 0;
	__u8 why = injectable(sk ? sk : fd_socket(fd));
	if (!why && !s.ended)
		why = NOT_INJECTED_HEAD; /* the head goes on beyond what we saw */
	if (why)
		return why;
	new_plan(pid_tgid, fd, &s);
	return 0;
}

/* take_plan ends the plan of a write: the event says what became of it.
 * not_injected is what plan_injection returned. */
static __always_inline void take_plan(__u64 pid_tgid, __u8 not_injected, struct event *e)
{
	if (not_injected) {
		e->flags |= EVENT_FLAG_NOT_INJECTED;
		e->reason = not_injected;
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

/* drop_plan forgets the plan of a write no event will report. */
static __always_inline void drop_plan(__u64 pid_tgid)
{
	if (propagate)
		bpf_map_delete_elem(&plans, &pid_tgid);
}

/* send_moved finishes a read or write event whose bytes m holds (or not,
 * readable false: a sendfile's come from a file) and sends it. */
static __always_inline void send_moved(__u64 pid_tgid, struct event *e, struct moved *m, bool readable,
				       bool reading, __u8 not_injected)
{
	if (readable) {
		capture(e, m, CAPTURE_MAX);
		walk_frames(e, m, reading);
	}
	if (propagate) {
		if (reading)
			serve_request(pid_tgid, e);
		else
			take_plan(pid_tgid, not_injected, e);
	}
	tcp_event(pid_tgid, e, reading);
	send_data(e);
}

#endif
