//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/* The tracer: sees what selected processes read from and write to their TCP
 * sockets, using only raw syscall tracepoints and CO-RE reads, so it runs on
 * kernels without kprobes or fentry.
 *
 * sys_enter remembers the arguments of the syscalls of interest, per thread;
 * sys_exit knows how many bytes moved and sends one event with the socket's
 * identity and a prefix of the bytes. Everything else (HTTP parsing, pairing)
 * happens in user space. */
#include "headers/kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "headers/selection.h"
#include "headers/propagation.h"

char __license[] SEC("license") = "GPL";

/* CAPTURE_MAX bytes of each syscall are copied; a power of two. */
#define CAPTURE_MAX 4096
#define TAIL_LEN 16
#define MAX_IOV 8
#define TASK_COMM_LEN 16

enum event_kind {
	EVENT_READ = 1,   /* the process read bytes from a socket */
	EVENT_WRITE = 2,  /* the process wrote bytes to a socket */
	EVENT_CLOSE = 3,  /* the process closed a socket fd */
	EVENT_EXIT = 4,   /* a selected process exited */
	EVENT_SELECT = 5, /* the kernel selected a process (connect to a watched port) */
};

/* What a syscall does with its buffer, decided at sys_enter. */
enum op {
	OP_READ = 1,     /* read, recvfrom: (fd, buf, len) */
	OP_WRITE,        /* write, sendto: (fd, buf, len) */
	OP_READV,        /* readv: (fd, iov, iovcnt) */
	OP_WRITEV,       /* writev: (fd, iov, iovcnt) */
	OP_RECVMSG,      /* recvmsg: (fd, msghdr, flags) */
	OP_SENDMSG,      /* sendmsg: (fd, msghdr, flags) */
	OP_SENDFILE,     /* sendfile: (out_fd, in_fd, off, count), bytes not captured */
};

enum counter {
	COUNTER_LOST_DATA = 0,   /* read/write events the ring buffer had no room for */
	COUNTER_LOST_CONTROL,    /* close/exit/select events the ring buffer had no room for */
	COUNTER_LOST_ARGS,       /* syscalls not followed: no memory for their arguments */
	COUNTER_LOST_REQUESTS,   /* lost read/write events whose bytes began a request */
	COUNTER_MAX,
};

struct event {
	__u8 kind;
	__u8 family;
	__u16 lport;   /* host byte order */
	__u16 rport;   /* host byte order */
	__u16 cap_len; /* bytes of data[] that follow */
	__u32 pid;     /* tgid */
	__u32 tid;
	__u32 fd;
	__u32 len;     /* bytes the syscall moved */
	__u8 tail_len;
	__u8 flags;    /* EVENT_FLAG_* */
	__u8 trace_flags; /* W3C flags of the context below */
	__u8 pad[5];
	__u64 ts;      /* bpf_ktime_get_ns() */
	__u64 sock;    /* struct sock address: the connection's identity */
	__u8 laddr[16];
	__u8 raddr[16];
	__u8 tail[TAIL_LEN];
	/* With EVENT_FLAG_CONTEXT or EVENT_FLAG_INJECTED: the span's ids. */
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 parent_id[8];
	__u8 data[CAPTURE_MAX * 2]; /* twice the capture so the verifier can bound offset + length */
};

/* Set on the first event of a connection after events of it were lost: user
 * space must not pair what comes next with what came before. */
#define EVENT_FLAG_AFTER_LOSS 1
/* A read began a request: trace_id and span_id are its server span's, and
 * parent_id the caller's from its traceparent, if any. */
#define EVENT_FLAG_CONTEXT 2
/* A write began a request that went out with a traceparent: the ids are the
 * client span's, parent_id the request its thread was serving. */
#define EVENT_FLAG_INJECTED 4
/* A write began a request that should have carried a traceparent but could
 * not: its socket is not one the sk_msg program sees, or its head is
 * longer than the capture. */
#define EVENT_FLAG_NOT_INJECTED 8

struct args {
	__u64 buf;  /* buffer, iovec array or msghdr */
	__u64 count;
	__u32 fd;
	__u32 op;
};

/* Set by the loader before the programs are loaded. */
volatile const __u32 self_tgid = 0;
/* Non-zero with context_propagation: headers. */
volatile const __u32 propagate = 0;

/* Syscall numbers differ per architecture; the loader fills them in. */
volatile const __s64 nr_read = -1, nr_write = -1, nr_readv = -1, nr_writev = -1;
volatile const __s64 nr_recvfrom = -1, nr_sendto = -1, nr_recvmsg = -1, nr_sendmsg = -1;
volatile const __s64 nr_sendfile = -1, nr_close = -1, nr_connect = -1;


/* Records are written without waking the reader, which polls, until this
 * many bytes wait in the ring: a wakeup per record would cost more than the
 * record. Set by the loader. */
volatile const __u64 wakeup_bytes = 1 << 16;

/* Ports whose connect() selects the calling process: port -> 1. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} connect_ports SEC(".maps");

/* Set by the loader when the kernel has task storage for tracing programs
 * (5.12): it also has BTF task pointers (5.11). */
volatile const __u32 modern = 0;

/* Arguments of the syscall a thread is in, from sys_enter to sys_exit, kept
 * in the thread's own storage: found without hashing or locking, and freed
 * with the thread, so nothing can leak. op 0: in no syscall of interest.
 * Older kernels use inflight_by_tid instead; the loader then makes this an
 * unused array. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct args);
} inflight SEC(".maps");

/* The same for kernels before 5.12, by thread id: LRU so that a thread that
 * dies inside a syscall cannot leak an entry. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct args);
} inflight_by_tid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} scratch SEC(".maps");

/* A plan is built here: too big for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct plan);
} scratch_plan SEC(".maps");

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

/* The size is set by the loader from the configuration. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 23);
} events SEC(".maps");

/* bound keeps a mask the compiler would drop because it "knows" the value is
 * in range; the verifier does not know it, and needs to see the mask. */
#define bound(x, mask) asm volatile("%0 &= " #mask : "+r"(x))

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &which);
	if (v)
		*v += 1;
}

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

/* fill_tuple puts the connection's identity in e; it returns false for a
 * socket that is not TCP/IP (a Unix stream socket). */
static __always_inline bool fill_tuple(struct event *e, struct sock *sk)
{
	e->sock = (__u64)sk;
	if (!tuple_block(e, sk))
		fill_tuple_fields(e, sk);
	return e->family == AF_INET || e->family == AF_INET6;
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
	e->tail_len = 0;
	e->flags = 0;
	e->sock = 0;
	e->family = 0;
	e->lport = 0;
	e->rport = 0;
	return e;
}

/* send writes e to the ring buffer; it reports whether that worked. */
static __always_inline bool send(struct event *e, __u32 lost_counter)
{
	__u64 size = __builtin_offsetof(struct event, data) + (e->cap_len & (CAPTURE_MAX * 2 - 1));
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

/* lost_data counts a lost read/write event, and the request it began if
 * any. Go servers may read a request's first byte alone: that byte, lost,
 * is not counted; the rest of the line is counted if it is lost too, and
 * parsed as a request (with a clipped method) if it is delivered. */
static __always_inline void lost_data(struct event *e, __s64 *lossy)
{
	if (request_start(e) == START_REQUEST)
		count(COUNTER_LOST_REQUESTS);
	__u8 one = 1;
	if (bpf_map_update_elem(&lossy_socks, &e->sock, &one, BPF_NOEXIST) == 0)
		__sync_fetch_and_add(lossy, 1);
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

static __always_inline void remember(__u64 pid_tgid, __u32 op, __u64 fd, __u64 buf, __u64 count_)
{
	if (!modern) {
		struct args a = {.buf = buf, .count = count_, .fd = fd, .op = op};
		if (bpf_map_update_elem(&inflight_by_tid, &pid_tgid, &a, BPF_ANY) != 0)
			count(COUNTER_LOST_ARGS);
		return;
	}
	struct args *a = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!a) {
		count(COUNTER_LOST_ARGS);
		return;
	}
	a->buf = buf;
	a->count = count_;
	a->fd = fd;
	a->op = op;
}

/* ---- Context propagation (only with propagate set) ---- */

/* A thread's served request gives its calls a parent for this long; after
 * that a call starts a trace of its own. */
#define SERVING_MAX_NS (5ULL * 1000 * 1000 * 1000)
#define DATA_MASK (CAPTURE_MAX * 2 - 1)

/* head_scan walks the head of an HTTP/1.x request in e->data, a byte per
 * bpf_loop step, so the verifier checks one step instead of 4096. */
struct head_scan {
	struct event *e;
	__u32 n;           /* bytes to look at */
	__u32 line;        /* where the current line starts */
	__u32 headers;     /* where the first header starts; 0: no request line */
	__u32 traceparent; /* where the traceparent line starts; 0: none */
	__u64 line_hash;   /* FNV-1a of the request line after the method */
	bool in_target;    /* the first line's first space was seen */
	bool ended;        /* the empty line that ends the head was seen */
	bool bad;          /* the first line is not a request line */
};

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static __always_inline __u8 at(struct event *e, __u32 i)
{
	return e->data[i & DATA_MASK];
}

/* request_line ends at the '\n' at i: "<TOKEN> <target> HTTP/1.x\r\n". The
 * first byte may be missing (Go servers may read it alone). */
static __always_inline bool request_line(struct event *e, __u32 i)
{
	if (i < 10 || at(e, i - 1) != '\r')
		return false;
	__u8 c = at(e, 0);
	if (c < 'A' || c > 'Z')
		return false;
	__u32 v = i - 10;
	if (at(e, v) != ' ' || at(e, v + 1) != 'H' || at(e, v + 2) != 'T' || at(e, v + 3) != 'T' ||
	    at(e, v + 4) != 'P' || at(e, v + 5) != '/' || at(e, v + 6) != '1' || at(e, v + 7) != '.')
		return false;
	c = at(e, i - 2);
	return c == '0' || c == '1';
}

static __always_inline bool traceparent_line(struct event *e, __u32 start)
{
	/* "traceparent:" in any case: | 0x20 lowers letters and keeps ':' */
	__u64 want = 0x7261706563617274ULL; /* "tracepar", little-endian */
	__u32 rest = 0x3a746e65;            /* "ent:" */
	__u64 got = 0;
	__u32 got_rest = 0;
	for (int k = 0; k < 8; k++)
		got |= (__u64)(at(e, start + k) | 0x20) << (8 * k);
	for (int k = 0; k < 4; k++)
		got_rest |= (__u32)(at(e, start + 8 + k) | 0x20) << (8 * k);
	return got == want && got_rest == rest;
}

/* scan_byte looks at byte i; it returns 1 when the scan is over. */
static __always_inline long scan_byte(struct head_scan *s, __u32 i)
{
	if (i >= s->n)
		return 1;
	struct event *e = s->e;
	__u8 c = at(e, i);
	if (s->headers == 0) { /* still in the request line */
		if (s->in_target)
			s->line_hash = (s->line_hash ^ c) * FNV_PRIME;
		else if (c == ' ')
			s->in_target = true;
	}
	if (c != '\n')
		return 0;
	__u32 start = s->line;
	s->line = i + 1;
	if (start == 0) {
		if (!request_line(e, i)) {
			s->bad = true;
			return 1;
		}
		s->headers = i + 1;
		return 0;
	}
	if (i - start <= 1) {
		s->ended = true;
		return 1;
	}
	if (i - start > 12 && traceparent_line(e, start)) {
		s->traceparent = start;
		return 1;
	}
	return 0;
}

/* A byte per bpf_loop step: more per step multiplies the states the
 * verifier must walk past its limit. */
static long scan_step(__u64 index, void *arg)
{
	return scan_byte(arg, index);
}

static __always_inline bool response_head(struct event *e)
{
	return e->cap_len >= 5 && at(e, 0) == 'H' && at(e, 1) == 'T' && at(e, 2) == 'T' && at(e, 3) == 'P' && at(e, 4) == '/';
}

/* may_be_request: e->data begins with a capital and is not a response. A
 * request line without its first byte still does (Go servers may read it
 * alone). */
static __always_inline bool may_be_request(struct event *e)
{
	__u8 c = at(e, 0);
	return e->cap_len >= 2 && c >= 'A' && c <= 'Z' && !response_head(e);
}

/* scan_head reports whether e->data begins with a request line; what
 * cannot be one is turned down before the scan. */
static __always_inline bool scan_head(struct event *e, struct head_scan *s)
{
	if (!may_be_request(e))
		return false;
	s->e = e;
	s->line_hash = FNV_OFFSET;
	s->n = e->cap_len < CAPTURE_MAX ? e->cap_len : CAPTURE_MAX;
	bpf_loop(CAPTURE_MAX, scan_step, s, 0);
	return !s->bad && s->headers != 0;
}

static __always_inline int hex_value(__u8 c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static __always_inline bool decode_hex(struct event *e, __u32 from, __u8 *dst, int n)
{
	for (int k = 0; k < n; k++) {
		int hi = hex_value(at(e, from + 2 * k)), lo = hex_value(at(e, from + 2 * k + 1));
		if (hi < 0 || lo < 0)
			return false;
		dst[k] = hi << 4 | lo;
	}
	return true;
}

static __always_inline bool all_zero(__u8 *b, int n)
{
	__u8 any = 0;
	for (int k = 0; k < n; k++)
		any |= b[k];
	return any == 0;
}

/* parse_traceparent reads "traceparent: 00-<trace>-<span>-<flags>" from the
 * line at start into c: trace id, the caller's span as parent, flags. */
static __always_inline bool parse_traceparent(struct event *e, __u32 start, struct trace_ctx *c)
{
	__u32 v = start + 12;
	for (int k = 0; k < 4 && at(e, v) == ' '; k++)
		v++;
	if (at(e, v) != '0' || at(e, v + 1) != '0' || at(e, v + 2) != '-' ||
	    at(e, v + 35) != '-' || at(e, v + 52) != '-' || at(e, v + 55) != '\r')
		return false;
	__u8 flags[1];
	if (!decode_hex(e, v + 3, c->trace_id, 16) || !decode_hex(e, v + 36, c->parent_id, 8) ||
	    !decode_hex(e, v + 53, flags, 1))
		return false;
	c->flags = flags[0];
	return !all_zero(c->trace_id, 16) && !all_zero(c->parent_id, 8);
}

static __always_inline void random_id(__u8 *b, int n)
{
	for (int k = 0; k < n; k += 4) {
		__u32 r = bpf_get_prandom_u32();
		__builtin_memcpy(&b[k], &r, 4);
	}
	b[0] |= 1; /* an all-zero id is invalid */
}

/* What a process serves: how many requests (read, not yet answered) and the
 * latest one's context. A call written by a thread that serves nothing
 * (Go writes requests from a goroutine of the HTTP client) belongs to the
 * process's request when it serves only one. */
struct process_serving {
	struct trace_ctx latest;
	__s64 open;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct process_serving);
} process_serving SEC(".maps");

/* Requests a process serves, by the hash of their request line from the
 * target on: a proxy forwards the line it read, and the call that writes
 * it again belongs to that request (Go may have read its first byte
 * alone, hence not the method). */
struct forward_key {
	__u32 tgid;
	__u32 pad;
	__u64 line_hash;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct forward_key);
	__type(value, struct trace_ctx);
} forwardable SEC(".maps");

/* The request a thread is serving, so the calls it makes while serving
 * join that trace: in the thread's task storage (5.12+), else by thread id
 * in an LRU hash. A zero ts marks none. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct trace_ctx);
} serving SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct trace_ctx);
} serving_by_tid SEC(".maps");

static __always_inline void serving_set(__u64 pid_tgid, struct trace_ctx *c)
{
	if (!modern) {
		bpf_map_update_elem(&serving_by_tid, &pid_tgid, c, BPF_ANY);
		return;
	}
	struct trace_ctx *t = bpf_task_storage_get(&serving, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (t)
		*t = *c;
}

static __always_inline struct trace_ctx *serving_get(__u64 pid_tgid)
{
	if (!modern)
		return bpf_map_lookup_elem(&serving_by_tid, &pid_tgid);
	struct trace_ctx *t = bpf_task_storage_get(&serving, bpf_get_current_task_btf(), 0, 0);
	return t && t->ts ? t : 0;
}

static __always_inline void serving_end(__u64 pid_tgid)
{
	if (!modern) {
		bpf_map_delete_elem(&serving_by_tid, &pid_tgid);
		return;
	}
	struct trace_ctx *t = bpf_task_storage_get(&serving, bpf_get_current_task_btf(), 0, 0);
	if (t)
		t->ts = 0;
}

/* serve_in_process counts a request the process began serving. A count
 * whose latest request is stale is restarted: requests that never got a
 * response (reset connections) must not disable the rule for good. */
static __always_inline void serve_in_process(__u32 tgid, struct trace_ctx *c)
{
	struct process_serving *ps = bpf_map_lookup_elem(&process_serving, &tgid);
	if (!ps) {
		struct process_serving fresh = {.latest = *c, .open = 1};
		bpf_map_update_elem(&process_serving, &tgid, &fresh, BPF_ANY);
		return;
	}
	if (c->ts - ps->latest.ts > SERVING_MAX_NS)
		ps->open = 0;
	ps->latest = *c;
	__sync_fetch_and_add(&ps->open, 1);
}

/* put_context hands a span's context to user space in the event. */
static __always_inline void put_context(struct event *e, struct trace_ctx *c, __u8 flag)
{
	__builtin_memcpy(e->trace_id, c->trace_id, 16);
	__builtin_memcpy(e->span_id, c->span_id, 8);
	__builtin_memcpy(e->parent_id, c->parent_id, 8);
	e->trace_flags = c->flags;
	e->flags |= flag;
}

/* serve_request gives the request a read began its server span's context,
 * remembers it as what the thread is serving, and puts it in the event. */
static __always_inline void serve_request(__u64 pid_tgid, struct event *e)
{
	struct head_scan s = {};
	if (!scan_head(e, &s))
		return;
	struct trace_ctx c = {};
	if (!s.traceparent || !parse_traceparent(e, s.traceparent, &c)) {
		__builtin_memset(&c, 0, sizeof(c));
		random_id(c.trace_id, 16);
		c.flags = 1;
	}
	random_id(c.span_id, 8);
	c.ts = bpf_ktime_get_ns();
	serving_set(pid_tgid, &c);
	serve_in_process(pid_tgid >> 32, &c);
	/* Any request may be forwarded: a proxy reads many before it writes
	 * its first, so waiting to learn it forwards would miss those. */
	struct forward_key fk = {.tgid = pid_tgid >> 32, .line_hash = s.line_hash};
	bpf_map_update_elem(&forwardable, &fk, &c, BPF_ANY);
	put_context(e, &c, EVENT_FLAG_CONTEXT);
}

static __always_inline char hex_digit(__u8 n)
{
	return n < 10 ? '0' + n : 'a' + n - 10;
}

static __always_inline void put_hex(char *dst, __u8 *src, int n)
{
	for (int k = 0; k < n; k++) {
		dst[2 * k] = hex_digit(src[k] >> 4);
		dst[2 * k + 1] = hex_digit(src[k] & 0xf);
	}
}

/* write_line formats the header line the plan will insert. */
static __always_inline void write_line(struct plan *p)
{
	__builtin_memcpy(p->line, "traceparent: 00-", 16);
	put_hex(&p->line[16], p->ctx.trace_id, 16);
	p->line[48] = '-';
	put_hex(&p->line[49], p->ctx.span_id, 8);
	p->line[65] = '-';
	put_hex(&p->line[66], &p->ctx.flags, 1);
	p->line[68] = '\r';
	p->line[69] = '\n';
}

/* A response written ends what the thread was serving, and one of the
 * process's requests. */
static __always_inline void end_serving(__u64 pid_tgid)
{
	serving_end(pid_tgid);
	__u32 tgid = pid_tgid >> 32;
	struct process_serving *ps = bpf_map_lookup_elem(&process_serving, &tgid);
	if (ps && ps->open > 0)
		__sync_fetch_and_add(&ps->open, -1);
}

/* served_by finds the request a call written by thread pid_tgid belongs
 * to: the one the process read with the same request line (a proxy
 * forwarding it), else the process's only one, else the one the thread
 * read last. The process rule goes before the thread's because a thread's
 * entry can be stale: Go may read a request on one thread and answer it
 * from another. A forwarded match is copied to *found and forgotten:
 * each request is forwarded once. */
static __always_inline bool served_by(__u64 pid_tgid, __u64 line_hash, __u64 now, struct trace_ctx *found)
{
	__u32 tgid = pid_tgid >> 32;
	struct forward_key fk = {.tgid = tgid, .line_hash = line_hash};
	struct trace_ctx *c = bpf_map_lookup_elem(&forwardable, &fk);
	if (c && now - c->ts < SERVING_MAX_NS) {
		*found = *c;
		bpf_map_delete_elem(&forwardable, &fk);
		return true;
	}
	struct process_serving *ps = bpf_map_lookup_elem(&process_serving, &tgid);
	if (ps && ps->open == 1 && now - ps->latest.ts < SERVING_MAX_NS) {
		*found = ps->latest;
		return true;
	}
	c = serving_get(pid_tgid);
	if (c && now - c->ts < SERVING_MAX_NS) {
		*found = *c;
		return true;
	}
	return false;
}

/* capture_out copies up to max bytes of what a write is about to send: buf
 * and count are a buffer and its length, or an iovec array and its count. */
static __always_inline void capture_out(struct event *e, __u32 op, __u64 buf, __u64 count_, __u32 max)
{
	e->cap_len = 0;
	if (op == OP_WRITE)
		capture_buf(e, buf, count_ < max ? count_ : max);
	else
		capture_iov(e, buf, count_, max);
}

/* plan_injection looks at what a write is about to send and, when it begins
 * a request without a traceparent, leaves the sk_msg program a plan: a new
 * client span in the trace of the request the thread serves, if any. */
static __always_inline void plan_injection(__u64 pid_tgid, __u32 op, __u64 buf, __u64 count_)
{
	__u32 zero = 0;
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return;
	e->tail_len = 0;
	if (op == OP_SENDMSG) {
		struct user_msghdr msg;
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)buf) != 0)
			return;
		buf = (__u64)msg.msg_iov;
		count_ = msg.msg_iovlen;
	}
	/* The first bytes tell a response or anything else from a request:
	 * only a request's head is copied whole. */
	capture_out(e, op, buf, count_, 8);
	if (response_head(e)) {
		/* At sys_enter, not exit: on loopback the peer may read the
		 * response and send its next request before this write returns. */
		end_serving(pid_tgid);
		return;
	}
	if (!may_be_request(e))
		return;
	capture_out(e, op, buf, count_, CAPTURE_MAX);
	struct head_scan s = {};
	if (!scan_head(e, &s))
		return;
	if (s.traceparent)
		return;
	struct plan *p = bpf_map_lookup_elem(&scratch_plan, &zero);
	if (!p)
		return;
	__builtin_memset(&p->ctx, 0, sizeof(p->ctx));
	p->state = s.ended ? PLAN_READY : PLAN_FAILED; /* the head goes on beyond what we saw */
	p->offset = s.headers;
	__u64 now = bpf_ktime_get_ns();
	struct trace_ctx parent;
	if (served_by(pid_tgid, s.line_hash, now, &parent)) {
		__builtin_memcpy(p->ctx.trace_id, parent.trace_id, 16);
		__builtin_memcpy(p->ctx.parent_id, parent.span_id, 8);
		p->ctx.flags = parent.flags;
	} else {
		random_id(p->ctx.trace_id, 16);
		p->ctx.flags = 1;
	}
	random_id(p->ctx.span_id, 8);
	p->ctx.ts = now;
	write_line(p);
	bpf_map_update_elem(&plans, &pid_tgid, p, BPF_ANY);
}

/* take_plan ends the plan of a write: the event says what became of it. */
static __always_inline void take_plan(__u64 pid_tgid, struct event *e)
{
	struct plan *p = bpf_map_lookup_elem(&plans, &pid_tgid);
	if (!p)
		return;
	if (p->state == PLAN_DONE)
		put_context(e, &p->ctx, EVENT_FLAG_INJECTED);
	else
		e->flags |= EVENT_FLAG_NOT_INJECTED;
	bpf_map_delete_elem(&plans, &pid_tgid);
}

/* on_connect selects a process that connects to a watched port, before its
 * first byte moves, so client spans of short-lived clients are not missed. */
static __always_inline void on_connect(struct pt_regs *regs, __u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;
	if (tgid == self_tgid || selected(tgid))
		return;
	struct {
		__u16 family;
		__be16 port;
	} sa = {};
	if (bpf_probe_read_user(&sa, sizeof(sa), (void *)SYSCALL_ARG2(regs)) != 0)
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

static __always_inline void on_close(__u64 pid_tgid, __u32 fd)
{
	struct sock *sk = fd_socket(fd);
	if (!sk)
		return;
	struct event *e = new_event(EVENT_CLOSE, pid_tgid, fd);
	if (e && fill_tuple(e, sk))
		send(e, COUNTER_LOST_CONTROL);
}

SEC("raw_tracepoint/sys_enter")
int on_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	__s64 nr = (__s64)ctx->args[1];
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (nr == nr_connect) {
		on_connect(regs, pid_tgid);
		return 0;
	}
	/* Nearly every syscall is an unselected process's: one bit test. */
	if (!selected(pid_tgid >> 32))
		return 0;
	__u32 op;
	if (nr == nr_read || nr == nr_recvfrom)
		op = OP_READ;
	else if (nr == nr_write || nr == nr_sendto)
		op = OP_WRITE;
	else if (nr == nr_readv)
		op = OP_READV;
	else if (nr == nr_writev)
		op = OP_WRITEV;
	else if (nr == nr_recvmsg)
		op = OP_RECVMSG;
	else if (nr == nr_sendmsg)
		op = OP_SENDMSG;
	else if (nr == nr_sendfile)
		op = OP_SENDFILE;
	else if (nr == nr_close) {
		on_close(pid_tgid, SYSCALL_ARG1(regs));
		return 0;
	} else
		return 0;

	if (op == OP_SENDFILE) { /* (out_fd, in_fd, offset, count): only out_fd matters */
		remember(pid_tgid, op, SYSCALL_ARG1(regs), 0, 0);
		return 0;
	}
	__u64 buf = SYSCALL_ARG2(regs), count_ = SYSCALL_ARG3(regs);
	remember(pid_tgid, op, SYSCALL_ARG1(regs), buf, count_);
	if (propagate && (op == OP_WRITE || op == OP_WRITEV || op == OP_SENDMSG))
		plan_injection(pid_tgid, op, buf, count_);
	return 0;
}

/* take_args moves the arguments sys_enter remembered into *in. */
static __always_inline bool take_args(__u64 pid_tgid, struct args *in)
{
	struct args *a;
	if (!modern) {
		a = bpf_map_lookup_elem(&inflight_by_tid, &pid_tgid);
		if (!a)
			return false;
		*in = *a;
		bpf_map_delete_elem(&inflight_by_tid, &pid_tgid);
		return true;
	}
	a = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0);
	if (!a || !a->op)
		return false;
	*in = *a;
	a->op = 0;
	return true;
}

SEC("raw_tracepoint/sys_exit")
int on_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!selected(pid_tgid >> 32))
		return 0;
	struct args in;
	if (!take_args(pid_tgid, &in))
		return 0;

	bool reading = in.op == OP_READ || in.op == OP_READV || in.op == OP_RECVMSG;
	__s64 ret = (__s64)ctx->args[1];
	struct sock *sk = ret > 0 ? fd_socket(in.fd) : 0;
	struct event *e = sk ? new_event(reading ? EVENT_READ : EVENT_WRITE, pid_tgid, in.fd) : 0;
	if (!e || !fill_tuple(e, sk)) {
		if (propagate && !reading) /* no event will say what became of it */
			bpf_map_delete_elem(&plans, &pid_tgid);
		return 0;
	}
	__u32 len = ret > 0xffffffff ? 0xffffffff : (__u32)ret;
	e->len = len;

	switch (in.op) {
	case OP_READ:
	case OP_WRITE:
		capture_buf(e, in.buf, len);
		break;
	case OP_READV:
	case OP_WRITEV:
		capture_iov(e, in.buf, in.count, len);
		break;
	case OP_RECVMSG:
	case OP_SENDMSG: {
		struct user_msghdr msg;
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)in.buf) == 0)
			capture_iov(e, (__u64)msg.msg_iov, msg.msg_iovlen, len);
		break;
	}
	default: /* sendfile: the bytes come from a file; only their count matters */
		break;
	}
	if (propagate) {
		if (reading) {
			serve_request(pid_tgid, e);
		} else {
			take_plan(pid_tgid, e);
		}
	}
	send_data(e);
	return 0;
}

SEC("raw_tracepoint/sched_process_exit")
int on_process_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (propagate && !modern) /* any thread: what it served goes with it */
		bpf_map_delete_elem(&serving_by_tid, &pid_tgid);
	/* Only the thread group leader's exit ends the process for us. */
	if ((__u32)pid_tgid != tgid || !selected(tgid))
		return 0;
	set_selected(tgid, false);
	if (propagate)
		bpf_map_delete_elem(&process_serving, &tgid);
	struct event *e = new_event(EVENT_EXIT, pid_tgid, 0);
	if (e)
		send(e, COUNTER_LOST_CONTROL);
	return 0;
}
