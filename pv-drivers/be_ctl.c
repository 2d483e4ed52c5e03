/* A back-end's control connection: connect, check the protocol version, subscribe to domain
 * notifications, and hand each notification to its row of the back-end's handler table. */
#include <errno.h>
#include <string.h>

#include "backend.h"

int be_ctl_open(struct be_ctl *c, const char *rundir)
{
	struct lamina_ctl_hello hello;
	int err;

	c->rundir = rundir;
	c->connected = 0;
	err = ctl_connect(&c->conn, rundir);
	if (err)
		return err;
	c->conn.timeout_ms = 10000;
	err = ctl_hello(&c->conn, &hello);
	if (!err && hello.version != LAMINA_CTL_VERSION)
		err = -EPROTONOSUPPORT;
	if (!err)
		err = ctl_subscribe(&c->conn);
	if (err) {
		char why[CTL_ERR_MAX];

		memcpy(why, c->conn.err, sizeof(why));
		ctl_close(&c->conn);
		memcpy(c->conn.err, why, sizeof(why));
		return err;
	}
	c->connected = 1;
	return 0;
}

void be_ctl_close(struct be_ctl *c)
{
	ctl_close(&c->conn);
	c->connected = 0;
}

static const struct be_event_handler *be_ctl_handler(const struct be_event_handler *tab, size_t n,
						     uint32_t kind)
{
	for (size_t i = 0; i < n; i++)
		if (tab[i].kind == kind)
			return &tab[i];
	return NULL;
}

int be_ctl_dispatch(struct be_ctl *c, const struct be_event_handler *tab, size_t n, void *arg)
{
	struct lamina_ctl_event ev;
	unsigned lost = c->conn.events_lost;
	int err;

	if (!c->connected)
		return -ENOTCONN;
	for (;;) {
		const struct be_event_handler *h;

		err = ctl_event_next(&c->conn, &ev, 0);
		if (err == -EAGAIN)
			break;
		if (err == -EPROTO) {
			be_log("control connection: %s (ignored)", c->conn.err);
			continue;
		}
		if (err) {
			be_log("control connection lost: %s",
			       err == -ECONNRESET ? c->conn.err : strerror(-err));
			be_ctl_close(c);
			return err;
		}
		h = be_ctl_handler(tab, n, ev.kind);
		if (!h)
			continue;
		err = h->fn(arg, &ev);
		if (err)
			be_log("%s of domain %u (%s): %s", h->name, ev.domid, ev.name, strerror(-err));
	}
	if (c->conn.events_lost != lost)
		be_log("%u notifications lost (queue full or malformed)", c->conn.events_lost - lost);
	return 0;
}
