/* Copying what a syscall moved from the process's memory into an event. */
#ifndef TRACER_CAPTURE_H
#define TRACER_CAPTURE_H

#define MAX_IOV 8

/* bound keeps a mask the compiler would drop because it "knows" the value is
 * in range; the verifier does not know it, and needs to see the mask. */
#define bound(x, mask) asm volatile("%0 &= " #mask : "+r"(x))

/* capture_buf copies the head of a plain buffer, and its tail when the head
 * does not reach it (a chunked terminator lives there). */
static __always_inline void capture_buf(struct event *e, __u64 buf, __u32 len)
{
	__u64 n = len < CAPTURE_MAX ? len : CAPTURE_MAX;
	bound(n, 0x1fff);
	if (bpf_probe_read_user(e->data, n, (void *)buf) == 0)
		e->cap_len = n;
	if (len > CAPTURE_MAX && bpf_probe_read_user(e->tail, TAIL_LEN, (void *)(buf + len - TAIL_LEN)) == 0)
		e->tail_len = TAIL_LEN;
}

/* capture_iov copies the head of what an iovec array moved (len bytes). */
static __always_inline void capture_iov(struct event *e, __u64 iov_addr, __u64 iovcnt, __u32 len)
{
	__u32 off = 0;
	for (int i = 0; i < MAX_IOV; i++) {
		if (i >= iovcnt || off >= len || off >= CAPTURE_MAX)
			break;
		struct iovec iov;
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(iov_addr + i * sizeof(iov))) != 0)
			break;
		__u64 n = iov.iov_len;
		if (n > len - off)
			n = len - off;
		if (n > CAPTURE_MAX - off)
			n = CAPTURE_MAX - off;
		__u64 at = off, size = n;
		bound(at, 0xfff);
		bound(size, 0x1fff);
		if (size > CAPTURE_MAX)
			size = CAPTURE_MAX;
		if (bpf_probe_read_user(&e->data[at], size, iov.iov_base) != 0)
			break;
		off += n;
	}
	e->cap_len = off;
}

/* capture_msg copies the head of what a msghdr's iovec array moved. */
static __always_inline void capture_msg(struct event *e, __u64 msghdr, __u32 len)
{
	struct user_msghdr msg;
	if (bpf_probe_read_user(&msg, sizeof(msg), (void *)msghdr) == 0)
		capture_iov(e, (__u64)msg.msg_iov, msg.msg_iovlen, len);
}

#endif
