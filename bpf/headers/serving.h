/* The requests selected processes serve, so that the calls they make
 * while serving join the right trace (context propagation). */
#ifndef TRACER_SERVING_H
#define TRACER_SERVING_H

/* A thread's served request gives its calls a parent for this long; after
 * that a call starts a trace of its own. */
#define SERVING_MAX_NS (5ULL * 1000 * 1000 * 1000)

/* What a process serves: how many requests (read, not yet answered) and the
 * latest one's context. A call written by a thread that serves nothing
 * (Go writes requests from a goroutine of the HTTP client) belongs to the
 * process's request when it serves only one. */
struct process_serving {
	struct trace_ctx latest;
	__s64 open;
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

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct forward_key);
	__type(value, struct trace_ctx);
} forwardable SEC(".maps");

/* The request a thread is serving, so the calls it makes while serving
 * join that trace. A zero ts marks none. */
THREAD_MAP(serving, struct trace_ctx);

static __always_inline void serving_set(__u64 pid_tgid, struct trace_ctx *c)
{
	struct trace_ctx *t = THREAD_GET(serving, pid_tgid, true);
	if (t)
		*t = *c;
}

static __always_inline struct trace_ctx *serving_get(__u64 pid_tgid)
{
	struct trace_ctx *t = THREAD_GET(serving, pid_tgid, false);
	return t && t->ts ? t : 0;
}

static __always_inline void serving_end(__u64 pid_tgid)
{
	struct trace_ctx *t = THREAD_GET(serving, pid_tgid, false);
	if (t)
		t->ts = 0;
}

/* serve_in_process counts a request the process began serving. A count
 * whose latest request is stale is restarted: requests that never got a
 * response (reset connections) must not disable the rule for good. */
static __always_inline void serve_in_process(__u32 tgid, struct trace_ctx *c)
{
	struct process_serving *ps = bpf_map_lookup_elem(&process_serving, &tgid);
	if (!ps) {
		struct process_serving fresh = {.latest = *c, .open = 1};
		bpf_map_update_elem(&process_serving, &tgid, &fresh, BPF_ANY);
		return;
	}
	if (c->ts - ps->latest.ts > SERVING_MAX_NS)
		ps->open = 0;
	ps->latest = *c;
	__sync_fetch_and_add(&ps->open, 1);
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

/* serve_request gives the request a read began its server span's context,
 * remembers it as what the thread is serving, and puts it in the event. */
static __always_inline void serve_request(__u64 pid_tgid, struct event *e)
{
	struct head_scan s = {};
	if (!scan_head(e, &s))
		return;
	struct trace_ctx c = {};
	if (!s.traceparent || !parse_traceparent(e, s.traceparent, &c)) {
		__builtin_memset(&c, 0, sizeof(c));
		random_id(c.trace_id, 16);
		c.flags = 1;
	}
	random_id(c.span_id, 8);
	c.ts = bpf_ktime_get_ns();
	serving_set(pid_tgid, &c);
	serve_in_process(pid_tgid >> 32, &c);
	/* Any request may be forwarded: a proxy reads many before it writes
	 * its first, so waiting to learn it forwards would miss those. */
	struct forward_key fk = {.tgid = pid_tgid >> 32, .line_hash = s.line_hash};
	bpf_map_update_elem(&forwardable, &fk, &c, BPF_ANY);
	put_context(e, &c, EVENT_FLAG_CONTEXT);
}

/* A response written ends what the thread was serving, and one of the
 * process's requests. */
static __always_inline void end_serving(__u64 pid_tgid)
{
	serving_end(pid_tgid);
	__u32 tgid = pid_tgid >> 32;
	struct process_serving *ps = bpf_map_lookup_elem(&process_serving, &tgid);
	if (ps && ps->open > 0)
		__sync_fetch_and_add(&ps->open, -1);
}

/* served_by finds the request a call written by thread pid_tgid belongs
 * to: the one the process read with the same request line (a proxy
 * forwarding it), else the process's only one, else the one the thread
 * read last. The process rule goes before the thread's because a thread's
 * entry can be stale: Go may read a request on one thread and answer it
 * from another. A forwarded match is copied to *found and forgotten:
 * each request is forwarded once. */
static __always_inline bool served_by(__u64 pid_tgid, __u64 line_hash, __u64 now, struct trace_ctx *found)
{
	__u32 tgid = pid_tgid >> 32;
	struct forward_key fk = {.tgid = tgid, .line_hash = line_hash};
	struct trace_ctx *c = bpf_map_lookup_elem(&forwardable, &fk);
	if (c && now - c->ts < SERVING_MAX_NS) {
		*found = *c;
		bpf_map_delete_elem(&forwardable, &fk);
		return true;
	}
	struct process_serving *ps = bpf_map_lookup_elem(&process_serving, &tgid);
	if (ps && ps->open == 1 && now - ps->latest.ts < SERVING_MAX_NS) {
		*found = ps->latest;
		return true;
	}
	c = serving_get(pid_tgid);
	if (c && now - c->ts < SERVING_MAX_NS) {
		*found = *c;
		return true;
	}
	return false;
}

#endif
