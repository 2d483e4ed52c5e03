/* vcpu_op: bringing secondary vCPUs up (initialise with Xen's vcpu_hvm_context, up, down),
 * whether a vCPU is up, its runstate times, and moving its vcpu_info out of shared_info into a
 * guest page; the timer commands live in hc_timer.c. */
#include <string.h>

#include "hc_handlers.h"

#include <xen/hvm/hvm_vcpu.h>
#include <xen/sched.h>

_Static_assert(sizeof(struct vcpu_hvm_x86_32) == 120, "vcpu_hvm_x86_32 is 120 bytes");
_Static_assert(sizeof(struct vcpu_hvm_x86_64) == 112, "vcpu_hvm_x86_64 is 112 bytes");
_Static_assert(sizeof(struct vcpu_hvm_context) == 128, "vcpu_hvm_context is 128 bytes");
_Static_assert(offsetof(struct vcpu_hvm_context, cpu_regs) == 8, "cpu_regs at offset 8");

/* What a start state may hold: Xen accepts what the vCPU's CPUID allows; Lamina a fixed set that
 * KVM here takes (VME PVI TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT UMIP FSGSBASE PCIDE
 * OSXSAVE SMEP SMAP in CR4; SCE LME LMA NXE in EFER). */
#define HC_CR0_PE 0x1ull
#define HC_CR0_PG 0x80000000ull
#define HC_CR0_VALID 0xe005003full
#define HC_CR4_PAE 0x20ull
#define HC_CR4_VALID 0x370fffull
#define HC_EFER_LME 0x100ull
#define HC_EFER_LMA 0x400ull
#define HC_EFER_VALID 0xd01ull
#define HC_RFLAGS_FIXED 0x2ull
#define HC_RFLAGS_VALID 0x3f7fd7ull /* no reserved bits; VM (bit 17) refused separately */
#define HC_RFLAGS_VM 0x20000ull

/* Segment attribute bits (xen/hvm/hvm_vcpu.h). */
#define HC_AR_TYPE 0xfu
#define HC_AR_S 0x10u
#define HC_AR_P 0x80u
#define HC_AR_L 0x200u
#define HC_AR_UNUSED 0xf000u
#define HC_AR_CODE 0x8u
#define HC_AR_DATA_W 0x2u

_Static_assert(sizeof(struct vcpu_runstate_info) == 48, "vcpu_runstate_info is 48 bytes");
_Static_assert(sizeof(struct vcpu_register_vcpu_info) == 16, "vcpu_register_vcpu_info is 16");
_Static_assert(sizeof(struct vcpu_info) == 64, "vcpu_info is 64 bytes");

struct hc_vcpu_subop {
	unsigned cmd;
	const char *name;
	long (*fn)(struct vcpu *v, struct vcpu *target, uint64_t gva);
};

static long hc_vcpu_is_up(struct vcpu *v, struct vcpu *target, uint64_t gva)
{
	return target->online ? 1 : 0;
}

/* A snapshot of target's runstate with the current state's time counted up to now. */
static long hc_vcpu_get_runstate(struct vcpu *v, struct vcpu *target, uint64_t gva)
{
	struct vcpu_runstate_info r = target->runstate;
	uint64_t now = domain_now_ns(v->d);

	if (r.state >= 0 && r.state < 4 && now > r.state_entry_time) {
		r.time[r.state] += now - r.state_entry_time;
		r.state_entry_time = now;
	}
	return hc_copy_out(v, gva, &r, sizeof(r));
}

/* Xen's rules: once per vCPU, on itself or on a vCPU that is down; the structure must fit in one
 * guest RAM page. The current contents move with it and every event is marked pending, so
 * nothing raised during the switch is lost. */
static long hc_vcpu_register_info(struct vcpu *v, struct vcpu *target, uint64_t gva)
{
	struct domain *d = v->d;
	struct vcpu_register_vcpu_info ri;
	struct vcpu_info *info;
	uint64_t gpa;
	long rc = hc_copy_in(v, &ri, gva, sizeof(ri));

	if (rc)
		return rc;
	if (ri.offset > GMEM_PAGE_SIZE - sizeof(struct vcpu_info))
		return -EINVAL;
	if (ri.mfn >= d->mem.ram_size / GMEM_PAGE_SIZE)
		return -EINVAL;
	gpa = ri.mfn * GMEM_PAGE_SIZE + ri.offset;
	info = gmem_gpa_ptr(&d->mem, gpa, sizeof(*info));
	if (!info)
		return -EINVAL;

	pthread_mutex_lock(&d->lock);
	if (target->info_gpa != UINT64_MAX || (target != v && target->online)) {
		rc = -EINVAL;
		goto out_unlock;
	}
	if (target->info)
		memcpy(info, target->info, sizeof(*info));
	else
		memset(info, 0, sizeof(*info));
	target->info = info;
	target->info_gpa = gpa;
	__atomic_store_n(&info->evtchn_upcall_pending, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&info->evtchn_pending_sel, ~(xen_ulong_t)0, __ATOMIC_RELEASE);
	rc = 0;
out_unlock:
	pthread_mutex_unlock(&d->lock);
	if (rc == 0)
		shared_info_update_time(target);
	return rc;
}

/* A segment of a 32-bit start state, checked as Xen's check_segment does: present code for CS,
 * present writable data for SS, data or readable code (or not present) for DS/ES, a busy TSS for
 * TR; the unused attribute bits blank. */
enum hc_seg_kind { HC_SEG_CS, HC_SEG_SS, HC_SEG_DATA, HC_SEG_TR };

static int hc_vcpu_seg_check(const struct vcpu_seg *s, enum hc_seg_kind kind)
{
	unsigned type = s->ar & HC_AR_TYPE;

	if (s->ar & HC_AR_UNUSED)
		return -EINVAL;
	if (!(s->ar & HC_AR_P))
		return kind == HC_SEG_DATA ? 0 : -EINVAL;
	switch (kind) {
	case HC_SEG_CS:
		return (s->ar & HC_AR_S) && (type & HC_AR_CODE) ? 0 : -EINVAL;
	case HC_SEG_SS:
		return (s->ar & HC_AR_S) && !(type & HC_AR_CODE) && (type & HC_AR_DATA_W) ? 0 : -EINVAL;
	case HC_SEG_DATA:
		return (s->ar & HC_AR_S) && (!(type & HC_AR_CODE) || (type & HC_AR_DATA_W)) ? 0 : -EINVAL;
	case HC_SEG_TR:
		return !(s->ar & HC_AR_S) && (type == 0xb || type == 0x3) ? 0 : -EINVAL;
	}
	return -EINVAL;
}

static void hc_vcpu_seg32(struct vcpu_seg *s, uint32_t base, uint32_t limit, uint16_t ar)
{
	s->base = base;
	s->limit = limit;
	s->ar = ar;
}

static int hc_vcpu_from32(const struct vcpu_hvm_x86_32 *c, struct vcpu_start *st)
{
	st->gpr[VCPU_RAX] = c->eax;
	st->gpr[VCPU_RCX] = c->ecx;
	st->gpr[VCPU_RDX] = c->edx;
	st->gpr[VCPU_RBX] = c->ebx;
	st->gpr[VCPU_RSP] = c->esp;
	st->gpr[VCPU_RBP] = c->ebp;
	st->gpr[VCPU_RSI] = c->esi;
	st->gpr[VCPU_RDI] = c->edi;
	st->rip = c->eip;
	st->rflags = c->eflags;
	st->cr0 = c->cr0;
	st->cr3 = c->cr3;
	st->cr4 = c->cr4;
	st->efer = c->efer;
	hc_vcpu_seg32(&st->cs, c->cs_base, c->cs_limit, c->cs_ar);
	hc_vcpu_seg32(&st->ds, c->ds_base, c->ds_limit, c->ds_ar);
	hc_vcpu_seg32(&st->ss, c->ss_base, c->ss_limit, c->ss_ar);
	hc_vcpu_seg32(&st->es, c->es_base, c->es_limit, c->es_ar);
	hc_vcpu_seg32(&st->tr, c->tr_base, c->tr_limit, c->tr_ar);
	if (hc_vcpu_seg_check(&st->cs, HC_SEG_CS) || hc_vcpu_seg_check(&st->ss, HC_SEG_SS) ||
	    hc_vcpu_seg_check(&st->ds, HC_SEG_DATA) || hc_vcpu_seg_check(&st->es, HC_SEG_DATA) ||
	    hc_vcpu_seg_check(&st->tr, HC_SEG_TR))
		return -EINVAL;
	/* compatibility mode needs long mode on; a 64-bit CS does not belong in this structure */
	if (st->cs.ar & HC_AR_L)
		return -EINVAL;
	if (!!(st->efer & HC_EFER_LMA) != ((st->efer & HC_EFER_LME) && (st->cr0 & HC_CR0_PG)))
		return -EINVAL;
	return 0;
}

/* Long mode straight away, with flat segments as Xen sets them for VCPU_HVM_MODE_64B. */
static int hc_vcpu_from64(const struct vcpu_hvm_x86_64 *c, struct vcpu_start *st)
{
	const struct vcpu_seg code = {0, 0xffffffffu, 0xa9b}, data = {0, 0xffffffffu, 0xc93};
	const struct vcpu_seg tss = {0, 0x67, 0x8b};
	uint64_t rip_top = c->rip >> 47;

	st->gpr[VCPU_RAX] = c->rax;
	st->gpr[VCPU_RCX] = c->rcx;
	st->gpr[VCPU_RDX] = c->rdx;
	st->gpr[VCPU_RBX] = c->rbx;
	st->gpr[VCPU_RSP] = c->rsp;
	st->gpr[VCPU_RBP] = c->rbp;
	st->gpr[VCPU_RSI] = c->rsi;
	st->gpr[VCPU_RDI] = c->rdi;
	st->rip = c->rip;
	st->rflags = c->rflags;
	st->cr0 = c->cr0;
	st->cr3 = c->cr3;
	st->cr4 = c->cr4;
	st->efer = c->efer;
	st->cs = code;
	st->ds = st->es = st->ss = data;
	st->tr = tss;
	if (rip_top != 0 && rip_top != 0x1ffff)
		return -EINVAL; /* not canonical */
	if (!(st->cr0 & HC_CR0_PG) || !(st->cr4 & HC_CR4_PAE) || !(st->efer & HC_EFER_LME))
		return -EINVAL;
	st->efer |= HC_EFER_LMA;
	return 0;
}

/* The copy of the guest's context, converted and checked: 0 or -EINVAL. */
static int hc_vcpu_start_state(struct domain *d, const struct vcpu_hvm_context *ctx, struct vcpu_start *st)
{
	int rc;

	memset(st, 0, sizeof(*st));
	if (ctx->mode == VCPU_HVM_MODE_32B)
		rc = hc_vcpu_from32(&ctx->cpu_regs.x86_32, st);
	else if (ctx->mode == VCPU_HVM_MODE_64B)
		rc = hc_vcpu_from64(&ctx->cpu_regs.x86_64, st);
	else
		rc = -EINVAL;
	if (rc)
		return rc;
	if ((st->cr0 & ~HC_CR0_VALID) || !(st->cr0 & HC_CR0_PE) || (st->cr4 & ~HC_CR4_VALID) ||
	    (st->efer & ~HC_EFER_VALID))
		return -EINVAL;
	if ((st->efer & HC_EFER_LMA) && (!(st->cr0 & HC_CR0_PG) || !(st->cr4 & HC_CR4_PAE)))
		return -EINVAL;
	if ((st->rflags & ~HC_RFLAGS_VALID) || (st->rflags & HC_RFLAGS_VM))
		return -EINVAL;
	st->rflags |= HC_RFLAGS_FIXED;
	/* with paging on, the top-level table must be a RAM frame */
	if ((st->cr0 & HC_CR0_PG) && (st->cr3 & ~0xfffull) >= d->mem.ram_size)
		return -EINVAL;
	return 0;
}

/* VCPUOP_initialise: once for a vCPU that is not up (a vCPU taken down may get a new state). */
static long hc_vcpu_initialise(struct vcpu *v, struct vcpu *target, uint64_t gva)
{
	struct domain *d = v->d;
	struct vcpu_hvm_context ctx;
	struct vcpu_start st;
	long rc = hc_copy_in(v, &ctx, gva, sizeof(ctx));

	if (rc)
		return rc;
	rc = hc_vcpu_start_state(d, &ctx, &st);
	if (rc)
		return rc;
	pthread_mutex_lock(&d->lock);
	if (target->online) {
		rc = -EEXIST;
	} else {
		target->start = st;
		target->start_pending = true;
		target->initialised = true;
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/* VCPUOP_up: -EINVAL before initialise; 0 for a vCPU already up. */
static long hc_vcpu_up(struct vcpu *v, struct vcpu *target, uint64_t gva)
{
	struct domain *d = v->d;
	long rc = 0;

	pthread_mutex_lock(&d->lock);
	if (!target->initialised) {
		rc = -EINVAL;
	} else if (!target->online) {
		target->online = true; /* before it runs: its first hypercall may be is_up */
		rc = d->ops->vcpu_up(target);
		if (rc)
			target->online = false;
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/* VCPUOP_down: 0 for a vCPU already down. As in Xen, the last vCPU going down powers the domain
 * off. */
static long hc_vcpu_down(struct vcpu *v, struct vcpu *target, uint64_t gva)
{
	struct domain *d = v->d;
	bool others = false;
	unsigned i;

	pthread_mutex_lock(&d->lock);
	if (!target->online) {
		pthread_mutex_unlock(&d->lock);
		return 0;
	}
	for (i = 0; i < d->nr_vcpus; i++)
		if (d->vcpu[i] && d->vcpu[i] != target && d->vcpu[i]->online)
			others = true;
	if (others) {
		target->online = false;
		d->ops->vcpu_down(target);
	}
	pthread_mutex_unlock(&d->lock);
	if (!others)
		d->ops->shutdown(d, SHUTDOWN_poweroff);
	return 0;
}

static const struct hc_vcpu_subop hc_vcpu_ops[] = {
    [VCPUOP_initialise] = {VCPUOP_initialise, "initialise", hc_vcpu_initialise},
    [VCPUOP_up] = {VCPUOP_up, "up", hc_vcpu_up},
    [VCPUOP_down] = {VCPUOP_down, "down", hc_vcpu_down},
    [VCPUOP_is_up] = {VCPUOP_is_up, "is_up", hc_vcpu_is_up},
    [VCPUOP_get_runstate_info] = {VCPUOP_get_runstate_info, "get_runstate_info", hc_vcpu_get_runstate},
    [VCPUOP_set_periodic_timer] = {VCPUOP_set_periodic_timer, "set_periodic_timer", hc_vcpu_set_periodic},
    [VCPUOP_stop_periodic_timer] = {VCPUOP_stop_periodic_timer, "stop_periodic_timer", hc_vcpu_stop_periodic},
    [VCPUOP_set_singleshot_timer] = {VCPUOP_set_singleshot_timer, "set_singleshot_timer", hc_vcpu_set_singleshot},
    [VCPUOP_stop_singleshot_timer] = {VCPUOP_stop_singleshot_timer, "stop_singleshot_timer", hc_vcpu_stop_singleshot},
    [VCPUOP_register_vcpu_info] = {VCPUOP_register_vcpu_info, "register_vcpu_info", hc_vcpu_register_info},
};

/* vcpu_op(int cmd, unsigned int vcpuid, void *arg) */
long hc_vcpu_op(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct domain *d = v->d;
	uint32_t cmd = (uint32_t)arg[0];
	uint32_t id = (uint32_t)arg[1];
	const struct hc_vcpu_subop *op;

	if (cmd >= sizeof(hc_vcpu_ops) / sizeof(hc_vcpu_ops[0]) || !hc_vcpu_ops[cmd].fn)
		return -ENOSYS;
	op = &hc_vcpu_ops[cmd];
	if (id >= d->nr_vcpus || id >= LAMINA_MAX_VCPUS || !d->vcpu[id])
		return -ENOENT;
	return op->fn(v, d->vcpu[id], arg[2]);
}
