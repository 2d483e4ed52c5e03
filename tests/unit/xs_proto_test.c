/* Unit tests of the store's message layer: parsing at every length boundary, DIRECTORY_PART
 * paging, and persistence of the tree, through in-process connections. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "test_util.h"
#include "xs_test.h"

static struct xs_t_fix fx;

static int xs_setup(void)
{
	struct xs_tmsg m;

	if (xs_t_fix_setup(&fx) < 0)
		return -1;
	XS_T(fx.d5, XS_WRITE, 0, "data/x\0v5", &m);
	XS_T(fx.d5, XS_SET_PERMS, 0, "data/x\0n5\0r6\0", &m);
	return 0;
}

static int xs_teardown(void)
{
	xs_t_store_free(fx.st);
	return 0;
}

static void test_parsing(void)
{
	struct xs_tmsg m;
	char *big = malloc(XENSTORE_PAYLOAD_MAX + 16);
	struct xsd_sockmsg h;
	size_t used, i;
	struct xs_conn *c;

	XS_T(fx.d0, XS_READ, 0, "", &m); /* len 0 */
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EINVAL"));
	XS_T(fx.d0, XS_READ, 0, "/tool", &m); /* no NUL */
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EINVAL"));
	XS_T(fx.d0, XS_READ, 0, "/tool\0/x\0", &m); /* two args where one is wanted */
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EINVAL"));
	XS_T(fx.d0, XS_WRITE, 0, "/nonul", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EINVAL"));
	XS_T(fx.d0, XS_WATCH, 0, "/a\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EINVAL"));
	xs_t_req(fx.d0, 99, 0, "x", 1, &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOSYS"));
	CU_ASSERT_EQUAL(m.h.req_id, 77);
	XS_T(fx.d0, XS_WATCH_EVENT, 0, "/a\0t\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOSYS"));
	XS_T(fx.d0, XS_READ, 4242, "/tool\0", &m); /* unknown transaction */
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOENT"));
	/* exactly XENSTORE_PAYLOAD_MAX is accepted */
	memcpy(big, "/big\0", 5);
	memset(big + 5, 'v', XENSTORE_PAYLOAD_MAX - 5);
	CU_ASSERT_EQUAL(xs_t_req(fx.d0, XS_WRITE, 0, big, XENSTORE_PAYLOAD_MAX, &m), XS_WRITE);
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_READ, 0, "/big\0", &m), XS_READ);
	CU_ASSERT_EQUAL(m.h.len, XENSTORE_PAYLOAD_MAX - 5);
	/* one byte at a time: same result */
	h = (struct xsd_sockmsg){.type = XS_READ, .req_id = 9, .len = 6};
	xs_t_drain(fx.d0);
	for (i = 0; i < sizeof(h); i++)
		xs_conn_input(fx.d0, (char *)&h + i, 1, &used);
	for (i = 0; i < 6; i++)
		xs_conn_input(fx.d0, "/tool\0" + i, 1, &used);
	CU_ASSERT_TRUE(xs_t_pop(fx.d0, &m));
	CU_ASSERT_EQUAL(m.h.type, XS_READ);
	CU_ASSERT_EQUAL(m.h.req_id, 9);
	/* payload quota below the protocol maximum: E2BIG, and the stream stays in step */
	fx.st->quota.v[XS_Q_PAYLOAD] = 100;
	memset(big, 'a', 200);
	big[0] = '/';
	big[199] = '\0';
	xs_t_req(fx.d5, XS_READ, 0, big, 101, &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "E2BIG"));
	CU_ASSERT_EQUAL(XS_T(fx.d5, XS_READ, 0, "data/x\0", &m), XS_READ);
	CU_ASSERT_EQUAL(xs_t_req(fx.d0, XS_READ, 0, "/big\0", 5, &m), XS_READ); /* dom0 unbound */
	fx.st->quota.v[XS_Q_PAYLOAD] = XENSTORE_PAYLOAD_MAX;
	/* beyond XENSTORE_PAYLOAD_MAX: that connection is closed, the others go on */
	c = xs_conn_new(fx.st, 0, true, NULL, NULL);
	h = (struct xsd_sockmsg){.type = XS_WRITE, .len = XENSTORE_PAYLOAD_MAX + 1};
	CU_ASSERT_EQUAL(xs_conn_input(c, (char *)&h, sizeof(h), &used), -EPROTO);
	CU_ASSERT_TRUE(c->dead);
	xs_store_flush_dirty(fx.st); /* reaps it */
	CU_ASSERT_EQUAL(fx.st->ndead, 0);
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_READ, 0, "/tool\0", &m), XS_READ);
	free(big);
}

static void test_directory_part(void)
{
	struct xs_tmsg m;
	char path[64], arg[64], all[16384];
	size_t alen = 0, off = 0;
	int i, rounds = 0;

	for (i = 0; i < 400; i++) {
		uint32_t l = (uint32_t)snprintf(path, sizeof(path), "/dp/child-number-%04d", i) + 1;
		xs_t_req(fx.d0, XS_WRITE, 0, path, l, &m);
	}
	XS_T(fx.d0, XS_DIRECTORY, 0, "/dp\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "E2BIG"));
	for (;;) {
		uint32_t l = (uint32_t)snprintf(arg, sizeof(arg), "/dp%c%zu", 0, off) + 1;
		size_t gl, dl;
		CU_ASSERT_EQUAL_FATAL(xs_t_req(fx.d0, XS_DIRECTORY_PART, 0, arg, l, &m), XS_DIRECTORY_PART);
		CU_ASSERT_TRUE(m.h.len <= XENSTORE_PAYLOAD_MAX);
		gl = strlen(m.body) + 1;
		dl = m.h.len - gl;
		rounds++;
		if (dl >= 1 && m.body[m.h.len - 1] == '\0' && (dl == 1 || m.body[m.h.len - 2] == '\0')) {
			memcpy(all + alen, m.body + gl, dl - 1);
			alen += dl - 1;
			break;
		}
		memcpy(all + alen, m.body + gl, dl);
		alen += dl;
		off += dl;
		CU_ASSERT_FATAL(rounds < 10);
	}
	CU_ASSERT_TRUE(rounds >= 2);
	CU_ASSERT_EQUAL(alen, 400 * 18);
	CU_ASSERT_STRING_EQUAL(all + 399 * 18, "child-number-0399");
	XS_T(fx.d0, XS_DIRECTORY_PART, 0,
	     "/dp\0"
	     "99999\0",
	     &m);
	CU_ASSERT_EQUAL(m.h.type, XS_DIRECTORY_PART); /* past the end: generation and empty list */
	XS_T(fx.d0, XS_DIRECTORY_PART, 0,
	     "/dp\0"
	     "3\0",
	     &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EINVAL")); /* not the start of a name */
}

static void test_persist(void)
{
	char file[] = "/tmp/xs_core_test.XXXXXX";
	struct xs_store *st2;
	struct xs_tmsg m;
	struct xs_conn *c;
	int fd = mkstemp(file);

	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	XS_T(fx.d0, XS_WRITE, 0, "/persist/me\0value\0with-nul", &m);
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_SET_PERMS, 0, "@releaseDomain\0n0\0r7\0", &m), XS_SET_PERMS);
	CU_ASSERT_EQUAL(xs_persist_save(fx.st, file), 0);
	st2 = xs_store_new();
	CU_ASSERT_EQUAL(xs_persist_load(st2, file), 0);
	c = xs_conn_new(st2, 0, true, NULL, NULL);
	CU_ASSERT_EQUAL(XS_T(c, XS_READ, 0, "/persist/me\0", &m), XS_READ);
	CU_ASSERT_EQUAL(m.h.len, 14);
	CU_ASSERT_EQUAL(memcmp(m.body, "value\0with-nul", 14), 0);
	CU_ASSERT_EQUAL(XS_T(c, XS_GET_PERMS, 0, "/local/domain/5/data/x\0", &m), XS_GET_PERMS);
	CU_ASSERT_EQUAL(memcmp(m.body, "n5\0r6\0", 6), 0);
	CU_ASSERT_TRUE(xs_domain_get(st2, 5, false)->nodes > 0);
	/* the special paths keep their permissions too */
	CU_ASSERT_EQUAL(XS_T(c, XS_GET_PERMS, 0, "@releaseDomain\0", &m), XS_GET_PERMS);
	CU_ASSERT_EQUAL(m.h.len, 6);
	CU_ASSERT_EQUAL(memcmp(m.body, "n0\0r7\0", 6), 0);
	xs_store_free(st2);
	/* a damaged file is refused, leaving the store as it was */
	fd = open(file, O_WRONLY | O_TRUNC);
	CU_ASSERT_EQUAL(write(fd, "LXSTORE1\xff\xff\xff\xff", 12), 12);
	close(fd);
	st2 = xs_store_new();
	CU_ASSERT_TRUE(xs_persist_load(st2, file) < 0);
	CU_ASSERT_PTR_NOT_NULL(xs_htab_get(&st2->nodes, "/tool"));
	xs_store_free(st2);
	unlink(file);
}

int main(void)
{
	static const struct tu_test tests[] = {
	    {"message parsing at length boundaries", test_parsing},
	    {"directory_part", test_directory_part},
	    {"persistence", test_persist},
	};

	return tu_run_suite("xs_proto", xs_setup, xs_teardown, tests, TU_COUNT(tests));
}
