// A program the verifier must reject (a map value used without a NULL check). Used by the
// error tests to check that the verifier log reaches JavaScript.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} values SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int unchecked_deref(void *ctx)
{
	__u32 key = 1;
	__u64 *v = bpf_map_lookup_elem(&values, &key);
	*v += 1; /* no NULL check: the verifier refuses this */
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
