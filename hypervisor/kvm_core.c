/* The KVM side of core dumps: a vCPU's registers read from outside its thread, only while that
 * thread is parked (it holds no KVM_RUN and cannot leave the park while we hold its lock) or has
 * ended. Values an exit handler changed but KVM has not loaded yet (dirty sync regs) win. */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "core_elf.h"
#include "kvm_runner.h"

#define KVM_REGS_WAIT_NS 2000000000ull /* how long a vCPU may take to park */
#define KVM_REGS_SLICE_NS 5000000ull   /* re-check (an ended thread does not signal) */

static void kvm_core_convert(const struct kvm_regs *r, const struct kvm_sregs *s, struct core_elf_vcpu *out)
{
	struct user_regs_struct *u = &out->regs;

	memset(u, 0, sizeof(*u));
	u->r15 = r->r15;
	u->r14 = r->r14;
	u->r13 = r->r13;
	u->r12 = r->r12;
	u->rbp = r->rbp;
	u->rbx = r->rbx;
	u->r11 = r->r11;
	u->r10 = r->r10;
	u->r9 = r->r9;
	u->r8 = r->r8;
	u->rax = r->rax;
	u->rcx = r->rcx;
	u->rdx = r->rdx;
	u->rsi = r->rsi;
	u->rdi = r->rdi;
	u->orig_rax = ~0ull; /* not in a system call: debuggers must not "restart" anything */
	u->rip = r->rip;
	u->cs = s->cs.selector;
	u->eflags = r->rflags;
	u->rsp = r->rsp;
	u->ss = s->ss.selector;
	u->fs_base = s->fs.base;
	u->gs_base = s->gs.base;
	u->ds = s->ds.selector;
	u->es = s->es.selector;
	u->fs = s->fs.selector;
	u->gs = s->gs.selector;
	out->sys.cr0 = s->cr0;
	out->sys.cr2 = s->cr2;
	out->sys.cr3 = s->cr3;
	out->sys.cr4 = s->cr4;
	out->sys.efer = s->efer;
	out->sys.flags |= CORE_VCPU_REGS;
}

int kvm_vcpu_regs(struct vcpu *v, struct core_elf_vcpu *out)
{
	struct kvm_vcpu_rt *kv = v->runner;
	uint64_t deadline = domain_mono_ns() + KVM_REGS_WAIT_NS;
	struct kvm_sregs s;
	struct kvm_regs r;
	int rc = 0;

	if (!kv || kv->fd < 0)
		return -ENODEV;
	pthread_mutex_lock(&kv->lock);
	if (!kv->thread_started && !kv->exited) {
		rc = -ENODATA; /* a secondary vCPU never brought up: KVM holds only its reset state */
		goto out_unlock;
	}
	while (kv->thread_started && !kv->exited && !kv->parked) {
		uint64_t now = domain_mono_ns(), until = now + KVM_REGS_SLICE_NS;
		struct timespec ts;

		if (now >= deadline) {
			rc = -EBUSY;
			goto out_unlock;
		}
		if (until > deadline)
			until = deadline;
		ts.tv_sec = (time_t)(until / 1000000000ull);
		ts.tv_nsec = (long)(until % 1000000000ull);
		pthread_cond_timedwait(&kv->cond, &kv->lock, &ts); /* the cond runs on CLOCK_MONOTONIC */
	}
	if (ioctl(kv->fd, KVM_GET_REGS, &r) < 0 || ioctl(kv->fd, KVM_GET_SREGS, &s) < 0) {
		rc = -errno;
		goto out_unlock;
	}
	if (kv->run && (kv->run->kvm_dirty_regs & KVM_SYNC_X86_REGS))
		r = kv->run->s.regs.regs;
	if (kv->run && (kv->run->kvm_dirty_regs & KVM_SYNC_X86_SREGS))
		s = kv->run->s.regs.sregs;
	kvm_core_convert(&r, &s, out);
out_unlock:
	pthread_mutex_unlock(&kv->lock);
	return rc;
}
