/* xen_version: what a Lamina domain is told about the hypervisor it runs on. Lamina guests are
 * never privileged, so the sub-commands Xen keeps for privileged domains answer -EPERM. */
#include <stdio.h>
#include <string.h>

#include "hc_handlers.h"

#include <xen/version.h>

#define HC_VERSION_CAPABILITIES "hvm-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p"
#define HC_VERSION_CHANGESET "lamina"

/* XENFEAT_* bits true for every Lamina domain: translated physmap (the guest writes its own page
 * and descriptor tables; PAE page directories may live anywhere); the pvclock in shared_info
 * is safe to use; no domain is direct-mapped. */
#define HC_VERSION_FEATURES                                                                                  \
	((1u << XENFEAT_writable_page_tables) | (1u << XENFEAT_writable_descriptor_tables) |                 \
	 (1u << XENFEAT_auto_translated_physmap) | (1u << XENFEAT_pae_pgdir_above_4gb) |                     \
	 (1u << XENFEAT_hvm_safe_pvclock) | (1u << XENFEAT_not_direct_mapped))

_Static_assert(sizeof(xen_extraversion_t) == 16, "extraversion is 16 bytes");
_Static_assert(sizeof(LAMINA_EXTRAVERSION) <= sizeof(xen_extraversion_t), "extraversion fits");
_Static_assert(sizeof(struct xen_compile_info) == 144, "compile_info is 144 bytes");
_Static_assert(sizeof(struct xen_feature_info) == 8, "feature_info is 8 bytes");
_Static_assert(sizeof(struct xen_platform_parameters) == 8, "platform_parameters is 8 bytes");
_Static_assert(sizeof(xen_domain_handle_t) == 16, "domain handle is 16 bytes");

static long hc_version_version(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	return (LAMINA_XEN_MAJOR << 16) | LAMINA_XEN_MINOR;
}

static long hc_version_extraversion(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	xen_extraversion_t ev = {0};

	memcpy(ev, LAMINA_EXTRAVERSION, sizeof(LAMINA_EXTRAVERSION));
	return hc_copy_out(v, arg[1], ev, sizeof(ev));
}

static long hc_version_compile_info(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct xen_compile_info ci;

	memset(&ci, 0, sizeof(ci));
	snprintf(ci.compiler, sizeof(ci.compiler), "%s", __VERSION__);
	snprintf(ci.compile_by, sizeof(ci.compile_by), "lamina");
	snprintf(ci.compile_domain, sizeof(ci.compile_domain), "localdomain");
	snprintf(ci.compile_date, sizeof(ci.compile_date), "%s", __DATE__);
	return hc_copy_out(v, arg[1], &ci, sizeof(ci));
}

static long hc_version_capabilities(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	static const xen_capabilities_info_t caps = HC_VERSION_CAPABILITIES;

	return hc_copy_out(v, arg[1], caps, sizeof(caps));
}

static long hc_version_changeset(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	static const xen_changeset_info_t cs = HC_VERSION_CHANGESET;

	return hc_copy_out(v, arg[1], cs, sizeof(cs));
}

static long hc_version_platform(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct xen_platform_parameters pp = {.virt_start = HYPERVISOR_VIRT_START};

	return hc_copy_out(v, arg[1], &pp, sizeof(pp));
}

static long hc_version_get_features(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct xen_feature_info fi;
	int rc = hc_copy_in(v, &fi, arg[1], sizeof(fi));

	if (rc)
		return rc;
	if (fi.submap_idx >= XENFEAT_NR_SUBMAPS)
		return -EINVAL;
	fi.submap = HC_VERSION_FEATURES;
	return hc_copy_out(v, arg[1], &fi, sizeof(fi));
}

static long hc_version_pagesize(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	return GMEM_PAGE_SIZE;
}

static long hc_version_guest_handle(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	xen_domain_handle_t h;

	memcpy(h, v->d->cfg.uuid, sizeof(h));
	return hc_copy_out(v, arg[1], h, sizeof(h));
}

static long hc_version_denied(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	return -EPERM;
}

static const struct hc_subop hc_version_ops[] = {
    [XENVER_version] = {XENVER_version, "version", hc_version_version},
    [XENVER_extraversion] = {XENVER_extraversion, "extraversion", hc_version_extraversion},
    [XENVER_compile_info] = {XENVER_compile_info, "compile_info", hc_version_compile_info},
    [XENVER_capabilities] = {XENVER_capabilities, "capabilities", hc_version_capabilities},
    [XENVER_changeset] = {XENVER_changeset, "changeset", hc_version_changeset},
    [XENVER_platform_parameters] = {XENVER_platform_parameters, "platform_parameters", hc_version_platform},
    [XENVER_get_features] = {XENVER_get_features, "get_features", hc_version_get_features},
    [XENVER_pagesize] = {XENVER_pagesize, "pagesize", hc_version_pagesize},
    [XENVER_guest_handle] = {XENVER_guest_handle, "guest_handle", hc_version_guest_handle},
    [XENVER_commandline] = {XENVER_commandline, "commandline", hc_version_denied},
    [XENVER_build_id] = {XENVER_build_id, "build_id", hc_version_denied},
};

/* xen_version(int cmd, void *arg) */
long hc_xen_version(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	const struct hc_subop *op = hc_subop_find(
	    hc_version_ops, sizeof(hc_version_ops) / sizeof(hc_version_ops[0]), (uint32_t)arg[0]);

	return op ? op->fn(v, arg) : -ENOSYS;
}
