/* Which socket a TLS library's connection object (OpenSSL's SSL) travels
 * on. The TLS probes (tls.bpf.c) see the library's calls and their
 * plaintext but no socket; the tracer sees the syscalls and their sockets
 * but only ciphertext. This header is the meeting point: the tracer
 * includes it, so the maps are the tracer's, and the TLS object uses them
 * through MapReplacements (bpf/tls.go).
 *
 * A thread inside SSL_read, SSL_write or SSL_do_handshake has its SSL
 * object in ssl_threads. A syscall of that thread that moves a TLS record
 * (a five-byte record header first) over a socket ties the SSL object to
 * that socket: libraries whose BIO is a socket (nginx, curl, Python,
 * libpq, Ruby) do their I/O inside the call, and nothing of the library's
 * structs is read, so any version of OpenSSL (1.1, 3.x) and BoringSSL do.
 * Its bytes are then not sent as a data event: the plaintext is.
 *
 * Libraries that feed OpenSSL through memory BIOs (Node.js) do the socket
 * I/O outside the calls: Node reads ciphertext from the socket and, in the
 * same callback, calls SSL_read until it has no more; it calls SSL_write
 * and then writes the records out at once. So an SSL object that was never
 * tied is tied to the socket of the thread's latest socket read, when
 * SSL_read returns plaintext, provided that read began with a TLS record
 * header (or went on with what the thread's previous read of that socket
 * began), came less than READ_TIE_NS before the call, and tied no other
 * SSL object (SSL_BOUND_AFTER); or to the socket of the thread's next write after
 * SSL_write, provided it begins with an application data record. A later
 * syscall inside a call overrides such a tie. */
#ifndef TRACER_TLS_H
#define TRACER_TLS_H

/* How an SSL object's socket was learned. */
enum ssl_bound {
	SSL_BOUND_INSIDE = 1, /* a TLS record moved over it inside a call on the SSL object */
	SSL_BOUND_AFTER = 2,  /* memory BIO: the socket read before SSL_read returned plaintext, or written after SSL_write */
};

/* A thread's state in the TLS library; made at its first call. */
struct ssl_thread {
	__u64 ssl;       /* the SSL object of the call the thread is in; 0 in none */
	__u64 buf;       /* the call's buffer */
	__u64 count_at;  /* SSL_read_ex, SSL_write_ex: where the byte count goes */
	__u64 last_read; /* sock of the thread's latest socket read if it carried TLS records, else 0 */
	__u64 read_at;   /* when (bpf_ktime_get_ns) */
	__u64 tie_to;    /* last_read when the call began, if recent enough to tie its SSL object */
	__u64 pending;   /* an SSL object SSL_write left untied: the thread's next write ties it */
	__u8 fn;         /* what the call is (enum ssl_fn of tls.bpf.c) */
	__u8 inside;     /* a socket syscall moved bytes during the call */
	__u8 pad[6];
	struct trace_ctx planned; /* context_propagation: tcp: the context SSL_write's request goes with (ts 0: none) */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct ssl_thread);
} ssl_threads SEC(".maps");

struct ssl_key {
	__u64 ssl; /* the SSL object's address */
	__u32 tgid;
	__u32 pad;
};

struct ssl_sock {
	__u64 sock; /* struct sock address */
	__u8 how;   /* enum ssl_bound */
	__u8 pad[7];
};

/* SSL objects tied to their socket; SSL_free unties them. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ssl_key);
	__type(value, struct ssl_sock);
} ssl_socks SEC(".maps");

/* [0]: libraries probed for SSL calls, set by user space: while zero,
 * which is the case without TLS libraries, syscalls skip all of this. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tls_active SEC(".maps");

#define TLS_RECORD_HEADER 5
#define TLS_RECORD_MAX (16384 + 2048)
#define TLS_APPLICATION_DATA 23
/* How recent, when SSL_read is called, the read that ties an SSL object
 * of a memory BIO must be: Node.js calls SSL_read in the very callback of
 * the read, and the rest is the scheduler's doing. */
#define READ_TIE_NS (100 * 1000 * 1000)

/* tls_record_type is the content type of the TLS record header at the
 * start of hdr (change_cipher_spec 20, alert 21, handshake 22,
 * application_data 23), or 0 when the bytes are no such header. */
static __always_inline __u8 tls_record_type(const __u8 *hdr)
{
	__u16 len = (__u16)hdr[3] << 8 | hdr[4];
	if (hdr[0] < 20 || hdr[0] > 23 || hdr[1] != 3 || hdr[2] > 4 || len == 0 || len > TLS_RECORD_MAX)
		return 0;
	return hdr[0];
}

static __always_inline void tie_ssl(__u32 tgid, __u64 ssl, __u64 sock, __u8 how)
{
	struct ssl_key k = {.ssl = ssl, .tgid = tgid};
	struct ssl_sock v = {.sock = sock, .how = how};
	bpf_map_update_elem(&ssl_socks, &k, &v, how == SSL_BOUND_INSIDE ? BPF_ANY : BPF_NOEXIST);
}

static __always_inline __u64 ssl_socket(__u32 tgid, __u64 ssl)
{
	struct ssl_key k = {.ssl = ssl, .tgid = tgid};
	struct ssl_sock *v = bpf_map_lookup_elem(&ssl_socks, &k);
	return v ? v->sock : 0;
}

/* tls_ciphertext is called by the tracer for every read or write of a
 * selected process on a TCP socket (sock), whose bytes m moved. It ties
 * SSL objects to sockets as above, and reports whether the bytes are the
 * TLS records of a call on an SSL object tied to this very socket: their
 * plaintext is reported by the TLS probes, and they need not be sent. */
static __always_inline bool tls_ciphertext(__u64 pid_tgid, __u64 sock, struct moved *m, bool reading)
{
	__u32 zero = 0;
	__u64 *active = bpf_map_lookup_elem(&tls_active, &zero);
	if (!active || !*active)
		return false;
	struct ssl_thread *t = bpf_map_lookup_elem(&ssl_threads, &pid_tgid);
	if (!t)
		return false;
	__u8 hdr[16] = {};
	__u8 type = 0;
	if (m->len >= TLS_RECORD_HEADER && read_small(m, hdr, 0, TLS_RECORD_HEADER))
		type = tls_record_type(hdr);
	__u32 tgid = pid_tgid >> 32;
	if (t->ssl) {
		t->inside = 1;
		if (type)
			tie_ssl(tgid, t->ssl, sock, SSL_BOUND_INSIDE);
		return ssl_socket(tgid, t->ssl) == sock;
	}
	if (reading) {
		/* A record begins, or the one the thread's previous read of this
		 * socket began goes on: Node reads into the room its BIO has
		 * left, which may end inside a record. */
		t->last_read = type || sock == t->last_read ? sock : 0;
		t->read_at = bpf_ktime_get_ns();
		return false;
	}
	if (t->pending) {
		if (type == TLS_APPLICATION_DATA)
			tie_ssl(tgid, t->pending, sock, SSL_BOUND_AFTER);
		t->pending = 0;
	}
	return false;
}

#endif
