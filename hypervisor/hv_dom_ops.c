/* domain_ops for domains the daemon runs: what the hypercall layer may ask of the hypervisor
 * from a vCPU thread (shutdown, crash, console, block, yield, extra pages, TSC, log). */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

#include "hv.h"
#include <xen/sched.h>

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

static int hv_op_block(struct vcpu *v)
{
	return hv_domain_of(v->d)->hv->rops->block(v);
}

static void hv_op_yield(struct vcpu *v)
{
	sched_yield();
}

static int hv_op_map_page(struct domain *d, uint64_t gfn, void *page)
{
	return hv_domain_of(d)->hv->rops->map_page(d, gfn, page);
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
	.yield = hv_op_yield,
	.map_page = hv_op_map_page,
	.read_tsc = hv_op_read_tsc,
	.log = hv_op_log,
};
