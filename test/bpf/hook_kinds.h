/* Contract between hook_kinds.bpf.c and the addon's kernel tests: one counter per program
 * type, bumped when that program sees traffic of the watched netns and port. */
#ifndef HOOK_KINDS_H
#define HOOK_KINDS_H

enum hook_kind {
	HK_TRACEPOINT = 0,
	HK_RAW_TP = 1,
	HK_TP_BTF = 2,
	HK_XDP = 3,
	HK_TC_INGRESS = 4,
	HK_TC_EGRESS = 5,
	HK_CGROUP_INGRESS = 6,
	HK_CGROUP_EGRESS = 7,
	HK_SOCKOPS = 8,
	HK_MAX = 16,
};

#endif
