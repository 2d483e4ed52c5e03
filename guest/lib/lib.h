/* The guest kernel's freestanding C library: memory and string helpers, number parsing, a
 * heap sort for measurements and printf-style formatting into bounded buffers. */
#ifndef GUEST_LIB_H
#define GUEST_LIB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIB_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t lib_strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
const char *lib_strstr(const char *hay, const char *needle);

/* Parse a decimal or 0x-prefixed unsigned number filling the whole string; 0 or -XEN_EINVAL. */
int lib_parse_u64(const char *s, uint64_t *out);

/* Sort in place, ascending; O(n log n), no recursion (the ring-0 mode runs this emulated). */
void lib_sort_u64(uint64_t *a, size_t n);

/* xorshift64* state: deterministic pseudo-random numbers for seeded tests. */
struct lib_rng {
	uint64_t s;
};
void lib_rng_seed(struct lib_rng *r, uint64_t seed);
uint64_t lib_rng_next(struct lib_rng *r);

/* %d %i %u %x %X %o %c %s %p %%, with flags '-' '0', a width, and the l / ll / z length modifiers.
 * Always NUL-terminates (when size > 0); returns the length the full output would have. */
/* "EINVAL" for -22 (Xen's errno values), NULL when the value has no name. */
const char *lib_errno_name(long err);

int lib_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int lib_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
