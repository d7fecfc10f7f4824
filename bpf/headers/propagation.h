/* What the tracer and the propagation programs share to put a traceparent
 * header into the HTTP/1.x requests selected processes send.
 *
 * sock_ops puts a connection a selected process opens into a sock hash
 * when it is established, and takes it out at its first data segment, in
 * either direction: a socket in a sock hash with an sk_msg program reads
 * and answers ioctls differently (FIONREAD counts only the sk_msg queue), so
 * it must be in it only while nothing can be read from it. The first
 * request of a connection can therefore carry a traceparent, and no later
 * one.
 *
 * The tracer decides, at sys_enter of a write, whether the bytes begin a
 * request without a traceparent on a connection still in the hash, and
 * leaves a plan for the thread: where the header goes and its text. The
 * sk_msg program, which runs inside that write's sendmsg, inserts the text
 * into the kernel's copy of the bytes and marks the plan done. At sys_exit
 * the tracer reports the ids it carried, or why it did not.
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

/* Where a connection a selected process opened stands, by socket cookie,
 * from connect until the socket closes. */
enum sock_state {
	SOCK_CONNECTING = 1, /* connect() seen, not established yet */
	SOCK_ENROLLED,       /* in the sock hash: its first request can carry a traceparent */
	SOCK_LEFT,           /* it carried data: out of the sock hash for good */
	SOCK_REFUSED_SOCKMAP, /* another program's sockmap holds it: left alone */
	SOCK_REFUSED_ZEROCOPY, /* it sends with MSG_ZEROCOPY: left alone */
	SOCK_REFUSED_FULL,   /* the sock hash was full */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} sock_states SEC(".maps");

#endif
