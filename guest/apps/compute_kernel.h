/* The compute loop the benchmark runs in the guest and, compiled from this same header, in a
 * host process: pure integer work (xorshift + multiply mixing), freestanding (stdint.h only). */
#ifndef LAMINA_COMPUTE_KERNEL_H
#define LAMINA_COMPUTE_KERNEL_H

#include <stdint.h>

/* Each iteration depends on the previous one, so neither compiler nor CPU can skip or
 * vectorise it: the time is ~iters x (a few cycles) on any x86-64. */
static inline uint64_t compute_kernel(uint64_t iters)
{
	uint64_t x = 0x9e3779b97f4a7c15ull, acc = 0;

	for (uint64_t i = 0; i < iters; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		acc += x * 0xff51afd7ed558ccdull;
		acc ^= acc >> 29;
	}
	return acc ^ x;
}

#endif
