/* The model behind `domctl top`: samples of every domain's counters (LIST, then DOMSTATS per
 * domain), rates between two samples, the table of columns with their sort keys, and sorting. */
#ifndef LAMINA_TOP_H
#define LAMINA_TOP_H

#include <stddef.h>
#include <stdint.h>

#include "ctl_client.h"

struct top_dom {
	struct lamina_ctl_dominfo info;
	struct lamina_ctl_domstats st;
	int have_stats;
};

struct top_sample {
	uint64_t t_ns; /* CLOCK_MONOTONIC when taken */
	struct top_dom *d;
	size_t n;
	int stats_supported; /* lamina-hv answers DOMSTATS */
};

/* One line of the view: rates per second over the interval between two samples (or over the
 * domain's lifetime when it is new). */
struct top_row {
	uint32_t domid;
	char name[LAMINA_NAME_MAX];
	uint32_t state;
	uint32_t vcpus;
	uint64_t mem_kib;
	double cpu_pct, ev_sent, ev_recv, exits, hcalls;
	uint64_t console;
	int have_stats;
};

enum top_col {
	TOP_NAME,
	TOP_ID,
	TOP_STATE,
	TOP_VCPUS,
	TOP_CPU,
	TOP_MEM,
	TOP_EVSENT,
	TOP_EVRECV,
	TOP_EXITS,
	TOP_HCALLS,
	TOP_CONSOLE,
	TOP_NCOLS,
};

struct top_column {
	char key; /* the letter that sorts by this column */
	const char *header;
	int width;
	int left; /* left-aligned */
	int (*cmp)(const struct top_row *a, const struct top_row *b);
};
extern const struct top_column top_columns[TOP_NCOLS];

/* LIST, then DOMSTATS for each domain. A domain that vanishes in between is left out; a server
 * without DOMSTATS gives rows without event counts. 0 or -errno (conn->err says why). */
int top_sample_take(struct ctl_conn *conn, struct top_sample *s);
void top_sample_free(struct top_sample *s);
/* Rows for cur, rates against prev (may be NULL). *rows is malloc'd. */
int top_rows(const struct top_sample *prev, const struct top_sample *cur, struct top_row **rows, size_t *n);
/* Sort by a column; numbers sort largest first, names and ids smallest first; reverse flips. */
void top_sort(struct top_row *rows, size_t n, enum top_col col, int reverse);
/* The column a key (either case) sorts by, or -1. */
int top_col_by_key(int key);
/* Text of the header and of one row, the columns separated by one space. */
void top_format_header(char *buf, size_t len);
void top_format_row(const struct top_row *r, char *buf, size_t len);

#endif
