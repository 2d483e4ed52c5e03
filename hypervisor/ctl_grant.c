/* Domain-0's grant ops on the control socket: maps of granted pages (each one pinned and owned by
 * the connection), batched copies between grants and a sealed buffer memfd the daemon hands out,
 * the toolstack's foreign maps, limits and accounting. Replies with descriptors go by ctl_reply_fds. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ctl_server.h"
#include "gnt_ring.h"
#include "grant_table.h"
#include "hv.h"

#define CTL_GNT_DOM0 0 /* the domid grants name for Domain-0 back-ends */

/* One map a connection holds: a pin on (t, ref) and a reference on t. */
struct ctl_gnt_map {
	struct grant_table *t;
	uint32_t ref;
	bool ro, used;
	uint32_t next_free;
};

struct ctl_gnt_conn {
	struct ctl_conn *c;
	bool toolstack;
	struct ctl_gnt_map *maps;
	uint32_t nr, cap, used, free_head; /* free_head: UINT32_MAX when none */
	uint8_t *buf;
	uint64_t buf_size;
	struct gnt_ring *ring; /* LAMINA_CTL_GNT_RING, NULL when none */
	struct ctl_gnt_conn *next;
};

struct ctl_gnt {
	struct ctl_gnt_conn *conns;
};

static struct ctl_gnt_conn *ctl_gnt_conn_find(struct ctl_server *s, struct ctl_conn *c, bool create)
{
	struct ctl_gnt *g = s->gnt;
	struct ctl_gnt_conn *gc;

	for (gc = g ? g->conns : NULL; gc; gc = gc->next)
		if (gc->c == c)
			return gc;
	if (!create)
		return NULL;
	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g)
			return NULL;
		s->gnt = g;
	}
	gc = calloc(1, sizeof(*gc));
	if (!gc)
		return NULL;
	gc->c = c;
	gc->free_head = UINT32_MAX;
	gc->next = g->conns;
	g->conns = gc;
	return gc;
}

static void ctl_gnt_map_release(struct ctl_gnt_conn *gc, uint32_t h)
{
	struct ctl_gnt_map *m = &gc->maps[h];

	gnttab_unpin(m->t, m->ref, m->ro);
	m->t->nr_maps--;
	gnttab_put(m->t);
	m->used = false;
	m->t = NULL;
	m->next_free = gc->free_head;
	gc->free_head = h;
	gc->used--;
}

/* Called when a connection closes: every map it still holds is undone, the buffer unmapped. */
void ctl_grant_conn_closed(struct ctl_server *s, struct ctl_conn *c)
{
	struct ctl_gnt *g = s->gnt;
	struct ctl_gnt_conn **pp, *gc;

	if (!g)
		return;
	for (pp = &g->conns; (gc = *pp) && gc->c != c; pp = &gc->next)
		;
	if (!gc)
		return;
	*pp = gc->next;
	for (uint32_t h = 0; h < gc->nr; h++)
		if (gc->maps[h].used)
			ctl_gnt_map_release(gc, h);
	gnt_ring_destroy(gc->ring); /* joins its worker before anything it uses goes */
	if (gc->buf)
		munmap(gc->buf, gc->buf_size);
	free(gc->maps);
	free(gc);
	if (!g->conns) {
		free(g);
		s->gnt = NULL;
	}
}

/* A free handle, growing the table up to limit; UINT32_MAX when full. */
static uint32_t ctl_gnt_handle_alloc(struct ctl_gnt_conn *gc, uint32_t limit)
{
	uint32_t h;

	if (gc->free_head != UINT32_MAX) {
		h = gc->free_head;
		gc->free_head = gc->maps[h].next_free;
		return h;
	}
	if (gc->nr >= limit)
		return UINT32_MAX;
	if (gc->nr == gc->cap) {
		uint32_t cap = gc->cap ? gc->cap * 2 : 64;
		struct ctl_gnt_map *n = realloc(gc->maps, (size_t)cap * sizeof(*n));

		if (!n)
			return UINT32_MAX;
		gc->maps = n;
		gc->cap = cap;
	}
	return gc->nr++;
}

/* A descriptor of the domain's RAM memfd opened anew with the given access: a read-only one can
 * never be mapped writable. */
static int ctl_gnt_reopen(int memfd, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	return open(path, flags | O_CLOEXEC);
}

static struct grant_table *ctl_gnt_table(struct ctl_server *s, uint32_t domid)
{
	struct hv_domain *hd = domid == CTL_GNT_DOM0 ? NULL : hv_find_id(s->hv, domid);

	return hd ? hd->d.gnt : NULL;
}

int ctl_op_gnt_map(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h, const void *req,
		   void *out, size_t *out_len)
{
	struct lamina_ctl_gnt_map_reply *rep = out;
	struct lamina_ctl_gnt_map *r;
	struct ctl_gnt_conn *gc;
	struct grant_table *t;
	int fds[2] = {-1, -1}, rc;
	bool any_rw = false;
	unsigned nfds = 0;

	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	memcpy(r, req, sizeof(*r)); /* copied once: the request is a client's */
	rc = -EINVAL;
	if (r->count == 0 || r->count > LAMINA_GNT_BATCH || (r->flags & ~LAMINA_GNT_MAP_NOFD))
		goto out_free;
	rc = -ESRCH;
	if (!(t = ctl_gnt_table(s, r->domid)))
		goto out_free;
	rc = -ENOMEM;
	if (!(gc = ctl_gnt_conn_find(s, c, true)))
		goto out_free;
	memset(rep, 0, sizeof(*rep));
	rep->count = r->count;
	for (uint32_t i = 0; i < r->count; i++) {
		bool ro = r->ent[i].flags & LAMINA_GNT_READONLY;
		uint32_t hd;
		uint64_t gfn;
		int st;

		if (r->ent[i].flags & ~LAMINA_GNT_READONLY) {
			rep->ent[i].status = GNTST_general_error;
			continue;
		}
		hd = t->nr_maps < t->max_maptrack ? ctl_gnt_handle_alloc(gc, GNT_LIMIT_MAPTRACK) : UINT32_MAX;
		if (hd == UINT32_MAX) {
			rep->ent[i].status = GNTST_no_space;
			continue;
		}
		st = gnttab_pin(t, r->ent[i].ref, CTL_GNT_DOM0, ro, true, &gfn);
		if (st != GNTST_okay) {
			gc->maps[hd].next_free = gc->free_head;
			gc->free_head = hd;
			rep->ent[i].status = st;
			continue;
		}
		gnttab_get(t);
		t->nr_maps++;
		gc->maps[hd] = (struct ctl_gnt_map){.t = t, .ref = r->ent[i].ref, .ro = ro, .used = true};
		gc->used++;
		any_rw |= !ro;
		rep->ent[i].handle = hd;
		rep->ent[i].offset = gfn * GMEM_PAGE_SIZE;
	}
	if (!(r->flags & LAMINA_GNT_MAP_NOFD)) {
		fds[nfds] = ctl_gnt_reopen(t->memfd, O_RDONLY);
		if (fds[nfds] >= 0)
			nfds++;
		if (any_rw && nfds == 1 && (fds[nfds] = ctl_gnt_reopen(t->memfd, O_RDWR)) >= 0)
			nfds++;
	}
	rep->nr_fds = nfds;
	rc = ctl_reply_fds(c, h, rep, sizeof(*rep), fds, nfds);
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
out_free:
	free(r);
	return rc;
}

int ctl_op_gnt_unmap(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		     const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_gnt_status *rep = out;
	struct ctl_gnt_conn *gc = ctl_gnt_conn_find(s, c, false);
	struct lamina_ctl_gnt_unmap r;

	memcpy(&r, req, sizeof(r));
	if (r.count == 0 || r.count > LAMINA_GNT_BATCH)
		return -EINVAL;
	memset(rep, 0, sizeof(*rep));
	rep->count = r.count;
	for (uint32_t i = 0; i < r.count; i++) {
		uint32_t hd = r.handle[i];

		if (!gc || hd >= gc->nr || !gc->maps[hd].used) {
			rep->status[i] = GNTST_bad_handle;
			continue;
		}
		ctl_gnt_map_release(gc, hd);
	}
	*out_len = sizeof(*rep);
	return 0;
}

int ctl_op_gnt_buffer(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		      const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_gnt_buffer r;
	struct ctl_gnt_conn *gc;
	uint8_t *p;
	int fd, rc;

	memcpy(&r, req, sizeof(r));
	if (r.size == 0 || r.size % GMEM_PAGE_SIZE || r.size > LAMINA_GNT_BUFFER_MAX)
		return -EINVAL;
	if (!(gc = ctl_gnt_conn_find(s, c, true)))
		return -ENOMEM;
	fd = memfd_create("lamina-gnt-buffer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	/* Sealed at its size, so the client cannot make the daemon's copies fault. */
	if (ftruncate(fd, (off_t)r.size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		rc = -errno;
		goto out_close;
	}
	p = mmap(NULL, r.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		goto out_close;
	}
	if (gc->buf)
		munmap(gc->buf, gc->buf_size);
	gc->buf = p;
	gc->buf_size = r.size;
	rc = ctl_reply_fds(c, h, &r, sizeof(r), &fd, 1);
out_close:
	close(fd);
	return rc;
}

int ctl_op_gnt_copy(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h, const void *req,
		    void *out, size_t *out_len)
{
	struct lamina_ctl_gnt_status *rep = out;
	struct ctl_gnt_conn *gc = ctl_gnt_conn_find(s, c, false);
	const struct lamina_ctl_gnt_copy *r = req;
	struct gnt_copy_run run = {0};
	struct grant_table *t = NULL;
	uint32_t count, last_domid = UINT32_MAX;

	memcpy(&count, &r->count, sizeof(count));
	if (count == 0 || count > LAMINA_GNT_BATCH)
		return -EINVAL;
	if (!gc || !gc->buf)
		return -ENOBUFS; /* LAMINA_CTL_GNT_BUFFER first */
	memset(rep, 0, sizeof(*rep));
	rep->count = count;
	for (uint32_t i = 0; i < count; i++) {
		struct lamina_ctl_gnt_copy_seg sg;

		memcpy(&sg, &r->seg[i], sizeof(sg)); /* each segment read once */
		if (sg.domid != last_domid) {
			gnttab_copy_run_end(&run); /* one lock hold per run of one table's segments */
			t = ctl_gnt_table(s, sg.domid);
			last_domid = sg.domid;
			gnttab_copy_run_begin(&run, t);
		}
		rep->status[i] = gnt_seg_copy(&run, &sg, gc->buf, gc->buf_size); /* shared with the ring */
	}
	gnttab_copy_run_end(&run);
	*out_len = sizeof(*rep);
	return 0;
}

struct gnt_ring **ctl_grant_ring_slot(struct ctl_server *s, struct ctl_conn *c)
{
	struct ctl_gnt_conn *gc = ctl_gnt_conn_find(s, c, true);

	return gc ? &gc->ring : NULL;
}

/* The toolstack role: claimed by a connection that holds no grant maps (back-ends map grants and
 * never claim it); only it may map arbitrary guest frames or change limits. */
int ctl_op_gnt_toolstack(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
			 const void *req, void *out, size_t *out_len)
{
	struct ctl_gnt_conn *gc = ctl_gnt_conn_find(s, c, true);

	if (!gc)
		return -ENOMEM;
	if (gc->used)
		return -EBUSY;
	if (!gc->toolstack)
		hv_log(&s->hv->log, "control: a connection (uid %d) is the toolstack", (int)c->uid);
	gc->toolstack = true;
	return 0;
}

static bool ctl_gnt_is_toolstack(struct ctl_server *s, struct ctl_conn *c)
{
	struct ctl_gnt_conn *gc = ctl_gnt_conn_find(s, c, false);

	return gc && gc->toolstack;
}

int ctl_op_gnt_foreign_map(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
			   const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_gnt_map_reply *rep = out;
	struct lamina_ctl_gnt_foreign *r;
	struct grant_table *t;
	int fd, rc;

	if (!ctl_gnt_is_toolstack(s, c))
		return -EPERM;
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	memcpy(r, req, sizeof(*r));
	rc = -EINVAL;
	if (r->count == 0 || r->count > LAMINA_GNT_BATCH)
		goto out_free;
	rc = -ESRCH;
	if (!(t = ctl_gnt_table(s, r->domid)))
		goto out_free;
	memset(rep, 0, sizeof(*rep));
	rep->count = r->count;
	for (uint32_t i = 0; i < r->count; i++) {
		if (r->gfn[i] >= t->ram_size / GMEM_PAGE_SIZE)
			rep->ent[i].status = GNTST_bad_page;
		else
			rep->ent[i].offset = r->gfn[i] * GMEM_PAGE_SIZE;
	}
	fd = ctl_gnt_reopen(t->memfd, O_RDWR);
	if (fd < 0) {
		rc = -errno;
		goto out_free;
	}
	rep->nr_fds = 1;
	rc = ctl_reply_fds(c, h, rep, sizeof(*rep), &fd, 1);
	close(fd);
out_free:
	free(r);
	return rc;
}

int ctl_op_gnt_info(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h, const void *req,
		    void *out, size_t *out_len)
{
	struct ctl_gnt_conn *self = ctl_gnt_conn_find(s, c, false);
	struct ctl_gnt *g = s->gnt;
	struct lamina_ctl_gnt_info info;
	struct lamina_ctl_gnt_domid r;
	struct grant_table *t;

	memcpy(&r, req, sizeof(r));
	t = ctl_gnt_table(s, r.domid);
	if (!t && r.domid != CTL_GNT_DOM0)
		return -ESRCH;
	memset(&info, 0, sizeof(info));
	info.domid = r.domid;
	if (t) {
		pthread_mutex_lock(&t->lock);
		info.nr_frames = atomic_load(&t->nr_frames);
		info.max_frames = t->max_frames;
		info.max_maptrack = t->max_maptrack;
		info.pins = t->pins_now;
		pthread_mutex_unlock(&t->lock);
		info.copies = atomic_load(&t->copies);
		info.copy_fail = atomic_load(&t->copy_fail);
	}
	info.conn_maps = self ? self->used : 0;
	for (struct ctl_gnt_conn *gc = g ? g->conns : NULL; gc; gc = gc->next) {
		info.all_maps += gc->used;
		for (uint32_t i = 0; i < gc->nr; i++)
			if (gc->maps[i].used && __atomic_load_n(&gc->maps[i].t->dead, __ATOMIC_ACQUIRE))
				info.dead_maps++;
	}
	memcpy(out, &info, sizeof(info));
	*out_len = sizeof(info);
	return 0;
}

int ctl_op_gnt_set_limits(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
			  const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_gnt_limits r;
	struct grant_table *t;

	if (!ctl_gnt_is_toolstack(s, c))
		return -EPERM;
	memcpy(&r, req, sizeof(r));
	if (!(t = ctl_gnt_table(s, r.domid)))
		return -ESRCH;
	return gnttab_set_limits(t, r.max_frames, r.max_maptrack);
}
