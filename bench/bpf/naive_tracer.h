/* The naive tracer's event (bench/bpf/naive_tracer.bpf.c): one per hook run, 32 bytes + header. */
#ifndef NAIVE_TRACER_H
#define NAIVE_TRACER_H

enum naive_hook { NH_SYS_SEND, NH_TCP_SEND, NH_IP_OUT, NH_DEV_OUT, NH_DEV_IN, NH_IP_IN, NH_TCP_RECV, NH_SOCK_RECV };

struct naive_event {
	__u64 ts_ns;
	__u64 obj;
	__u64 pid_tgid;
	__u32 hook;
	__u32 len;
	__u32 cpu;
	__u32 pad[7];
};

#endif
