/* The KVM execution backend's private state: the daemon-wide /dev/kvm context, one VM per domain
 * (RAM slot plus one slot per extra page) and one thread per vCPU around KVM_RUN. */
#ifndef LAMINA_HV_KVM_RUNNER_H
#define LAMINA_HV_KVM_RUNNER_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "hv.h"

#define KVM_MAX_CPUID 256
#define KVM_KICK_SIGNAL SIGUSR1
#define KVM_REQ_PAUSE 0x1u
#define KVM_REQ_STOP 0x2u
#define KVM_REQ_EVENT 0x4u /* an upcall may be due: look before the next KVM_RUN */
#define KVM_REQ_DOWN 0x8u  /* VCPUOP_down: park until VCPUOP_up */
#define KVM_REQ_LOAD 0x10u /* load kv->start (VCPUOP_initialise) before the next KVM_RUN */
#define KVM_REQ_PARK (KVM_REQ_PAUSE | KVM_REQ_STOP | KVM_REQ_DOWN)
#define KVM_EXTRA_SLOT_BASE 1 /* slot 0 is RAM; extra page i uses slot 1 + i */
/* Foreign grant map handle h uses slot KVM_FOREIGN_SLOT_BASE + h (gnt_map.c bounds h). */
#define KVM_FOREIGN_SLOT_BASE (KVM_EXTRA_SLOT_BASE + GMEM_MAX_EXTRA)

#define KVM_POOL_MAX 16
#define KVM_POOL_DEFAULT 4
#define KVM_POOL_SETTLE_NS 3000000ull

struct kvm_ctx;

/* A pooled VM with its guest memory built: the RAM memfd mapped at base, the special region's
 * memfd right after it, and slot 0 of vm_fd already covering both (kvm_pool_mem.c). */
struct kvm_pool_mem {
	int vm_fd, memfd, special_fd;
	uint8_t *base;
	uint64_t ram_size;
};

/* VM shells built ahead of need by a filler thread (kvm_vm.c). */
struct kvm_pool {
	struct kvm_ctx *k;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fds[KVM_POOL_MAX];
	unsigned n, target;
	/* Shells with guest memory ready: RAM memfd, special pages and RAM slot, all of mem_size
	 * (the size the last create asked for; 0 before the first). */
	struct kvm_pool_mem mems[KVM_POOL_MAX];
	unsigned nm;
	uint64_t mem_size;
	uint64_t pop_lo, pop_hi; /* populated in new sets: what the last boot wrote (kvm_mem_hint) */
	bool mem_failed; /* building a set failed: stop trying */
	bool quit, started;
	uint64_t last_take_ns; /* CLOCK_MONOTONIC of the last kvm_pool_take */
};

struct kvm_ctx {
	int kvm_fd;
	size_t run_size;
	unsigned max_vcpus;
	bool have_msr_filter;
	struct hv_log *log;
	struct kvm_cpuid2 *cpuid; /* supported leaves minus KVM's 0x4000000x, before per-vCPU leaves */
	struct kvm_pool pool;
	pthread_condattr_t cond_attr; /* vCPU conditions wait on CLOCK_MONOTONIC */
};

struct kvm_vm {
	struct kvm_ctx *k;
	int vm_fd;
	bool slot_ready; /* a pooled VM whose RAM slot is already set (kvm_mem_take) */
	pthread_mutex_t slot_lock; /* extra-page slots; never held with d->lock wanted */
};

struct kvm_vcpu_rt {
	struct vcpu *v;
	struct hv_domain *hd;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	bool exited;	      /* the thread has ended: no more signals to it (lock) */
	_Atomic unsigned req; /* KVM_REQ_* */
	pthread_mutex_t lock; /* with cond: parking and blocking */
	pthread_cond_t cond;
	bool wake;	    /* a wake-up not yet consumed by block() */
	bool parked;	    /* in kvm_vcpu_park, out of KVM_RUN (lock) */
	struct vcpu_start start; /* the state KVM_REQ_LOAD loads (lock) */
	int64_t tsc_offset; /* guest TSC - host TSC */
	clockid_t cpu_clock;
	_Atomic uint64_t cpu_ns_final; /* thread CPU time, stamped when the thread ends */
};

static inline uint64_t kvm_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* kvm_vcpu.c: CPUID */
int kvm_cpuid_template(struct kvm_ctx *k);
int kvm_cpuid_set(struct kvm_ctx *k, struct kvm_vcpu_rt *kv);

/* kvm_vm.c: the VM pool */
int kvm_shell_create(struct kvm_ctx *k, int *fd_out);
int kvm_pool_start(struct kvm_ctx *k, unsigned target);
void kvm_pool_stop(struct kvm_ctx *k);
int kvm_pool_take(struct kvm_ctx *k, int *fd_out);
/* kvm_pool_mem.c: pooled VMs with their guest memory (the runner's mem_take op); the filler
 * thread builds and discards them with the pool lock dropped. */
int kvm_mem_take(void *ctx, struct hv_domain *hd, uint64_t ram_size);
int kvm_pool_mem_build(struct kvm_ctx *k, uint64_t ram_size, uint64_t pop_lo, uint64_t pop_hi,
		       struct kvm_pool_mem *m);
void kvm_mem_hint(void *ctx, uint64_t lo, uint64_t hi);
void kvm_pool_mem_free(struct kvm_pool_mem *m);
/* The filler's side, pool lock held: whether sets are wanted, whether none of the asked size is
 * ready (build at once), and one step of upkeep (drops the lock around the work). */
bool kvm_pool_mem_wanted(const struct kvm_pool *p);
bool kvm_pool_mem_empty(const struct kvm_pool *p);
void kvm_pool_mem_fill(struct kvm_pool *p);

/* kvm_exit.c */
void *kvm_vcpu_thread(void *arg);
/* kvm_exit.c: a ring-3 kernel's event callback frame, pushed before resuming the vCPU. */
void kvm_upcall_deliver(struct kvm_vcpu_rt *kv);
void kvm_fill_sys(struct kvm_vcpu_rt *kv);

/* kvm_vcpu.c */
int kvm_vcpu_create(struct kvm_vm *vm, struct kvm_vcpu_rt *kv);
void kvm_vcpu_kick(struct kvm_vcpu_rt *kv, unsigned req);
int kvm_vcpu_park(struct kvm_vcpu_rt *kv); /* 1: the thread must end */
int kvm_vcpu_thread_start(struct kvm_vcpu_rt *kv);
int kvm_vcpu_load_start(struct kvm_vcpu_rt *kv); /* the vCPU's own thread: KVM_REQ_LOAD */
int kvm_vcpu_up(struct vcpu *v);
void kvm_vcpu_down(struct vcpu *v);
int kvm_vm_start(struct hv_domain *hd, const struct pvh_boot *boot);
void kvm_vm_pause(struct hv_domain *hd, bool pause);
void kvm_vm_stop(struct hv_domain *hd);
void kvm_vm_join(struct hv_domain *hd);
int kvm_read_tsc(struct vcpu *v, uint64_t *guest_tsc, uint64_t *mono_ns);
int kvm_block(struct vcpu *v, uint64_t deadline_mono_ns);
void kvm_wake(struct vcpu *v);
void kvm_upcall(struct vcpu *v);
uint64_t kvm_cpu_time_ns(struct vcpu *v);

/* kvm_core.c: registers of a parked or ended vCPU for a core dump (the runner's vcpu_regs op). */
int kvm_vcpu_regs(struct vcpu *v, struct core_elf_vcpu *out);

#endif
