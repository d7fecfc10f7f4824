/* The tracer's side of context propagation in a TCP header option
 * (context_propagation: tcp; see tcp_option.h): the write that begins a
 * request chooses the client span's ids and leaves them for the sock_ops
 * program, and its event carries them; a read that begins where a received
 * context's segment began gets the caller's context. Included by
 * planning.h, whose hooks call tcp_plan and tcp_event. */
#ifndef TRACER_TCP_OPTION_TRACE_H
#define TRACER_TCP_OPTION_TRACE_H

#include "sampling.h"
#include "tcp_option.h"

/* Non-zero with context_propagation: tcp. Set by the loader. */
volatile const __u32 propagate_tcp = 0;

/* The sequence numbers of a TCP socket, relocated with CO-RE. */
struct tcp_sock {
	__u32 write_seq;  /* the next byte the application writes */
	__u32 copied_seq; /* the next byte the application reads */
} __attribute__((preserve_access_index));

/* The ids a write chose, from its sys_enter to its event: pid_tgid ->
 * context. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct trace_ctx);
} tcp_plans SEC(".maps");

enum tcp_proto {
	TCP_PROTO_UNKNOWN = 0,
	TCP_PROTO_H2 = 1, /* the client wrote the HTTP/2 preface */
};

/* h2_preface: the bytes begin with "PRI * HTTP/2.0". */
static __always_inline bool h2_preface(struct event *e)
{
	return e->cap_len >= 14 && at(e, 0) == 'P' && at(e, 1) == 'R' && at(e, 2) == 'I' && at(e, 3) == ' ' &&
	       at(e, 4) == '*' && at(e, 5) == ' ' && at(e, 6) == 'H' && at(e, 13) == '0';
}

/* h2_request: the bytes begin with a HEADERS frame of a client stream. */
static __always_inline bool h2_request(struct event *e)
{
	if (e->cap_len < 9)
		return false;
	__u32 len = (__u32)at(e, 0) << 16 | (__u32)at(e, 1) << 8 | at(e, 2);
	__u8 flags = at(e, 4);
	__u32 stream = (__u32)(at(e, 5) & 0x7f) << 24 | (__u32)at(e, 6) << 16 | (__u32)at(e, 7) << 8 | at(e, 8);
	return at(e, 3) == 1 /* HEADERS */ && (stream & 1) && len <= (1 << 24) - 1 && !(flags & ~0x2d);
}

/* tcp_request_begins tells whether the bytes in e (their first 16 at
 * least; m, when given, has the rest) begin a request of the connection
 * with cookie and tcp_out o (0 if none) that no traceparent carries: an
 * HTTP/1 head (line_hash gets its request line's hash) or, once the
 * connection wrote the HTTP/2 preface, a client stream's HEADERS. */
static __always_inline bool tcp_request_begins(struct event *e, struct moved *m, __u64 cookie, struct tcp_out *o,
					       bool header_carries, __u64 now, __u64 *line_hash)
{
	if (h2_preface(e)) {
		struct tcp_out fresh = {.ctx.ts = now, .proto = TCP_PROTO_H2};
		bpf_map_update_elem(&tcp_out, &cookie, &fresh, BPF_ANY);
		return false;
	}
	if (o && o->proto == TCP_PROTO_H2)
		return h2_request(e);
	if (!may_be_request(e))
		return false;
	if (m)
		capture(e, m, CAPTURE_MAX);
	struct head_scan s = {};
	if (!scan_head(e, &s) || s.traceparent || header_carries)
		return false;
	*line_hash = s.line_hash;
	return true;
}

/* tcp_choose makes n the plan of a request that begins at seq, written by
 * pid_tgid on fd (0 if not known) on a connection whose tcp_out was o: a
 * new client span, in the trace of the request the writer serves, if any.
 * It returns false when the connection's previous request still waits. */
static __always_inline bool tcp_choose(__u64 pid_tgid, __u32 fd, __u64 line_hash, __u64 now, __u32 seq,
				       struct tcp_out *o, struct tcp_out *n)
{
	if (o && o->state == TCP_OUT_PENDING && o->seq != seq && now - o->ctx.ts < TCP_OPT_MAX_AGE_NS) {
		tcp_count(TCP_OPT_BUSY); /* the previous request's segment is not out yet */
		return false;
	}
	n->seq = seq;
	n->state = TCP_OUT_PENDING;
	n->proto = o ? o->proto : TCP_PROTO_UNKNOWN;
	struct trace_ctx parent;
	if (served_by_fd(pid_tgid, fd, line_hash, now, &parent)) {
		__builtin_memcpy(n->ctx.trace_id, parent.trace_id, 16);
		__builtin_memcpy(n->ctx.parent_id, parent.span_id, 8);
		n->ctx.flags = parent.flags;
	} else {
		random_id(n->ctx.trace_id, 16);
		n->ctx.flags = sample_flags(n->ctx.trace_id, false, 0);
	}
	random_id(n->ctx.span_id, 8);
	n->ctx.ts = now;
	return true;
}

/* tls_records: the bytes in e begin with a TLS application data record
 * (an HTTP/2 frame that began so would be 1.5 MB long). */
static __always_inline bool tls_records(struct event *e)
{
	return e->cap_len >= 5 && at(e, 0) == 23 && at(e, 1) == 3;
}

/* tcp_confirm ends the tentative plan o of a TLS request (tcp_plan_tls) at
 * a write on its socket that begins at seq, whose first bytes e holds: it
 * goes on the wire if its own thread writes the records there. */
static __always_inline void tcp_confirm(__u64 pid_tgid, struct tcp_out *o, __u32 seq, struct event *e)
{
	if (o->owner == pid_tgid && o->seq == seq && tls_records(e)) {
		o->state = TCP_OUT_PENDING;
		return;
	}
	o->state = 0;
	tcp_count(TCP_OPT_MISPLACED);
}

/* tcp_plan looks at a write about to send m on socket sk (or fd's): when
 * it begins a request on a connection a selected process opened, it
 * chooses the client span's ids and leaves them for the sock_ops program
 * and for the write's event. */
static __always_inline void tcp_plan(__u64 pid_tgid, struct moved *m, __u32 fd, struct sock *sk)
{
	if (!propagate_tcp)
		return;
	bpf_map_delete_elem(&tcp_plans, &pid_tgid); /* a write's plan lives until its event */
	if (!sk)
		sk = fd_socket(fd);
	__u64 cookie = sk ? sock_cookie(sk) : 0;
	__u8 *st = cookie ? bpf_map_lookup_elem(&sock_states, &cookie) : 0;
	if (!st)
		return; /* not opened by a selected process while the receiver ran */
	__u32 zero = 0;
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return;
	e->tail_len = 0;
	capture(e, m, 16);
	struct tcp_out *o = bpf_map_lookup_elem(&tcp_out, &cookie);
	__u32 seq = BPF_CORE_READ((struct tcp_sock *)sk, write_seq);
	if (o && o->state == TCP_OUT_TENTATIVE) {
		tcp_confirm(pid_tgid, o, seq, e);
		return;
	}
	if (tls_records(e))
		return; /* their plaintext, if probed, was planned by tcp_plan_tls */
	__u64 now = bpf_ktime_get_ns();
	__u64 line_hash = 0;
	if (!tcp_request_begins(e, m, cookie, o, propagate && *st == SOCK_ENROLLED, now, &line_hash))
		return;
	struct tcp_out n = {};
	if (!tcp_choose(pid_tgid, fd, line_hash, now, seq, o, &n))
		return;
	bpf_map_update_elem(&tcp_out, &cookie, &n, BPF_ANY);
	bpf_map_update_elem(&tcp_plans, &pid_tgid, &n.ctx, BPF_ANY);
}

/* tcp_plan_tls looks at the plaintext a TLS library is given to write on
 * socket sock (fd, 0 if not known), whose first bytes e holds: when it
 * begins a request, it chooses the client span's context c and leaves it
 * tentative for the write of its records (tcp_confirm). */
static __always_inline bool tcp_plan_tls(__u64 pid_tgid, __u64 sock, __u32 fd, struct event *e, struct trace_ctx *c)
{
	if (!propagate_tcp)
		return false;
	__u64 cookie = sock_cookie((struct sock *)sock);
	if (!cookie || !bpf_map_lookup_elem(&sock_states, &cookie))
		return false;
	struct tcp_out *o = bpf_map_lookup_elem(&tcp_out, &cookie);
	__u64 now = bpf_ktime_get_ns();
	__u64 line_hash = 0;
	if (!tcp_request_begins(e, 0, cookie, o, false, now, &line_hash))
		return false;
	struct tcp_out n = {};
	if (!tcp_choose(pid_tgid, fd, line_hash, now, BPF_CORE_READ((struct tcp_sock *)sock, write_seq), o, &n))
		return false;
	n.state = TCP_OUT_TENTATIVE;
	n.owner = pid_tgid;
	bpf_map_update_elem(&tcp_out, &cookie, &n, BPF_ANY);
	*c = n.ctx;
	return true;
}

/* tcp_serve records c as the request the reading thread (or Go task)
 * serves, as serve_request does, so that the calls made while serving it
 * join its trace. counted: serve_request counted the request already, with
 * a root context c replaces. */
static __always_inline void tcp_serve(__u64 pid_tgid, struct event *e, struct trace_ctx *c, bool counted)
{
	__u32 tgid = pid_tgid >> 32;
	bool multiplexed = false;
	if (e->task && task_runtime_of(tgid) == TASK_RUNTIME_GO) {
		struct task_key k = {.id = e->task, .tgid = tgid};
		bpf_map_update_elem(&go_serving, &k, c, BPF_ANY);
	} else if (counted) {
		struct thread_serving *t = THREAD_GET(serving, pid_tgid, false);
		if (t)
			t->ctx = *c;
	} else {
		multiplexed = serving_set(pid_tgid, c);
	}
	if (!counted) {
		serve_in_process(tgid, c, multiplexed);
		return;
	}
	struct process_serving *ps = bpf_map_lookup_elem(&process_serving, &tgid);
	if (ps)
		ps->latest = *c;
	struct head_scan s = {};
	if (scan_head(e, &s)) {
		struct forward_key fk = {.tgid = tgid, .line_hash = s.line_hash};
		struct forwarded *f = bpf_map_lookup_elem(&forwardable, &fk);
		if (f)
			f->ctx = *c;
	}
}

/* tcp_slot is the slot of in whose context came in the segment at start,
 * or -1. */
static __always_inline int tcp_slot(struct tcp_in *in, __u32 start, __u64 now)
{
	for (int i = 0; i < TCP_IN_SLOTS; i++) {
		if (in->ts[i] && in->seq[i] == start && now - in->ts[i] < TCP_OPT_MAX_AGE_NS)
			return i;
	}
	return -1;
}

/* tcp_records_read: a read of len bytes of TLS records on sk that begins
 * at a received context's segment leaves the context for the plaintext
 * the TLS library hands over next on the socket (tcp_served_tls). */
static __always_inline void tcp_records_read(struct sock *sk, __u32 len)
{
	if (!propagate_tcp)
		return;
	__u64 cookie = sock_cookie(sk);
	struct tcp_in *in = cookie ? bpf_map_lookup_elem(&tcp_in, &cookie) : 0;
	if (!in)
		return;
	__u64 now = bpf_ktime_get_ns();
	int i = tcp_slot(in, BPF_CORE_READ((struct tcp_sock *)sk, copied_seq) - len, now);
	if (i < 0 || i >= TCP_IN_SLOTS)
		return;
	__builtin_memset(&in->tls, 0, sizeof(in->tls));
	__builtin_memcpy(in->tls.trace_id, in->trace_id[i], 16);
	__builtin_memcpy(in->tls.parent_id, in->span_id[i], 8);
	in->tls.flags = in->flags[i];
	in->tls.ts = now;
	in->ts[i] = 0;
}

/* tcp_served_tls gives the plaintext a TLS library read from socket sock
 * (its event e) the context its records brought, if any: its server span
 * is the caller's child. */
static __always_inline void tcp_served_tls(struct event *e, __u64 sock)
{
	if (!propagate_tcp)
		return;
	__u64 cookie = sock_cookie((struct sock *)sock);
	struct tcp_in *in = cookie ? bpf_map_lookup_elem(&tcp_in, &cookie) : 0;
	if (!in || !in->tls.ts)
		return;
	struct trace_ctx c = in->tls;
	in->tls.ts = 0;
	if (bpf_ktime_get_ns() - c.ts >= TCP_OPT_MAX_AGE_NS)
		return;
	random_id(c.span_id, 8);
	tcp_count(TCP_OPT_MATCHED);
	put_context(e, &c, EVENT_FLAG_CONTEXT | EVENT_FLAG_TCP_OPTION);
}

/* tcp_served gives a read that begins where a received context's segment
 * began its server span: a child of the caller's. A read whose head had a
 * traceparent header keeps that one. */
static __always_inline void tcp_served(__u64 pid_tgid, struct event *e)
{
	bool had = e->flags & EVENT_FLAG_CONTEXT;
	if (had && !all_zero(e->parent_id, 8))
		return;
	struct sock *sk = (struct sock *)e->sock;
	__u64 cookie = sock_cookie(sk);
	struct tcp_in *in = cookie ? bpf_map_lookup_elem(&tcp_in, &cookie) : 0;
	if (!in)
		return;
	if (tls_records(e)) {
		tcp_records_read(sk, e->len); /* Go's crypto/tls: records come as data */
		return;
	}
	__u32 start = BPF_CORE_READ((struct tcp_sock *)sk, copied_seq) - e->len;
	__u64 now = bpf_ktime_get_ns();
	int i = tcp_slot(in, start, now);
	if (i < 0 || i >= TCP_IN_SLOTS) {
		if (had && in->cont.ts && in->cont_seq == start && now - in->cont.ts < TCP_OPT_MAX_AGE_NS) {
			/* The rest of a request whose first bytes a read took
			 * without its head: the same context, not serve_request's. */
			struct trace_ctx c = in->cont;
			in->cont.ts = 0;
			tcp_serve(pid_tgid, e, &c, true);
			put_context(e, &c, EVENT_FLAG_CONTEXT | EVENT_FLAG_TCP_OPTION);
		}
		return;
	}
	struct trace_ctx c = {};
	__builtin_memcpy(c.trace_id, in->trace_id[i], 16);
	__builtin_memcpy(c.parent_id, in->span_id[i], 8);
	c.flags = in->flags[i];
	c.ts = now;
	in->ts[i] = 0;
	tcp_count(TCP_OPT_MATCHED);
	if (had)
		__builtin_memcpy(c.span_id, e->span_id, 8); /* serve_request's root becomes the caller's child */
	else
		random_id(c.span_id, 8);
	tcp_serve(pid_tgid, e, &c, had);
	in->cont.ts = 0;
	if (propagate && !had) { /* serve_request saw no head here: it may in the next read */
		in->cont = c;
		in->cont_seq = start + e->len;
	}
	put_context(e, &c, EVENT_FLAG_CONTEXT | EVENT_FLAG_TCP_OPTION);
}

/* tcp_event puts into a read or write event what context propagation in
 * TCP options did for it. */
static __always_inline void tcp_event(__u64 pid_tgid, struct event *e, bool reading)
{
	if (!propagate_tcp || (e->flags & EVENT_FLAG_TLS))
		return; /* TLS plaintext: its lengths are not the stream's */
	if (reading) {
		tcp_served(pid_tgid, e);
		return;
	}
	struct trace_ctx *c = bpf_map_lookup_elem(&tcp_plans, &pid_tgid);
	if (!c)
		return;
	if (!(e->flags & EVENT_FLAG_INJECTED)) { /* a header could not carry it: the option does */
		e->flags &= ~EVENT_FLAG_NOT_INJECTED;
		e->reason = 0;
		put_context(e, c, EVENT_FLAG_INJECTED | EVENT_FLAG_TCP_OPTION);
	}
	bpf_map_delete_elem(&tcp_plans, &pid_tgid);
}

#endif
