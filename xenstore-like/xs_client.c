/* libxsclient: framing, request/reply matching and the typed calls over the store socket. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <xen/io/xs_wire.h>

#include "xs_client.h"

struct xs_cevent {
	struct xs_cevent *next;
	char *path; /* path\0token\0 in one buffer */
	char *token;
};

struct xs_client {
	int fd;
	uint32_t req_id;
	struct xs_cevent *ev_head, *ev_tail;
};

static int xs_client_connect(const char *path, struct xs_client **out)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct xs_client *c;

	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = -errno;
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		return e;
	}
	*out = c;
	return 0;
}

int xs_client_open_rundir(const char *rundir, struct xs_client **out)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/xenstored/socket", rundir);
	return xs_client_connect(p, out);
}

int xs_client_open(const char *path, struct xs_client **out)
{
	const char *env = getenv("XENSTORED_PATH"), *rd = getenv("LAMINA_RUNDIR");

	if (path)
		return xs_client_connect(path, out);
	if (env)
		return xs_client_connect(env, out);
	return xs_client_open_rundir(rd ? rd : "/run/lamina", out);
}

void xs_client_close(struct xs_client *c)
{
	if (!c)
		return;
	while (c->ev_head) {
		struct xs_cevent *e = c->ev_head;
		c->ev_head = e->next;
		free(e->path);
		free(e);
	}
	close(c->fd);
	free(c);
}

int xs_client_fd(const struct xs_client *c)
{
	return c->fd;
}

static int xs_client_io(int fd, void *buf, size_t len, bool wr)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n =
		    wr ? write(fd, (char *)buf + off, len - off) : read(fd, (char *)buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		off += (size_t)n;
	}
	return 0;
}

/* Reads one message; *body is malloc'd and NUL-terminated. */
static int xs_client_recv(struct xs_client *c, struct xsd_sockmsg *h, char **body)
{
	int rc = xs_client_io(c->fd, h, sizeof(*h), false);

	if (rc < 0)
		return rc;
	if (h->len > XENSTORE_PAYLOAD_MAX)
		return -EPROTO;
	*body = malloc(h->len + 1);
	if (!*body)
		return -ENOMEM;
	rc = xs_client_io(c->fd, *body, h->len, false);
	if (rc < 0) {
		free(*body);
		return rc;
	}
	(*body)[h->len] = '\0';
	return 0;
}

static int xs_client_queue_event(struct xs_client *c, char *body, uint32_t len)
{
	struct xs_cevent *e = calloc(1, sizeof(*e));
	size_t pl = strnlen(body, len);

	if (!e || pl + 1 >= len) {
		free(e);
		free(body);
		return e ? -EPROTO : -ENOMEM;
	}
	e->path = body;
	e->token = body + pl + 1;
	if (c->ev_tail)
		c->ev_tail->next = e;
	else
		c->ev_head = e;
	c->ev_tail = e;
	return 0;
}

static int xs_client_errno(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)
		if (strcmp(xsd_errors[i].errstring, name) == 0)
			return xsd_errors[i].errnum;
	return EINVAL;
}

int xs_client_request(struct xs_client *c, uint32_t type, uint32_t tx, const void *payload, uint32_t len,
		      char **reply, uint32_t *rlen)
{
	struct xsd_sockmsg h = {.type = type, .req_id = ++c->req_id, .tx_id = tx, .len = len};
	char *body;
	int rc;

	if (len > XENSTORE_PAYLOAD_MAX)
		return -E2BIG;
	if ((rc = xs_client_io(c->fd, &h, sizeof(h), true)) < 0 ||
	    (len && (rc = xs_client_io(c->fd, (void *)payload, len, true)) < 0))
		return rc;
	for (;;) {
		struct xsd_sockmsg r;
		if ((rc = xs_client_recv(c, &r, &body)) < 0)
			return rc;
		if (r.type == XS_WATCH_EVENT) {
			if ((rc = xs_client_queue_event(c, body, r.len)) < 0)
				return rc;
			continue;
		}
		if (r.req_id != h.req_id) {
			free(body);
			continue; /* a stale reply: not ours */
		}
		if (r.type == XS_ERROR) {
			rc = -xs_client_errno(body);
			free(body);
			return rc;
		}
		if (r.type != type) {
			free(body);
			return -EPROTO;
		}
		if (reply) {
			*reply = body;
			if (rlen)
				*rlen = r.len;
		} else {
			free(body);
		}
		return 0;
	}
}

/* Payload of NUL-terminated strings. */
static int xs_client_strings(struct xs_client *c, uint32_t type, uint32_t tx, const char *const *s, int n,
			     char **reply, uint32_t *rlen)
{
	char buf[XENSTORE_PAYLOAD_MAX];
	size_t off = 0;
	int i;

	for (i = 0; i < n; i++) {
		size_t l = strlen(s[i]) + 1;
		if (off + l > sizeof(buf))
			return -E2BIG;
		memcpy(buf + off, s[i], l);
		off += l;
	}
	return xs_client_request(c, type, tx, buf, (uint32_t)off, reply, rlen);
}

int xs_client_read(struct xs_client *c, uint32_t tx, const char *path, char **val, uint32_t *len)
{
	return xs_client_strings(c, XS_READ, tx, &path, 1, val, len);
}

int xs_client_write(struct xs_client *c, uint32_t tx, const char *path, const void *val, uint32_t len)
{
	char buf[XENSTORE_PAYLOAD_MAX];
	size_t pl = strlen(path) + 1;

	if (pl + len > sizeof(buf))
		return -E2BIG;
	memcpy(buf, path, pl);
	memcpy(buf + pl, val, len);
	return xs_client_request(c, XS_WRITE, tx, buf, (uint32_t)(pl + len), NULL, NULL);
}

int xs_client_mkdir(struct xs_client *c, uint32_t tx, const char *path)
{
	return xs_client_strings(c, XS_MKDIR, tx, &path, 1, NULL, NULL);
}

int xs_client_rm(struct xs_client *c, uint32_t tx, const char *path)
{
	return xs_client_strings(c, XS_RM, tx, &path, 1, NULL, NULL);
}

/* Turns a packed list of NUL-terminated strings into a NULL-terminated array (one allocation). */
static int xs_client_split(const char *buf, uint32_t len, char ***out, unsigned *n)
{
	unsigned cnt = 0, i = 0;
	uint32_t off;
	char **v, *s;

	for (off = 0; off < len; off += (uint32_t)strnlen(buf + off, len - off) + 1)
		cnt++;
	v = malloc((cnt + 1) * sizeof(*v) + len + 1);
	if (!v)
		return -ENOMEM;
	s = (char *)(v + cnt + 1);
	memcpy(s, buf, len);
	s[len] = '\0';
	for (off = 0; off < len; off += (uint32_t)strlen(s + off) + 1)
		v[i++] = s + off;
	v[i] = NULL;
	*out = v;
	*n = cnt;
	return 0;
}

static int xs_client_ls_part(struct xs_client *c, uint32_t tx, const char *path, char ***names, unsigned *n)
{
	char *all = NULL, *r, off_s[16], *gen0 = NULL;
	size_t alen = 0;
	uint32_t rlen;
	int rc;

	for (;;) {
		const char *args[2] = {path, off_s};
		size_t gl;
		snprintf(off_s, sizeof(off_s), "%zu", alen);
		rc = xs_client_strings(c, XS_DIRECTORY_PART, tx, args, 2, &r, &rlen);
		if (rc < 0)
			goto out;
		gl = strnlen(r, rlen) + 1;
		if (gl > rlen || (gen0 && strcmp(gen0, r) != 0)) {
			free(r);
			rc = gen0 ? -EAGAIN : -EPROTO; /* changed while listing */
			goto out;
		}
		if (!gen0)
			gen0 = strdup(r);
		{
			size_t dl = rlen - gl;
			bool last = dl > 0 && r[rlen - 1] == '\0' && (dl == 1 || r[rlen - 2] == 0);
			size_t take = last ? dl - 1 : dl;
			char *na = realloc(all, alen + take + 1);
			if (!na) {
				free(r);
				rc = -ENOMEM;
				goto out;
			}
			all = na;
			memcpy(all + alen, r + gl, take);
			alen += take;
			free(r);
			if (last || take == 0)
				break;
		}
	}
	rc = xs_client_split(all ? all : "", (uint32_t)alen, names, n);
out:
	free(all);
	free(gen0);
	return rc;
}

int xs_client_ls(struct xs_client *c, uint32_t tx, const char *path, char ***names, unsigned *n)
{
	char *r;
	uint32_t rlen;
	int rc = xs_client_strings(c, XS_DIRECTORY, tx, &path, 1, &r, &rlen);

	if (rc == -E2BIG)
		return xs_client_ls_part(c, tx, path, names, n);
	if (rc < 0)
		return rc;
	rc = xs_client_split(r, rlen, names, n);
	free(r);
	return rc;
}

int xs_client_get_perms(struct xs_client *c, uint32_t tx, const char *path, char ***perms, unsigned *n)
{
	char *r;
	uint32_t rlen;
	int rc = xs_client_strings(c, XS_GET_PERMS, tx, &path, 1, &r, &rlen);

	if (rc < 0)
		return rc;
	rc = xs_client_split(r, rlen, perms, n);
	free(r);
	return rc;
}

int xs_client_set_perms(struct xs_client *c, uint32_t tx, const char *path, const char *const *perms,
			unsigned n)
{
	const char *args[65];
	unsigned i;

	if (n == 0 || n > 64)
		return -EINVAL;
	args[0] = path;
	for (i = 0; i < n; i++)
		args[i + 1] = perms[i];
	return xs_client_strings(c, XS_SET_PERMS, tx, args, (int)n + 1, NULL, NULL);
}

int xs_client_watch(struct xs_client *c, const char *path, const char *token)
{
	const char *a[2] = {path, token};

	return xs_client_strings(c, XS_WATCH, 0, a, 2, NULL, NULL);
}

int xs_client_unwatch(struct xs_client *c, const char *path, const char *token)
{
	const char *a[2] = {path, token};

	return xs_client_strings(c, XS_UNWATCH, 0, a, 2, NULL, NULL);
}

int xs_client_read_watch(struct xs_client *c, int timeout_ms, char **path, char **token)
{
	struct xs_cevent *e;
	int rc;

	while (!c->ev_head) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		struct xsd_sockmsg h;
		char *body;
		rc = poll(&p, 1, timeout_ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -errno;
		if (rc == 0)
			return -ETIMEDOUT;
		if ((rc = xs_client_recv(c, &h, &body)) < 0)
			return rc;
		if (h.type != XS_WATCH_EVENT) {
			free(body);
			continue;
		}
		if ((rc = xs_client_queue_event(c, body, h.len)) < 0)
			return rc;
	}
	e = c->ev_head;
	c->ev_head = e->next;
	if (!c->ev_head)
		c->ev_tail = NULL;
	*path = e->path;
	*token = e->token;
	free(e);
	return 0;
}

int xs_client_txn_start(struct xs_client *c, uint32_t *tx)
{
	char *r, *end;
	unsigned long v;
	int rc = xs_client_request(c, XS_TRANSACTION_START, 0, "", 1, &r, NULL);

	if (rc < 0)
		return rc;
	v = strtoul(r, &end, 10);
	rc = (*end || v == 0 || v > UINT32_MAX) ? -EPROTO : 0;
	free(r);
	if (rc == 0)
		*tx = (uint32_t)v;
	return rc;
}

int xs_client_txn_end(struct xs_client *c, uint32_t tx, bool commit)
{
	return xs_client_request(c, XS_TRANSACTION_END, tx, commit ? "T" : "F", 2, NULL, NULL);
}

int xs_client_control(struct xs_client *c, const char *const *argv, int argc, char **reply)
{
	return xs_client_strings(c, XS_CONTROL, 0, argv, argc, reply, NULL);
}
