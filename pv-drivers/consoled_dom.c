/* Each domain's console: the ring mapped and its port bound when the domain appears (again after
 * a restart), output moved from the out ring to the log and the attached clients, client input
 * pushed into the in ring; a ring with impossible indexes is disconnected, with one logged reason. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "consoled.h"

#define CONSOLED_OUT_SIZE ((uint32_t)sizeof(((struct xencons_interface *)0)->out))
#define CONSOLED_IN_SIZE ((uint32_t)sizeof(((struct xencons_interface *)0)->in))
_Static_assert((CONSOLED_OUT_SIZE & (CONSOLED_OUT_SIZE - 1)) == 0, "out ring is a power of two");
_Static_assert((CONSOLED_IN_SIZE & (CONSOLED_IN_SIZE - 1)) == 0, "in ring is a power of two");

struct consoled_dom *consoled_dom_find(struct consoled *cd, uint32_t domid)
{
	for (struct consoled_dom *d = cd->doms; d; d = d->next)
		if (d->domid == domid)
			return d;
	return NULL;
}

struct consoled_dom *consoled_dom_lookup(struct consoled *cd, const char *s)
{
	char *end;
	unsigned long id;

	for (struct consoled_dom *d = cd->doms; d; d = d->next)
		if (!strcmp(d->name, s))
			return d;
	if (!*s || strspn(s, "0123456789") != strlen(s))
		return NULL;
	id = strtoul(s, &end, 10);
	return id < LAMINA_DOMID_BY_NAME ? consoled_dom_find(cd, (uint32_t)id) : NULL;
}

static struct xencons_interface *consoled_ring(struct consoled_dom *dom)
{
	return dom->port.page.addr;
}

/* Release the ring (and its port); the log and the clients stay. */
static void consoled_ring_close(struct consoled *cd, struct consoled_dom *dom)
{
	if (dom->port.ch.event_fd >= 0)
		epoll_ctl(cd->epfd, EPOLL_CTL_DEL, dom->port.ch.event_fd, NULL);
	be_port_close(cd->ctl.connected ? &cd->ctl.conn : NULL, &dom->port);
	dom->ring_ok = 0;
}

/* Map the console page, bind its port and start from the indexes the guest left. */
static int consoled_ring_open(struct consoled *cd, struct consoled_dom *dom)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &dom->w};
	struct xencons_interface *ring;
	char why[160];
	int err;

	if (!cd->ctl.connected)
		return -ENOTCONN;
	err = be_port_open(&cd->ctl.conn, dom->domid, LAMINA_SPECIAL_CONSOLE, &dom->port);
	if (err) {
		be_log("%s (domain %u): no console ring: %s", dom->name, dom->domid, cd->ctl.conn.err);
		return err;
	}
	if (dom->port.page.map.size < sizeof(struct xencons_interface)) {
		be_log("%s (domain %u): console page of %llu bytes is too small", dom->name, dom->domid,
		       (unsigned long long)dom->port.page.map.size);
		consoled_ring_close(cd, dom);
		return -EPROTO;
	}
	ring = consoled_ring(dom);
	/* Where the guest is now: each index read once, the pair checked before use. */
	dom->out_cons = be_ring_load(&ring->out_cons);
	dom->in_prod = be_ring_load(&ring->in_prod);
	if (be_ring_check(be_ring_load(&ring->out_prod), dom->out_cons, CONSOLED_OUT_SIZE, why,
			  sizeof(why))) {
		be_log("%s (domain %u): console disconnected: out ring: %s", dom->name, dom->domid, why);
		dom->broken = 1;
		consoled_ring_close(cd, dom);
		return -EPROTO;
	}
	if (epoll_ctl(cd->epfd, EPOLL_CTL_ADD, dom->port.ch.event_fd, &ev) < 0) {
		err = -errno;
		consoled_ring_close(cd, dom);
		return err;
	}
	dom->ring_ok = 1;
	dom->broken = 0;
	return 0;
}

static void consoled_ring_break(struct consoled *cd, struct consoled_dom *dom, const char *half,
				const char *why)
{
	char line[256];

	be_log("%s (domain %u): console disconnected: %s ring: %s", dom->name, dom->domid, half, why);
	snprintf(line, sizeof(line), "console disconnected: the guest corrupted its %s ring", half);
	dom->broken = 1;
	consoled_ring_close(cd, dom);
	dom->in_len = 0;
	consoled_clients_detach(cd, dom, line);
}

/* Move output out of the ring: read prod once, check it, copy, then give the space back. */
static int consoled_drain(struct consoled *cd, struct consoled_dom *dom, int *moved)
{
	struct xencons_interface *ring = consoled_ring(dom);
	char buf[CONSOLED_OUT_SIZE], why[160];
	size_t budget = CONSOLED_DRAIN_BUDGET;

	while (budget) {
		uint32_t prod = be_ring_load(&ring->out_prod), len;

		if (be_ring_check(prod, dom->out_cons, CONSOLED_OUT_SIZE, why, sizeof(why))) {
			consoled_ring_break(cd, dom, "out", why);
			return -EPROTO;
		}
		len = prod - dom->out_cons;
		if (len == 0)
			break;
		be_ring_copy_out(ring->out, CONSOLED_OUT_SIZE, dom->out_cons, buf, len);
		dom->out_cons += len;
		be_ring_store(&ring->out_cons, dom->out_cons);
		*moved = 1;
		dom->bytes_out += len;
		consoled_log_append(cd, dom, buf, len);
		consoled_clients_output(cd, dom, buf, len);
		budget = budget > len ? budget - len : 0;
	}
	return 0;
}

/* Push queued input: the guest's in_cons is read once and checked against our in_prod. */
static int consoled_fill(struct consoled *cd, struct consoled_dom *dom, int *moved)
{
	struct xencons_interface *ring = consoled_ring(dom);
	uint32_t cons, room, n;
	char why[160];

	if (!dom->in_len)
		return 0;
	cons = be_ring_load(&ring->in_cons);
	if (be_ring_check(dom->in_prod, cons, CONSOLED_IN_SIZE, why, sizeof(why))) {
		consoled_ring_break(cd, dom, "in", why);
		return -EPROTO;
	}
	room = CONSOLED_IN_SIZE - (dom->in_prod - cons);
	n = room < dom->in_len ? room : (uint32_t)dom->in_len;
	if (!n)
		return 0;
	be_ring_copy_in(ring->in, CONSOLED_IN_SIZE, dom->in_prod, dom->in_buf, n);
	dom->in_prod += n;
	be_ring_store(&ring->in_prod, dom->in_prod);
	memmove(dom->in_buf, dom->in_buf + n, dom->in_len - n);
	dom->in_len -= n;
	dom->bytes_in += n;
	*moved = 1;
	return 0;
}

void consoled_dom_service(struct consoled *cd, struct consoled_dom *dom)
{
	int moved = 0;
	size_t had = dom->in_len;

	if (!dom->ring_ok)
		return;
	ctl_evtchn_ack(&dom->port.ch, NULL);
	if (consoled_drain(cd, dom, &moved) || consoled_fill(cd, dom, &moved))
		return;
	if (moved)
		ctl_evtchn_notify(&dom->port.ch);
	if (had == CONSOLED_IN_BUF && dom->in_len < CONSOLED_IN_BUF)
		consoled_clients_resume(cd, dom);
}

size_t consoled_dom_input(struct consoled *cd, struct consoled_dom *dom, const char *buf, size_t len)
{
	size_t n = CONSOLED_IN_BUF - dom->in_len;
	int moved = 0;

	if (!dom->ring_ok)
		return len; /* nowhere to go: dropped, as a disconnected serial line would */
	if (n > len)
		n = len;
	memcpy(dom->in_buf + dom->in_len, buf, n);
	dom->in_len += n;
	if (consoled_fill(cd, dom, &moved) == 0 && moved)
		ctl_evtchn_notify(&dom->port.ch);
	return n;
}

static struct consoled_dom *consoled_dom_new(struct consoled *cd, const struct lamina_ctl_event *ev)
{
	struct consoled_dom *dom = calloc(1, sizeof(*dom));

	if (!dom)
		return NULL;
	dom->w.kind = CONSOLED_W_RING;
	dom->domid = ev->domid;
	memcpy(dom->name, ev->name, sizeof(dom->name));
	dom->name[sizeof(dom->name) - 1] = '\0';
	dom->port = (struct be_port)BE_PORT_INIT;
	be_ratelimit_init(&dom->rl, 5, 10000);
	dom->log_fd = consoled_log_open(cd, dom->name);
	if (dom->log_fd < 0)
		be_log("%s (domain %u): cannot open its log: %s", dom->name, dom->domid,
		       strerror(-dom->log_fd));
	dom->next = cd->doms;
	cd->doms = dom;
	return dom;
}

static void consoled_dom_free(struct consoled *cd, struct consoled_dom *dom, const char *why)
{
	struct consoled_dom **pp;

	consoled_clients_detach(cd, dom, why);
	consoled_ring_close(cd, dom);
	if (dom->log_fd >= 0)
		close(dom->log_fd);
	dom->log_fd = -1;
	for (pp = &cd->doms; *pp; pp = &(*pp)->next)
		if (*pp == dom) {
			*pp = dom->next;
			break;
		}
	dom->dead = 1;
	dom->next = cd->dead;
	cd->dead = dom;
}

void consoled_dom_reap(struct consoled *cd)
{
	while (cd->dead) {
		struct consoled_dom *dom = cd->dead;

		cd->dead = dom->next;
		free(dom);
	}
}

int consoled_on_created(void *arg, const struct lamina_ctl_event *ev)
{
	struct consoled *cd = arg;
	struct consoled_dom *dom = consoled_dom_find(cd, ev->domid);

	if (dom && strcmp(dom->name, ev->name))
		consoled_dom_free(cd, dom, "domain replaced");
	else if (dom)
		return 0; /* already known (a resubscription) */
	dom = consoled_dom_new(cd, ev);
	if (!dom)
		return -ENOMEM;
	if (consoled_ring_open(cd, dom) == 0) {
		be_log("%s (domain %u): console connected (guest port %u, ours %u)", dom->name, dom->domid,
		       dom->port.page.map.port, dom->port.ch.port);
		consoled_dom_service(cd, dom); /* what the guest wrote before we came */
	}
	return 0;
}

int consoled_on_stopped(void *arg, const struct lamina_ctl_event *ev)
{
	struct consoled *cd = arg;
	struct consoled_dom *dom = consoled_dom_find(cd, ev->domid);

	if (dom)
		consoled_dom_service(cd, dom); /* its last words */
	return 0;
}

int consoled_on_destroyed(void *arg, const struct lamina_ctl_event *ev)
{
	struct consoled *cd = arg;
	struct consoled_dom *dom = consoled_dom_find(cd, ev->domid);

	if (!dom)
		return 0;
	consoled_dom_service(cd, dom);
	be_log("%s (domain %u): destroyed; %llu bytes out, %llu in", dom->name, dom->domid,
	       (unsigned long long)dom->bytes_out, (unsigned long long)dom->bytes_in);
	consoled_dom_free(cd, dom, "domain destroyed");
	return 0;
}

int consoled_on_restarted(void *arg, const struct lamina_ctl_event *ev)
{
	struct consoled *cd = arg;
	struct consoled_dom *dom = consoled_dom_find(cd, ev->domid);

	if (!dom)
		return consoled_on_created(arg, ev);
	/* The old page and port belong to the domain that was: map the new ones. */
	consoled_ring_close(cd, dom);
	dom->in_len = 0;
	if (consoled_ring_open(cd, dom) == 0) {
		be_log("%s (domain %u): restarted; console reconnected", dom->name, dom->domid);
		consoled_dom_service(cd, dom);
	}
	return 0;
}

void consoled_dom_drop_all(struct consoled *cd)
{
	while (cd->doms)
		consoled_dom_free(cd, cd->doms, "host stopped");
}
