//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/* The few probes that tell which task of a runtime a syscall runs for
 * where the syscall alone cannot (headers/tasks.h says what the syscalls
 * tell by themselves):
 *
 *   - Go's net/http Transport writes a request from its connection's
 *     writeLoop goroutine, not the goroutine that asked for it:
 *     go_write_loop, at (*persistConn).writeLoop's entry (once per
 *     connection), names the connection the writer goroutine writes for;
 *     go_round_trip, at (*persistConn).roundTrip's entry (once per
 *     request), the goroutine that asks. One probe hit per request.
 *   - Node.js runs a connection's requests in the async context of the
 *     connection's HTTP parser, made when the connection is accepted:
 *     node_parser_init, at llhttp_init (once per connection), reports the
 *     context just given to the parser, which is the async id counter,
 *     in an EVENT_NODE_PARSER event; user space ties it to the connection
 *     the thread accepted last. node_socket, at TCPWrap::New (once per
 *     connection), tells which context made a socket: a connection opened
 *     by a handler carries that handler's request first. llhttp_init also
 *     runs for the parser of each response a client reads: one probe hit
 *     per call (not kept).
 *   - grpc-go writes a call's frames from the transport's writer
 *     goroutine, several streams' at once: go_grpc_write, where the
 *     calling goroutine hands a message of its stream over (once per
 *     unary call), tells user space which goroutine each stream of a
 *     transport is for; go_grpc_reader, at the transport's reader
 *     goroutine's start (once per connection), makes that goroutine's
 *     reads name the transport, which ties it to its connection.
 *   - A Go HTTP/2 server (grpc-go, net/http, x/net) reads a stream's
 *     request on its connection's reader goroutine and serves it on
 *     another: go_grpc_serve, at grpc-go's handleStream, and go_h2_serve,
 *     at the HTTP/2 servers' runHandler (once per stream each), tell user
 *     space which goroutine serves which stream of which socket.
 *   - node_hooks, at AsyncHooks::push_async_context, is attached to one
 *     process until its first hit: it tells user space where the
 *     process's AsyncHooks are, which holds async_id_fields.
 *
 * They share the tracer's maps (bpf/tasks.go). Every probe counts its
 * hits: a uprobe costs microseconds, and the count per request is what a
 * user weighs. */
#include "headers/kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "headers/selection.h"
#include "headers/events.h"
#include "headers/threads.h"
#include "headers/sockets.h"

char __license[] SEC("license") = "GPL";

/* The user registers at a uprobe, as the kernel saves them on entry (the
 * architectures' user ABI, not a kernel struct). */
#if defined(__TARGET_ARCH_x86)
struct task_uregs {
	__u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};
#define TASK_C_ARG1(r) ((r)->di)
#define TASK_C_ARG2(r) ((r)->si)
#define TASK_GO_ARG1(r) ((r)->ax)
#define TASK_GO_ARG2(r) ((r)->bx)
#define TASK_GO_ARG3(r) ((r)->cx)
#define TASK_GO_ARG4(r) ((r)->di)
#define TASK_GO_REG_G(r) ((r)->r14)
#define TASK_REGS_IP(r) ((r)->ip)
#elif defined(__TARGET_ARCH_arm64)
struct task_uregs {
	__u64 regs[31];
	__u64 sp, pc, pstate;
};
#define TASK_C_ARG1(r) ((r)->regs[0])
#define TASK_C_ARG2(r) ((r)->regs[1])
#define TASK_GO_ARG1(r) ((r)->regs[0])
#define TASK_GO_ARG2(r) ((r)->regs[1])
#define TASK_GO_ARG3(r) ((r)->regs[2])
#define TASK_GO_ARG4(r) ((r)->regs[3])
#define TASK_GO_REG_G(r) ((r)->regs[28])
#define TASK_REGS_IP(r) ((r)->pc)
#endif

enum task_counter {
	TASK_HITS_ROUND_TRIP = 0, /* go_round_trip ran (any process running a probed Go binary) */
	TASK_HITS_WRITE_LOOP,     /* go_write_loop ran */
	TASK_HITS_GRPC_WRITE,     /* go_grpc_write ran */
	TASK_HITS_GRPC_READER,    /* go_grpc_reader ran */
	TASK_HITS_NODE_PARSER,    /* node_parser_init ran */
	TASK_HITS_NODE_SOCKET,    /* node_socket ran */
	TASK_HITS_NODE_HOOKS,     /* node_hooks ran */
	TASK_NO_ROOM,             /* a hand-off not kept: its map had no room */
	TASK_HITS_GRPC_SERVE,     /* go_grpc_serve ran */
	TASK_HITS_H2_SERVE,       /* go_h2_serve ran */
	TASK_SERVE_UNTOLD,        /* a stream's handler whose connection was none the probe follows */
	TASK_COUNTER_MAX,
};



struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TASK_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} task_counters SEC(".maps");

/* What user space found in a Go binary that uses net/http's client:
 * go_http_binaries[index in go_round_trip's cookie]. */
struct go_http_binary {
	__u64 itab;   /* link-time address of the *net.TCPConn,net.Conn itab; 0: not known (stripped) */
	__u32 conn;   /* offset of persistConn.conn, an interface (itab, data); 0: not known */
	__u32 tcp_fd; /* offset of the *netFD in net.TCPConn */
	__u32 sysfd;  /* offset of pfd.Sysfd in net.netFD */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct go_http_binary);
} go_http_binaries SEC(".maps");

/* Where node_hooks found each process's AsyncHooks: tgid -> its address. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} node_hooks_found SEC(".maps");

const enum task_counter *unused_task_counter __attribute__((unused));

static __always_inline void task_count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&task_counters, &which);
	if (v)
		*v += 1;
}

/* go_task is the goroutine id at a probe of a selected Go process. */
static __always_inline __u64 go_task(struct task_uregs *r, __u32 tgid)
{
	struct task_proc *p = bpf_map_lookup_elem(&task_procs, &tgid);
	if (!p || p->runtime != TASK_RUNTIME_GO)
		return 0;
	return go_goid(TASK_GO_REG_G(r), p->goid_offset);
}

/* func (pc *persistConn) writeLoop(): the goroutine writes for pc. */
SEC("uprobe")
int go_write_loop(struct pt_regs *ctx)
{
	struct task_uregs *r = (struct task_uregs *)ctx;
	task_count(TASK_HITS_WRITE_LOOP);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!selected(tgid))
		return 0;
	__u64 goid = go_task(r, tgid);
	if (!goid)
		return 0;
	struct task_key k = {.id = goid, .tgid = tgid};
	__u64 conn = TASK_GO_ARG1(r);
	if (bpf_map_update_elem(&go_writers, &k, &conn, BPF_ANY) != 0)
		task_count(TASK_NO_ROOM);
	return 0;
}

/* go_conn_fd is the descriptor of persistConn pc's connection when it is
 * a TCP connection, else -1. bias is the binary's load bias. Without the
 * itab (a stripped binary), a connection of another type (TLS) reads as
 * garbage: an itab's hash where a descriptor would be, nearly always far
 * above any descriptor, and else no socket's (go_round_trip checks). */
static __always_inline __s64 go_conn_fd(struct go_http_binary *b, __u64 pc, __u64 bias)
{
	__u64 iface[2];
	if (!b->conn || bpf_probe_read_user(iface, sizeof(iface), (void *)(pc + b->conn)) != 0)
		return -1;
	if (b->itab && iface[0] != b->itab + bias)
		return -1;
	__u64 netfd = 0;
	__s64 sysfd = -1;
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)(iface[1] + b->tcp_fd)) != 0 ||
	    bpf_probe_read_user(&sysfd, sizeof(sysfd), (void *)(netfd + b->sysfd)) != 0)
		return -1;
	return sysfd >= 0 && sysfd < (1 << 20) ? sysfd : -1; /* at most fs.nr_open's default */
}

/* func (pc *persistConn) roundTrip(req *transportRequest) (*Response,
 * error): the calling goroutine asks pc to write its request. Cookie: the
 * probed instruction's link-time address << 16 | index in
 * go_http_binaries. */
SEC("uprobe")
int go_round_trip(struct pt_regs *ctx)
{
	struct task_uregs *r = (struct task_uregs *)ctx;
	task_count(TASK_HITS_ROUND_TRIP);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!selected(tgid))
		return 0;
	__u64 goid = go_task(r, tgid);
	if (!goid)
		return 0;
	struct task_key k = {.id = TASK_GO_ARG1(r), .tgid = tgid};
	if (bpf_map_update_elem(&go_callers, &k, &goid, BPF_ANY) != 0)
		task_count(TASK_NO_ROOM);
	/* And by its descriptor, for a connection whose writer started
	 * before this probe was placed. */
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 index = cookie & 0xffff;
	struct go_http_binary *b = bpf_map_lookup_elem(&go_http_binaries, &index);
	if (!b)
		return 0;
	__s64 fd = go_conn_fd(b, TASK_GO_ARG1(r), TASK_REGS_IP(r) - (cookie >> 16));
	if (fd < 0 || !fd_socket(fd))
		return 0; /* not a TCP connection's descriptor */
	struct task_key fk = {.id = fd, .tgid = tgid};
	if (bpf_map_update_elem(&go_fd_callers, &fk, &goid, BPF_ANY) != 0)
		task_count(TASK_NO_ROOM);
	return 0;
}

/* func (t *http2Client) write(s *ClientStream, ...) (Write(s *Stream, ...)
 * before grpc-go 1.67), on the goroutine that sends a message of stream s:
 * its request's HEADERS and DATA go out from the transport's writer
 * goroutine, several streams' in one write, so the stream tells user space
 * which goroutine a call is for. Nothing of the transport is read: it is
 * named by its address, which its reader goroutine's reads carry
 * (go_grpc_reader). Cookie: the offset of the stream's id from s. */
SEC("uprobe")
int go_grpc_write(struct pt_regs *ctx)
{
	struct task_uregs *r = (struct task_uregs *)ctx;
	task_count(TASK_HITS_GRPC_WRITE);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (!selected(tgid))
		return 0;
	__u64 goid = go_task(r, tgid);
	if (!goid)
		return 0;
	__u32 id = 0;
	__u64 at = TASK_GO_ARG2(r) + (bpf_get_attach_cookie(ctx) & 0xffff);
	if (bpf_probe_read_user(&id, sizeof(id), (void *)at) != 0 || !id)
		return 0;
	struct event *e = new_event(EVENT_GO_STREAM, pid_tgid, 0);
	if (!e)
		return 0;
	e->task = goid;
	e->task_trigger = id;
	e->task_clock = TASK_GO_ARG1(r);
	send(e, COUNTER_LOST_CONTROL);
	return 0;
}

/* func (t *http2Client) reader(errCh chan<- error): the goroutine reads
 * transport t's connection, once per connection. */
SEC("uprobe")
int go_grpc_reader(struct pt_regs *ctx)
{
	struct task_uregs *r = (struct task_uregs *)ctx;
	task_count(TASK_HITS_GRPC_READER);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!selected(tgid))
		return 0;
	__u64 goid = go_task(r, tgid);
	if (!goid)
		return 0;
	struct task_key k = {.id = goid, .tgid = tgid};
	__u64 t = TASK_GO_ARG1(r);
	if (bpf_map_update_elem(&go_readers, &k, &t, BPF_ANY) != 0)
		task_count(TASK_NO_ROOM);
	return 0;
}

/* A Go HTTP/2 server reads a stream's request on the goroutine that reads
 * its connection, and serves it on another: grpc-go's handleStream runs on
 * a goroutine of its own per stream (or on a worker of a pool), net/http's
 * runHandler (and x/net's) on a goroutine of its own. A probe at the
 * handler's entry, once per stream, names the handler's goroutine, the
 * stream's id and the connection's socket (EVENT_GO_HANDLER): user space
 * ties the server span of that stream to the goroutine.
 *
 * The socket comes from the descriptor of the server's net.Conn, followed
 * only through types whose itab user space named: a *net.TCPConn, or a
 * wrapper that holds the conn it wraps at a known offset (crypto/tls's
 * Conn, grpc-go's syscallConn, x/net h2c's bufConn). Any other conn makes
 * the hand-off unknown (counted), never a guess. */
#define GO_WRAPS 4
#define GO_WRAP_DEPTH 3

/* What user space found of one probed handler entry: go_serve_points[index
 * in the probe's cookie]; itabs are link-time addresses, 0 unknown. */
struct go_serve_point {
	__u64 tcp_itab;            /* *net.TCPConn,net.Conn */
	__u64 transport_itab;      /* grpc-go: *http2Server,ServerTransport, what handleStream's transport must be */
	__u64 wrap_itab[GO_WRAPS]; /* conns that wrap another, */
	__u32 wrap_conn[GO_WRAPS]; /* and the offset of the net.Conn they wrap */
	__u32 conn;                /* offset of the net.Conn in the server's connection */
	__u32 tcp_fd;              /* offset of the *netFD in net.TCPConn */
	__u32 sysfd;               /* offset of pfd.Sysfd in net.netFD */
	__u32 rws;                 /* net/http: offset of rws in responseWriter, */
	__u32 stream;              /* of stream in responseWriterState, */
	__u32 id;                  /* and of the id in the stream (grpc-go: in ServerStream) */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct go_serve_point);
} go_serve_points SEC(".maps");

/* go_served_fd follows the net.Conn interface at address at down to its
 * descriptor, or returns -1. bias is the binary's load bias. */
static __always_inline __s64 go_served_fd(struct go_serve_point *p, __u64 at, __u64 bias)
{
	__u64 iface[2];
#pragma unroll
	for (int depth = 0; depth < GO_WRAP_DEPTH; depth++) {
		if (bpf_probe_read_user(iface, sizeof(iface), (void *)at) != 0 || !iface[0] || !iface[1])
			return -1;
		if (p->tcp_itab && iface[0] == p->tcp_itab + bias) {
			__u64 netfd = 0;
			__s64 sysfd = -1;
			if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)(iface[1] + p->tcp_fd)) != 0 ||
			    bpf_probe_read_user(&sysfd, sizeof(sysfd), (void *)(netfd + p->sysfd)) != 0)
				return -1;
			return sysfd >= 0 && sysfd < (1 << 20) ? sysfd : -1;
		}
		__s64 inner = -1;
#pragma unroll
		for (int i = 0; i < GO_WRAPS; i++) {
			if (p->wrap_itab[i] && iface[0] == p->wrap_itab[i] + bias)
				inner = p->wrap_conn[i];
		}
		if (inner < 0)
			return -1;
		at = iface[1] + inner;
	}
	return -1;
}

/* serve_point is the point a handler probe's cookie names: the probed
 * instruction's link-time address << 16 | index in go_serve_points. */
static __always_inline struct go_serve_point *serve_point(__u64 cookie)
{
	__u32 index = cookie & 0xffff;
	return bpf_map_lookup_elem(&go_serve_points, &index);
}

/* go_served reports that the current goroutine serves stream id of the
 * connection whose net.Conn is at conn_at. */
static __always_inline void go_served(struct task_uregs *r, struct go_serve_point *p, __u64 pid_tgid,
				      __u64 conn_at, __u32 id, __u64 bias)
{
	__u32 tgid = pid_tgid >> 32;
	__u64 goid = go_task(r, tgid);
	if (!goid || !id)
		return;
	__s64 fd = go_served_fd(p, conn_at, bias);
	struct sock *sk = fd >= 0 ? fd_socket(fd) : 0;
	if (!sk) {
		task_count(TASK_SERVE_UNTOLD);
		return;
	}
	struct event *e = new_event(EVENT_GO_HANDLER, pid_tgid, fd);
	if (!e)
		return;
	e->sock = (__u64)sk;
	e->task = goid;
	e->task_trigger = id;
	e->task_clock = 0;
	send(e, COUNTER_LOST_CONTROL);
}

/* func (s *Server) handleStream(t transport.ServerTransport, stream
 * *transport.ServerStream), grpc-go 1.67 on: the goroutine serves stream,
 * of transport t. A transport of another type than *http2Server (a server
 * behind net/http's ServeHTTP) is not followed. */
SEC("uprobe")
int go_grpc_serve(struct pt_regs *ctx)
{
	struct task_uregs *r = (struct task_uregs *)ctx;
	task_count(TASK_HITS_GRPC_SERVE);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!selected(pid_tgid >> 32))
		return 0;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct go_serve_point *p = serve_point(cookie);
	if (!p)
		return 0;
	__u64 bias = TASK_REGS_IP(r) - (cookie >> 16);
	if (!p->transport_itab || TASK_GO_ARG2(r) != p->transport_itab + bias) {
		task_count(TASK_SERVE_UNTOLD);
		return 0;
	}
	__u32 id = 0;
	if (bpf_probe_read_user(&id, sizeof(id), (void *)(TASK_GO_ARG4(r) + p->id)) != 0)
		return 0;
	go_served(r, p, pid_tgid, TASK_GO_ARG3(r) + p->conn, id, bias);
	return 0;
}

/* func (sc *serverConn) runHandler(rw *responseWriter, req *Request,
 * handler func(ResponseWriter, *Request)), net/http's bundled HTTP/2
 * server (http2serverConn) or x/net's: the goroutine serves
 * rw.rws.stream, of sc. */
SEC("uprobe")
int go_h2_serve(struct pt_regs *ctx)
{
	struct task_uregs *r = (struct task_uregs *)ctx;
	task_count(TASK_HITS_H2_SERVE);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!selected(pid_tgid >> 32))
		return 0;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct go_serve_point *p = serve_point(cookie);
	if (!p)
		return 0;
	__u64 rws = 0, stream = 0;
	__u32 id = 0;
	if (bpf_probe_read_user(&rws, sizeof(rws), (void *)(TASK_GO_ARG2(r) + p->rws)) != 0 ||
	    bpf_probe_read_user(&stream, sizeof(stream), (void *)(rws + p->stream)) != 0 ||
	    bpf_probe_read_user(&id, sizeof(id), (void *)(stream + p->id)) != 0)
		return 0;
	go_served(r, p, pid_tgid, TASK_GO_ARG1(r) + p->conn, id, TASK_REGS_IP(r) - (cookie >> 16));
	return 0;
}

/* llhttp's HTTP_REQUEST: a server's parser. */
#define LLHTTP_REQUEST 1

/* void llhttp_init(llhttp_t *parser, llhttp_type_t type, const
 * llhttp_settings_t *settings): Node.js's Parser::Initialize calls it
 * right after it gave the parser a new async id, which is then the
 * process's async id counter. */
SEC("uprobe")
int node_parser_init(struct pt_regs *ctx)
{
	struct task_uregs *r = (struct task_uregs *)ctx;
	task_count(TASK_HITS_NODE_PARSER);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (!selected(tgid) || (__u32)TASK_C_ARG2(r) != LLHTTP_REQUEST || (__u32)pid_tgid != tgid)
		return 0;
	struct task_proc *p = bpf_map_lookup_elem(&task_procs, &tgid);
	if (!p || p->runtime != TASK_RUNTIME_NODE || !p->node_fields)
		return 0;
	__u64 counter = 0;
	if (bpf_probe_read_user(&counter, sizeof(counter), (void *)(p->node_fields + 16)) != 0)
		return 0;
	struct event *e = new_event(EVENT_NODE_PARSER, pid_tgid, 0);
	if (!e)
		return 0;
	e->task_clock = counter;
	send(e, COUNTER_LOST_CONTROL);
	return 0;
}

/* Set (not -1) while a constructor runs in a scope that names the new
 * resources' trigger: the sign bit of its double is then clear. */
#define DOUBLE_SIGN (1ULL << 63)

/* void node::TCPWrap::New(const FunctionCallbackInfo<Value>&): a socket is
 * made, and gets the next async id; its trigger is the default trigger
 * when one is set, else the running callback. A connection a handler
 * opens connects in a callback whose trigger is the socket: this tells
 * user space which context opened it. Once per connection. */
SEC("uprobe")
int node_socket(struct pt_regs *ctx)
{
	task_count(TASK_HITS_NODE_SOCKET);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (!selected(tgid) || (__u32)pid_tgid != tgid)
		return 0;
	struct task_proc *p = bpf_map_lookup_elem(&task_procs, &tgid);
	if (!p || p->runtime != TASK_RUNTIME_NODE || !p->node_fields)
		return 0;
	__u64 f[4];
	if (bpf_probe_read_user(f, sizeof(f), (void *)p->node_fields) != 0)
		return 0;
	struct event *e = new_event(EVENT_NODE_SOCKET, pid_tgid, 0);
	if (!e)
		return 0;
	if (!(f[3] & DOUBLE_SIGN)) {
		e->task = f[3];
		e->task_trigger = 0;
	} else {
		e->task = f[0];
		e->task_trigger = f[1];
	}
	e->task_clock = f[2];
	send(e, COUNTER_LOST_CONTROL);
	return 0;
}

/* void AsyncHooks::push_async_context(double async_id, double
 * trigger_async_id, Local<Object> resource): this is the AsyncHooks. */
SEC("uprobe")
int node_hooks(struct pt_regs *ctx)
{
	struct task_uregs *r = (struct task_uregs *)ctx;
	task_count(TASK_HITS_NODE_HOOKS);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if ((__u32)pid_tgid != tgid)
		return 0; /* a worker thread's */
	__u64 hooks = TASK_C_ARG1(r);
	bpf_map_update_elem(&node_hooks_found, &tgid, &hooks, BPF_NOEXIST);
	return 0;
}
