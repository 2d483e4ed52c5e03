/* libFuzzer target for the store's parsers of untrusted input: the wire-message state machine and
 * every request handler (three connections: Domain-0, two guests), and the guest ring transport
 * over a page whose contents and indexes come from the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "xs_store.h"
#include "xs_ring.h"

struct fz_map {
	struct xenstore_domain_interface *page;
};

static void *fz_map_ring(void *ctx, uint32_t domid, uint64_t gfn)
{
	return ((struct fz_map *)ctx)->page;
}

static void fz_unmap(void *ctx, uint32_t domid, void *page)
{
}

static int fz_bind(void *ctx, uint32_t domid, uint32_t port)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static void fz_unbind(void *ctx, uint32_t domid, int fd)
{
	close(fd);
}

static int fz_notify(void *ctx, int fd)
{
	return 0;
}

static const struct xs_ring_ops fz_ops = {fz_map_ring, fz_unmap, fz_bind, fz_unbind, fz_notify};

static void fz_trim(struct xs_conn *c)
{
	if (c && c->out_bytes > 65536)
		xs_conn_consumed(c, c->out_bytes);
}

static void fz_stream(struct xs_store *st, const uint8_t *d, size_t n)
{
	struct xs_conn *c[3];
	size_t i = 0;
	int k;

	c[0] = xs_conn_new(st, 0, true, NULL, NULL);
	c[1] = xs_conn_new(st, 5, false, NULL, NULL);
	c[2] = xs_conn_new(st, 6, false, NULL, NULL);
	while (i + 2 <= n) {
		uint8_t sel = d[i], len = d[i + 1];
		size_t take = len, used;
		i += 2;
		if (take > n - i)
			take = n - i;
		k = sel % 3;
		if (c[k] && !c[k]->dead) {
			xs_conn_input(c[k], (const char *)d + i, take, &used);
			if (sel & 0x80)
				xs_conn_consumed(c[k], c[k]->out_bytes); /* the client reads its replies */
		}
		i += take;
		for (k = 0; k < 3; k++) {
			if (c[k] && c[k]->dead)
				c[k] = NULL; /* reaped below */
			fz_trim(c[k]);
		}
		xs_store_flush_dirty(st);
	}
}

static void fz_ring(struct xs_store *st, const uint8_t *d, size_t n)
{
	struct xenstore_domain_interface *page = aligned_alloc(4096, 4096);
	struct fz_map map = {page};
	struct xs_ring_env env = {.ops = &fz_ops, .ops_ctx = &map};
	struct xs_conn *d0 = xs_conn_new(st, 0, true, NULL, NULL);
	struct xs_domain *dom;
	size_t i = 0, first = n < 4096 ? n : 4096;
	const char intro[] = "5\0"
			     "1\0"
			     "1\0";
	size_t used;

	memset(page, 0, 4096);
	memcpy(page, d, first);
	i = first;
	xs_ring_install(st, &env);
	{
		struct xsd_sockmsg h = {.type = XS_INTRODUCE, .len = sizeof(intro) - 1};
		xs_conn_input(d0, (const char *)&h, sizeof(h), &used);
		xs_conn_input(d0, intro, sizeof(intro) - 1, &used);
	}
	xs_store_flush_dirty(st);
	/* Later input: (offset, byte) pokes into the page, each followed by a kick. */
	while (i + 3 <= n) {
		uint16_t off = (uint16_t)((d[i] | d[i + 1] << 8) % 4096);
		((uint8_t *)page)[off] = d[i + 2];
		i += 3;
		dom = xs_domain_get(st, 5, false);
		if (dom && dom->ring)
			xs_ring_kick(dom->ring);
		xs_store_flush_dirty(st);
		fz_trim(d0);
	}
	xs_store_free(st); /* releases the ring before the page goes */
	free(page);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xs_store *st;

	if (size < 1)
		return 0;
	st = xs_store_new();
	if (!st)
		return 0;
	st->log = NULL;
	if (data[0] & 1) {
		fz_ring(st, data + 1, size - 1);
		return 0;
	}
	if (data[0] & 2)
		st->quota.v[XS_Q_NODES] = 8; /* reach the quota paths quickly */
	fz_stream(st, data + 1, size - 1);
	xs_store_free(st);
	return 0;
}
