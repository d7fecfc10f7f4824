/* What the tracer sends to user space, and how: the event layout (the
 * loaders' Go types are generated from it with bpf2go -type, so nothing is
 * copied by hand), the ring buffer, and the accounting of what could not
 * be sent. */
#ifndef TRACER_EVENTS_H
#define TRACER_EVENTS_H

#include "tasks.h"

/* CAPTURE_MAX bytes of each syscall are copied; a power of two. */
#define CAPTURE_MAX 4096
/* An event's data: its head (cap_len bytes), then its extents (ext_len
 * bytes), 16 KiB at most; the array is larger, so that the verifier can
 * bound an offset and a length by masks. (A per-CPU value holds 32 KiB at
 * most.) */
#define DATA_USED (1 << 14)
#define DATA_BYTES (DATA_USED + (1 << 13))
#define TAIL_LEN 16
#define TASK_COMM_LEN 16

enum event_kind {
	EVENT_READ = 1,   /* the process read bytes from a socket */
	EVENT_WRITE = 2,  /* the process wrote bytes to a socket */
	EVENT_CLOSE = 3,  /* the process closed a socket fd */
	EVENT_EXIT = 4,   /* a selected process exited */
	EVENT_SELECT = 5, /* the kernel selected a process (connect to a watched port) */
	EVENT_CONNECT = 6, /* the process connected a socket: it is the client */
	EVENT_ACCEPT = 7,  /* the process accepted a connection: it is the server */
	/* The task probes (tasks.bpf.c): */
	EVENT_NODE_PARSER = 8, /* Node.js made the HTTP parser of the connection its main thread
				* accepted last: task_clock is the async context its requests run in */
	EVENT_NODE_SOCKET = 9, /* Node.js made a socket: its async id is task_clock + 1, made in
				* the context task (with trigger task_trigger) */
	EVENT_GO_STREAM = 10,  /* a Go goroutine (task) writes on gRPC stream task_trigger of the
				* grpc-go transport at task_clock, whose reader's reads name it */
	EVENT_GO_HANDLER = 11, /* a Go server's goroutine (task) begins to serve HTTP/2 stream
				* task_trigger of the connection sock (grpc-go, net/http) */
	/* Forks (forks.h): */
	EVENT_FORK = 12, /* selected process fd (a tgid) forked process pid, which the kernel selected with it */
	EVENT_EXEC = 13, /* process pid, selected as a fork, ran a new program: no longer selected */
};

enum event_flag {
	/* The first event of a connection after events of it were lost:
	 * user space must not pair what comes next with what came before. */
	EVENT_FLAG_AFTER_LOSS = 1,
	/* A read began a request: trace_id and span_id are its server span's,
	 * parent_id the caller's from its traceparent, if any. */
	EVENT_FLAG_CONTEXT = 2,
	/* A write began a request that went out with a traceparent: the ids
	 * are the client span's, parent_id the request its writer served. */
	EVENT_FLAG_INJECTED = 4,
	/* A write began a request that should have carried a traceparent but
	 * did not; reason says why. */
	EVENT_FLAG_NOT_INJECTED = 8,
	/* The HTTP/2 frames of the syscall could not all be walked or
	 * copied: the parser sees gaps where they are missing. */
	EVENT_FLAG_FRAMES_SHORT = 16,
	/* The bytes are the plaintext a TLS library read or wrote (tls.bpf.c),
	 * not the bytes on the wire; sock and the addresses are those of the
	 * socket the library's connection travels on. */
	EVENT_FLAG_TLS = 32,
	/* With EVENT_FLAG_INJECTED: the ids went in a TCP header option
	 * (context_propagation: tcp, headers/tcp_option.h); with
	 * EVENT_FLAG_CONTEXT: the caller's ids came in one. */
	EVENT_FLAG_TCP_OPTION = 64,
};

/* Why a request went out without a traceparent. */
enum not_injected {
	NOT_INJECTED_UNTRACKED = 1,  /* its connection was opened before the receiver, or not by a selected process */
	NOT_INJECTED_REUSED = 2,     /* its connection had carried data already: only a connection's first request can carry one */
	NOT_INJECTED_SOCKMAP = 3,    /* the socket was in another program's sockmap */
	NOT_INJECTED_ZEROCOPY = 4,   /* the socket sends with MSG_ZEROCOPY, which the sk_msg path would change */
	NOT_INJECTED_FULL = 5,       /* the sock hash of connections to inject into was full */
	NOT_INJECTED_HEAD = 6,       /* the request head was larger than the capture */
	NOT_INJECTED_FAILED = 7,     /* the sk_msg program did not insert it (no room, or it did not run) */
};

enum counter {
	COUNTER_LOST_DATA = 0,   /* read/write events the ring buffer had no room for */
	COUNTER_LOST_CONTROL,    /* close/exit/select/connect/accept events the ring buffer had no room for */
	COUNTER_LOST_ARGS,       /* syscalls not followed: no memory for their arguments */
	COUNTER_LOST_REQUESTS,   /* lost read/write events whose bytes began a request */
	COUNTER_MAX,
};

struct event {
	__u8 kind;     /* enum event_kind */
	__u8 family;
	__u16 lport;   /* host byte order */
	__u16 rport;   /* host byte order */
	__u16 cap_len; /* bytes of data[] that follow */
	__u32 pid;     /* tgid */
	__u32 tid;
	__u32 fd;
	__u32 len;     /* bytes the syscall moved */
	__u8 tail_len;
	__u8 flags;       /* enum event_flag */
	__u8 trace_flags; /* W3C flags of the context below */
	__u8 reason;      /* enum not_injected, with EVENT_FLAG_NOT_INJECTED */
	__u32 netns;      /* inode of the socket's network namespace */
	__u64 ts;      /* bpf_ktime_get_ns() */
	__u64 sock;    /* struct sock address: the connection's identity */
	__u8 laddr[16];
	__u8 raddr[16];
	__u8 tail[TAIL_LEN];
	/* With EVENT_FLAG_CONTEXT or EVENT_FLAG_INJECTED: the span's ids. */
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 parent_id[8];
	__u16 ext_len; /* bytes of extents after the head: records of a __u32
			* offset, a __u16 length and the bytes (HTTP/2 frames) */
	__u8 pad2[6];
	/* The runtime's task the syscall ran for (tasks.h), 0 when not known:
	 * Go, the goroutine's id; Node.js, the bits of the doubles of the
	 * running callback's async id, its trigger's, and the latest id. */
	__u64 task;
	__u64 task_trigger;
	__u64 task_clock;
	__u8 data[DATA_BYTES];
};

/* Records are written without waking the reader, which polls, until this
 * many bytes wait in the ring: a wakeup per record would cost more than the
 * record. Set by the loader. */
volatile const __u64 wakeup_bytes = 1 << 16;

/* The size is set by the loader from the configuration. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 23);
} events SEC(".maps");

/* An event is built here: too big for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Connections that lost events since their last delivered one. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} lossy_socks SEC(".maps");

/* How many entries lossy_socks may hold: while zero, which is nearly
 * always, delivered events skip the lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} lossy_count SEC(".maps");

/* Anchors that make bpf2go emit the enums' Go constants. */
const enum event_kind *unused_event_kind __attribute__((unused));
const enum event_flag *unused_event_flag __attribute__((unused));
const enum not_injected *unused_not_injected __attribute__((unused));
const enum counter *unused_counter __attribute__((unused));

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &which);
	if (v)
		*v += 1;
}

static __always_inline struct event *new_event(__u8 kind, __u64 pid_tgid, __u32 fd)
{
	__u32 zero = 0;
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	e->kind = kind;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->fd = fd;
	e->ts = bpf_ktime_get_ns();
	e->len = 0;
	e->cap_len = 0;
	e->ext_len = 0;
	e->tail_len = 0;
	e->flags = 0;
	e->reason = 0;
	e->netns = 0;
	e->sock = 0;
	e->family = 0;
	e->lport = 0;
	e->rport = 0;
	struct task t;
	task_current(pid_tgid, kind == EVENT_WRITE, fd, &t);
	e->task = t.id;
	e->task_trigger = t.trigger;
	e->task_clock = t.clock;
	return e;
}

/* send writes e to the ring buffer; it reports whether that worked. */
static __always_inline bool send(struct event *e, __u32 lost_counter)
{
	__u64 size = __builtin_offsetof(struct event, data) + ((e->cap_len + e->ext_len) & (DATA_USED - 1));
	if (size > sizeof(*e))
		return false;
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&events, e, size, flags) != 0) {
		count(lost_counter);
		return false;
	}
	return true;
}

/* What the captured bytes of a lost event begin with. */
enum start {
	START_OTHER = 0,
	START_REQUEST,     /* an upper-case token and a space: a request line */
	START_TOKEN_PART,  /* upper-case letters to the end: a request line cut
			    * short (Go servers may read a request's first byte
			    * alone) */
};

static __always_inline enum start request_start(struct event *e)
{
	__u32 n = e->cap_len;
	if (n == 0)
		return START_OTHER;
	for (int i = 0; i < 8; i++) {
		if (i >= n)
			return START_TOKEN_PART;
		__u8 c = e->data[i];
		if (c == ' ')
			return i > 0 ? START_REQUEST : START_OTHER;
		if (c < 'A' || c > 'Z')
			return START_OTHER;
	}
	return START_OTHER;
}

/* mark_lossy remembers that bytes of socket sock were not reported: its
 * next delivered event carries EVENT_FLAG_AFTER_LOSS, and its parser
 * starts afresh rather than read across the gap. */
static __always_inline void mark_lossy(__u64 sock, __s64 *lossy)
{
	__u8 one = 1;
	if (bpf_map_update_elem(&lossy_socks, &sock, &one, BPF_NOEXIST) == 0)
		__sync_fetch_and_add(lossy, 1);
}

/* lost_data counts a lost read/write event, and the request it began if
 * any. Go servers may read a request's first byte alone: that byte, lost,
 * is not counted; the rest of the line is counted if it is lost too, and
 * parsed as a request (with a clipped method) if it is delivered. */
static __always_inline void lost_data(struct event *e, __s64 *lossy)
{
	if (request_start(e) == START_REQUEST)
		count(COUNTER_LOST_REQUESTS);
	mark_lossy(e->sock, lossy);
}

/* send_data delivers a read/write event, flagging the first one after a
 * loss on its connection, and remembers the connection when it is lost. */
static __always_inline void send_data(struct event *e)
{
	__u32 zero = 0;
	__s64 *lossy = bpf_map_lookup_elem(&lossy_count, &zero);
	if (!lossy)
		return;
	bool flagged = false;
	if (*lossy > 0 && bpf_map_lookup_elem(&lossy_socks, &e->sock)) {
		e->flags |= EVENT_FLAG_AFTER_LOSS;
		flagged = true;
	}
	if (send(e, COUNTER_LOST_DATA)) {
		if (flagged && bpf_map_delete_elem(&lossy_socks, &e->sock) == 0)
			__sync_fetch_and_add(lossy, -1);
		return;
	}
	lost_data(e, lossy);
}

#endif
