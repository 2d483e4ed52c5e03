/* Grant tables: per-domain frames of grant_entry_v1 shared with the guest, the active-entry pins
 * behind them, and copies through grants. The guest may rewrite its entries at any moment: every
 * read of a shared entry is one atomic load, every change of its flags one cmpxchg or atomic and. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "grant_table.h"

/* Flags and domid of an entry read together, as one 32-bit word (little-endian: flags low). */
/* Every frame a table may grow to must be placeable next to the special pages and shared_info. */
_Static_assert(GMEM_MAX_EXTRA >= LAMINA_SPECIAL_COUNT + 1 + GNT_LIMIT_FRAMES, "extra-page table too small");

#define GNT_COMBO(flags, domid) ((uint32_t)(flags) | ((uint32_t)(domid) << 16))

int gnttab_domain_init(struct domain *d)
{
	struct grant_table *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->idle, NULL);
	atomic_init(&t->refs, 1);
	t->domid = d->domid;
	t->ram = d->mem.ram;
	t->ram_size = d->mem.ram_size;
	t->memfd = d->mem.memfd;
	t->max_frames = GNT_DEFAULT_MAX_FRAMES;
	t->max_maptrack = GNT_DEFAULT_MAX_MAPTRACK;
	for (unsigned i = 0; i < GNT_LIMIT_FRAMES; i++)
		t->frame_gfn[i] = UINT64_MAX;
	/* Published complete: other domains' vCPUs find it through the domain registry. */
	__atomic_store_n(&d->gnt, t, __ATOMIC_RELEASE);
	return 0;
}

/* The domain registry's read lock keeps a listed domain (and so its table) alive while the
 * reference is taken; a domain leaves the registry before its table is finished. */
struct grant_table *gnttab_lookup(struct domain *d, uint32_t domid)
{
	struct evtchn_world *w = d->evw;
	struct grant_table *t = NULL;
	struct domain *o;

	if (!w)
		return NULL;
	pthread_rwlock_rdlock(&w->lock);
	o = evtchn_lookup(w, d, domid);
	if (o)
		t = __atomic_load_n(&o->gnt, __ATOMIC_ACQUIRE);
	if (t)
		gnttab_get(t);
	pthread_rwlock_unlock(&w->lock);
	return t;
}

static void gnttab_free(struct grant_table *t)
{
	for (unsigned i = 0; i < GNT_LIMIT_FRAMES; i++) {
		if (t->frames[i])
			munmap(t->frames[i], GMEM_PAGE_SIZE);
		free(t->active[i]);
	}
	pthread_cond_destroy(&t->idle);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

void gnttab_get(struct grant_table *t)
{
	atomic_fetch_add(&t->refs, 1);
}

void gnttab_put(struct grant_table *t)
{
	if (atomic_fetch_sub(&t->refs, 1) == 1)
		gnttab_free(t);
}

void gnttab_domain_fini(struct domain *d)
{
	struct grant_table *t = d->gnt;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->dead = true;
	while (t->copying) /* another domain's vCPU is copying through a grant */
		pthread_cond_wait(&t->idle, &t->lock);
	t->ram = NULL;
	t->ram_size = 0;
	t->memfd = -1;
	pthread_mutex_unlock(&t->lock);
	d->gnt = NULL;
	gnttab_put(t);
}

/* Caller holds t->lock. */
static int gnttab_grow_locked(struct grant_table *t, unsigned nr)
{
	unsigned have = atomic_load(&t->nr_frames);

	if (nr > t->max_frames)
		return -ENOSPC;
	for (unsigned i = have; i < nr; i++) {
		void *p =
		    mmap(NULL, GMEM_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		struct gnt_active *a = calloc(GNT_ENTRIES_PER_FRAME, sizeof(*a));

		if (p == MAP_FAILED || !a) {
			if (p != MAP_FAILED)
				munmap(p, GMEM_PAGE_SIZE);
			free(a);
			return -ENOMEM;
		}
		t->frames[i] = p;
		t->active[i] = a;
		/* Published after the frame exists: lock-free readers check the count first. */
		atomic_store(&t->nr_frames, i + 1);
	}
	return 0;
}

int gnttab_grow(struct grant_table *t, unsigned nr)
{
	int rc;

	pthread_mutex_lock(&t->lock);
	rc = t->dead ? -ESRCH : gnttab_grow_locked(t, nr);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

unsigned gnttab_nr_entries(struct grant_table *t)
{
	return atomic_load(&t->nr_frames) * (unsigned)GNT_ENTRIES_PER_FRAME;
}

int gnttab_set_limits(struct grant_table *t, unsigned max_frames, unsigned max_maptrack)
{
	int rc = 0;

	if (max_frames == 0 || max_frames > GNT_LIMIT_FRAMES || max_maptrack > GNT_LIMIT_MAPTRACK)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	if (max_frames < atomic_load(&t->nr_frames))
		rc = -EBUSY; /* the table is already bigger */
	else {
		t->max_frames = max_frames;
		t->max_maptrack = max_maptrack;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* Frames go outside RAM only: Lamina never takes a RAM frame away from a guest. A frame placed
 * again moves (as Xen moves it). */
int gnttab_place_frame(struct domain *d, unsigned idx, uint64_t gfn)
{
	struct grant_table *t = d->gnt;
	void *held;
	int rc;

	if (!t || idx >= GNT_LIMIT_FRAMES)
		return -EINVAL;
	if (gfn < d->mem.ram_size / GMEM_PAGE_SIZE || gfn >= (1ull << 40) / GMEM_PAGE_SIZE)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	rc = gnttab_grow_locked(t, idx + 1);
	if (rc) {
		rc = -EINVAL; /* as Xen: an index past the limit names no frame */
		goto out_unlock;
	}
	if (t->frame_gfn[idx] == gfn)
		goto out_unlock;
	pthread_mutex_lock(&d->lock);
	held = gmem_gpa_ptr(&d->mem, gfn * GMEM_PAGE_SIZE, GMEM_PAGE_SIZE);
	if (held && held != t->frames[idx])
		rc = -EBUSY;
	else
		rc = d->ops->map_page(d, gfn, t->frames[idx]);
	if (!rc)
		rc = gmem_add_extra(&d->mem, gfn, t->frames[idx]); /* a no-op if map_page did it */
	pthread_mutex_unlock(&d->lock);
	if (!rc)
		t->frame_gfn[idx] = gfn;
out_unlock:
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static inline grant_entry_v1_t *gnttab_entry(struct grant_table *t, uint32_t ref)
{
	return (grant_entry_v1_t *)t->frames[ref / GNT_ENTRIES_PER_FRAME] + ref % GNT_ENTRIES_PER_FRAME;
}

static inline struct gnt_active *gnttab_act(struct grant_table *t, uint32_t ref)
{
	return &t->active[ref / GNT_ENTRIES_PER_FRAME][ref % GNT_ENTRIES_PER_FRAME];
}

/* Xen's _set_status_v1: when the entry is not in use yet, it must be GTF_permit_access for user
 * (and not GTF_readonly for a writable pin); GTF_reading (and GTF_writing) are set with a
 * cmpxchg, retried a bounded number of times against a guest racing us. Caller holds t->lock. */
static int gnttab_set_status(struct grant_table *t, uint32_t ref, struct gnt_active *act, uint16_t user,
			     bool ro, bool map)
{
	uint32_t *word = (uint32_t *)gnttab_entry(t, ref);
	uint16_t mask = GTF_type_mask | (map ? GTF_sub_page : 0);
	uint32_t cur = __atomic_load_n(word, __ATOMIC_ACQUIRE);

	for (int tries = 0;; tries++) {
		uint16_t flags = (uint16_t)cur, domid = (uint16_t)(cur >> 16);
		uint32_t want;

		if (!(act->ro + act->rw) && ((flags & mask) != GTF_permit_access || domid != user))
			return GNTST_general_error;
		want = cur | GTF_reading;
		if (!ro) {
			if (flags & GTF_readonly)
				return GNTST_general_error;
			want |= GTF_writing;
		}
		if (__atomic_compare_exchange_n(word, &cur, want, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return GNTST_okay;
		if (tries == GNT_CMPXCHG_RETRIES)
			return GNTST_general_error; /* the entry is unstable */
	}
}

/* Caller holds t->lock. */
static int gnttab_pin_locked(struct grant_table *t, uint32_t ref, uint16_t user, bool ro, bool map,
			     uint64_t *gfn)
{
	struct gnt_active *act;
	int st;

	if (t->dead) {
		st = GNTST_bad_domain;
		goto out_unlock;
	}
	if (ref >= gnttab_nr_entries(t)) {
		st = GNTST_bad_gntref;
		goto out_unlock;
	}
	act = gnttab_act(t, ref);
	if ((act->ro + act->rw) && act->domid != user) {
		st = GNTST_general_error; /* in use by another domain: the entry names only one */
		goto out_unlock;
	}
	st = gnttab_set_status(t, ref, act, user, ro, map);
	if (st != GNTST_okay)
		goto out_unlock;
	if (!(act->ro + act->rw)) {
		act->gfn = __atomic_load_n(&gnttab_entry(t, ref)->frame, __ATOMIC_RELAXED);
		act->domid = user;
		if (act->gfn >= t->ram_size / GMEM_PAGE_SIZE) {
			/* Not a RAM frame: undo what set_status did and refuse. */
			__atomic_fetch_and((uint16_t *)gnttab_entry(t, ref),
					   (uint16_t) ~(GTF_reading | GTF_writing), __ATOMIC_RELEASE);
			st = GNTST_bad_page;
			goto out_unlock;
		}
	}
	if (ro)
		act->ro++;
	else
		act->rw++;
	t->pins_now++;
	*gfn = act->gfn;
out_unlock:
	return st;
}

int gnttab_pin(struct grant_table *t, uint32_t ref, uint16_t user, bool ro, bool map, uint64_t *gfn)
{
	int st;

	pthread_mutex_lock(&t->lock);
	st = gnttab_pin_locked(t, ref, user, ro, map, gfn);
	pthread_mutex_unlock(&t->lock);
	return st;
}

/* Caller holds t->lock. */
static void gnttab_unpin_locked(struct grant_table *t, uint32_t ref, bool ro)
{
	struct gnt_active *act;
	uint16_t clear = 0;

	if (ref >= gnttab_nr_entries(t))
		goto out_unlock;
	act = gnttab_act(t, ref);
	if (ro && act->ro)
		act->ro--;
	else if (!ro && act->rw)
		act->rw--;
	else
		goto out_unlock; /* not ours to drop: a caller bug, never a guest's doing */
	t->pins_now--;
	if (!act->rw)
		clear |= GTF_writing;
	if (!(act->ro + act->rw))
		clear |= GTF_reading;
	if (clear)
		__atomic_fetch_and((uint16_t *)gnttab_entry(t, ref), (uint16_t)~clear, __ATOMIC_RELEASE);
out_unlock:
	return;
}

void gnttab_unpin(struct grant_table *t, uint32_t ref, bool ro)
{
	pthread_mutex_lock(&t->lock);
	gnttab_unpin_locked(t, ref, ro);
	pthread_mutex_unlock(&t->lock);
}

/* A host pointer for [offset, offset+len) of one side, pinning it if it is a ref. */
static int gnttab_side_get(struct gnt_copy_side *s, uint16_t len, uint16_t user, bool write, uint8_t **p,
			   bool *pinned)
{
	uint64_t gfn;
	int st;

	*pinned = false;
	if (s->is_ref) {
		if (s->ref_or_gfn > UINT32_MAX)
			return GNTST_bad_gntref;
		pthread_mutex_lock(&s->t->lock);
		st = gnttab_pin_locked(s->t, (uint32_t)s->ref_or_gfn, user, !write, false, &gfn);
		if (st == GNTST_okay && s->foreign)
			s->t->copying++;
		pthread_mutex_unlock(&s->t->lock);
		if (st != GNTST_okay)
			return st;
		*pinned = true;
	} else {
		gfn = s->ref_or_gfn;
		if (s->t->dead || gfn >= s->t->ram_size / GMEM_PAGE_SIZE)
			return GNTST_bad_page;
	}
	*p = s->t->ram + gfn * GMEM_PAGE_SIZE + s->offset;
	return GNTST_okay;
}

static void gnttab_side_put(struct gnt_copy_side *s, bool write, bool pinned)
{
	if (!pinned)
		return;
	pthread_mutex_lock(&s->t->lock);
	gnttab_unpin_locked(s->t, (uint32_t)s->ref_or_gfn, !write);
	if (s->foreign && --s->t->copying == 0)
		pthread_cond_broadcast(&s->t->idle);
	pthread_mutex_unlock(&s->t->lock);
}

int gnttab_copy_one(struct gnt_copy_side *src, struct gnt_copy_side *dst, uint16_t len, uint16_t user)
{
	bool spin = false, dpin = false;
	uint8_t *sp, *dp;
	int st;

	if ((uint32_t)src->offset + len > GMEM_PAGE_SIZE || (uint32_t)dst->offset + len > GMEM_PAGE_SIZE)
		return GNTST_bad_copy_arg;
	st = gnttab_side_get(src, len, user, false, &sp, &spin);
	if (st != GNTST_okay)
		goto out;
	st = gnttab_side_get(dst, len, user, true, &dp, &dpin);
	if (st != GNTST_okay)
		goto out_src;
	memmove(dp, sp, len); /* both sides may be one page of one domain */
	gnttab_side_put(dst, true, dpin);
out_src:
	gnttab_side_put(src, false, spin);
out:
	atomic_fetch_add_explicit(st == GNTST_okay ? &(src->is_ref ? src->t : dst->t)->copies
						   : &(src->is_ref ? src->t : dst->t)->copy_fail,
				  1, memory_order_relaxed);
	return st;
}

/* A run of Domain-0 copies holds the table lock once: each segment still pins (with every check
 * and the GTF_reading/GTF_writing flags the guest sees), copies and unpins, but the mutex and the
 * counters are paid once per run instead of once per segment. */
void gnttab_copy_run_begin(struct gnt_copy_run *run, struct grant_table *t)
{
	run->t = t;
	run->ok = 0;
	run->fail = 0;
	run->held = 0;
	if (t)
		pthread_mutex_lock(&t->lock);
}

void gnttab_copy_run_end(struct gnt_copy_run *run)
{
	struct grant_table *t = run->t;

	if (!t)
		return;
	pthread_mutex_unlock(&t->lock);
	if (run->ok)
		atomic_fetch_add_explicit(&t->copies, run->ok, memory_order_relaxed);
	if (run->fail)
		atomic_fetch_add_explicit(&t->copy_fail, run->fail, memory_order_relaxed);
	run->t = NULL;
}

int gnttab_copy_run_buf(struct gnt_copy_run *run, uint32_t ref, uint16_t offset, uint16_t len, uint16_t user,
			uint8_t *buf, bool to_guest)
{
	struct grant_table *t = run->t;
	uint64_t gfn;
	uint8_t *p;
	int st;

	if ((uint32_t)offset + len > GMEM_PAGE_SIZE)
		return GNTST_bad_copy_arg;
	if (!t)
		return GNTST_bad_domain;
	if (++run->held > GNT_COPY_RUN_MAX) {
		/* Let the control thread and guest copies of this table in now and then. */
		pthread_mutex_unlock(&t->lock);
		pthread_mutex_lock(&t->lock);
		run->held = 1;
	}
	st = gnttab_pin_locked(t, ref, user, !to_guest, false, &gfn);
	if (st == GNTST_okay) {
		p = t->ram + gfn * GMEM_PAGE_SIZE + offset;
		if (to_guest)
			memcpy(p, buf, len);
		else
			memcpy(buf, p, len);
		gnttab_unpin_locked(t, ref, !to_guest);
		run->ok++;
	} else {
		run->fail++;
	}
	return st;
}

int gnttab_copy_buf(struct grant_table *t, uint32_t ref, uint16_t offset, uint16_t len, uint16_t user,
		    uint8_t *buf, bool to_guest)
{
	struct gnt_copy_run run;
	int st;

	if ((uint32_t)offset + len > GMEM_PAGE_SIZE)
		return GNTST_bad_copy_arg;
	gnttab_copy_run_begin(&run, t);
	st = gnttab_copy_run_buf(&run, ref, offset, len, user, buf, to_guest);
	gnttab_copy_run_end(&run);
	return st;
}
