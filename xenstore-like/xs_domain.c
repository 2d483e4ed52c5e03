/* Domains as the store knows them: introduction and release (with their special watches),
 * per-domain node accounting, the quota table with Xen's defaults, and the rate-limited log. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xs_store.h"

struct xs_quota_def {
	const char *name;
	uint32_t def;
	int err; /* what a violation answers, as Xen's xenstored does */
};

static const struct xs_quota_def xs_quota_defs[XS_Q_COUNT] = {
    [XS_Q_NODES] = {"nodes", 1000, ENOSPC},
    [XS_Q_WATCHES] = {"watches", 128, E2BIG},
    [XS_Q_OUTSTANDING] = {"outstanding", 20, 0},
    [XS_Q_TXNS] = {"transactions", 10, ENOSPC},
    [XS_Q_NODE_SIZE] = {"node-size", 2048, ENOSPC},
    [XS_Q_PAYLOAD] = {"payload", XENSTORE_PAYLOAD_MAX, E2BIG},
    [XS_Q_PERMS] = {"perms", 5, ENOSPC},
};

void xs_quota_defaults(struct xs_quota *q)
{
	int i;

	for (i = 0; i < XS_Q_COUNT; i++)
		q->v[i] = xs_quota_defs[i].def;
}

int xs_quota_by_name(const char *name)
{
	int i;

	for (i = 0; i < XS_Q_COUNT; i++)
		if (strcmp(name, xs_quota_defs[i].name) == 0)
			return i;
	return -ENOENT;
}

const char *xs_quota_name(int kind)
{
	return kind >= 0 && kind < XS_Q_COUNT ? xs_quota_defs[kind].name : "?";
}

static int64_t xs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void xs_log(struct xs_store *st, int level, const char *fmt, ...)
{
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (!st->log || level > st->log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(st->log, "%s.%03ldZ lamina-xenstored: ", stamp, ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	vfprintf(st->log, fmt, ap);
	va_end(ap);
	fputc('\n', st->log);
	fflush(st->log);
}

struct xs_domain *xs_domain_get(struct xs_store *st, uint32_t domid, bool create)
{
	struct xs_domain **head = &st->domains[domid % XS_DOM_BUCKETS], *d;

	for (d = *head; d; d = d->next)
		if (d->domid == domid)
			return d;
	if (!create || domid > XS_DOMID_MAX)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->domid = domid;
	d->target = XS_DOMID_NONE;
	d->next = *head;
	*head = d;
	return d;
}

/* 0 when the connection may have `wanted` of the resource; quotas bind unprivileged
 * connections only. Violations are logged at most once a second per domain and limit. */
int xs_quota_check(struct xs_conn *c, int kind, uint64_t wanted)
{
	struct xs_store *st = c->st;
	struct xs_domain *d;
	int64_t now;

	if (c->priv || wanted <= st->quota.v[kind])
		return 0;
	d = xs_domain_get(st, c->id, true);
	now = xs_now_ns();
	if (!d || d->last_log[kind] == 0 || now - d->last_log[kind] >= 1000000000) {
		if (d)
			d->last_log[kind] = now;
		xs_log(st, XS_LOG_ERR, "quota: domain %u exceeds the %s limit (%u, wanted %llu)", c->id,
		       xs_quota_defs[kind].name, st->quota.v[kind], (unsigned long long)wanted);
	}
	return xs_quota_defs[kind].err ? -xs_quota_defs[kind].err : -ENOSPC;
}

struct xs_special *xs_special_get(struct xs_store *st, const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(st->special) / sizeof(st->special[0]); i++)
		if (st->special[i].name && strcmp(st->special[i].name, name) == 0)
			return &st->special[i];
	return NULL;
}

int xs_domain_introduce(struct xs_store *st, uint32_t domid, uint64_t mfn, uint32_t port)
{
	struct xs_domain *d;
	uint64_t old_mfn;
	uint32_t old_port;
	bool first;
	int rc = 0;

	if (domid == 0 || domid > XS_DOMID_MAX)
		return -EINVAL;
	d = xs_domain_get(st, domid, true);
	if (!d)
		return -ENOMEM;
	first = !d->introduced;
	if (!first && st->ring_detach)
		st->ring_detach(st, d); /* re-introduction rebinds the ring and its event channel */
	old_mfn = d->mfn;
	old_port = d->port;
	d->mfn = mfn;
	d->port = port;
	d->shutdown = false;
	if (st->ring_attach && st->ring_ops) {
		rc = st->ring_attach(st, d);
		if (rc < 0) {
			xs_log(st, XS_LOG_ERR, "introduce dom%u: ring not connected (%d)", domid, rc);
			/* A bad re-introduction must not cost the domain the ring it had. */
			if (!first && (old_mfn != mfn || old_port != port)) {
				d->mfn = old_mfn;
				d->port = old_port;
				if (st->ring_attach(st, d) == 0) {
					xs_log(st, XS_LOG_INFO, "dom%u: previous ring reconnected", domid);
					return rc;
				}
			}
			d->introduced = false;
			return rc;
		}
	} else {
		xs_log(st, XS_LOG_INFO, "introduce dom%u: recorded; no ring mapper, so no ring connection",
		       domid);
	}
	d->introduced = true;
	if (first) {
		xs_log(st, XS_LOG_INFO, "introduced dom%u (gfn %#llx, port %u)", domid,
		       (unsigned long long)mfn, port);
		xs_watch_fire_special(st, "@introduceDomain");
	}
	return 0;
}

/* Drops the domain's connection with its watches and transactions; its nodes stay for the
 * toolstack to remove, as in Xen. */
int xs_domain_release(struct xs_store *st, uint32_t domid)
{
	struct xs_domain *d = xs_domain_get(st, domid, false);
	struct xs_conn *c;

	if (!d || !d->introduced)
		return -ENOENT;
	if (st->ring_detach)
		st->ring_detach(st, d);
	for (c = st->conns; c; c = c->next) {
		if (!c->priv && c->id == domid) {
			xs_watch_drop_all(c);
			xs_txn_drop_all(c);
		}
	}
	d->introduced = false;
	d->target = XS_DOMID_NONE;
	xs_log(st, XS_LOG_INFO, "released dom%u", domid);
	xs_watch_fire_special(st, "@releaseDomain");
	return 0;
}
