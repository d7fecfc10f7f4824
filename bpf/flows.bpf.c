//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/* Flow accounting: bytes and packets of TCP and UDP per flow, interface and
 * direction, counted by TC programs (TCX or netlink cls_bpf) that never
 * change a packet nor its fate: they always return TC_ACT_UNSPEC, which is
 * TCX_NEXT, so the programs after them (Cilium's among them) run as if
 * they were not there.
 *
 * Counts go to a per-CPU hash, the table, reached through a one-slot array
 * of maps. User space drains a table by swapping the other one in: the
 * kernel waits for every program that could still hold the old one before
 * the swap returns (map-in-map updates synchronize RCU), so draining it
 * races with nothing and loses nothing. A flow that finds the table full
 * goes to the spill ring buffer, one record per packet; a packet that finds
 * the ring full too is counted as lost, bytes and packets. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char __license[] SEC("license") = "GPL";

typedef _Bool bool;
#define true 1
#define false 0

#define TC_ACT_UNSPEC (-1) /* TCX_NEXT: the next program decides */
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define EEXIST 17
/* The L2 header assumed for a GSO packet whose IP length field is zero
 * (BIG TCP): Ethernet's. */
#define ETH_HLEN 14

enum flow_dir {
	FLOW_RECEIVE = 0,  /* ingress: the interface received it */
	FLOW_TRANSMIT = 1, /* egress: the interface sends it */
};

/* One flow on one interface in one direction. Addresses of IPv4 flows take
 * the first 4 bytes, the rest zero; ports are 0 when the packet has none
 * (a non-first fragment). */
struct flow_key {
	__u64 netns;   /* the namespace of the interface, as the loader numbers it */
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;   /* host byte order */
	__u16 dport;
	__u32 ifindex;
	__u8 family;   /* 4 or 6 */
	__u8 proto;    /* IPPROTO_TCP, IPPROTO_UDP */
	__u8 dir;      /* enum flow_dir */
	__u8 pad[5];
};

struct flow_counts {
	__u64 bytes;   /* as the frames went by, L2 header included, GSO packets as their segments */
	__u64 packets;
};

/* What the spill ring carries: one packet of a flow the table had no room for. */
struct flow_record {
	struct flow_key key;
	struct flow_counts counts;
};

enum flow_counter {
	FLOW_SPILLED = 0,    /* packets sent to the spill ring */
	FLOW_LOST_PACKETS,   /* packets counted nowhere: table and ring full */
	FLOW_LOST_BYTES,     /* their bytes */
	FLOW_COUNTER_MAX,
};

/* The table; user space sizes both from the configuration. */
struct flow_table {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct flow_key);
	__type(value, struct flow_counts);
} flows_a SEC(".maps"), flows_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct flow_table);
} flow_tables SEC(".maps") = {
	.values = {&flows_a},
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} flow_spill SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOW_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} flow_counters SEC(".maps");

/* Anchors for bpf2go -type. */
const struct flow_record *unused_flow_record __attribute__((unused));
const enum flow_counter *unused_flow_counter __attribute__((unused));
const enum flow_dir *unused_flow_dir __attribute__((unused));

/* Set by the loader: the namespace of the interfaces this copy of the
 * programs is attached to (one copy per namespace). bpf_get_netns_cookie
 * would not do: in tc programs it answers with the namespace of the
 * packet's socket when it has one, and a packet crossing a veth keeps the
 * sender's socket, so the receiving end would count it as the sender's
 * interface. */
volatile const __u64 netns_id = 0;
/* Records wait in the spill ring without waking the reader until this
 * many bytes do. */
volatile const __u64 spill_wakeup = 1 << 19;

static __always_inline void add_counter(__u32 which, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&flow_counters, &which);
	if (v)
		*v += n;
}

/* What the IP header says of a packet. */
struct l3 {
	__u32 hlen;    /* IP header, extension headers included */
	__u32 len;     /* IP total length: 0 when the header says none (BIG TCP) */
	__u8 proto;
	bool ports;    /* a transport header follows (not a later fragment) */
};

struct ipv4 {
	__u8 vihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__be16 check;
	__u8 saddr[4];
	__u8 daddr[4];
};

struct ipv6 {
	__u8 vtc; /* version and the top of the traffic class */
	__u8 tcfl[3];
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

static __always_inline bool parse_ipv4(struct __sk_buff *skb, struct flow_key *k, struct l3 *l)
{
	struct ipv4 ip;
	if (bpf_skb_load_bytes_relative(skb, 0, &ip, sizeof(ip), BPF_HDR_START_NET))
		return false;
	if (ip.vihl >> 4 != 4)
		return false;
	l->hlen = (ip.vihl & 0xf) * 4;
	if (l->hlen < sizeof(ip))
		return false;
	l->len = bpf_ntohs(ip.tot_len);
	l->proto = ip.protocol;
	l->ports = (bpf_ntohs(ip.frag_off) & 0x1fff) == 0;
	k->family = 4;
	__builtin_memcpy(k->saddr, ip.saddr, 4);
	__builtin_memcpy(k->daddr, ip.daddr, 4);
	return true;
}

#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_DEST 60
#define IPV6_EXT_MAX 4

/* ipv6_ext steps over the extension headers before the transport header,
 * a few at most. */
static __always_inline bool ipv6_ext(struct __sk_buff *skb, struct l3 *l)
{
	for (int i = 0; i < IPV6_EXT_MAX; i++) {
		__u8 h[4];
		switch (l->proto) {
		case NEXTHDR_HOP:
		case NEXTHDR_ROUTING:
		case NEXTHDR_DEST:
		case NEXTHDR_AUTH:
		case NEXTHDR_FRAGMENT:
			break;
		default:
			return true;
		}
		if (bpf_skb_load_bytes_relative(skb, l->hlen, h, sizeof(h), BPF_HDR_START_NET))
			return false;
		__u8 proto = l->proto;
		l->proto = h[0];
		if (proto == NEXTHDR_FRAGMENT) {
			l->ports = l->ports && ((h[2] << 8 | h[3]) & 0xfff8) == 0;
			l->hlen += 8;
		} else if (proto == NEXTHDR_AUTH) {
			l->hlen += (h[1] + 2) * 4;
		} else {
			l->hlen += (h[1] + 1) * 8;
		}
	}
	return false; /* more than we walk: not counted as TCP or UDP */
}

static __always_inline bool parse_ipv6(struct __sk_buff *skb, struct flow_key *k, struct l3 *l)
{
	struct ipv6 ip;
	if (bpf_skb_load_bytes_relative(skb, 0, &ip, sizeof(ip), BPF_HDR_START_NET))
		return false;
	if (ip.vtc >> 4 != 6)
		return false;
	__u32 payload = bpf_ntohs(ip.payload_len);
	l->hlen = sizeof(ip);
	l->len = payload ? payload + sizeof(ip) : 0;
	l->proto = ip.nexthdr;
	l->ports = true;
	k->family = 6;
	__builtin_memcpy(k->saddr, ip.saddr, 16);
	__builtin_memcpy(k->daddr, ip.daddr, 16);
	return ipv6_ext(skb, l);
}

/* parse_l4 reads the ports and the transport header's length. */
static __always_inline bool parse_l4(struct __sk_buff *skb, struct flow_key *k, struct l3 *l, __u32 *l4len)
{
	if (l->proto != IPPROTO_TCP && l->proto != IPPROTO_UDP)
		return false;
	k->proto = l->proto;
	*l4len = l->proto == IPPROTO_TCP ? 20 : 8;
	if (!l->ports)
		return true;
	__u8 h[13];
	long err = l->proto == IPPROTO_TCP ? bpf_skb_load_bytes_relative(skb, l->hlen, h, 13, BPF_HDR_START_NET)
					   : bpf_skb_load_bytes_relative(skb, l->hlen, h, 4, BPF_HDR_START_NET);
	if (err)
		return true; /* a truncated header: the flow without ports */
	k->sport = h[0] << 8 | h[1];
	k->dport = h[2] << 8 | h[3];
	if (l->proto == IPPROTO_TCP)
		*l4len = (h[12] >> 4) * 4;
	return true;
}

/* wire_bytes counts a GSO or GRO packet as the segments it stands for,
 * each with its own copy of the headers. */
static __always_inline __u64 wire_bytes(struct __sk_buff *skb, struct l3 *l, __u32 l4len, __u32 segs)
{
	__u64 len = skb->len;
	if (segs <= 1)
		return len;
	__u32 l2 = l->len && l->len <= len ? len - l->len : ETH_HLEN;
	return len + (__u64)(segs - 1) * (l2 + l->hlen + l4len);
}

static __always_inline void spill(struct flow_key *k, __u64 bytes, __u64 packets)
{
	struct flow_record *r = bpf_ringbuf_reserve(&flow_spill, sizeof(*r), 0);
	if (!r) {
		add_counter(FLOW_LOST_PACKETS, packets);
		add_counter(FLOW_LOST_BYTES, bytes);
		return;
	}
	__builtin_memcpy(&r->key, k, sizeof(*k));
	r->counts.bytes = bytes;
	r->counts.packets = packets;
	__u64 flags = bpf_ringbuf_query(&flow_spill, BPF_RB_AVAIL_DATA) >= spill_wakeup ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(r, flags);
	add_counter(FLOW_SPILLED, packets);
}

static __always_inline void add(struct flow_key *k, __u64 bytes, __u64 packets)
{
	__u32 zero = 0;
	void *table = bpf_map_lookup_elem(&flow_tables, &zero);
	if (!table) {
		spill(k, bytes, packets);
		return;
	}
	struct flow_counts *c = bpf_map_lookup_elem(table, k);
	if (c) {
		c->bytes += bytes;
		c->packets += packets;
		return;
	}
	struct flow_counts init = {.bytes = bytes, .packets = packets};
	long err = bpf_map_update_elem(table, k, &init, BPF_NOEXIST);
	if (err == 0)
		return;
	if (err == -EEXIST) { /* another CPU made the flow meanwhile */
		c = bpf_map_lookup_elem(table, k);
		if (c) {
			c->bytes += bytes;
			c->packets += packets;
			return;
		}
	}
	spill(k, bytes, packets); /* the table is full */
}

static __always_inline void account(struct __sk_buff *skb, __u8 dir)
{
	struct flow_key k;
	__builtin_memset(&k, 0, sizeof(k));
	struct l3 l = {};
	__u16 proto = bpf_ntohs(skb->protocol);
	if (proto == ETH_P_IP) {
		if (!parse_ipv4(skb, &k, &l))
			return;
	} else if (proto == ETH_P_IPV6) {
		if (!parse_ipv6(skb, &k, &l))
			return;
	} else {
		return;
	}
	__u32 l4len = 0;
	if (!parse_l4(skb, &k, &l, &l4len))
		return;
	k.dir = dir;
	k.ifindex = skb->ifindex;
	k.netns = netns_id;
	__u32 segs = skb->gso_segs;
	__u64 packets = segs > 1 ? segs : 1;
	add(&k, wire_bytes(skb, &l, l4len, segs), packets);
}

SEC("tc")
int flows_ingress(struct __sk_buff *skb)
{
	account(skb, FLOW_RECEIVE);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int flows_egress(struct __sk_buff *skb)
{
	account(skb, FLOW_TRANSMIT);
	return TC_ACT_UNSPEC;
}
