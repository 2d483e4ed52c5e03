/* The fuzz targets' input: bytes taken in order, little-endian, zeros once the input runs out (so
 * every prefix of an input is an input too). */
#ifndef LAMINA_FUZZ_INPUT_H
#define LAMINA_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct fz_in {
	const uint8_t *d;
	size_t n, i;
};

static inline unsigned fz_u8(struct fz_in *in)
{
	return in->i < in->n ? in->d[in->i++] : 0;
}

static inline unsigned fz_u16(struct fz_in *in)
{
	unsigned lo = fz_u8(in);

	return lo | fz_u8(in) << 8;
}

static inline uint32_t fz_u32(struct fz_in *in)
{
	uint32_t lo = fz_u16(in);

	return lo | (uint32_t)fz_u16(in) << 16;
}

#endif
