/* The control ops: one table row per request of include/lamina/control.h with its exact payload
 * size, and the handlers; WAIT requests park here until their domain stops or time runs out. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl_server.h"
#include "gnt_ring.h"
#include "grant_table.h"
#include "hv.h"
#include <xen/sched.h>

_Static_assert(sizeof(struct lamina_ctl_domref) == 68, "domref layout");
_Static_assert(sizeof(struct lamina_ctl_dominfo) == 176, "dominfo layout");
_Static_assert(sizeof(struct lamina_ctl_hello) == 32, "hello layout");
_Static_assert(sizeof(struct lamina_ctl_hostinfo) == 32, "hostinfo layout");
_Static_assert(sizeof(struct lamina_ctl_list_reply) == 8, "list reply layout");
_Static_assert(sizeof(struct lamina_ctl_domcfg) == 3184, "domcfg layout");

static struct hv_domain *ctl_ref(struct ctl_server *s, const void *req)
{
	struct lamina_ctl_domref ref;

	memcpy(&ref, req, sizeof(ref));
	return hv_find_ref(s->hv, ref.domid, ref.name);
}

static int ctl_op_hello(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
			const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_hello r;

	memset(&r, 0, sizeof(r));
	r.version = LAMINA_CTL_VERSION;
	r.xen_major = LAMINA_XEN_MAJOR;
	r.xen_minor = LAMINA_XEN_MINOR;
	strncpy(r.extraversion, LAMINA_EXTRAVERSION, sizeof(r.extraversion) - 1);
	memcpy(out, &r, sizeof(r));
	*out_len = sizeof(r);
	return 0;
}

static int ctl_op_create(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
			 const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_domcfg *cfg = malloc(sizeof(*cfg));
	struct lamina_ctl_dominfo info;
	struct hv_domain *hd;
	int rc;

	if (!cfg)
		return -ENOMEM;
	memcpy(cfg, req, sizeof(*cfg)); /* aligned copy; validated by hv_domain_create */
	rc = hv_domain_create(s->hv, cfg, &hd);
	free(cfg);
	if (rc < 0)
		return rc;
	hv_domain_info(hd, &info);
	memcpy(out, &info, sizeof(info));
	*out_len = sizeof(info);
	return 0;
}

static int ctl_op_destroy(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
			  const void *req, void *out, size_t *out_len)
{
	struct hv_domain *hd = ctl_ref(s, req);

	if (!hd)
		return -ESRCH;
	hv_domain_destroy(hd);
	return 0;
}

static int ctl_op_pause(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
			const void *req, void *out, size_t *out_len)
{
	struct hv_domain *hd = ctl_ref(s, req);

	return hd ? hv_domain_pause(hd, h->op == LAMINA_CTL_PAUSE) : -ESRCH;
}

static int ctl_op_shutdown(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
			   const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_shutdown r;
	struct hv_domain *hd;
	uint32_t state;

	memcpy(&r, req, sizeof(r));
	hd = hv_find_ref(s->hv, r.dom.domid, r.dom.name);
	if (!hd)
		return -ESRCH;
	if (r.reason > SHUTDOWN_MAX)
		return -EINVAL;
	pthread_mutex_lock(&hd->d.lock);
	state = hd->d.state;
	pthread_mutex_unlock(&hd->d.lock);
	if (state != LAMINA_DOM_RUNNING && state != LAMINA_DOM_PAUSED)
		return -EINVAL;
	hv_domain_stop(hd, r.reason, r.reason == SHUTDOWN_crash ? "shut down as crashed by request" : NULL);
	return 0;
}

static int ctl_op_list(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		       const void *req, void *out, size_t *out_len)
{
	const uint32_t fit = (LAMINA_CTL_MAX_PAYLOAD - sizeof(struct lamina_ctl_list_reply)) /
			     sizeof(struct lamina_ctl_dominfo);
	struct lamina_ctl_list_reply rep = {0, 0};
	struct lamina_ctl_dominfo info;
	struct lamina_ctl_list_req r;
	uint8_t *p = (uint8_t *)out + sizeof(rep);
	uint32_t id, max;

	memcpy(&r, req, sizeof(r));
	max = (r.max == 0 || r.max > fit) ? fit : r.max;
	for (id = r.first_domid ? r.first_domid : 1; id < DOMID_FIRST_RESERVED; id++) {
		struct hv_domain *hd = s->hv->by_id[id];
		if (!hd)
			continue;
		if (rep.count == max) {
			rep.next_domid = id;
			break;
		}
		hv_domain_info(hd, &info);
		memcpy(p + (size_t)rep.count * sizeof(info), &info, sizeof(info));
		rep.count++;
	}
	memcpy(out, &rep, sizeof(rep));
	*out_len = sizeof(rep) + (size_t)rep.count * sizeof(info);
	return 0;
}

static int ctl_op_info(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		       const void *req, void *out, size_t *out_len)
{
	struct hv_domain *hd = ctl_ref(s, req);
	struct lamina_ctl_dominfo info;

	if (!hd)
		return -ESRCH;
	hv_domain_info(hd, &info);
	memcpy(out, &info, sizeof(info));
	*out_len = sizeof(info);
	return 0;
}

static int ctl_op_wait(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		       const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_dominfo info;
	struct lamina_ctl_wait r;
	struct hv_domain *hd;
	bool stopped;

	memcpy(&r, req, sizeof(r));
	hd = hv_find_ref(s->hv, r.dom.domid, r.dom.name);
	if (!hd) {
		/* Gone already (it may have powered off before this request arrived): a recent
		 * tombstone answers at once with state DEAD and how it stopped. */
		const struct hv_tombstone *t = hv_tomb_find(s->hv, r.dom.domid, r.dom.name);
		if (!t)
			return -ESRCH;
		memcpy(out, &t->info, sizeof(t->info));
		*out_len = sizeof(t->info);
		return 0;
	}
	pthread_mutex_lock(&hd->d.lock);
	stopped =
	    (hd->d.state == LAMINA_DOM_SHUTDOWN || hd->d.state == LAMINA_DOM_CRASHED) && !hd->action_pending;
	pthread_mutex_unlock(&hd->d.lock);
	if (!stopped)
		return ctl_wait_park(s, c, h->seq, hd->d.domid, r.timeout_ms);
	hv_domain_info(hd, &info); /* already stopped and preserved */
	memcpy(out, &info, sizeof(info));
	*out_len = sizeof(info);
	return 0;
}

static int ctl_op_host_stop(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
			    const void *req, void *out, size_t *out_len)
{
	uint32_t id;

	hv_log(&s->hv->log, "HOST_STOP: destroying every domain and exiting");
	for (id = 1; id < DOMID_FIRST_RESERVED && s->hv->nr_domains; id++)
		if (s->hv->by_id[id])
			hv_domain_destroy(s->hv->by_id[id]);
	s->quit = true;
	return 0;
}

static int ctl_op_host_info(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
			    const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_hostinfo r;

	memset(&r, 0, sizeof(r));
	r.version = LAMINA_CTL_VERSION;
	r.pid = (uint32_t)getpid();
	r.nr_domains = s->hv->nr_domains;
	r.uptime_ns = domain_mono_ns() - s->hv->start_ns;
	r.total_memory_kib = s->hv->total_mem_kib;
	memcpy(out, &r, sizeof(r));
	*out_len = sizeof(r);
	return 0;
}

static const struct ctl_op_desc ctl_op_table[] = {
    {LAMINA_CTL_HELLO, "HELLO", 0, ctl_op_hello},
    {LAMINA_CTL_CREATE, "CREATE", sizeof(struct lamina_ctl_domcfg), ctl_op_create},
    {LAMINA_CTL_DESTROY, "DESTROY", sizeof(struct lamina_ctl_domref), ctl_op_destroy},
    {LAMINA_CTL_PAUSE, "PAUSE", sizeof(struct lamina_ctl_domref), ctl_op_pause},
    {LAMINA_CTL_UNPAUSE, "UNPAUSE", sizeof(struct lamina_ctl_domref), ctl_op_pause},
    {LAMINA_CTL_SHUTDOWN, "SHUTDOWN", sizeof(struct lamina_ctl_shutdown), ctl_op_shutdown},
    {LAMINA_CTL_LIST, "LIST", sizeof(struct lamina_ctl_list_req), ctl_op_list},
    {LAMINA_CTL_INFO, "INFO", sizeof(struct lamina_ctl_domref), ctl_op_info},
    {LAMINA_CTL_WAIT, "WAIT", sizeof(struct lamina_ctl_wait), ctl_op_wait},
    {LAMINA_CTL_DOMSTATS, "DOMSTATS", sizeof(struct lamina_ctl_domref), ctl_op_domstats},
    {LAMINA_CTL_DUMP_CORE, "DUMP_CORE", sizeof(struct lamina_ctl_dump_core), ctl_op_dump_core},
    {LAMINA_CTL_EVTCHN_ALLOC_UNBOUND, "EVTCHN_ALLOC_UNBOUND", sizeof(struct lamina_ctl_evtchn_alloc),
     ctl_op_evtchn_alloc},
    {LAMINA_CTL_EVTCHN_BIND_INTERDOMAIN, "EVTCHN_BIND_INTERDOMAIN", sizeof(struct lamina_ctl_evtchn_bind),
     ctl_op_evtchn_bind},
    {LAMINA_CTL_EVTCHN_BIND_VIRQ, "EVTCHN_BIND_VIRQ", sizeof(struct lamina_ctl_evtchn_virq), ctl_op_evtchn_virq},
    {LAMINA_CTL_EVTCHN_CLOSE, "EVTCHN_CLOSE", sizeof(struct lamina_ctl_evtchn_port), ctl_op_evtchn_close},
    {LAMINA_CTL_MAP_SPECIAL, "MAP_SPECIAL", sizeof(struct lamina_ctl_map_special), ctl_op_map_special},
    {LAMINA_CTL_SUBSCRIBE, "SUBSCRIBE", 0, ctl_op_subscribe},
    {LAMINA_CTL_HOST_STOP, "HOST_STOP", 0, ctl_op_host_stop},
    {LAMINA_CTL_HOST_INFO, "HOST_INFO", 0, ctl_op_host_info},
    {LAMINA_CTL_GNT_MAP, "GNT_MAP", sizeof(struct lamina_ctl_gnt_map), ctl_op_gnt_map},
    {LAMINA_CTL_GNT_UNMAP, "GNT_UNMAP", sizeof(struct lamina_ctl_gnt_unmap), ctl_op_gnt_unmap},
    {LAMINA_CTL_GNT_COPY, "GNT_COPY", sizeof(struct lamina_ctl_gnt_copy), ctl_op_gnt_copy},
    {LAMINA_CTL_GNT_BUFFER, "GNT_BUFFER", sizeof(struct lamina_ctl_gnt_buffer), ctl_op_gnt_buffer},
    {LAMINA_CTL_GNT_FOREIGN_MAP, "GNT_FOREIGN_MAP", sizeof(struct lamina_ctl_gnt_foreign), ctl_op_gnt_foreign_map},
    {LAMINA_CTL_GNT_TOOLSTACK, "GNT_TOOLSTACK", 0, ctl_op_gnt_toolstack},
    {LAMINA_CTL_GNT_INFO, "GNT_INFO", sizeof(struct lamina_ctl_gnt_domid), ctl_op_gnt_info},
    {LAMINA_CTL_GNT_SET_LIMITS, "GNT_SET_LIMITS", sizeof(struct lamina_ctl_gnt_limits), ctl_op_gnt_set_limits},
    {LAMINA_CTL_GNT_RING, "GNT_RING", sizeof(struct lamina_ctl_gnt_ring_setup), ctl_op_gnt_ring},
};

const struct ctl_op_desc *ctl_op_find(uint16_t op)
{
	unsigned i;

	for (i = 0; i < sizeof(ctl_op_table) / sizeof(ctl_op_table[0]); i++)
		if (ctl_op_table[i].op == op)
			return &ctl_op_table[i];
	return NULL;
}

int ctl_wait_park(struct ctl_server *s, struct ctl_conn *c, uint32_t seq, uint32_t domid, uint32_t timeout_ms)
{
	struct ctl_waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->conn = c;
	w->seq = seq;
	w->domid = domid;
	w->deadline_ns = timeout_ms ? domain_mono_ns() + timeout_ms * 1000000ull : 0;
	w->next = s->waiters;
	s->waiters = w;
	return CTL_DEFERRED;
}

void ctl_on_domain_stop(void *arg, struct hv_domain *hd, bool gone, uint8_t action)
{
	struct ctl_server *s = arg;
	struct lamina_ctl_dominfo info;
	struct ctl_waiter **pp, *w;
	bool have = false;

	for (pp = &s->waiters; (w = *pp);) {
		if (w->domid != hd->d.domid) {
			pp = &w->next;
			continue;
		}
		if (!have) {
			hv_domain_info(hd, &info);
			if (gone)
				info.state = LAMINA_DOM_DEAD;
			info.action_taken = action;
			have = true;
		}
		*pp = w->next;
		if (ctl_reply(s, w->conn, LAMINA_CTL_WAIT, w->seq, 0, &info, sizeof(info)) < 0 &&
		    w->conn->fd >= 0)
			w->conn->fd = -w->conn->fd - 1;
		free(w);
	}
}

void ctl_waiters_expire(struct ctl_server *s, uint64_t now_ns)
{
	struct ctl_waiter **pp, *w;

	for (pp = &s->waiters; (w = *pp);) {
		if (!w->deadline_ns || w->deadline_ns > now_ns) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		if (ctl_reply(s, w->conn, LAMINA_CTL_WAIT, w->seq, -ETIMEDOUT, NULL, 0) < 0 &&
		    w->conn->fd >= 0)
			w->conn->fd = -w->conn->fd - 1;
		free(w);
	}
}

void ctl_waiters_drop_conn(struct ctl_server *s, struct ctl_conn *c)
{
	struct ctl_waiter **pp, *w;

	ctl_grant_conn_closed(s, c); /* the connection is closing: its grant maps go too */
	for (pp = &s->waiters; (w = *pp);) {
		if (w->conn != c) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		free(w);
	}
}

int ctl_waiters_timeout_ms(struct ctl_server *s, uint64_t now_ns)
{
	uint64_t best = UINT64_MAX;
	struct ctl_waiter *w;

	for (w = s->waiters; w; w = w->next)
		if (w->deadline_ns && w->deadline_ns < best)
			best = w->deadline_ns;
	if (best == UINT64_MAX)
		return -1;
	if (best <= now_ns)
		return 0;
	return (int)((best - now_ns + 999999) / 1000000 > 3600000 ? 3600000
								  : (best - now_ns + 999999) / 1000000);
}
