/* The lamina-hv daemon core: the table of live domains, their lifecycle (create, pause, shutdown,
 * on_* actions, destroy), the queue from vCPU threads to the main loop, and the teardown reaper. */
#ifndef LAMINA_HV_H
#define LAMINA_HV_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "domain.h"
#include "hv_log.h"
#include "hv_runner.h"

#define HV_NAME_BUCKETS 1024
#define HV_MAX_MEMORY_KIB (3ull << 20) /* RAM stays below the 3 GiB MMIO hole */
#define HV_ACTION_NONE 0xffu
#define HV_VCPU_STACK (128u << 10)
#define HV_REAP_SETTLE_NS 5000000ull	/* teardown waits for creates to be quiet this long */
#define HV_REAP_MAX_WAIT_NS 50000000ull /* ... but no longer than this per domain */

struct hv;

/* A domain as the daemon holds it; struct domain is what the hypercall layer sees. */
/* Restart-rate limit: more than max restarts (1..HV_RESTART_HIST, 0: no limit) within the window
 * and a restart action becomes preserve. $LAMINA_HV_RESTART_LIMIT="N/SECONDS" sets it. */
#define HV_RESTART_HIST 32u
#define HV_RESTART_MAX_DEFAULT 10u
#define HV_RESTART_WINDOW_DEFAULT_S 60u

struct hv_domain {
	struct domain d;
	struct hv *hv;
	struct hv_domain *name_next; /* hv->by_name chain */
	struct hv_domain *reap_next; /* reaper queue */
	int console_fd;
	uint32_t restarts;
	/* When the last restarts happened (ring, CLOCK_MONOTONIC ns), carried to each new incarnation:
	 * more than hv->restart_max within hv->restart_window_ns stops a restart loop. */
	uint64_t restart_ns[HV_RESTART_HIST];
	unsigned restart_pos;
	bool restart_loop; /* a restart was refused as a loop: the domain was left preserved */
	uint8_t action_taken; /* the on_* action applied last, HV_ACTION_NONE before */
	bool action_pending;  /* stopped, action not yet run (d.lock) */
	bool si_ready;	      /* shared_info_init done */
	uint64_t create_ns;
	pthread_mutex_t log_lock; /* guards logrl only: d.lock may be held by a logging caller */
	struct hv_ratelimit logrl;
};

static inline struct hv_domain *hv_domain_of(struct domain *d)
{
	return (struct hv_domain *)((char *)d - __builtin_offsetof(struct hv_domain, d));
}

/* Told when a domain stops (shut down, crashed) or goes away; gone means the pointer dies after
 * the call. The control server answers WAIT requests from it. */
typedef void (*hv_stop_fn)(void *arg, struct hv_domain *hd, bool gone, uint8_t action);
/* Told (on the main thread) when a domain is created, stops, is destroyed or restarted
 * (enum lamina_ctl_event_kind): the control server tells its subscribers. */
typedef void (*hv_event_fn)(void *arg, unsigned kind, struct hv_domain *hd);

/* A domain that went away, kept so WAIT can still answer for it. */
#define HV_TOMBSTONES 256
struct hv_tombstone {
	bool used;
	struct lamina_ctl_dominfo info; /* as it was last, state LAMINA_DOM_DEAD */
};

struct hv_reaper {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct hv_domain *head;
	unsigned pending;
	bool quit, started;
};

struct hv {
	char rundir[PATH_MAX];
	struct hv_log log;
	const struct hv_runner_ops *rops;
	void *rctx; /* NULL when the backend failed to start: creates get -ENODEV */
	uint64_t start_ns;
	uint32_t next_domid;
	unsigned nr_domains;
	uint64_t total_mem_kib;
	struct hv_domain **by_id; /* DOMID_FIRST_RESERVED slots */
	struct hv_domain *by_name[HV_NAME_BUCKETS];

	/* vCPU threads post domids whose state changed; the main loop runs their actions. */
	pthread_mutex_t evq_lock;
	uint32_t *evq;
	unsigned evq_len, evq_cap;
	int evq_fd; /* eventfd, readable when evq is not empty */

	struct hv_reaper reaper;
	hv_stop_fn on_stop;
	void *on_stop_arg;
	hv_event_fn on_event;
	void *on_event_arg;

	/* Event channels of every domain, and Domain-0 (domid 0: ports, no vCPUs). */
	struct evtchn_world evw;
	struct domain *dom0;

	bool debug; /* $LAMINA_HV_DEBUG: per-step create timing in the log */
	unsigned restart_max;	    /* see HV_RESTART_HIST */
	uint64_t restart_window_ns;
	_Atomic uint64_t last_create_ns; /* CLOCK_MONOTONIC of the last create's start (reaper) */
	struct hv_tombstone tomb[HV_TOMBSTONES]; /* ring, newest at tomb_next - 1 */
	unsigned tomb_next;
};

/* hv_core.c: the daemon state. */
int hv_init(struct hv *hv, const char *rundir, const char *logpath, const struct hv_runner_ops *rops);
void hv_fini(struct hv *hv); /* destroys every domain, waits for the reaper */
struct hv_domain *hv_find_id(struct hv *hv, uint32_t domid);
struct hv_domain *hv_find_name(struct hv *hv, const char *name);
struct hv_domain *hv_find_ref(struct hv *hv, uint32_t domid, const char *name); /* name may lack NUL */
void hv_evq_post(struct hv *hv, uint32_t domid);
void hv_evq_run(struct hv *hv); /* main loop: run queued actions */
void hv_table_insert(struct hv *hv, struct hv_domain *hd);
void hv_table_remove(struct hv *hv, struct hv_domain *hd);
int hv_domid_alloc(struct hv *hv, uint32_t *domid);
void hv_reaper_push(struct hv *hv, struct hv_domain *hd);
void hv_reaper_drain(struct hv *hv);
/* Tombstones: record a domain that goes away; find the newest by id or name (NULL if none). */
void hv_tomb_add(struct hv *hv, struct hv_domain *hd, uint8_t action);
const struct hv_tombstone *hv_tomb_find(struct hv *hv, uint32_t domid, const char *name);
void hv_emit(struct hv *hv, unsigned kind, struct hv_domain *hd);

/* hv_domain.c: validation of a create request; writes the normalised copy to out. */
int hv_domcfg_validate(const struct lamina_ctl_domcfg *in, struct lamina_ctl_domcfg *out, const char **why);
bool hv_name_valid(const char *name, size_t max);

/* hv_domain.c: lifecycle. */
/* Builds and starts a domain from a validated cfg under a given id, and lists it. */
int hv_domain_spawn(struct hv *hv, const struct lamina_ctl_domcfg *cfg, uint32_t domid, uint32_t restarts,
		    struct hv_domain **out);
int hv_domain_create(struct hv *hv, const struct lamina_ctl_domcfg *cfg, struct hv_domain **out);
int hv_domain_pause(struct hv_domain *hd, bool pause);
/* The domain stops (reason SHUTDOWN_*); its action is queued. Any thread. */
void hv_domain_stop(struct hv_domain *hd, unsigned reason, const char *why);
void hv_domain_destroy(struct hv_domain *hd); /* gone from the tables at once; teardown in the reaper */
void hv_domain_info(struct hv_domain *hd, struct lamina_ctl_dominfo *out);
void hv_domain_free(struct hv_domain *hd); /* reaper: join, close, free */

/* hv_actions.c: the on_* actions, run on the main loop. */
void hv_domain_run_action(struct hv_domain *hd);

/* hv_coredump.c: the domain's ELF core (core_elf.h) into fd, a regular file open for writing; a
 * running domain is paused meanwhile. rep (may be NULL) gets the figures. Main loop only. */
int hv_domain_dump_core(struct hv_domain *hd, int fd, struct lamina_ctl_dump_core_reply *rep);
/* The same into RUNDIR/dump/NAME.DOMID.core (the coredump-* actions). */
int hv_domain_coredump(struct hv_domain *hd);
/* "N/SECONDS" (N 0..HV_RESTART_HIST, 0: no limit; SECONDS 1..86400) or NULL/empty for the
 * defaults; anything malformed gives the defaults too. Returns 0 or -EINVAL (defaults set). */
int hv_restart_limit_parse(const char *s, unsigned *max, uint64_t *window_ns);

/* hv_actions.c: the domain_ops the hypercall layer calls. */
extern const struct domain_ops hv_domain_ops;

#endif
