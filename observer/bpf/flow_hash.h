/* The flow table's hash and key comparison, for 40-byte flow keys (ten u32 words, 8-byte
 * aligned in the table): latency.bpf.c's sets, and bench/bpf/hook_parts.bpf.c's measurement
 * of them. test/latency.test.ts computes the same hash to make flows that share a set. */
#ifndef LATSCOPE_FLOW_HASH_H
#define LATSCOPE_FLOW_HASH_H

static __always_inline __u32 flow_hash(const void *key)
{
	const __u32 *w = key;
	__u32 h = (w[0] ^ w[1] ^ w[2] ^ w[3]) * 0x9e3779b1u; /* source address */
	h ^= (w[4] ^ w[5] ^ w[6] ^ w[7]) * 0x85ebca77u;     /* destination address */
	h ^= w[8] * 0xc2b2ae3du ^ w[9];                      /* ports; family, direction */
	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	h ^= h >> 12;
	return h;
}

static __always_inline int flow_key_eq(const void *a, const void *b)
{
	const __u64 *x = a, *y = b;
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

#endif
