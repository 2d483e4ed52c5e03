/* hvm_start_info and the command line: the start info, its memory map and its command line are
 * copied out of guest memory once, bounds-checked against the identity map and RAM, and parsed
 * from the copies only. */
#include "kernel.h"

#define START_INFO_MAPPED_TOP (4ull << 30) /* the identity map ends at 4 GiB */
#define START_INFO_V0_SIZE 40		   /* fields before memmap_paddr */

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info is 56 bytes");
_Static_assert(offsetof(struct hvm_start_info, memmap_paddr) == START_INFO_V0_SIZE, "v1 fields");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "memmap entry is 24 bytes");

/* A physical range we may read through the identity map: above page 0, below 4 GiB and, once
 * the memory map is known, inside RAM. */
static bool start_info_range_ok(const struct kernel *k, uint64_t pa, uint64_t len)
{
	uint64_t top = k->ram_top ? k->ram_top : START_INFO_MAPPED_TOP;

	if (pa < GUEST_PAGE_SIZE || len > top)
		return false;
	return pa <= top - len;
}

static int start_info_load_memmap(struct kernel *k)
{
	uint64_t n = k->si.memmap_entries;

	k->memmap_nr = 0;
	if (k->si.version < 1 || n == 0 || k->si.memmap_paddr == 0)
		return 0;
	if (n > KERNEL_MEMMAP_MAX)
		n = KERNEL_MEMMAP_MAX; /* keep the first ones; the rest are not needed to boot */
	if (!start_info_range_ok(k, k->si.memmap_paddr, n * sizeof(k->memmap[0])))
		return -XEN_EFAULT;
	memcpy(k->memmap, (const void *)(uintptr_t)k->si.memmap_paddr, n * sizeof(k->memmap[0]));
	k->memmap_nr = (unsigned int)n;
	for (unsigned int i = 0; i < k->memmap_nr; i++) {
		const struct hvm_memmap_table_entry *e = &k->memmap[i];

		if (e->size == 0)
			continue;
		if (e->addr > UINT64_MAX - e->size)
			return -XEN_EINVAL;
		if (e->addr + e->size > k->map_top)
			k->map_top = e->addr + e->size;
		if (e->type != XEN_HVM_MEMMAP_TYPE_RAM)
			continue;
		k->ram_bytes += e->size;
		uint64_t end = e->addr + e->size;
		/* Only the mapped part can be read through the identity map. */
		if (end > START_INFO_MAPPED_TOP)
			end = START_INFO_MAPPED_TOP;
		if (end > k->ram_top)
			k->ram_top = end;
	}
	return 0;
}

static int start_info_load_cmdline(struct kernel *k)
{
	uint64_t pa = k->si.cmdline_paddr;
	uint64_t top = k->ram_top ? k->ram_top : START_INFO_MAPPED_TOP;

	k->cmdline[0] = '\0';
	if (pa == 0)
		return 0;
	if (!start_info_range_ok(k, pa, 1))
		return -XEN_EFAULT;
	uint64_t avail = top - pa;
	size_t max = sizeof(k->cmdline) - 1;
	if (avail < max)
		max = (size_t)avail;
	const char *src = (const char *)(uintptr_t)pa;
	size_t n = 0;
	while (n < max && src[n])
		n++;
	memcpy(k->cmdline, src, n);
	k->cmdline[n] = '\0';
	return 0;
}

int start_info_load(struct kernel *k, uint64_t pa)
{
	int rc;

	k->ram_bytes = 0;
	k->ram_top = 0;
	k->map_top = 0;
	if (!start_info_range_ok(k, pa, sizeof(k->si)))
		return -XEN_EFAULT;
	memcpy(&k->si, (const void *)(uintptr_t)pa, sizeof(k->si));
	if (k->si.magic != XEN_HVM_START_MAGIC_VALUE)
		return -XEN_EINVAL;
	if (k->si.version < 1) {
		k->si.memmap_paddr = 0;
		k->si.memmap_entries = 0;
	}
	rc = start_info_load_memmap(k);
	if (rc < 0)
		return rc;
	return start_info_load_cmdline(k);
}

/* Finds token `key` or `key=...` in the command line; returns the token start or NULL. */
static const char *cmdline_find(const char *s, const char *key, size_t *tok_len)
{
	size_t klen = strlen(key);

	while (*s) {
		while (*s == ' ' || *s == '\t')
			s++;
		const char *tok = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
		size_t len = (size_t)(s - tok);
		if (len >= klen && strncmp(tok, key, klen) == 0 && (len == klen || tok[klen] == '=')) {
			*tok_len = len;
			return tok;
		}
	}
	return NULL;
}

bool kernel_cmdline_has(const struct kernel *k, const char *flag)
{
	size_t len;
	const char *tok = cmdline_find(k->cmdline, flag, &len);

	return tok && len == strlen(flag);
}

int kernel_cmdline_get(const struct kernel *k, const char *key, char *out, size_t size)
{
	size_t len, klen = strlen(key);
	const char *tok = cmdline_find(k->cmdline, key, &len);

	if (!tok || len == klen)
		return -XEN_ENOENT;
	size_t vlen = len - klen - 1;
	if (size == 0 || vlen >= size)
		return -XEN_ENOSPC;
	memcpy(out, tok + klen + 1, vlen);
	out[vlen] = '\0';
	return 0;
}

uint64_t kernel_cmdline_u64(const struct kernel *k, const char *key, uint64_t dflt)
{
	char buf[KERNEL_ARG_MAX];
	uint64_t v;

	if (kernel_cmdline_get(k, key, buf, sizeof(buf)) < 0 || lib_parse_u64(buf, &v) < 0)
		return dflt;
	return v;
}
