/* `domctl top`'s data: a sample is LIST plus DOMSTATS per domain; a row's rates are counter
 * deltas over time deltas, matched by domain id and creation time so a re-created domain with a
 * reused id never yields a negative rate. Columns are one table: header, width, key, order. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "top.h"

static uint64_t top_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void top_sample_free(struct top_sample *s)
{
	free(s->d);
	s->d = NULL;
	s->n = 0;
}

int top_sample_take(struct ctl_conn *conn, struct top_sample *s)
{
	struct lamina_ctl_dominfo *info = NULL;
	size_t n = 0, kept = 0;
	int err;

	memset(s, 0, sizeof(*s));
	err = ctl_list(conn, &info, &n);
	if (err)
		return err;
	s->t_ns = top_now_ns();
	s->d = calloc(n ? n : 1, sizeof(*s->d));
	if (!s->d) {
		free(info);
		return -ENOMEM;
	}
	s->stats_supported = 1;
	for (size_t i = 0; i < n; i++) {
		struct top_dom *d = &s->d[kept];
		struct lamina_ctl_domref ref = {.domid = info[i].domid};

		d->info = info[i];
		if (s->stats_supported) {
			err = ctl_domstats(conn, &ref, &d->st);
			if (err == -ESRCH || err == -ENOENT)
				continue; /* gone since LIST: not an error */
			if (err == -EOPNOTSUPP || err == -ENOSYS)
				s->stats_supported = 0;
			else if (err)
				goto out_fail;
			else if (d->st.domid != info[i].domid)
				continue; /* an answer about another domain: treat as gone */
			else
				d->have_stats = 1;
		}
		kept++;
	}
	s->n = kept;
	free(info);
	return 0;

out_fail:
	free(info);
	top_sample_free(s);
	return err;
}

static const struct top_dom *top_find(const struct top_sample *s, const struct top_dom *d)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		if (s->d[i].info.domid == d->info.domid && s->d[i].info.create_ns == d->info.create_ns)
			return &s->d[i];
	return NULL;
}

static double top_rate(uint64_t now, uint64_t then, double secs)
{
	return now >= then && secs > 0 ? (double)(now - then) / secs : 0.0;
}

int top_rows(const struct top_sample *prev, const struct top_sample *cur, struct top_row **rows, size_t *n)
{
	struct top_row *r = calloc(cur->n ? cur->n : 1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < cur->n; i++) {
		const struct top_dom *d = &cur->d[i], *p = top_find(prev, d);
		/* A new domain: its counters started at zero when it was created. */
		struct top_dom zero = {.info = {.create_ns = d->info.create_ns}};
		uint64_t t0 = p ? prev->t_ns : d->info.create_ns;
		double secs = cur->t_ns > t0 ? (double)(cur->t_ns - t0) / 1e9 : 0.0;
		uint64_t cpu_now = d->have_stats ? d->st.cpu_time_ns : d->info.cpu_time_ns;
		uint64_t cpu_then;

		if (!p)
			p = &zero;
		cpu_then = p->have_stats && d->have_stats ? p->st.cpu_time_ns : p->info.cpu_time_ns;
		r[i].domid = d->info.domid;
		memcpy(r[i].name, d->info.name, sizeof(r[i].name));
		r[i].name[sizeof(r[i].name) - 1] = '\0';
		r[i].state = d->info.state;
		r[i].vcpus = d->info.vcpus;
		r[i].mem_kib = d->info.memory_kib;
		r[i].cpu_pct = top_rate(cpu_now, cpu_then, secs) / 1e7; /* ns per s -> percent */
		r[i].exits = top_rate(d->info.exits, p->info.exits, secs);
		r[i].hcalls = top_rate(d->info.hypercalls, p->info.hypercalls, secs);
		r[i].console = d->have_stats ? d->st.console_bytes : d->info.console_bytes;
		r[i].have_stats = d->have_stats;
		if (d->have_stats && (p->have_stats || p == &zero)) {
			r[i].ev_sent = top_rate(d->st.events_sent, p->st.events_sent, secs);
			r[i].ev_recv = top_rate(d->st.events_received, p->st.events_received, secs);
		}
	}
	*rows = r;
	*n = cur->n;
	return 0;
}

static int top_cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int top_cmp_dbl(double a, double b)
{
	return a < b ? -1 : a > b;
}

static int top_cmp_name(const struct top_row *a, const struct top_row *b)
{
	return strcmp(a->name, b->name);
}
static int top_cmp_id(const struct top_row *a, const struct top_row *b)
{
	return top_cmp_u64(a->domid, b->domid);
}
static int top_cmp_state(const struct top_row *a, const struct top_row *b)
{
	return top_cmp_u64(a->state, b->state);
}
static int top_cmp_vcpus(const struct top_row *a, const struct top_row *b)
{
	return -top_cmp_u64(a->vcpus, b->vcpus);
}
static int top_cmp_cpu(const struct top_row *a, const struct top_row *b)
{
	return -top_cmp_dbl(a->cpu_pct, b->cpu_pct);
}
static int top_cmp_mem(const struct top_row *a, const struct top_row *b)
{
	return -top_cmp_u64(a->mem_kib, b->mem_kib);
}
static int top_cmp_evs(const struct top_row *a, const struct top_row *b)
{
	return -top_cmp_dbl(a->ev_sent, b->ev_sent);
}
static int top_cmp_evr(const struct top_row *a, const struct top_row *b)
{
	return -top_cmp_dbl(a->ev_recv, b->ev_recv);
}
static int top_cmp_exits(const struct top_row *a, const struct top_row *b)
{
	return -top_cmp_dbl(a->exits, b->exits);
}
static int top_cmp_hc(const struct top_row *a, const struct top_row *b)
{
	return -top_cmp_dbl(a->hcalls, b->hcalls);
}
static int top_cmp_con(const struct top_row *a, const struct top_row *b)
{
	return -top_cmp_u64(a->console, b->console);
}

const struct top_column top_columns[TOP_NCOLS] = {
    [TOP_NAME] = {'n', "NAME", 16, 1, top_cmp_name},
    [TOP_ID] = {'i', "ID", 5, 0, top_cmp_id},
    [TOP_STATE] = {'s', "STATE", 8, 1, top_cmp_state},
    [TOP_VCPUS] = {'v', "VCPUS", 5, 0, top_cmp_vcpus},
    [TOP_CPU] = {'c', "CPU(%)", 7, 0, top_cmp_cpu},
    [TOP_MEM] = {'m', "MEM(KiB)", 10, 0, top_cmp_mem},
    [TOP_EVSENT] = {'e', "EVSENT/s", 9, 0, top_cmp_evs},
    [TOP_EVRECV] = {'r', "EVRECV/s", 9, 0, top_cmp_evr},
    [TOP_EXITS] = {'x', "EXITS/s", 9, 0, top_cmp_exits},
    [TOP_HCALLS] = {'h', "HCALLS/s", 9, 0, top_cmp_hc},
    [TOP_CONSOLE] = {'o', "CONSOLE(B)", 11, 0, top_cmp_con},
};

int top_col_by_key(int key)
{
	if (key < 0 || key > 127)
		return -1; /* curses function keys, KEY_RESIZE, ERR */
	for (int i = 0; i < TOP_NCOLS; i++)
		if (top_columns[i].key == tolower(key))
			return i;
	return -1;
}

void top_sort(struct top_row *rows, size_t n, enum top_col col, int reverse)
{
	int (*cmp)(const struct top_row *, const struct top_row *) = top_columns[col].cmp;

	/* Insertion sort: stable, and a view has at most a few thousand rows. */
	for (size_t i = 1; i < n; i++) {
		struct top_row t = rows[i];
		size_t j = i;

		while (j > 0) {
			int c = cmp(&rows[j - 1], &t);

			if (c == 0)
				c = top_cmp_id(&rows[j - 1], &t);
			if (reverse ? c >= 0 : c <= 0)
				break;
			rows[j] = rows[j - 1];
			j--;
		}
		rows[j] = t;
	}
}

static size_t top_put(char *buf, size_t len, size_t at, int col, const char *text)
{
	const struct top_column *c = &top_columns[col];
	int n = snprintf(buf + at, at < len ? len - at : 0, c->left ? "%s%-*.*s" : "%s%*.*s", at ? " " : "",
			 c->width, c->left ? c->width : 32, text);

	return n > 0 ? at + (size_t)n : at;
}

void top_format_header(char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	for (int i = 0; i < TOP_NCOLS && at < len; i++)
		at = top_put(buf, len, at, i, top_columns[i].header);
}

static const char *top_state(uint32_t state)
{
	return ctl_state_name(state);
}

void top_format_row(const struct top_row *r, char *buf, size_t len)
{
	char f[TOP_NCOLS][LAMINA_NAME_MAX];
	size_t at = 0;

	snprintf(f[TOP_NAME], sizeof(f[0]), "%s", r->name);
	snprintf(f[TOP_ID], sizeof(f[0]), "%u", r->domid);
	snprintf(f[TOP_STATE], sizeof(f[0]), "%s", top_state(r->state));
	snprintf(f[TOP_VCPUS], sizeof(f[0]), "%u", r->vcpus);
	snprintf(f[TOP_CPU], sizeof(f[0]), "%.1f", r->cpu_pct);
	snprintf(f[TOP_MEM], sizeof(f[0]), "%llu", (unsigned long long)r->mem_kib);
	if (r->have_stats) {
		snprintf(f[TOP_EVSENT], sizeof(f[0]), "%.0f", r->ev_sent);
		snprintf(f[TOP_EVRECV], sizeof(f[0]), "%.0f", r->ev_recv);
	} else {
		snprintf(f[TOP_EVSENT], sizeof(f[0]), "-");
		snprintf(f[TOP_EVRECV], sizeof(f[0]), "-");
	}
	snprintf(f[TOP_EXITS], sizeof(f[0]), "%.0f", r->exits);
	snprintf(f[TOP_HCALLS], sizeof(f[0]), "%.0f", r->hcalls);
	snprintf(f[TOP_CONSOLE], sizeof(f[0]), "%llu", (unsigned long long)r->console);
	buf[0] = '\0';
	for (int i = 0; i < TOP_NCOLS && at < len; i++)
		at = top_put(buf, len, at, i, f[i]);
}
