//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/* A stand-in for Cilium in tests: a TC program that bears the name of one
 * of Cilium's, counts the packets it sees and lets them pass, ending the
 * chain as Cilium's programs do (TC_ACT_OK). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char __license[] SEC("license") = "GPL";

#define TC_ACT_OK 0

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

SEC("tc")
int cil_from_container(struct __sk_buff *skb)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&seen, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	return TC_ACT_OK;
}
