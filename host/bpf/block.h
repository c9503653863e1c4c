/* The block I/O module's contract with user space (host/block.ts). */
#ifndef LATSCOPE_BLOCK_H
#define LATSCOPE_BLOCK_H

#include "hist.h"

/* per device (dev_t as the kernel encodes it: major << 20 | minor) */
struct blk_key {
	__u32 dev;
	__u32 write; /* 0 read, 1 write or flush */
};

#endif
