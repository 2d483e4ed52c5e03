/* ev-dom0: the Domain-0 side of the issue-4 end-to-end tests and of `./run bench events`, built on
 * libdomctl. Sub-commands (one table):
 *   probe                      exit 0 if lamina-hv serves the issue-4 ops, 77 (with why) if not
 *   pingpong DOMID PORT N      bind the guest's port (app=dom0-pingpong), N notify->answer round
 *                              trips timed with eventfds; prints RESULT lines
 *   flood DOMID PORT SECONDS   notify as fast as possible; prints the rate written and, from
 *                              DOMSTATS, the rate the guest received
 *   scribble DOMID MODE        map the domain's console page (MAP_SPECIAL) and corrupt its indexes:
 *                              MODE beyond | huge | backwards
 * Exit status: 0 ok, 1 failure, 2 usage, 77 the hypervisor lacks an op. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xen/xen.h>
#include <xen/io/console.h>

#include "ctl_client.h"

#define EV_WAIT_MS 5000

static uint64_t ev_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int ev_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int ev_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* An op is there when the answer is anything but "unknown op". */
static int ev_probe(struct ctl_conn *conn, int argc, char **argv)
{
	struct lamina_ctl_domref ref = {.domid = 0x7ffffff0u};
	struct lamina_ctl_domstats st;
	struct ctl_special sp = CTL_SPECIAL_INIT;
	struct ctl_evtchn ch = CTL_EVTCHN_INIT;
	int missing = 0, r;

	r = ctl_domstats(conn, &ref, &st);
	if (r == -EOPNOTSUPP || r == -ENOSYS)
		missing |= printf("lamina-hv does not serve DOMSTATS\n") > 0;
	r = ctl_map_special(conn, ref.domid, LAMINA_SPECIAL_CONSOLE, &sp);
	if (r == 0)
		ctl_unmap_special(&sp);
	if (r == -EOPNOTSUPP || r == -ENOSYS)
		missing |= printf("lamina-hv does not serve MAP_SPECIAL\n") > 0;
	r = ctl_evtchn_bind_interdomain(conn, ref.domid, 1, &ch);
	if (r == 0)
		ctl_evtchn_close(conn, &ch);
	if (r == -EOPNOTSUPP || r == -ENOSYS)
		missing |= printf("lamina-hv does not serve EVTCHN_BIND_INTERDOMAIN\n") > 0;
	r = ctl_subscribe(conn);
	if (r == -EOPNOTSUPP || r == -ENOSYS)
		missing |= printf("lamina-hv does not serve SUBSCRIBE\n") > 0;
	return missing ? 77 : 0;
}

static int ev_bind(struct ctl_conn *conn, char **argv, struct ctl_evtchn *ch, uint32_t *dom)
{
	uint32_t port;
	int r;

	if (ev_u32(argv[1], dom) || ev_u32(argv[2], &port))
		return fprintf(stderr, "ev-dom0: bad domain or port\n"), -EINVAL;
	r = ctl_evtchn_bind_interdomain(conn, *dom, port, ch);
	if (r) {
		fprintf(stderr, "ev-dom0: bind to domain %u port %u: %s\n", *dom, port, conn->err);
		return r;
	}
	/* As in Xen, binding leaves the binder's end pending (no event is lost to the bind race):
	 * clear it, or it would pass for the first answer. */
	ctl_evtchn_ack(ch, NULL);
	return 0;
}

static int ev_pingpong(struct ctl_conn *conn, int argc, char **argv)
{
	struct ctl_evtchn ch = CTL_EVTCHN_INIT;
	uint64_t *rtt, sum = 0;
	uint32_t dom, n;
	int r, rc = 1;

	if (argc != 4 || ev_u32(argv[3], &n) || n == 0 || n > 1000000)
		return 2;
	if (ev_bind(conn, argv, &ch, &dom))
		return 1;
	rtt = calloc(n, sizeof(*rtt));
	if (!rtt)
		goto out_close;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t t0 = ev_now_ns();

		r = ctl_evtchn_notify(&ch);
		if (!r)
			r = ctl_evtchn_wait(&ch, EV_WAIT_MS, NULL);
		if (r) {
			fprintf(stderr, "ev-dom0: round %u of %u: %s\n", i + 1, n,
				r == -ETIMEDOUT ? "no answer within 5 s" : strerror(-r));
			goto out_free;
		}
		rtt[i] = ev_now_ns() - t0;
		sum += rtt[i];
	}
	qsort(rtt, n, sizeof(*rtt), ev_cmp);
	printf("ev-dom0: %u round trips with domain %u port %u (ours %u): min %llu ns, median %llu ns, "
	       "p90 %llu ns, max %llu ns\n",
	       n, dom, (unsigned)strtoul(argv[2], NULL, 10), ch.port, (unsigned long long)rtt[0],
	       (unsigned long long)rtt[n / 2], (unsigned long long)rtt[n * 9 / 10],
	       (unsigned long long)rtt[n - 1]);
	printf("RESULT dom0_rtt_median_ns %llu\n", (unsigned long long)rtt[n / 2]);
	printf("RESULT dom0_rtt_mean_ns %llu\n", (unsigned long long)(sum / n));
	rc = 0;
out_free:
	free(rtt);
out_close:
	ctl_evtchn_close(conn, &ch);
	return rc;
}

/* One way with batching: bursts of EV_BURST notifies, each burst followed by a blocking wait for
 * the guest's answer (so no CPU spins against the guest's). The eventfd and the pending bit
 * coalesce a burst into few deliveries. Stops after SECONDS or when the guest has answered
 * EV_FLOOD_ANSWERS times (app=dom0-pingpong stops at its rounds). */
#define EV_BURST 16
#define EV_FLOOD_ANSWERS 8000
static int ev_flood(struct ctl_conn *conn, int argc, char **argv)
{
	struct ctl_evtchn ch = CTL_EVTCHN_INIT;
	struct lamina_ctl_domstats s0, s1;
	struct lamina_ctl_domref ref;
	uint64_t sent = 0, t0, t1, answers = 0, v, limit;
	uint32_t dom, secs;
	int have_stats;

	if (argc != 4 || ev_u32(argv[3], &secs) || secs == 0 || secs > 60)
		return 2;
	if (ev_bind(conn, argv, &ch, &dom))
		return 1;
	ref = (struct lamina_ctl_domref){.domid = dom};
	have_stats = ctl_domstats(conn, &ref, &s0) == 0;
	limit = (uint64_t)secs * 1000000000ull;
	t0 = t1 = ev_now_ns();
	while (t1 - t0 < limit && answers < EV_FLOOD_ANSWERS) {
		for (int i = 0; i < EV_BURST; i++, sent++)
			if (ctl_evtchn_notify(&ch)) {
				fprintf(stderr, "ev-dom0: notify failed\n");
				ctl_evtchn_close(conn, &ch);
				return 1;
			}
		if (ctl_evtchn_wait(&ch, 1000, &v)) {
			fprintf(stderr, "ev-dom0: no answer within 1 s after %llu answers\n",
				(unsigned long long)answers);
			break;
		}
		answers += v;
		t1 = ev_now_ns();
	}
	have_stats = have_stats && ctl_domstats(conn, &ref, &s1) == 0;
	printf("ev-dom0: %llu notifies in bursts of %d, %llu answers in %.3f s\n", (unsigned long long)sent,
	       EV_BURST, (unsigned long long)answers, (double)(t1 - t0) / 1e9);
	printf("RESULT flood_notifies_per_s %.0f\n", (double)sent * 1e9 / (double)(t1 - t0));
	printf("RESULT flood_answers_per_s %.0f\n", (double)answers * 1e9 / (double)(t1 - t0));
	if (have_stats)
		printf("RESULT flood_guest_events_per_s %.0f\n",
		       (double)(s1.events_received - s0.events_received) * 1e9 / (double)(t1 - t0));
	ctl_evtchn_close(conn, &ch);
	return answers ? 0 : 1;
}

/* Corrupt a running guest's console indexes the way a hostile guest would. */
static int ev_scribble(struct ctl_conn *conn, int argc, char **argv)
{
	struct ctl_special sp = CTL_SPECIAL_INIT;
	struct xencons_interface *ring;
	uint32_t dom, cons;
	int r;

	if (argc != 3 || ev_u32(argv[1], &dom))
		return 2;
	r = ctl_map_special(conn, dom, LAMINA_SPECIAL_CONSOLE, &sp);
	if (r) {
		fprintf(stderr, "ev-dom0: MAP_SPECIAL of domain %u: %s\n", dom, conn->err);
		return r == -EOPNOTSUPP ? 77 : 1;
	}
	if (sp.map.size < sizeof(*ring)) {
		fprintf(stderr, "ev-dom0: console page too small\n");
		ctl_unmap_special(&sp);
		return 1;
	}
	ring = sp.addr;
	cons = __atomic_load_n(&ring->out_cons, __ATOMIC_ACQUIRE);
	if (!strcmp(argv[2], "beyond"))
		__atomic_store_n(&ring->out_prod, cons + 100000u, __ATOMIC_RELEASE);
	else if (!strcmp(argv[2], "huge"))
		__atomic_store_n(&ring->out_prod, cons + 0x80000000u, __ATOMIC_RELEASE);
	else if (!strcmp(argv[2], "backwards"))
		__atomic_store_n(&ring->out_prod, cons - 1u, __ATOMIC_RELEASE);
	else {
		ctl_unmap_special(&sp);
		return 2;
	}
	printf("ev-dom0: domain %u console (gfn 0x%llx, guest port %u): out_cons %u, out_prod now %u\n", dom,
	       (unsigned long long)sp.map.gfn, sp.map.port, cons, ring->out_prod);
	ctl_unmap_special(&sp);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(struct ctl_conn *conn, int argc, char **argv);
	} cmds[] = {
	    {"probe", ev_probe},
	    {"pingpong", ev_pingpong},
	    {"flood", ev_flood},
	    {"scribble", ev_scribble},
	};
	struct ctl_conn conn;
	int rc;

	if (argc < 2)
		goto out_usage;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name))
			continue;
		if (ctl_connect(&conn, NULL)) {
			fprintf(stderr, "ev-dom0: %s\n", conn.err);
			return 1;
		}
		rc = cmds[i].run(&conn, argc - 1, argv + 1);
		ctl_close(&conn);
		if (rc == 2)
			goto out_usage;
		return rc;
	}
out_usage:
	fprintf(stderr, "usage: ev-dom0 probe | pingpong DOMID PORT N | flood DOMID PORT SECONDS |\n"
			"       scribble DOMID beyond|huge|backwards   (uses $LAMINA_RUNDIR/hv.sock)\n");
	return 2;
}
