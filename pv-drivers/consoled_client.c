/* The attach socket $RUNDIR/consoled.sock (AF_UNIX stream, mode 0600). A client sends one line,
 * "ATTACH NAME|ID rw" or "ATTACH NAME|ID ro", and gets "OK NAME ID rw|ro" (ro when another
 * client already writes) or "ERR reason" and a close. Then raw bytes flow: the domain's console
 * output to every client, the writer's input into the guest. "FLUSH NAME|ID" drains the ring
 * into the log, answers "OK NAME flushed" and closes. Clients are closed at the end of a
 * loop turn, never in the middle of one (a ring breaking under a client's input detaches it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "consoled.h"

int consoled_listen(struct consoled *cd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cd->listen_w};
	int fd, n, err;

	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", cd->rundir, CONSOLED_SOCKET);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(sa.sun_path); /* a stale socket of an earlier run; the pid file guards a live one */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(sa.sun_path, 0600) < 0 ||
	    listen(fd, 64) < 0)
		goto out_err;
	cd->listen_w.kind = CONSOLED_W_LISTEN;
	if (epoll_ctl(cd->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		goto out_err;
	cd->listen_fd = fd;
	return 0;

out_err:
	err = -errno;
	close(fd);
	return err;
}

static void consoled_client_close(struct consoled *cd, struct consoled_client *cl)
{
	if (cl->fd < 0)
		return;
	epoll_ctl(cd->epfd, EPOLL_CTL_DEL, cl->fd, NULL);
	close(cl->fd);
	cl->fd = -1; /* freed by consoled_clients_reap */
	cl->dom = NULL;
}

void consoled_clients_reap(struct consoled *cd)
{
	struct consoled_client **pp = &cd->clients, *cl;

	while ((cl = *pp)) {
		if (cl->fd >= 0) {
			pp = &cl->next;
			continue;
		}
		*pp = cl->next;
		free(cl->out);
		free(cl);
	}
}

void consoled_clients_free(struct consoled *cd)
{
	for (struct consoled_client *cl = cd->clients; cl; cl = cl->next)
		consoled_client_close(cd, cl);
	consoled_clients_reap(cd);
}

void consoled_accept(struct consoled *cd)
{
	struct consoled_client *cl;
	struct epoll_event ev;
	int fd;

	while ((fd = accept4(cd->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		cl = calloc(1, sizeof(*cl));
		if (cl)
			cl->out = malloc(CONSOLED_CLIENT_OUT);
		if (!cl || !cl->out) {
			if (cl)
				free(cl);
			close(fd);
			continue;
		}
		cl->w.kind = CONSOLED_W_CLIENT;
		cl->fd = fd;
		cl->events = EPOLLIN;
		ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &cl->w};
		if (epoll_ctl(cd->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			free(cl->out);
			free(cl);
			close(fd);
			continue;
		}
		cl->next = cd->clients;
		cd->clients = cl;
	}
}

static void consoled_client_events(struct consoled *cd, struct consoled_client *cl)
{
	struct epoll_event ev = {.data.ptr = &cl->w};

	ev.events = (cl->paused_input ? 0 : EPOLLIN) | (cl->out_len ? EPOLLOUT : 0);
	if (ev.events == cl->events)
		return; /* the common case: a chunk of output fully sent at once */
	if (epoll_ctl(cd->epfd, EPOLL_CTL_MOD, cl->fd, &ev) == 0)
		cl->events = ev.events;
}

/* Write what is queued; 0, or -1 when the client is gone. */
static int consoled_client_flush(struct consoled *cd, struct consoled_client *cl)
{
	while (cl->out_len) {
		ssize_t n = send(cl->fd, cl->out, cl->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			consoled_client_close(cd, cl);
			return -1;
		}
		memmove(cl->out, cl->out + n, cl->out_len - (size_t)n);
		cl->out_len -= (size_t)n;
	}
	consoled_client_events(cd, cl);
	return 0;
}

static void consoled_client_queue(struct consoled *cd, struct consoled_client *cl, const char *buf,
				  size_t len)
{
	size_t room = CONSOLED_CLIENT_OUT - cl->out_len;

	if (len > room) {
		cl->dropped += len - room; /* a reader that does not keep up loses output, not the guest */
		len = room;
	}
	memcpy(cl->out + cl->out_len, buf, len);
	cl->out_len += len;
	consoled_client_flush(cd, cl);
}

void consoled_clients_output(struct consoled *cd, struct consoled_dom *dom, const char *buf, size_t len)
{
	for (struct consoled_client *cl = cd->clients; cl; cl = cl->next)
		if (cl->fd >= 0 && cl->attached && cl->dom == dom)
			consoled_client_queue(cd, cl, buf, len);
}

void consoled_clients_detach(struct consoled *cd, struct consoled_dom *dom, const char *why)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "\r\n[lamina-consoled: %s]\r\n", why);

	for (struct consoled_client *cl = cd->clients; cl; cl = cl->next) {
		if (cl->fd < 0 || cl->dom != dom)
			continue;
		if (n > 0 && (size_t)n < sizeof(line))
			consoled_client_queue(cd, cl, line, (size_t)n);
		if (cl->fd >= 0)
			consoled_client_close(cd, cl);
	}
}

void consoled_clients_resume(struct consoled *cd, struct consoled_dom *dom)
{
	for (struct consoled_client *cl = cd->clients; cl; cl = cl->next)
		if (cl->fd >= 0 && cl->dom == dom && cl->paused_input) {
			cl->paused_input = 0;
			consoled_client_events(cd, cl);
		}
}

static int consoled_has_writer(struct consoled *cd, struct consoled_dom *dom)
{
	for (struct consoled_client *cl = cd->clients; cl; cl = cl->next)
		if (cl->fd >= 0 && cl->dom == dom && cl->writer)
			return 1;
	return 0;
}

/* "ATTACH NAME rw|ro": the client stays, as writer or reader. */
static void consoled_req_attach(struct consoled *cd, struct consoled_client *cl, const char *args)
{
	char name[LAMINA_NAME_MAX], mode[4], extra, reply[160];
	struct consoled_dom *dom;
	int n;

	if (sscanf(args, "%63s %3s %c", name, mode, &extra) != 2 ||
	    (strcmp(mode, "rw") && strcmp(mode, "ro"))) {
		n = snprintf(reply, sizeof(reply), "ERR bad request (expected: ATTACH NAME rw|ro)\n");
		goto out_refuse;
	}
	dom = consoled_dom_lookup(cd, name);
	if (!dom) {
		n = snprintf(reply, sizeof(reply), "ERR no such domain: %s\n", name);
		goto out_refuse;
	}
	if (!dom->ring_ok) {
		n = snprintf(reply, sizeof(reply), "ERR %s has no console ring%s\n", dom->name,
			     dom->broken ? " (disconnected: the guest corrupted it)" : "");
		goto out_refuse;
	}
	cl->dom = dom;
	cl->attached = 1;
	cl->writer = !strcmp(mode, "rw") && !consoled_has_writer(cd, dom);
	n = snprintf(reply, sizeof(reply), "OK %s %u %s\n", dom->name, dom->domid, cl->writer ? "rw" : "ro");
	consoled_client_queue(cd, cl, reply, (size_t)n);
	return;

out_refuse:
	consoled_client_queue(cd, cl, reply, (size_t)n);
	consoled_client_close(cd, cl);
}

/* "FLUSH NAME": drain the ring into the log now, then answer and close. A reader of the log
 * after "OK" sees everything the guest had put in its ring before the request. */
static void consoled_req_flush(struct consoled *cd, struct consoled_client *cl, const char *args)
{
	char name[LAMINA_NAME_MAX], extra, reply[160];
	struct consoled_dom *dom;
	int n;

	if (sscanf(args, "%63s %c", name, &extra) != 1) {
		n = snprintf(reply, sizeof(reply), "ERR bad request (expected: FLUSH NAME)\n");
	} else if (!(dom = consoled_dom_lookup(cd, name))) {
		n = snprintf(reply, sizeof(reply), "ERR no such domain: %s\n", name);
	} else {
		consoled_dom_service(cd, dom);
		n = snprintf(reply, sizeof(reply), "OK %s flushed\n", dom->name);
	}
	consoled_client_queue(cd, cl, reply, (size_t)n);
	consoled_client_close(cd, cl);
}

static const struct consoled_request {
	const char *verb;
	void (*fn)(struct consoled *cd, struct consoled_client *cl, const char *args);
} consoled_requests[] = {
    {"ATTACH", consoled_req_attach},
    {"FLUSH", consoled_req_flush},
};

/* The request line is complete: dispatch it by its verb. */
static void consoled_client_dispatch(struct consoled *cd, struct consoled_client *cl)
{
	for (size_t i = 0; i < sizeof(consoled_requests) / sizeof(consoled_requests[0]); i++) {
		size_t len = strlen(consoled_requests[i].verb);

		if (!strncmp(cl->req, consoled_requests[i].verb, len) && cl->req[len] == ' ') {
			consoled_requests[i].fn(cd, cl, cl->req + len + 1);
			return;
		}
	}
	consoled_client_queue(cd, cl, "ERR unknown request\n", 20);
	consoled_client_close(cd, cl);
}

static void consoled_client_request(struct consoled *cd, struct consoled_client *cl, const char *buf,
				    size_t len)
{
	const char *nl = memchr(buf, '\n', len);
	size_t take = nl ? (size_t)(nl - buf) : len;

	if (cl->req_len + take >= sizeof(cl->req)) {
		consoled_client_queue(cd, cl, "ERR request too long\n", 21);
		consoled_client_close(cd, cl);
		return;
	}
	memcpy(cl->req + cl->req_len, buf, take);
	cl->req_len += take;
	cl->req[cl->req_len] = '\0';
	if (!nl)
		return;
	consoled_client_dispatch(cd, cl);
	/* Bytes after the request line are input. */
	if (cl->fd >= 0 && cl->writer && len > take + 1)
		consoled_dom_input(cd, cl->dom, nl + 1, len - take - 1);
}

void consoled_client_event(struct consoled *cd, struct consoled_client *cl, uint32_t events)
{
	char buf[CONSOLED_IN_BUF];
	ssize_t n;

	if (cl->fd < 0)
		return;
	if ((events & EPOLLOUT) && consoled_client_flush(cd, cl))
		return;
	if ((events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN)) {
		consoled_client_close(cd, cl);
		return;
	}
	if (!(events & EPOLLIN) || cl->paused_input)
		return;
	if (cl->attached && cl->writer && cl->dom && cl->dom->in_len == CONSOLED_IN_BUF) {
		cl->paused_input = 1; /* the guest is not reading: stop reading for it */
		consoled_client_events(cd, cl);
		return;
	}
	n = recv(cl->fd, buf, cl->attached && cl->writer ? CONSOLED_IN_BUF - cl->dom->in_len : sizeof(buf),
		 MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == 0 && cl->attached && !(events & (EPOLLHUP | EPOLLERR))) {
		/* Half-closed: the client sends nothing more but still reads. */
		cl->paused_input = 1;
		consoled_client_events(cd, cl);
		return;
	}
	if (n <= 0) {
		consoled_client_close(cd, cl);
		return;
	}
	if (!cl->attached)
		consoled_client_request(cd, cl, buf, (size_t)n);
	else if (cl->writer && cl->dom)
		consoled_dom_input(cd, cl->dom, buf, (size_t)n);
	/* a reader's input is discarded */
}
