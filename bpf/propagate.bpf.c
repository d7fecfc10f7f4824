//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/* Context propagation: puts a traceparent header line into the HTTP/1.x
 * requests selected processes send, in the kernel's copy of the bytes, so
 * the application's memory is never written (bpf_probe_write_user is
 * refused under lockdown anyway).
 *
 * sock_ops puts the TCP connections selected processes open into a sock
 * hash; sk_msg runs inside every sendmsg on those sockets and carries out
 * the plan the tracer left at sys_enter of that write (see
 * headers/propagation.h). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

typedef _Bool bool;
#define true 1
#define false 0

#include "headers/selection.h"
#include "headers/propagation.h"

char __license[] SEC("license") = "GPL";

/* Connections selected processes are opening: socket cookie -> 1, from
 * connect() (process context, so the process is known) to established
 * (softirq context, where it is not). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} connecting SEC(".maps");

/* The connections whose sendmsg the sk_msg program sees. A socket leaves it
 * by itself when it closes. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} clients SEC(".maps");

SEC("sockops")
int track_clients(struct bpf_sock_ops *skops)
{
	__u64 cookie;
	__u8 one = 1;

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		if (!selected(bpf_get_current_pid_tgid() >> 32))
			break;
		cookie = bpf_get_socket_cookie(skops);
		bpf_map_update_elem(&connecting, &cookie, &one, BPF_ANY);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		cookie = bpf_get_socket_cookie(skops);
		if (!bpf_map_lookup_elem(&connecting, &cookie))
			break;
		bpf_map_delete_elem(&connecting, &cookie);
		/* When the hash is full, the connection's requests are reported
		 * as not injected: user space counts them. */
		bpf_sock_hash_update(skops, &clients, &cookie, BPF_NOEXIST);
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
