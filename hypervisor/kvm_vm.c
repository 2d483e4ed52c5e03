/* The KVM backend's VM side: /dev/kvm once per daemon; VM shells (VM + in-kernel irqchip +
 * user-space MSR exits) built ahead by a filler thread, because KVM_CREATE_VM costs 0.2 ms with one
 * VM and 1.7 ms with 1000 live (kernel side, measured); per domain the RAM memfd in slot 0 and
 * every vCPU; extra hypervisor pages get a one-page slot each. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
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
	pthread_condattr_init(&k->cond_attr);
	pthread_condattr_setclock(&k->cond_attr, CLOCK_MONOTONIC);
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
	if (!(ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS) &
	      (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) ||
	    ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0 ||
	    ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_USER_SPACE_MSR) <= 0) {
		hv_log(&hv->log, "kvm: SYNC_REGS, IMMEDIATE_EXIT and X86_USER_SPACE_MSR are required");
		rc = -ENOTSUP;
		goto out_close;
	}
	/* KVM leaves 0x40000000 to user space as an unknown MSR here, and a filter costs ~14 ms per
	 * VM (measured), so it is only installed where asked for: hosts whose KVM claims the index. */
	env = getenv("LAMINA_HV_MSR_FILTER");
	k->have_msr_filter =
	    env && !strcmp(env, "1") && ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER) > 0;
	n = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	k->max_vcpus = n > 0 ? (unsigned)n : 1;
	rc = kvm_cpuid_template(k);
	if (rc < 0)
		goto out_close;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kvm_kick_handler; /* no SA_RESTART: KVM_RUN must return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(KVM_KICK_SIGNAL, &sa, NULL);
	env = getenv("LAMINA_HV_VM_POOL");
	rc = kvm_pool_start(k, env && *env ? (unsigned)strtoul(env, NULL, 10) : KVM_POOL_DEFAULT);
	if (rc < 0)
		goto out_cpuid;
	*ctx = k;
	return 0;

out_cpuid:
	free(k->cpuid);
out_close:
	close(k->kvm_fd);
out_free:
	free(k);
	return rc;
}

static void kvm_fini(void *ctx)
{
	struct kvm_ctx *k = ctx;

	kvm_pool_stop(k);
	close(k->kvm_fd);
	free(k->cpuid);
	free(k);
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

	if (d->nr_vcpus > k->max_vcpus) {
		rc = -E2BIG;
		goto out_destroy; /* a VM from kvm_mem_take goes too */
	}
	vm = d->runner;
	if (vm && vm->slot_ready)
		goto out_vcpus; /* kvm_mem_take: the RAM slot is set */
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->k = k;
	pthread_mutex_init(&vm->slot_lock, NULL);
	d->runner = vm;
	vm->vm_fd = -1;
	rc = kvm_pool_take(k, &vm->vm_fd);
	if (rc < 0)
		goto out_destroy;
	memset(&r, 0, sizeof(r));
	r.slot = 0;
	r.guest_phys_addr = 0;
	r.memory_size = d->mem.ram_size;
	if (d->special && d->special == d->mem.ram + d->mem.ram_size)
		r.memory_size += LAMINA_SPECIAL_COUNT * GMEM_PAGE_SIZE; /* the special region follows RAM */
	r.userspace_addr = (uintptr_t)d->mem.ram;
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		rc = -errno;
		goto out_destroy;
	}
out_vcpus:
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
		pthread_cond_init(&kv->cond, &k->cond_attr); /* CLOCK_MONOTONIC deadlines */
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

/* Another domain's granted frame at gfn (gnt_map.c): a one-page slot per map handle, read-only
 * for read-only maps (a guest write then exits as MMIO and is dropped); page NULL removes it. */
static int kvm_map_foreign(struct domain *d, unsigned idx, uint64_t gfn, void *page, bool ro)
{
	struct kvm_vm *vm = d->runner;
	struct kvm_userspace_memory_region r;
	int rc = 0;

	if (!vm)
		return -ESRCH;
	memset(&r, 0, sizeof(r));
	r.slot = KVM_FOREIGN_SLOT_BASE + idx;
	if (page) {
		r.guest_phys_addr = gfn * GMEM_PAGE_SIZE;
		r.memory_size = GMEM_PAGE_SIZE;
		r.userspace_addr = (uintptr_t)page;
		r.flags = ro ? KVM_MEM_READONLY : 0;
	}
	pthread_mutex_lock(&vm->slot_lock);
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		rc = -errno;
	pthread_mutex_unlock(&vm->slot_lock);
	return rc;
}

const struct hv_runner_ops kvm_runner_ops = {
    .name = "kvm",
    .init = kvm_init,
    .fini = kvm_fini,
    .mem_take = kvm_mem_take,
    .mem_hint = kvm_mem_hint,
    .vm_create = kvm_vm_create,
    .vm_start = kvm_vm_start,
    .vm_pause = kvm_vm_pause,
    .vm_stop = kvm_vm_stop,
    .vm_join = kvm_vm_join,
    .vm_destroy = kvm_vm_destroy,
    .map_page = kvm_map_page,
    .map_foreign = kvm_map_foreign,
    .read_tsc = kvm_read_tsc,
    .block = kvm_block,
    .wake = kvm_wake,
    .upcall = kvm_upcall,
    .vcpu_up = kvm_vcpu_up,
    .vcpu_down = kvm_vcpu_down,
    .cpu_time_ns = kvm_cpu_time_ns,
    .vcpu_regs = kvm_vcpu_regs,
};

/* A VM with the in-kernel irqchip and user-space MSR exits (plus the hypercall-MSR filter where
 * asked for): everything that does not depend on the domain. */
int kvm_shell_create(struct kvm_ctx *k, int *fd_out)
{
	struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR};
	static const uint8_t deny = 0;
	struct kvm_msr_filter f;
	int fd, rc;

	fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (fd < 0)
		return -errno;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (ioctl(fd, KVM_CREATE_IRQCHIP, 0) < 0)
		goto out_errno;
	cap.args[0] = KVM_MSR_EXIT_REASON_UNKNOWN | KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_FILTER;
	if (ioctl(fd, KVM_ENABLE_CAP, &cap) < 0)
		goto out_errno;
	if (k->have_msr_filter) {
		memset(&f, 0, sizeof(f));
		f.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
		f.ranges[0].flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE;
		f.ranges[0].nmsrs = 1;
		f.ranges[0].base = LAMINA_HYPERCALL_MSR;
		f.ranges[0].bitmap = (uint8_t *)&deny;
		if (ioctl(fd, KVM_X86_SET_MSR_FILTER, &f) < 0)
			goto out_errno;
	}
	*fd_out = fd;
	return 0;

out_errno:
	rc = -errno;
	close(fd);
	return rc;
}

static void *kvm_pool_main(void *arg)
{
	struct kvm_pool *p = arg;
	int fd;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->quit && p->n >= p->target && !kvm_pool_mem_wanted(p))
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->quit)
			break;
		/* Refill only once creates have gone quiet for KVM_POOL_SETTLE_NS (unless the pool or
		 * its memory sets are empty): building a VM while a create sets up its own slot and vCPU slows that create
		 * down in the kernel (measured: the RAM slot ioctl 0.05 -> 1.9 ms). */
		if (p->n > 0 && !kvm_pool_mem_empty(p) && domain_mono_ns() - p->last_take_ns < KVM_POOL_SETTLE_NS) {
			struct timespec ts = {0, (long)KVM_POOL_SETTLE_NS};
			pthread_mutex_unlock(&p->lock);
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&p->lock);
			continue;
		}
		if (kvm_pool_mem_wanted(p)) {
			kvm_pool_mem_fill(p); /* memory sets first: a bare shell is only the fallback */
			continue;
		}
		pthread_mutex_unlock(&p->lock);
		if (kvm_shell_create(p->k, &fd) < 0) {
			hv_log(p->k->log, "kvm: pre-building a VM failed; creates build their own");
			pthread_mutex_lock(&p->lock);
			p->target = 0;
			continue;
		}
		pthread_mutex_lock(&p->lock);
		p->fds[p->n++] = fd;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int kvm_pool_start(struct kvm_ctx *k, unsigned target)
{
	struct kvm_pool *p = &k->pool;
	pthread_attr_t attr;
	sigset_t all, old;
	int rc;

	memset(p, 0, sizeof(*p));
	p->k = k;
	p->target = target > KVM_POOL_MAX ? KVM_POOL_MAX : target;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if (!p->target)
		return 0;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 128u << 10);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&p->thread, &attr, kvm_pool_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc == 0)
		p->started = true;
	return rc;
}

void kvm_pool_stop(struct kvm_ctx *k)
{
	struct kvm_pool *p = &k->pool;

	pthread_mutex_lock(&p->lock);
	p->quit = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (p->started)
		pthread_join(p->thread, NULL);
	while (p->n)
		close(p->fds[--p->n]);
	while (p->nm)
		kvm_pool_mem_free(&p->mems[--p->nm]);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
}

/* A ready shell if the pool has one (and the filler is told to replace it), else a new one. */
int kvm_pool_take(struct kvm_ctx *k, int *fd_out)
{
	struct kvm_pool *p = &k->pool;
	int fd = -1;

	pthread_mutex_lock(&p->lock);
	p->last_take_ns = domain_mono_ns();
	if (p->n) {
		fd = p->fds[--p->n];
		pthread_cond_signal(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	if (fd >= 0) {
		*fd_out = fd;
		return 0;
	}
	return kvm_shell_create(k, fd_out);
}
