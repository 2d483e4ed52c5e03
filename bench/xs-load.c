/* The store benchmark's load client: N sequential requests over a xenstore socket (any daemon
 * speaking Xen's wire protocol), timing each, for read, write and the watch-fire round trip
 * (one connection writes, another waits for the event). Prints "NAME VALUE" lines. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <xen/io/xs_wire.h>

struct xsl_conn {
	int fd;
	uint32_t req_id;
	size_t roff, rlen; /* received bytes not yet taken */
	char rbuf[4 * (XENSTORE_PAYLOAD_MAX + sizeof(struct xsd_sockmsg))];
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
	c->roff = c->rlen = 0;
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

int main(int argc, char **argv)
{
	const char *sock = NULL, *only = NULL;
	int n = 20000, opt;

	while ((opt = getopt(argc, argv, "s:n:o:")) != -1) {
		if (opt == 'o')
			only = optarg;
		else if (opt == 's')
			sock = optarg;
		else if (opt == 'n')
			n = atoi(optarg);
		else
			break;
	}
	if (!sock || n < 100) {
		fprintf(stderr, "usage: xs-load -s SOCKET [-n REQUESTS (>= 100)] [-o read,write,watch]\n");
		return 2;
	}
	return xsl_run(sock, n, only);
}
