//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/* Context propagation: puts a traceparent header line into the first
 * HTTP/1.x request of a connection a selected process opens, in the
 * kernel's copy of the bytes, so the application's memory is never written
 * (bpf_probe_write_user is refused under lockdown anyway).
 *
 * sock_ops puts the connection into a sock hash when it is established and
 * takes it out at its first data segment, sent or received: an sk_msg
 * program on the hash runs inside every sendmsg of the sockets in it, but
 * being in it also changes how the kernel answers reads and ioctls on them
 * (FIONREAD counts only the sk_msg queue, so it says 0 while bytes wait).
 * Out of the hash before anything can be read, the socket is a plain TCP
 * socket again. See headers/propagation.h for the plan the tracer leaves. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

typedef _Bool bool;
#define true 1
#define false 0

#include "headers/selection.h"
#include "headers/propagation.h"
#include "headers/tcp_option.h"

char __license[] SEC("license") = "GPL";

/* Set by the loader: which modes of context_propagation are on. */
volatile const __u32 headers_on = 1; /* headers: the sock hash and sk_msg */
volatile const __u32 tcp_on = 0;     /* tcp: the TCP header option */

/* What sock_ops reads of a socket through its BTF pointer, relocated with
 * CO-RE. */
struct sock_common {
	unsigned long skc_flags; /* sk_flags since 6.18 */
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	void *sk_user_data;
	unsigned long sk_flags; /* before 6.18 */
} __attribute__((preserve_access_index));

/* The connecting process, read through the task's BTF pointer:
 * bpf_get_current_pid_tgid is not offered to sock_ops programs on older
 * kernels (6.1), bpf_get_current_task_btf is (to CAP_PERFMON). */
struct task_struct {
	int tgid;
} __attribute__((preserve_access_index));

enum sock_flags {
	SOCK_ZEROCOPY = 18, /* the kernel's value is taken at load, by name */
};

/* The connections whose sendmsg the sk_msg program sees, by cookie. A socket
 * leaves it at its first data segment, or by itself when it closes. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} clients SEC(".maps");

static __always_inline void set_state(__u64 cookie, __u8 state)
{
	bpf_map_update_elem(&sock_states, &cookie, &state, BPF_ANY);
}

/* sock_flags reads the socket's flags wherever this kernel keeps them. */
static __always_inline unsigned long sock_flags(struct sock *sk)
{
	if (bpf_core_field_exists(sk->__sk_common.skc_flags))
		return BPF_CORE_READ(sk, __sk_common.skc_flags);
	return BPF_CORE_READ(sk, sk_flags);
}

/* refusal says why a socket must not enter the hash, or 0. */
static __always_inline __u8 refusal(struct bpf_sock_ops *skops)
{
	if (skops->data_segs_out || skops->data_segs_in)
		return SOCK_LEFT; /* data went with the handshake (TCP Fast Open) */
	struct bpf_sock *bsk = skops->sk;
	if (!bsk)
		return SOCK_LEFT;
	/* A tcp_sock begins with its struct sock. */
	struct sock *sk = (struct sock *)bpf_skc_to_tcp_sock(bsk);
	if (!sk)
		return SOCK_LEFT;
	if (BPF_CORE_READ(sk, sk_user_data))
		return SOCK_REFUSED_SOCKMAP; /* a psock or another owner of sk_user_data */
	__u64 zerocopy = bpf_core_enum_value(enum sock_flags, SOCK_ZEROCOPY);
	if (sock_flags(sk) & (1ULL << zerocopy))
		return SOCK_REFUSED_ZEROCOPY;
	return 0;
}

/* The header callbacks the headers mode no longer needs once a socket
 * leaves the hash; the tcp mode keeps writing options. */
static __always_inline __u32 headers_flags(void)
{
	return tcp_on ? BPF_SOCK_OPS_PARSE_ALL_HDR_OPT_CB_FLAG
		      : BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG | BPF_SOCK_OPS_PARSE_ALL_HDR_OPT_CB_FLAG;
}

/* enroll puts an established connection of a selected process into the
 * hash, and asks for a callback on every segment until it leaves. */
static __always_inline void enroll(struct bpf_sock_ops *skops, __u64 cookie)
{
	__u8 why = refusal(skops);
	if (why) {
		set_state(cookie, why);
		return;
	}
	if (bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
					      BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG |
					      BPF_SOCK_OPS_PARSE_ALL_HDR_OPT_CB_FLAG) != 0) {
		set_state(cookie, SOCK_LEFT); /* a kernel without header callbacks (before 5.10) */
		return;
	}
	/* Enrolled before the hash update: a segment right after it must
	 * find the state that makes it leave. */
	set_state(cookie, SOCK_ENROLLED);
	if (bpf_sock_hash_update(skops, &clients, &cookie, BPF_NOEXIST) != 0) {
		set_state(cookie, SOCK_REFUSED_FULL);
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags & ~headers_flags());
	}
}

/* leave takes a socket out of the hash for good, at its first data. */
static __always_inline void leave(struct bpf_sock_ops *skops, __u64 cookie)
{
	bpf_map_delete_elem(&clients, &cookie);
	set_state(cookie, SOCK_LEFT);
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags & ~headers_flags());
}

/* enrolled says whether the socket is in the hash (headers mode). */
static __always_inline bool enrolled(__u64 cookie)
{
	__u8 *st = bpf_map_lookup_elem(&sock_states, &cookie);
	return headers_on && st && *st == SOCK_ENROLLED;
}

/* received_data says whether the segment being parsed carries payload:
 * its length beyond the TCP header. */
static __always_inline bool received_data(struct bpf_sock_ops *skops)
{
	__u8 *th = skops->skb_data;
	if (th + 13 > (__u8 *)skops->skb_data_end)
		return true; /* cannot tell: leaving is the safe side */
	__u32 header = (th[12] >> 4) * 4;
	return skops->skb_len > header;
}

/* ---- context_propagation: tcp (headers/tcp_option.h) ---- */

/* seq_diff is a - b in sequence space. */
static __always_inline __s32 seq_diff(__u32 a, __u32 b)
{
	return (__s32)(a - b);
}

/* tcp_reserve makes room for the option: in the MSS while a request waits
 * for its segment (the kernel asks with no segment, skb_tcp_flags 0), and
 * in the segment that begins at the request's first byte. A segment that
 * holds that byte but begins before it never carries the option. */
static __always_inline void tcp_reserve(struct bpf_sock_ops *skops, __u64 cookie)
{
	struct tcp_out *o = bpf_map_lookup_elem(&tcp_out, &cookie);
	if (!o || o->state != TCP_OUT_PENDING)
		return;
	bool mss = skops->skb_tcp_flags == 0;
	if (!mss) {
		__u32 len = skops->skb_len; /* the payload: the header is not written yet */
		__s32 d = seq_diff(o->seq, skops->snd_nxt);
		if (len == 0 || d >= (__s32)len)
			return; /* not data, or data before the request */
		if (d != 0) {
			o->state = TCP_OUT_MISPLACED;
			tcp_count(TCP_OPT_MISPLACED);
			return;
		}
	}
	if (bpf_reserve_hdr_opt(skops, TCP_OPT_LEN, 0) != 0 && !mss) {
		o->state = TCP_OUT_NO_ROOM; /* SACK blocks took the space */
		tcp_count(TCP_OPT_NO_ROOM);
	}
}

/* tcp_header reads the sequence number and the header length of the
 * segment whose TCP header skb_data covers. */
static __always_inline bool tcp_header(struct bpf_sock_ops *skops, __u32 *seq, __u32 *hlen)
{
	__u8 *th = skops->skb_data;
	if (th + 13 > (__u8 *)skops->skb_data_end)
		return false;
	*seq = (__u32)th[4] << 24 | (__u32)th[5] << 16 | (__u32)th[6] << 8 | th[7];
	*hlen = (th[12] >> 4) * 4;
	return true;
}

/* tcp_write writes the option into the segment of the request's first
 * byte. */
static __always_inline void tcp_write(struct bpf_sock_ops *skops, __u64 cookie)
{
	struct tcp_out *o = bpf_map_lookup_elem(&tcp_out, &cookie);
	if (!o || o->state != TCP_OUT_PENDING)
		return;
	__u32 seq, hlen;
	if (!tcp_header(skops, &seq, &hlen) || seq != o->seq || skops->skb_len <= hlen)
		return;
	struct tcp_trace_opt opt = {.kind = TCP_OPT_KIND, .len = TCP_OPT_LEN, .exid = {TCP_OPT_EXID_HI,
		(o->ctx.flags & 1) ? TCP_OPT_EXID_SAMPLED : TCP_OPT_EXID_UNSAMPLED}};
	__builtin_memcpy(opt.trace_id, o->ctx.trace_id, 16);
	__builtin_memcpy(opt.span_id, o->ctx.span_id, 8);
	if (bpf_store_hdr_opt(skops, &opt, sizeof(opt), 0) == 0) {
		o->state = TCP_OUT_SENT;
		tcp_count(TCP_OPT_SENT);
	} else {
		o->state = TCP_OUT_NO_ROOM;
		tcp_count(TCP_OPT_NO_ROOM);
	}
}

/* tcp_find reads our option from the segment being parsed, if it has it. */
static __always_inline bool tcp_find(struct bpf_sock_ops *skops, struct tcp_trace_opt *opt, __u8 *flags)
{
	__u8 exids[2] = {TCP_OPT_EXID_SAMPLED, TCP_OPT_EXID_UNSAMPLED};
	for (int i = 0; i < 2; i++) {
		__builtin_memset(opt, 0, sizeof(*opt));
		opt->kind = TCP_OPT_KIND;
		opt->len = 4; /* search by the 2-byte ExID */
		opt->exid[0] = TCP_OPT_EXID_HI;
		opt->exid[1] = exids[i];
		if (bpf_load_hdr_opt(skops, opt, sizeof(*opt), 0) == sizeof(*opt) && opt->len == TCP_OPT_LEN) {
			*flags = i == 0;
			return true;
		}
	}
	return false;
}

/* tcp_receive keeps the context a segment of a server connection brought,
 * by the segment's sequence number. A GSO segment's copies (each carries
 * the option) keep the lowest one: the request's first byte. */
static __always_inline void tcp_receive(struct bpf_sock_ops *skops, __u64 cookie)
{
	struct tcp_trace_opt opt;
	__u8 flags;
	__u32 seq, hlen;
	if (!tcp_find(skops, &opt, &flags) || !tcp_header(skops, &seq, &hlen) || skops->skb_len <= hlen)
		return;
	tcp_count(TCP_OPT_RECEIVED);
	struct tcp_in *in = bpf_map_lookup_elem(&tcp_in, &cookie);
	if (!in) {
		__u32 zero = 0;
		struct tcp_in *blank = bpf_map_lookup_elem(&tcp_in_blank, &zero);
		if (!blank)
			return;
		bpf_map_update_elem(&tcp_in, &cookie, blank, BPF_NOEXIST);
		in = bpf_map_lookup_elem(&tcp_in, &cookie);
		if (!in)
			return;
	}
	__u64 span, other;
	__builtin_memcpy(&span, opt.span_id, 8);
	for (int i = 0; i < TCP_IN_SLOTS; i++) {
		__builtin_memcpy(&other, in->span_id[i], 8);
		if (in->ts[i] && other == span) {
			if (seq_diff(seq, in->seq[i]) < 0)
				in->seq[i] = seq;
			return;
		}
	}
	__u32 i = in->next % TCP_IN_SLOTS;
	in->next++;
	in->ts[i] = bpf_ktime_get_ns();
	in->seq[i] = seq;
	__builtin_memcpy(in->trace_id[i], opt.trace_id, 16);
	__builtin_memcpy(in->span_id[i], opt.span_id, 8);
	in->flags[i] = flags;
}

SEC("sockops")
int track_clients(struct bpf_sock_ops *skops)
{
	__u64 cookie = bpf_get_socket_cookie(skops);
	__u8 *st;

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		/* Process context: the connecting process is known here only.
		 * State changes are asked for, to forget the socket when it
		 * closes, however it closes. */
		if (selected(bpf_get_current_task_btf()->tgid)) {
			set_state(cookie, SOCK_CONNECTING);
			bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
		}
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] == BPF_TCP_CLOSE) {
			bpf_map_delete_elem(&sock_states, &cookie);
			if (tcp_on)
				bpf_map_delete_elem(&tcp_out, &cookie);
		}
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		st = bpf_map_lookup_elem(&sock_states, &cookie);
		if (!st || *st != SOCK_CONNECTING)
			break;
		if (tcp_on)
			bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
		if (headers_on)
			enroll(skops, cookie);
		else
			set_state(cookie, SOCK_LEFT);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		/* Any process's: which one accepts it is not known here. The
		 * callback runs only for segments with an option the kernel does
		 * not know. */
		if (tcp_on)
			bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
							 BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG);
		break;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		/* The header is not written yet: skb_len is the payload. */
		if (skops->skb_len > 0 && enrolled(cookie))
			leave(skops, cookie);
		if (tcp_on)
			tcp_reserve(skops, cookie);
		break;
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
		if (tcp_on)
			tcp_write(skops, cookie);
		break;
	case BPF_SOCK_OPS_PARSE_HDR_OPT_CB:
		if (enrolled(cookie) && received_data(skops))
			leave(skops, cookie);
		if (tcp_on)
			tcp_receive(skops, cookie);
		break;
	}
	return 1;
}

#define PAGE 4096

/* pull_head makes the first `end` bytes of the message one linear piece
 * and returns where byte `off` of it is, or 0. One piece goes out as one
 * segment: a peer reading the head while the rest is still being sent
 * could otherwise get the request line without the line inserted after
 * it. */
static __always_inline char *pull_head(struct sk_msg_md *msg, __u32 off, __u32 end)
{
	__u32 start = 0;
	if (end > PAGE) { /* a long message: only the new line is made linear */
		start = off;
		end = off + TRACEPARENT_LINE_LEN;
	}
	if (bpf_msg_pull_data(msg, start, end, 0) != 0)
		return 0;
	char *data = msg->data, *data_end = msg->data_end;
	__u32 at = off - start;
	if (at > PAGE)
		return 0;
	char *line = data + at;
	if (line + TRACEPARENT_LINE_LEN > data_end)
		return 0;
	return line;
}

/* insert_traceparent carries out the plan of the current write: the line
 * goes right after the request line. The first run of the program in a
 * sendmsg sees the head of the bytes; later runs (large writes) find the
 * plan taken. */
SEC("sk_msg")
int insert_traceparent(struct sk_msg_md *msg)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct plan *p = bpf_map_lookup_elem(&plans, &pid_tgid);
	if (!p || p->state != PLAN_READY)
		return SK_PASS;
	p->state = PLAN_FAILED;
	__u32 off = p->offset, size = msg->size;
	if (off == 0 || off >= size)
		return SK_PASS;
	if (bpf_msg_push_data(msg, off, TRACEPARENT_LINE_LEN, 0) != 0)
		return SK_PASS;
	char *line = pull_head(msg, off, size + TRACEPARENT_LINE_LEN);
	if (!line) {
		bpf_msg_pop_data(msg, off, TRACEPARENT_LINE_LEN, 0);
		return SK_PASS;
	}
	__builtin_memcpy(line, p->line, TRACEPARENT_LINE_LEN);
	p->state = PLAN_DONE;
	return SK_PASS;
}
