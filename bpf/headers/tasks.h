/* Which task of its runtime a syscall of a selected process runs for, so
 * that user space (and the kernel's own choice of parents, serving.h) can
 * tell which request a call belongs to when threads do not tell:
 *
 *   - Go runs goroutines on any thread. The goroutine is Go's g, which
 *     Go's register ABI keeps in R14 (amd64) or X28 (arm64) in Go code,
 *     and Go makes its syscalls from Go code (syscall.Syscall6 calls an
 *     ABIInternal stub): the user registers the kernel saved at the
 *     syscall hold it, with no probe. Its id is read from it, at the
 *     offset user space found (DWARF, or the Go release).
 *     A goroutine may write for another: net/http's Transport writes a
 *     request from its connection's writeLoop goroutine. Two probes
 *     (tasks.bpf.c) tell the kernel which goroutine a connection writes
 *     for: writeLoop's entry (once per connection) names the connection
 *     of the writer goroutine, persistConn.roundTrip's entry (once per
 *     request) the goroutine that asked. A write's task is then the
 *     asking goroutine.
 *   - Node.js runs every request on one thread, in async contexts: the
 *     async id of the callback running, of what scheduled it, and the
 *     latest id given out are doubles in the main thread's
 *     async_id_fields array, whose address user space found. They are
 *     read at each syscall of the main thread.
 *
 * User space says which processes are which in task_procs. Everything
 * here is read only for selected processes, and only when the kernel
 * gives tracing programs the user registers of the current task (5.15). */
#ifndef TRACER_TASKS_H
#define TRACER_TASKS_H

/* Set by the loader when bpf_task_pt_regs is there (5.15). */
volatile const __u32 task_regs = 0;

/* Until user space names a process's runtime, neither its threads nor its
 * tasks are trusted to tell its requests apart. */
enum task_runtime {
	TASK_RUNTIME_GO = 1,      /* goroutines tell */
	TASK_RUNTIME_NODE = 2,    /* async contexts tell (user space); one thread runs all */
	TASK_RUNTIME_THREADS = 3, /* any other: a thread that serves one request at a time tells */
};

/* What user space found of a process's runtime. */
struct task_proc {
	__u64 node_fields; /* Node.js: address of async_id_fields (execution, trigger, counter, ...); 0 unknown */
	__u32 goid_offset; /* Go: offset of goid in runtime.g; 0 unknown */
	__u8 runtime;      /* enum task_runtime */
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tgid */
	__type(value, struct task_proc);
} task_procs SEC(".maps");

/* An id (a goroutine's, a connection's address) in a process. */
struct task_key {
	__u64 id;
	__u32 tgid;
	__u32 pad;
};

/* Go: the net/http connection (*persistConn) each writeLoop goroutine
 * writes for, and the goroutine each connection's latest request was
 * asked by. Goroutine ids are never reused; a connection's address may
 * be, and its next roundTrip overwrites it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct task_key);
	__type(value, __u64);
} go_writers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct task_key);
	__type(value, __u64);
} go_callers SEC(".maps");

/* Go: the goroutine that asked for the request a net/http connection
 * writes next, by (descriptor, tgid), for the connections whose writer
 * goroutine started before the probes were placed (go_writers does not
 * know it). close() forgets it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct task_key);
	__type(value, __u64);
} go_fd_callers SEC(".maps");

/* Go: the grpc-go transport (*http2Client) each reader goroutine reads
 * for, by (goroutine id, tgid): its reads name it (task.trigger), which
 * ties the transport to its connection in user space. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct task_key);
	__type(value, __u64);
} go_readers SEC(".maps");

/* The user registers of the current task, as the kernel saved them when
 * it entered the kernel (a syscall, or a uprobe's trap). */
#if defined(__TARGET_ARCH_x86)
struct pt_regs___tasks {
	unsigned long r14;
} __attribute__((preserve_access_index));
#define TASK_GO_G(r) BPF_CORE_READ((r), r14)
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs___tasks {
	__u64 regs[31];
} __attribute__((preserve_access_index));
#define TASK_GO_G(r) BPF_CORE_READ((r), regs[28])
#endif

struct task {
	__u64 id;      /* Go: goroutine id; Node.js: execution async id (a double's bits) */
	__u64 trigger; /* Node.js: trigger async id (a double's bits); Go: the grpc-go transport a reader reads for */
	__u64 clock;   /* Node.js: the async id counter (a double's bits) */
};

/* go_goid reads the id of the goroutine whose g is at g. */
static __always_inline __u64 go_goid(__u64 g, __u32 offset)
{
	__u64 goid = 0;
	if (!g || !offset || bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + offset)) != 0)
		return 0;
	return goid;
}

/* go_handoff turns a goroutine that writes on descriptor fd into the
 * goroutine it writes for: by its connection, when it is a writeLoop
 * whose start was seen, else by the descriptor. */
static __always_inline __u64 go_handoff(__u32 tgid, __u64 goid, __u32 fd)
{
	struct task_key k = {.id = goid, .tgid = tgid};
	__u64 *conn = bpf_map_lookup_elem(&go_writers, &k);
	__u64 *caller = 0;
	if (conn) {
		struct task_key ck = {.id = *conn, .tgid = tgid};
		caller = bpf_map_lookup_elem(&go_callers, &ck);
	} else if (fd) {
		struct task_key fk = {.id = fd, .tgid = tgid};
		caller = bpf_map_lookup_elem(&go_fd_callers, &fk);
	}
	return caller ? *caller : goid;
}

/* task_fd_closed forgets who asked for the next request on fd. */
static __always_inline void task_fd_closed(__u64 pid_tgid, __u32 fd)
{
	struct task_key fk = {.id = fd, .tgid = pid_tgid >> 32};
	bpf_map_delete_elem(&go_fd_callers, &fk);
}

/* task_runtime_of is process tgid's runtime, 0 when user space named none. */
static __always_inline __u8 task_runtime_of(__u32 tgid)
{
	struct task_proc *p = bpf_map_lookup_elem(&task_procs, &tgid);
	return p ? p->runtime : 0;
}

/* task_current fills t with the task the current syscall (or probe) of
 * process pid_tgid runs for; writing: it writes (on descriptor fd, 0 if
 * not known), so a goroutine that writes for another counts as that one.
 * It returns the process's runtime (enum task_runtime), or 0 when user
 * space named none. */
static __always_inline __u8 task_current(__u64 pid_tgid, bool writing, __u32 fd, struct task *t)
{
	t->id = t->trigger = t->clock = 0;
	__u32 tgid = pid_tgid >> 32;
	struct task_proc *p = bpf_map_lookup_elem(&task_procs, &tgid);
	if (!p)
		return 0;
	__u8 runtime = p->runtime;
	if (!task_regs)
		return runtime;
	if (runtime == TASK_RUNTIME_GO && p->goid_offset) {
		struct pt_regs___tasks *r = (void *)bpf_task_pt_regs(bpf_get_current_task_btf());
		t->id = go_goid(TASK_GO_G(r), p->goid_offset);
		if (t->id && writing) {
			t->id = go_handoff(tgid, t->id, fd);
		} else if (t->id) {
			struct task_key k = {.id = t->id, .tgid = tgid};
			__u64 *transport = bpf_map_lookup_elem(&go_readers, &k);
			if (transport)
				t->trigger = *transport;
		}
	} else if (runtime == TASK_RUNTIME_NODE && p->node_fields && (__u32)pid_tgid == tgid) {
		__u64 f[3];
		if (bpf_probe_read_user(f, sizeof(f), (void *)p->node_fields) == 0) {
			t->id = f[0];
			t->trigger = f[1];
			t->clock = f[2];
		}
	}
	return runtime;
}

#endif
