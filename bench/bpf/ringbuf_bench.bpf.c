// Ring-buffer producer for bench/ringbuf: each getppid() of the target process emits a burst of
// 64-byte records, with or without a consumer wake-up per record.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "latscope.bpf.h"
#include "ringbuf_bench.h"

const volatile __u32 target_tgid = 0;
const volatile __u32 burst = 64;       /* records per syscall, at most 1024 */
const volatile __u64 submit_flags = BPF_RB_NO_WAKEUP;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

__u64 seq = 0;

SEC("tp/syscalls/sys_enter_getppid")
int produce(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	for (__u32 i = 0; i < 1024 && i < burst; i++) {
		struct bench_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
		if (!r) {
			count_add(&stats, BS_DROPPED, 1);
			continue;
		}
		r->seq = __sync_fetch_and_add(&seq, 1);
		r->ts_ns = now;
		bpf_ringbuf_submit(r, submit_flags);
	}
	count_add(&stats, BS_PRODUCED, burst);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
