//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/* TLS plaintext, taken where the TLS library hands it over: uprobes on
 * OpenSSL's (and BoringSSL's) SSL_read, SSL_read_ex, SSL_write,
 * SSL_write_ex, and on Go's crypto/tls (*Conn).Read and (*Conn).Write.
 * The events are the tracer's read and write events with EVENT_FLAG_TLS,
 * on the ring buffer the tracer writes to, with the socket the connection
 * travels on, so user space parses them as that connection's bytes.
 *
 * OpenSSL: an entry probe keeps the call's arguments per thread, a return
 * probe sends what moved. The SSL object's socket is learned from the
 * syscalls the thread makes inside its calls (headers/tls.h); SSL_free
 * forgets it.
 *
 * Go: no return probes (Go moves goroutine stacks, which the kernel's
 * return trampoline does not survive). Write's entry probe sends what it
 * is given: Go's Write writes it all or fails the connection. Read's entry
 * probe keeps the arguments per goroutine (its g, in R14 on amd64, X28 on
 * arm64), and probes on each of its RET instructions send what it read.
 * The socket is read
 * from the tls.Conn at entry: its conn field (an interface) holds a
 * *net.TCPConn, whose netFD's poll.FD holds the descriptor; user space
 * gives the offsets (from DWARF or the Go version) and the address of
 * the *net.TCPConn itab, which tells that the interface holds a TCP
 * connection and nothing else.
 *
 * Every probe counts its hits: a uprobe costs microseconds, and the count
 * per request is what a user weighs. */
#include "headers/kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "headers/selection.h"
#include "headers/events.h"
#include "headers/threads.h"
#include "headers/sockets.h"
#include "headers/capture.h"
#include "headers/frames.h"
#include "headers/propagation.h"
#include "headers/request_head.h"
#include "headers/serving.h"
#include "headers/connections.h"
#include "headers/planning.h"
#include "headers/tls.h"

char __license[] SEC("license") = "GPL";

/* The registers of the user program at a uprobe, as the kernel saves them
 * on entry: the layouts are the architectures' user ABI (ptrace), not
 * kernel internals, and the probes read them from their context. */
#if defined(__TARGET_ARCH_x86)
struct uregs {
	__u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};
/* C (System V): arguments in rdi, rsi, rdx, rcx; result in rax. */
#define C_ARG1(r) ((r)->di)
#define C_ARG2(r) ((r)->si)
#define C_ARG3(r) ((r)->dx)
#define C_ARG4(r) ((r)->cx)
#define C_RET(r) ((r)->ax)
/* Go's register ABI: arguments and results in rax, rbx, rcx, ...; g in r14. */
#define GO_ARG1(r) ((r)->ax)
#define GO_ARG2(r) ((r)->bx)
#define GO_ARG3(r) ((r)->cx)
#define GO_RET1(r) ((r)->ax)
#define GO_G(r) ((r)->r14)
#define REGS_IP(r) ((r)->ip)
#elif defined(__TARGET_ARCH_arm64)
struct uregs {
	__u64 regs[31];
	__u64 sp, pc, pstate;
};
#define C_ARG1(r) ((r)->regs[0])
#define C_ARG2(r) ((r)->regs[1])
#define C_ARG3(r) ((r)->regs[2])
#define C_ARG4(r) ((r)->regs[3])
#define C_RET(r) ((r)->regs[0])
#define GO_ARG1(r) ((r)->regs[0])
#define GO_ARG2(r) ((r)->regs[1])
#define GO_ARG3(r) ((r)->regs[2])
#define GO_RET1(r) ((r)->regs[0])
#define GO_G(r) ((r)->regs[28])
#define REGS_IP(r) ((r)->pc)
#endif

/* What an OpenSSL probe is on: its attach cookie. */
enum ssl_fn {
	SSL_FN_READ = 1,   /* int SSL_read(SSL *, void *buf, int num) */
	SSL_FN_READ_EX,    /* int SSL_read_ex(SSL *, void *buf, size_t num, size_t *readbytes) */
	SSL_FN_WRITE,      /* int SSL_write(SSL *, const void *buf, int num) */
	SSL_FN_WRITE_EX,   /* int SSL_write_ex(SSL *, const void *buf, size_t num, size_t *written) */
	SSL_FN_HANDSHAKE,  /* int SSL_do_handshake(SSL *): its I/O ties the SSL object */
	SSL_FN_FREE,       /* void SSL_free(SSL *): entry only */
};

/* What a Go probe is on: bits 0-7 of its attach cookie. Bits 8-23 index
 * go_binaries; bits 24-63 are the probed instruction's address in the
 * binary (its link-time address), which with the address it runs at gives
 * the binary's load bias (position-independent executables). */
enum go_fn {
	GO_FN_READ = 1,  /* func (c *Conn) Read(b []byte) (int, error) */
	GO_FN_WRITE = 2, /* func (c *Conn) Write(b []byte) (int, error) */
};

enum tls_counter {
	TLS_HITS_SSL_ENTRY = 0, /* OpenSSL entry probes run (any process mapping a probed library) */
	TLS_HITS_SSL_RETURN,    /* OpenSSL return probes run */
	TLS_HITS_GO_ENTRY,      /* Go entry probes run */
	TLS_HITS_GO_RETURN,     /* Go RET probes run */
	TLS_SENT_OPENSSL,       /* plaintext events of OpenSSL calls handed to the ring buffer */
	TLS_SENT_GO,            /* plaintext events of Go calls handed to the ring buffer */
	TLS_UNTIED,             /* OpenSSL calls that moved plaintext on an SSL object of unknown socket */
	TLS_NOT_TCP,            /* Go calls on a tls.Conn over something else than a TCP connection */
	TLS_NO_ROOM,            /* calls not followed: no room to keep their arguments */
	TLS_COUNTER_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TLS_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tls_counters SEC(".maps");

/* Anchors that make bpf2go emit the enums' Go constants. */
const enum tls_counter *unused_tls_counter __attribute__((unused));
const enum ssl_fn *unused_ssl_fn __attribute__((unused));
const enum go_fn *unused_go_fn __attribute__((unused));

static __always_inline void tls_count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&tls_counters, &which);
	if (v)
		*v += 1;
}

/* What user space found in a Go binary: go_binaries[index in the cookie]. */
struct go_binary {
	__u64 itab;    /* link-time address of the *net.TCPConn,net.Conn itab; 0: not known (stripped) */
	__u32 conn;    /* offset of tls.Conn.conn, an interface (itab, data) */
	__u32 tcp_fd;  /* offset of the *netFD in net.TCPConn */
	__u32 sysfd;   /* offset of pfd.Sysfd in net.netFD */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct go_binary);
} go_binaries SEC(".maps");

struct go_key {
	__u64 g;
	__u32 tgid;
	__u32 fn;
};

struct go_call {
	__u64 buf;
	__u64 sock;
	__u64 len;
	__u32 fd;
	__u32 pad;
};

/* Calls of goroutines between their entry and their RET: a server's idle
 * keep-alive connections each have a Read waiting here. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct go_key);
	__type(value, struct go_call);
} go_calls SEC(".maps");

/* send_plaintext sends the n bytes at buf that a TLS library call moved
 * on the socket sock. planned: a write's context, chosen before its
 * records went out (0: choose it now, before they do). */
static __always_inline bool send_plaintext(__u64 pid_tgid, __u64 sock, __u32 fd, bool reading, __u64 buf, __u32 n,
					   struct trace_ctx *planned)
{
	struct event *e = new_event(reading ? EVENT_READ : EVENT_WRITE, pid_tgid, fd);
	if (!e || !fill_tuple(e, (struct sock *)sock))
		return false;
	e->flags |= EVENT_FLAG_TLS;
	e->len = n;
	struct moved m = {.base = buf, .len = n};
	capture(e, &m, CAPTURE_MAX);
	/* A connection's preface starts its HTTP/2 frames afresh: the walk of
	 * an earlier connection of the same sock address, whose close these
	 * probes do not see, must not be continued. */
	if (n >= PREFACE_LEN && is_preface(e))
		forget_frames(sock);
	walk_frames(e, &m, reading);
	struct trace_ctx c;
	if (reading)
		tcp_served_tls(e, sock);
	else if (planned && planned->ts)
		put_context(e, planned, EVENT_FLAG_INJECTED | EVENT_FLAG_TCP_OPTION);
	else if (!planned && tcp_plan_tls(pid_tgid, sock, fd, e, &c))
		put_context(e, &c, EVENT_FLAG_INJECTED | EVENT_FLAG_TCP_OPTION);
	send_data(e);
	return true;
}

/* plan_ssl_write chooses, at SSL_write's entry (before its records go
 * out), the context of the request its n bytes at buf begin, if any, on
 * SSL object ssl of thread t. */
static __always_inline void plan_ssl_write(__u64 pid_tgid, struct ssl_thread *t, __u64 ssl, __u64 buf, __u64 n)
{
	t->planned.ts = 0;
	if (!propagate_tcp || (__s64)n <= 0)
		return;
	__u64 sock = ssl_socket(pid_tgid >> 32, ssl);
	struct event *e = sock ? new_event(EVENT_WRITE, pid_tgid, 0) : 0;
	if (!e)
		return;
	struct moved m = {.base = buf, .len = n > 0x7fffffff ? 0x7fffffff : n};
	capture(e, &m, CAPTURE_MAX);
	tcp_plan_tls(pid_tgid, sock, 0, e, &t->planned);
}

/* ---- OpenSSL ---- */

/* tls_missed counts a call that is not followed for want of room, and
 * marks its socket (0: not known) as after a loss: the plaintext it moves
 * is not reported, and what comes after must not be read as if it were. */
static __always_inline void tls_missed(__u64 sock)
{
	tls_count(TLS_NO_ROOM);
	__u32 zero = 0;
	__s64 *lossy = bpf_map_lookup_elem(&lossy_count, &zero);
	if (sock && lossy)
		mark_lossy(sock, lossy);
}

static __always_inline struct ssl_thread *ssl_thread(__u64 pid_tgid)
{
	struct ssl_thread *t = bpf_map_lookup_elem(&ssl_threads, &pid_tgid);
	if (t)
		return t;
	struct ssl_thread blank = {};
	bpf_map_update_elem(&ssl_threads, &pid_tgid, &blank, BPF_NOEXIST);
	return bpf_map_lookup_elem(&ssl_threads, &pid_tgid);
}

static __always_inline void forget_ssl(__u32 tgid, __u64 ssl)
{
	struct ssl_key k = {.ssl = ssl, .tgid = tgid};
	struct ssl_sock *v = bpf_map_lookup_elem(&ssl_socks, &k);
	if (!v)
		return;
	forget_frames(v->sock);
	bpf_map_delete_elem(&ssl_socks, &k);
}

SEC("uprobe")
int ssl_enter(struct pt_regs *ctx)
{
	struct uregs *r = (struct uregs *)ctx;
	tls_count(TLS_HITS_SSL_ENTRY);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!selected(pid_tgid >> 32))
		return 0;
	__u8 fn = bpf_get_attach_cookie(ctx);
	__u64 ssl = C_ARG1(r);
	if (fn == SSL_FN_FREE) {
		forget_ssl(pid_tgid >> 32, ssl);
		return 0;
	}
	struct ssl_thread *t = ssl_thread(pid_tgid);
	if (!t) {
		tls_missed(ssl_socket(pid_tgid >> 32, ssl));
		return 0;
	}
	t->ssl = ssl;
	t->fn = fn;
	t->buf = C_ARG2(r);
	t->count_at = C_ARG4(r);
	t->inside = 0;
	t->tie_to = t->last_read && bpf_ktime_get_ns() - t->read_at < READ_TIE_NS ? t->last_read : 0;
	if (fn == SSL_FN_WRITE || fn == SSL_FN_WRITE_EX)
		plan_ssl_write(pid_tgid, t, ssl, t->buf, C_ARG3(r));
	return 0;
}

/* ssl_moved is how many bytes the call that returned ret moved. */
static __always_inline __u32 ssl_moved(__u8 fn, __u64 ret, __u64 count_at)
{
	__u64 n = 0;
	switch (fn) {
	case SSL_FN_READ:
	case SSL_FN_WRITE:
		return (__s32)ret > 0 ? (__u32)ret : 0;
	case SSL_FN_READ_EX:
	case SSL_FN_WRITE_EX:
		if ((__s32)ret != 1 || bpf_probe_read_user(&n, sizeof(n), (void *)count_at) != 0)
			return 0;
		return n > 0x7fffffff ? 0x7fffffff : n;
	}
	return 0;
}

SEC("uretprobe")
int ssl_return(struct pt_regs *ctx)
{
	struct uregs *r = (struct uregs *)ctx;
	tls_count(TLS_HITS_SSL_RETURN);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (!selected(tgid))
		return 0;
	struct ssl_thread *t = bpf_map_lookup_elem(&ssl_threads, &pid_tgid);
	__u8 fn = bpf_get_attach_cookie(ctx);
	if (!t || !t->ssl)
		return 0;
	__u64 ssl = t->ssl;
	t->ssl = 0;
	/* Another function's call in the thread's record: a call nested in
	 * this one took its place, and this one is lost, never misread. */
	if (t->fn != fn)
		return 0;
	__u32 n = ssl_moved(fn, C_RET(r), t->count_at);
	if (n == 0)
		return 0;
	bool reading = fn == SSL_FN_READ || fn == SSL_FN_READ_EX;
	__u64 sock = ssl_socket(tgid, ssl);
	if (!sock && !t->inside) {
		/* Memory BIO: the ciphertext moved outside the call. */
		if (reading && t->tie_to) {
			tie_ssl(tgid, ssl, t->tie_to, SSL_BOUND_AFTER);
			sock = t->tie_to;
			if (t->last_read == sock)
				t->last_read = 0; /* one read ties one SSL object at most */
		} else if (!reading) {
			t->pending = ssl;
		}
	}
	if (!sock) {
		tls_count(TLS_UNTIED);
		return 0;
	}
	if (send_plaintext(pid_tgid, sock, 0, reading, t->buf, n, &t->planned))
		tls_count(TLS_SENT_OPENSSL);
	return 0;
}

/* ---- Go crypto/tls ---- */

/* go_socket is the TCP socket under the tls.Conn c, or 0. */
static __always_inline __u64 go_socket(struct go_binary *b, __u64 c, __u64 bias, __u32 *fd)
{
	__u64 iface[2];
	if (bpf_probe_read_user(iface, sizeof(iface), (void *)(c + b->conn)) != 0)
		return 0;
	if (b->itab && iface[0] != b->itab + bias) {
		tls_count(TLS_NOT_TCP);
		return 0;
	}
	__u64 netfd = 0;
	__s64 sysfd = -1;
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)(iface[1] + b->tcp_fd)) != 0 ||
	    bpf_probe_read_user(&sysfd, sizeof(sysfd), (void *)(netfd + b->sysfd)) != 0)
		return 0;
	if (sysfd < 0 || sysfd > 0x7fffffff)
		return 0;
	*fd = sysfd;
	return (__u64)fd_socket(sysfd);
}

SEC("uprobe")
int go_tls_enter(struct pt_regs *ctx)
{
	struct uregs *r = (struct uregs *)ctx;
	tls_count(TLS_HITS_GO_ENTRY);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (!selected(tgid))
		return 0;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 index = (cookie >> 8) & 0xffff;
	struct go_binary *b = bpf_map_lookup_elem(&go_binaries, &index);
	if (!b)
		return 0;
	__u32 fd = 0;
	__u64 sock = go_socket(b, GO_ARG1(r), REGS_IP(r) - (cookie >> 24), &fd);
	if (!sock)
		return 0;
	__u8 fn = cookie & 0xff;
	__u64 len = GO_ARG3(r);
	if (fn == GO_FN_WRITE) {
		/* Sent now: Write writes all of b or fails the connection, and a
		 * request reported at the RET could come after its response, read
		 * meanwhile by another goroutine. */
		if (len > 0 && send_plaintext(pid_tgid, sock, fd, false, GO_ARG2(r), len > 0x7fffffff ? 0x7fffffff : len, 0))
			tls_count(TLS_SENT_GO);
		return 0;
	}
	struct go_key k = {.g = GO_G(r), .tgid = tgid, .fn = fn};
	struct go_call c = {.buf = GO_ARG2(r), .len = len, .sock = sock, .fd = fd};
	if (bpf_map_update_elem(&go_calls, &k, &c, BPF_ANY) != 0)
		tls_missed(sock);
	return 0;
}

SEC("uprobe")
int go_tls_return(struct pt_regs *ctx)
{
	struct uregs *r = (struct uregs *)ctx;
	tls_count(TLS_HITS_GO_RETURN);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (!selected(tgid))
		return 0;
	__u8 fn = bpf_get_attach_cookie(ctx);
	struct go_key k = {.g = GO_G(r), .tgid = tgid, .fn = fn};
	struct go_call *found = bpf_map_lookup_elem(&go_calls, &k);
	if (!found)
		return 0;
	struct go_call c = *found;
	bpf_map_delete_elem(&go_calls, &k);
	__s64 n = GO_RET1(r);
	if (n <= 0)
		return 0;
	if (n > c.len)
		n = c.len;
	if (n > 0x7fffffff)
		n = 0x7fffffff;
	if (send_plaintext(pid_tgid, c.sock, c.fd, fn == GO_FN_READ, c.buf, n, 0))
		tls_count(TLS_SENT_GO);
	return 0;
}
