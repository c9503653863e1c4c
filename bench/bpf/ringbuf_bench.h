/* Contract between ringbuf_bench.bpf.c and bench/ringbuf.ts: one 64-byte record. */
#ifndef RINGBUF_BENCH_H
#define RINGBUF_BENCH_H

struct bench_record {
	__u64 seq;
	__u64 ts_ns;
	__u8 pad[48];
};

enum bench_stat { BS_PRODUCED = 0, BS_DROPPED = 1, BS_MAX = 2 };

#endif
