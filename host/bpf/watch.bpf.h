/* The processes a host module watches: every one, or the tgids user space puts in watch_tgid
 * (HostProbe.fill). Shared by the sched, memory and syscall modules. */
#ifndef LATSCOPE_WATCH_BPF_H
#define LATSCOPE_WATCH_BPF_H

const volatile bool watch_all_tasks = true; /* false: only the watched ones */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} watch_tgid SEC(".maps");

static __always_inline bool tgid_watched(__u32 tgid)
{
	return watch_all_tasks || bpf_map_lookup_elem(&watch_tgid, &tgid) != NULL;
}

#endif
