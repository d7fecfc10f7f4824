/* Per-thread values: in the thread's own task storage where the kernel has
 * it for tracing programs (5.12+; found without hashing or locking, freed
 * with the thread, so nothing can leak), else in an LRU hash by thread id,
 * whose entries the thread's exit deletes. The loader sets `modern` and
 * makes the unused map of each pair as small as it can. */
#ifndef TRACER_THREADS_H
#define TRACER_THREADS_H

/* Set by the loader when the kernel has task storage for tracing programs
 * (5.12): it also has BTF task pointers (5.11). */
volatile const __u32 modern = 0;

/* Zeroes, for a new per-thread value in a hash: at least as large as any
 * such value. Nothing writes it. */
#define THREAD_VALUE_MAX 64
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[THREAD_VALUE_MAX]);
} thread_blank SEC(".maps");

/* THREAD_MAP declares the pair of maps of one per-thread value. */
#define THREAD_MAP(name, value_type)                              \
	struct {                                                  \
		__uint(type, BPF_MAP_TYPE_TASK_STORAGE);          \
		__uint(map_flags, BPF_F_NO_PREALLOC);             \
		__type(key, int);                                 \
		__type(value, value_type);                        \
	} name SEC(".maps");                                      \
	struct {                                                  \
		__uint(type, BPF_MAP_TYPE_LRU_HASH);              \
		__uint(max_entries, 16384);                       \
		__type(key, __u64);                               \
		__type(value, value_type);                        \
	} name##_by_tid SEC(".maps");                             \
	_Static_assert(sizeof(value_type) <= THREAD_VALUE_MAX, #name " values outgrow thread_blank")

/* THREAD_GET returns the current thread's value of map name, or 0; with
 * create, a zeroed value is made when there is none (0 only when the
 * kernel has no memory for it). */
#define THREAD_GET(name, pid_tgid, create) \
	thread_get(&name, &name##_by_tid, pid_tgid, create)

static __always_inline void *thread_get(void *storage, void *by_tid, __u64 pid_tgid, bool create)
{
	if (modern)
		return bpf_task_storage_get(storage, bpf_get_current_task_btf(), 0,
					    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	void *v = bpf_map_lookup_elem(by_tid, &pid_tgid);
	if (v || !create)
		return v;
	__u32 zero = 0;
	void *blank = bpf_map_lookup_elem(&thread_blank, &zero);
	if (!blank)
		return 0;
	bpf_map_update_elem(by_tid, &pid_tgid, blank, BPF_NOEXIST);
	return bpf_map_lookup_elem(by_tid, &pid_tgid);
}

/* THREAD_FORGET drops the values of a thread that exits, on kernels where
 * they live in a hash (task storage goes with the task). */
#define THREAD_FORGET(name, pid_tgid)                              \
	do {                                                       \
		if (!modern)                                       \
			bpf_map_delete_elem(&name##_by_tid, &pid_tgid); \
	} while (0)

#endif
