/* What the tracer and the propagation programs share to put a traceparent
 * header into the HTTP/1.x requests selected processes send.
 *
 * The tracer decides, at sys_enter of a write, whether the bytes begin a
 * request without a traceparent, and leaves a plan for the thread: where the
 * header goes and its text. The sk_msg program, which runs inside that
 * write's sendmsg, inserts the text into the kernel's copy of the bytes and
 * marks the plan done. At sys_exit the tracer reports the ids it carried.
 *
 * Both objects declare these maps; the loader makes the propagation object
 * use the tracer's. */
#ifndef TRACER_PROPAGATION_H
#define TRACER_PROPAGATION_H

/* "traceparent: 00-" + 32 hex + "-" + 16 hex + "-01\r\n" */
#define TRACEPARENT_LINE_LEN 70

/* The trace context of one span, as the kernel chose it. */
struct trace_ctx {
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 parent_id[8]; /* zero: the span is a root */
	__u64 ts;          /* when it was chosen, bpf_ktime_get_ns() */
	__u8 flags;        /* W3C trace flags */
	__u8 pad[7];
};

enum plan_state {
	PLAN_READY = 1, /* waiting for the sk_msg program */
	PLAN_DONE,      /* the line was inserted */
	PLAN_FAILED,    /* sk_msg ran but could not insert it */
};

struct plan {
	struct trace_ctx ctx;          /* the client span's ids */
	__u32 offset;                  /* where the line goes: after the request line */
	__u32 state;                   /* enum plan_state */
	char line[TRACEPARENT_LINE_LEN + 2];
};

/* Writes about to carry a traceparent: pid_tgid -> plan, from sys_enter to
 * sys_exit. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct plan);
} plans SEC(".maps");

#endif
