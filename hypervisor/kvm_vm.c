/* The KVM backend's VM side: /dev/kvm once per daemon, then per domain a VM with the RAM memfd
 * in slot 0, the in-kernel irqchip, user-space MSR exits (the hypercall MSR is filtered to us)
 * and every vCPU; extra hypervisor pages get a one-page slot each. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_runner.h"

static void kvm_kick_handler(int sig)
{
	/* Only interrupts KVM_RUN; immediate_exit carries the request. */
}

static int kvm_init(struct hv *hv, void **ctx)
{
	struct sigaction sa;
	struct kvm_ctx *k;
	const char *env;
	int rc, n;

	*ctx = NULL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->log = &hv->log;
	k->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->kvm_fd < 0) {
		rc = -errno;
		goto out_free;
	}
	if (ioctl(k->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		rc = -ENOTSUP;
		goto out_close;
	}
	n = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (n <= 0) {
		rc = -ENOTSUP;
		goto out_close;
	}
	k->run_size = (size_t)n;
	if (!(ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS) & (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) ||
	    ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0 ||
	    ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_USER_SPACE_MSR) <= 0) {
		hv_log(&hv->log, "kvm: SYNC_REGS, IMMEDIATE_EXIT and X86_USER_SPACE_MSR are required");
		rc = -ENOTSUP;
		goto out_close;
	}
	/* KVM leaves 0x40000000 to user space as an unknown MSR here, and a filter costs ~14 ms per
	 * VM (measured), so it is only installed where asked for: hosts whose KVM claims the index. */
	env = getenv("LAMINA_HV_MSR_FILTER");
	k->have_msr_filter = env && !strcmp(env, "1") &&
			     ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER) > 0;
	n = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	k->max_vcpus = n > 0 ? (unsigned)n : 1;
	rc = kvm_cpuid_template(k);
	if (rc < 0)
		goto out_close;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kvm_kick_handler; /* no SA_RESTART: KVM_RUN must return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(KVM_KICK_SIGNAL, &sa, NULL);
	*ctx = k;
	return 0;

out_close:
	close(k->kvm_fd);
out_free:
	free(k);
	return rc;
}

static void kvm_fini(void *ctx)
{
	struct kvm_ctx *k = ctx;

	close(k->kvm_fd);
	free(k->cpuid);
	free(k);
}

/* Writes to the hypercall MSR must reach us even where KVM would claim the index itself. */
static int kvm_msr_setup(struct kvm_ctx *k, int vm_fd)
{
	struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR};
	static const uint8_t deny = 0;
	struct kvm_msr_filter f;

	cap.args[0] = KVM_MSR_EXIT_REASON_UNKNOWN | KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_FILTER;
	if (ioctl(vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		return -errno;
	if (!k->have_msr_filter)
		return 0;
	memset(&f, 0, sizeof(f));
	f.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
	f.ranges[0].flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE;
	f.ranges[0].nmsrs = 1;
	f.ranges[0].base = LAMINA_HYPERCALL_MSR;
	f.ranges[0].bitmap = (uint8_t *)&deny;
	if (ioctl(vm_fd, KVM_X86_SET_MSR_FILTER, &f) < 0)
		return -errno;
	return 0;
}

static void kvm_vm_destroy(struct hv_domain *hd)
{
	struct domain *d = &hd->d;
	struct kvm_vm *vm = d->runner;
	unsigned i;

	for (i = 0; i < d->nr_vcpus; i++) {
		struct vcpu *v = d->vcpu[i];
		struct kvm_vcpu_rt *kv = v ? v->runner : NULL;
		if (!kv)
			continue;
		if (kv->run)
			munmap(kv->run, vm->k->run_size);
		if (kv->fd >= 0)
			close(kv->fd);
		pthread_mutex_destroy(&kv->lock);
		pthread_cond_destroy(&kv->cond);
		free(kv);
		v->runner = NULL;
	}
	if (vm) {
		if (vm->vm_fd >= 0)
			close(vm->vm_fd);
		pthread_mutex_destroy(&vm->slot_lock);
		free(vm);
	}
	d->runner = NULL;
}

static int kvm_vm_create(void *ctx, struct hv_domain *hd)
{
	struct kvm_ctx *k = ctx;
	struct domain *d = &hd->d;
	struct kvm_userspace_memory_region r;
	struct kvm_vm *vm;
	unsigned i;
	int rc;

	if (d->nr_vcpus > k->max_vcpus)
		return -E2BIG;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->k = k;
	pthread_mutex_init(&vm->slot_lock, NULL);
	d->runner = vm;
	vm->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		rc = -errno;
		goto out_destroy;
	}
	fcntl(vm->vm_fd, F_SETFD, FD_CLOEXEC);
	memset(&r, 0, sizeof(r));
	r.slot = 0;
	r.guest_phys_addr = 0;
	r.memory_size = d->mem.ram_size;
	r.userspace_addr = (uintptr_t)d->mem.ram;
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		rc = -errno;
		goto out_destroy;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		rc = -errno;
		goto out_destroy;
	}
	rc = kvm_msr_setup(k, vm->vm_fd);
	if (rc < 0)
		goto out_destroy;
	for (i = 0; i < d->nr_vcpus; i++) {
		struct kvm_vcpu_rt *kv = calloc(1, sizeof(*kv));
		if (!kv) {
			rc = -ENOMEM;
			goto out_destroy;
		}
		kv->fd = -1;
		kv->v = d->vcpu[i];
		kv->hd = hd;
		pthread_mutex_init(&kv->lock, NULL);
		pthread_cond_init(&kv->cond, NULL);
		d->vcpu[i]->runner = kv;
		rc = kvm_vcpu_create(vm, kv);
		if (rc < 0)
			goto out_destroy;
	}
	return 0;

out_destroy:
	kvm_vm_destroy(hd);
	return rc;
}

/* A hypervisor page at a guest frame outside RAM: its own slot, moved if placed again. */
static int kvm_map_page(struct domain *d, uint64_t gfn, void *page)
{
	struct kvm_vm *vm = d->runner;
	struct kvm_userspace_memory_region r;
	unsigned i;
	int rc;

	pthread_mutex_lock(&vm->slot_lock);
	rc = gmem_add_extra(&d->mem, gfn, page);
	if (rc < 0)
		goto out;
	for (i = 0; i < d->mem.nr_extra && d->mem.extra[i].page != page; i++)
		;
	memset(&r, 0, sizeof(r));
	r.slot = KVM_EXTRA_SLOT_BASE + i;
	/* A slot cannot move in place: delete it first (harmless when it does not exist yet). */
	ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
	r.guest_phys_addr = gfn * GMEM_PAGE_SIZE;
	r.memory_size = GMEM_PAGE_SIZE;
	r.userspace_addr = (uintptr_t)page;
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		rc = -errno;
out:
	pthread_mutex_unlock(&vm->slot_lock);
	return rc;
}

const struct hv_runner_ops kvm_runner_ops = {
	.name = "kvm",
	.init = kvm_init,
	.fini = kvm_fini,
	.vm_create = kvm_vm_create,
	.vm_start = kvm_vm_start,
	.vm_pause = kvm_vm_pause,
	.vm_stop = kvm_vm_stop,
	.vm_join = kvm_vm_join,
	.vm_destroy = kvm_vm_destroy,
	.map_page = kvm_map_page,
	.read_tsc = kvm_read_tsc,
	.block = kvm_block,
	.wake = kvm_wake,
	.cpu_time_ns = kvm_cpu_time_ns,
};
