/* Guest RAM: a memfd mapped shared into the daemon (the KVM slot maps the same pages), plus the
 * table of hypervisor pages placed at guest frames outside RAM. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest_mem.h"

/* Highest guest frame an extra page may sit at: 2^40 bytes of guest-physical space. */
#define GMEM_MAX_GFN ((1ull << 40) / GMEM_PAGE_SIZE)

int gmem_init(struct guest_mem *m, const char *name, uint64_t ram_size)
{
	char label[80];
	int err;

	memset(m, 0, sizeof(*m));
	m->memfd = -1;
	if (ram_size == 0 || ram_size % GMEM_PAGE_SIZE)
		return -EINVAL;
	if (ram_size > (uint64_t)SIZE_MAX / 2)
		return -E2BIG;
	snprintf(label, sizeof(label), "lamina-ram:%s", name ? name : "");
	m->memfd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (m->memfd < 0)
		return -errno;
	/* Sealed at its size: Domain-0 clients get descriptors of it (grant maps), and one that could
	 * shrink it would make the daemon's next access to guest RAM fault. */
	if (ftruncate(m->memfd, (off_t)ram_size) < 0 ||
	    fcntl(m->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		err = -errno;
		goto out_close;
	}
	m->ram =
	    mmap(NULL, (size_t)ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, m->memfd, 0);
	if (m->ram == MAP_FAILED) {
		err = -errno;
		m->ram = NULL;
		goto out_close;
	}
	m->ram_size = ram_size;
	return 0;

out_close:
	close(m->memfd);
	m->memfd = -1;
	return err;
}

void gmem_fini(struct guest_mem *m)
{
	if (m->ram)
		munmap(m->ram, (size_t)m->ram_size);
	if (m->memfd >= 0)
		close(m->memfd);
	m->ram = NULL;
	m->memfd = -1;
	m->ram_size = 0;
	m->nr_extra = 0;
}

/* Places page at gfn. A page already placed elsewhere moves (Xen lets a guest re-place shared_info);
 * a frame inside RAM or held by another page is refused. */
int gmem_add_extra(struct guest_mem *m, uint64_t gfn, void *page)
{
	unsigned i;

	if (!page || ((uintptr_t)page & (GMEM_PAGE_SIZE - 1)))
		return -EINVAL;
	if (gfn >= GMEM_MAX_GFN || gfn < m->ram_size / GMEM_PAGE_SIZE)
		return -EINVAL;
	for (i = 0; i < m->nr_extra; i++)
		if (m->extra[i].gfn == gfn && m->extra[i].page != page)
			return -EBUSY;
	for (i = 0; i < m->nr_extra; i++) {
		if (m->extra[i].page == page) {
			m->extra[i].gfn = gfn;
			return 0;
		}
	}
	if (m->nr_extra >= GMEM_MAX_EXTRA)
		return -ENOSPC;
	m->extra[m->nr_extra].gfn = gfn;
	m->extra[m->nr_extra].page = page;
	m->nr_extra++;
	return 0;
}

void *gmem_gpa_ptr(struct guest_mem *m, uint64_t gpa, size_t len)
{
	uint64_t gfn, off;
	unsigned i;

	if (len == 0)
		len = 1;
	if (m->ram && gpa < m->ram_size && len <= m->ram_size - gpa)
		return m->ram + gpa;
	gfn = gpa / GMEM_PAGE_SIZE;
	off = gpa % GMEM_PAGE_SIZE;
	if (len > GMEM_PAGE_SIZE - off)
		return NULL;
	for (i = 0; i < m->nr_extra && i < GMEM_MAX_EXTRA; i++)
		if (m->extra[i].gfn == gfn)
			return (uint8_t *)m->extra[i].page + off;
	return NULL;
}
