// SPDX-License-Identifier: GPL-2.0
/*
 * bench/observer-overhead --breakdown: the cost of single operations of the observer's per-segment
 * work, run with BPF_PROG_TEST_RUN (bpftool prog run ... repeat N). Each program repeats its
 * operation OPS times so the run's own overhead divides out: the clock (bpf_ktime_get_ns), a
 * flow's lookup in a hash map (40-byte key, the observer's until issue 17) and in the observer's
 * set-associative table (an array and its own hash).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "flow_hash.h"

#define OPS 64
#define FLOWS 8 /* flows present; lookups cycle over them */

struct pkey {
	__u8 saddr[16], daddr[16];
	__u16 sport, dport;
	__u8 family, dir, pad[2];
};
struct pval {
	__u64 owner;
	struct pkey key;
	__u8 state[1600];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct pkey);
	__type(value, struct pval);
} hash_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct pval);
} table_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pval);
} tmpl SEC(".maps");

static __always_inline void make_key(struct pkey *k, __u32 i)
{
	__builtin_memset(k, 0, sizeof(*k));
	*(__u32 *)k->saddr = 0x0100000a;
	*(__u32 *)k->daddr = 0x0200000a + (i << 24);
	k->sport = 7400;
	k->dport = 40000 + i;
	k->family = 2;
}

static __always_inline __u32 table_slot(const struct pkey *k)
{
	return (flow_hash(k) & 2047) * 4;
}

SEC("tc")
int parts_fill(struct __sk_buff *ctx)
{
	__u32 zero = 0;
	struct pval *t = bpf_map_lookup_elem(&tmpl, &zero);
	if (!t)
		return 0;
	for (__u32 i = 0; i < FLOWS; i++) {
		struct pkey k;
		make_key(&k, i);
		t->key = k;
		t->owner = 1;
		bpf_map_update_elem(&hash_flows, &k, t, BPF_ANY);
		__u32 idx = table_slot(&k);
		bpf_map_update_elem(&table_flows, &idx, t, BPF_ANY);
	}
	return 0;
}

SEC("tc")
int parts_empty(struct __sk_buff *ctx)
{
	return 0;
}

SEC("tc")
int parts_clock(struct __sk_buff *ctx)
{
	__u64 sum = 0;
	for (int i = 0; i < OPS; i++)
		sum += bpf_ktime_get_ns();
	return sum & 1;
}

SEC("tc")
int parts_key(struct __sk_buff *ctx) /* building the keys alone, taken out of the lookups */
{
	int found = 0;
	for (__u32 i = 0; i < OPS; i++) {
		struct pkey k;
		make_key(&k, i & (FLOWS - 1));
		found += k.dport & 1;
	}
	return found;
}

SEC("tc")
int parts_hash_lookup(struct __sk_buff *ctx)
{
	int found = 0;
	for (__u32 i = 0; i < OPS; i++) {
		struct pkey k;
		make_key(&k, i & (FLOWS - 1));
		found += bpf_map_lookup_elem(&hash_flows, &k) != NULL;
	}
	return found;
}

SEC("tc")
int parts_table_lookup(struct __sk_buff *ctx)
{
	int found = 0;
	for (__u32 i = 0; i < OPS; i++) {
		struct pkey k;
		make_key(&k, i & (FLOWS - 1));
		__u32 set = table_slot(&k);
		for (__u32 w = 0; w < 4; w++) {
			__u32 idx = set + w;
			struct pval *v = bpf_map_lookup_elem(&table_flows, &idx);
			if (v && flow_key_eq(&v->key, &k)) {
				found++;
				break;
			}
		}
	}
	return found;
}

char LICENSE[] SEC("license") = "GPL";
