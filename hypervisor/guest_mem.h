/* Guest memory: the RAM memfd mapped into the daemon, extra hypervisor pages placed at guest
 * frames, and bounds-checked access by guest-physical or guest-virtual (page-table walk) address. */
#ifndef LAMINA_HV_GUEST_MEM_H
#define LAMINA_HV_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vcpu;

#define GMEM_PAGE_SIZE 4096ull
/* Hypervisor pages a domain may place outside RAM: the special pages, shared_info and up to 64
 * grant frames (GNT_LIMIT_FRAMES), with room to spare; grant_table.c asserts they all fit. */
#define GMEM_MAX_EXTRA 72

/* A hypervisor-owned page placed at a guest frame outside RAM (shared_info, later grant frames). */
struct gmem_extra {
	uint64_t gfn;
	void *page;
};

struct guest_mem {
	int memfd;       /* backs RAM; -1 when none */
	uint8_t *ram;    /* daemon's mapping of RAM, guest-physical 0 .. ram_size */
	uint64_t ram_size;
	struct gmem_extra extra[GMEM_MAX_EXTRA];
	unsigned nr_extra;
};

/* RAM: memfd of ram_size bytes (page multiple), mapped shared. */
int gmem_init(struct guest_mem *m, const char *name, uint64_t ram_size);
void gmem_fini(struct guest_mem *m);
int gmem_add_extra(struct guest_mem *m, uint64_t gfn, void *page);

/* Host pointer to [gpa, gpa+len) if it lies wholly inside RAM or inside one extra page; NULL if
 * not. Never crosses from RAM into anything else. */
void *gmem_gpa_ptr(struct guest_mem *m, uint64_t gpa, size_t len);

/* Translate a guest-virtual address with v's paging state at the current exit (no paging:
 * identity; 4-level long mode with 1 GiB/2 MiB/4 KiB pages; PAE for 32-bit). Checks present,
 * user (when CPL 3) and write (when writing and CPL 3 or CR0.WP). -EFAULT on any failure. */
int gmem_translate(const struct vcpu *v, uint64_t gva, bool write, uint64_t *gpa);

/* Copy between the daemon and guest-virtual memory page by page; -EFAULT if any byte is
 * unreachable (nothing is copied to the guest in that case unless noted by the caller). */
int gmem_copy_from_guest(const struct vcpu *v, void *dst, uint64_t gva, size_t len);
int gmem_copy_to_guest(const struct vcpu *v, uint64_t gva, const void *src, size_t len);

#endif
