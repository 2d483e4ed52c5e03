/* The execution backend behind lamina-hv: creating, running, kicking and tearing down a domain's
 * VM and vCPUs. KVM (kvm_*.c) is the implementation; the core only sees this ops table. */
#ifndef LAMINA_HV_RUNNER_H
#define LAMINA_HV_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

struct hv;
struct hv_domain;
struct domain;
struct vcpu;
struct pvh_boot;
struct core_elf_vcpu;

struct hv_runner_ops {
	const char *name;
	/* Once per daemon: open the device, probe capabilities, build templates. */
	int (*init)(struct hv *hv, void **ctx);
	void (*fini)(void *ctx);
	/* Optional: guest RAM (d->mem) and the special region (d->special, d->special_fd) built
	 * ahead of time, with the VM whose RAM slot already covers them (d->runner, completed by
	 * vm_create). -ENOENT when none of ram_size is ready: the core builds its own. */
	int (*mem_take)(void *ctx, struct hv_domain *hd, uint64_t ram_size);
	/* Optional: the guest-physical range [lo, hi) the last boot wrote (kernel image and start
	 * info); memory built ahead has it populated, so the next load takes no page faults. */
	void (*mem_hint)(void *ctx, uint64_t lo, uint64_t hi);
	/* The VM, its RAM slot and every vCPU, not yet running. Undone by vm_destroy. */
	int (*vm_create)(void *ctx, struct hv_domain *hd);
	/* Boot state for vCPU 0 (PVH 32-bit entry) and its thread; parked if the domain is paused. */
	int (*vm_start)(struct hv_domain *hd, const struct pvh_boot *boot);
	/* Park (true) or release (false) every vCPU. Returns at once; parking finishes shortly. */
	void (*vm_pause)(struct hv_domain *hd, bool pause);
	/* Ask every vCPU thread to end. Safe from any thread, a vCPU's own included. */
	void (*vm_stop)(struct hv_domain *hd);
	/* Wait for the vCPU threads (after vm_stop). Never from a vCPU thread. */
	void (*vm_join)(struct hv_domain *hd);
	/* Close every descriptor and free the runner's state (after vm_join). */
	void (*vm_destroy)(struct hv_domain *hd);
	/* domain_ops pieces that need the backend. */
	int (*map_page)(struct domain *d, uint64_t gfn, void *page);
	int (*map_foreign)(struct domain *d, unsigned idx, uint64_t gfn, void *page, bool ro);
	int (*read_tsc)(struct vcpu *v, uint64_t *guest_tsc, uint64_t *mono_ns);
	/* Sleeps v until wake/upcall (0), a pause or stop request (1) or the CLOCK_MONOTONIC
	 * deadline (-ETIMEDOUT; 0: none). Accounts the runstate as blocked meanwhile. */
	int (*block)(struct vcpu *v, uint64_t deadline_mono_ns);
	/* Ends a block() of v, or makes the next one return at once. Any thread. */
	void (*wake)(struct vcpu *v);
	/* v's evtchn_upcall_pending went 0 -> 1: wake it and deliver the upcall (a ring-3 kernel's
	 * callback frame at its next resume, after a kick out of the guest; or the HVM callback
	 * vector through the in-kernel x2APIC). Any thread. */
	void (*upcall)(struct vcpu *v);
	/* Secondary vCPUs (domain_ops.vcpu_up/vcpu_down, d->lock held): start v's thread from
	 * v->start the first time, or release it from the park down put it in; -ESRCH when the
	 * domain is stopping. Down: v parks as soon as it is out of the guest. */
	int (*vcpu_up)(struct vcpu *v);
	void (*vcpu_down)(struct vcpu *v);
	/* CPU time the vCPU's thread has used. */
	uint64_t (*cpu_time_ns)(struct vcpu *v);
	/* Optional (core dumps): the registers of a vCPU whose thread is parked (paused domain) or
	 * has ended (stopped domain), waiting a bounded time for it to get there; -EBUSY if it did
	 * not; -ENODATA for a vCPU that never ran. Main loop only; the thread stays parked while
	 * they are read. */
	int (*vcpu_regs)(struct vcpu *v, struct core_elf_vcpu *out);
};

extern const struct hv_runner_ops kvm_runner_ops;

#endif
