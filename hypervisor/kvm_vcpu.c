/* KVM vCPUs: creation (run page, CPUID with Xen's and Lamina's leaves, TSC), the PVH boot state
 * of vCPU 0 and the VCPUOP_initialise state of the others, and the control of their threads:
 * start, kick out of KVM_RUN (signal + immediate_exit), park while paused or down, block until
 * woken, stop and join. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_runner.h"
#include "pvh_loader.h"

#include <xen/vcpu.h>
#include <xen/hvm/params.h>
#include <xen/arch-x86/cpuid.h>

#define KVM_MSR_IA32_TSC 0x10u

/* Make the guest TSC read what the host's does, then measure the remaining offset. */
static int kvm_vcpu_tsc(struct kvm_vcpu_rt *kv)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} m;
	uint64_t t0, t1;

	memset(&m, 0, sizeof(m));
	m.h.nmsrs = 1;
	m.e.index = KVM_MSR_IA32_TSC;
	m.e.data = kvm_rdtsc();
	if (ioctl(kv->fd, KVM_SET_MSRS, &m) != 1)
		return -EIO;
	m.e.data = 0;
	t0 = kvm_rdtsc();
	if (ioctl(kv->fd, KVM_GET_MSRS, &m) != 1)
		return -EIO;
	t1 = kvm_rdtsc();
	kv->tsc_offset = (int64_t)(m.e.data - (t0 + (t1 - t0) / 2));
	return 0;
}

int kvm_vcpu_create(struct kvm_vm *vm, struct kvm_vcpu_rt *kv)
{
	struct domain *d = kv->v->d;
	int rc, khz;

	kv->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, kv->v->id);
	if (kv->fd < 0)
		return -errno;
	kv->run = mmap(NULL, vm->k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, kv->fd, 0);
	if (kv->run == MAP_FAILED) {
		kv->run = NULL;
		return -errno;
	}
	if (kv->v->id == 0) {
		khz = ioctl(kv->fd, KVM_GET_TSC_KHZ, 0);
		d->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
	}
	rc = kvm_cpuid_set(vm->k, kv);
	if (rc < 0)
		return rc;
	rc = kvm_vcpu_tsc(kv);
	if (rc < 0)
		return rc;
	kv->run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
	return 0;
}

static void kvm_flat_seg(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffffu;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->db = 1;
	s->g = 1;
}

/* The PVH boot state Xen gives vCPU 0: 32-bit flat protected mode, paging off. */
static int kvm_vcpu_pvh_state(struct kvm_vcpu_rt *kv, const struct pvh_boot *boot)
{
	struct kvm_sregs sr;
	struct kvm_regs r;

	if (ioctl(kv->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	kvm_flat_seg(&sr.cs, 0x08, 0xb); /* execute/read, accessed */
	kvm_flat_seg(&sr.ds, 0x10, 0x3); /* read/write, accessed */
	sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
	memset(&sr.tr, 0, sizeof(sr.tr));
	sr.tr.selector = 0x18;
	sr.tr.limit = 0x67;
	sr.tr.type = 0xb; /* busy 32-bit TSS */
	sr.tr.present = 1;
	memset(&sr.ldt, 0, sizeof(sr.ldt));
	sr.ldt.unusable = 1;
	sr.cr0 = 0x11; /* PE | ET */
	sr.cr3 = 0;
	sr.cr4 = 0;
	sr.efer = 0;
	if (ioctl(kv->fd, KVM_SET_SREGS, &sr) < 0)
		return -errno;
	memset(&r, 0, sizeof(r));
	r.rip = boot->entry;
	r.rbx = boot->start_info;
	r.rflags = 0x2;
	if (ioctl(kv->fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	return 0;
}

int kvm_vcpu_thread_start(struct kvm_vcpu_rt *kv)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, HV_VCPU_STACK);
	rc = -pthread_create(&t, &attr, kvm_vcpu_thread, kv);
	pthread_attr_destroy(&attr);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&kv->lock); /* kickers read thread and thread_started under it */
	kv->thread = t;
	kv->thread_started = true;
	if (pthread_getcpuclockid(t, &kv->cpu_clock) != 0)
		kv->cpu_clock = -1;
	pthread_mutex_unlock(&kv->lock);
	return 0;
}

int kvm_vm_start(struct hv_domain *hd, const struct pvh_boot *boot)
{
	struct kvm_vcpu_rt *kv = hd->d.vcpu[0]->runner;
	int rc;

	rc = kvm_vcpu_pvh_state(kv, boot);
	if (rc < 0)
		return rc;
	if (hd->d.state == LAMINA_DOM_PAUSED)
		atomic_fetch_or(&kv->req, KVM_REQ_PAUSE);
	return kvm_vcpu_thread_start(kv);
}

/* Xen's packed segment attributes (xen/hvm/hvm_vcpu.h) as KVM wants them. */
static void kvm_seg_from_start(struct kvm_segment *k, const struct vcpu_seg *s, uint16_t sel)
{
	memset(k, 0, sizeof(*k));
	k->base = s->base;
	k->limit = s->limit;
	k->selector = sel;
	k->type = s->ar & 0xf;
	k->s = (s->ar >> 4) & 1;
	k->dpl = (s->ar >> 5) & 3;
	k->present = (s->ar >> 7) & 1;
	k->avl = (s->ar >> 8) & 1;
	k->l = (s->ar >> 9) & 1;
	k->db = (s->ar >> 10) & 1;
	k->g = (s->ar >> 11) & 1;
	k->unusable = !k->present;
}

/* On the vCPU's own thread, before its next KVM_RUN: the start state VCPUOP_initialise gave,
 * with the selectors of the PVH boot state and descriptor tables left for the guest to load.
 * A secondary vCPU of a VM with the in-kernel irqchip waits for INIT/SIPI until made runnable. */
int kvm_vcpu_load_start(struct kvm_vcpu_rt *kv)
{
	struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};
	struct vcpu_start st;
	struct kvm_sregs sr;
	struct kvm_regs r;

	pthread_mutex_lock(&kv->lock);
	st = kv->start;
	pthread_mutex_unlock(&kv->lock);
	if (ioctl(kv->fd, KVM_SET_MP_STATE, &mp) < 0 || ioctl(kv->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	kvm_seg_from_start(&sr.cs, &st.cs, 0x08);
	kvm_seg_from_start(&sr.ds, &st.ds, 0x10);
	kvm_seg_from_start(&sr.es, &st.es, 0x10);
	kvm_seg_from_start(&sr.ss, &st.ss, 0x10);
	kvm_seg_from_start(&sr.tr, &st.tr, 0x18);
	sr.fs = sr.gs = sr.ds;
	memset(&sr.ldt, 0, sizeof(sr.ldt));
	sr.ldt.unusable = 1;
	sr.gdt.base = sr.idt.base = 0;
	sr.gdt.limit = sr.idt.limit = 0xffff;
	sr.cr0 = st.cr0;
	sr.cr3 = st.cr3;
	sr.cr4 = st.cr4;
	sr.efer = st.efer;
	if (ioctl(kv->fd, KVM_SET_SREGS, &sr) < 0)
		return -errno;
	memset(&r, 0, sizeof(r));
	r.rax = st.gpr[VCPU_RAX];
	r.rcx = st.gpr[VCPU_RCX];
	r.rdx = st.gpr[VCPU_RDX];
	r.rbx = st.gpr[VCPU_RBX];
	r.rsp = st.gpr[VCPU_RSP];
	r.rbp = st.gpr[VCPU_RBP];
	r.rsi = st.gpr[VCPU_RSI];
	r.rdi = st.gpr[VCPU_RDI];
	r.rip = st.rip;
	r.rflags = st.rflags;
	if (ioctl(kv->fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	kv->run->kvm_dirty_regs = 0; /* registers of the last exit must not overwrite these */
	return 0;
}

/* d->lock held. The first up starts the thread (parked at once if the domain is paused); later
 * ones clear the down request. A state from VCPUOP_initialise moves to the runner here. */
int kvm_vcpu_up(struct vcpu *v)
{
	struct kvm_vcpu_rt *kv = v->runner;
	struct domain *d = v->d;
	bool start;

	if (!kv)
		return -ENODEV;
	if (d->state != LAMINA_DOM_RUNNING && d->state != LAMINA_DOM_PAUSED)
		return -ESRCH;
	pthread_mutex_lock(&kv->lock);
	if (kv->exited) {
		pthread_mutex_unlock(&kv->lock);
		return -ESRCH;
	}
	if (v->start_pending) {
		kv->start = v->start;
		v->start_pending = false;
		atomic_fetch_or(&kv->req, KVM_REQ_LOAD);
	}
	start = !kv->thread_started;
	atomic_fetch_and(&kv->req, ~KVM_REQ_DOWN);
	if (d->state == LAMINA_DOM_PAUSED)
		atomic_fetch_or(&kv->req, KVM_REQ_PAUSE);
	pthread_cond_broadcast(&kv->cond);
	pthread_mutex_unlock(&kv->lock);
	return start ? kvm_vcpu_thread_start(kv) : 0;
}

/* d->lock held; v may be the calling vCPU: it parks once the hypercall returns. */
void kvm_vcpu_down(struct vcpu *v)
{
	if (v->runner)
		kvm_vcpu_kick(v->runner, KVM_REQ_DOWN);
}

void kvm_vcpu_kick(struct kvm_vcpu_rt *kv, unsigned req)
{
	atomic_fetch_or(&kv->req, req);
	pthread_mutex_lock(&kv->lock);
	pthread_cond_broadcast(&kv->cond);
	if (kv->run)
		__atomic_store_n(&kv->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (kv->thread_started && !kv->exited)
		pthread_kill(kv->thread, KVM_KICK_SIGNAL);
	pthread_mutex_unlock(&kv->lock);
}

int kvm_vcpu_park(struct kvm_vcpu_rt *kv)
{
	struct vcpu *v = kv->v;
	unsigned req;

	req = atomic_load(&kv->req);
	if (req & KVM_REQ_STOP)
		return 1;
	if (!(req & KVM_REQ_PARK))
		return 0;
	vcpu_runstate_set(v, RUNSTATE_offline, domain_now_ns(v->d));
	pthread_mutex_lock(&kv->lock);
	kv->parked = true; /* kvm_vcpu_regs waits for this */
	pthread_cond_broadcast(&kv->cond);
	while (((req = atomic_load(&kv->req)) & KVM_REQ_PARK) && !(req & KVM_REQ_STOP))
		pthread_cond_wait(&kv->cond, &kv->lock);
	kv->parked = false;
	pthread_mutex_unlock(&kv->lock);
	vcpu_runstate_set(v, RUNSTATE_running, domain_now_ns(v->d));
	return (req & KVM_REQ_STOP) ? 1 : 0;
}

void kvm_vm_pause(struct hv_domain *hd, bool pause)
{
	unsigned i;

	for (i = 0; i < hd->d.nr_vcpus; i++) {
		struct kvm_vcpu_rt *kv = hd->d.vcpu[i]->runner;
		if (pause) {
			kvm_vcpu_kick(kv, KVM_REQ_PAUSE);
			continue;
		}
		atomic_fetch_and(&kv->req, ~KVM_REQ_PAUSE);
		pthread_mutex_lock(&kv->lock);
		pthread_cond_broadcast(&kv->cond);
		pthread_mutex_unlock(&kv->lock);
	}
}

void kvm_vm_stop(struct hv_domain *hd)
{
	unsigned i;

	for (i = 0; i < hd->d.nr_vcpus; i++)
		if (hd->d.vcpu[i] && hd->d.vcpu[i]->runner)
			kvm_vcpu_kick(hd->d.vcpu[i]->runner, KVM_REQ_STOP);
}

void kvm_vm_join(struct hv_domain *hd)
{
	unsigned i;

	for (i = 0; i < hd->d.nr_vcpus; i++) {
		struct kvm_vcpu_rt *kv = hd->d.vcpu[i] ? hd->d.vcpu[i]->runner : NULL;
		if (!kv || !kv->thread_started)
			continue;
		pthread_join(kv->thread, NULL);
		kv->thread_started = false;
	}
}

int kvm_read_tsc(struct vcpu *v, uint64_t *guest_tsc, uint64_t *mono_ns)
{
	struct kvm_vcpu_rt *kv = v->runner;

	if (!kv)
		return -ENODEV;
	*mono_ns = domain_mono_ns();
	*guest_tsc = kvm_rdtsc() + (uint64_t)kv->tsc_offset;
	return 0;
}

int kvm_block(struct vcpu *v, uint64_t deadline)
{
	struct kvm_vcpu_rt *kv = v->runner;
	struct timespec ts = {(time_t)(deadline / 1000000000ull), (long)(deadline % 1000000000ull)};
	int rc = 0, w = 0;

	vcpu_runstate_set(v, RUNSTATE_blocked, domain_now_ns(v->d));
	pthread_mutex_lock(&kv->lock);
	while (!kv->wake && !(atomic_load(&kv->req) & KVM_REQ_PARK) && w == 0)
		w = deadline ? pthread_cond_timedwait(&kv->cond, &kv->lock, &ts)
			     : pthread_cond_wait(&kv->cond, &kv->lock);
	if (kv->wake)
		kv->wake = false;
	else if (atomic_load(&kv->req) & KVM_REQ_PARK)
		rc = 1;
	else if (w == ETIMEDOUT)
		rc = -ETIMEDOUT;
	pthread_mutex_unlock(&kv->lock);
	vcpu_runstate_set(v, RUNSTATE_running, domain_now_ns(v->d));
	return rc;
}

/* HVM_PARAM_CALLBACK_IRQ of type vector: val = 2 << 56 | vector. */
static int kvm_callback_vector(struct domain *d)
{
	uint64_t val = __atomic_load_n(&d->hvm_params[HVM_PARAM_CALLBACK_IRQ], __ATOMIC_ACQUIRE);

	if ((val >> 56) != HVM_PARAM_CALLBACK_TYPE_VECTOR)
		return -1;
	if ((val & 0xff) < 0x10)
		return -1; /* not a deliverable vector */
	return (int)(val & 0xff);
}

void kvm_upcall(struct vcpu *v)
{
	struct kvm_vcpu_rt *kv = v->runner;
	struct kvm_vm *vm = v->d->runner;
	struct kvm_msi msi;
	int vec;

	if (!kv)
		return;
	kvm_wake(v);
	if (__atomic_load_n(&v->event_callback, __ATOMIC_ACQUIRE)) {
		/* A ring-3 kernel with upcalls masked takes what is pending itself when it unmasks (it
		 * checks evtchn_upcall_pending after clearing the mask, as the PV ABI asks; the store
		 * of upcall_pending before this load pairs with that), and SCHEDOP_block unmasks and
		 * checks here: a running vCPU is not kicked out of the guest for an event it cannot
		 * take yet. A guest polling the pending bits with upcalls masked sees them at once. */
		if (v->info && __atomic_load_n(&v->info->evtchn_upcall_mask, __ATOMIC_SEQ_CST))
			return;
		kvm_vcpu_kick(kv, KVM_REQ_EVENT); /* the frame is pushed before the next KVM_RUN */
		return;
	}
	vec = kvm_callback_vector(v->d);
	if (vec < 0 || !vm)
		return;
	memset(&msi, 0, sizeof(msi));
	msi.address_lo = 0xfee00000u | (v->id << 12); /* physical destination: the vCPU's APIC id */
	msi.data = (uint32_t)vec;		      /* fixed delivery, edge */
	if (ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) > 0)
		atomic_fetch_add_explicit(&v->upcalls, 1, memory_order_relaxed);
}

void kvm_wake(struct vcpu *v)
{
	struct kvm_vcpu_rt *kv = v->runner;

	if (!kv)
		return;
	pthread_mutex_lock(&kv->lock);
	kv->wake = true;
	pthread_cond_broadcast(&kv->cond);
	pthread_mutex_unlock(&kv->lock);
}

uint64_t kvm_cpu_time_ns(struct vcpu *v)
{
	struct kvm_vcpu_rt *kv = v->runner;
	struct timespec ts;
	uint64_t ns;

	if (!kv)
		return 0;
	pthread_mutex_lock(&kv->lock);
	if (kv->thread_started && !kv->exited && kv->cpu_clock != -1 &&
	    clock_gettime(kv->cpu_clock, &ts) == 0)
		ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	else
		ns = atomic_load(&kv->cpu_ns_final);
	pthread_mutex_unlock(&kv->lock);
	return ns;
}

int kvm_cpuid_template(struct kvm_ctx *k)
{
	struct kvm_cpuid2 *c;
	unsigned i, n = 0;

	c = calloc(1, sizeof(*c) + KVM_MAX_CPUID * sizeof(struct kvm_cpuid_entry2));
	if (!c)
		return -ENOMEM;
	c->nent = KVM_MAX_CPUID;
	if (ioctl(k->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int err = -errno;
		free(c);
		return err;
	}
	for (i = 0; i < c->nent; i++) {
		uint32_t f = c->entries[i].function;
		if (f >= 0x40000000u && f <= 0x4fffffffu)
			continue; /* KVM's own signature and features: not ours to advertise */
		c->entries[n++] = c->entries[i];
	}
	c->nent = n;
	k->cpuid = c;
	return 0;
}

static int kvm_cpuid_add(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx, bool indexed, uint32_t a,
			 uint32_t b, uint32_t cx, uint32_t d)
{
	struct kvm_cpuid_entry2 *e;

	if (c->nent >= KVM_MAX_CPUID)
		return -E2BIG;
	e = &c->entries[c->nent++];
	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	e->flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
	e->eax = a;
	e->ebx = b;
	e->ecx = cx;
	e->edx = d;
	return 0;
}

int kvm_cpuid_set(struct kvm_ctx *k, struct kvm_vcpu_rt *kv)
{
	size_t sz = sizeof(struct kvm_cpuid2) + KVM_MAX_CPUID * sizeof(struct kvm_cpuid_entry2);
	struct domain *d = kv->v->d;
	uint32_t id = kv->v->id, khz = d->tsc_khz;
	struct kvm_cpuid2 *c = malloc(sz);
	unsigned i;
	int rc = 0;

	if (!c)
		return -ENOMEM;
	memcpy(c, k->cpuid, sizeof(*c) + k->cpuid->nent * sizeof(struct kvm_cpuid_entry2));
	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == 1) {
			e->ebx = (e->ebx & 0x00ffffffu) | (id << 24); /* initial APIC id */
			e->ecx |= 1u << 31;			      /* running on a hypervisor */
		} else if (e->function == 0xb || e->function == 0x1f) {
			e->edx = id; /* x2APIC id */
		}
	}
	rc |= kvm_cpuid_add(c, XEN_CPUID_LEAF(0), 0, false, XEN_CPUID_LEAF(5), XEN_CPUID_SIGNATURE_EBX,
			    XEN_CPUID_SIGNATURE_ECX, XEN_CPUID_SIGNATURE_EDX);
	rc |= kvm_cpuid_add(c, XEN_CPUID_LEAF(1), 0, false, (LAMINA_XEN_MAJOR << 16) | LAMINA_XEN_MINOR, 0, 0,
			    0);
	/* One hypercall page, its MSR, no extra features. */
	rc |= kvm_cpuid_add(c, XEN_CPUID_LEAF(2), 0, false, 1, LAMINA_HYPERCALL_MSR, 0, 0);
	/* TSC: sub-leaf 0 mode/frequency (default mode, native TSC), 2 the host frequency. */
	rc |= kvm_cpuid_add(c, XEN_CPUID_LEAF(3), 0, true, 0, 0, khz, 0);
	rc |= kvm_cpuid_add(c, XEN_CPUID_LEAF(3), 1, true, 0, 0, 0, 0);
	rc |= kvm_cpuid_add(c, XEN_CPUID_LEAF(3), 2, true, khz, 0, 0, 0);
	/* HVM features: only what is true here, the vCPU and domain ids. */
	rc |= kvm_cpuid_add(c, XEN_CPUID_LEAF(4), 0, false,
			    XEN_HVM_CPUID_VCPU_ID_PRESENT | XEN_HVM_CPUID_DOMID_PRESENT, id, d->domid, 0);
	rc |= kvm_cpuid_add(c, XEN_CPUID_LEAF(5), 0, false, 0, 0, 0, 0);
	rc |= kvm_cpuid_add(c, LAMINA_CPUID_BASE, 0, false, LAMINA_CPUID_BASE + 1, LAMINA_CPUID_SIG_EBX,
			    LAMINA_CPUID_SIG_ECX, LAMINA_CPUID_SIG_EDX);
	rc |= kvm_cpuid_add(c, LAMINA_CPUID_BASE + 1, 0, false, LAMINA_PORT_HYPERCALL, LAMINA_PORT_NULL,
			    LAMINA_ABI_VERSION, 0);
	if (rc) {
		free(c);
		return -E2BIG;
	}
	if (ioctl(kv->fd, KVM_SET_CPUID2, c) < 0)
		rc = -errno;
	free(c);
	return rc;
}
