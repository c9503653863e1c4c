// SPDX-License-Identifier: GPL-2.0
/* Block I/O latency, aggregated in the kernel: from a request's issue to the driver to its
 * completion, per device and direction. Hooks: tp_btf block_rq_issue, block_rq_complete. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "latscope.bpf.h"
#include "hist.bpf.h"
#include "block.h"

char LICENSE[] SEC("license") = "GPL";

#define REQ_OP_MASK 0xff
#define REQ_OP_READ 0

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* the request's address */
	__type(value, __u64);
} issued SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct blk_key);
	__type(value, struct hist);
} lat SEC(".maps");

static struct hist zero_hist;

SEC("tp_btf/block_rq_issue")
int BPF_PROG(ls_blk_issue, struct request *rq)
{
	__u64 k = (__u64)rq, now = bpf_ktime_get_ns();
	bpf_map_update_elem(&issued, &k, &now, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(ls_blk_complete, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	__u64 k = (__u64)rq;
	__u64 *t0 = bpf_map_lookup_elem(&issued, &k);
	if (!t0)
		return 0;
	__u64 d = bpf_ktime_get_ns() - *t0;
	bpf_map_delete_elem(&issued, &k);
	struct gendisk *disk = rq->q->disk;
	struct blk_key bk = { .write = (rq->cmd_flags & REQ_OP_MASK) != REQ_OP_READ };
	if (disk)
		bk.dev = (disk->major << 20) | disk->first_minor;
	struct hist *h = bpf_map_lookup_elem(&lat, &bk);
	if (!h) {
		bpf_map_update_elem(&lat, &bk, &zero_hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&lat, &bk);
		if (!h)
			return 0;
	}
	hist_add_shared(h, d);
	return 0;
}
