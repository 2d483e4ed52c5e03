/* Domain-0 event channels and special pages over the control protocol: the requests, the
 * eventfd pair or memfd each reply carries (exactly as many as control.h says, or refused),
 * the mapping of a special page checked against its memfd, and signalling through eventfds. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_client.h"

_Static_assert(sizeof(struct lamina_ctl_evtchn_alloc) == 8, "evtchn alloc layout");
_Static_assert(sizeof(struct lamina_ctl_evtchn_bind) == 8, "evtchn bind layout");
_Static_assert(sizeof(struct lamina_ctl_evtchn_virq) == 4, "evtchn virq layout");
_Static_assert(sizeof(struct lamina_ctl_evtchn_port) == 4, "evtchn port layout");
_Static_assert(sizeof(struct lamina_ctl_map_special) == 8, "map special layout");
_Static_assert(sizeof(struct lamina_ctl_mapping) == 32, "mapping layout");

static void ctl_reply_close_fds(struct ctl_reply *rep)
{
	for (unsigned i = 0; i < rep->nfds; i++)
		if (rep->fds[i] >= 0)
			close(rep->fds[i]);
	rep->nfds = 0;
}

int ctl_evtchn_alloc_unbound(struct ctl_conn *conn, uint32_t dom, uint32_t remote_dom, uint32_t *port)
{
	struct lamina_ctl_evtchn_alloc req = {.dom = dom, .remote_dom = remote_dom};
	struct lamina_ctl_evtchn_port out;
	struct ctl_reply rep = {.buf = &out, .cap = sizeof(out)};
	struct ctl_len_rule rule = {.min = sizeof(out)};
	int err = ctl_call(conn, LAMINA_CTL_EVTCHN_ALLOC_UNBOUND, &req, sizeof(req), &rep, &rule);

	if (err)
		return err;
	if (rep.nfds) {
		ctl_reply_close_fds(&rep);
		snprintf(conn->err, sizeof(conn->err), "EVTCHN_ALLOC_UNBOUND: reply carries descriptors");
		return -EPROTO;
	}
	*port = out.port;
	return 0;
}

/* A bind reply: one port and exactly two descriptors, notify then event. */
static int ctl_evtchn_bind_reply(struct ctl_conn *conn, uint16_t op, const void *req, size_t len,
				 struct ctl_evtchn *out)
{
	struct lamina_ctl_evtchn_port port;
	struct ctl_reply rep = {.buf = &port, .cap = sizeof(port)};
	struct ctl_len_rule rule = {.min = sizeof(port)};
	int err = ctl_call(conn, op, req, len, &rep, &rule);

	if (err)
		return err;
	if (rep.nfds != 2 || rep.fds[0] < 0 || rep.fds[1] < 0) {
		snprintf(conn->err, sizeof(conn->err), "%s: reply carries %u descriptors, not 2",
			 ctl_op_name(op), rep.nfds);
		ctl_reply_close_fds(&rep);
		return -EPROTO;
	}
	out->port = port.port;
	out->notify_fd = rep.fds[0];
	out->event_fd = rep.fds[1];
	return 0;
}

int ctl_evtchn_bind_interdomain(struct ctl_conn *conn, uint32_t remote_dom, uint32_t remote_port,
				struct ctl_evtchn *out)
{
	struct lamina_ctl_evtchn_bind req = {.remote_dom = remote_dom, .remote_port = remote_port};

	return ctl_evtchn_bind_reply(conn, LAMINA_CTL_EVTCHN_BIND_INTERDOMAIN, &req, sizeof(req), out);
}

int ctl_evtchn_bind_virq(struct ctl_conn *conn, uint32_t virq, struct ctl_evtchn *out)
{
	struct lamina_ctl_evtchn_virq req = {.virq = virq};

	return ctl_evtchn_bind_reply(conn, LAMINA_CTL_EVTCHN_BIND_VIRQ, &req, sizeof(req), out);
}

void ctl_evtchn_release(struct ctl_evtchn *ch)
{
	if (ch->notify_fd >= 0)
		close(ch->notify_fd);
	if (ch->event_fd >= 0)
		close(ch->event_fd);
	ch->notify_fd = ch->event_fd = -1;
}

int ctl_evtchn_close(struct ctl_conn *conn, struct ctl_evtchn *ch)
{
	struct lamina_ctl_evtchn_port req = {.port = ch->port};
	int err = 0;

	if (conn && conn->fd >= 0)
		err = ctl_call(conn, LAMINA_CTL_EVTCHN_CLOSE, &req, sizeof(req), NULL, NULL);
	ctl_evtchn_release(ch);
	return err;
}

int ctl_evtchn_notify(const struct ctl_evtchn *ch)
{
	uint64_t one = 1;
	ssize_t n;

	do
		n = write(ch->notify_fd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
	/* A full counter (EAGAIN) already holds a pending signal. */
	if (n < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

int ctl_evtchn_ack(const struct ctl_evtchn *ch, uint64_t *count)
{
	struct pollfd pfd = {.fd = ch->event_fd, .events = POLLIN};
	uint64_t v = 0;
	ssize_t n;

	/* The descriptor's flags belong to the server too: poll first instead of O_NONBLOCK. */
	if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & POLLIN))
		return -EAGAIN;
	do
		n = read(ch->event_fd, &v, sizeof(v));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (n != sizeof(v))
		return -EIO;
	if (count)
		*count = v;
	return 0;
}

int ctl_evtchn_wait(const struct ctl_evtchn *ch, int timeout_ms, uint64_t *count)
{
	struct pollfd pfd = {.fd = ch->event_fd, .events = POLLIN};
	int r;

	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	return ctl_evtchn_ack(ch, count) == -EAGAIN ? -ETIMEDOUT : 0;
}

static int ctl_mapping_ok(struct ctl_conn *conn, const struct lamina_ctl_mapping *m, int fd)
{
	long page = sysconf(_SC_PAGESIZE);
	struct stat st;

	if (m->size == 0 || m->size > CTL_SPECIAL_MAX_SIZE || m->size % (uint64_t)page ||
	    m->offset % (uint64_t)page || m->offset > UINT64_MAX - m->size) {
		snprintf(conn->err, sizeof(conn->err), "MAP_SPECIAL: bad mapping (offset %llu, size %llu)",
			 (unsigned long long)m->offset, (unsigned long long)m->size);
		return -EPROTO;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < m->offset + m->size) {
		snprintf(conn->err, sizeof(conn->err), "MAP_SPECIAL: the descriptor does not hold the pages");
		return -EPROTO;
	}
	return 0;
}

int ctl_map_special(struct ctl_conn *conn, uint32_t domid, uint32_t which, struct ctl_special *out)
{
	struct lamina_ctl_map_special req = {.domid = domid, .which = which};
	struct lamina_ctl_mapping m;
	struct ctl_reply rep = {.buf = &m, .cap = sizeof(m)};
	struct ctl_len_rule rule = {.min = sizeof(m)};
	void *addr;
	int err = ctl_call(conn, LAMINA_CTL_MAP_SPECIAL, &req, sizeof(req), &rep, &rule);

	if (err)
		return err;
	if (rep.nfds != 1 || rep.fds[0] < 0) {
		snprintf(conn->err, sizeof(conn->err), "MAP_SPECIAL: reply carries %u descriptors, not 1",
			 rep.nfds);
		err = -EPROTO;
		goto out_close;
	}
	err = ctl_mapping_ok(conn, &m, rep.fds[0]);
	if (err)
		goto out_close;
	addr = mmap(NULL, (size_t)m.size, PROT_READ | PROT_WRITE, MAP_SHARED, rep.fds[0], (off_t)m.offset);
	if (addr == MAP_FAILED) {
		err = -errno;
		snprintf(conn->err, sizeof(conn->err), "MAP_SPECIAL: mmap: %s", strerror(-err));
		goto out_close;
	}
	out->map = m;
	out->fd = rep.fds[0];
	out->addr = addr;
	return 0;

out_close:
	ctl_reply_close_fds(&rep);
	return err;
}

void ctl_unmap_special(struct ctl_special *sp)
{
	if (sp->addr)
		munmap(sp->addr, (size_t)sp->map.size);
	if (sp->fd >= 0)
		close(sp->fd);
	sp->addr = NULL;
	sp->fd = -1;
}
