/* Processes a selected process forks: selected from their first syscall,
 * until they run a program of their own. Pre-fork servers (gunicorn and
 * PHP-FPM workers, PostgreSQL backends, nginx workers after a reload, a
 * forking server's child per connection) serve right after the fork, long
 * before a scan of /proc could find the child; until it execs, the child
 * runs the parent's program with the parent's environment, so it is the
 * same service. An exec ends that: the new program is selected only if
 * the criteria select it (user space's next scan). */
#ifndef TRACER_FORKS_H
#define TRACER_FORKS_H

/* Processes selected as a fork, by tgid: their parent's tgid. Not an LRU:
 * a fork it forgot would stay selected through its exec. When it is full
 * a fork is not selected, and is left to discovery as before. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} forked SEC(".maps");

/* inherit_selection selects child, a new process (not a thread) that
 * parent forked, when parent is selected, and tells user space. */
static __always_inline void inherit_selection(struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 tgid = BPF_CORE_READ(child, tgid), pid = BPF_CORE_READ(child, pid);
	if (pid != tgid || tgid == ptgid || !selected(ptgid))
		return;
	if (bpf_map_update_elem(&forked, &tgid, &ptgid, BPF_ANY) != 0)
		return;
	set_selected(tgid, true);
	struct event *e = new_event(EVENT_FORK, (__u64)tgid << 32 | pid, ptgid);
	if (e)
		send(e, COUNTER_LOST_CONTROL);
}

/* exec_ends_inheritance deselects a process selected as a fork when it
 * runs a new program, and tells user space. */
static __always_inline void exec_ends_inheritance(__u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;
	if (bpf_map_delete_elem(&forked, &tgid) != 0 || !selected(tgid))
		return;
	set_selected(tgid, false);
	struct event *e = new_event(EVENT_EXEC, pid_tgid, 0);
	if (e)
		send(e, COUNTER_LOST_CONTROL);
}

#endif
