/* The daemon state: domain tables (by id and by name, O(1) on the create path), domid
 * allocation, the vCPU-to-main-loop event queue, the reaper that tears domains down, and the log
 * (one write(2) per line so concurrent writers never interleave within a line). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "hv.h"
#include "hv_log.h"

static unsigned hv_name_hash(const char *name, size_t max)
{
	unsigned h = 2166136261u;
	size_t i;

	for (i = 0; i < max && name[i]; i++)
		h = (h ^ (uint8_t)name[i]) * 16777619u;
	return h % HV_NAME_BUCKETS;
}

/* Closing a VM is ~15 ms of kernel work that, run alongside a create, stretches that create's
 * memory-slot ioctls from tens of µs to milliseconds (measured). Teardown therefore waits until
 * creates have been quiet for HV_REAP_SETTLE_NS, but never more than HV_REAP_MAX_WAIT_NS. */
static void hv_reaper_settle(struct hv *hv)
{
	uint64_t start = domain_mono_ns(), now = start;

	while (!hv->reaper.quit && now - atomic_load(&hv->last_create_ns) < HV_REAP_SETTLE_NS &&
	       now - start < HV_REAP_MAX_WAIT_NS) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
		now = domain_mono_ns();
	}
}

/* Settles, then tears hd down; with $LAMINA_HV_DEBUG the log shows the domain's create -> first
 * console byte time, how long teardown waited and how long it took. */
static void hv_reaper_free(struct hv *hv, struct hv_domain *hd)
{
	uint64_t t0 = domain_mono_ns(), t1, t2, first = atomic_load(&hd->d.first_console_ns);
	uint64_t created = hd->create_ns;
	uint32_t domid = hd->d.domid;
	char name[LAMINA_NAME_MAX];

	memcpy(name, hd->d.cfg.name, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	hv_reaper_settle(hv);
	t1 = domain_mono_ns();
	hv_domain_free(hd);
	t2 = domain_mono_ns();
	if (hv->debug)
		hv_log(&hv->log, "dom%u %s: reaped: first byte %llu us after create; teardown waited %llu us, took %llu us",
		       domid, name, first ? (unsigned long long)((first - created) / 1000) : 0ull,
		       (unsigned long long)((t1 - t0) / 1000), (unsigned long long)((t2 - t1) / 1000));
}

static void *hv_reaper_main(void *arg)
{
	struct hv *hv = arg;
	struct hv_reaper *r = &hv->reaper;
	struct hv_domain *hd;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->head && !r->quit)
			pthread_cond_wait(&r->cond, &r->lock);
		if (!r->head)
			break;
		hd = r->head;
		r->head = hd->reap_next;
		pthread_mutex_unlock(&r->lock);
		hv_reaper_free(hv, hd);
		pthread_mutex_lock(&r->lock);
		r->pending--;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Domain-0: a domain with an event-channel table and nothing else. */
static int hv_dom0_create(struct hv *hv)
{
	struct domain *d0 = calloc(1, sizeof(*d0));
	int rc;

	if (!d0)
		return -ENOMEM;
	pthread_mutex_init(&d0->lock, NULL);
	pthread_mutex_init(&d0->console_lock, NULL);
	d0->is_dom0 = true;
	d0->special_fd = -1;
	d0->mem.memfd = -1;
	d0->state = LAMINA_DOM_RUNNING;
	snprintf(d0->cfg.name, sizeof(d0->cfg.name), "Domain-0");
	rc = evtchn_domain_init(&hv->evw, d0, EVTCHN_DOM0_MAX_PORT);
	if (rc < 0) {
		pthread_mutex_destroy(&d0->lock);
		free(d0);
		return rc;
	}
	hv->dom0 = d0;
	return 0;
}

static void hv_dom0_free(struct hv *hv)
{
	if (!hv->dom0)
		return;
	evtchn_domain_free(hv->dom0);
	pthread_mutex_destroy(&hv->dom0->lock);
	pthread_mutex_destroy(&hv->dom0->console_lock);
	free(hv->dom0);
	hv->dom0 = NULL;
}

void hv_tomb_add(struct hv *hv, struct hv_domain *hd, uint8_t action)
{
	struct hv_tombstone *t = &hv->tomb[hv->tomb_next % HV_TOMBSTONES];

	hv_domain_info(hd, &t->info);
	t->info.state = LAMINA_DOM_DEAD;
	t->info.action_taken = action;
	t->used = true;
	hv->tomb_next++;
}

/* Newest first, so a name reused by a later domain finds the latest incarnation. */
const struct hv_tombstone *hv_tomb_find(struct hv *hv, uint32_t domid, const char *name)
{
	char n[LAMINA_NAME_MAX];

	if (domid == LAMINA_DOMID_BY_NAME) {
		memcpy(n, name, sizeof(n));
		if (!memchr(n, 0, sizeof(n)))
			return NULL;
	}
	for (unsigned i = 1; i <= HV_TOMBSTONES; i++) {
		const struct hv_tombstone *t = &hv->tomb[(hv->tomb_next - i) % HV_TOMBSTONES];
		if (!t->used)
			break;
		if (domid == LAMINA_DOMID_BY_NAME ? !strncmp(t->info.name, n, sizeof(n)) : t->info.domid == domid)
			return t;
	}
	return NULL;
}

void hv_emit(struct hv *hv, unsigned kind, struct hv_domain *hd)
{
	if (hv->on_event)
		hv->on_event(hv->on_event_arg, kind, hd);
}

int hv_init(struct hv *hv, const char *rundir, const char *logpath, const struct hv_runner_ops *rops)
{
	pthread_attr_t attr;
	int rc;

	memset(hv, 0, sizeof(*hv));
	if (strlen(rundir) >= sizeof(hv->rundir) - 64)
		return -ENAMETOOLONG;
	strcpy(hv->rundir, rundir);
	rc = hv_log_open(&hv->log, logpath);
	if (rc < 0)
		return rc;
	hv->start_ns = domain_mono_ns();
	hv->next_domid = 1;
	hv->debug = getenv("LAMINA_HV_DEBUG") && *getenv("LAMINA_HV_DEBUG") && strcmp(getenv("LAMINA_HV_DEBUG"), "0");
	hv_restart_limit_parse(getenv("LAMINA_HV_RESTART_LIMIT"), &hv->restart_max, &hv->restart_window_ns);
	hv->rops = rops;
	hv->by_id = calloc(DOMID_FIRST_RESERVED, sizeof(*hv->by_id));
	if (!hv->by_id) {
		rc = -ENOMEM;
		goto out_log;
	}
	pthread_mutex_init(&hv->evq_lock, NULL);
	hv->evq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (hv->evq_fd < 0) {
		rc = -errno;
		goto out_ids;
	}
	pthread_mutex_init(&hv->reaper.lock, NULL);
	pthread_cond_init(&hv->reaper.cond, NULL);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256u << 10);
	rc = -pthread_create(&hv->reaper.thread, &attr, hv_reaper_main, hv);
	pthread_attr_destroy(&attr);
	if (rc < 0)
		goto out_evq;
	hv->reaper.started = true;
	rc = evtchn_world_init(&hv->evw, true);
	if (rc < 0)
		goto out_reaper;
	rc = hv_dom0_create(hv);
	if (rc < 0)
		goto out_world;
	if (rops) {
		rc = rops->init(hv, &hv->rctx);
		if (rc < 0) {
			hv_log(&hv->log, "backend %s unavailable: %s; creates will fail", rops->name,
			       strerror(-rc));
			hv->rctx = NULL;
		}
	}
	return 0;

out_world:
	evtchn_world_fini(&hv->evw);
out_reaper:
	pthread_mutex_lock(&hv->reaper.lock);
	hv->reaper.quit = true;
	pthread_cond_broadcast(&hv->reaper.cond);
	pthread_mutex_unlock(&hv->reaper.lock);
	pthread_join(hv->reaper.thread, NULL);
out_evq:
	close(hv->evq_fd);
out_ids:
	free(hv->by_id);
out_log:
	hv_log_close(&hv->log);
	return rc;
}

void hv_fini(struct hv *hv)
{
	uint32_t id;

	for (id = 1; id < DOMID_FIRST_RESERVED && hv->nr_domains; id++)
		if (hv->by_id[id])
			hv_domain_destroy(hv->by_id[id]);
	hv_reaper_drain(hv);
	pthread_mutex_lock(&hv->reaper.lock);
	hv->reaper.quit = true;
	pthread_cond_broadcast(&hv->reaper.cond);
	pthread_mutex_unlock(&hv->reaper.lock);
	if (hv->reaper.started)
		pthread_join(hv->reaper.thread, NULL);
	if (hv->rops && hv->rctx)
		hv->rops->fini(hv->rctx);
	hv_dom0_free(hv);
	evtchn_world_fini(&hv->evw);
	close(hv->evq_fd);
	free(hv->evq);
	free(hv->by_id);
	pthread_mutex_destroy(&hv->evq_lock);
	hv_log_close(&hv->log);
}

struct hv_domain *hv_find_id(struct hv *hv, uint32_t domid)
{
	if (domid == 0 || domid >= DOMID_FIRST_RESERVED)
		return NULL;
	return hv->by_id[domid];
}

struct hv_domain *hv_find_name(struct hv *hv, const char *name)
{
	struct hv_domain *hd;

	for (hd = hv->by_name[hv_name_hash(name, LAMINA_NAME_MAX)]; hd; hd = hd->name_next)
		if (!strncmp(hd->d.cfg.name, name, LAMINA_NAME_MAX))
			return hd;
	return NULL;
}

struct hv_domain *hv_find_ref(struct hv *hv, uint32_t domid, const char *name)
{
	char n[LAMINA_NAME_MAX];

	if (domid != LAMINA_DOMID_BY_NAME)
		return hv_find_id(hv, domid);
	memcpy(n, name, sizeof(n));
	if (!memchr(n, 0, sizeof(n)))
		return NULL;
	return hv_find_name(hv, n);
}

void hv_table_insert(struct hv *hv, struct hv_domain *hd)
{
	unsigned b = hv_name_hash(hd->d.cfg.name, LAMINA_NAME_MAX);

	hv->by_id[hd->d.domid] = hd;
	hd->name_next = hv->by_name[b];
	hv->by_name[b] = hd;
	hv->nr_domains++;
	hv->total_mem_kib += hd->d.cfg.memory_kib;
}

void hv_table_remove(struct hv *hv, struct hv_domain *hd)
{
	struct hv_domain **pp = &hv->by_name[hv_name_hash(hd->d.cfg.name, LAMINA_NAME_MAX)];

	for (; *pp; pp = &(*pp)->name_next) {
		if (*pp == hd) {
			*pp = hd->name_next;
			break;
		}
	}
	hd->name_next = NULL;
	if (hv->by_id[hd->d.domid] == hd)
		hv->by_id[hd->d.domid] = NULL;
	hv->nr_domains--;
	hv->total_mem_kib -= hd->d.cfg.memory_kib;
}

/* Ids count up from 1 and are not reused while the daemon lives, until they wrap at
 * DOMID_FIRST_RESERVED; after that, live ids are skipped. */
int hv_domid_alloc(struct hv *hv, uint32_t *domid)
{
	uint32_t tries;

	for (tries = 0; tries < DOMID_FIRST_RESERVED; tries++) {
		uint32_t id = hv->next_domid++;
		if (hv->next_domid >= DOMID_FIRST_RESERVED)
			hv->next_domid = 1;
		if (id == 0 || id >= DOMID_FIRST_RESERVED || hv->by_id[id])
			continue;
		*domid = id;
		return 0;
	}
	return -ENOSPC;
}

void hv_evq_post(struct hv *hv, uint32_t domid)
{
	uint64_t one = 1;
	uint32_t *n;

	pthread_mutex_lock(&hv->evq_lock);
	if (hv->evq_len == hv->evq_cap) {
		unsigned cap = hv->evq_cap ? hv->evq_cap * 2 : 64;
		n = realloc(hv->evq, cap * sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&hv->evq_lock);
			hv_log(&hv->log, "dom%u: event queue full; its action waits for the next request",
			       domid);
			return;
		}
		hv->evq = n;
		hv->evq_cap = cap;
	}
	hv->evq[hv->evq_len++] = domid;
	pthread_mutex_unlock(&hv->evq_lock);
	if (write(hv->evq_fd, &one, sizeof(one)) < 0) {
		/* the counter saturating still leaves it readable */
	}
}

void hv_evq_run(struct hv *hv)
{
	uint32_t batch[64];
	unsigned n, i;
	uint64_t v;

	if (read(hv->evq_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing signalled, the queue may still hold work */
	}
	for (;;) {
		pthread_mutex_lock(&hv->evq_lock);
		n = hv->evq_len < 64 ? hv->evq_len : 64;
		if (n == 0) {
			pthread_mutex_unlock(&hv->evq_lock);
			break;
		}
		memcpy(batch, hv->evq + hv->evq_len - n, n * sizeof(*batch));
		hv->evq_len -= n;
		pthread_mutex_unlock(&hv->evq_lock);
		for (i = 0; i < n; i++) {
			struct hv_domain *hd = hv_find_id(hv, batch[i]);
			if (hd)
				hv_domain_run_action(hd);
		}
	}
}

void hv_reaper_push(struct hv *hv, struct hv_domain *hd)
{
	pthread_mutex_lock(&hv->reaper.lock);
	hd->reap_next = hv->reaper.head;
	hv->reaper.head = hd;
	hv->reaper.pending++;
	pthread_cond_broadcast(&hv->reaper.cond);
	pthread_mutex_unlock(&hv->reaper.lock);
}

void hv_reaper_drain(struct hv *hv)
{
	pthread_mutex_lock(&hv->reaper.lock);
	while (hv->reaper.pending)
		pthread_cond_wait(&hv->reaper.cond, &hv->reaper.lock);
	pthread_mutex_unlock(&hv->reaper.lock);
}

int hv_log_open(struct hv_log *log, const char *path)
{
	log->fd = -1;
	pthread_mutex_init(&log->lock, NULL);
	if (!path)
		return 0;
	log->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (log->fd < 0)
		return -errno;
	return 0;
}

void hv_log_close(struct hv_log *log)
{
	if (log->fd >= 0)
		close(log->fd);
	log->fd = -1;
	pthread_mutex_destroy(&log->lock);
}

void hv_log(struct hv_log *log, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n, m;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	pthread_mutex_lock(&log->lock);
	if (write(log->fd >= 0 ? log->fd : STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nowhere left to report a failing log; the daemon keeps running. */
	}
	pthread_mutex_unlock(&log->lock);
}

bool hv_ratelimit_ok(struct hv_ratelimit *rl, pthread_mutex_t *lock, uint32_t *dropped_out)
{
	struct timespec ts;
	uint64_t now, add;
	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	pthread_mutex_lock(lock);
	if (rl->last_ns == 0) {
		rl->tokens = HV_LOG_BURST;
		rl->last_ns = now;
	}
	add = (now - rl->last_ns) * HV_LOG_RATE / 1000000000ull;
	if (add) {
		rl->tokens = add + rl->tokens > HV_LOG_BURST ? HV_LOG_BURST : rl->tokens + (uint32_t)add;
		rl->last_ns = now;
	}
	ok = rl->tokens > 0;
	*dropped_out = 0;
	if (ok) {
		rl->tokens--;
		*dropped_out = rl->dropped;
		rl->dropped = 0;
	} else {
		rl->dropped++;
	}
	pthread_mutex_unlock(lock);
	return ok;
}
