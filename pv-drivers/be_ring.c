/* Byte rings shared with a guest: indexes are free-running 32-bit counters, read once each, and
 * checked (prod - cons within the ring) before any byte moves. */
#include <errno.h>
#include <stdio.h>

#include "backend.h"

uint32_t be_ring_load(const volatile uint32_t *idx)
{
	return __atomic_load_n(idx, __ATOMIC_ACQUIRE);
}

void be_ring_store(volatile uint32_t *idx, uint32_t v)
{
	__atomic_store_n(idx, v, __ATOMIC_RELEASE);
}

int be_ring_check(uint32_t prod, uint32_t cons, uint32_t size, char *why, size_t whylen)
{
	uint32_t used = prod - cons;

	if (used <= size)
		return 0;
	if (why && whylen)
		snprintf(why, whylen, "producer %u is %u bytes ahead of consumer %u in a %u-byte ring", prod,
			 used, cons, size);
	return -EPROTO;
}

void be_ring_copy_out(const volatile char *ring, uint32_t size, uint32_t cons, void *dst, size_t len)
{
	char *d = dst;

	for (size_t i = 0; i < len; i++)
		d[i] = ring[(cons + (uint32_t)i) & (size - 1)];
}

void be_ring_copy_in(volatile char *ring, uint32_t size, uint32_t prod, const void *src, size_t len)
{
	const char *s = src;

	for (size_t i = 0; i < len; i++)
		ring[(prod + (uint32_t)i) & (size - 1)] = s[i];
}
