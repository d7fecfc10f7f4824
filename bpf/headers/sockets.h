/* From a file descriptor of the current task to the TCP connection behind
 * it, with CO-RE reads of the kernel's structs. */
#ifndef TRACER_SOCKETS_H
#define TRACER_SOCKETS_H

/* fd_array returns the current task's file array if fd is within it. */
static __always_inline struct file **fd_array(__u32 fd)
{
	if (modern) {
		/* A BTF pointer: these loads are plain instructions, not helper calls. */
		struct fdtable *fdt = bpf_get_current_task_btf()->files->fdt;
		return fdt && fd < fdt->max_fds ? fdt->fd : 0;
	}
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	return fdt && fd < BPF_CORE_READ(fdt, max_fds) ? BPF_CORE_READ(fdt, fd) : 0;
}

/* fd_socket returns the stream socket behind fd of the current task, or 0. */
static __always_inline struct sock *fd_socket(__u32 fd)
{
	struct file **fds = fd_array(fd);
	if (!fds)
		return 0;
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	if (!f)
		return 0;
	unsigned short mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	if (!sock || BPF_CORE_READ(sock, type) != SOCK_STREAM)
		return 0;
	return BPF_CORE_READ(sock, sk); /* fill_tuple tells TCP/IP from Unix */
}

/* sock_common begins with the IPv4 addresses, the ports and the family
 * (daddr, rcv_saddr, hash, dport, num, family on every kernel so far).
 * tuple_block reads them with one helper call instead of five, taking each
 * field at the offset CO-RE gives it; it returns false when the layout does
 * not fit the block, and the fields are then read one by one. */
#define TUPLE_BLOCK 24
static __always_inline bool tuple_block(struct event *e, struct sock *sk)
{
	__u32 base = bpf_core_field_offset(struct sock, __sk_common) + bpf_core_field_offset(struct sock_common, skc_daddr);
	__u32 saddr = bpf_core_field_offset(struct sock_common, skc_rcv_saddr) - bpf_core_field_offset(struct sock_common, skc_daddr);
	__u32 dport = bpf_core_field_offset(struct sock_common, skc_dport) - bpf_core_field_offset(struct sock_common, skc_daddr);
	__u32 num = bpf_core_field_offset(struct sock_common, skc_num) - bpf_core_field_offset(struct sock_common, skc_daddr);
	__u32 family = bpf_core_field_offset(struct sock_common, skc_family) - bpf_core_field_offset(struct sock_common, skc_daddr);
	if (saddr > TUPLE_BLOCK - 4 || dport > TUPLE_BLOCK - 2 || num > TUPLE_BLOCK - 2 || family > TUPLE_BLOCK - 2)
		return false;
	__u8 b[TUPLE_BLOCK];
	if (bpf_probe_read_kernel(b, sizeof(b), (void *)sk + base) != 0)
		return false;
	__u16 v16;
	__builtin_memcpy(&v16, &b[family], 2);
	e->family = v16;
	__builtin_memcpy(&v16, &b[num], 2);
	e->lport = v16;
	__builtin_memcpy(&v16, &b[dport], 2);
	e->rport = bpf_ntohs(v16);
	if (e->family == AF_INET) {
		__builtin_memset(e->laddr, 0, sizeof(e->laddr));
		__builtin_memset(e->raddr, 0, sizeof(e->raddr));
		__builtin_memcpy(e->laddr, &b[saddr], 4);
		__builtin_memcpy(e->raddr, b, 4);
	} else if (e->family == AF_INET6) {
		bpf_core_read(e->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(e->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	return true;
}

/* fill_tuple_fields reads the tuple field by field, where the block does
 * not fit the kernel's layout. */
static __always_inline void fill_tuple_fields(struct event *e, struct sock *sk)
{
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (e->family == AF_INET) {
		__builtin_memset(e->laddr, 0, sizeof(e->laddr));
		__builtin_memset(e->raddr, 0, sizeof(e->raddr));
		bpf_core_read(e->laddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(e->raddr, 4, &sk->__sk_common.skc_daddr);
	} else if (e->family == AF_INET6) {
		bpf_core_read(e->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(e->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

/* sock_netns is the inode of the network namespace of sk: connections of
 * two pods with the same loopback addresses are told apart by it. */
static __always_inline __u32 sock_netns(struct sock *sk)
{
	if (!bpf_core_field_exists(sk->__sk_common.skc_net.net))
		return 0; /* a kernel without network namespaces */
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* fill_tuple puts the connection's identity in e; it returns false for a
 * socket that is not TCP/IP (a Unix stream socket). */
static __always_inline bool fill_tuple(struct event *e, struct sock *sk)
{
	e->sock = (__u64)sk;
	if (!tuple_block(e, sk))
		fill_tuple_fields(e, sk);
	if (e->family != AF_INET && e->family != AF_INET6)
		return false;
	e->netns = sock_netns(sk);
	return true;
}

/* sock_cookie is the socket's cookie, or 0 when nothing asked the kernel
 * for it yet (the propagation programs do at connect). */
static __always_inline __u64 sock_cookie(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
}

#endif
