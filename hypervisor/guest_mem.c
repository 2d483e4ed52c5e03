/* Guest-virtual access for hypercalls: a walk of the calling vCPU's page tables as the hardware
 * would do it at the current exit, and page-by-page copies through it. The guest owns its page
 * tables and may change them on another vCPU while we walk, so each entry is read exactly once. */
#include <errno.h>
#include <string.h>

#include "domain.h"
#include "guest_mem.h"

#define GMEM_CR0_WP (1ull << 16)
#define GMEM_CR0_PG (1ull << 31)
#define GMEM_CR4_PSE (1ull << 4)
#define GMEM_CR4_PAE (1ull << 5)
#define GMEM_CR4_LA57 (1ull << 12)
#define GMEM_EFER_LMA (1ull << 10)
#define GMEM_EFER_NXE (1ull << 11)

#define GMEM_PTE_P (1ull << 0)
#define GMEM_PTE_W (1ull << 1)
#define GMEM_PTE_U (1ull << 2)
#define GMEM_PTE_PS (1ull << 7)
#define GMEM_PTE_NX (1ull << 63)
/* Physical-address bits of a 64-bit entry (MAXPHYADDR 52); a frame beyond RAM fails later anyway. */
#define GMEM_PTE_ADDR 0x000ffffffffff000ull
/* PDPTE bits the processor reserves in PAE mode: 1, 2, 5-8 (and 63, checked separately). */
#define GMEM_PDPTE_RSVD 0x1e6ull

#define GMEM_4G (1ull << 32)

/* The rights accumulated over a walk: what the final mapping allows. */
struct gmem_walk {
	uint64_t frame;	 /* guest-physical base of the mapped page of any size */
	uint64_t offset; /* gva's offset inside that page */
	bool user, writable;
};

/* One page-table entry, read once. Page-table pages must be guest RAM, never a hypervisor page. */
static int gmem_read_entry(struct guest_mem *m, uint64_t gpa, unsigned size, uint64_t *entry)
{
	void *p;

	if (gpa >= m->ram_size || m->ram_size - gpa < size)
		return -EFAULT;
	p = gmem_gpa_ptr(m, gpa, size);
	if (!p)
		return -EFAULT;
	if (size == 8)
		*entry = __atomic_load_n((uint64_t *)p, __ATOMIC_RELAXED);
	else
		*entry = __atomic_load_n((uint32_t *)p, __ATOMIC_RELAXED);
	return 0;
}

/* A leaf at level (1: 4K, 2: 2M, 3: 1G): bits between 12 and the page size must be clear. */
static int gmem_leaf(struct gmem_walk *w, uint64_t pte, unsigned level, uint64_t gva)
{
	unsigned shift = 12 + 9 * (level - 1);
	uint64_t page_mask = (1ull << shift) - 1;

	if (level > 1 && (pte & GMEM_PTE_ADDR & page_mask & ~0xfffull & ~(1ull << 12)) != 0)
		return -EFAULT; /* reserved bits of a large-page entry (bit 12 is PAT) */
	w->frame = pte & GMEM_PTE_ADDR & ~page_mask;
	w->offset = gva & page_mask;
	return 0;
}

/* 4- or 5-level long-mode paging, also the PD/PT part of PAE paging (levels = 2, table given). */
static int gmem_walk_64(struct guest_mem *m, uint64_t table, unsigned levels, uint64_t gva, uint64_t nx_rsvd,
			struct gmem_walk *w)
{
	for (unsigned level = levels; level >= 1; level--) {
		unsigned idx = (gva >> (12 + 9 * (level - 1))) & 511;
		uint64_t pte;
		int rc = gmem_read_entry(m, table + idx * 8ull, 8, &pte);

		if (rc)
			return rc;
		if (!(pte & GMEM_PTE_P) || (pte & nx_rsvd))
			return -EFAULT;
		w->user = w->user && (pte & GMEM_PTE_U);
		w->writable = w->writable && (pte & GMEM_PTE_W);
		if (level == 1)
			return gmem_leaf(w, pte, 1, gva);
		if (pte & GMEM_PTE_PS) {
			if (level > 3)
				return -EFAULT; /* PS is reserved in PML4E/PML5E */
			return gmem_leaf(w, pte, level, gva);
		}
		table = pte & GMEM_PTE_ADDR;
	}
	return -EFAULT;
}

static int gmem_walk_long(const struct vcpu_sysregs *s, struct guest_mem *m, uint64_t gva,
			  struct gmem_walk *w)
{
	unsigned levels = (s->cr4 & GMEM_CR4_LA57) ? 5 : 4;
	unsigned va_bits = 12 + 9 * levels;
	int64_t sext = (int64_t)(gva << (64 - va_bits)) >> (64 - va_bits);
	uint64_t nx_rsvd = (s->efer & GMEM_EFER_NXE) ? 0 : GMEM_PTE_NX;

	if ((uint64_t)sext != gva)
		return -EFAULT; /* non-canonical */
	return gmem_walk_64(m, s->cr3 & GMEM_PTE_ADDR, levels, gva, nx_rsvd, w);
}

static int gmem_walk_pae(const struct vcpu_sysregs *s, struct guest_mem *m, uint64_t gva, struct gmem_walk *w)
{
	uint64_t nx_rsvd = (s->efer & GMEM_EFER_NXE) ? 0 : GMEM_PTE_NX;
	uint64_t pdpte;
	int rc;

	if (gva >= GMEM_4G)
		return -EFAULT;
	rc = gmem_read_entry(m, (s->cr3 & 0xffffffe0ull) + (gva >> 30) * 8, 8, &pdpte);
	if (rc)
		return rc;
	if (!(pdpte & GMEM_PTE_P) || (pdpte & (GMEM_PDPTE_RSVD | GMEM_PTE_NX)))
		return -EFAULT;
	return gmem_walk_64(m, pdpte & GMEM_PTE_ADDR, 2, gva, nx_rsvd, w);
}

/* Legacy 32-bit paging: 4-byte entries, 4 MiB pages with PSE (PSE-36 high bits in 20:13). */
static int gmem_walk_32(const struct vcpu_sysregs *s, struct guest_mem *m, uint64_t gva, struct gmem_walk *w)
{
	uint64_t pde, pte;
	int rc;

	if (gva >= GMEM_4G)
		return -EFAULT;
	rc = gmem_read_entry(m, (s->cr3 & 0xfffff000ull) + (gva >> 22) * 4, 4, &pde);
	if (rc)
		return rc;
	if (!(pde & GMEM_PTE_P))
		return -EFAULT;
	w->user = w->user && (pde & GMEM_PTE_U);
	w->writable = w->writable && (pde & GMEM_PTE_W);
	if ((pde & GMEM_PTE_PS) && (s->cr4 & GMEM_CR4_PSE)) {
		if (pde & (1ull << 21))
			return -EFAULT;
		w->frame = (pde & 0xffc00000ull) | (((pde >> 13) & 0xff) << 32);
		w->offset = gva & 0x3fffff;
		return 0;
	}
	rc = gmem_read_entry(m, (pde & 0xfffff000ull) + ((gva >> 12) & 1023) * 4, 4, &pte);
	if (rc)
		return rc;
	if (!(pte & GMEM_PTE_P))
		return -EFAULT;
	w->user = w->user && (pte & GMEM_PTE_U);
	w->writable = w->writable && (pte & GMEM_PTE_W);
	w->frame = pte & 0xfffff000ull;
	w->offset = gva & 0xfff;
	return 0;
}

int gmem_translate(const struct vcpu *v, uint64_t gva, bool write, uint64_t *gpa)
{
	const struct vcpu_sysregs *s = &v->sys;
	struct guest_mem *m = &v->d->mem;
	struct gmem_walk w = {.user = true, .writable = true};
	int rc;

	if (!(s->cr0 & GMEM_CR0_PG)) {
		if (gva >= GMEM_4G)
			return -EFAULT; /* linear addresses are 32 bits without paging */
		*gpa = gva;
		return 0;
	}
	if (s->efer & GMEM_EFER_LMA)
		rc = gmem_walk_long(s, m, gva, &w);
	else if (s->cr4 & GMEM_CR4_PAE)
		rc = gmem_walk_pae(s, m, gva, &w);
	else
		rc = gmem_walk_32(s, m, gva, &w);
	if (rc)
		return rc;
	if (s->cpl == 3 && !w.user)
		return -EFAULT;
	if (write && !w.writable && (s->cpl == 3 || (s->cr0 & GMEM_CR0_WP)))
		return -EFAULT;
	*gpa = w.frame + w.offset;
	return 0;
}

/* [gva, gva+len) must not wrap around the address space. */
static int gmem_range_ok(uint64_t gva, size_t len)
{
	return len == 0 || (uint64_t)len - 1 <= UINT64_MAX - gva;
}

/* Host pointer for the part of [gva, gva+len) that lies in gva's page; sets *chunk. */
static void *gmem_page_ptr(const struct vcpu *v, uint64_t gva, size_t len, bool write, size_t *chunk)
{
	uint64_t room = GMEM_PAGE_SIZE - (gva & (GMEM_PAGE_SIZE - 1));
	uint64_t gpa;

	*chunk = len < room ? len : (size_t)room;
	if (gmem_translate(v, gva, write, &gpa))
		return NULL;
	return gmem_gpa_ptr(&v->d->mem, gpa, *chunk);
}

int gmem_copy_from_guest(const struct vcpu *v, void *dst, uint64_t gva, size_t len)
{
	uint8_t *out = dst;

	if (!gmem_range_ok(gva, len))
		return -EFAULT;
	while (len) {
		size_t chunk;
		const void *p = gmem_page_ptr(v, gva, len, false, &chunk);

		if (!p)
			return -EFAULT;
		memcpy(out, p, chunk);
		out += chunk;
		gva += chunk;
		len -= chunk;
	}
	return 0;
}

/* Every page is checked before the first byte is written, so a bad buffer leaves the guest's
 * memory untouched (unless the guest rewrites its page tables during the copy). */
int gmem_copy_to_guest(const struct vcpu *v, uint64_t gva, const void *src, size_t len)
{
	const uint8_t *in = src;
	uint64_t a = gva;
	size_t left = len;

	if (!gmem_range_ok(gva, len))
		return -EFAULT;
	if (len && (gva & (GMEM_PAGE_SIZE - 1)) + len <= GMEM_PAGE_SIZE) {
		size_t chunk;
		void *p = gmem_page_ptr(v, gva, len, true, &chunk);

		if (!p)
			return -EFAULT;
		memcpy(p, src, len); /* one page: one walk */
		return 0;
	}
	while (left) {
		size_t chunk;

		if (!gmem_page_ptr(v, a, left, true, &chunk))
			return -EFAULT;
		a += chunk;
		left -= chunk;
	}
	while (len) {
		size_t chunk;
		void *p = gmem_page_ptr(v, gva, len, true, &chunk);

		if (!p)
			return -EFAULT;
		memcpy(p, in, chunk);
		in += chunk;
		gva += chunk;
		len -= chunk;
	}
	return 0;
}
