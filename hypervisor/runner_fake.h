/* An in-process stand-in for the vCPU runner: a struct domain_ops that records what the hypercall
 * layer asked for, and a bare domain (RAM, vCPUs, long-mode page tables) for unit tests. */
#ifndef LAMINA_HV_RUNNER_FAKE_H
#define LAMINA_HV_RUNNER_FAKE_H

#include <stdbool.h>
#include <stdint.h>

#include "domain.h"

#define FAKE_CONSOLE_MAX 8192
/* Page-table pages come from the top FAKE_PT_POOL bytes of RAM, handed out downwards. */
#define FAKE_PT_POOL (256u * 1024u)

/* Leaf flags for fake_map (x86 PTE bits). */
#define FAKE_PTE_P 0x1ull
#define FAKE_PTE_W 0x2ull
#define FAKE_PTE_U 0x4ull
#define FAKE_PTE_PS 0x80ull
#define FAKE_PTE_NX (1ull << 63)

/* Page sizes by walk level. */
#define FAKE_PAGE_4K 1
#define FAKE_PAGE_2M 2
#define FAKE_PAGE_1G 3

struct fake_runner {
	struct domain d; /* first: the ops find the fake from the domain */

	/* What the hypercall layer did. */
	unsigned shutdowns, last_shutdown_reason;
	unsigned crashes;
	unsigned blocks, yields, logs;
	unsigned wakes, upcalls; /* domain_ops wake / upcall calls */
	/* vcpu_up / vcpu_down calls; up takes v->start (clearing start_pending) as the runner does,
	 * or fails with vcpu_up_rc. */
	unsigned vcpu_ups, vcpu_downs;
	struct vcpu *last_vcpu_up, *last_vcpu_down;
	struct vcpu_start last_start;
	bool last_start_loaded; /* the last up carried a new start state */
	struct vcpu *last_upcall;
	/* block: with block_real, sleeps on cond until a wake/upcall or the deadline (as the KVM
	 * runner does); else counts and returns block_rc, or 1 (as if kicked) when that is 0. */
	bool block_real;
	pthread_mutex_t wlock;
	pthread_cond_t wcond;
	bool woken;
	unsigned maps;
	uint64_t last_map_gfn;
	void *last_map_page;
	unsigned foreign_live;		 /* foreign map slots present now */
	uint64_t last_foreign_gfn;	 /* the last foreign slot added */
	void *last_foreign_page;
	bool last_foreign_ro;
	char console[FAKE_CONSOLE_MAX];
	size_t console_len;

	/* Answers the fake gives: errors to inject, a fixed clock. */
	int console_rc, block_rc, map_rc, tsc_rc, foreign_rc, vcpu_up_rc;
	bool tsc_fixed;
	uint64_t tsc, tsc_mono_ns;

	uint64_t pt_next; /* lowest page-table page handed out so far */
	uint64_t cr3;	  /* the PML4 every vCPU starts with */
};

extern const struct domain_ops fake_domain_ops;

/* A domain of ram_size bytes (page multiple, > FAKE_PT_POOL) with nr_vcpus vCPUs, all online and
 * initialised, in
 * 64-bit ring 0 (CR0.PG|WP, CR4.PAE, EFER.LMA|NXE) on an empty PML4; shared_info initialised;
 * one RAM memmap entry; 2 GHz TSC. */
int fake_domain_create(uint64_t ram_size, unsigned nr_vcpus, struct fake_runner **out);
/* The same, with an id and event channels in world w (max_port ports; 0: the guest default). */
int fake_domain_create_ev(struct evtchn_world *w, uint32_t domid, unsigned max_port, uint64_t ram_size,
			  unsigned nr_vcpus, struct fake_runner **out);
/* Domain-0 for tests: a domain with no vCPUs and no shared_info, id 0, in world w. */
int fake_dom0_create(struct evtchn_world *w, struct domain **out);
void fake_dom0_destroy(struct domain *d0);
void fake_domain_destroy(struct fake_runner *f);

static inline struct fake_runner *fake_of(struct domain *d)
{
	return (struct fake_runner *)d;
}

/* A zeroed page-table page from the pool; 0 when the pool is exhausted. */
uint64_t fake_pt_alloc(struct fake_runner *f);

/* Host pointer to the entry for gva at level (4: PML4E .. 1: PTE) under cr3, creating missing
 * intermediate tables as present|writable|user. NULL if a larger page already maps gva. */
uint64_t *fake_pte(struct fake_runner *f, uint64_t cr3, uint64_t gva, unsigned level);

/* Map gva -> gpa with a page of the given size (FAKE_PAGE_*); flags are the leaf's bits. */
int fake_map(struct fake_runner *f, uint64_t cr3, uint64_t gva, uint64_t gpa, unsigned size, uint64_t flags);

/* Map [gva, gva+len) -> [gpa, ...) with 4 KiB pages. */
int fake_map_range(struct fake_runner *f, uint64_t cr3, uint64_t gva, uint64_t gpa, uint64_t len,
		   uint64_t flags);

/* Host pointer to guest-physical gpa (RAM only), for tests to fill or inspect. */
void *fake_ram(struct fake_runner *f, uint64_t gpa);

/* The five hypercall arguments in one call. */
long fake_hypercall(struct vcpu *v, uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		    uint64_t a4);

#endif
