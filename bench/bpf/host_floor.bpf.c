// SPDX-License-Identifier: GPL-2.0
/*
 * The floor of bench/host-overhead: empty programs on exactly the host modules' hooks
 * (the NAME.bpf.c files of host/bpf). What entering the hooks costs the workload before any program does any
 * work; no in-kernel aggregation can go below it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define EMPTY(hook, name) SEC("tp_btf/" #hook) int BPF_PROG(name) { return 0; }

EMPTY(sched_wakeup, floor_sched_wakeup)
EMPTY(sched_wakeup_new, floor_sched_wakeup_new)
EMPTY(sched_switch, floor_sched_switch)
EMPTY(sched_migrate_task, floor_sched_migrate)
EMPTY(irq_handler_entry, floor_irq_entry)
EMPTY(irq_handler_exit, floor_irq_exit)
EMPTY(softirq_entry, floor_softirq_entry)
EMPTY(softirq_exit, floor_softirq_exit)
EMPTY(page_fault_user, floor_fault_user)
EMPTY(page_fault_kernel, floor_fault_kernel)
EMPTY(tlb_flush, floor_tlb_flush)
EMPTY(mm_compaction_begin, floor_compaction_begin)
EMPTY(mm_compaction_end, floor_compaction_end)
EMPTY(mm_vmscan_direct_reclaim_begin, floor_reclaim_begin)
EMPTY(mm_vmscan_direct_reclaim_end, floor_reclaim_end)
EMPTY(sys_enter, floor_sys_enter)
EMPTY(sys_exit, floor_sys_exit)
EMPTY(block_rq_issue, floor_blk_issue)
EMPTY(block_rq_complete, floor_blk_complete)
