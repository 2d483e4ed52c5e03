/* `domctl top`: the live per-domain view in the manner of xentop. Interactive with ncurses (a
 * column's letter sorts by it, again reverses; d sets the interval; q quits), or --batch: plain
 * text, one block per interval, --iterations N of them. */
#include <curses.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domctl.h"
#include "top.h"

#define TOP_DELAY_DEFAULT 2.0
#define TOP_DELAY_MIN 0.1
#define TOP_DELAY_MAX 3600.0

struct top_view {
	struct ctl_conn conn;
	struct top_sample prev, cur;
	double delay;
	enum top_col sort;
	int reverse;
};

/* Take a sample; the previous becomes the base of the rates. */
static int top_refresh(struct top_view *v)
{
	struct top_sample s;
	int err = top_sample_take(&v->conn, &s);

	if (err)
		return err;
	top_sample_free(&v->prev);
	v->prev = v->cur;
	v->cur = s;
	return 0;
}

static int top_print_batch(struct top_view *v, int iteration, int total)
{
	struct top_row *rows;
	char line[512];
	size_t n;

	if (top_rows(v->prev.d ? &v->prev : NULL, &v->cur, &rows, &n))
		return -ENOMEM;
	top_sort(rows, n, v->sort, v->reverse);
	printf("domctl top: iteration %d of %d, %zu domain%s, interval %.2f s%s\n", iteration, total, n,
	       n == 1 ? "" : "s", v->delay, v->cur.stats_supported ? "" : " (no DOMSTATS: events not shown)");
	top_format_header(line, sizeof(line));
	printf("%s\n", line);
	for (size_t i = 0; i < n; i++) {
		top_format_row(&rows[i], line, sizeof(line));
		printf("%s\n", line);
	}
	fflush(stdout);
	free(rows);
	return 0;
}

static int top_batch(struct top_view *v, int iterations)
{
	int err = top_refresh(v);

	for (int i = 1; !err && i <= iterations; i++) {
		domctl_sleep_ms((int)(v->delay * 1000));
		err = top_refresh(v);
		if (!err)
			err = top_print_batch(v, i, iterations);
	}
	if (err) {
		domctl_err("top: %s", v->conn.err[0] ? v->conn.err : strerror(-err));
		return DOMCTL_EXIT_ERROR;
	}
	return DOMCTL_EXIT_OK;
}

static void top_draw(struct top_view *v, const char *status)
{
	struct top_row *rows;
	char line[512];
	size_t n;
	int row = 3;

	erase();
	if (top_rows(v->prev.d ? &v->prev : NULL, &v->cur, &rows, &n))
		return;
	top_sort(rows, n, v->sort, v->reverse);
	mvprintw(0, 0, "domctl top - %zu domain%s, interval %.2f s, sorted by %s%s%s", n, n == 1 ? "" : "s",
		 v->delay, top_columns[v->sort].header, v->reverse ? " (reversed)" : "",
		 v->cur.stats_supported ? "" : "  [no DOMSTATS: events not shown]");
	mvprintw(1, 0, "keys: n i s v c m e r x h o sort by column (again: reverse)  d interval  q quit");
	top_format_header(line, sizeof(line));
	attron(A_REVERSE);
	mvprintw(2, 0, "%-*s", COLS > 0 ? COLS : 80, line);
	attroff(A_REVERSE);
	for (size_t i = 0; i < n && row < LINES - 1; i++, row++) {
		top_format_row(&rows[i], line, sizeof(line));
		mvprintw(row, 0, "%.*s", COLS > 0 ? COLS : 80, line);
	}
	if (status && *status)
		mvprintw(LINES - 1, 0, "%s", status);
	refresh();
	free(rows);
}

/* `d`: read a new interval in seconds on the last line. */
static void top_ask_delay(struct top_view *v, char *status, size_t len)
{
	char buf[32] = "";
	double d;
	char *end;

	mvprintw(LINES - 1, 0, "interval in seconds (now %.2f): ", v->delay);
	clrtoeol();
	echo();
	timeout(-1);
	getnstr(buf, sizeof(buf) - 1);
	noecho();
	d = strtod(buf, &end);
	if (end != buf && isfinite(d) && d >= TOP_DELAY_MIN && d <= TOP_DELAY_MAX) {
		v->delay = d;
		snprintf(status, len, "interval set to %.2f s", d);
	} else {
		snprintf(status, len, "interval unchanged: give %.1f to %.0f seconds", TOP_DELAY_MIN,
			 TOP_DELAY_MAX);
	}
}

static int top_interactive(struct top_view *v)
{
	char status[128] = "";
	int err = top_refresh(v), key;

	if (err)
		goto out_err;
	initscr();
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	for (;;) {
		top_draw(v, status);
		timeout((int)(v->delay * 1000));
		key = getch();
		status[0] = '\0';
		if (key == 'q' || key == 'Q')
			break;
		if (key == 'd' || key == 'D') {
			top_ask_delay(v, status, sizeof(status));
		} else if (key != ERR && top_col_by_key(key) >= 0) {
			enum top_col c = (enum top_col)top_col_by_key(key);

			v->reverse = c == v->sort ? !v->reverse : 0;
			v->sort = c;
			continue; /* redraw at once, no new sample */
		}
		err = top_refresh(v);
		if (err)
			break;
	}
	endwin();
	if (!err)
		return DOMCTL_EXIT_OK;
out_err:
	domctl_err("top: %s", v->conn.err[0] ? v->conn.err : strerror(-err));
	return DOMCTL_EXIT_ERROR;
}

int domctl_cmd_top(struct domctl_ctx *ctx, int argc, char **argv)
{
	static const char *const flags[] = {"--batch", NULL};
	static const char *const vflags[] = {"--delay", "--iterations", "--sort", NULL};
	const char *values[3] = {NULL, NULL, NULL}, *pos[1];
	struct top_view v = {.delay = TOP_DELAY_DEFAULT, .sort = TOP_CPU};
	int set[1] = {0}, npos, iterations = 1, rc;
	char *end;

	if (domctl_args(ctx, argc, argv, flags, set, vflags, values, pos, 0, &npos))
		return DOMCTL_EXIT_USAGE;
	if (values[0]) {
		v.delay = strtod(values[0], &end);
		if (*end || end == values[0] || !isfinite(v.delay) || v.delay < TOP_DELAY_MIN ||
		    v.delay > TOP_DELAY_MAX) {
			domctl_err("top: --delay takes %.1f to %.0f seconds", TOP_DELAY_MIN, TOP_DELAY_MAX);
			return DOMCTL_EXIT_USAGE;
		}
	}
	if (values[1]) {
		long n = strtol(values[1], &end, 10);

		if (*end || end == values[1] || n < 1 || n > 1000000) {
			domctl_err("top: --iterations takes a count from 1");
			return DOMCTL_EXIT_USAGE;
		}
		iterations = (int)n;
	}
	if (values[2]) {
		if (strlen(values[2]) != 1 || top_col_by_key(values[2][0]) < 0) {
			domctl_err("top: --sort takes one column letter (n i s v c m e r x h o)");
			return DOMCTL_EXIT_USAGE;
		}
		v.sort = (enum top_col)top_col_by_key(values[2][0]);
	}
	if (!set[0] && (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO))) {
		domctl_err("top: not a terminal; use --batch");
		return DOMCTL_EXIT_USAGE;
	}
	if (domctl_connect(ctx, &v.conn))
		return DOMCTL_EXIT_ERROR;
	rc = set[0] ? top_batch(&v, iterations) : top_interactive(&v);
	top_sample_free(&v.prev);
	top_sample_free(&v.cur);
	ctl_close(&v.conn);
	return rc;
}
