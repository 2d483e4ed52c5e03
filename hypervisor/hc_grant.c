/* grant_table_op: a guest's own grant table (setup, size, version), copies through its own or
 * other guests' grants and maps of other guests' grants. One row per GNTTABOP_*; batched ops copy
 * each element in once and write back only its results. */
#include "gnt_map.h"
#include "grant_table.h"
#include "hc_handlers.h"

_Static_assert(sizeof(struct gnttab_setup_table) == 24, "gnttab_setup_table is 24 bytes");
_Static_assert(offsetof(struct gnttab_setup_table, status) == 8, "setup_table.status at 8");
_Static_assert(offsetof(struct gnttab_setup_table, frame_list) == 16, "setup_table.frame_list at 16");
_Static_assert(sizeof(struct gnttab_copy) == 40, "gnttab_copy is 40 bytes");
_Static_assert(offsetof(struct gnttab_copy, dest) == 16, "gnttab_copy.dest at 16");
_Static_assert(offsetof(struct gnttab_copy, status) == 36, "gnttab_copy.status at 36");
_Static_assert(sizeof(struct gnttab_map_grant_ref) == 32, "gnttab_map_grant_ref is 32 bytes");
_Static_assert(offsetof(struct gnttab_map_grant_ref, status) == 18, "map_grant_ref.status at 18");
_Static_assert(sizeof(struct gnttab_unmap_grant_ref) == 24, "gnttab_unmap_grant_ref is 24 bytes");
_Static_assert(offsetof(struct gnttab_unmap_grant_ref, status) == 20, "unmap_grant_ref.status at 20");
_Static_assert(sizeof(struct gnttab_query_size) == 16, "gnttab_query_size is 16 bytes");
_Static_assert(sizeof(struct gnttab_get_status_frames) == 16, "gnttab_get_status_frames is 16 bytes");
_Static_assert(sizeof(struct gnttab_cache_flush) == 16, "gnttab_cache_flush is 16 bytes");

/* Elements one call may carry; Xen preempts longer batches, Lamina refuses them (-EINVAL). */
#define HC_GNT_BATCH_MAX 4096u

typedef long (*hc_gnt_fn)(struct vcpu *v, uint64_t uop, uint32_t count);

static long hc_gnt_status_out(struct vcpu *v, uint64_t gva, int16_t st)
{
	return hc_copy_out(v, gva, &st, sizeof(st));
}

/* Frames the guest asks for are allocated (Xen grows the table); frame_list gets each frame's
 * GFN as an auto-translated guest sees it, or INVALID_GFN while it is not placed. */
static long hc_gnt_setup_table(struct vcpu *v, uint64_t uop, uint32_t count)
{
	struct grant_table *t = v->d->gnt;
	struct gnttab_setup_table op;
	long rc;

	if (count != 1)
		return -EINVAL;
	rc = hc_copy_in(v, &op, uop, sizeof(op));
	if (rc)
		return rc;
	if (!hc_domid_is_self(v->d, op.dom))
		op.status = op.dom >= DOMID_FIRST_RESERVED ? GNTST_bad_domain : GNTST_permission_denied;
	else if (!t || op.nr_frames > t->max_frames)
		op.status = GNTST_general_error;
	else if (gnttab_grow(t, op.nr_frames))
		op.status = GNTST_general_error;
	else
		op.status = GNTST_okay;
	for (uint32_t i = 0; op.status == GNTST_okay && i < op.nr_frames; i++) {
		xen_pfn_t gfn = t->frame_gfn[i] == UINT64_MAX ? (xen_pfn_t)~0ull : t->frame_gfn[i];

		rc =
		    hc_copy_out(v, (uint64_t)(uintptr_t)op.frame_list.p + i * sizeof(gfn), &gfn, sizeof(gfn));
		if (rc)
			return rc;
	}
	return hc_gnt_status_out(v, uop + offsetof(struct gnttab_setup_table, status), op.status);
}

static long hc_gnt_query_size(struct vcpu *v, uint64_t uop, uint32_t count)
{
	struct grant_table *t = v->d->gnt;
	struct gnttab_query_size op;
	long rc;

	if (count != 1)
		return -EINVAL;
	rc = hc_copy_in(v, &op, uop, sizeof(op));
	if (rc)
		return rc;
	if (!hc_domid_is_self(v->d, op.dom) || !t) {
		op.status = op.dom >= DOMID_FIRST_RESERVED ? GNTST_bad_domain : GNTST_permission_denied;
	} else {
		op.nr_frames = atomic_load(&t->nr_frames);
		op.max_nr_frames = t->max_frames;
		op.status = GNTST_okay;
	}
	return hc_copy_out(v, uop, &op, sizeof(op));
}

/* Version 1 only, as a Xen built with gnttab=max-ver:1: asking for 2 is -ENOSYS, anything else
 * -EINVAL; the current version is written back either way. */
static long hc_gnt_set_version(struct vcpu *v, uint64_t uop, uint32_t count)
{
	struct gnttab_set_version op;
	long rc, res;

	if (count != 1)
		return -EINVAL;
	rc = hc_copy_in(v, &op, uop, sizeof(op));
	if (rc)
		return rc;
	res = op.version == 1 ? 0 : op.version == 2 ? -ENOSYS : -EINVAL;
	op.version = 1;
	rc = hc_copy_out(v, uop, &op, sizeof(op));
	return rc ? rc : res;
}

static long hc_gnt_get_version(struct vcpu *v, uint64_t uop, uint32_t count)
{
	struct gnttab_get_version op;
	long rc;

	if (count != 1)
		return -EINVAL;
	rc = hc_copy_in(v, &op, uop, sizeof(op));
	if (rc)
		return rc;
	if (!hc_domid_is_self(v->d, op.dom))
		return op.dom >= DOMID_FIRST_RESERVED ? -ESRCH : -EPERM;
	op.version = 1;
	return hc_copy_out(v, uop, &op, sizeof(op));
}

/* Version 1 has no status frames: asking for any is GNTST_general_error, for none is okay. */
static long hc_gnt_get_status_frames(struct vcpu *v, uint64_t uop, uint32_t count)
{
	struct gnttab_get_status_frames op;
	long rc;

	if (count != 1)
		return -EINVAL;
	rc = hc_copy_in(v, &op, uop, sizeof(op));
	if (rc)
		return rc;
	if (!hc_domid_is_self(v->d, op.dom))
		op.status = op.dom >= DOMID_FIRST_RESERVED ? GNTST_bad_domain : GNTST_permission_denied;
	else
		op.status = op.nr_frames ? GNTST_general_error : GNTST_okay;
	return hc_gnt_status_out(v, uop + offsetof(struct gnttab_get_status_frames, status), op.status);
}

/* One side of a guest's copy: its own frames, refs of its own table, or refs another domain granted
 * to it (that table referenced: hc_gnt_side_put). Another domain's frame by number is refused, as
 * Xen refuses it to an unprivileged domain. */
static int hc_gnt_side(struct vcpu *v, const struct gnttab_copy_ptr *p, bool is_ref, struct gnt_copy_side *s)
{
	s->is_ref = is_ref;
	s->ref_or_gfn = is_ref ? p->u.ref : p->u.gmfn;
	s->offset = p->offset;
	s->foreign = false;
	s->t = NULL;
	if (hc_domid_is_self(v->d, p->domid)) {
		s->t = v->d->gnt;
		return s->t ? GNTST_okay : GNTST_general_error;
	}
	if (!is_ref)
		return p->domid >= DOMID_FIRST_RESERVED ? GNTST_bad_domain : GNTST_permission_denied;
	s->t = gnttab_lookup(v->d, p->domid);
	s->foreign = s->t != NULL;
	return s->t ? GNTST_okay : GNTST_bad_domain;
}

static void hc_gnt_side_put(struct gnt_copy_side *s)
{
	if (s->foreign)
		gnttab_put(s->t);
	s->foreign = false;
}

static long hc_gnt_copy(struct vcpu *v, uint64_t uop, uint32_t count)
{
	if (count > HC_GNT_BATCH_MAX)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t gva = uop + (uint64_t)i * sizeof(struct gnttab_copy);
		struct gnt_copy_side src = {.foreign = false}, dst = {.foreign = false};
		struct gnttab_copy op;
		long rc = hc_copy_in(v, &op, gva, sizeof(op));
		int st;

		if (rc)
			return rc;
		if ((uint32_t)op.source.offset + op.len > GMEM_PAGE_SIZE ||
		    (uint32_t)op.dest.offset + op.len > GMEM_PAGE_SIZE)
			st = GNTST_bad_copy_arg;
		else if ((st = hc_gnt_side(v, &op.source, op.flags & GNTCOPY_source_gref, &src)) ==
			     GNTST_okay &&
			 (st = hc_gnt_side(v, &op.dest, op.flags & GNTCOPY_dest_gref, &dst)) == GNTST_okay)
			st = gnttab_copy_one(&src, &dst, op.len, (uint16_t)v->d->domid);
		hc_gnt_side_put(&src);
		hc_gnt_side_put(&dst);
		rc = hc_gnt_status_out(v, gva + offsetof(struct gnttab_copy, status), (int16_t)st);
		if (rc)
			return rc;
	}
	return 0;
}

/* Maps of other guests' grants into this guest's physical space (gnt_map.c); each element is
 * copied in once and answered with its own status, handle and bus address. */
static long hc_gnt_map(struct vcpu *v, uint64_t uop, uint32_t count)
{
	if (count > HC_GNT_BATCH_MAX)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t gva = uop + (uint64_t)i * sizeof(struct gnttab_map_grant_ref);
		struct gnttab_map_grant_ref op;
		uint32_t handle;
		uint64_t bus;
		long rc = hc_copy_in(v, &op, gva, sizeof(op));

		if (rc)
			return rc;
		op.status = (int16_t)gnt_map_grant(v->d, &op, &handle, &bus);
		op.handle = handle;
		op.dev_bus_addr = bus;
		rc = hc_copy_out(v, gva, &op, sizeof(op));
		if (rc) {
			/* The guest cannot learn the handle: undo the map rather than leak it. */
			if (op.status == GNTST_okay)
				gnt_map_unmap(v->d, handle, op.host_addr);
			return rc;
		}
	}
	return 0;
}

static long hc_gnt_unmap(struct vcpu *v, uint64_t uop, uint32_t count)
{
	if (count > HC_GNT_BATCH_MAX)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t gva = uop + (uint64_t)i * sizeof(struct gnttab_unmap_grant_ref);
		struct gnttab_unmap_grant_ref op;
		long rc = hc_copy_in(v, &op, gva, sizeof(op));

		if (rc)
			return rc;
		rc = hc_gnt_status_out(v, gva + offsetof(struct gnttab_unmap_grant_ref, status),
				       (int16_t)gnt_map_unmap(v->d, op.handle, op.host_addr));
		if (rc)
			return rc;
	}
	return 0;
}

/* x86 caches are coherent: a flush is checked and succeeds. */
static long hc_gnt_cache_flush(struct vcpu *v, uint64_t uop, uint32_t count)
{
	if (count > HC_GNT_BATCH_MAX)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		struct gnttab_cache_flush op;
		long rc = hc_copy_in(v, &op, uop + (uint64_t)i * sizeof(op), sizeof(op));

		if (rc)
			return rc;
		if (op.op & ~(GNTTAB_CACHE_INVAL | GNTTAB_CACHE_CLEAN | GNTTAB_CACHE_SOURCE_GREF))
			return -EOPNOTSUPP;
		if ((uint32_t)op.offset + op.length > GMEM_PAGE_SIZE)
			return -EINVAL;
	}
	return 0;
}

struct hc_gnt_op {
	const char *name;
	hc_gnt_fn fn;
};

static const struct hc_gnt_op hc_gnt_ops[] = {
    [GNTTABOP_map_grant_ref] = {"map_grant_ref", hc_gnt_map},
    [GNTTABOP_unmap_grant_ref] = {"unmap_grant_ref", hc_gnt_unmap},
    [GNTTABOP_setup_table] = {"setup_table", hc_gnt_setup_table},
    [GNTTABOP_copy] = {"copy", hc_gnt_copy},
    [GNTTABOP_query_size] = {"query_size", hc_gnt_query_size},
    [GNTTABOP_set_version] = {"set_version", hc_gnt_set_version},
    [GNTTABOP_get_status_frames] = {"get_status_frames", hc_gnt_get_status_frames},
    [GNTTABOP_get_version] = {"get_version", hc_gnt_get_version},
    [GNTTABOP_cache_flush] = {"cache_flush", hc_gnt_cache_flush},
};

/* grant_table_op(unsigned int cmd, void *uop, unsigned int count) */
long hc_grant_table_op(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	uint32_t cmd = (uint32_t)arg[0];

	if (cmd >= sizeof(hc_gnt_ops) / sizeof(hc_gnt_ops[0]) || !hc_gnt_ops[cmd].fn)
		return -ENOSYS;
	return hc_gnt_ops[cmd].fn(v, arg[1], (uint32_t)arg[2]);
}
