/* Kernel-side helpers shared by every latscope BPF program. Kernel-only: include after
 * vmlinux.h and the libbpf headers. */
#ifndef LATSCOPE_BPF_H
#define LATSCOPE_BPF_H

#include <bpf/bpf_core_read.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_UNSPEC (-1) /* "continue": TCX_NEXT under tcx, fall through under clsact */

/* The network namespace a device belongs to, as the inode number user space sees in
 * /proc/PID/ns/net (and /run/netns/NAME). Any pointer (probe reads). */
static __always_inline __u32 dev_netns_ino(const struct net_device *dev)
{
	return BPF_CORE_READ(dev, nd_net.net, ns.inum);
}

/* The same by direct loads, for trusted BTF pointers only (tp_btf arguments, an skb from
 * bpf_cast_to_kern_ctx): no helper call, for hooks that run on every packet. */
static __always_inline __u32 dev_netns_ino_btf(const struct net_device *dev)
{
	return dev->nd_net.net->ns.inum;
}

static __always_inline void count_add(void *map, __u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, &idx);
	if (v)
		__sync_fetch_and_add(v, n);
}

/* One more in slot idx of a per-CPU array: only this CPU writes its copy, so no atomic. */
static __always_inline void percpu_count(void *map, __u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(map, &idx);
	if (v)
		*v += 1;
}

/* Keeps a struct shared with user space in the object's BTF (a struct only used through a pointer
 * to ring-buffer memory would not be), so native/addon.ts can check TypeScript's view of it when
 * the object is opened. One 8-byte pointer in .rodata, never read. */
#define LATSCOPE_LAYOUT(name) const volatile struct name *const volatile latscope_layout_##name = 0

/* floor(log2(v)), 0 for 0, without a loop the verifier must unroll (clang 14's BPF backend
 * runs out of memory on __builtin_clzll). */
static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0, s;
	s = (v > 0xFFFFFFFFULL) << 5; v >>= s; r |= s;
	s = (v > 0xFFFF) << 4; v >>= s; r |= s;
	s = (v > 0xFF) << 3; v >>= s; r |= s;
	s = (v > 0xF) << 2; v >>= s; r |= s;
	s = (v > 0x3) << 1; v >>= s; r |= s;
	return r | (__u32)(v >> 1);
}

#endif
