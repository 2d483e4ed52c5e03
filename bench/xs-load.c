/* The store benchmark's load client: N sequential requests over a xenstore socket (any daemon
 * speaking Xen's wire protocol), timing each, for read, write and the watch-fire round trip
 * (one connection writes, another waits for the event); or, with -c, C connections each keeping
 * up to D requests in flight (pipelined; replies come back in order). Prints "NAME VALUE" lines. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <xen/io/xs_wire.h>

#define XSL_MAX_CONNS 64
#define XSL_MAX_DEPTH 64

struct xsl_conn {
	int fd;
	uint32_t req_id;
	size_t roff, rlen; /* received bytes not yet taken */
	char rbuf[4 * (XENSTORE_PAYLOAD_MAX + sizeof(struct xsd_sockmsg))];
	size_t olen; /* queued request bytes (concurrent mode) */
	char obuf[XSL_MAX_DEPTH * 128];
};

static uint64_t xsl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int xsl_connect(const char *path, struct xsl_conn *c)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	c->req_id = 0;
	c->roff = c->rlen = c->olen = 0;
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return -errno;
	return 0;
}

/* One write per request: header and payload together. */
static int xsl_send(struct xsl_conn *c, uint32_t type, const void *p, uint32_t len)
{
	struct xsd_sockmsg h = {.type = type, .req_id = ++c->req_id, .len = len};
	char msg[sizeof(h) + 512];

	if (len > sizeof(msg) - sizeof(h))
		return -E2BIG;
	memcpy(msg, &h, sizeof(h));
	memcpy(msg + sizeof(h), p, len);
	return write(c->fd, msg, sizeof(h) + len) == (ssize_t)(sizeof(h) + len) ? 0 : -EIO;
}

/* Makes at least len bytes available, reading as much as the socket has (one read per reply). */
static int xsl_fill(struct xsl_conn *c, size_t len)
{
	if (c->roff && c->rlen - c->roff < len) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	while (c->rlen - c->roff < len) {
		ssize_t n = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
		if (n <= 0)
			return -EIO;
		c->rlen += (size_t)n;
	}
	return 0;
}

/* Next message; its type, or -errno. */
static int xsl_recv(struct xsl_conn *c)
{
	struct xsd_sockmsg h;

	if (xsl_fill(c, sizeof(h)) < 0)
		return -EIO;
	memcpy(&h, c->rbuf + c->roff, sizeof(h));
	if (h.len > XENSTORE_PAYLOAD_MAX || xsl_fill(c, sizeof(h) + h.len) < 0)
		return -EIO;
	c->roff += sizeof(h) + h.len;
	if (c->roff == c->rlen)
		c->roff = c->rlen = 0;
	return (int)h.type;
}

static int xsl_req(struct xsl_conn *c, uint32_t type, const void *p, uint32_t len)
{
	int t;

	if (xsl_send(c, type, p, len) < 0)
		return -EIO;
	while ((t = xsl_recv(c)) == XS_WATCH_EVENT)
		;
	return t == (int)type ? 0 : -EPROTO;
}

static int xsl_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void xsl_report(const char *name, uint64_t *lat, int n, uint64_t total_ns)
{
	qsort(lat, (size_t)n, sizeof(*lat), xsl_cmp);
	printf("%s_ops_per_s %.0f\n", name, (double)n * 1e9 / (double)total_ns);
	printf("%s_p50_us %.2f\n", name, (double)lat[n / 2] / 1000.0);
	printf("%s_p99_us %.2f\n", name, (double)lat[(size_t)n * 99 / 100] / 1000.0);
}

static int xsl_run(const char *sock, int n, const char *only)
{
	struct xsl_conn *pa = calloc(1, sizeof(*pa)), *pb = calloc(1, sizeof(*pb));
	uint64_t *lat = calloc((size_t)n, sizeof(*lat)), t0, t1, start;
	static const char rd[] = "/bench/key";
	char msg[128];
	int i, len, rc = 1;

	if (!lat || !pa || !pb || xsl_connect(sock, pa) < 0 || xsl_connect(sock, pb) < 0) {
		fprintf(stderr, "xs-load: cannot connect to %s\n", sock);
		goto out;
	}
	if (xsl_req(pa, XS_WRITE, "/bench/key\0value-0123456789", 27) < 0)
		goto fail;
	/* read */
	if (only && !strstr(only, "read"))
		goto write;
	for (i = 0; i < n / 10; i++)
		xsl_req(pa, XS_READ, rd, sizeof(rd));
	start = xsl_now_ns();
	for (i = 0; i < n; i++) {
		t0 = xsl_now_ns();
		if (xsl_req(pa, XS_READ, rd, sizeof(rd)) < 0)
			goto fail;
		lat[i] = xsl_now_ns() - t0;
	}
	xsl_report("read", lat, n, xsl_now_ns() - start);
write:
	/* write: 100 keys in turn */
	if (only && !strstr(only, "write"))
		goto watch;
	start = xsl_now_ns();
	for (i = 0; i < n; i++) {
		len = snprintf(msg, sizeof(msg), "/bench/w/k%d%cvalue-%d", i % 100, 0, i);
		t0 = xsl_now_ns();
		if (xsl_req(pa, XS_WRITE, msg, (uint32_t)len) < 0)
			goto fail;
		lat[i] = xsl_now_ns() - t0;
	}
	xsl_report("write", lat, n, xsl_now_ns() - start);
watch:
	/* watch fire: b writes below a's watch; time until a has the event */
	if (only && !strstr(only, "watch")) {
		rc = 0;
		goto out;
	}
	if (xsl_send(pa, XS_WATCH, "/bench/watch\0tok\0", 17) < 0)
		goto fail;
	for (i = 0; i < 2; i++) /* the reply and the initial event */
		if (xsl_recv(pa) < 0)
			goto fail;
	start = xsl_now_ns();
	for (i = 0; i < n; i++) {
		len = snprintf(msg, sizeof(msg), "/bench/watch/x%c%d", 0, i);
		t0 = xsl_now_ns();
		if (xsl_send(pb, XS_WRITE, msg, (uint32_t)len) < 0 || xsl_recv(pa) != XS_WATCH_EVENT)
			goto fail;
		t1 = xsl_now_ns();
		if (xsl_recv(pb) != XS_WRITE)
			goto fail;
		lat[i] = t1 - t0;
	}
	xsl_report("watch", lat, n, xsl_now_ns() - start);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "xs-load: request failed against %s\n", sock);
out:
	free(lat);
	free(pa);
	free(pb);
	return rc;
}

/* Concurrent mode: C connections, each with up to D requests in flight. Replies (and, for the
 * watch kind, events) come back in request order, so each connection keeps FIFOs of send times. */
enum xsl_kind { XSL_READ, XSL_WRITE, XSL_WATCH };

struct xsl_fifo {
	uint64_t ts[XSL_MAX_DEPTH];
	unsigned head, len;
};

struct xsl_pipe {
	struct xsl_conn conn;
	struct xsl_fifo reply, event; /* send times awaiting a reply, a watch event */
	uint32_t seq;
};

struct xsl_conc {
	const char *sock;
	int nconn, depth, n;
	uint64_t limit_ns;
	struct xsl_pipe *p;
	uint64_t *lat;
	int nlat, sent, done;
};

static void xsl_fifo_push(struct xsl_fifo *f, uint64_t t)
{
	f->ts[(f->head + f->len++) % XSL_MAX_DEPTH] = t;
}

static int xsl_fifo_pop(struct xsl_fifo *f, uint64_t *t)
{
	if (!f->len)
		return -EPROTO;
	*t = f->ts[f->head];
	f->head = (f->head + 1) % XSL_MAX_DEPTH;
	f->len--;
	return 0;
}

/* Appends one request to the connection's output (sent by xsl_flush). */
static int xsl_queue(struct xsl_conn *c, uint32_t type, const char *p, uint32_t len)
{
	struct xsd_sockmsg h = {.type = type, .req_id = ++c->req_id, .len = len};

	if (c->olen + sizeof(h) + len > sizeof(c->obuf))
		return -E2BIG;
	memcpy(c->obuf + c->olen, &h, sizeof(h));
	memcpy(c->obuf + c->olen + sizeof(h), p, len);
	c->olen += sizeof(h) + len;
	return 0;
}

static int xsl_flush(struct xsl_conn *c)
{
	size_t off = 0;

	while (off < c->olen) {
		ssize_t w = write(c->fd, c->obuf + off, c->olen - off);
		if (w <= 0)
			return -EIO;
		off += (size_t)w;
	}
	c->olen = 0;
	return 0;
}

/* Takes one complete message out of what was read: 1 and its type, 0 if none is complete yet. */
static int xsl_take(struct xsl_conn *c, uint32_t *type)
{
	struct xsd_sockmsg h;

	if (c->rlen - c->roff < sizeof(h))
		return 0;
	memcpy(&h, c->rbuf + c->roff, sizeof(h));
	if (h.len > XENSTORE_PAYLOAD_MAX)
		return -EPROTO;
	if (c->rlen - c->roff < sizeof(h) + h.len)
		return 0;
	c->roff += sizeof(h) + h.len;
	*type = h.type;
	return 1;
}

/* One read of whatever the socket has, after moving the unread rest to the front. */
static int xsl_pull(struct xsl_conn *c)
{
	ssize_t n;

	memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
	c->rlen -= c->roff;
	c->roff = 0;
	n = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
	if (n <= 0)
		return -EIO;
	c->rlen += (size_t)n;
	return 0;
}

/* Tops the pipe up to the depth (within the run's request count). */
static int xsl_conc_fill(struct xsl_conc *r, struct xsl_pipe *p, int id, enum xsl_kind kind)
{
	static const char rd[] = "/bench/key";
	char msg[96];
	int len;

	while (r->sent < r->n && (int)p->reply.len < r->depth && (int)p->event.len < r->depth) {
		uint64_t now = xsl_now_ns();
		if (kind == XSL_READ) {
			if (xsl_queue(&p->conn, XS_READ, rd, sizeof(rd)) < 0)
				return -E2BIG;
		} else {
			len = kind == XSL_WRITE ? snprintf(msg, sizeof(msg), "/bench/c/%d/k%u%cv-%u", id, p->seq % 100, 0, p->seq)
						: snprintf(msg, sizeof(msg), "/bench/cw/%d/x%c%u", id, 0, p->seq);
			if (xsl_queue(&p->conn, XS_WRITE, msg, (uint32_t)len) < 0)
				return -E2BIG;
		}
		p->seq++;
		xsl_fifo_push(&p->reply, now);
		if (kind == XSL_WATCH)
			xsl_fifo_push(&p->event, now);
		r->sent++;
	}
	return xsl_flush(&p->conn);
}

/* A message on pipe p: a reply (or event, for the watch kind) completes the oldest request. */
static int xsl_conc_take(struct xsl_conc *r, struct xsl_pipe *p, enum xsl_kind kind, uint32_t type, uint64_t now)
{
	uint64_t t;
	bool is_event = type == XS_WATCH_EVENT;

	if (is_event ? kind != XSL_WATCH : type != (kind == XSL_READ ? XS_READ : XS_WRITE))
		return -EPROTO;
	if (xsl_fifo_pop(is_event ? &p->event : &p->reply, &t) < 0)
		return -EPROTO;
	if (kind == XSL_WATCH && !is_event)
		return 0;
	if (r->nlat < r->n)
		r->lat[r->nlat++] = now - t;
	r->done++;
	return 0;
}

/* Runs n requests (or until the time limit) over the pipes; 0 or -errno. */
static int xsl_conc_loop(struct xsl_conc *r, enum xsl_kind kind, int n, uint64_t *elapsed)
{
	struct pollfd pfd[XSL_MAX_CONNS];
	uint64_t start = xsl_now_ns(), now = start;
	uint32_t type;
	int i, k;

	r->n = n;
	r->sent = r->done = r->nlat = 0;
	for (i = 0; i < r->nconn; i++) {
		pfd[i] = (struct pollfd){.fd = r->p[i].conn.fd, .events = POLLIN};
		if (xsl_conc_fill(r, &r->p[i], i, kind) < 0)
			return -EIO;
	}
	while (r->done < n && now - start < r->limit_ns) {
		if (poll(pfd, (nfds_t)r->nconn, 1000) < 0)
			return -errno;
		for (i = 0; i < r->nconn; i++) {
			if (!pfd[i].revents)
				continue;
			if (xsl_pull(&r->p[i].conn) < 0)
				return -EIO;
			now = xsl_now_ns();
			while ((k = xsl_take(&r->p[i].conn, &type)) > 0)
				if (xsl_conc_take(r, &r->p[i], kind, type, now) < 0)
					return -EPROTO;
			if (k < 0 || xsl_conc_fill(r, &r->p[i], i, kind) < 0)
				return -EPROTO;
		}
		now = xsl_now_ns();
	}
	*elapsed = now - start;
	return 0;
}

/* Opens the pipes for one kind; for the watch kind, each watches its own subtree. */
static int xsl_conc_open(struct xsl_conc *r, enum xsl_kind kind)
{
	char msg[64];
	int i, j, len;

	for (i = 0; i < r->nconn; i++) {
		struct xsl_pipe *p = &r->p[i];
		memset(&p->reply, 0, sizeof(p->reply));
		memset(&p->event, 0, sizeof(p->event));
		p->seq = 0;
		if (xsl_connect(r->sock, &p->conn) < 0)
			return -EIO;
		if (kind != XSL_WATCH)
			continue;
		len = snprintf(msg, sizeof(msg), "/bench/cw/%d%ctok%c", i, 0, 0);
		if (xsl_send(&p->conn, XS_WATCH, msg, (uint32_t)len) < 0)
			return -EIO;
		for (j = 0; j < 2; j++) /* the reply and the initial event */
			if (xsl_recv(&p->conn) < 0)
				return -EIO;
	}
	return 0;
}

static void xsl_conc_close(struct xsl_conc *r)
{
	int i;

	for (i = 0; i < r->nconn; i++)
		if (r->p[i].conn.fd >= 0)
			close(r->p[i].conn.fd);
}

static int xsl_conc_run(struct xsl_conc *r, const char *only)
{
	static const char *const names[] = {"conc_read", "conc_write", "conc_watch"};
	struct xsl_conn *seed = calloc(1, sizeof(*seed));
	uint64_t elapsed;
	int kind, rc = 1;

	r->p = calloc((size_t)r->nconn, sizeof(*r->p));
	r->lat = calloc((size_t)r->n, sizeof(*r->lat));
	if (!seed || !r->p || !r->lat || xsl_connect(r->sock, seed) < 0 ||
	    xsl_req(seed, XS_WRITE, "/bench/key\0value-0123456789", 27) < 0) {
		fprintf(stderr, "xs-load: cannot connect to %s\n", r->sock);
		goto out;
	}
	for (kind = XSL_READ; kind <= XSL_WATCH; kind++) {
		int n = r->n;
		if (only && !strstr(only, names[kind] + 5))
			continue;
		for (int i = 0; i < r->nconn; i++)
			r->p[i].conn.fd = -1;
		/* A warm-up tenth, then the timed run, on the same connections. */
		if (xsl_conc_open(r, (enum xsl_kind)kind) < 0 || xsl_conc_loop(r, (enum xsl_kind)kind, n / 10, &elapsed) < 0 ||
		    xsl_conc_loop(r, (enum xsl_kind)kind, n, &elapsed) < 0 || r->nlat < 100) {
			fprintf(stderr, "xs-load: %s failed against %s\n", names[kind], r->sock);
			xsl_conc_close(r);
			goto out;
		}
		xsl_report(names[kind], r->lat, r->nlat, elapsed);
		xsl_conc_close(r);
	}
	rc = 0;
out:
	if (seed && seed->fd >= 0)
		close(seed->fd);
	free(seed);
	free(r->p);
	free(r->lat);
	return rc;
}

int main(int argc, char **argv)
{
	struct xsl_conc conc = {.depth = 8, .limit_ns = 10000000000ull};
	const char *sock = NULL, *only = NULL;
	int n = 20000, opt, secs = 10;

	while ((opt = getopt(argc, argv, "s:n:o:c:d:t:")) != -1) {
		if (opt == 'o')
			only = optarg;
		else if (opt == 's')
			sock = optarg;
		else if (opt == 'n')
			n = atoi(optarg);
		else if (opt == 'c')
			conc.nconn = atoi(optarg);
		else if (opt == 'd')
			conc.depth = atoi(optarg);
		else if (opt == 't')
			secs = atoi(optarg);
		else
			break;
	}
	if (!sock || n < 100 || n > 10000000 || conc.nconn < 0 || conc.nconn > XSL_MAX_CONNS || conc.depth < 1 ||
	    conc.depth > XSL_MAX_DEPTH || secs < 1 || secs > 3600) {
		fprintf(stderr, "usage: xs-load -s SOCKET [-n REQUESTS (100..10^7)] [-o read,write,watch]\n"
				"               [-c CONNECTIONS (1..%d) [-d DEPTH (1..%d, default 8)] [-t SECONDS (default 10)]]\n"
				"  -c: concurrent mode, each connection keeping DEPTH requests in flight; N requests in all,\n"
				"      stopping at SECONDS (each after a warm-up tenth)\n",
			XSL_MAX_CONNS, XSL_MAX_DEPTH);
		return 2;
	}
	if (conc.nconn) {
		conc.sock = sock;
		conc.n = n;
		conc.limit_ns = (uint64_t)secs * 1000000000ull;
		return xsl_conc_run(&conc, only);
	}
	return xsl_run(sock, n, only);
}
