/* The selected processes, shared by every program of the receiver. */
#ifndef TRACER_SELECTION_H
#define TRACER_SELECTION_H

/* Selected processes: bit (tgid % 64) of word tgid / 64. Every syscall of
 * every process asks it, so it is an array (lookups are inlined) rather than
 * a hash. The loader sizes it from kernel.pid_max. Filled by user space and
 * by connect(). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} pids SEC(".maps");

static __always_inline bool selected(__u32 tgid)
{
	__u32 word = tgid / 64;
	__u64 *bits = bpf_map_lookup_elem(&pids, &word);
	return bits && (*bits & (1ULL << (tgid % 64)));
}

static __always_inline void set_selected(__u32 tgid, bool on)
{
	__u32 word = tgid / 64;
	__u64 *bits = bpf_map_lookup_elem(&pids, &word);
	if (!bits)
		return;
	if (on)
		__sync_fetch_and_or(bits, 1ULL << (tgid % 64));
	else
		__sync_fetch_and_and(bits, ~(1ULL << (tgid % 64)));
}

#endif
