/* shared_info: the page every Xen guest shares with the hypervisor (vcpu_info slots, event bits,
 * wall clock) and the per-vCPU pvclock in it. It starts as a private page and moves where the
 * guest places it with XENMEM_add_to_physmap. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "hc_handlers.h"

_Static_assert(sizeof(struct shared_info) <= GMEM_PAGE_SIZE, "shared_info fits a page");
_Static_assert(sizeof(struct vcpu_time_info) == 32, "vcpu_time_info is 32 bytes");
_Static_assert(offsetof(struct vcpu_info, time) == 32, "vcpu_info.time at offset 32");
_Static_assert(offsetof(struct shared_info, evtchn_pending) == 2048, "evtchn_pending at 2048");
_Static_assert(offsetof(struct shared_info, wc_version) == 3072, "wc_version at 3072");
_Static_assert(offsetof(struct shared_info, wc_sec_hi) == 3084, "wc_sec_hi at 3084");

/* Highest frame shared_info may be placed at: 2^40 bytes of guest-physical space. */
#define SHARED_INFO_MAX_GFN ((1ull << 40) / GMEM_PAGE_SIZE)

/* Xen's pvclock scale: ns = ((delta << shift) * mul) >> 32 (a negative shift shifts right), with
 * the TSC rate first halved or doubled into (1e9/2, 2e9] so that mul = 2^32 * 1e9 / rate' fits
 * 32 bits. */
int shared_info_time_scale(uint64_t hz, uint32_t *mul, int8_t *shift)
{
	uint64_t tps = hz;
	int s = 0;

	if (hz == 0)
		return -EINVAL;
	while (tps > 2000000000ull) {
		tps >>= 1;
		s--;
	}
	while (tps <= 1000000000ull) {
		tps <<= 1;
		s++;
	}
	*mul = (uint32_t)((1000000000ull << 32) / tps);
	*shift = (int8_t)s;
	return 0;
}

/* The guest's side of the formula, to check the scale. */
uint64_t shared_info_scale_delta(uint64_t delta, uint32_t mul, int8_t shift)
{
	if (shift < 0)
		delta >>= -shift;
	else
		delta <<= shift;
	return (uint64_t)(((unsigned __int128)delta * mul) >> 32);
}

/* Wall-clock time at domain system time 0, published with the version protocol. */
static void shared_info_write_wallclock(struct domain *d)
{
	struct shared_info *s = d->shared_info;
	uint32_t ver = (__atomic_load_n(&s->wc_version, __ATOMIC_RELAXED) + 1) | 1;
	uint64_t sec = (uint64_t)d->boot_wall.tv_sec;

	__atomic_store_n(&s->wc_version, ver, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	s->wc_sec = (uint32_t)sec;
	s->wc_sec_hi = (uint32_t)(sec >> 32);
	s->wc_nsec = (uint32_t)d->boot_wall.tv_nsec;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&s->wc_version, ver + 1, __ATOMIC_RELAXED);
}

int shared_info_init(struct domain *d)
{
	/* From the heap, not a mapping of its own: with many live VMs every change to the daemon's
	 * mappings is slow (measured: an mmap here took 0.25 ms at 1000 live domains). */
	void *page = aligned_alloc(GMEM_PAGE_SIZE, GMEM_PAGE_SIZE);

	if (!page)
		return -ENOMEM;
	memset(page, 0, GMEM_PAGE_SIZE);
	d->shared_info_page = page;
	d->shared_info = page;
	d->shared_info_gfn = UINT64_MAX;
	for (unsigned i = 0; i < d->nr_vcpus && i < LAMINA_MAX_VCPUS; i++) {
		struct vcpu *v = d->vcpu[i];

		if (v && v->info_gpa == UINT64_MAX)
			v->info = i < XEN_LEGACY_MAX_VCPUS ? &d->shared_info->vcpu_info[i] : NULL;
	}
	shared_info_write_wallclock(d);
	return 0;
}

void shared_info_fini(struct domain *d)
{
	free(d->shared_info_page);
	d->shared_info_page = NULL;
	d->shared_info = NULL;
	d->shared_info_gfn = UINT64_MAX;
	for (unsigned i = 0; i < d->nr_vcpus && i < LAMINA_MAX_VCPUS; i++)
		if (d->vcpu[i] && d->vcpu[i]->info_gpa == UINT64_MAX)
			d->vcpu[i]->info = NULL;
}

/* Inside RAM the guest's own page holds shared_info from now on; outside RAM the private page is
 * mapped there. Contents move along, and so does every vcpu_info still living in shared_info. */
int shared_info_place(struct domain *d, uint64_t gfn)
{
	struct guest_mem *m = &d->mem;
	struct shared_info *dst;
	uint64_t gpa = gfn * GMEM_PAGE_SIZE;
	int rc = 0;

	if (gfn >= SHARED_INFO_MAX_GFN)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	if (!d->shared_info_page) {
		rc = -EINVAL;
		goto out_unlock;
	}
	if (gfn == d->shared_info_gfn)
		goto out_unlock;
	if (gpa < m->ram_size) {
		dst = gmem_gpa_ptr(m, gpa, GMEM_PAGE_SIZE);
		if (!dst) {
			rc = -EINVAL;
			goto out_unlock;
		}
	} else {
		void *held = gmem_gpa_ptr(m, gpa, GMEM_PAGE_SIZE);

		if (held && held != d->shared_info_page) {
			rc = -EBUSY; /* another hypervisor page sits there */
			goto out_unlock;
		}
		rc = d->ops->map_page(d, gfn, d->shared_info_page);
		if (rc)
			goto out_unlock;
		/* The daemon's view for the walker; a no-op if map_page already registered it. */
		rc = gmem_add_extra(m, gfn, d->shared_info_page);
		if (rc)
			goto out_unlock;
		dst = d->shared_info_page;
	}
	if (dst != d->shared_info)
		memcpy(dst, d->shared_info, GMEM_PAGE_SIZE);
	for (unsigned i = 0; i < d->nr_vcpus && i < XEN_LEGACY_MAX_VCPUS; i++) {
		struct vcpu *v = d->vcpu[i];

		if (v && v->info_gpa == UINT64_MAX)
			v->info = &dst->vcpu_info[i];
	}
	d->shared_info = dst;
	d->shared_info_gfn = gfn;
	shared_info_write_wallclock(d);
out_unlock:
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/* The pvclock of v's vcpu_info, with Xen's version protocol: odd while the fields change. */
void shared_info_update_time(struct vcpu *v)
{
	struct domain *d = v->d;
	struct vcpu_info *info = v->info;
	struct vcpu_time_info *t;
	uint64_t tsc, mono;
	uint32_t mul, ver;
	int8_t shift;

	if (!info || !d->ops || !d->ops->read_tsc)
		return;
	if (shared_info_time_scale((uint64_t)d->tsc_khz * 1000u, &mul, &shift))
		return;
	if (d->ops->read_tsc(v, &tsc, &mono))
		return;
	t = &info->time;
	ver = (__atomic_load_n(&t->version, __ATOMIC_RELAXED) + 1) | 1;
	__atomic_store_n(&t->version, ver, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	t->tsc_timestamp = tsc;
	t->system_time = mono > d->boot_mono_ns ? mono - d->boot_mono_ns : 0;
	t->tsc_to_system_mul = mul;
	t->tsc_shift = shift;
	t->flags = XEN_PVCLOCK_TSC_STABLE_BIT;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&t->version, ver + 1, __ATOMIC_RELAXED);
}
