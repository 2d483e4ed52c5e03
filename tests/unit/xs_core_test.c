/* Unit tests of the store core: paths, permissions, quotas, the outstanding-request limit,
 * transactions and watch firing, all through in-process connections. */
#include <stdio.h>

#include "test_util.h"
#include "xs_test.h"

static struct xs_t_fix fx;

static int xs_setup(void)
{
	return xs_t_fix_setup(&fx);
}

static int xs_teardown(void)
{
	xs_t_store_free(fx.st);
	return 0;
}

static void test_path(void)
{
	struct xs_conn c = {.id = 5};
	char out[XENSTORE_ABS_PATH_MAX + 64], big[XENSTORE_ABS_PATH_MAX + 2];

	CU_ASSERT_EQUAL(xs_path_canon(&c, "data/x", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "/local/domain/5/data/x");
	CU_ASSERT_EQUAL(xs_path_canon(&c, "/abs", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "/abs");
	CU_ASSERT_TRUE(xs_path_valid("/"));
	CU_ASSERT_TRUE(xs_path_valid("/a-b_c@d/0"));
	CU_ASSERT_FALSE(xs_path_valid("/a//b"));
	CU_ASSERT_FALSE(xs_path_valid("/a/"));
	CU_ASSERT_FALSE(xs_path_valid("a"));
	CU_ASSERT_FALSE(xs_path_valid(""));
	CU_ASSERT_FALSE(xs_path_valid("/a b"));
	CU_ASSERT_FALSE(xs_path_valid("/a.b"));
	memset(big, 'a', sizeof(big) - 1);
	big[0] = '/';
	big[XENSTORE_ABS_PATH_MAX] = '\0'; /* exactly the limit */
	CU_ASSERT_TRUE(xs_path_valid(big));
	big[XENSTORE_ABS_PATH_MAX] = 'a';
	big[XENSTORE_ABS_PATH_MAX + 1] = '\0';
	CU_ASSERT_FALSE(xs_path_valid(big));
	CU_ASSERT_TRUE(xs_path_is_under("/a/b", "/a"));
	CU_ASSERT_TRUE(xs_path_is_under("/a", "/a"));
	CU_ASSERT_FALSE(xs_path_is_under("/ab", "/a"));
	CU_ASSERT_TRUE(xs_path_is_under("/x", "/"));
	CU_ASSERT_EQUAL(xs_path_parent("/a/b", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "/a");
	CU_ASSERT_EQUAL(xs_path_parent("/a", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "/");
	CU_ASSERT_EQUAL(xs_path_parent("/", out, sizeof(out)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(xs_path_base("/a/bc"), "bc");
}

static void test_perm_rules(void)
{
	struct xs_perm p[4];
	uint32_t np;
	struct xs_conn c0 = {.id = 0, .priv = true, .target = XS_DOMID_NONE};
	struct xs_conn c5 = {.id = 5, .target = XS_DOMID_NONE}, c6 = {.id = 6, .target = XS_DOMID_NONE};
	struct xs_conn c7 = {.id = 7, .target = XS_DOMID_NONE}, c9 = {.id = 9, .target = 5};
	char out[64];

	CU_ASSERT_EQUAL(xs_perms_parse("n5\0r6\0w7\0", 9, p, 4, &np), 0);
	CU_ASSERT_EQUAL(np, 3);
	CU_ASSERT_EQUAL(xs_perm_for_conn(&c0, p, np), XS_P_ALL);
	CU_ASSERT_EQUAL(xs_perm_for_conn(&c5, p, np), XS_P_ALL);
	CU_ASSERT_EQUAL(xs_perm_for_conn(&c6, p, np), XS_P_READ);
	CU_ASSERT_EQUAL(xs_perm_for_conn(&c7, p, np), XS_P_WRITE);
	CU_ASSERT_EQUAL(xs_perm_for_conn(&c9, p, np), XS_P_ALL); /* acts for the owner */
	CU_ASSERT_EQUAL(xs_perms_parse("b0\0", 3, p, 4, &np), 0);
	CU_ASSERT_EQUAL(xs_perm_for_conn(&c6, p, np), XS_P_BOTH); /* default for others */
	CU_ASSERT_EQUAL(xs_perms_parse("x5\0", 3, p, 4, &np), -EINVAL);
	CU_ASSERT_EQUAL(xs_perms_parse("r5", 2, p, 4, &np), -EINVAL);
	CU_ASSERT_EQUAL(xs_perms_parse("r\0", 2, p, 4, &np), -EINVAL);
	CU_ASSERT_EQUAL(xs_perms_parse("r65536\0", 7, p, 4, &np), -EINVAL);
	CU_ASSERT_EQUAL(xs_perms_parse("r65535\0", 7, p, 4, &np), 0);
	CU_ASSERT_EQUAL(xs_perms_parse("r5x\0", 4, p, 4, &np), -EINVAL);
	CU_ASSERT_EQUAL(xs_perms_parse("r1\0r2\0r3\0r4\0r5\0", 15, p, 4, &np), -E2BIG);
	CU_ASSERT_EQUAL(xs_perms_parse("n5\0r6\0", 6, p, 4, &np), 0);
	CU_ASSERT_EQUAL(xs_perms_format(p, np, out, sizeof(out)), 6);
	CU_ASSERT_EQUAL(memcmp(out, "n5\0r6\0", 6), 0);
}

static void test_basic_ops(void)
{
	struct xs_tmsg m;

	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_WRITE, 0, "/t/a/b\0hello", &m), XS_WRITE);
	CU_ASSERT_STRING_EQUAL(m.body, "OK");
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_READ, 0, "/t/a/b\0", &m), XS_READ);
	CU_ASSERT_EQUAL(m.h.len, 5);
	CU_ASSERT_EQUAL(m.h.req_id, 77);
	CU_ASSERT_STRING_EQUAL(m.body, "hello");
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_READ, 0, "/t/a\0", &m), XS_READ); /* implicit parent, empty */
	CU_ASSERT_EQUAL(m.h.len, 0);
	XS_T(fx.d0, XS_WRITE, 0, "/t/a/c\0", &m); /* empty value */
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_DIRECTORY, 0, "/t/a\0", &m), XS_DIRECTORY);
	CU_ASSERT_EQUAL(m.h.len, 4);
	CU_ASSERT_EQUAL(memcmp(m.body, "b\0c\0", 4), 0);
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_MKDIR, 0, "/t/a\0", &m), XS_MKDIR); /* exists: fine */
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_RM, 0, "/t/a/zz\0", &m), XS_RM);	   /* parent exists: fine */
	XS_T(fx.d0, XS_RM, 0, "/t/q/zz\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOENT"));
	XS_T(fx.d0, XS_RM, 0, "/\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EINVAL"));
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_RM, 0, "/t/a\0", &m), XS_RM);
	XS_T(fx.d0, XS_READ, 0, "/t/a/b\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOENT"));
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_GET_DOMAIN_PATH, 0, "7\0", &m), XS_GET_DOMAIN_PATH);
	CU_ASSERT_STRING_EQUAL(m.body, "/local/domain/7");
	XS_T(fx.d0, XS_READ, 0, "/bad//path\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EINVAL"));
}

static void test_permissions(void)
{
	struct xs_tmsg m;

	/* a guest writes in its own tree with relative paths and owns what it creates */
	CU_ASSERT_EQUAL(XS_T(fx.d5, XS_WRITE, 0, "data/x\0v5", &m), XS_WRITE);
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_GET_PERMS, 0, "/local/domain/5/data/x\0", &m), XS_GET_PERMS);
	CU_ASSERT_EQUAL(memcmp(m.body, "n5\0", 3), 0);
	/* others see nothing: EACCES for existing and missing nodes alike */
	XS_T(fx.d6, XS_READ, 0, "/local/domain/5/data/x\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EACCES"));
	XS_T(fx.d6, XS_READ, 0, "/local/domain/5/nothing\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EACCES"));
	XS_T(fx.d6, XS_WRITE, 0, "/local/domain/5/data/y\0v", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EACCES"));
	XS_T(fx.d5, XS_READ, 0, "nothing\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOENT"));
	XS_T(fx.d5, XS_READ, 0, "/tool\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EACCES"));
	/* a guest may not give its node away, but may share it */
	XS_T(fx.d5, XS_SET_PERMS, 0, "data/x\0n6\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EPERM"));
	CU_ASSERT_EQUAL(XS_T(fx.d5, XS_SET_PERMS, 0, "data/x\0n5\0r6\0", &m), XS_SET_PERMS);
	CU_ASSERT_EQUAL(XS_T(fx.d6, XS_READ, 0, "/local/domain/5/data/x\0", &m), XS_READ);
	CU_ASSERT_STRING_EQUAL(m.body, "v5");
	XS_T(fx.d6, XS_WRITE, 0, "/local/domain/5/data/x\0no", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EACCES"));
	/* children inherit the parent's permissions, with the creator as owner */
	XS_T(fx.d0, XS_SET_PERMS, 0, "/local/domain/5/data\0n5\0b6\0", &m);
	CU_ASSERT_EQUAL(XS_T(fx.d6, XS_WRITE, 0, "/local/domain/5/data/from6\0hi", &m), XS_WRITE);
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_GET_PERMS, 0, "/local/domain/5/data/from6\0", &m), XS_GET_PERMS);
	CU_ASSERT_EQUAL(m.h.len, 6);
	CU_ASSERT_EQUAL(memcmp(m.body, "n6\0b6\0", 6), 0);
	/* privileged operations */
	XS_T(fx.d5, XS_INTRODUCE, 0,
	     "9\0"
	     "1\0"
	     "1\0",
	     &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EACCES"));
	XS_T(fx.d5, XS_CONTROL, 0, "quota\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EACCES"));
}

static void test_quota(void)
{
	struct xs_tmsg m;
	char buf[3000], path[64];
	int i, ok = 0;

	fx.st->quota.v[XS_Q_NODES] = 20;
	for (i = 0; i < 40; i++) {
		uint32_t l = (uint32_t)snprintf(path, sizeof(path), "q/n%d", i) + 1;
		if (xs_t_req(fx.d5, XS_WRITE, 0, path, l, &m) == XS_WRITE)
			ok++;
		else
			CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOSPC"));
	}
	CU_ASSERT_TRUE(ok > 5 && ok < 20);
	/* one log line names the limit; further violations within the second are not logged */
	{
		FILE *saved = fx.st->log;
		char *logbuf = NULL, *first;
		size_t logsz = 0;
		fx.st->log = open_memstream(&logbuf, &logsz);
		xs_domain_get(fx.st, 5, false)->last_log[XS_Q_NODES] = 0;
		XS_T(fx.d5, XS_WRITE, 0, "q/over1\0", &m);
		XS_T(fx.d5, XS_WRITE, 0, "q/over2\0", &m);
		CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOSPC"));
		fclose(fx.st->log);
		fx.st->log = saved;
		first = strstr(logbuf, "quota: domain 5 exceeds the nodes limit (20");
		CU_ASSERT_PTR_NOT_NULL(first);
		if (first)
			CU_ASSERT_PTR_NULL(strstr(first + 1, "quota:"));
		free(logbuf);
	}
	CU_ASSERT_TRUE(xs_domain_get(fx.st, 5, false)->nodes <= 20);
	/* Domain-0 is not bound */
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_WRITE, 0, "/local/domain/5/q/dom0\0x", &m), XS_WRITE);
	XS_T(fx.d5, XS_RM, 0, "q\0", &m);
	CU_ASSERT_EQUAL(m.h.type, XS_RM);
	CU_ASSERT_EQUAL(XS_T(fx.d5, XS_WRITE, 0, "q/again\0", &m), XS_WRITE);
	fx.st->quota.v[XS_Q_NODES] = 1000;
	/* node size: 2048 bytes of value is too much for a guest */
	memcpy(buf, "big\0", 4);
	memset(buf + 4, 'x', 2100);
	xs_t_req(fx.d5, XS_WRITE, 0, buf, 4 + 2100, &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOSPC"));
	CU_ASSERT_EQUAL(xs_t_req(fx.d5, XS_WRITE, 0, buf, 4 + 1000, &m), XS_WRITE);
	CU_ASSERT_EQUAL(xs_t_req(fx.d0, XS_WRITE, 0, buf, 4 + 2100, &m), XS_WRITE);
	/* watches: E2BIG past the limit */
	fx.st->quota.v[XS_Q_WATCHES] = 3;
	for (i = 0; i < 4; i++) {
		uint32_t l = (uint32_t)snprintf(path, sizeof(path), "w%d", i) + 1;
		l += (uint32_t)snprintf(path + l, sizeof(path) - l, "tok") + 1;
		xs_t_req(fx.d5, XS_WATCH, 0, path, l, &m);
		CU_ASSERT_EQUAL(m.h.type, i < 3 ? XS_WATCH : XS_ERROR);
	}
	CU_ASSERT_TRUE(xs_t_is_err(&m, "E2BIG"));
	XS_T(fx.d5, XS_RESET_WATCHES, 0, "", &m);
	CU_ASSERT_EQUAL(fx.d5->nwatches, 0);
	fx.st->quota.v[XS_Q_WATCHES] = 128;
	/* transactions */
	fx.st->quota.v[XS_Q_TXNS] = 2;
	CU_ASSERT_EQUAL(XS_T(fx.d5, XS_TRANSACTION_START, 0, "\0", &m), XS_TRANSACTION_START);
	CU_ASSERT_EQUAL(XS_T(fx.d5, XS_TRANSACTION_START, 0, "\0", &m), XS_TRANSACTION_START);
	XS_T(fx.d5, XS_TRANSACTION_START, 0, "\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOSPC"));
	xs_txn_drop_all(fx.d5);
	fx.st->quota.v[XS_Q_TXNS] = 10;
	/* quotas set through CONTROL */
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_CONTROL, 0,
			     "quota\0nodes\0"
			     "1234\0",
			     &m),
			XS_CONTROL);
	CU_ASSERT_EQUAL(fx.st->quota.v[XS_Q_NODES], 1234);
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_CONTROL, 0, "quota\0", &m), XS_CONTROL);
	CU_ASSERT_PTR_NOT_NULL(strstr(m.body, "nodes 1234\n"));
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_CONTROL, 0,
			     "quota\0"
			     "5\0",
			     &m),
			XS_CONTROL);
	CU_ASSERT_PTR_NOT_NULL(strstr(m.body, "nodes "));
	XS_T(fx.d0, XS_CONTROL, 0,
	     "quota\0bogus\0"
	     "1\0",
	     &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EINVAL"));
	fx.st->quota.v[XS_Q_NODES] = 1000;
}

static void test_outstanding(void)
{
	char msg[32 * 30];
	size_t used, i, off = 0;

	/* 30 READs in one burst: the guest connection stops at 20 unread replies */
	for (i = 0; i < 30; i++) {
		struct xsd_sockmsg h = {.type = XS_READ, .req_id = (uint32_t)i, .len = 6};
		memcpy(msg + off, &h, sizeof(h));
		memcpy(msg + off + sizeof(h), "data/\0", 6);
		off += sizeof(h) + 6;
	}
	xs_t_drain(fx.d5);
	CU_ASSERT_EQUAL(xs_conn_input(fx.d5, msg, off, &used), 0);
	CU_ASSERT_EQUAL(fx.d5->out_replies, 20);
	CU_ASSERT_EQUAL(used, 20 * 22);
	CU_ASSERT_TRUE(xs_conn_paused(fx.d5));
	xs_t_drain(fx.d5);
	CU_ASSERT_EQUAL(xs_conn_input(fx.d5, msg + used, off - used, &used), 0);
	CU_ASSERT_EQUAL(used, 10 * 22);
	xs_t_drain(fx.d5);
}

static void test_transactions(void)
{
	struct xs_tmsg m;
	uint32_t tx, tx2;

	XS_T(fx.d0, XS_WRITE, 0, "/tx/x\0one", &m);
	/* isolation: a write inside is invisible outside until commit */
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_TRANSACTION_START, 0, "\0", &m), XS_TRANSACTION_START);
	tx = (uint32_t)atoi(m.body);
	CU_ASSERT_TRUE(tx != 0);
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_WRITE, tx, "/tx/y\0in", &m), XS_WRITE);
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_READ, tx, "/tx/y\0", &m), XS_READ);
	CU_ASSERT_STRING_EQUAL(m.body, "in");
	XS_T(fx.d0, XS_READ, 0, "/tx/y\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOENT"));
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_DIRECTORY, tx, "/tx\0", &m), XS_DIRECTORY);
	CU_ASSERT_EQUAL(m.h.len, 4);
	XS_T(fx.d0, XS_TRANSACTION_START, tx, "\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EBUSY"));
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_TRANSACTION_END, tx, "T\0", &m), XS_TRANSACTION_END);
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_READ, 0, "/tx/y\0", &m), XS_READ);
	/* conflict: what the transaction read changed underneath it */
	XS_T(fx.d0, XS_TRANSACTION_START, 0, "\0", &m);
	tx = (uint32_t)atoi(m.body);
	XS_T(fx.d0, XS_READ, tx, "/tx/x\0", &m);
	XS_T(fx.d6, XS_WRITE, 0, "/local/domain/6/unrelated\0", &m);
	XS_T(fx.d0, XS_WRITE, 0, "/tx/x\0two", &m);
	XS_T(fx.d0, XS_WRITE, tx, "/tx/z\0lost", &m);
	XS_T(fx.d0, XS_TRANSACTION_END, tx, "T\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EAGAIN"));
	XS_T(fx.d0, XS_READ, 0, "/tx/z\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOENT"));
	XS_T(fx.d0, XS_TRANSACTION_END, tx, "T\0", &m); /* gone after the failed commit */
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOENT"));
	/* conflict on creation of a node the transaction saw absent */
	XS_T(fx.d0, XS_TRANSACTION_START, 0, "\0", &m);
	tx = (uint32_t)atoi(m.body);
	XS_T(fx.d0, XS_READ, tx, "/tx/new\0", &m);
	XS_T(fx.d0, XS_WRITE, 0, "/tx/new\0", &m);
	XS_T(fx.d0, XS_TRANSACTION_END, tx, "T\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EAGAIN"));
	/* two transactions touching disjoint nodes both commit */
	XS_T(fx.d0, XS_TRANSACTION_START, 0, "\0", &m);
	tx = (uint32_t)atoi(m.body);
	XS_T(fx.d5, XS_TRANSACTION_START, 0, "\0", &m);
	tx2 = (uint32_t)atoi(m.body);
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_WRITE, tx, "/tx/x\0three", &m), XS_WRITE);
	CU_ASSERT_EQUAL(XS_T(fx.d5, XS_WRITE, tx2, "mine\0v", &m), XS_WRITE);
	CU_ASSERT_EQUAL(XS_T(fx.d5, XS_TRANSACTION_END, tx2, "T\0", &m), XS_TRANSACTION_END);
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_TRANSACTION_END, tx, "T\0", &m), XS_TRANSACTION_END);
	XS_T(fx.d0, XS_READ, 0, "/tx/x\0", &m);
	CU_ASSERT_STRING_EQUAL(m.body, "three");
	/* a transaction id belongs to its connection; abort drops the writes; rm inside */
	XS_T(fx.d0, XS_TRANSACTION_START, 0, "\0", &m);
	tx = (uint32_t)atoi(m.body);
	XS_T(fx.d6, XS_READ, tx, "/local/domain/6\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOENT"));
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_RM, tx, "/tx\0", &m), XS_RM);
	XS_T(fx.d0, XS_READ, tx, "/tx/x\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOENT"));
	XS_T(fx.d0, XS_TRANSACTION_END, tx, "X\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EINVAL"));
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_TRANSACTION_END, tx, "F\0", &m), XS_TRANSACTION_END);
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_READ, 0, "/tx/x\0", &m), XS_READ);
	/* committed removal */
	XS_T(fx.d0, XS_TRANSACTION_START, 0, "\0", &m);
	tx = (uint32_t)atoi(m.body);
	XS_T(fx.d0, XS_RM, tx, "/tx\0", &m);
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_TRANSACTION_END, tx, "T\0", &m), XS_TRANSACTION_END);
	XS_T(fx.d0, XS_READ, 0, "/tx/x\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOENT"));
	CU_ASSERT_PTR_NULL(xs_htab_get(&fx.st->nodes, "/tx/y"));
}

static void test_watches(void)
{
	struct xs_tmsg m;

	xs_t_drain(fx.d0);
	CU_ASSERT_EQUAL(xs_t_send(fx.d0, XS_WATCH, 0, "/w\0tok\0", 7), 0);
	CU_ASSERT_TRUE(xs_t_pop(fx.d0, &m));
	CU_ASSERT_EQUAL(m.h.type, XS_WATCH); /* the reply, then the initial event */
	CU_ASSERT_TRUE(xs_t_pop(fx.d0, &m));
	CU_ASSERT_EQUAL(m.h.type, XS_WATCH_EVENT);
	CU_ASSERT_EQUAL(m.h.len, 7);
	CU_ASSERT_EQUAL(memcmp(m.body, "/w\0tok\0", 7), 0);
	XS_T(fx.d0, XS_WATCH, 0, "/w\0tok\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "EEXIST"));
	xs_t_drain(fx.d0);
	xs_t_send(fx.d6, XS_WRITE, 0, "/local/domain/6/x\0", 18); /* not below /w */
	xs_t_send(fx.d0, XS_WRITE, 0, "/wx\0", 4);
	xs_t_send(fx.d0, XS_WRITE, 0, "/w/a/b\0v", 8);
	CU_ASSERT_TRUE(xs_t_pop(fx.d0, &m)); /* reply to /wx */
	CU_ASSERT_TRUE(xs_t_pop(fx.d0, &m));
	CU_ASSERT_EQUAL(m.h.type, XS_WATCH_EVENT);
	CU_ASSERT_STRING_EQUAL(m.body, "/w/a/b");
	CU_ASSERT_STRING_EQUAL(m.body + 7, "tok");
	xs_t_drain(fx.d0);
	/* removal reaches watchers above and below the removed node */
	XS_T(fx.d0, XS_WATCH, 0, "/w/a/b\0deep\0", &m);
	xs_t_drain(fx.d0);
	xs_t_send(fx.d0, XS_RM, 0, "/w/a\0", 5);
	CU_ASSERT_TRUE(xs_t_pop(fx.d0, &m)); /* events come first: queued during the request */
	CU_ASSERT_EQUAL(m.h.type, XS_WATCH_EVENT);
	CU_ASSERT_STRING_EQUAL(m.body, "/w/a/b");
	CU_ASSERT_STRING_EQUAL(m.body + 7, "deep");
	CU_ASSERT_TRUE(xs_t_pop(fx.d0, &m));
	CU_ASSERT_STRING_EQUAL(m.body, "/w/a");
	CU_ASSERT_TRUE(xs_t_pop(fx.d0, &m));
	CU_ASSERT_EQUAL(m.h.type, XS_RM);
	CU_ASSERT_FALSE(xs_t_pop(fx.d0, &m));
	/* relative watches report relative paths; no events for what one cannot read */
	XS_T(fx.d5, XS_WATCH, 0, "q\0rel\0", &m);
	XS_T(fx.d6, XS_WATCH, 0, "/local/domain/5\0spy\0", &m);
	xs_t_drain(fx.d5);
	xs_t_drain(fx.d6);
	XS_T(fx.d0, XS_WRITE, 0, "/local/domain/5/q/secret\0", &m);
	CU_ASSERT_TRUE(xs_t_pop(fx.d5, &m));
	CU_ASSERT_STRING_EQUAL(m.body, "q/secret");
	CU_ASSERT_STRING_EQUAL(m.body + 9, "rel");
	CU_ASSERT_FALSE(xs_t_pop(fx.d6, &m));
	/* transaction: events only at commit */
	XS_T(fx.d0, XS_TRANSACTION_START, 0, "\0", &m);
	{
		uint32_t tx = (uint32_t)atoi(m.body);
		XS_T(fx.d0, XS_WRITE, tx, "/w/t\0", &m);
		xs_t_drain(fx.d0);
		xs_t_send(fx.d0, XS_TRANSACTION_END, tx, "T\0", 2);
		CU_ASSERT_TRUE(xs_t_pop(fx.d0, &m));
		CU_ASSERT_EQUAL(m.h.type, XS_WATCH_EVENT);
		CU_ASSERT_STRING_EQUAL(m.body, "/w/t");
	}
	/* special watches */
	XS_T(fx.d0, XS_WATCH, 0, "@introduceDomain\0i\0", &m);
	XS_T(fx.d0, XS_WATCH, 0, "@releaseDomain\0r\0", &m);
	XS_T(fx.d5, XS_WATCH, 0, "@releaseDomain\0r5\0", &m);
	xs_t_drain(fx.d0);
	xs_t_drain(fx.d5);
	xs_t_send(fx.d0, XS_INTRODUCE, 0,
		  "12\0"
		  "4660\0"
		  "3\0",
		  10);
	CU_ASSERT_TRUE(xs_t_pop(fx.d0, &m));
	CU_ASSERT_EQUAL(m.h.type, XS_WATCH_EVENT);
	CU_ASSERT_STRING_EQUAL(m.body, "@introduceDomain");
	CU_ASSERT_TRUE(xs_t_pop(fx.d0, &m));
	CU_ASSERT_STRING_EQUAL(m.body, "OK");
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_IS_DOMAIN_INTRODUCED, 0, "12\0", &m), XS_IS_DOMAIN_INTRODUCED);
	CU_ASSERT_STRING_EQUAL(m.body, "T");
	xs_t_drain(fx.d0);
	xs_t_send(fx.d0, XS_RELEASE, 0, "12\0", 3);
	CU_ASSERT_TRUE(xs_t_pop(fx.d0, &m));
	CU_ASSERT_STRING_EQUAL(m.body, "@releaseDomain");
	CU_ASSERT_FALSE(xs_t_pop(fx.d5, &m)); /* guests need read permission on the special node */
	XS_T(fx.d0, XS_IS_DOMAIN_INTRODUCED, 0, "12\0", &m);
	CU_ASSERT_STRING_EQUAL(m.body, "F");
	XS_T(fx.d0, XS_RELEASE, 0, "12\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOENT"));
	CU_ASSERT_EQUAL(XS_T(fx.d0, XS_UNWATCH, 0, "/w\0tok\0", &m), XS_UNWATCH);
	XS_T(fx.d0, XS_UNWATCH, 0, "/w\0tok\0", &m);
	CU_ASSERT_TRUE(xs_t_is_err(&m, "ENOENT"));
}

int main(void)
{
	static const struct tu_test tests[] = {
	    {"path canonicalisation and validity", test_path},
	    {"permission parsing and rules", test_perm_rules},
	    {"read/write/mkdir/rm/directory", test_basic_ops},
	    {"permissions between domains", test_permissions},
	    {"quota accounting", test_quota},
	    {"outstanding request limit", test_outstanding},
	    {"transactions and conflicts", test_transactions},
	    {"watch firing", test_watches},
	};

	return tu_run_suite("xs_core", xs_setup, xs_teardown, tests, TU_COUNT(tests));
}
