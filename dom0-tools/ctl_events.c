/* Notifications of a subscribed control connection: the bounded queue that keeps events which
 * arrive while a reply is awaited, SUBSCRIBE itself, reading the next event, and DOMSTATS. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl_client.h"

_Static_assert(sizeof(struct lamina_ctl_event) == 80, "event layout");
_Static_assert(sizeof(struct lamina_ctl_domstats) == 584, "domstats layout");

struct ctl_event_queue {
	unsigned head, count;
	struct lamina_ctl_event ev[CTL_EVENT_QUEUE_MAX];
};

void ctl_event_queue_free(struct ctl_conn *conn)
{
	free(conn->events);
	conn->events = NULL;
}

unsigned ctl_event_pending(const struct ctl_conn *conn)
{
	return conn->events ? conn->events->count : 0;
}

/* A notification is a non-reply LAMINA_CTL_EVENT with our magic and version. */
static int ctl_is_event(const void *msg, size_t len, struct lamina_ctl_hdr *hdr)
{
	if (len < sizeof(*hdr))
		return 0;
	memcpy(hdr, msg, sizeof(*hdr));
	return hdr->magic == LAMINA_CTL_MAGIC && hdr->version == LAMINA_CTL_VERSION &&
	       hdr->op == LAMINA_CTL_EVENT && !(hdr->flags & LAMINA_CTL_F_REPLY);
}

/* Copy and check one notification; -EPROTO if it is malformed. */
static int ctl_event_decode(const void *msg, size_t len, const struct lamina_ctl_hdr *hdr,
			    struct lamina_ctl_event *ev)
{
	if (hdr->len != len - sizeof(*hdr) || hdr->len != sizeof(*ev))
		return -EPROTO;
	memcpy(ev, (const char *)msg + sizeof(*hdr), sizeof(*ev));
	ev->name[sizeof(ev->name) - 1] = '\0';
	if (ev->kind < LAMINA_EV_CREATED || ev->kind > LAMINA_EV_RESTARTED)
		return -EPROTO;
	return 0;
}

int ctl_event_take(struct ctl_conn *conn, const void *msg, size_t len)
{
	struct lamina_ctl_hdr hdr;
	struct lamina_ctl_event ev;
	struct ctl_event_queue *q;

	if (!ctl_is_event(msg, len, &hdr))
		return 0;
	if (ctl_event_decode(msg, len, &hdr, &ev)) {
		conn->events_lost++;
		return 1;
	}
	if (!conn->events) {
		conn->events = calloc(1, sizeof(*conn->events));
		if (!conn->events) {
			conn->events_lost++;
			return 1;
		}
	}
	q = conn->events;
	if (q->count == CTL_EVENT_QUEUE_MAX) {
		conn->events_lost++;
		return 1;
	}
	q->ev[(q->head + q->count) % CTL_EVENT_QUEUE_MAX] = ev;
	q->count++;
	return 1;
}

static int ctl_event_pop(struct ctl_conn *conn, struct lamina_ctl_event *ev)
{
	struct ctl_event_queue *q = conn->events;

	if (!q || !q->count)
		return 0;
	*ev = q->ev[q->head];
	q->head = (q->head + 1) % CTL_EVENT_QUEUE_MAX;
	q->count--;
	return 1;
}

int ctl_event_next(struct ctl_conn *conn, struct lamina_ctl_event *ev, int timeout_ms)
{
	char buf[sizeof(struct lamina_ctl_hdr) + sizeof(struct lamina_ctl_event) + 1];
	union {
		char b[CMSG_SPACE(sizeof(int) * CTL_MAX_FDS)];
		struct cmsghdr align;
	} ctrl;
	struct pollfd pfd = {.fd = conn->fd, .events = POLLIN};
	struct lamina_ctl_hdr hdr;
	struct iovec iov;
	struct msghdr msg;
	ssize_t n;
	int r;

	if (ctl_event_pop(conn, ev))
		return 0;
	if (conn->fd < 0)
		return -ENOTCONN;
	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -EAGAIN;
	iov = (struct iovec){buf, sizeof(buf)};
	msg = (struct msghdr){
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.b, .msg_controllen = sizeof(ctrl.b)};
	do
		n = recvmsg(conn->fd, &msg, MSG_CMSG_CLOEXEC | MSG_TRUNC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	/* Notifications never carry descriptors: any that came are closed. */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
				close(fd);
			}
	if (n == 0) {
		snprintf(conn->err, sizeof(conn->err), "lamina-hv closed the connection");
		return -ECONNRESET;
	}
	if ((size_t)n > sizeof(buf) - 1 || (msg.msg_flags & MSG_TRUNC) ||
	    !ctl_is_event(buf, (size_t)n, &hdr)) {
		snprintf(conn->err, sizeof(conn->err),
			 "unexpected %zd-byte message on a subscribed connection", n);
		return -EPROTO;
	}
	if (ctl_event_decode(buf, (size_t)n, &hdr, ev)) {
		conn->events_lost++;
		snprintf(conn->err, sizeof(conn->err), "malformed notification");
		return -EPROTO;
	}
	return 0;
}

int ctl_subscribe(struct ctl_conn *conn)
{
	return ctl_call(conn, LAMINA_CTL_SUBSCRIBE, NULL, 0, NULL, NULL);
}

int ctl_domstats(struct ctl_conn *conn, const struct lamina_ctl_domref *ref, struct lamina_ctl_domstats *out)
{
	struct ctl_reply rep = {.buf = out, .cap = sizeof(*out)};
	struct ctl_len_rule rule = {.min = sizeof(*out)};

	return ctl_call(conn, LAMINA_CTL_DOMSTATS, ref, sizeof(*ref), &rep, &rule);
}

const char *ctl_event_kind_name(uint32_t kind)
{
	static const char *const names[] = {
	    [LAMINA_EV_CREATED] = "created",
	    [LAMINA_EV_STOPPED] = "stopped",
	    [LAMINA_EV_DESTROYED] = "destroyed",
	    [LAMINA_EV_RESTARTED] = "restarted",
	};

	return kind < sizeof(names) / sizeof(names[0]) && names[kind] ? names[kind] : "unknown";
}
