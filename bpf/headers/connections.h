/* Connection events and the selection of processes at connect(), for any
 * set of hooks that sees connect, accept and close: the raw syscall
 * tracepoints of tracer.bpf.c, or the fentry hooks of sockhooks.bpf.c. */
#ifndef TRACER_CONNECTIONS_H
#define TRACER_CONNECTIONS_H

/* Set by the loader before the programs are loaded. */
volatile const __u32 self_tgid = 0;

/* Ports whose connect() selects the calling process: port -> 1. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} connect_ports SEC(".maps");

/* on_connect selects a process that connects to a watched port, before its
 * first byte moves, so client spans of short-lived clients are not missed.
 * uaddr is the sockaddr the process passed, in its memory. */
static __always_inline void on_connect(__u64 pid_tgid, __u64 uaddr)
{
	__u32 tgid = pid_tgid >> 32;
	if (tgid == self_tgid || selected(tgid))
		return;
	struct {
		__u16 family;
		__be16 port;
	} sa = {};
	if (bpf_probe_read_user(&sa, sizeof(sa), (void *)uaddr) != 0)
		return;
	if (sa.family != AF_INET && sa.family != AF_INET6)
		return;
	__u32 port = bpf_ntohs(sa.port);
	__u8 *watched = bpf_map_lookup_elem(&connect_ports, &port);
	if (!watched || !*watched)
		return;
	set_selected(tgid, true);
	struct event *e = new_event(EVENT_SELECT, pid_tgid, 0);
	if (!e)
		return;
	e->rport = port;
	/* The command name, for a process gone before user space looks at it. */
	if (bpf_get_current_comm(e->data, TASK_COMM_LEN) == 0)
		e->cap_len = TASK_COMM_LEN;
	send(e, COUNTER_LOST_CONTROL);
}

/* send_conn reports a connection event (close, connect, accept) of fd. */
static __always_inline void send_conn(__u8 kind, __u64 pid_tgid, __u32 fd)
{
	struct sock *sk = fd_socket(fd);
	if (!sk)
		return;
	if (kind == EVENT_CLOSE)
		forget_frames((__u64)sk);
	struct event *e = new_event(kind, pid_tgid, fd);
	if (e && fill_tuple(e, sk))
		send(e, COUNTER_LOST_CONTROL);
}

#endif
