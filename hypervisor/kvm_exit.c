/* The vCPU thread: KVM_RUN in a loop, the null-port exit handled first and alone (it is the
 * benchmark floor), every other exit dispatched by reason and, for port I/O, by port. A guest
 * that does something fatal crashes its own domain, never the daemon. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "hypercall.h"
#include "kvm_runner.h"
#include <xen/sched.h>
#include <xen/vcpu.h>

#define KVM_PORT_DEBUGCON 0xe9 /* Xen's debug console port */
#define KVM_EXIT_STOP (-1)

static void kvm_crash(struct kvm_vcpu_rt *kv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void kvm_crash(struct kvm_vcpu_rt *kv, const char *fmt, ...)
{
	const struct kvm_regs *r = &kv->run->s.regs.regs;
	char why[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(why))
		snprintf(why + n, sizeof(why) - (size_t)n, " (vcpu%u rip=%#llx)", kv->v->id,
			 (unsigned long long)r->rip);
	hv_domain_stop(kv->hd, SHUTDOWN_crash, why);
}

static int kvm_io_hypercall(struct kvm_vcpu_rt *kv, uint8_t *data, size_t len)
{
	struct kvm_regs *r = &kv->run->s.regs.regs;
	const uint64_t arg[HYPERCALL_NR_ARGS] = {r->rdi, r->rsi, r->rdx, r->r10, r->r8};

	r->rax = (uint64_t)hypercall_dispatch(kv->v, r->rax, arg);
	kv->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	return 0;
}

static int kvm_io_debugcon(struct kvm_vcpu_rt *kv, uint8_t *data, size_t len)
{
	struct domain *d = kv->v->d;

	d->ops->console_write(d, (const char *)data, len);
	return 0;
}

static const struct kvm_port_desc {
	uint16_t port;
	const char *name;
	int (*out)(struct kvm_vcpu_rt *kv, uint8_t *data, size_t len);
} kvm_port_table[] = {
    {LAMINA_PORT_HYPERCALL, "hypercall", kvm_io_hypercall},
    {KVM_PORT_DEBUGCON, "debugcon", kvm_io_debugcon},
};

/* IN from anything reads all-ones; OUT to anything but our ports is ignored (nothing there). */
static int kvm_exit_io(struct kvm_vcpu_rt *kv)
{
	struct kvm_run *run = kv->run;
	size_t len = (size_t)run->io.size * run->io.count;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	unsigned i;

	size_t run_size = ((struct kvm_vm *)kv->hd->d.runner)->k->run_size;

	if (run->io.data_offset > run_size || len > run_size - run->io.data_offset)
		return 0; /* not something KVM produces; leave the guest as it is */
	if (run->io.direction == KVM_EXIT_IO_IN) {
		memset(data, 0xff, len);
		return 0;
	}
	for (i = 0; i < sizeof(kvm_port_table) / sizeof(kvm_port_table[0]); i++)
		if (kvm_port_table[i].port == run->io.port)
			return kvm_port_table[i].out(kv, data, len);
	return 0;
}

static int kvm_exit_mmio(struct kvm_vcpu_rt *kv)
{
	if (!kv->run->mmio.is_write)
		memset(kv->run->mmio.data, 0xff, sizeof(kv->run->mmio.data));
	return 0;
}

/* The hypercall-page MSR: page-aligned GPA in RAM, page index 0. Anything else is #GP. */
static int kvm_exit_wrmsr(struct kvm_vcpu_rt *kv)
{
	struct kvm_run *run = kv->run;
	struct domain *d = kv->v->d;
	uint64_t val = run->msr.data, gpa = val & ~0xfffull;
	char msg[96];

	run->msr.error = 1;
	if (run->msr.index == LAMINA_HYPERCALL_MSR) {
		if ((val & 0xfff) == 0 && gpa < d->mem.ram_size && d->mem.ram_size - gpa >= GMEM_PAGE_SIZE) {
			hypercall_page_fill(d->mem.ram + gpa);
			run->msr.error = 0;
		}
		return 0;
	}
	snprintf(msg, sizeof(msg), "wrmsr %#x (unknown) -> #GP", run->msr.index);
	d->ops->log(d, msg);
	return 0;
}

static int kvm_exit_rdmsr(struct kvm_vcpu_rt *kv)
{
	struct domain *d = kv->v->d;
	char msg[96];

	kv->run->msr.error = 1;
	kv->run->msr.data = 0;
	snprintf(msg, sizeof(msg), "rdmsr %#x (unknown) -> #GP", kv->run->msr.index);
	d->ops->log(d, msg);
	return 0;
}

/* With the in-kernel irqchip HLT stays in the kernel; should one reach us, it blocks like
 * SCHEDOP_block until something wakes the vCPU. */
static int kvm_exit_hlt(struct kvm_vcpu_rt *kv)
{
	kvm_block(kv->v, 0);
	return 0;
}

static int kvm_exit_shutdown(struct kvm_vcpu_rt *kv)
{
	kvm_crash(kv, "triple fault");
	return KVM_EXIT_STOP;
}

static int kvm_exit_fail_entry(struct kvm_vcpu_rt *kv)
{
	kvm_crash(kv, "VM entry failed, hardware reason %#llx",
		  (unsigned long long)kv->run->fail_entry.hardware_entry_failure_reason);
	return KVM_EXIT_STOP;
}

static int kvm_exit_internal(struct kvm_vcpu_rt *kv)
{
	kvm_crash(kv, "KVM internal error, suberror %u (an instruction the platform cannot run)",
		  kv->run->internal.suberror);
	return KVM_EXIT_STOP;
}

static int kvm_exit_system_event(struct kvm_vcpu_rt *kv)
{
	unsigned type = kv->run->system_event.type;

	if (type == KVM_SYSTEM_EVENT_SHUTDOWN)
		hv_domain_stop(kv->hd, SHUTDOWN_poweroff, NULL);
	else if (type == KVM_SYSTEM_EVENT_RESET)
		hv_domain_stop(kv->hd, SHUTDOWN_reboot, NULL);
	else
		kvm_crash(kv, "system event %u", type);
	return KVM_EXIT_STOP;
}

static int kvm_exit_nothing(struct kvm_vcpu_rt *kv)
{
	return 0;
}

static int (*const kvm_exit_table[])(struct kvm_vcpu_rt *kv) = {
    [KVM_EXIT_IO] = kvm_exit_io,
    [KVM_EXIT_MMIO] = kvm_exit_mmio,
    [KVM_EXIT_HLT] = kvm_exit_hlt,
    [KVM_EXIT_SHUTDOWN] = kvm_exit_shutdown,
    [KVM_EXIT_FAIL_ENTRY] = kvm_exit_fail_entry,
    [KVM_EXIT_INTERNAL_ERROR] = kvm_exit_internal,
    [KVM_EXIT_SYSTEM_EVENT] = kvm_exit_system_event,
    [KVM_EXIT_INTR] = kvm_exit_nothing,
    [KVM_EXIT_IRQ_WINDOW_OPEN] = kvm_exit_nothing,
    [KVM_EXIT_X86_RDMSR] = kvm_exit_rdmsr,
    [KVM_EXIT_X86_WRMSR] = kvm_exit_wrmsr,
};

void kvm_fill_sys(struct kvm_vcpu_rt *kv)
{
	const struct kvm_sregs *s = &kv->run->s.regs.sregs;
	struct vcpu_sysregs *sys = &kv->v->sys;

	sys->cr0 = s->cr0;
	sys->cr3 = s->cr3;
	sys->cr4 = s->cr4;
	sys->efer = s->efer;
	sys->cpl = s->cs.dpl;
}

/* A ring-3 kernel's event upcall (include/lamina/abi.h): set evtchn_upcall_mask, push rflags and
 * rip below rsp, enter the callback. The instruction that exited last (port I/O, MSR) is
 * completed first by a KVM_RUN with immediate_exit set, so the frame's rip is the one after it;
 * that run enters no guest code. Only at CPL 3: elsewhere the upcall waits for a later resume. */
/* After the completing run: immediate_exit off, unless a kick (pause, stop) came meanwhile —
 * kickers set the request bit before immediate_exit, so it is never lost here. */
static void kvm_upcall_rearm(struct kvm_vcpu_rt *kv)
{
	__atomic_store_n(&kv->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	if (atomic_load(&kv->req) & KVM_REQ_PARK)
		__atomic_store_n(&kv->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

void kvm_upcall_deliver(struct kvm_vcpu_rt *kv)
{
	struct kvm_run *run = kv->run;
	struct vcpu *v = kv->v;
	struct vcpu_info *vi = v->info;
	uint64_t cb = __atomic_load_n(&v->event_callback, __ATOMIC_ACQUIRE), frame[2];
	struct kvm_regs *r = &run->s.regs.regs;

	if (!vi || !cb || !__atomic_load_n(&vi->evtchn_upcall_pending, __ATOMIC_SEQ_CST) ||
	    __atomic_load_n(&vi->evtchn_upcall_mask, __ATOMIC_SEQ_CST))
		return;
	if (run->s.regs.sregs.cs.dpl != 3)
		return; /* in the kernel's ring-0 code: no flush run until it is back in ring 3 */
	__atomic_store_n(&run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (ioctl(kv->fd, KVM_RUN, 0) == 0) {
		/* completing the last instruction needed user space again: not from a fast port
		 * exit; the event waits for the next resume */
		kvm_upcall_rearm(kv);
		return;
	}
	kvm_upcall_rearm(kv);
	kvm_fill_sys(kv);
	if (v->sys.cpl != 3)
		return;
	frame[0] = r->rflags;
	frame[1] = r->rip;
	if (gmem_copy_to_guest(v, r->rsp - LAMINA_UPCALL_FRAME_SIZE, frame, sizeof(frame))) {
		kvm_crash(kv, "event upcall: the stack below rsp %#llx is not writable",
			  (unsigned long long)r->rsp);
		return;
	}
	__atomic_store_n(&vi->evtchn_upcall_mask, 1, __ATOMIC_SEQ_CST);
	r->rsp -= LAMINA_UPCALL_FRAME_SIZE;
	r->rip = cb;
	run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	atomic_fetch_add_explicit(&v->upcalls, 1, memory_order_relaxed);
}
_Static_assert(LAMINA_UPCALL_FRAME_SIZE == 2 * sizeof(uint64_t), "the frame is rflags and rip");

static void kvm_thread_end(struct kvm_vcpu_rt *kv)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
		atomic_store(&kv->cpu_ns_final, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
	vcpu_runstate_set(kv->v, RUNSTATE_offline, domain_now_ns(kv->v->d));
	pthread_mutex_lock(&kv->lock);
	kv->exited = true;
	pthread_mutex_unlock(&kv->lock);
}

void *kvm_vcpu_thread(void *arg)
{
	struct kvm_vcpu_rt *kv = arg;
	struct kvm_run *run = kv->run;
	struct vcpu *v = kv->v;
	int (*fn)(struct kvm_vcpu_rt * kv);
	sigset_t set;
	uint32_t reason;

	sigemptyset(&set);
	sigaddset(&set, KVM_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	vcpu_runstate_set(v, RUNSTATE_running, domain_now_ns(v->d));
	for (;;) {
		unsigned req = atomic_load_explicit(&kv->req, memory_order_acquire);
		if (req) {
			if (req & KVM_REQ_EVENT)
				atomic_fetch_and(&kv->req, ~KVM_REQ_EVENT);
			if ((req & KVM_REQ_PARK) && kvm_vcpu_park(kv))
				break;
			if (atomic_fetch_and(&kv->req, ~KVM_REQ_LOAD) & KVM_REQ_LOAD) {
				int rc = kvm_vcpu_load_start(kv);
				if (rc < 0) {
					kvm_crash(kv, "loading the VCPUOP_initialise state: %s", strerror(-rc));
					break;
				}
			}
		}
		if (__builtin_expect(v->event_callback != 0, 0))
			kvm_upcall_deliver(kv);
		if (ioctl(kv->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				continue;
			}
			kvm_crash(kv, "KVM_RUN failed: %s", strerror(errno));
			break;
		}
		atomic_fetch_add_explicit(&v->exits, 1, memory_order_relaxed);
		reason = run->exit_reason;
		if (__builtin_expect(reason == KVM_EXIT_IO && run->io.port == LAMINA_PORT_NULL &&
					 run->io.direction == KVM_EXIT_IO_OUT,
				     1))
			continue;
		kvm_fill_sys(kv);
		fn = reason < sizeof(kvm_exit_table) / sizeof(kvm_exit_table[0]) ? kvm_exit_table[reason]
										 : NULL;
		if (!fn) {
			kvm_crash(kv, "unexpected KVM exit %u", reason);
			break;
		}
		if (fn(kv) == KVM_EXIT_STOP)
			break;
	}
	kvm_thread_end(kv);
	return NULL;
}
