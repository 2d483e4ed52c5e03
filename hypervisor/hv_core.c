/* The daemon state: domain tables (by id and by name, O(1) on the create path), domid
 * allocation, the vCPU-to-main-loop event queue and the reaper that tears domains down. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hv.h"

static unsigned hv_name_hash(const char *name, size_t max)
{
	unsigned h = 2166136261u;
	size_t i;

	for (i = 0; i < max && name[i]; i++)
		h = (h ^ (uint8_t)name[i]) * 16777619u;
	return h % HV_NAME_BUCKETS;
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
		hv_domain_free(hd);
		pthread_mutex_lock(&r->lock);
		r->pending--;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
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
	if (rops) {
		rc = rops->init(hv, &hv->rctx);
		if (rc < 0) {
			hv_log(&hv->log, "backend %s unavailable: %s; creates will fail", rops->name, strerror(-rc));
			hv->rctx = NULL;
		}
	}
	return 0;

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
			hv_log(&hv->log, "dom%u: event queue full; its action waits for the next request", domid);
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
