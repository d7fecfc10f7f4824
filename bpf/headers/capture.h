/* Copying what a syscall moved from the process's memory into an event. */
#ifndef TRACER_CAPTURE_H
#define TRACER_CAPTURE_H

#define MAX_IOV 8
/* IOV_ALL_MAX bounds the iovec entries of a syscall that are read at all:
 * past the first MAX_IOV, one at a time (writev of many frames). */
#define IOV_ALL_MAX 1024

/* bound keeps a mask the compiler would drop because it "knows" the value is
 * in range; the verifier does not know it, and needs to see the mask. */
#define bound(x, mask) asm volatile("%0 &= " #mask : "+r"(x))

/* launder makes the verifier forget what it knows of the n bytes at p, a
 * bpf_loop callback's state on the stack, after the loop. Kernels before
 * 6.7 verify a callback as if it ran once: they may take a field the loop
 * sets for the constant it was before, prune the paths its other values
 * lead to, and drop their code as dead (on 6.1 no traceparent plan was
 * ever made: the head's end looked unseen). A helper's writes leave memory
 * unknown to the verifier; this one copies the bytes onto themselves. */
#define launder(p, n) bpf_probe_read_kernel((p), (n), (p))

/* The bytes a syscall moved, to read at any offset: a buffer, or the first
 * MAX_IOV entries of an iovec array. */
struct moved {
	__u64 base; /* the buffer, when niov is 0 */
	__u32 niov;
	__u32 len;  /* bytes the syscall moved */
	struct iovec iov[MAX_IOV];
	__u64 iov_user; /* the process's iovec array, for the entries past MAX_IOV */
	__u32 count;    /* its entries, at most IOV_ALL_MAX; 0 when not the process's */
};

/* A struct moved is built here, not on the stack: with it there, a program
 * and the bpf_loop callbacks it calls would need more than the 512 bytes of
 * stack that kernels before 6.x allow them together (6.1's verifier counts
 * a callback's frame on top of its caller's). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[sizeof(struct moved)]); /* bytes: bpf2go has no Go type for its pointers */
} scratch_moved SEC(".maps");

static __always_inline struct moved *moved_scratch(void)
{
	__u32 zero = 0;
	return (struct moved *)bpf_map_lookup_elem(&scratch_moved, &zero);
}

/* moved_iov reads an iovec array of count entries; it returns the bytes
 * they hold (of the first MAX_IOV), or 0. */
static __always_inline __u64 moved_iov(struct moved *m, __u64 iov, __u64 count)
{
	m->iov_user = iov;
	m->count = count < IOV_ALL_MAX ? count : IOV_ALL_MAX;
	m->niov = count < MAX_IOV ? count : MAX_IOV;
	if (m->niov == 0 ||
	    bpf_probe_read_user(m->iov, sizeof(m->iov[0]) * (m->niov & (MAX_IOV * 2 - 1)), (void *)iov) != 0)
		return 0;
	__u64 total = 0;
	for (int i = 0; i < MAX_IOV; i++)
		if (i < m->niov)
			total += m->iov[i].iov_len;
	return total;
}

/* moved_msg reads the iovec array of a msghdr, as moved_iov. */
static __always_inline __u64 moved_msg(struct moved *m, __u64 msghdr)
{
	struct user_msghdr msg;
	if (bpf_probe_read_user(&msg, sizeof(msg), (void *)msghdr) != 0)
		return 0;
	return moved_iov(m, (__u64)msg.msg_iov, msg.msg_iovlen);
}

/* READ_CHUNK is the most read_moved copies at once: its masks keep what
 * it writes within dst + 2 * READ_CHUNK. */
#define READ_CHUNK 2048

/* READ_MOVED defines a function that copies n bytes at offset off of what
 * the syscall moved into dst, n at most size_mask, the pieces of several
 * iovec entries at offsets at most at_mask into dst: the masks are what
 * tells the verifier that dst stays in its buffer. It returns false when
 * the bytes could not all be read. */
#define READ_MOVED(name, size_mask, at_mask)                                                       \
	static __always_inline bool name(struct moved *m, void *dst, __u32 off, __u32 n)          \
	{                                                                                           \
		if (!m->niov) {                                                                     \
			__u64 size = n;                                                             \
			bound(size, size_mask);                                                     \
			return bpf_probe_read_user(dst, size, (void *)(m->base + off)) == 0;        \
		}                                                                                   \
		__u32 done = 0, at = 0;                                                             \
		for (int i = 0; i < MAX_IOV; i++) {                                                 \
			if (i >= m->niov || done >= n)                                              \
				break;                                                              \
			__u64 l = m->iov[i].iov_len;                                                \
			if (off + done < at + l) {                                                  \
				__u32 from = off + done - at;                                       \
				__u64 k = l - from < n - done ? l - from : n - done, at_dst = done; \
				bound(k, size_mask);                                                \
				bound(at_dst, at_mask);                                             \
				if (bpf_probe_read_user(dst + at_dst, k, m->iov[i].iov_base + from) != 0) \
					return false;                                               \
				done += k;                                                          \
			}                                                                           \
			at += l;                                                                    \
		}                                                                                   \
		return done == n;                                                                   \
	}

/* read_moved reads up to READ_CHUNK bytes; read_small up to 15. */
READ_MOVED(read_moved, 0xfff, 0x7ff)
READ_MOVED(read_small, 0xf, 0xf)

/* capture_run copies the head of a syscall's bytes entry by entry, for
 * syscalls with more iovec entries than MAX_IOV (writev and sendmsg of
 * many small frames: Node.js, gRPC C-core). */
struct capture_run {
	struct event *e;
	struct moved *m;
	__u32 i;  /* the next entry */
	__u32 at; /* bytes copied */
	__u32 n;  /* bytes to copy */
};

static long capture_step(__u64 index, void *arg)
{
	struct capture_run *c = arg;
	struct iovec v;
	if (c->at >= c->n || c->i >= c->m->count ||
	    bpf_probe_read_user(&v, sizeof(v), (void *)(c->m->iov_user + (__u64)c->i * sizeof(v))) != 0)
		return 1;
	c->i++;
	__u64 k = v.iov_len < c->n - c->at ? v.iov_len : c->n - c->at, at = c->at;
	if (k == 0)
		return 0;
	bound(at, 0xfff);
	bound(k, 0x1fff);
	if (bpf_probe_read_user(&c->e->data[at], k, v.iov_base) != 0)
		return 1;
	c->at += k;
	return 0;
}

/* capture copies the head of what m moved (at most max bytes, at most
 * CAPTURE_MAX), and its tail when the head does not reach it (a chunked
 * terminator lives there). */
static __always_inline void capture(struct event *e, struct moved *m, __u32 max)
{
	__u32 n = m->len < max ? m->len : max;
	if (n > CAPTURE_MAX)
		n = CAPTURE_MAX;
	e->cap_len = 0;
	if (m->niov && m->count > MAX_IOV) {
		struct capture_run c = {.e = e, .m = m, .n = n};
		bpf_loop(IOV_ALL_MAX, capture_step, &c, 0);
		e->cap_len = c.at;
		return; /* no tail: the entries that hold it are not at hand */
	}
	for (__u32 c = 0; c < CAPTURE_MAX / READ_CHUNK; c++) {
		__u32 from = c * READ_CHUNK;
		if (from >= n)
			break;
		__u32 k = n - from < READ_CHUNK ? n - from : READ_CHUNK;
		if (!read_moved(m, &e->data[from], from, k))
			break;
		e->cap_len = from + k;
	}
	if (m->len > CAPTURE_MAX && read_moved(m, e->tail, m->len - TAIL_LEN, TAIL_LEN))
		e->tail_len = TAIL_LEN;
}

#endif
