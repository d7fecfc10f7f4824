/* Context propagation in a TCP header option (context_propagation: tcp):
 * what the tracer and the sock_ops program of propagate.bpf.c share.
 *
 * For traffic whose bytes cannot change (HTTP/2, gRPC, anything a
 * traceparent header cannot be added to), the client span's context rides
 * in an option of the TCP header of the segment that carries the request's
 * first byte, one option per request:
 *
 *   kind 253 (experimental, RFC 6994), length 28, ExID 0xEB7C (sampled) or
 *   0xEB7D (not sampled), the trace id (16 bytes), the span id (8 bytes).
 *
 * 28 bytes fit beside timestamps (12 with their padding) in the 40 bytes of
 * option space; the kernel writes its options (MSS, SACK, window scale,
 * timestamps) first, and when SACK blocks leave no room the option is not
 * sent, and counted. The option space is reserved in the MSS while a
 * request waits for its segment, so no segment outgrows the path MTU.
 *
 * Sender: at the write that begins a request on a connection a selected
 * process opened, the tracer chooses the client span's ids, notes the
 * sequence number of the write's first byte (tcp_sock.write_seq) in
 * tcp_out, and puts the ids in the write's event. The sock_ops program
 * writes the option on the segment that begins at that sequence number,
 * and on no other (a segment that also carried earlier bytes would make
 * the receiver pair the context with the wrong request).
 *
 * Receiver: the sock_ops program, called for segments with options the
 * kernel does not know, keeps the contexts by the sequence number of the
 * segment that carried them (tcp_in); a read that begins exactly there
 * (tcp_sock.copied_seq minus the bytes read) gets the caller's context,
 * and its event says so. The bytes the application reads never change.
 *
 * TLS: the request is seen in plaintext by the TLS probes (tls.bpf.c),
 * before the library writes its records. The probe chooses the ids and
 * notes the socket's write_seq as TCP_OUT_TENTATIVE, owned by its thread;
 * the tracer confirms it (TCP_OUT_PENDING) at that thread's next write on
 * the socket if the write begins there with an application data record,
 * and drops it otherwise (another thread wrote first, records were
 * buffered): never an option on another request's bytes. On the server,
 * a read of records that begins at a received context's segment leaves
 * the context for the plaintext the library hands over next. */
#ifndef TRACER_TCP_OPTION_H
#define TRACER_TCP_OPTION_H

#define TCP_OPT_KIND 253
#define TCP_OPT_LEN 28
#define TCP_OPT_EXID_HI 0xEB
#define TCP_OPT_EXID_SAMPLED 0x7C
#define TCP_OPT_EXID_UNSAMPLED 0x7D

/* A context waits this long at most for its segment, or for its read. */
#define TCP_OPT_MAX_AGE_NS (10ULL * 1000 * 1000 * 1000)

/* The option as it goes on the wire. */
struct tcp_trace_opt {
	__u8 kind;
	__u8 len;
	__u8 exid[2];
	__u8 trace_id[16];
	__u8 span_id[8];
};

enum tcp_out_state {
	TCP_OUT_PENDING = 1, /* chosen at the write, not on the wire yet */
	TCP_OUT_SENT,        /* written into the segment's header */
	TCP_OUT_NO_ROOM,     /* the header had no room (SACK blocks) */
	TCP_OUT_MISPLACED,   /* the request's first byte went in a segment that began earlier */
	TCP_OUT_TENTATIVE,   /* chosen at a TLS library's plaintext: its ciphertext write confirms it */
};

/* A client connection's request waiting for its segment, by socket
 * cookie. */
struct tcp_out {
	struct trace_ctx ctx;
	__u32 seq;   /* sequence number of the request's first byte */
	__u8 state;  /* enum tcp_out_state; 0: no request waits */
	__u8 proto;  /* enum tcp_proto: what the connection carries, when known */
	__u8 pad[2];
	__u64 owner; /* TCP_OUT_TENTATIVE: the thread whose write confirms it */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct tcp_out);
} tcp_out SEC(".maps");

#define TCP_IN_SLOTS 16

/* The contexts a server connection received and its process has not read
 * yet, by socket cookie: up to 16, for pipelined and multiplexed requests
 * (HTTP/2 streams that arrive while the server is busy); a 17th takes the
 * oldest's slot. */
struct tcp_in {
	__u64 ts[TCP_IN_SLOTS]; /* when it came; 0: a free slot */
	__u32 seq[TCP_IN_SLOTS];
	__u8 trace_id[TCP_IN_SLOTS][16];
	__u8 span_id[TCP_IN_SLOTS][8];
	__u8 flags[TCP_IN_SLOTS];
	__u32 next;
	/* The context the last matched read got, and where that read ended:
	 * a Go server may read a request's first byte alone, and the read of
	 * the rest must not get another context (with headers too, the
	 * tracer's serve_request gives it a root). */
	struct trace_ctx cont;
	__u32 cont_seq;
	__u32 pad;
	/* The context a read of TLS records got (ts 0: none): the plaintext
	 * the TLS library hands over next on this socket is that request's. */
	struct trace_ctx tls;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct tcp_in);
} tcp_in SEC(".maps");

/* Zeroes for a new tcp_in: too big for the stack. Nothing writes it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tcp_in);
} tcp_in_blank SEC(".maps");

enum tcp_counter {
	TCP_OPT_SENT = 0,    /* options written into a segment */
	TCP_OPT_NO_ROOM,     /* requests whose segment had no room for the option */
	TCP_OPT_MISPLACED,   /* requests whose first byte did not begin a segment */
	TCP_OPT_BUSY,        /* requests written while the connection's previous one still waited for its segment */
	TCP_OPT_RECEIVED,    /* options received */
	TCP_OPT_MATCHED,     /* received contexts a read began at: server spans made children */
	TCP_COUNTER_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TCP_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tcp_counters SEC(".maps");

const enum tcp_counter *unused_tcp_counter __attribute__((unused));

static __always_inline void tcp_count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&tcp_counters, &which);
	if (v)
		*v += 1;
}

#endif
