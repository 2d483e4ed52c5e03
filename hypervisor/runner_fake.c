/* The fake runner: records upcalls instead of running anything, and builds bare domains whose
 * page tables the tests write directly into guest RAM. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gnt_map.h"
#include "hypercall.h"
#include "runner_fake.h"

#define FAKE_CR0 ((1ull << 0) | (1ull << 16) | (1ull << 31))  /* PE, WP, PG */
#define FAKE_CR4 (1ull << 5)				      /* PAE */
#define FAKE_EFER ((1ull << 8) | (1ull << 10) | (1ull << 11)) /* LME, LMA, NXE */
#define FAKE_ADDR 0x000ffffffffff000ull

static void fake_op_shutdown(struct domain *d, unsigned reason)
{
	struct fake_runner *f = fake_of(d);

	f->shutdowns++;
	f->last_shutdown_reason = reason;
}

static void fake_op_crash(struct domain *d, const char *why)
{
	fake_of(d)->crashes++;
}

static int fake_op_console_write(struct domain *d, const char *buf, size_t len)
{
	struct fake_runner *f = fake_of(d);
	size_t room = FAKE_CONSOLE_MAX - f->console_len;

	if (f->console_rc)
		return f->console_rc;
	memcpy(f->console + f->console_len, buf, len < room ? len : room);
	f->console_len += len < room ? len : room;
	return 0;
}

static int fake_op_block(struct vcpu *v, uint64_t deadline)
{
	struct fake_runner *f = fake_of(v->d);
	struct timespec ts;
	int rc = 0;

	pthread_mutex_lock(&f->wlock);
	f->blocks++;
	if (!f->block_real) {
		/* As if kicked at once (a pause would do that): callers never loop on the fake. */
		pthread_mutex_unlock(&f->wlock);
		return f->block_rc ? f->block_rc : 1;
	}
	ts.tv_sec = (time_t)(deadline / 1000000000ull);
	ts.tv_nsec = (long)(deadline % 1000000000ull);
	while (!f->woken && rc == 0) {
		if (deadline)
			rc = pthread_cond_timedwait(&f->wcond, &f->wlock, &ts);
		else
			rc = pthread_cond_wait(&f->wcond, &f->wlock);
	}
	f->woken = false;
	pthread_mutex_unlock(&f->wlock);
	return rc == ETIMEDOUT ? -ETIMEDOUT : 0;
}

static void fake_op_wake(struct vcpu *v)
{
	struct fake_runner *f = fake_of(v->d);

	pthread_mutex_lock(&f->wlock);
	f->wakes++;
	f->woken = true;
	pthread_cond_broadcast(&f->wcond);
	pthread_mutex_unlock(&f->wlock);
}

static void fake_op_upcall(struct vcpu *v)
{
	struct fake_runner *f = fake_of(v->d);

	pthread_mutex_lock(&f->wlock);
	f->upcalls++;
	f->last_upcall = v;
	f->woken = true;
	pthread_cond_broadcast(&f->wcond);
	pthread_mutex_unlock(&f->wlock);
}

static void fake_op_yield(struct vcpu *v)
{
	fake_of(v->d)->yields++;
}

static int fake_op_vcpu_up(struct vcpu *v)
{
	struct fake_runner *f = fake_of(v->d);

	if (f->vcpu_up_rc)
		return f->vcpu_up_rc;
	f->vcpu_ups++;
	f->last_vcpu_up = v;
	f->last_start_loaded = v->start_pending;
	if (v->start_pending)
		f->last_start = v->start;
	v->start_pending = false;
	return 0;
}

static void fake_op_vcpu_down(struct vcpu *v)
{
	struct fake_runner *f = fake_of(v->d);

	f->vcpu_downs++;
	f->last_vcpu_down = v;
}

static int fake_op_map_page(struct domain *d, uint64_t gfn, void *page)
{
	struct fake_runner *f = fake_of(d);

	if (f->map_rc)
		return f->map_rc;
	f->maps++;
	f->last_map_gfn = gfn;
	f->last_map_page = page;
	return 0;
}

static int fake_op_map_foreign(struct domain *d, unsigned idx, uint64_t gfn, void *page, bool ro)
{
	struct fake_runner *f = fake_of(d);

	if (!page) {
		f->foreign_live--;
		return 0;
	}
	if (f->foreign_rc)
		return f->foreign_rc;
	f->foreign_live++;
	f->last_foreign_gfn = gfn;
	f->last_foreign_page = page;
	f->last_foreign_ro = ro;
	return 0;
}

static int fake_op_read_tsc(struct vcpu *v, uint64_t *guest_tsc, uint64_t *mono_ns)
{
	struct fake_runner *f = fake_of(v->d);

	if (f->tsc_rc)
		return f->tsc_rc;
	if (f->tsc_fixed) {
		*guest_tsc = f->tsc;
		*mono_ns = f->tsc_mono_ns;
		return 0;
	}
	*mono_ns = domain_mono_ns();
	*guest_tsc = (uint64_t)(((unsigned __int128)*mono_ns * v->d->tsc_khz) / 1000000u);
	return 0;
}

static void fake_op_log(struct domain *d, const char *msg)
{
	fake_of(d)->logs++;
}

const struct domain_ops fake_domain_ops = {
    .shutdown = fake_op_shutdown,
    .crash = fake_op_crash,
    .console_write = fake_op_console_write,
    .block = fake_op_block,
    .wake = fake_op_wake,
    .upcall = fake_op_upcall,
    .yield = fake_op_yield,
    .vcpu_up = fake_op_vcpu_up,
    .vcpu_down = fake_op_vcpu_down,
    .map_page = fake_op_map_page,
    .map_foreign = fake_op_map_foreign,
    .read_tsc = fake_op_read_tsc,
    .log = fake_op_log,
};

void *fake_ram(struct fake_runner *f, uint64_t gpa)
{
	if (gpa >= f->d.mem.ram_size)
		return NULL;
	return f->d.mem.ram + gpa;
}

uint64_t fake_pt_alloc(struct fake_runner *f)
{
	uint64_t floor = f->d.mem.ram_size - FAKE_PT_POOL;

	if (f->pt_next < floor + GMEM_PAGE_SIZE)
		return 0;
	f->pt_next -= GMEM_PAGE_SIZE;
	memset(fake_ram(f, f->pt_next), 0, GMEM_PAGE_SIZE);
	return f->pt_next;
}

uint64_t *fake_pte(struct fake_runner *f, uint64_t cr3, uint64_t gva, unsigned level)
{
	uint64_t table = cr3 & FAKE_ADDR;

	for (unsigned l = 4; l >= 1; l--) {
		uint64_t *e = (uint64_t *)fake_ram(f, table + ((gva >> (12 + 9 * (l - 1))) & 511) * 8);

		if (!e)
			return NULL;
		if (l == level)
			return e;
		if (!(*e & FAKE_PTE_P)) {
			uint64_t t = fake_pt_alloc(f);

			if (!t)
				return NULL;
			*e = t | FAKE_PTE_P | FAKE_PTE_W | FAKE_PTE_U;
		} else if (*e & FAKE_PTE_PS) {
			return NULL;
		}
		table = *e & FAKE_ADDR;
	}
	return NULL;
}

int fake_map(struct fake_runner *f, uint64_t cr3, uint64_t gva, uint64_t gpa, unsigned size, uint64_t flags)
{
	uint64_t *e;

	if (size < FAKE_PAGE_4K || size > FAKE_PAGE_1G)
		return -EINVAL;
	e = fake_pte(f, cr3, gva, size);
	if (!e)
		return -ENOMEM;
	*e = gpa | flags | (size > FAKE_PAGE_4K ? FAKE_PTE_PS : 0);
	return 0;
}

int fake_map_range(struct fake_runner *f, uint64_t cr3, uint64_t gva, uint64_t gpa, uint64_t len,
		   uint64_t flags)
{
	for (uint64_t off = 0; off < len; off += GMEM_PAGE_SIZE) {
		int rc = fake_map(f, cr3, gva + off, gpa + off, FAKE_PAGE_4K, flags);

		if (rc)
			return rc;
	}
	return 0;
}

long fake_hypercall(struct vcpu *v, uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		    uint64_t a4)
{
	const uint64_t arg[HYPERCALL_NR_ARGS] = {a0, a1, a2, a3, a4};

	return hypercall_dispatch(v, nr, arg);
}

static int fake_vcpus_create(struct fake_runner *f, unsigned nr_vcpus)
{
	struct domain *d = &f->d;

	for (unsigned i = 0; i < nr_vcpus; i++) {
		struct vcpu *v = calloc(1, sizeof(*v));

		if (!v)
			return -ENOMEM;
		v->d = d;
		v->id = i;
		v->online = true;
		v->initialised = true;
		v->info_gpa = UINT64_MAX;
		v->sys.cr0 = FAKE_CR0;
		v->sys.cr3 = f->cr3;
		v->sys.cr4 = FAKE_CR4;
		v->sys.efer = FAKE_EFER;
		v->sys.cpl = 0;
		v->runstate.state = RUNSTATE_running;
		d->vcpu[i] = v;
		d->nr_vcpus = i + 1;
	}
	return 0;
}

void fake_domain_destroy(struct fake_runner *f)
{
	if (!f)
		return;
	gnt_map_domain_fini(&f->d); /* other domains' grants it still maps */
	evtchn_domain_free(&f->d);
	shared_info_fini(&f->d);
	for (unsigned i = 0; i < f->d.nr_vcpus; i++)
		free(f->d.vcpu[i]);
	gmem_fini(&f->d.mem);
	pthread_mutex_destroy(&f->d.lock);
	pthread_mutex_destroy(&f->wlock);
	pthread_cond_destroy(&f->wcond);
	free(f);
}

int fake_domain_create(uint64_t ram_size, unsigned nr_vcpus, struct fake_runner **out)
{
	struct fake_runner *f;
	struct domain *d;
	int rc;

	if (ram_size <= FAKE_PT_POOL || nr_vcpus == 0 || nr_vcpus > LAMINA_MAX_VCPUS)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	d = &f->d;
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&f->wlock, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&f->wcond, &ca);
		pthread_condattr_destroy(&ca);
	}
	d->special_fd = -1;
	d->domid = 1;
	d->ops = &fake_domain_ops;
	d->state = LAMINA_DOM_RUNNING;
	d->shutdown_code = -1;
	d->shared_info_gfn = UINT64_MAX;
	d->tsc_khz = 2000000;
	d->boot_mono_ns = domain_mono_ns();
	clock_gettime(CLOCK_REALTIME, &d->boot_wall);
	snprintf(d->cfg.name, sizeof(d->cfg.name), "fake");
	rc = gmem_init(&d->mem, "fake", ram_size);
	if (rc) {
		d->mem.memfd = -1;
		goto out_free;
	}
	d->max_pages = d->cur_pages = ram_size / GMEM_PAGE_SIZE;
	d->memmap[0] = (struct hvm_memmap_table_entry){.addr = 0, .size = ram_size, .type = 1};
	d->nr_memmap = 1;
	f->pt_next = ram_size;
	f->cr3 = fake_pt_alloc(f);
	rc = fake_vcpus_create(f, nr_vcpus);
	if (rc)
		goto out_free;
	rc = shared_info_init(d);
	if (rc)
		goto out_free;
	*out = f;
	return 0;

out_free:
	fake_domain_destroy(f);
	return rc;
}

int fake_domain_create_ev(struct evtchn_world *w, uint32_t domid, unsigned max_port, uint64_t ram_size,
			  unsigned nr_vcpus, struct fake_runner **out)
{
	struct fake_runner *f;
	int rc = fake_domain_create(ram_size, nr_vcpus, &f);

	if (rc)
		return rc;
	f->d.domid = domid;
	rc = evtchn_domain_init(w, &f->d, max_port ? max_port : EVTCHN_GUEST_MAX_PORT);
	if (rc) {
		fake_domain_destroy(f);
		return rc;
	}
	*out = f;
	return 0;
}

int fake_dom0_create(struct evtchn_world *w, struct domain **out)
{
	struct domain *d0 = calloc(1, sizeof(*d0));
	int rc;

	if (!d0)
		return -ENOMEM;
	pthread_mutex_init(&d0->lock, NULL);
	d0->is_dom0 = true;
	d0->special_fd = -1;
	d0->mem.memfd = -1;
	snprintf(d0->cfg.name, sizeof(d0->cfg.name), "Domain-0");
	rc = evtchn_domain_init(w, d0, EVTCHN_DOM0_MAX_PORT);
	if (rc) {
		pthread_mutex_destroy(&d0->lock);
		free(d0);
		return rc;
	}
	*out = d0;
	return 0;
}

void fake_dom0_destroy(struct domain *d0)
{
	if (!d0)
		return;
	evtchn_domain_free(d0);
	pthread_mutex_destroy(&d0->lock);
	free(d0);
}
