/* Domain lifecycle: validation of a create request (every field, once, on a copy), building a
 * domain from it (RAM, vCPUs, kernel, VM, shared_info, console log), pause, stop, destroy (teardown
 * handed to the reaper) and its public info. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gnt_map.h"
#include "grant_table.h"
#include "hv.h"
#include "pvh_loader.h"

#include <xen/sched.h>

static int hv_console_open(struct hv *hv, const char *name)
{
	char path[PATH_MAX + 128];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/console/%.*s.log", hv->rundir, LAMINA_NAME_MAX, name) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
	return fd < 0 ? -errno : fd;
}

static struct hv_domain *hv_domain_alloc(struct hv *hv, const struct lamina_ctl_domcfg *cfg, uint32_t domid)
{
	struct hv_domain *hd = calloc(1, sizeof(*hd));
	struct domain *d;

	if (!hd)
		return NULL;
	d = &hd->d;
	hd->hv = hv;
	hd->console_fd = -1;
	hd->action_taken = HV_ACTION_NONE;
	hd->create_ns = domain_mono_ns();
	d->domid = domid;
	d->cfg = *cfg;
	d->ops = &hv_domain_ops;
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&hd->log_lock, NULL);
	pthread_mutex_init(&d->console_lock, NULL);
	d->special_fd = -1;
	d->state = (cfg->flags & LAMINA_CFG_START_PAUSED) ? LAMINA_DOM_PAUSED : LAMINA_DOM_RUNNING;
	d->shutdown_code = -1;
	d->mem.memfd = -1;
	d->shared_info_gfn = UINT64_MAX;
	d->max_pages = cfg->max_memory_kib / 4;
	d->cur_pages = cfg->memory_kib / 4;
	d->nr_vcpus = cfg->vcpus;
	return hd;
}

static int hv_vcpus_alloc(struct domain *d)
{
	unsigned i;

	for (i = 0; i < d->nr_vcpus; i++) {
		struct vcpu *v = calloc(1, sizeof(*v));
		if (!v)
			return -ENOMEM;
		v->d = d;
		v->id = i;
		v->online = i == 0;
		v->initialised = i == 0; /* the others wait for VCPUOP_initialise */
		v->info_gpa = UINT64_MAX;
		v->runstate.state = i == 0 ? RUNSTATE_runnable : RUNSTATE_offline;
		d->vcpu[i] = v;
	}
	return 0;
}

/* Per-step timing of a create, logged when $LAMINA_HV_DEBUG is set (hv->debug). */
struct hv_steps {
	uint64_t last;
	size_t n;
	char buf[256];
};

static void hv_step(struct hv_steps *st, const char *name)
{
	uint64_t now = domain_mono_ns();
	int k = snprintf(st->buf + st->n, sizeof(st->buf) - st->n, " %s=%llu", name,
			 (unsigned long long)((now - st->last) / 1000u));

	if (k > 0 && (size_t)k < sizeof(st->buf) - st->n)
		st->n += (size_t)k;
	st->last = now;
}

/* RAM, shared_info, vCPUs, the kernel, the VM and the console, then vCPU 0 starts. */
static int hv_domain_build(struct hv *hv, struct hv_domain *hd, const uint8_t *k, size_t klen,
			   const uint8_t *rd, size_t rdlen, const char **why)
{
	struct domain *d = &hd->d;
	struct pvh_boot boot;
	struct hv_steps st = {domain_mono_ns(), 0, ""};
	bool pooled;
	unsigned i;
	int rc;

	/* Memory and a VM built ahead by the runner when it has them for this size; else our own. */
	rc = hv->rops->mem_take && hv->rctx ? hv->rops->mem_take(hv->rctx, hd, d->cfg.memory_kib * 1024ull)
					    : -ENOENT;
	pooled = rc == 0;
	if (rc == -ENOENT)
		rc = gmem_init(&d->mem, d->cfg.name, d->cfg.memory_kib * 1024ull);
	if (rc < 0) {
		*why = "guest RAM";
		return rc;
	}
	hv_step(&st, pooled ? "ram(pooled)" : "ram");
	rc = hv_vcpus_alloc(d);
	if (rc < 0) {
		*why = "vCPU state";
		return rc;
	}
	hv_step(&st, "vcpus");
	rc = pvh_load(d, k, klen, rd, rdlen, &boot);
	if (rc < 0) {
		*why =
		    rc == -E2BIG ? "kernel/ramdisk do not fit in guest RAM" : "kernel is not a PVH ELF image";
		return rc;
	}
	if (hv->rops->mem_hint && hv->rctx)
		hv->rops->mem_hint(hv->rctx, boot.written_lo, boot.written_hi);
	hv_step(&st, "load");
	rc = evtchn_domain_init(&hv->evw, d, EVTCHN_GUEST_MAX_PORT);
	if (rc < 0) {
		*why = "event channels";
		return rc;
	}
	rc = special_init(d); /* before the VM: its RAM slot also covers the special region */
	if (rc < 0) {
		*why = "special pages";
		return rc;
	}
	hv_step(&st, "evtchn+special");
	rc = hv->rops->vm_create(hv->rctx, hd);
	if (rc < 0) {
		*why = "VM creation";
		return rc;
	}
	hv_step(&st, "vm");
	d->boot_mono_ns = domain_mono_ns();
	clock_gettime(CLOCK_REALTIME, &d->boot_wall);
	rc = shared_info_init(d);
	if (rc < 0) {
		*why = "shared_info";
		return rc;
	}
	hd->si_ready = true;
	hv_step(&st, "si");
	rc = gnttab_domain_init(d);
	if (rc < 0) {
		*why = "grant table";
		return rc;
	}
	for (i = 0; i < d->nr_vcpus; i++) {
		struct vcpu *v = d->vcpu[i];
		if (!v->info && i < XEN_LEGACY_MAX_VCPUS && d->shared_info)
			v->info = &d->shared_info->vcpu_info[i];
		shared_info_update_time(v);
	}
	hv_step(&st, "gnttab");
	rc = hv_console_open(hv, d->cfg.name);
	if (rc < 0) {
		*why = "console log";
		return rc;
	}
	hd->console_fd = rc;
	hv_step(&st, "console");
	rc = hv->rops->vm_start(hd, &boot);
	if (rc < 0) {
		*why = "vCPU start";
		return rc;
	}
	hv_step(&st, "start");
	if (hv->debug)
		hv_log(&hv->log, "dom%u %s: create steps (us):%s", d->domid, d->cfg.name, st.buf);
	return 0;
}

int hv_domain_spawn(struct hv *hv, const struct lamina_ctl_domcfg *cfg, uint32_t domid, uint32_t restarts,
		    struct hv_domain **out)
{
	uint8_t *k = NULL, *rd = NULL;
	size_t klen = 0, rdlen = 0;
	const char *why = "kernel";
	struct hv_domain *hd;
	int rc;

	*out = NULL;
	if (!hv->rctx) {
		hv_log(&hv->log, "create %s: no execution backend (is /dev/kvm usable?)", cfg->name);
		return -ENODEV;
	}
	rc = pvh_read_file(cfg->kernel, PVH_MAX_IMAGE, &k, &klen);
	if (rc == 0 && cfg->ramdisk[0]) {
		why = "ramdisk";
		rc = pvh_read_file(cfg->ramdisk, PVH_MAX_IMAGE, &rd, &rdlen);
	}
	if (rc < 0) {
		hv_log(&hv->log, "create %s: %s %s: %s", cfg->name, why,
		       why[0] == 'k' ? cfg->kernel : cfg->ramdisk, strerror(-rc));
		goto out_free;
	}
	atomic_store(&hv->last_create_ns, domain_mono_ns());
	hd = hv_domain_alloc(hv, cfg, domid);
	if (!hd) {
		rc = -ENOMEM;
		goto out_free;
	}
	hd->restarts = restarts;
	rc = hv_domain_build(hv, hd, k, klen, rd, rdlen, &why);
	if (rc < 0) {
		hv_log(&hv->log, "create %s: %s failed: %s", cfg->name, why, strerror(-rc));
		hd->d.state = LAMINA_DOM_DYING;
		hv_domain_free(hd);
		goto out_free;
	}
	hv_table_insert(hv, hd);
	*out = hd;
out_free:
	free(k);
	free(rd);
	return rc;
}

int hv_domain_create(struct hv *hv, const struct lamina_ctl_domcfg *cfg, struct hv_domain **out)
{
	struct lamina_ctl_domcfg c;
	const char *why;
	uint32_t domid;
	int rc;

	*out = NULL;
	rc = hv_domcfg_validate(cfg, &c, &why);
	if (rc < 0) {
		hv_log(&hv->log, "create refused: %s", why);
		return rc;
	}
	if (hv_find_name(hv, c.name)) {
		hv_log(&hv->log, "create refused: a domain named %s exists", c.name);
		return -EEXIST;
	}
	rc = hv_domid_alloc(hv, &domid);
	if (rc < 0) {
		hv_log(&hv->log, "create %s refused: no free domain id", c.name);
		return rc;
	}
	rc = hv_domain_spawn(hv, &c, domid, 0, out);
	if (rc == 0)
		hv_emit(hv, LAMINA_EV_CREATED, *out);
	if (rc == 0)
		hv_log(&hv->log, "dom%u %s: created (%llu KiB, %u vCPUs%s)", domid, c.name,
		       (unsigned long long)c.memory_kib, c.vcpus,
		       (c.flags & LAMINA_CFG_START_PAUSED) ? ", paused" : "");
	return rc;
}

int hv_domain_pause(struct hv_domain *hd, bool pause)
{
	struct domain *d = &hd->d;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (d->state == LAMINA_DOM_RUNNING && pause)
		d->state = LAMINA_DOM_PAUSED;
	else if (d->state == LAMINA_DOM_PAUSED && !pause)
		d->state = LAMINA_DOM_RUNNING;
	else if (d->state != (pause ? LAMINA_DOM_PAUSED : LAMINA_DOM_RUNNING))
		rc = -EINVAL; /* shut down, crashed or dying */
	else
		rc = 1; /* already there */
	if (rc == 0)
		hd->hv->rops->vm_pause(hd, pause);
	pthread_mutex_unlock(&d->lock);
	return rc < 0 ? rc : 0;
}

void hv_domain_stop(struct hv_domain *hd, unsigned reason, const char *why)
{
	struct domain *d = &hd->d;
	bool first = false;

	pthread_mutex_lock(&d->lock);
	if (d->state == LAMINA_DOM_RUNNING || d->state == LAMINA_DOM_PAUSED) {
		d->state = reason == SHUTDOWN_crash ? LAMINA_DOM_CRASHED : LAMINA_DOM_SHUTDOWN;
		d->shutdown_reason = reason;
		hd->action_pending = true;
		first = true;
	}
	pthread_mutex_unlock(&d->lock);
	if (!first)
		return;
	if (why)
		hv_log(&hd->hv->log, "dom%u %s: crashed: %s", d->domid, d->cfg.name, why);
	hd->hv->rops->vm_stop(hd);
	evtchn_send_virq(hd->hv->dom0, 0, VIRQ_DOM_EXC);
	hv_evq_post(hd->hv, d->domid);
}

void hv_domain_destroy(struct hv_domain *hd)
{
	struct hv *hv = hd->hv;
	struct domain *d = &hd->d;

	pthread_mutex_lock(&d->lock);
	d->state = LAMINA_DOM_DYING;
	hd->action_pending = false;
	pthread_mutex_unlock(&d->lock);
	hv->rops->vm_stop(hd);
	hv_table_remove(hv, hd);
	evtchn_domain_teardown(d); /* its peers see their ports go unbound, and pending */
	evtchn_send_virq(hv->dom0, 0, VIRQ_DOM_EXC);
	hv_tomb_add(hv, hd, hd->action_taken);
	if (hv->on_stop)
		hv->on_stop(hv->on_stop_arg, hd, true, hd->action_taken);
	hv_emit(hv, LAMINA_EV_DESTROYED, hd);
	hv_log(&hv->log, "dom%u %s: destroyed", d->domid, d->cfg.name);
	hv_reaper_push(hv, hd);
}

void hv_domain_info(struct hv_domain *hd, struct lamina_ctl_dominfo *out)
{
	struct domain *d = &hd->d;
	unsigned i;

	memset(out, 0, sizeof(*out));
	out->domid = d->domid;
	domain_console_ring_account(d);
	pthread_mutex_lock(&d->lock);
	out->state = d->state;
	out->shutdown_reason = d->shutdown_reason;
	out->shutdown_code = d->shutdown_code;
	pthread_mutex_unlock(&d->lock);
	memcpy(out->name, d->cfg.name, sizeof(out->name));
	memcpy(out->uuid, d->cfg.uuid, sizeof(out->uuid));
	out->memory_kib = d->cfg.memory_kib;
	out->max_memory_kib = d->cfg.max_memory_kib;
	out->vcpus = d->nr_vcpus;
	for (i = 0; i < d->nr_vcpus; i++) {
		struct vcpu *v = d->vcpu[i];
		if (!v)
			continue;
		out->vcpus_online += v->online;
		out->exits += atomic_load(&v->exits);
		out->hypercalls += atomic_load(&v->hypercalls);
		if (v->runner)
			out->cpu_time_ns += hd->hv->rops->cpu_time_ns(v);
	}
	out->create_ns = hd->create_ns;
	out->first_console_ns = atomic_load(&d->first_console_ns);
	out->console_bytes = atomic_load(&d->console_bytes);
	out->restarts = hd->restarts;
	out->on_poweroff = d->cfg.on_poweroff;
	out->on_reboot = d->cfg.on_reboot;
	out->on_crash = d->cfg.on_crash;
	out->action_taken = hd->action_taken;
}

void hv_domain_free(struct hv_domain *hd)
{
	const struct hv_runner_ops *rops = hd->hv->rops;
	struct domain *d = &hd->d;
	unsigned i;

	if (d->runner) {
		rops->vm_stop(hd);
		rops->vm_join(hd);
		rops->vm_destroy(hd);
	}
	evtchn_domain_free(d);
	special_fini(d);
	if (hd->si_ready)
		shared_info_fini(d);
	gnt_map_domain_fini(d); /* after vm_destroy: its foreign maps' slots went with the VM */
	gnttab_domain_fini(d); /* Domain-0 maps still pin the table; it goes with the last */
	gmem_fini(&d->mem);
	if (hd->console_fd >= 0)
		close(hd->console_fd);
	for (i = 0; i < LAMINA_MAX_VCPUS; i++)
		free(d->vcpu[i]);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&hd->log_lock);
	pthread_mutex_destroy(&d->console_lock);
	free(hd);
}

bool hv_name_valid(const char *name, size_t max)
{
	size_t i, n = strnlen(name, max);

	if (n == 0 || n >= max)
		return false; /* empty, or no NUL inside the field */
	for (i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (alnum)
			continue;
		if (i == 0 || (c != '-' && c != '_' && c != '.'))
			return false; /* names become file names: first character alphanumeric */
	}
	return true;
}

/* An optional absolute path, NUL-terminated inside its field. */
static int hv_path_check(const char *p, size_t max, bool required)
{
	size_t n = strnlen(p, max);

	if (n >= max)
		return -EINVAL;
	if (n == 0)
		return required ? -EINVAL : 0;
	if (p[0] != '/')
		return -EINVAL;
	return 0;
}

int hv_domcfg_validate(const struct lamina_ctl_domcfg *in, struct lamina_ctl_domcfg *out, const char **why)
{
	struct lamina_ctl_domcfg c;
	size_t n;

	memcpy(&c, in, sizeof(c)); /* copy once; only the copy is looked at */
	*why = NULL;
	if (!hv_name_valid(c.name, sizeof(c.name))) {
		*why = "name: 1-63 characters of [A-Za-z0-9._-], starting alphanumeric, NUL-terminated";
		return -EINVAL;
	}
	n = strnlen(c.name, sizeof(c.name));
	memset(c.name + n, 0, sizeof(c.name) - n);
	if (c.memory_kib < LAMINA_MIN_MEMORY_KIB) {
		*why = "memory_kib below the minimum (2048)";
		return -EINVAL;
	}
	if (c.memory_kib > HV_MAX_MEMORY_KIB) {
		*why = "memory_kib above the maximum (3 GiB)";
		return -E2BIG;
	}
	c.memory_kib = (c.memory_kib + 3) & ~3ull; /* whole 4 KiB pages */
	if (c.max_memory_kib == 0)
		c.max_memory_kib = c.memory_kib;
	if (c.max_memory_kib > HV_MAX_MEMORY_KIB) {
		*why = "max_memory_kib above the maximum (3 GiB)";
		return -E2BIG;
	}
	c.max_memory_kib = (c.max_memory_kib + 3) & ~3ull;
	if (c.max_memory_kib < c.memory_kib) {
		*why = "max_memory_kib below memory_kib";
		return -EINVAL;
	}
	if (c.vcpus < 1 || c.vcpus > LAMINA_MAX_VCPUS) {
		*why = "vcpus outside 1..64";
		return -EINVAL;
	}
	if (c.on_poweroff > LAMINA_ACT_COREDUMP_RESTART || c.on_reboot > LAMINA_ACT_COREDUMP_RESTART ||
	    c.on_crash > LAMINA_ACT_COREDUMP_RESTART) {
		*why = "on_poweroff/on_reboot/on_crash: unknown action";
		return -EINVAL;
	}
	if (c.flags & ~LAMINA_CFG_START_PAUSED) {
		*why = "flags: unknown bits";
		return -EINVAL;
	}
	if (c.pad0 || c.pad1) {
		*why = "padding fields must be zero";
		return -EINVAL;
	}
	if (hv_path_check(c.kernel, sizeof(c.kernel), true) < 0) {
		*why = "kernel: an absolute path, NUL-terminated, is required";
		return -EINVAL;
	}
	if (hv_path_check(c.ramdisk, sizeof(c.ramdisk), false) < 0) {
		*why = "ramdisk: empty or an absolute path, NUL-terminated";
		return -EINVAL;
	}
	n = strnlen(c.cmdline, sizeof(c.cmdline));
	if (n >= sizeof(c.cmdline)) {
		*why = "cmdline: not NUL-terminated";
		return -EINVAL;
	}
	/* Bytes after each string's NUL are not the client's business: clear them. */
	memset(c.cmdline + n, 0, sizeof(c.cmdline) - n);
	n = strnlen(c.kernel, sizeof(c.kernel));
	memset(c.kernel + n, 0, sizeof(c.kernel) - n);
	n = strnlen(c.ramdisk, sizeof(c.ramdisk));
	memset(c.ramdisk + n, 0, sizeof(c.ramdisk) - n);
	memcpy(out, &c, sizeof(c));
	return 0;
}
