/* How domains stop and what follows: the domain_ops upcalls the hypercall layer makes from vCPU
 * threads (shutdown, crash, console, block, yield, extra pages, TSC, log) and the on_poweroff /
 * on_reboot / on_crash actions run on the main loop, one table row per libvirt action: restart
 * rebuilds the domain from its kernel under the same id, rename-restart preserves the stopped one
 * under a new name and starts a fresh one, coredump-* write an ELF core first (hv_coredump.c). */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv.h"

#include <xen/sched.h>

static const char *const hv_action_names[] = {
    [LAMINA_ACT_DESTROY] = "destroy",
    [LAMINA_ACT_RESTART] = "restart",
    [LAMINA_ACT_PRESERVE] = "preserve",
    [LAMINA_ACT_RENAME_RESTART] = "rename-restart",
    [LAMINA_ACT_COREDUMP_DESTROY] = "coredump-destroy",
    [LAMINA_ACT_COREDUMP_RESTART] = "coredump-restart",
};

int hv_restart_limit_parse(const char *s, unsigned *max, uint64_t *window_ns)
{
	unsigned long n, secs;
	char *end;

	*max = HV_RESTART_MAX_DEFAULT;
	*window_ns = HV_RESTART_WINDOW_DEFAULT_S * 1000000000ull;
	if (!s || !*s)
		return 0;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || end == s || n > HV_RESTART_HIST)
		return -EINVAL;
	if (n == 0 && *end == '\0') {
		*max = 0;
		return 0;
	}
	if (*end != '/')
		return -EINVAL;
	s = end + 1;
	secs = strtoul(s, &end, 10);
	if (errno || end == s || *end || secs == 0 || secs > 86400)
		return -EINVAL;
	*max = (unsigned)n;
	*window_ns = secs * 1000000000ull;
	return 0;
}

/* Records a restart about to happen, or refuses it (false) when it would be more than
 * hv->restart_max within hv->restart_window_ns: the oldest of the last max restarts is the one
 * the ring slot about to be overwritten holds. */
static bool hv_restart_allowed(struct hv_domain *hd)
{
	struct hv *hv = hd->hv;
	unsigned max = hv->restart_max > HV_RESTART_HIST ? HV_RESTART_HIST : hv->restart_max;
	uint64_t now = domain_mono_ns(), oldest;
	unsigned slot;

	if (max == 0)
		return true;
	slot = hd->restart_pos % max;
	oldest = hd->restart_ns[slot];
	if (oldest && now - oldest < hv->restart_window_ns)
		return false;
	hd->restart_ns[slot] = now;
	hd->restart_pos = slot + 1;
	return true;
}

/* A new incarnation inherits the restart history of the one it replaces. */
static void hv_restart_inherit(struct hv_domain *nhd, const struct hv_domain *hd)
{
	memcpy(nhd->restart_ns, hd->restart_ns, sizeof(nhd->restart_ns));
	nhd->restart_pos = hd->restart_pos;
}

static void hv_notify_stopped(struct hv_domain *hd)
{
	if (hd->hv->on_stop)
		hd->hv->on_stop(hd->hv->on_stop_arg, hd, false, hd->action_taken);
}

static void hv_act_destroy(struct hv_domain *hd)
{
	hv_domain_destroy(hd);
}

static void hv_act_preserve(struct hv_domain *hd)
{
	hv_notify_stopped(hd);
}

/* Same id and name, fresh memory loaded from the kernel again; the old incarnation is torn down
 * by the reaper. If the rebuild fails the domain is gone. */
static void hv_act_restart(struct hv_domain *hd)
{
	struct lamina_ctl_domcfg cfg = hd->d.cfg;
	struct hv *hv = hd->hv;
	struct hv_domain *nhd;
	int rc;

	hv_notify_stopped(hd);
	cfg.flags &= ~LAMINA_CFG_START_PAUSED;
	pthread_mutex_lock(&hd->d.lock);
	hd->d.state = LAMINA_DOM_DYING;
	pthread_mutex_unlock(&hd->d.lock);
	hv_table_remove(hv, hd);
	evtchn_domain_teardown(&hd->d); /* frees the id in the event-channel registry */
	rc = hv_domain_spawn(hv, &cfg, hd->d.domid, hd->restarts + 1, &nhd);
	if (rc < 0) {
		hv_log(&hv->log, "dom%u %s: restart failed (%s): domain destroyed", hd->d.domid, cfg.name,
		       strerror(-rc));
		hv_tomb_add(hv, hd, hd->action_taken);
		if (hv->on_stop)
			hv->on_stop(hv->on_stop_arg, hd, true, hd->action_taken);
		hv_emit(hv, LAMINA_EV_DESTROYED, hd);
	} else {
		hv_restart_inherit(nhd, hd);
		hv_log(&hv->log, "dom%u %s: restarted (%u)", hd->d.domid, cfg.name, nhd->restarts);
		hv_emit(hv, LAMINA_EV_RESTARTED, nhd);
	}
	hv_reaper_push(hv, hd);
}

/* The stopped domain stays, preserved, as NAME-N; a new domain with the original name starts. */
static void hv_act_rename_restart(struct hv_domain *hd)
{
	struct lamina_ctl_domcfg cfg = hd->d.cfg;
	struct hv *hv = hd->hv;
	char name[LAMINA_NAME_MAX];
	struct hv_domain *nhd;
	uint32_t domid;
	unsigned n;
	int rc;

	hv_notify_stopped(hd);
	for (n = 1; n < 100000; n++) {
		char suffix[16];
		int sl = snprintf(suffix, sizeof(suffix), "-%u", n);
		size_t base = strnlen(cfg.name, sizeof(cfg.name) - 1);
		if (base + (size_t)sl > sizeof(name) - 1)
			base = sizeof(name) - 1 - (size_t)sl;
		snprintf(name, sizeof(name), "%.*s%s", (int)base, cfg.name, suffix);
		if (!hv_find_name(hv, name))
			break;
	}
	hv_table_remove(hv, hd);
	memset(hd->d.cfg.name, 0, sizeof(hd->d.cfg.name));
	memcpy(hd->d.cfg.name, name, strlen(name));
	hv_table_insert(hv, hd);
	hv_log(&hv->log, "dom%u: renamed %s -> %s and preserved", hd->d.domid, cfg.name, name);
	cfg.flags &= ~LAMINA_CFG_START_PAUSED;
	rc = hv_domid_alloc(hv, &domid);
	if (rc == 0)
		rc = hv_domain_spawn(hv, &cfg, domid, hd->restarts + 1, &nhd);
	if (rc < 0)
		hv_log(&hv->log, "%s: rename-restart could not start the new domain: %s", cfg.name,
		       strerror(-rc));
	else {
		hv_restart_inherit(nhd, hd);
		hv_log(&hv->log, "dom%u %s: started by rename-restart", domid, cfg.name);
		hv_emit(hv, LAMINA_EV_CREATED, nhd);
	}
}

static void hv_act_coredump_destroy(struct hv_domain *hd)
{
	hv_domain_coredump(hd);
	hv_domain_destroy(hd);
}

static void hv_act_coredump_restart(struct hv_domain *hd)
{
	hv_domain_coredump(hd);
	hv_act_restart(hd);
}

static void (*const hv_action_table[])(struct hv_domain *hd) = {
    [LAMINA_ACT_DESTROY] = hv_act_destroy,
    [LAMINA_ACT_RESTART] = hv_act_restart,
    [LAMINA_ACT_PRESERVE] = hv_act_preserve,
    [LAMINA_ACT_RENAME_RESTART] = hv_act_rename_restart,
    [LAMINA_ACT_COREDUMP_DESTROY] = hv_act_coredump_destroy,
    [LAMINA_ACT_COREDUMP_RESTART] = hv_act_coredump_restart,
};

static const char *hv_reason_name(unsigned reason)
{
	static const char *const names[] = {"poweroff", "reboot",   "suspend",
					    "crash",	"watchdog", "soft_reset"};
	return reason < sizeof(names) / sizeof(names[0]) ? names[reason] : "unknown";
}

void hv_domain_run_action(struct hv_domain *hd)
{
	struct domain *d = &hd->d;
	unsigned reason;
	uint8_t act;

	pthread_mutex_lock(&d->lock);
	if (!hd->action_pending) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	hd->action_pending = false;
	reason = d->shutdown_reason;
	pthread_mutex_unlock(&d->lock);

	switch (reason) {
	case SHUTDOWN_poweroff:
		act = d->cfg.on_poweroff;
		break;
	case SHUTDOWN_reboot:
	case SHUTDOWN_soft_reset:
		act = d->cfg.on_reboot;
		break;
	case SHUTDOWN_suspend:
		act = LAMINA_ACT_PRESERVE; /* a suspended domain waits for its toolstack */
		break;
	default: /* crash, watchdog, anything else */
		act = d->cfg.on_crash;
		break;
	}
	if (act > LAMINA_ACT_COREDUMP_RESTART)
		act = LAMINA_ACT_DESTROY;
	if ((act == LAMINA_ACT_RESTART || act == LAMINA_ACT_RENAME_RESTART || act == LAMINA_ACT_COREDUMP_RESTART) &&
	    !hv_restart_allowed(hd)) {
		hv_log(&hd->hv->log,
		       "dom%u %s: restart loop: more than %u restarts within %llu s; left %s and preserved "
		       "instead of %s (destroy it when done)",
		       d->domid, d->cfg.name, hd->hv->restart_max,
		       (unsigned long long)(hd->hv->restart_window_ns / 1000000000ull), d->state == LAMINA_DOM_CRASHED ? "crashed" : "shut down", hv_action_names[act]);
		if (act == LAMINA_ACT_COREDUMP_RESTART)
			hv_domain_coredump(hd);
		hd->restart_loop = true;
		act = LAMINA_ACT_PRESERVE;
	}
	hd->action_taken = act;
	hv_emit(hd->hv, LAMINA_EV_STOPPED, hd);
	hv_log(&hd->hv->log, "dom%u %s: %s (reason %s), action %s", d->domid, d->cfg.name,
	       d->state == LAMINA_DOM_CRASHED ? "crashed" : "shut down", hv_reason_name(reason),
	       hv_action_names[act]);
	hv_action_table[act](hd);
}

static void hv_op_shutdown(struct domain *d, unsigned reason)
{
	hv_domain_stop(hv_domain_of(d), reason, NULL);
}

static void hv_op_crash(struct domain *d, const char *why)
{
	hv_domain_stop(hv_domain_of(d), SHUTDOWN_crash, why ? why : "crashed");
}

static int hv_op_console_write(struct domain *d, const char *buf, size_t len)
{
	struct hv_domain *hd = hv_domain_of(d);
	uint64_t zero = 0;
	size_t done = 0;
	ssize_t n;

	if (len == 0)
		return 0;
	atomic_compare_exchange_strong(&d->first_console_ns, &zero, domain_mono_ns());
	atomic_fetch_add(&d->console_bytes, len);
	while (done < len && hd->console_fd >= 0) {
		n = write(hd->console_fd, buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int hv_op_block(struct vcpu *v, uint64_t deadline_mono_ns)
{
	return hv_domain_of(v->d)->hv->rops->block(v, deadline_mono_ns);
}

static void hv_op_wake(struct vcpu *v)
{
	hv_domain_of(v->d)->hv->rops->wake(v);
}

static void hv_op_upcall(struct vcpu *v)
{
	hv_domain_of(v->d)->hv->rops->upcall(v);
}

static void hv_op_yield(struct vcpu *v)
{
	sched_yield();
}

static int hv_op_vcpu_up(struct vcpu *v)
{
	return hv_domain_of(v->d)->hv->rops->vcpu_up(v);
}

static void hv_op_vcpu_down(struct vcpu *v)
{
	hv_domain_of(v->d)->hv->rops->vcpu_down(v);
}

static int hv_op_map_page(struct domain *d, uint64_t gfn, void *page)
{
	return hv_domain_of(d)->hv->rops->map_page(d, gfn, page);
}

static int hv_op_map_foreign(struct domain *d, unsigned idx, uint64_t gfn, void *page, bool ro)
{
	return hv_domain_of(d)->hv->rops->map_foreign(d, idx, gfn, page, ro);
}

static int hv_op_read_tsc(struct vcpu *v, uint64_t *guest_tsc, uint64_t *mono_ns)
{
	return hv_domain_of(v->d)->hv->rops->read_tsc(v, guest_tsc, mono_ns);
}

static void hv_op_log(struct domain *d, const char *msg)
{
	struct hv_domain *hd = hv_domain_of(d);
	uint32_t dropped;

	if (!hv_ratelimit_ok(&hd->logrl, &hd->log_lock, &dropped))
		return;
	if (dropped)
		hv_log(&hd->hv->log, "dom%u %s: (%u lines dropped) %s", d->domid, d->cfg.name, dropped, msg);
	else
		hv_log(&hd->hv->log, "dom%u %s: %s", d->domid, d->cfg.name, msg);
}

const struct domain_ops hv_domain_ops = {
    .shutdown = hv_op_shutdown,
    .crash = hv_op_crash,
    .console_write = hv_op_console_write,
    .block = hv_op_block,
    .wake = hv_op_wake,
    .upcall = hv_op_upcall,
    .yield = hv_op_yield,
    .vcpu_up = hv_op_vcpu_up,
    .vcpu_down = hv_op_vcpu_down,
    .map_page = hv_op_map_page,
    .map_foreign = hv_op_map_foreign,
    .read_tsc = hv_op_read_tsc,
    .log = hv_op_log,
};
