/* Grant mapping for lamina-blkback through lamina-hv's Domain-0 grant interface: each mapped grant
 * is one page of the granting domain's RAM descriptor, mmap'd at the offset the reply names. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "blkd.h"
#include "ctl_grant_client.h"

#define BLKD_GNT_MAX (BLK_MAX_INDIRECT_SEGS + BLK_MAX_INDIRECT_PAGES)

/* Map refs; out[i] statuses. Asks for descriptors only when the one needed is not kept yet. */
static int blkd_gnt_map_raw(struct blkd_gnt *g, uint32_t domid, const grant_ref_t *refs, unsigned n, int writable,
			    struct lamina_ctl_gnt_mapped *out)
{
	struct lamina_ctl_gnt_map_ent ents[BLKD_GNT_MAX];
	int fds[2] = { -1, -1 }, rc, keep = g->fd[writable ? 1 : 0] >= 0;

	if (n == 0 || n > BLKD_GNT_MAX || n > LAMINA_GNT_BATCH)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		ents[i].ref = refs[i];
		ents[i].flags = writable ? 0 : LAMINA_GNT_READONLY;
	}
	rc = ctl_gnt_map(g->conn, domid, ents, n, keep ? LAMINA_GNT_MAP_NOFD : 0, out, fds);
	if (rc < 0)
		return rc;
	for (int k = 0; k < 2; k++) {
		if (fds[k] >= 0 && g->fd[k] < 0)
			g->fd[k] = fds[k];
		else if (fds[k] >= 0)
			close(fds[k]);
	}
	return 0;
}

static int blkd_gnt_map(void *ctx, uint32_t domid, const grant_ref_t *refs, unsigned n, int writable, void **pages,
			uint32_t *handles)
{
	struct lamina_ctl_gnt_mapped out[BLKD_GNT_MAX];
	struct blkd_gnt *g = ctx;
	int fd, rc;

	rc = blkd_gnt_map_raw(g, domid, refs, n, writable, out);
	if (rc < 0)
		return rc;
	fd = g->fd[writable ? 1 : 0];
	for (unsigned i = 0; i < n; i++) {
		pages[i] = NULL;
		handles[i] = out[i].handle;
		if (out[i].status != GNTST_okay)
			continue;
		if (fd >= 0)
			pages[i] = ctl_gnt_mmap_page(fd, out[i].offset, writable);
		if (!pages[i])
			ctl_gnt_unmap(g->conn, &out[i].handle, 1, NULL);
	}
	return 0;
}

static void blkd_gnt_unmap(void *ctx, void *const *pages, const uint32_t *handles, unsigned n)
{
	struct blkd_gnt *g = ctx;

	for (unsigned i = 0; i < n; i++)
		munmap(pages[i], LAMINA_RING_PAGE_SIZE);
	/* With the connection gone the daemon's mappings die with lamina-hv's side anyway. */
	if (g->conn && g->conn->fd >= 0 && n)
		ctl_gnt_unmap(g->conn, handles, n, NULL);
}

static void blkd_gnt_notify(void *ctx)
{
	struct blkd_gnt *g = ctx;

	ctl_evtchn_notify(g->ch);
}

const struct blk_grant_ops blkd_gnt_ops = { blkd_gnt_map, blkd_gnt_unmap, blkd_gnt_notify };

void blkd_gnt_release(struct blkd_gnt *g)
{
	for (int k = 0; k < 2; k++) {
		if (g->fd[k] >= 0)
			close(g->fd[k]);
		g->fd[k] = -1;
	}
}

int blkd_ring_map(struct blkd_gnt *g, uint32_t domid, const grant_ref_t *refs, unsigned n, void **addr,
		  uint32_t *handles)
{
	struct lamina_ctl_gnt_mapped out[1u << LAMINA_RING_MAX_ORDER];
	size_t len = (size_t)n * LAMINA_RING_PAGE_SIZE;
	unsigned i, ok = 0;
	char *base;
	int rc;

	if (n == 0 || n > (1u << LAMINA_RING_MAX_ORDER))
		return -EINVAL;
	rc = blkd_gnt_map_raw(g, domid, refs, n, 1, out);
	if (rc < 0)
		return rc;
	for (i = 0; i < n; i++) {
		handles[i] = out[i].handle;
		ok += out[i].status == GNTST_okay;
	}
	rc = -EFAULT;
	if (ok != n || g->fd[1] < 0)
		goto out_unmap;
	/* Reserve the range, then place each page in it: the ring must be virtually contiguous. */
	base = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto out_unmap;
	}
	for (i = 0; i < n; i++) {
		if (mmap(base + (size_t)i * LAMINA_RING_PAGE_SIZE, LAMINA_RING_PAGE_SIZE, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, g->fd[1], (off_t)out[i].offset) == MAP_FAILED) {
			rc = -errno;
			munmap(base, len);
			goto out_unmap;
		}
	}
	*addr = base;
	return 0;

out_unmap:
	for (i = 0; i < n; i++)
		if (out[i].status == GNTST_okay)
			ctl_gnt_unmap(g->conn, &out[i].handle, 1, NULL);
	return rc;
}

void blkd_ring_unmap(struct blkd_gnt *g, void *addr, const uint32_t *handles, unsigned n)
{
	if (!addr)
		return;
	munmap(addr, (size_t)n * LAMINA_RING_PAGE_SIZE);
	if (g->conn && g->conn->fd >= 0)
		ctl_gnt_unmap(g->conn, handles, n, NULL);
}
