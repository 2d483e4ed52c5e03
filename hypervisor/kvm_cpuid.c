/* The CPUID a Lamina vCPU sees: what KVM supports, without KVM's own hypervisor leaves, plus
 * Xen's leaves at 0x40000000 (so PVH guests find the hypercall MSR) and Lamina's at 0x40000100. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm_runner.h"
#include <xen/arch-x86/cpuid.h>

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

static int kvm_cpuid_add(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx, bool indexed, uint32_t a, uint32_t b,
			 uint32_t cx, uint32_t d)
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
			e->ecx |= 1u << 31;                            /* running on a hypervisor */
		} else if (e->function == 0xb || e->function == 0x1f) {
			e->edx = id; /* x2APIC id */
		}
	}
	rc |= kvm_cpuid_add(c, XEN_CPUID_LEAF(0), 0, false, XEN_CPUID_LEAF(5), XEN_CPUID_SIGNATURE_EBX,
			    XEN_CPUID_SIGNATURE_ECX, XEN_CPUID_SIGNATURE_EDX);
	rc |= kvm_cpuid_add(c, XEN_CPUID_LEAF(1), 0, false, (LAMINA_XEN_MAJOR << 16) | LAMINA_XEN_MINOR, 0, 0, 0);
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
