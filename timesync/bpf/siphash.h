/* SipHash-2-4 (Aumasson and Bernstein) over whole 64-bit words, for the time-sync MACs: short
 * fixed messages, a 128-bit key, a handful of instructions per round, so it fits in XDP.
 * protocol/siphash.ts is the same function for any length; a test checks both against OpenSSL's.
 * Words are the message's bytes read little-endian, as SipHash defines them. */
#ifndef LATSCOPE_SIPHASH_H
#define LATSCOPE_SIPHASH_H

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "siphash.h reads message words in host order: a big-endian target needs byte swaps here"
#endif

#define SIP_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND                                                                   \
	do {                                                                        \
		v0 += v1; v1 = SIP_ROTL(v1, 13); v1 ^= v0; v0 = SIP_ROTL(v0, 32); \
		v2 += v3; v3 = SIP_ROTL(v3, 16); v3 ^= v2;                         \
		v0 += v3; v3 = SIP_ROTL(v3, 21); v3 ^= v0;                         \
		v2 += v1; v1 = SIP_ROTL(v1, 17); v1 ^= v2; v2 = SIP_ROTL(v2, 32); \
	} while (0)

/* The state, for a MAC taken in steps: a responder absorbs the words it knows before it takes
 * its transmit time, so only the last word and the finalisation run after it. */
struct sip_state {
	__u64 v0, v1, v2, v3;
};

static __always_inline void sip_init(struct sip_state *s, __u64 k0, __u64 k1)
{
	s->v0 = k0 ^ 0x736f6d6570736575ULL;
	s->v1 = k1 ^ 0x646f72616e646f6dULL;
	s->v2 = k0 ^ 0x6c7967656e657261ULL;
	s->v3 = k1 ^ 0x7465646279746573ULL;
}

static __always_inline void sip_word(struct sip_state *s, __u64 m)
{
	__u64 v0 = s->v0, v1 = s->v1, v2 = s->v2, v3 = s->v3;
	v3 ^= m;
	SIP_ROUND;
	SIP_ROUND;
	v0 ^= m;
	s->v0 = v0, s->v1 = v1, s->v2 = v2, s->v3 = v3;
}

/* The MAC, after n words (no bytes left over). */
static __always_inline __u64 sip_final(struct sip_state *s, const int n)
{
	__u64 b = (__u64)(n * 8) << 56;
	sip_word(s, b);
	__u64 v0 = s->v0, v1 = s->v1, v2 = s->v2 ^ 0xff, v3 = s->v3;
	SIP_ROUND;
	SIP_ROUND;
	SIP_ROUND;
	SIP_ROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The MAC of n words (n a compile-time constant: the loop unrolls). */
static __always_inline __u64 siphash24(const __u64 *w, const int n, __u64 k0, __u64 k1)
{
	struct sip_state s;
	sip_init(&s, k0, k1);
#pragma unroll
	for (int i = 0; i < n; i++)
		sip_word(&s, w[i]);
	return sip_final(&s, n);
}

#endif
