/* The requests selected processes serve, so that the calls they make
 * while serving join the right trace (context propagation). */
#ifndef TRACER_SERVING_H
#define TRACER_SERVING_H

#include "sampling.h"

/* A thread's served request gives its calls a parent for this long; after
 * that a call starts a trace of its own. */
#define SERVING_MAX_NS (5ULL * 1000 * 1000 * 1000)

/* What a process serves: how many requests (read, not yet answered) and the
 * latest one's context. A call written by a thread that serves nothing
 * belongs to the process's request when it serves only one. multiplexed:
 * one of its threads served two requests at once (an event loop), so its
 * threads tell nothing of which request a call is for. */
struct process_serving {
	struct trace_ctx latest;
	__s64 open;
	__u64 multiplexed;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct process_serving);
} process_serving SEC(".maps");

/* Requests a process serves, by the hash of their request line from the
 * target on: a proxy forwards the line it read, and the call that writes
 * it again belongs to that request (Go may have read its first byte
 * alone, hence not the method). */
struct forward_key {
	__u32 tgid;
	__u32 pad;
	__u64 line_hash;
};

/* A request that may be forwarded; dup: a second one with the same line
 * came while it waited, and which of them a call forwards is not known. */
struct forwarded {
	struct trace_ctx ctx;
	__u64 dup;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct forward_key);
	__type(value, struct forwarded);
} forwardable SEC(".maps");

/* The request a thread is serving (its latest), and how many it serves:
 * its calls join that trace only when it serves one. A zero ts marks
 * none. */
struct thread_serving {
	struct trace_ctx ctx;
	__u32 open;
	__u32 pad;
};

THREAD_MAP(serving, struct thread_serving);

/* The request a Go goroutine is serving, by (goroutine id, tgid): Go runs
 * goroutines on any thread, and the goroutine tells (tasks.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct task_key);
	__type(value, struct trace_ctx);
} go_serving SEC(".maps");

/* serving_set records c as what the thread serves, and reports whether
 * the thread now serves more than one request. */
static __always_inline bool serving_set(__u64 pid_tgid, struct trace_ctx *c)
{
	struct thread_serving *t = THREAD_GET(serving, pid_tgid, true);
	if (!t)
		return false;
	if (!t->ctx.ts || c->ts - t->ctx.ts > SERVING_MAX_NS)
		t->open = 0; /* a stale count: requests that never got a response */
	t->ctx = *c;
	t->open++;
	return t->open > 1;
}

/* serving_get is the request the thread serves when it serves one. */
static __always_inline struct trace_ctx *serving_get(__u64 pid_tgid)
{
	struct thread_serving *t = THREAD_GET(serving, pid_tgid, false);
	return t && t->ctx.ts && t->open == 1 ? &t->ctx : 0;
}

static __always_inline void serving_end(__u64 pid_tgid)
{
	struct thread_serving *t = THREAD_GET(serving, pid_tgid, false);
	if (!t)
		return;
	if (t->open > 0)
		t->open--;
	if (t->open == 0)
		t->ctx.ts = 0;
}

/* serve_in_process counts a request the process began serving. A count
 * whose latest request is stale is restarted: requests that never got a
 * response (reset connections) must not disable the rule for good. */
static __always_inline void serve_in_process(__u32 tgid, struct trace_ctx *c, bool multiplexed)
{
	struct process_serving *ps = bpf_map_lookup_elem(&process_serving, &tgid);
	if (!ps) {
		struct process_serving fresh = {.latest = *c, .open = 1, .multiplexed = multiplexed};
		bpf_map_update_elem(&process_serving, &tgid, &fresh, BPF_ANY);
		return;
	}
	if (c->ts - ps->latest.ts > SERVING_MAX_NS)
		ps->open = 0;
	ps->latest = *c;
	if (multiplexed)
		ps->multiplexed = 1;
	__sync_fetch_and_add(&ps->open, 1);
}

/* remember_forwardable keeps a request a proxy may forward; one with the
 * same line already waiting makes both unknowable. */
static __always_inline void remember_forwardable(struct forward_key *fk, struct trace_ctx *c)
{
	struct forwarded *old = bpf_map_lookup_elem(&forwardable, fk);
	struct forwarded f = {.ctx = *c};
	if (old && c->ts - old->ctx.ts < SERVING_MAX_NS)
		f.dup = 1;
	bpf_map_update_elem(&forwardable, fk, &f, BPF_ANY);
}

/* put_context hands a span's context to user space in the event. */
static __always_inline void put_context(struct event *e, struct trace_ctx *c, __u8 flag)
{
	__builtin_memcpy(e->trace_id, c->trace_id, 16);
	__builtin_memcpy(e->span_id, c->span_id, 8);
	__builtin_memcpy(e->parent_id, c->parent_id, 8);
	e->trace_flags = c->flags;
	e->flags |= flag;
}

/* A request head split over reads (a client that writes its request
 * line alone; on 6.1, a traceparent line pushed into a head by sk_msg
 * arrives as a segment of its own): the first read chose a root context,
 * the traceparent may come in the next one. By socket, until the head
 * ends, its traceparent is seen, or SERVING_MAX_NS. */
struct open_head {
	struct trace_ctx ctx; /* what the first read chose: its span id stays */
	__u64 task;           /* the Go task that read it; 0 when not Go */
	__u64 pid_tgid;
	__u64 line_hash;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* struct sock * */
	__type(value, struct open_head);
} open_heads SEC(".maps");

/* serve_context makes c the context of the request the reader serves. */
static __always_inline bool serve_context(__u64 pid_tgid, struct event *e, struct trace_ctx *c)
{
	__u32 tgid = pid_tgid >> 32;
	if (e->task && task_runtime_of(tgid) == TASK_RUNTIME_GO) {
		struct task_key k = {.id = e->task, .tgid = tgid};
		bpf_map_update_elem(&go_serving, &k, c, BPF_ANY);
		return false;
	}
	return serving_set(pid_tgid, c);
}

/* same_span tells whether two contexts are of one span. */
static __always_inline bool same_span(const struct trace_ctx *a, const struct trace_ctx *b)
{
	__u64 x, y;
	__builtin_memcpy(&x, a->span_id, 8);
	__builtin_memcpy(&y, b->span_id, 8);
	return x == y;
}

/* head_continued reads the rest of a head a read of socket e->sock began
 * without a traceparent: one found now makes the request's context the
 * caller's child, with the span id user space already has. */
static __always_inline void head_continued(struct event *e)
{
	__u64 key = e->sock;
	struct open_head *h = bpf_map_lookup_elem(&open_heads, &key);
	if (!h)
		return;
	struct open_head o = *h;
	bpf_map_delete_elem(&open_heads, &key);
	if (bpf_ktime_get_ns() - o.ctx.ts > SERVING_MAX_NS)
		return;
	struct head_scan s = {};
	scan_rest(e, &s);
	struct trace_ctx c = {};
	if (!s.tp || !parse_traceparent(e, s.traceparent, &c)) {
		if (!s.ended && e->len == e->cap_len) /* not yet: the next read, perhaps */
			bpf_map_update_elem(&open_heads, &key, &o, BPF_ANY);
		return;
	}
	__builtin_memcpy(c.span_id, o.ctx.span_id, 8);
	c.flags = sample_flags(c.trace_id, true, c.flags);
	c.ts = o.ctx.ts;
	__u32 tgid = o.pid_tgid >> 32;
	if (o.task) {
		struct task_key k = {.id = o.task, .tgid = tgid};
		struct trace_ctx *cur = bpf_map_lookup_elem(&go_serving, &k);
		if (cur && same_span(cur, &o.ctx))
			*cur = c;
	} else {
		struct thread_serving *t = THREAD_GET(serving, o.pid_tgid, false);
		if (t && same_span(&t->ctx, &o.ctx))
			t->ctx = c;
	}
	struct process_serving *ps = bpf_map_lookup_elem(&process_serving, &tgid);
	if (ps && same_span(&ps->latest, &o.ctx))
		ps->latest = c;
	struct forward_key fk = {.tgid = tgid, .line_hash = o.line_hash};
	struct forwarded *f = bpf_map_lookup_elem(&forwardable, &fk);
	if (f && same_span(&f->ctx, &o.ctx))
		f->ctx = c;
	put_context(e, &c, EVENT_FLAG_CONTEXT); /* the same span: user space takes the head's latest */
}

/* serve_request gives the request a read began its server span's context,
 * remembers it as what the thread is serving, and puts it in the event. */
static __always_inline void serve_request(__u64 pid_tgid, struct event *e)
{
	struct head_scan s = {};
	if (!scan_head(e, &s)) {
		head_continued(e);
		return;
	}
	struct trace_ctx c = {};
	bool remote = s.traceparent && parse_traceparent(e, s.traceparent, &c);
	if (!remote) {
		__builtin_memset(&c, 0, sizeof(c));
		random_id(c.trace_id, 16);
	}
	c.flags = sample_flags(c.trace_id, remote, c.flags);
	random_id(c.span_id, 8);
	c.ts = bpf_ktime_get_ns();
	__u32 tgid = pid_tgid >> 32;
	bool multiplexed = serve_context(pid_tgid, e, &c);
	serve_in_process(tgid, &c, multiplexed);
	if (!remote && !s.ended && e->len == e->cap_len) {
		bool go = e->task && task_runtime_of(tgid) == TASK_RUNTIME_GO;
		struct open_head h = {.ctx = c, .task = go ? e->task : 0, .pid_tgid = pid_tgid, .line_hash = s.line_hash};
		__u64 key = e->sock;
		bpf_map_update_elem(&open_heads, &key, &h, BPF_ANY);
	}
	/* Any request may be forwarded: a proxy reads many before it writes
	 * its first, so waiting to learn it forwards would miss those. */
	struct forward_key fk = {.tgid = tgid, .line_hash = s.line_hash};
	remember_forwardable(&fk, &c);
	put_context(e, &c, EVENT_FLAG_CONTEXT);
}

/* A response written ends what the thread (or Go goroutine) was serving,
 * and one of the process's requests. */
static __always_inline void end_serving(__u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;
	struct task t;
	if (task_current(pid_tgid, false, 0, &t) == TASK_RUNTIME_GO) {
		if (t.id) {
			struct task_key k = {.id = t.id, .tgid = tgid};
			bpf_map_delete_elem(&go_serving, &k);
		}
	} else {
		serving_end(pid_tgid);
	}
	struct process_serving *ps = bpf_map_lookup_elem(&process_serving, &tgid);
	if (ps && ps->open > 0)
		__sync_fetch_and_add(&ps->open, -1);
}

/* served_by_fd finds the request a call written by thread pid_tgid (on
 * descriptor fd, 0 if not known) belongs to, when it can be told for sure
 * (the receiver's rules, in internal/correlate): in Go, the request the writing goroutine (or the
 * one it writes for) serves; else the one request the process read with
 * the same request line (a proxy forwarding it; each is forwarded once);
 * else, in a process whose threads serve a request each, the one the
 * thread serves; else the process's only one. A wrong parent is worse
 * than none: several candidates give none. */
static __always_inline bool served_by_fd(__u64 pid_tgid, __u32 fd, __u64 line_hash, __u64 now, struct trace_ctx *found)
{
	__u32 tgid = pid_tgid >> 32;
	struct task t;
	__u8 runtime = task_current(pid_tgid, true, fd, &t);
	if (runtime == TASK_RUNTIME_GO && t.id) {
		struct task_key k = {.id = t.id, .tgid = tgid};
		struct trace_ctx *g = bpf_map_lookup_elem(&go_serving, &k);
		if (g && now - g->ts < SERVING_MAX_NS) {
			*found = *g;
			return true;
		}
	}
	struct forward_key fk = {.tgid = tgid, .line_hash = line_hash};
	struct forwarded *f = bpf_map_lookup_elem(&forwardable, &fk);
	if (f && now - f->ctx.ts < SERVING_MAX_NS) {
		bool dup = f->dup;
		*found = f->ctx;
		bpf_map_delete_elem(&forwardable, &fk);
		return !dup;
	}
	struct process_serving *ps = bpf_map_lookup_elem(&process_serving, &tgid);
	if (runtime == TASK_RUNTIME_THREADS && !(ps && ps->multiplexed)) {
		struct trace_ctx *c = serving_get(pid_tgid);
		if (c && now - c->ts < SERVING_MAX_NS) {
			*found = *c;
			return true;
		}
	}
	if (ps && ps->open == 1 && now - ps->latest.ts < SERVING_MAX_NS) {
		*found = ps->latest;
		return true;
	}
	return false;
}

#endif
