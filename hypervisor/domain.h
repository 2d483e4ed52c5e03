/* Domains and vCPUs as the hypercall layer sees them: guest memory, shared_info, HVM params and
 * the per-vCPU state a hypercall may touch. The runner that executes vCPUs sits behind domain_ops. */
#ifndef LAMINA_HV_DOMAIN_H
#define LAMINA_HV_DOMAIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <time.h>

#include <xen/xen.h>
#include <xen/vcpu.h>
#include <xen/hvm/params.h>
#include <xen/hvm/hvm_op.h>
#include <xen/arch-x86/hvm/start_info.h>

#include "lamina/abi.h"
#include "lamina/control.h"
#include "guest_mem.h"
#include "event_channel.h"

struct domain;
struct vcpu;
struct grant_table;
struct gnt_maptrack;

/* What a vCPU's control registers were at the current exit: the guest-memory walker needs them. */
struct vcpu_sysregs {
	uint64_t cr0, cr3, cr4, efer;
	uint8_t cpl; /* current privilege level (CS.DPL) */
};

/* The register state a secondary vCPU starts from (VCPUOP_initialise, validated by hc_vcpu.c).
 * Segment attributes use Xen's packed layout of xen/hvm/hvm_vcpu.h (type, s, dpl, p, avl, l, db,
 * g in bits 0-11); the runner picks the selectors. FS and GS are loaded like DS. */
struct vcpu_seg {
	uint64_t base;
	uint32_t limit; /* in bytes */
	uint16_t ar;
};

enum vcpu_gpr { VCPU_RAX, VCPU_RCX, VCPU_RDX, VCPU_RBX, VCPU_RSP, VCPU_RBP, VCPU_RSI, VCPU_RDI, VCPU_NR_GPRS };

struct vcpu_start {
	uint64_t gpr[VCPU_NR_GPRS];
	uint64_t rip, rflags, cr0, cr3, cr4, efer;
	struct vcpu_seg cs, ds, es, ss, tr;
};

/* Upcalls from the hypercall layer into whoever runs the domain (the KVM runner in the daemon, a
 * recording fake in unit tests). Each may be called from a vCPU thread during a hypercall. */
struct domain_ops {
	/* The domain shut itself down (SCHEDOP_shutdown): record it, stop every vCPU; the on_*
	 * action runs later, off the vCPU thread. */
	void (*shutdown)(struct domain *d, unsigned reason);
	/* Something the guest did is fatal for this domain only. */
	void (*crash)(struct domain *d, const char *why);
	/* Console output from the guest (console_io, debug port). */
	int (*console_write)(struct domain *d, const char *buf, size_t len);
	/* Sleep until woken (wake, upcall), kicked (pause, destroy: returns 1) or, with a deadline
	 * (CLOCK_MONOTONIC ns, 0: none), until it passes (-ETIMEDOUT). A wake-up that came before the
	 * call makes it return 0 at once. */
	int (*block)(struct vcpu *v, uint64_t deadline_mono_ns);
	/* End a block of v, or make its next one return at once. Any thread, no lock held. */
	void (*wake)(struct vcpu *v);
	/* v's evtchn_upcall_pending went 0 -> 1: deliver the upcall (ring-3 callback frame or HVM
	 * callback vector) and end a block. Any thread, no lock held. */
	void (*upcall)(struct vcpu *v);
	/* SCHEDOP_yield. */
	void (*yield)(struct vcpu *v);
	/* VCPUOP_up / VCPUOP_down, called with d->lock held after the hypercall layer checked and
	 * changed v->online. up: start v's thread from v->start on its first up, else release a
	 * parked v (loading v->start first when start_pending); -ESRCH once the domain is stopping.
	 * down: v parks (offline) before it next enters the guest; v may be the caller. */
	int (*vcpu_up)(struct vcpu *v);
	void (*vcpu_down)(struct vcpu *v);
	/* Back a guest frame outside RAM with a hypervisor page (shared_info at a hole GFN). */
	int (*map_page)(struct domain *d, uint64_t gfn, void *page);
	/* Foreign map slot idx (gnt_map.c's handle): back gfn with page (another domain's granted
	 * frame, read-only when ro), or remove the slot when page is NULL. */
	int (*map_foreign)(struct domain *d, unsigned idx, uint64_t gfn, void *page, bool ro);
	/* A simultaneous (guest TSC, CLOCK_MONOTONIC ns) pair for v, for the pvclock. */
	int (*read_tsc)(struct vcpu *v, uint64_t *guest_tsc, uint64_t *mono_ns);
	/* A rate-limited line in the daemon log, prefixed with the domain. */
	void (*log)(struct domain *d, const char *msg);
};

struct vcpu {
	struct domain *d;
	unsigned id;
	void *runner; /* private to the runner */
	struct vcpu_sysregs sys;

	bool online;	   /* up (d->lock); vCPU 0 from boot, others by VCPUOP_up */
	bool initialised;  /* has a start state: vCPU 0 from boot, others by VCPUOP_initialise */
	bool start_pending; /* start was set and the runner has not loaded it yet (d->lock) */
	struct vcpu_start start;
	bool in_multicall;
	/* vcpu_info in use: in shared_info until VCPUOP_register_vcpu_info moves it. */
	struct vcpu_info *info;
	uint64_t info_gpa; /* registered location, or UINT64_MAX while in shared_info */

	struct vcpu_runstate_info runstate; /* times in ns of domain system time */
	_Atomic uint64_t exits;
	_Atomic uint64_t hypercalls;

	/* Events (event_channel.h). virq_port: the port each per-vCPU or global VIRQ is bound to
	 * (0: none), under the world lock. */
	uint32_t virq_port[NR_VIRQS];
	uint64_t event_callback; /* CALLBACKTYPE_event entry for ring-3 kernels, 0: none */
	_Atomic bool polling;	 /* in SCHEDOP_poll: any newly pending port of the domain wakes it */
	struct evtchn_timer timer[EVTCHN_NR_TIMERS];
	_Atomic uint64_t upcalls;
};

#define DOMAIN_MAX_MEMMAP 8
#define DOMAIN_HC_STATS 64

struct domain {
	uint32_t domid;
	struct lamina_ctl_domcfg cfg;
	const struct domain_ops *ops;
	void *runner; /* private to the runner */

	pthread_mutex_t lock; /* guards state, params, shared_info placement */
	enum lamina_domstate state;
	unsigned shutdown_reason;
	int shutdown_code; /* -1 until SCHEDOP_shutdown_code */

	struct guest_mem mem;
	struct hvm_memmap_table_entry memmap[DOMAIN_MAX_MEMMAP]; /* what the guest was told */
	unsigned nr_memmap;
	uint64_t max_pages, cur_pages;

	/* shared_info: a private page until XENMEM_add_to_physmap places it at a guest frame. */
	struct shared_info *shared_info;
	void *shared_info_page; /* the private page (page-aligned, one page) */
	uint64_t shared_info_gfn; /* UINT64_MAX until placed */

	uint64_t hvm_params[HVM_NR_PARAMS];

	/* Time base: domain system time 0 is boot_mono_ns on CLOCK_MONOTONIC; wall clock at boot. */
	uint64_t boot_mono_ns;
	struct timespec boot_wall;
	uint32_t tsc_khz;

	unsigned nr_vcpus;
	struct vcpu *vcpu[LAMINA_MAX_VCPUS];

	_Atomic uint64_t hc_count[DOMAIN_HC_STATS]; /* per hypercall number, for `domctl top` */
	_Atomic uint64_t console_bytes;
	_Atomic uint64_t first_console_ns;

	/* Event channels: the port table (under the world lock, see event_channel.h). Domain-0 is a
	 * domain with no vCPUs and no shared_info whose ports signal eventfds. */
	struct evtchn_world *evw;
	struct evtchn_table *evtchn;
	bool is_dom0;
	_Atomic unsigned nr_polling;
	_Atomic uint64_t events_sent, events_received;

	/* The special region (LAMINA_SPECIAL_COUNT pages right after RAM): a memfd mapped here,
	 * the ports the guest uses for each page (unbound for Domain-0 until a daemon binds). */
	int special_fd;
	uint8_t *special;
	uint64_t special_gfn;
	uint32_t special_port[LAMINA_SPECIAL_COUNT];
	uint32_t console_prod_seen; /* the console ring's out_prod at the last look */
	pthread_mutex_t console_lock; /* guards console_prod_seen */

	struct grant_table *gnt; /* grant_table.c: NULL before gnttab_domain_init, after _fini */
	struct gnt_maptrack *maptrack; /* gnt_map.c: other domains' grants this one maps; lazy */
};

/* special.c: the special region. special_init needs d->ops->map_page and (for the ports)
 * event channels; special_fini undoes it. */
int special_init(struct domain *d);
void special_fini(struct domain *d);
/* Console bytes the guest produced into its ring since the last look (its out_prod is hostile:
 * it only feeds a counter). Any thread. */
void domain_console_ring_account(struct domain *d);

static inline uint64_t domain_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Domain system time: ns since the domain booted. */
static inline uint64_t domain_now_ns(const struct domain *d)
{
	return domain_mono_ns() - d->boot_mono_ns;
}

/* Account the time since the last change to the old runstate and enter a new one. */
static inline void vcpu_runstate_set(struct vcpu *v, int state, uint64_t now)
{
	struct vcpu_runstate_info *r = &v->runstate;
	if (r->state >= 0 && r->state < 4 && now > r->state_entry_time)
		r->time[r->state] += now - r->state_entry_time;
	r->state = state;
	r->state_entry_time = now;
}

/* shared_info.c: the pvclock and wall clock Xen guests read. */
int shared_info_init(struct domain *d);               /* allocates the private page */
void shared_info_fini(struct domain *d);
void shared_info_update_time(struct vcpu *v);         /* refresh v's vcpu_time_info */
int shared_info_place(struct domain *d, uint64_t gfn); /* XENMEM_add_to_physmap */

#endif
