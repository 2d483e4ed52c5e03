/* lamina-consoled, the PV console back-end: owns each domain's console ring mapping and port,
 * its $RUNDIR/console/NAME.log (size-capped, rotated) and the attach clients of consoled.sock. */
#ifndef LAMINA_CONSOLED_H
#define LAMINA_CONSOLED_H

#include <stddef.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/io/console.h>

#include "backend.h"

#define CONSOLED_SOCKET "consoled.sock"
#define CONSOLED_LOG_MAX_DEFAULT (1u << 20)
#define CONSOLED_IN_BUF 4096u		/* client input waiting for room in the in ring */
#define CONSOLED_CLIENT_OUT (64u << 10) /* output queued for a slow client; beyond it, dropped */
#define CONSOLED_REQ_MAX 128u		/* the attach request line */
#define CONSOLED_SWEEP_MS 1000		/* lost-event sweep and reconnect interval */
#define CONSOLED_DRAIN_BUDGET (256u << 10)

_Static_assert(sizeof(struct xencons_interface) == 3088, "xencons_interface layout");
_Static_assert(offsetof(struct xencons_interface, out) == 1024, "xencons out ring offset");
_Static_assert(offsetof(struct xencons_interface, in_cons) == 3072, "xencons index offset");
_Static_assert(offsetof(struct xencons_interface, out_prod) == 3084, "xencons out_prod offset");

/* What an epoll event refers to: the first member of each watched object. */
enum consoled_watch_kind {
	CONSOLED_W_CTL = 1,
	CONSOLED_W_SIGNAL,
	CONSOLED_W_LISTEN,
	CONSOLED_W_RING,
	CONSOLED_W_CLIENT,
};
struct consoled_watch {
	enum consoled_watch_kind kind;
};

struct consoled_dom;

struct consoled_client {
	struct consoled_watch w; /* CONSOLED_W_CLIENT */
	int fd;
	int attached, writer, paused_input;
	uint32_t events; /* what epoll watches for it now */
	char req[CONSOLED_REQ_MAX];
	size_t req_len;
	char *out; /* CONSOLED_CLIENT_OUT bytes */
	size_t out_len;
	uint64_t dropped;
	struct consoled_dom *dom;
	struct consoled_client *next;
};

struct consoled_dom {
	struct consoled_watch w; /* CONSOLED_W_RING */
	uint32_t domid;
	char name[LAMINA_NAME_MAX];
	struct be_port port;
	int ring_ok;	   /* mapped, bound and not broken */
	int broken;	   /* disconnected for a bad ring: stays so until the domain restarts */
	uint32_t out_cons; /* our copies: the guest cannot move what we own */
	uint32_t in_prod;
	int log_fd;
	char in_buf[CONSOLED_IN_BUF];
	size_t in_len;
	uint64_t bytes_out, bytes_in;
	struct be_ratelimit rl;
	int dead;
	struct consoled_dom *next;
};

struct consoled {
	const char *rundir;
	uint64_t log_max;
	int epfd;
	struct consoled_watch ctl_w, sig_w, listen_w;
	int sigfd, listen_fd;
	struct be_ctl ctl;
	struct consoled_dom *doms;
	struct consoled_dom *dead; /* closed this loop turn, freed after it */
	int ctl_warned;
	struct consoled_client *clients;
	uint64_t last_sweep_ns;
	int stop;
};

/* consoled_dom.c: domains and their rings. */
struct consoled_dom *consoled_dom_find(struct consoled *cd, uint32_t domid);
struct consoled_dom *consoled_dom_lookup(struct consoled *cd, const char *name_or_id);
int consoled_on_created(void *arg, const struct lamina_ctl_event *ev);
int consoled_on_stopped(void *arg, const struct lamina_ctl_event *ev);
int consoled_on_destroyed(void *arg, const struct lamina_ctl_event *ev);
int consoled_on_restarted(void *arg, const struct lamina_ctl_event *ev);
/* The ring's event fd is readable, or the sweep came: move output and input. */
void consoled_dom_service(struct consoled *cd, struct consoled_dom *dom);
/* The control connection is gone: every port is closed with it; rings are unmapped. */
void consoled_dom_drop_all(struct consoled *cd);
/* Free the domains closed during this loop turn (only between epoll batches). */
void consoled_dom_reap(struct consoled *cd);
/* Queue client input for the guest and push what fits. */
size_t consoled_dom_input(struct consoled *cd, struct consoled_dom *dom, const char *buf, size_t len);

/* consoled_log.c: the log file of one domain. */
int consoled_log_open(struct consoled *cd, const char *name);
/* Append len bytes (one write); rotates NAME.log to NAME.log.1 when the cap would be passed. */
int consoled_log_append(struct consoled *cd, struct consoled_dom *dom, const char *buf, size_t len);

/* consoled_client.c: the attach socket. */
int consoled_listen(struct consoled *cd);
void consoled_accept(struct consoled *cd);
void consoled_client_event(struct consoled *cd, struct consoled_client *cl, uint32_t events);
/* Output of dom for every client attached to it. */
void consoled_clients_output(struct consoled *cd, struct consoled_dom *dom, const char *buf, size_t len);
/* Close every client of dom (the domain is gone or its console broke), after a last line. */
void consoled_clients_detach(struct consoled *cd, struct consoled_dom *dom, const char *why);
/* The in ring has room again: let the writer's input flow. */
void consoled_clients_resume(struct consoled *cd, struct consoled_dom *dom);
void consoled_clients_free(struct consoled *cd);
/* Free the clients closed during this loop turn (only between epoll batches). */
void consoled_clients_reap(struct consoled *cd);

#endif
