/* Copying what a syscall moved from the process's memory into an event. */
#ifndef TRACER_CAPTURE_H
#define TRACER_CAPTURE_H

#define MAX_IOV 8

/* bound keeps a mask the compiler would drop because it "knows" the value is
 * in range; the verifier does not know it, and needs to see the mask. */
#define bound(x, mask) asm volatile("%0 &= " #mask : "+r"(x))

/* The bytes a syscall moved, to read at any offset: a buffer, or the first
 * MAX_IOV entries of an iovec array. */
struct moved {
	__u64 base; /* the buffer, when niov is 0 */
	__u32 niov;
	__u32 len;  /* bytes the syscall moved */
	struct iovec iov[MAX_IOV];
};

/* moved_iov reads an iovec array of count entries; it returns the bytes
 * they hold (of the first MAX_IOV), or 0. */
static __always_inline __u64 moved_iov(struct moved *m, __u64 iov, __u64 count)
{
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

/* capture copies the head of what m moved (at most max bytes, at most
 * CAPTURE_MAX), and its tail when the head does not reach it (a chunked
 * terminator lives there). */
static __always_inline void capture(struct event *e, struct moved *m, __u32 max)
{
	__u32 n = m->len < max ? m->len : max;
	if (n > CAPTURE_MAX)
		n = CAPTURE_MAX;
	e->cap_len = 0;
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
