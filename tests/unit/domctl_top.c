/* Unit tests of `domctl top`'s model: rates from counter deltas (new domains over their
 * lifetime, a re-created domain with a reused id never negative), sorting by every column key,
 * the text shape, and sampling against a fake server whose domains vanish between requests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>

#include "domctl_test.h"
#include "test_util.h"
#include "top.h"

static struct top_dom dom(uint32_t id, const char *name, uint64_t create, uint64_t cpu, uint64_t exits,
			  uint64_t sent)
{
	struct top_dom d = {.have_stats = 1};

	d.info.domid = id;
	snprintf(d.info.name, sizeof(d.info.name), "%s", name);
	d.info.create_ns = create;
	d.info.cpu_time_ns = cpu;
	d.info.exits = exits;
	d.info.hypercalls = exits / 2;
	d.info.memory_kib = 1024 * id;
	d.info.vcpus = 1;
	d.st.domid = id;
	d.st.cpu_time_ns = cpu;
	d.st.events_sent = sent;
	d.st.events_received = sent * 2;
	d.st.console_bytes = 100 + id;
	return d;
}

static void test_top_rates(void)
{
	struct top_dom p[2] = {dom(1, "a", 0, 0, 0, 0), dom(2, "b", 0, 0, 0, 0)};
	/* one second later: a used half a CPU; b was destroyed and re-created with id 2 */
	struct top_dom c[3] = {dom(1, "a", 0, 500000000, 1000, 50), dom(2, "b", 1500000000, 100000000, 10, 4),
			       dom(3, "c", 1000000000, 250000000, 100, 0)};
	struct top_sample prev = {.t_ns = 1000000000, .d = p, .n = 2, .stats_supported = 1};
	struct top_sample cur = {.t_ns = 2000000000, .d = c, .n = 3, .stats_supported = 1};
	struct top_row *rows;
	size_t n;

	CU_ASSERT_EQUAL_FATAL(top_rows(&prev, &cur, &rows, &n), 0);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_DOUBLE_EQUAL(rows[0].cpu_pct, 50.0, 0.01);
	CU_ASSERT_DOUBLE_EQUAL(rows[0].exits, 1000.0, 0.01);
	CU_ASSERT_DOUBLE_EQUAL(rows[0].hcalls, 500.0, 0.01);
	CU_ASSERT_DOUBLE_EQUAL(rows[0].ev_sent, 50.0, 0.01);
	CU_ASSERT_DOUBLE_EQUAL(rows[0].ev_recv, 100.0, 0.01);
	/* re-created b: rates over its 0.5 s of life, not against the old b */
	CU_ASSERT_DOUBLE_EQUAL(rows[1].cpu_pct, 20.0, 0.01);
	CU_ASSERT_DOUBLE_EQUAL(rows[1].ev_sent, 8.0, 0.01);
	/* new c: over its 1 s of life */
	CU_ASSERT_DOUBLE_EQUAL(rows[2].cpu_pct, 25.0, 0.01);
	CU_ASSERT_EQUAL(rows[2].console, 103);
	free(rows);
	/* counters that went backwards (never legitimately) give 0, not a huge rate */
	c[0].info.exits = 0;
	CU_ASSERT_EQUAL_FATAL(top_rows(&prev, &cur, &rows, &n), 0);
	CU_ASSERT_DOUBLE_EQUAL(rows[0].exits, 0.0, 0.01);
	free(rows);
	/* no previous sample at all */
	CU_ASSERT_EQUAL_FATAL(top_rows(NULL, &cur, &rows, &n), 0);
	CU_ASSERT_EQUAL(n, 3);
	free(rows);
}

static void test_top_sort(void)
{
	struct top_row r[3] = {
	    {.domid = 2, .name = "mid", .cpu_pct = 5, .mem_kib = 300, .ev_sent = 1, .console = 9},
	    {.domid = 1, .name = "zed", .cpu_pct = 50, .mem_kib = 100, .ev_sent = 7, .console = 1},
	    {.domid = 3, .name = "alp", .cpu_pct = 0.5, .mem_kib = 200, .ev_sent = 3, .console = 5},
	};
	char line[512];

	top_sort(r, 3, TOP_CPU, 0);
	CU_ASSERT_EQUAL(r[0].domid, 1);
	CU_ASSERT_EQUAL(r[2].domid, 3);
	top_sort(r, 3, TOP_CPU, 1);
	CU_ASSERT_EQUAL(r[0].domid, 3);
	top_sort(r, 3, TOP_NAME, 0);
	CU_ASSERT_STRING_EQUAL(r[0].name, "alp");
	top_sort(r, 3, TOP_ID, 0);
	CU_ASSERT_EQUAL(r[0].domid, 1);
	top_sort(r, 3, TOP_MEM, 0);
	CU_ASSERT_EQUAL(r[0].mem_kib, 300);
	top_sort(r, 3, TOP_EVSENT, 0);
	CU_ASSERT_EQUAL(r[0].domid, 1);
	top_sort(r, 3, TOP_CONSOLE, 0);
	CU_ASSERT_EQUAL(r[0].domid, 2);
	/* every column has a distinct key, found in either case */
	for (int i = 0; i < TOP_NCOLS; i++) {
		CU_ASSERT_EQUAL(top_col_by_key(top_columns[i].key), i);
		CU_ASSERT_EQUAL(top_col_by_key(top_columns[i].key - 'a' + 'A'), i);
	}
	CU_ASSERT_EQUAL(top_col_by_key('q'), -1);
	CU_ASSERT_EQUAL(top_col_by_key('d'), -1);
	CU_ASSERT_EQUAL(top_col_by_key(0632), -1); /* KEY_RESIZE */
	CU_ASSERT_EQUAL(top_col_by_key(-1), -1);  /* ERR */
	top_format_header(line, sizeof(line));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "NAME"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "EVSENT/s"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "CONSOLE(B)"));
	/* rows line up with the header: same length when the values fit their columns */
	{
		size_t hl = strlen(line);

		top_format_row(&r[0], line, sizeof(line));
		CU_ASSERT_EQUAL(strlen(line), hl);
	}
	r[0].have_stats = 0;
	top_format_row(&r[0], line, sizeof(line));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, " - "));
}

static void test_top_sample(void)
{
	struct lamina_ctl_domstats st1 = {.domid = 1, .events_sent = 4}, st3 = {.domid = 3};
	struct domctl_fake f;
	struct top_sample s;

	/* domain 2 vanishes between LIST and its DOMSTATS: left out, not an error */
	domctl_fake_open(&f);
	domctl_fake_list_page(&f, 1, 3, 3, 0, 1);
	domctl_fake_reply(&f, LAMINA_CTL_DOMSTATS, 2, 0, &st1, sizeof(st1), NULL, 0);
	domctl_fake_reply(&f, LAMINA_CTL_DOMSTATS, 3, -ESRCH, NULL, 0, NULL, 0);
	domctl_fake_reply(&f, LAMINA_CTL_DOMSTATS, 4, 0, &st3, sizeof(st3), NULL, 0);
	CU_ASSERT_EQUAL_FATAL(top_sample_take(&f.conn, &s), 0);
	CU_ASSERT_EQUAL(s.n, 2);
	CU_ASSERT_EQUAL(s.d[0].info.domid, 1);
	CU_ASSERT_EQUAL(s.d[0].st.events_sent, 4);
	CU_ASSERT_EQUAL(s.d[1].info.domid, 3);
	CU_ASSERT(s.stats_supported);
	top_sample_free(&s);
	domctl_fake_close(&f);
	/* a server without DOMSTATS: asked once, rows without event counts */
	domctl_fake_open(&f);
	domctl_fake_list_page(&f, 1, 2, 2, 0, 1);
	domctl_fake_reply(&f, LAMINA_CTL_DOMSTATS, 2, -EOPNOTSUPP, NULL, 0, NULL, 0);
	CU_ASSERT_EQUAL_FATAL(top_sample_take(&f.conn, &s), 0);
	CU_ASSERT_EQUAL(s.n, 2);
	CU_ASSERT_FALSE(s.stats_supported);
	CU_ASSERT_FALSE(s.d[0].have_stats);
	top_sample_free(&s);
	/* any other failure fails the sample */
	domctl_fake_list_page(&f, 3, 1, 1, 0, 1);
	domctl_fake_reply(&f, LAMINA_CTL_DOMSTATS, 4, -EPERM, NULL, 0, NULL, 0);
	CU_ASSERT_EQUAL(top_sample_take(&f.conn, &s), -EPERM);
	domctl_fake_close(&f);
}

int main(void)
{
	static const struct tu_test tests[] = {
	    {"rates between samples", test_top_rates},
	    {"sorting, keys and text", test_top_sort},
	    {"sampling with vanishing domains", test_top_sample},
	};

	return tu_run_suite("domctl top", NULL, NULL, tests, TU_COUNT(tests));
}
