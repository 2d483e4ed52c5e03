/* Domain-0's grant-copy rings (LAMINA_CTL_GNT_RING): a sealed shared memfd of copy requests,
 * responses and a data buffer per connection, and the worker thread that serves it. */
#ifndef LAMINA_HV_GNT_RING_H
#define LAMINA_HV_GNT_RING_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lamina/control.h"

struct grant_table;
struct hv_log;

/* Idle time the worker polls the ring before it sleeps on the kick eventfd (a stream of batches
 * then needs no wake-ups). */
#define GNT_RING_SPIN_NS 50000ull
/* Responses are published at least this often within one long run of requests. */
#define GNT_RING_PUSH_EVERY 64u

/* Finds a domain's grant table for a copy, referenced (gnttab_put it), or NULL. Any thread. */
typedef struct grant_table *(*gnt_ring_lookup_fn)(void *arg, uint32_t domid);

struct gnt_ring_cfg {
	uint32_t slots;
	uint64_t buf_size;
	uint64_t spin_ns; /* 0: GNT_RING_SPIN_NS */
	gnt_ring_lookup_fn lookup;
	void *lookup_arg;
	struct hv_log *log; /* NULL: stderr */
};

struct gnt_ring {
	struct gnt_ring_cfg cfg;
	struct lamina_ctl_gnt_ring_info info;
	void *map; /* the whole memfd */
	struct lamina_gnt_sring *sr;
	struct lamina_gnt_ring_req *req;
	struct lamina_gnt_ring_rsp *rsp;
	uint8_t *buf;
	int memfd, kick_fd, done_fd;
	int stop_fd;	     /* private: the client holds kick_fd and could drain a stop signal sent there */
	uint32_t req_cons;   /* private: requests taken */
	uint32_t rsp_pvt;    /* private: responses written */
	uint32_t rsp_pushed; /* rsp_prod as last published */
	pthread_t thread;
	bool started;
	atomic_bool stop;
	atomic_bool broken;
	/* Counters (worker writes, anyone reads). */
	_Atomic uint64_t segs, sleeps, notifies;
};

/* One GNT_COPY segment within a copy run of its domain's table (gnttab_copy_run_begin; a run of
 * NULL: the domain is gone), with buf/buf_size the copy buffer: the argument checks and the copy
 * both GNT_COPY and the ring use. Returns GNTST_*. */
struct gnt_copy_run;
int gnt_seg_copy(struct gnt_copy_run *run, const struct lamina_ctl_gnt_copy_seg *sg, uint8_t *buf,
		 uint64_t buf_size);

/* Validates cfg, creates the sealed memfd and the two eventfds, maps the ring. */
int gnt_ring_create(const struct gnt_ring_cfg *cfg, struct gnt_ring **out);
/* Starts the worker thread. */
int gnt_ring_start(struct gnt_ring *r);
/* One pass over the requests published now: copies, responses, notification. Returns how many
 * were served, or -errno when the ring is broken (then it is never served again). */
int gnt_ring_poll(struct gnt_ring *r);
/* Stops and joins the worker, unmaps, closes the descriptors, frees r (NULL is fine). */
void gnt_ring_destroy(struct gnt_ring *r);

/* The control op (a row of ctl_ops.c's table), and ctl_grant.c's slot for a connection's ring
 * (NULL on allocation failure); ctl_grant_conn_closed destroys it. */
struct ctl_server;
struct ctl_conn;
struct lamina_ctl_hdr;
int ctl_op_gnt_ring(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h, const void *req,
		    void *out, size_t *out_len);
struct gnt_ring **ctl_grant_ring_slot(struct ctl_server *s, struct ctl_conn *c);

#endif
