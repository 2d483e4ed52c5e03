/* A stand-in for lamina-hv's control socket, for the store's tests: a thread serving SUBSCRIBE,
 * INFO, MAP_SPECIAL (memfd pages), EVTCHN_BIND_INTERDOMAIN (an eventfd pair) and EVTCHN_CLOSE
 * for a small table of domains, and sending notifications when a test asks. */
#ifndef LAMINA_XS_HV_FAKE_H
#define LAMINA_XS_HV_FAKE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <lamina/control.h>
#include "test_ctl_fake.h"

#define FHV_DOMS 8

struct fhv_dom {
	uint32_t domid;
	bool live;
	int memfd;   /* two pages: console, store */
	void *pages; /* the test's (the guest's) view */
	uint32_t store_port, cons_port;
	bool bound;
	uint32_t d0port;
	int notify_fd; /* the daemon writes it: the guest's "upcall" */
	int event_fd;  /* the guest writes it: the daemon's event */
};

struct fhv {
	char path[108];
	struct ctl_fake srv; /* the listening socket, the daemon's connection */
	int stop_pipe[2];
	pthread_t th;
	pthread_mutex_t mu;
	struct fhv_dom dom[FHV_DOMS];
	uint32_t next_port;
	unsigned subscribes, binds, closes, requests;
	bool refuse; /* stop accepting (the hypervisor is "down") */
	bool mute;   /* read requests, answer none (the hypervisor is hung) */
};

/* Domains exist before the daemon subscribes (and are announced then) or are added later. */
int fhv_start(struct fhv *h, const char *path);
void fhv_stop(struct fhv *h);
/* Close the current connection, as a hypervisor that exits would. */
void fhv_drop(struct fhv *h);
struct fhv_dom *fhv_dom_add(struct fhv *h, uint32_t domid);
/* New pages and port for a domain (as a restart rebuilds them). */
int fhv_dom_rebuild(struct fhv *h, struct fhv_dom *d);
void fhv_dom_remove(struct fhv *h, struct fhv_dom *d);
int fhv_emit(struct fhv *h, uint32_t kind, uint32_t domid);
/* Sets refuse or mute under the lock. */
void fhv_set(struct fhv *h, bool *flag, bool on);
/* Polls until cond(h, arg) holds (under the lock) or ms pass. */
bool fhv_wait(struct fhv *h, bool (*cond)(struct fhv *h, void *arg), void *arg, int ms);

#endif
