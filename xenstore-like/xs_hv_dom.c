/* Domains as the hypervisor announces them. The store introduces each domain itself from the
 * notifications (so one that dies while no toolstack runs is still released): it asks INFO for the
 * name, uuid and memory, MAP_SPECIAL for the store page and port, writes the domain's tree as Xen's
 * toolstack does, then connects the ring; on destruction it drops the ring with the domain's
 * watches and transactions, removes its tree and fires @releaseDomain. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xs_hv.h"
#include <xen/xen.h>

#define XS_HV_DOM_VCPUS_MAX 128 /* cpu/<n>/availability entries written at most */

struct xs_hv_dom {
	uint32_t domid;
	char name[LAMINA_NAME_MAX];
	char vm[48]; /* /vm/<uuid> */
	struct xs_hv_dom *next;
};

/* The store's own writes: Domain-0, privileged, outside any transaction. */
struct xs_hv_writer {
	struct xs_view v;
	int rc; /* the first failure */
};

static void xs_hv_put(struct xs_hv_writer *w, const char *val, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void xs_hv_put(struct xs_hv_writer *w, const char *val, const char *fmt, ...)
{
	char path[XENSTORE_ABS_PATH_MAX + 1];
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(path))
		rc = -ENAMETOOLONG;
	else if (val)
		rc = xs_tree_write(&w->v, path, val, (uint32_t)strlen(val));
	else
		rc = xs_tree_mkdir(&w->v, path);
	if (rc < 0 && w->rc == 0)
		w->rc = rc;
}

/* owner with `others` for every other domain, plus an entry for reader unless XS_DOMID_NONE. */
static void xs_hv_perms(struct xs_hv_writer *w, const char *path, uint32_t owner, uint32_t others,
			uint32_t reader, uint32_t reader_perms)
{
	struct xs_perm p[2] = {{owner, others}, {reader, reader_perms}};
	int rc = xs_tree_set_perms(&w->v, path, p, reader == XS_DOMID_NONE ? 1 : 2);

	if (rc < 0 && w->rc == 0)
		w->rc = rc;
}

static int xs_hv_writer_open(struct xs_store *st, struct xs_hv_writer *w)
{
	static const struct xs_conn_tops tops = {.name = "internal"};

	memset(w, 0, sizeof(*w));
	w->v.st = st;
	w->v.c = xs_conn_new(st, 0, true, &tops, NULL);
	return w->v.c ? 0 : -ENOMEM;
}

static int xs_hv_writer_close(struct xs_hv_writer *w)
{
	xs_conn_free(w->v.c);
	return w->rc;
}

int xs_hv_dom0_tree(struct xs_store *st)
{
	struct xs_hv_writer w;
	int rc = xs_hv_writer_open(st, &w);

	if (rc < 0)
		return rc;
	xs_hv_put(&w, NULL, "/local/domain");
	xs_hv_put(&w, NULL, "/vm");
	xs_hv_put(&w, "Domain-0", "/local/domain/0/name");
	xs_hv_put(&w, "0", "/local/domain/0/domid");
	return xs_hv_writer_close(&w);
}

static struct xs_hv_dom *xs_hv_dom_find(struct xs_hv *hv, uint32_t domid, struct xs_hv_dom ***link)
{
	struct xs_hv_dom **pp;

	for (pp = &hv->doms; *pp; pp = &(*pp)->next)
		if ((*pp)->domid == domid) {
			if (link)
				*link = pp;
			return *pp;
		}
	return NULL;
}

static void xs_hv_uuid(const uint8_t u[16], char *out, size_t size)
{
	snprintf(out, size, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
		 u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
		 u[15]);
}

/* The tree libxl writes for a new domain: read-only to the domain except its own data areas. */
static int xs_hv_dom_tree(struct xs_hv *hv, const struct lamina_ctl_dominfo *info, const struct xs_hv_dom *hd,
			  const struct lamina_ctl_mapping *store, const struct lamina_ctl_mapping *cons)
{
	static const char *const rw_dirs[] = {"data", "drivers", "feature",
					      "attr", "error",	 "control/shutdown"};
	uint32_t id = info->domid,
		 vcpus = info->vcpus < XS_HV_DOM_VCPUS_MAX ? info->vcpus : XS_HV_DOM_VCPUS_MAX;
	char num[32], dom[40];
	struct xs_hv_writer w;
	int rc = xs_hv_writer_open(hv->st, &w);

	if (rc < 0)
		return rc;
	snprintf(dom, sizeof(dom), "/local/domain/%u", id);
	xs_hv_put(&w, NULL, "%s", dom);
	xs_hv_perms(&w, dom, 0, XS_P_NONE, id, XS_P_READ);
	xs_hv_put(&w, NULL, "%s", hd->vm);
	xs_hv_perms(&w, hd->vm, 0, XS_P_NONE, id, XS_P_READ);
	xs_hv_put(&w, hd->name, "%s/name", hd->vm);
	xs_hv_put(&w, hd->vm + 4, "%s/uuid", hd->vm);
	xs_hv_put(&w, hd->name, "%s/name", dom);
	snprintf(num, sizeof(num), "%u", id);
	xs_hv_put(&w, num, "%s/domid", dom);
	xs_hv_put(&w, hd->vm, "%s/vm", dom);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)info->memory_kib);
	xs_hv_put(&w, num, "%s/memory/target", dom);
	snprintf(num, sizeof(num), "%llu",
		 (unsigned long long)(info->max_memory_kib ? info->max_memory_kib : info->memory_kib));
	xs_hv_put(&w, num, "%s/memory/static-max", dom);
	for (uint32_t i = 0; i < vcpus; i++)
		xs_hv_put(&w, "online", "%s/cpu/%u/availability", dom, i);
	xs_hv_put(&w, NULL, "%s/device", dom);
	xs_hv_put(&w, NULL, "%s/control", dom);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)store->gfn);
	xs_hv_put(&w, num, "%s/store/ring-ref", dom);
	snprintf(num, sizeof(num), "%u", store->port);
	xs_hv_put(&w, num, "%s/store/port", dom);
	if (cons) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)cons->gfn);
		xs_hv_put(&w, num, "%s/console/ring-ref", dom);
		snprintf(num, sizeof(num), "%u", cons->port);
		xs_hv_put(&w, num, "%s/console/port", dom);
		xs_hv_put(&w, "xenconsoled", "%s/console/type", dom);
	}
	for (size_t i = 0; i < sizeof(rw_dirs) / sizeof(rw_dirs[0]); i++) {
		char p[64];
		snprintf(p, sizeof(p), "%s/%s", dom, rw_dirs[i]);
		xs_hv_put(&w, strcmp(rw_dirs[i], "control/shutdown") ? NULL : "", "%s", p);
		xs_hv_perms(&w, p, id, XS_P_NONE, XS_DOMID_NONE, 0);
	}
	return xs_hv_writer_close(&w);
}

static void xs_hv_dom_rm_tree(struct xs_hv *hv, const struct xs_hv_dom *hd)
{
	struct xs_hv_writer w;
	char dom[40];

	if (xs_hv_writer_open(hv->st, &w) < 0)
		return;
	snprintf(dom, sizeof(dom), "/local/domain/%u", hd->domid);
	xs_tree_rm(&w.v, dom);
	if (hd->vm[0])
		xs_tree_rm(&w.v, hd->vm);
	xs_hv_writer_close(&w);
}

static int xs_hv_special(struct xs_hv *hv, uint32_t domid, uint32_t which, struct lamina_ctl_mapping *m)
{
	struct lamina_ctl_map_special req = {.domid = domid, .which = which};
	int fd, rc = xs_hv_call(hv, LAMINA_CTL_MAP_SPECIAL, &req, sizeof(req), m, sizeof(*m), &fd, 1);

	if (rc == 0)
		close(fd); /* only the description is wanted here; the ring maps its own */
	if (rc == 0 && (m->port == 0 || m->port >= 1u << 17))
		rc = -EINVAL;
	return rc;
}

/* CREATED (or RESTARTED: pages and ports are new, so the tree is written afresh). */
static void xs_hv_dom_created(struct xs_hv *hv, uint32_t domid, bool restarted)
{
	struct lamina_ctl_domref ref = {.domid = domid};
	struct lamina_ctl_mapping store, cons;
	struct lamina_ctl_dominfo info;
	struct xs_hv_dom *hd = xs_hv_dom_find(hv, domid, NULL);
	bool have_cons;
	int rc;

	rc = xs_hv_call(hv, LAMINA_CTL_INFO, &ref, sizeof(ref), &info, sizeof(info), NULL, 0);
	if (rc == 0 && info.domid != domid)
		rc = -EPROTO;
	if (rc == 0)
		rc = xs_hv_special(hv, domid, LAMINA_SPECIAL_XENSTORE, &store);
	if (rc < 0) {
		xs_log(hv->st, rc == -ESRCH ? XS_LOG_INFO : XS_LOG_ERR, "dom%u: not introduced: %s", domid,
		       strerror(-rc));
		return;
	}
	have_cons = xs_hv_special(hv, domid, LAMINA_SPECIAL_CONSOLE, &cons) == 0;
	if (!hd) {
		hd = calloc(1, sizeof(*hd));
		if (!hd) {
			xs_log(hv->st, XS_LOG_ERR, "dom%u: not introduced: out of memory", domid);
			return;
		}
		hd->domid = domid;
		hd->next = hv->doms;
		hv->doms = hd;
	} else {
		/* A restart (or a repeated announcement): the old instance is released and the new one
		 * starts from a fresh tree, so watchers see @releaseDomain then @introduceDomain as
		 * for a Xen reboot, which makes a new domain. */
		struct xs_domain *d = xs_domain_get(hv->st, domid, false);
		xs_hv_dom_rm_tree(hv, hd);
		if (d && d->introduced)
			xs_domain_release(hv->st, domid);
	}
	memcpy(hd->name, info.name, sizeof(hd->name));
	hd->name[sizeof(hd->name) - 1] = '\0';
	for (char *c = hd->name; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?'; /* a node value, but keep logs and clients sane */
	strcpy(hd->vm, "/vm/");
	xs_hv_uuid(info.uuid, hd->vm + 4, sizeof(hd->vm) - 4);
	rc = xs_hv_dom_tree(hv, &info, hd, &store, have_cons ? &cons : NULL);
	if (rc < 0)
		xs_log(hv->st, XS_LOG_ERR, "dom%u: writing its tree failed: %s", domid, strerror(-rc));
	rc = xs_domain_introduce(hv->st, domid, store.gfn, store.port);
	if (rc < 0) {
		xs_log(hv->st, XS_LOG_ERR, "dom%u %s: ring not connected: %s", domid, hd->name,
		       strerror(-rc));
		return;
	}
	if (restarted)
		hv->restarted++;
	else
		hv->introduced++;
	xs_log(hv->st, XS_LOG_INFO, "dom%u %s: %s (store gfn %#llx, port %u)", domid, hd->name,
	       restarted ? "reconnected after restart" : "introduced from the hypervisor",
	       (unsigned long long)store.gfn, store.port);
}

static void xs_hv_dom_destroyed(struct xs_hv *hv, uint32_t domid)
{
	struct xs_hv_dom **link, *hd = xs_hv_dom_find(hv, domid, &link);
	struct xs_domain *d = xs_domain_get(hv->st, domid, false);
	uint32_t watches = 0, txns = 0;
	struct xs_conn *c;

	if (!hd)
		return;
	for (c = hv->st->conns; c; c = c->next)
		if (!c->priv && c->id == domid && !c->dead) {
			watches += c->nwatches;
			txns += c->ntxns;
		}
	/* The tree goes first, so @releaseDomain watchers find it gone. */
	xs_hv_dom_rm_tree(hv, hd);
	if (d && d->introduced)
		xs_domain_release(hv->st, domid);
	else
		xs_watch_fire_special(hv->st, "@releaseDomain");
	xs_log(hv->st, XS_LOG_INFO,
	       "dom%u %s: destroyed: released (%u watches, %u transactions dropped), tree removed", domid,
	       hd->name, watches, txns);
	hv->released++;
	*link = hd->next;
	free(hd);
}

void xs_hv_dom_event(struct xs_hv *hv, const struct lamina_ctl_event *ev)
{
	struct xs_domain *d;

	if (ev->domid == 0 || ev->domid >= DOMID_FIRST_RESERVED || ev->domid > XS_DOMID_MAX)
		return;
	switch (ev->kind) {
	case LAMINA_EV_CREATED:
		xs_hv_dom_created(hv, ev->domid, false);
		break;
	case LAMINA_EV_RESTARTED:
		xs_hv_dom_created(hv, ev->domid, true);
		break;
	case LAMINA_EV_STOPPED:
		/* As Xen's xenstored: a domain that shut down is announced on @releaseDomain too. */
		d = xs_domain_get(hv->st, ev->domid, false);
		if (d && d->introduced && !d->shutdown) {
			d->shutdown = true;
			xs_watch_fire_special(hv->st, "@releaseDomain");
		}
		break;
	case LAMINA_EV_DESTROYED:
		xs_hv_dom_destroyed(hv, ev->domid);
		break;
	default:
		xs_log(hv->st, XS_LOG_DEBUG, "hypervisor: notification of unknown kind %u", ev->kind);
		break;
	}
}

void xs_hv_dom_release_all(struct xs_hv *hv)
{
	while (hv->doms)
		xs_hv_dom_destroyed(hv, hv->doms->domid);
}

void xs_hv_dom_free_all(struct xs_hv *hv)
{
	while (hv->doms) {
		struct xs_hv_dom *hd = hv->doms;
		hv->doms = hd->next;
		free(hd);
	}
}
