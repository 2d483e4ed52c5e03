/* The back-end framework: one daemon skeleton (options, run directory, pid file, signals, control
 * and store connections, the epoll loop) and the xenbus state machine of every device it serves. */
#ifndef LAMINA_BE_DEV_H
#define LAMINA_BE_DEV_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "xs_client.h"

#define BE_PATH_MAX 128
#define BE_SWEEP_MS 250
#define BE_BACKEND_DIR "/local/domain/0/backend"

struct be_daemon;
struct be_dev;

/* What an epoll event points at: one of the daemon's own descriptors, or one of a device's, with a
 * tag the device type chose (never BE_KICK_ALL). */
enum be_watch_kind { BE_W_SIGNAL, BE_W_CTL, BE_W_STORE, BE_W_DEV };
struct be_watch {
	enum be_watch_kind kind;
	unsigned tag;
	struct be_dev *dev;
};
#define BE_KICK_ALL 0u /* the sweep, a fresh connection, a busy device's next turn: serve everything */

/* One device of one domain; a type embeds it first in its own device structure. */
struct be_dev {
	struct be_dev *next;
	struct be_daemon *owner;
	uint32_t domid, devid;
	char be[BE_PATH_MAX], fe[BE_PATH_MAX];
	char name[32]; /* for logs: set by probe ("vif1.0"), "domD TYPE N" by default */
	int be_state;
	int connected; /* set by the framework around ops->connect / ops->disconnect */
	int busy;      /* kick again on the loop's next turn, without waiting (budget used up, polling) */
	uint64_t poll_until_ns; /* the ring is polled, req_event left behind, until then */
	int dead;      /* removed: freed after the current loop iteration */
};

/* A --no-NAME command-line switch that sets bit in be_daemon.off. */
struct be_flag {
	const char *name;
	unsigned bit;
};

/* A feature node written, as is, into every back-end directory before InitWait. */
struct be_feature {
	const char *node, *value;
};

/* What a device type plugs into the framework. Every handler gets the daemon and the device. */
struct be_type_ops {
	const char *type;  /* store directory: backend/<type>/<domid>/<devid> */
	const char *prog;  /* "blkback": lamina-<prog>, RUNDIR/<prog>/ statistics, log prefix */
	const char *usage; /* help text after the usage line */
	const struct be_flag *flags;
	size_t nflags;
	const struct be_feature *features;
	size_t nfeatures;
	uint32_t max_devid;	    /* device ids above are ignored */
	int connect_on_initialised; /* connect at Initialised (not only at Connected) */
	int restart_reoffer;	    /* a domain rebuilt in place: offer again (otherwise drop) */
	int rm_on_destroy;	    /* a destroyed domain's backend/<type>/<domid> is removed */
	struct be_dev *(*alloc)(void);
	void (*free)(struct be_dev *v);
	/* Read the back-end directory and take the device's resources. -EAGAIN: the toolstack is
	 * still writing (silently retried on its next write); other -errno: refused, why says why.
	 * On failure nothing is held. */
	int (*probe)(struct be_daemon *d, struct be_dev *v, char *why, size_t whylen);
	void (*advertise)(struct be_daemon *d, struct be_dev *v); /* optional: computed features */
	int (*connect)(struct be_daemon *d, struct be_dev *v);	  /* on failure nothing is held */
	void (*disconnect)(struct be_daemon *d, struct be_dev *v);
	void (*release)(struct be_daemon *d, struct be_dev *v); /* undo probe */
	void (*kick)(struct be_daemon *d, struct be_dev *v, unsigned tag);
	void (*sweep)(struct be_daemon *d, struct be_dev *v);  /* optional: before the sweep's kick */
	int (*ctl_up)(struct be_daemon *d);		       /* optional: a new control connection */
	void (*shutdown)(struct be_daemon *d);		       /* optional: at exit */
};

struct be_daemon {
	const struct be_type_ops *ops;
	void *priv; /* the type's daemon-wide state */
	const char *rundir;
	char root[64]; /* BE_BACKEND_DIR/<type> */
	unsigned off;  /* be_flag bits given on the command line */
	int no_poll;   /* --no-poll: re-arm req_event at once, never poll a ring */
	struct be_ctl ctl;
	struct xs_client *xs;
	int epfd, sigfd;
	int stop;
	struct be_dev *devs;
	struct be_watch w_signal, w_ctl, w_store;
	uint64_t last_sweep_ns;
};

/* ---- be_daemon.c ---- */

/* The whole daemon: parse argv, write the pid file, run the loop until SIGTERM/SIGINT. Exit status. */
int be_daemon_main(const struct be_type_ops *ops, void *priv, int argc, char **argv);
/* Add (EPOLL_CTL_ADD) or re-arm (EPOLL_CTL_MOD) fd for w. 0 or -errno. */
int be_daemon_watch(struct be_daemon *d, int op, int fd, uint32_t events, struct be_watch *w);
void be_daemon_unwatch(struct be_daemon *d, int fd);
/* Polling a request ring: for BE_POLL_NS after a kick took requests, the type's kick leaves
 * req_event behind (so the front-end's pushes raise no notification, no guest exit) and marks the
 * device busy, so the loop serves it every turn; once the window passes, a kick re-arms req_event
 * and the daemon may sleep. be_dev_polling says whether v is in its window (never with --no-poll);
 * be_dev_took starts it again. */
#define BE_POLL_NS 50000ull
int be_dev_polling(const struct be_daemon *d, const struct be_dev *v, uint64_t now);
void be_dev_took(const struct be_daemon *d, struct be_dev *v, uint64_t now);
/* Replace RUNDIR/<prog>/DOMID-DEVID.<ext> with the n bytes of text, atomically. */
void be_stats_file(struct be_daemon *d, const struct be_dev *v, const char *ext, const char *text, size_t n);

/* ---- be_xenbus.c ---- */

/* Store helpers on DIR/NODE. Values longer than len-1 or holding NUL bytes are -E2BIG. */
int be_xs_read(struct be_daemon *d, const char *dir, const char *node, char *out, size_t len);
/* A decimal no greater than max; anything else (empty, signs, junk, overflow) is -EINVAL. */
int be_xs_read_uint(struct be_daemon *d, const char *dir, const char *node, uint64_t max, uint64_t *v);
int be_xs_printf(struct be_daemon *d, const char *dir, const char *node, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void be_dev_set_state(struct be_daemon *d, struct be_dev *v, int state);
void be_dev_disconnect(struct be_daemon *d, struct be_dev *v);
/* A broken ring: write why to the error node, disconnect, and go to Closing. */
void be_dev_fail(struct be_daemon *d, struct be_dev *v, const char *why);

/* A watch fired under the backend tree or a front-end's directory. */
void be_xenbus_event(struct be_daemon *d, const char *path);
void be_xenbus_drop_domain(struct be_daemon *d, uint32_t domid);
void be_xenbus_restart_domain(struct be_daemon *d, uint32_t domid);
void be_xenbus_drop_all(struct be_daemon *d);
void be_xenbus_reap(struct be_daemon *d);

#endif
