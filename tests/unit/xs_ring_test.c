/* Unit tests of the ring transport against an in-memory xenstore_domain_interface page acting as
 * the guest: requests and replies across the index wrap, large replies in pieces, hostile
 * indexes and garbage, reconnection, and release. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "test_util.h"
#include "xs_test.h"
#include "xs_ring.h"

struct xs_fake {
	struct xenstore_domain_interface *page;
	int maps, unmaps, binds, unbinds, notifies;
	int fd;
};

static void *fake_map(void *ctx, uint32_t domid, uint64_t gfn)
{
	struct xs_fake *f = ctx;

	if (gfn == 0xdead) {
		errno = EFAULT;
		return NULL;
	}
	f->maps++;
	return f->page;
}

static void fake_unmap(void *ctx, uint32_t domid, void *page)
{
	((struct xs_fake *)ctx)->unmaps++;
}

static int fake_bind(void *ctx, uint32_t domid, uint32_t port)
{
	struct xs_fake *f = ctx;

	f->binds++;
	f->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return f->fd < 0 ? -errno : f->fd;
}

static void fake_unbind(void *ctx, uint32_t domid, int fd)
{
	((struct xs_fake *)ctx)->unbinds++;
	close(fd);
}

static int fake_notify(void *ctx, int fd)
{
	((struct xs_fake *)ctx)->notifies++;
	return 0;
}

static const struct xs_ring_ops fake_ops = {fake_map, fake_unmap, fake_bind, fake_unbind, fake_notify};

struct xs_rfix {
	struct xs_store *st;
	struct xs_conn *d0;
	struct xs_fake fake;
	struct xs_ring_env env;
};

static struct xs_rfix rf;

/* The guest side: put bytes on the request ring. */
static void guest_put(const void *data, uint32_t len)
{
	xs_t_ring_put(rf.fake.page, data, len);
}

static void guest_msg(uint32_t type, uint32_t req_id, const void *body, uint32_t len)
{
	struct xsd_sockmsg h = {.type = type, .req_id = req_id, .len = len};

	guest_put(&h, sizeof(h));
	guest_put(body, len);
}

/* Takes one whole message off the response ring; false if none is complete. */
static bool guest_get(struct xs_tmsg *m)
{
	return xs_t_ring_take(rf.fake.page, m);
}

static struct xs_ring *ring5(void)
{
	struct xs_domain *d = xs_domain_get(rf.st, 5, false);

	return d ? d->ring : NULL;
}

static void kick(void)
{
	struct xs_ring *r = ring5();

	if (r)
		xs_ring_kick(r);
	xs_store_flush_dirty(rf.st);
}

static int xs_rsetup(void)
{
	memset(&rf, 0, sizeof(rf));
	rf.st = xs_t_store_new();
	rf.fake.page = aligned_alloc(4096, 4096);
	memset(rf.fake.page, 0, 4096);
	rf.env.ops = &fake_ops;
	rf.env.ops_ctx = &rf.fake;
	xs_ring_install(rf.st, &rf.env);
	rf.d0 = xs_conn_new(rf.st, 0, true, NULL, NULL);
	xs_t_domain_dir(rf.d0, 5);
	return 0;
}

static int xs_rteardown(void)
{
	xs_t_store_free(rf.st);
	free(rf.fake.page);
	return 0;
}

static void introduce(void)
{
	struct xs_tmsg m;

	CU_ASSERT_EQUAL(XS_T(rf.d0, XS_INTRODUCE, 0,
			     "5\0"
			     "4096\0"
			     "7\0",
			     &m),
			XS_INTRODUCE);
	CU_ASSERT_PTR_NOT_NULL(ring5());
}

static void test_roundtrip_wrap(void)
{
	struct xs_tmsg m;
	struct xs_fake *f = &rf.fake;
	int i;

	/* the guest starts near the 32-bit index wrap */
	f->page->req_cons = f->page->req_prod = 0xfffffff0u;
	f->page->rsp_cons = f->page->rsp_prod = 0xffffff00u;
	introduce();
	CU_ASSERT_EQUAL(f->maps, 1);
	CU_ASSERT_EQUAL(f->binds, 1);
	CU_ASSERT_EQUAL(f->page->server_features,
			XENSTORE_SERVER_FEATURE_RECONNECTION | XENSTORE_SERVER_FEATURE_ERROR);
	for (i = 0; i < 200; i++) {
		char body[64];
		uint32_t l = (uint32_t)snprintf(body, sizeof(body), "n%d", i) + 1;
		l += (uint32_t)snprintf(body + l, sizeof(body) - l, "value-%d", i);
		guest_msg(XS_WRITE, (uint32_t)i, body, l);
		kick();
		CU_ASSERT_TRUE_FATAL(guest_get(&m));
		CU_ASSERT_EQUAL(m.h.type, XS_WRITE);
		CU_ASSERT_EQUAL(m.h.req_id, (uint32_t)i);
	}
	guest_msg(XS_READ, 1000, "n199\0", 5);
	kick();
	CU_ASSERT_TRUE(guest_get(&m));
	CU_ASSERT_STRING_EQUAL(m.body, "value-199");
	CU_ASSERT_TRUE(f->page->req_cons < 0x10000); /* both indexes wrapped */
	CU_ASSERT_TRUE(f->page->rsp_prod < 0x10000);
	CU_ASSERT_TRUE(f->notifies > 0);
	/* the node is the guest's own, written with a relative path */
	CU_ASSERT_EQUAL(XS_T(rf.d0, XS_GET_PERMS, 0, "/local/domain/5/n0\0", &m), XS_GET_PERMS);
	CU_ASSERT_STRING_EQUAL(m.body, "n5");
}

static void test_big_reply_in_pieces(void)
{
	struct xs_tmsg m;
	char val[3000 + 20];
	int loops = 0;

	memcpy(val, "/local/domain/5/big\0", 20);
	memset(val + 20, 'z', 3000);
	xs_t_req(rf.d0, XS_WRITE, 0, val, sizeof(val), &m);
	guest_msg(XS_READ, 5, "big\0", 4);
	kick();
	/* 3016 bytes through a 1024-byte ring: take what is there, kick, repeat */
	{
		struct xenstore_domain_interface *p = rf.fake.page;
		char got[4096];
		uint32_t have = 0;
		while (have < sizeof(struct xsd_sockmsg) + 3000 && loops++ < 10) {
			while (p->rsp_cons != p->rsp_prod && have < sizeof(got))
				got[have++] = p->rsp[MASK_XENSTORE_IDX(p->rsp_cons++)];
			kick();
		}
		CU_ASSERT_EQUAL(have, sizeof(struct xsd_sockmsg) + 3000);
		memcpy(&m.h, got, sizeof(m.h));
		CU_ASSERT_EQUAL(m.h.type, XS_READ);
		CU_ASSERT_EQUAL(m.h.len, 3000);
		CU_ASSERT_EQUAL(got[sizeof(m.h) + 2999], 'z');
	}
	CU_ASSERT_TRUE(loops >= 3);
}

static void test_garbage_type(void)
{
	struct xs_tmsg m;

	guest_msg(0x12345, 6, "\x01\x02\x03", 3);
	kick();
	CU_ASSERT_TRUE(guest_get(&m));
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOSYS"));
	guest_msg(XS_READ, 7, "n1", 2); /* no NUL */
	kick();
	CU_ASSERT_TRUE(guest_get(&m));
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EINVAL"));
	guest_msg(XS_INTRODUCE, 8,
		  "6\0"
		  "1\0"
		  "1\0",
		  6);
	kick();
	CU_ASSERT_TRUE(guest_get(&m));
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EACCES"));
	/* still healthy */
	guest_msg(XS_READ, 9, "n1\0", 3);
	kick();
	CU_ASSERT_TRUE(guest_get(&m));
	CU_ASSERT_STRING_EQUAL(m.body, "value-1");
	CU_ASSERT_EQUAL(xs_ring_error(ring5()), 0);
}

static void test_outstanding_unread(void)
{
	struct xs_tmsg m;
	int i, got = 0;

	/* 40 requests while the guest reads nothing: the daemon stops taking requests when the
	 * response ring is full and the backlog reaches the limit, and loses none */
	for (i = 0; i < 40; i++) {
		if (rf.fake.page->req_prod - rf.fake.page->req_cons > XENSTORE_RING_SIZE - 32)
			break;
		guest_msg(XS_READ, 100 + (uint32_t)i, "n2\0", 3);
		kick();
	}
	CU_ASSERT_TRUE(i >= 30);
	for (int loops = 0; loops < 100 && got < i; loops++) {
		while (guest_get(&m)) {
			CU_ASSERT_EQUAL(m.h.req_id, 100 + (uint32_t)got);
			got++;
		}
		kick();
	}
	CU_ASSERT_EQUAL(got, i);
}

static void test_reconnect(void)
{
	struct xs_tmsg m;
	struct xenstore_domain_interface *p = rf.fake.page;

	guest_msg(XS_WATCH, 1, "n1\0t\0", 5);
	kick();
	while (guest_get(&m))
		;
	CU_ASSERT_EQUAL(xs_ring_conn(ring5())->nwatches, 1);
	p->connection = XENSTORE_RECONNECT;
	kick();
	CU_ASSERT_EQUAL(p->connection, XENSTORE_CONNECTED);
	CU_ASSERT_EQUAL(p->req_prod, 0);
	CU_ASSERT_EQUAL(p->rsp_prod, 0);
	CU_ASSERT_EQUAL(xs_ring_conn(ring5())->nwatches, 0);
	guest_msg(XS_READ, 2, "n1\0", 3);
	kick();
	CU_ASSERT_TRUE(guest_get(&m));
	CU_ASSERT_STRING_EQUAL(m.body, "value-1");
}

static void test_hostile_req_prod(void)
{
	struct xs_tmsg m;
	struct xenstore_domain_interface *p = rf.fake.page;

	p->req_prod = p->req_cons + XENSTORE_RING_SIZE + 1;
	kick();
	CU_ASSERT_EQUAL(p->error, XENSTORE_ERROR_RINGIDX);
	CU_ASSERT_PTR_NULL(ring5()); /* disconnected and reaped */
	CU_ASSERT_EQUAL(rf.fake.unmaps, 1);
	CU_ASSERT_EQUAL(rf.fake.unbinds, 1);
	/* the daemon and Domain-0 go on; the domain is still introduced */
	CU_ASSERT_EQUAL(XS_T(rf.d0, XS_READ, 0, "/local/domain/5/n1\0", &m), XS_READ);
	CU_ASSERT_EQUAL(XS_T(rf.d0, XS_IS_DOMAIN_INTRODUCED, 0, "5\0", &m), XS_IS_DOMAIN_INTRODUCED);
	CU_ASSERT_STRING_EQUAL(m.body, "T");
	/* re-introduction reconnects */
	memset(p, 0, 4096);
	introduce();
	guest_msg(XS_READ, 3, "n1\0", 3);
	kick();
	CU_ASSERT_TRUE(guest_get(&m));
	CU_ASSERT_STRING_EQUAL(m.body, "value-1");
}

static void test_hostile_rsp_cons(void)
{
	struct xenstore_domain_interface *p = rf.fake.page;

	p->rsp_cons = p->rsp_prod + 5; /* consumer ahead of the producer */
	guest_msg(XS_READ, 4, "n1\0", 3);
	kick();
	CU_ASSERT_EQUAL(p->error, XENSTORE_ERROR_RINGIDX);
	CU_ASSERT_PTR_NULL(ring5());
	memset(p, 0, 4096);
	introduce();
}

static void test_oversized_and_random(void)
{
	struct xs_tmsg m;
	struct xenstore_domain_interface *p = rf.fake.page;
	struct xsd_sockmsg h = {.type = XS_WRITE, .len = XENSTORE_PAYLOAD_MAX + 1};
	unsigned seed = 1;
	int round;

	guest_put(&h, sizeof(h));
	kick();
	CU_ASSERT_EQUAL(p->error, XENSTORE_ERROR_PROTO);
	CU_ASSERT_PTR_NULL(ring5());
	/* random bytes: whatever happens, only this domain's ring is affected */
	for (round = 0; round < 50; round++) {
		char junk[700];
		size_t i;
		memset(p, 0, 4096);
		introduce();
		for (i = 0; i < sizeof(junk); i++)
			junk[i] = (char)rand_r(&seed);
		if (round % 2)
			memset(junk + 12, 0, 4); /* plausible lengths half the time */
		guest_put(junk, sizeof(junk));
		kick();
		if (ring5() && round % 3 == 0) {
			p->rsp_prod = (uint32_t)rand_r(&seed); /* scribble an index we own */
			kick();
		}
		CU_ASSERT_EQUAL(XS_T(rf.d0, XS_READ, 0, "/local/domain/5/n1\0", &m), XS_READ);
		XS_T(rf.d0, XS_RELEASE, 0, "5\0", &m);
	}
	xs_store_flush_dirty(rf.st); /* reaps the last released ring */
	CU_ASSERT_EQUAL(rf.fake.maps, rf.fake.unmaps);
	CU_ASSERT_EQUAL(rf.fake.binds, rf.fake.unbinds);
}

static void test_release_and_map_failure(void)
{
	struct xs_tmsg m;

	memset(rf.fake.page, 0, 4096);
	introduce();
	XS_T(rf.d0, XS_WATCH, 0, "@releaseDomain\0r\0", &m);
	xs_t_drain(rf.d0);
	xs_t_send(rf.d0, XS_RELEASE, 0, "5\0", 2);
	CU_ASSERT_TRUE(xs_t_pop(rf.d0, &m));
	CU_ASSERT_STRING_EQUAL(m.body, "@releaseDomain");
	CU_ASSERT_PTR_NULL(ring5());
	xs_store_flush_dirty(rf.st); /* the ring goes when dead connections are reaped */
	CU_ASSERT_EQUAL(rf.fake.maps, rf.fake.unmaps);
	/* a ring that cannot be mapped fails the introduction */
	XS_T(rf.d0, XS_INTRODUCE, 0,
	     "5\0"
	     "57005\0"
	     "7\0",
	     &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EFAULT") || m.h.type == XS_ERROR);
	XS_T(rf.d0, XS_IS_DOMAIN_INTRODUCED, 0, "5\0", &m);
	CU_ASSERT_STRING_EQUAL(m.body, "F");
}

int main(void)
{
	static const struct tu_test tests[] = {
	    {"round trips across the index wrap", test_roundtrip_wrap},
	    {"a reply larger than the ring", test_big_reply_in_pieces},
	    {"garbage types and missing NULs", test_garbage_type},
	    {"unread responses hold requests back", test_outstanding_unread},
	    {"guest-requested reconnection", test_reconnect},
	    {"hostile request producer", test_hostile_req_prod},
	    {"hostile response consumer", test_hostile_rsp_cons},
	    {"oversized and random input", test_oversized_and_random},
	    {"release and map failure", test_release_and_map_failure},
	};

	return tu_run_suite("xs_ring", xs_rsetup, xs_rteardown, tests, TU_COUNT(tests));
}
