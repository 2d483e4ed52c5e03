/* Pooled VMs with their guest memory built ahead of time. Creating a domain's RAM memfd, mapping
 * it with the special region behind it and giving the VM its RAM slot all change the daemon's
 * address space or KVM's memslots; with many live VMs each such change pays for every VM's
 * MMU notifier and an SRCU grace period, milliseconds under load (measured). The filler thread
 * does that work while creates are quiet, for the memory size the last create asked for; a create
 * of that size only takes a ready set. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_runner.h"

#define KVM_SPECIAL_SIZE ((uint64_t)LAMINA_SPECIAL_COUNT * GMEM_PAGE_SIZE)
#define KVM_MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#define KVM_POP_MAX (64ull << 20)	/* the most populated ahead per set */

/* A sealed memfd of size bytes (sealed: Domain-0 gets descriptors of these). */
static int kvm_pool_memfd(const char *label, uint64_t size)
{
	int fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING), rc;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

void kvm_pool_mem_free(struct kvm_pool_mem *m)
{
	if (m->base)
		munmap(m->base, (size_t)(m->ram_size + KVM_SPECIAL_SIZE));
	if (m->memfd >= 0)
		close(m->memfd);
	if (m->special_fd >= 0)
		close(m->special_fd);
	if (m->vm_fd >= 0)
		close(m->vm_fd);
	memset(m, 0, sizeof(*m));
	m->vm_fd = m->memfd = m->special_fd = -1;
}

/* The same layout special.c gives a domain built without the pool: RAM, then the special pages,
 * one mapping range, one slot over both. */
int kvm_pool_mem_build(struct kvm_ctx *k, uint64_t ram_size, uint64_t pop_lo, uint64_t pop_hi,
		       struct kvm_pool_mem *m)
{
	struct kvm_userspace_memory_region r;
	uint8_t *p;
	int rc;

	memset(m, 0, sizeof(*m));
	m->vm_fd = m->memfd = m->special_fd = -1;
	m->ram_size = ram_size;
	if (ram_size == 0 || ram_size % GMEM_PAGE_SIZE || ram_size > (uint64_t)SIZE_MAX / 2)
		return -EINVAL;
	rc = kvm_shell_create(k, &m->vm_fd);
	if (rc < 0)
		goto out_free;
	rc = m->memfd = kvm_pool_memfd("lamina-ram:pool", ram_size);
	if (rc < 0)
		goto out_free;
	rc = m->special_fd = kvm_pool_memfd("lamina-special", KVM_SPECIAL_SIZE);
	if (rc < 0)
		goto out_free;
	p = mmap(NULL, (size_t)(ram_size + KVM_SPECIAL_SIZE), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	if (p == MAP_FAILED)
		goto out_errno;
	m->base = p;
	if (mmap(p, (size_t)ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE | MAP_FIXED, m->memfd, 0) ==
		MAP_FAILED ||
	    mmap(p + ram_size, KVM_SPECIAL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, m->special_fd, 0) ==
		MAP_FAILED)
		goto out_errno;
	memset(&r, 0, sizeof(r));
	r.slot = 0;
	r.memory_size = ram_size + KVM_SPECIAL_SIZE;
	r.userspace_addr = (uintptr_t)p;
	if (ioctl(m->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		goto out_errno;
	/* The pages the next boot will write, faulted in here rather than during that create
	 * (with many live VMs a fault there waited milliseconds behind other address-space work).
	 * Best effort: a kernel without MADV_POPULATE_WRITE leaves them to the loader. */
	if (pop_hi > pop_lo && pop_hi <= ram_size)
		madvise(p + pop_lo, (size_t)(pop_hi - pop_lo), KVM_MADV_POPULATE_WRITE);
	return 0;

out_errno:
	rc = -errno;
out_free:
	kvm_pool_mem_free(m);
	return rc;
}

/* Memory sets are wanted when fewer than target of the current size are ready, or when one of
 * a size no longer asked for can go. Pool lock held. */
bool kvm_pool_mem_wanted(const struct kvm_pool *p)
{
	unsigned ready = 0;

	for (unsigned i = 0; i < p->nm; i++) {
		if (p->mems[i].ram_size != p->mem_size)
			return true;
		ready++;
	}
	return p->mem_size && !p->mem_failed && ready < p->target;
}

/* No memory set of the size creates ask for is ready: build one at once, as for shells. */
bool kvm_pool_mem_empty(const struct kvm_pool *p)
{
	for (unsigned i = 0; i < p->nm; i++)
		if (p->mems[i].ram_size == p->mem_size)
			return false;
	return p->mem_size && !p->mem_failed;
}

/* One step of memory-set upkeep, with the pool lock dropped around the work: discard a set of a
 * stale size, else build one of the current size. Pool lock held on entry and return. */
void kvm_pool_mem_fill(struct kvm_pool *p)
{
	struct kvm_pool_mem m;
	uint64_t size = p->mem_size;

	for (unsigned i = 0; i < p->nm; i++) {
		if (p->mems[i].ram_size == size)
			continue;
		m = p->mems[i];
		p->mems[i] = p->mems[--p->nm];
		pthread_mutex_unlock(&p->lock);
		kvm_pool_mem_free(&m);
		pthread_mutex_lock(&p->lock);
		return;
	}
	uint64_t lo = p->pop_lo, hi = p->pop_hi;

	pthread_mutex_unlock(&p->lock);
	if (kvm_pool_mem_build(p->k, size, lo, hi, &m) < 0) {
		hv_log(p->k->log, "kvm: pre-building guest memory of %llu KiB failed; creates build their own",
		       (unsigned long long)(size >> 10));
		pthread_mutex_lock(&p->lock);
		p->mem_failed = true;
		return;
	}
	pthread_mutex_lock(&p->lock);
	if (p->nm < KVM_POOL_MAX && !p->quit) {
		p->mems[p->nm++] = m;
		return;
	}
	pthread_mutex_unlock(&p->lock);
	kvm_pool_mem_free(&m);
	pthread_mutex_lock(&p->lock);
}

/* The range the last boot wrote, page-aligned and bounded: the filler populates it in new sets. */
void kvm_mem_hint(void *ctx, uint64_t lo, uint64_t hi)
{
	struct kvm_pool *p = &((struct kvm_ctx *)ctx)->pool;

	lo &= ~(uint64_t)(GMEM_PAGE_SIZE - 1);
	hi = (hi + GMEM_PAGE_SIZE - 1) & ~(uint64_t)(GMEM_PAGE_SIZE - 1);
	if (hi <= lo || hi - lo > KVM_POP_MAX)
		lo = hi = 0;
	pthread_mutex_lock(&p->lock);
	p->pop_lo = lo;
	p->pop_hi = hi;
	pthread_mutex_unlock(&p->lock);
}

/* Takes a ready set of ram_size for hd and remembers the size for the filler. */
int kvm_mem_take(void *ctx, struct hv_domain *hd, uint64_t ram_size)
{
	struct kvm_ctx *k = ctx;
	struct kvm_pool *p = &k->pool;
	struct domain *d = &hd->d;
	struct kvm_pool_mem m = {.vm_fd = -1};
	struct kvm_vm *vm;
	bool found = false;

	if (!p->target || d->runner)
		return -ENOENT;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	pthread_mutex_lock(&p->lock);
	p->last_take_ns = domain_mono_ns();
	if (p->mem_size != ram_size) {
		p->mem_size = ram_size; /* the filler builds this size from now on */
		pthread_cond_signal(&p->cond);
	}
	for (unsigned i = 0; i < p->nm; i++) {
		if (p->mems[i].ram_size != ram_size)
			continue;
		m = p->mems[i];
		p->mems[i] = p->mems[--p->nm];
		found = true;
		pthread_cond_signal(&p->cond); /* the filler replaces it */
		break;
	}
	pthread_mutex_unlock(&p->lock);
	if (!found) {
		free(vm);
		return -ENOENT;
	}
	d->mem.memfd = m.memfd;
	d->mem.ram = m.base;
	d->mem.ram_size = ram_size;
	d->mem.nr_extra = 0;
	d->special = m.base + ram_size;
	d->special_fd = m.special_fd;
	vm->k = k;
	vm->vm_fd = m.vm_fd;
	vm->slot_ready = true;
	pthread_mutex_init(&vm->slot_lock, NULL);
	d->runner = vm;
	return 0;
}
