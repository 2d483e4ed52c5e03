/* One helper per control request: each names its payload types and the exact reply size it
 * accepts, so callers never see a reply that does not match control.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/sched.h>

#include "ctl_client.h"

/* A LIST page asks for at most this many records (the reply stays below the payload maximum). */
#define CTL_LIST_PAGE 128u
_Static_assert(sizeof(struct lamina_ctl_list_reply) + CTL_LIST_PAGE * sizeof(struct lamina_ctl_dominfo) <=
		   LAMINA_CTL_MAX_PAYLOAD,
	       "a LIST page fits in one reply");
/* The safety net against a server whose next_domid never reaches 0. */
#define CTL_LIST_MAX_PAGES 4096u

static int ctl_fixed(struct ctl_conn *conn, uint16_t op, const void *req, size_t req_len, void *out,
		     size_t out_len)
{
	struct ctl_reply rep = {.buf = out, .cap = out_len};
	struct ctl_len_rule rule = {.min = out_len};

	return ctl_call(conn, op, req, req_len, out_len ? &rep : NULL, out_len ? &rule : NULL);
}

int ctl_hello(struct ctl_conn *conn, struct lamina_ctl_hello *out)
{
	int err = ctl_fixed(conn, LAMINA_CTL_HELLO, NULL, 0, out, sizeof(*out));

	if (!err)
		out->extraversion[sizeof(out->extraversion) - 1] = '\0';
	return err;
}

static void ctl_dominfo_terminate(struct lamina_ctl_dominfo *info)
{
	info->name[sizeof(info->name) - 1] = '\0';
}

int ctl_create(struct ctl_conn *conn, const struct lamina_ctl_domcfg *cfg, struct lamina_ctl_dominfo *out)
{
	int err = ctl_fixed(conn, LAMINA_CTL_CREATE, cfg, sizeof(*cfg), out, sizeof(*out));

	if (!err)
		ctl_dominfo_terminate(out);
	return err;
}

int ctl_destroy(struct ctl_conn *conn, const struct lamina_ctl_domref *ref)
{
	return ctl_fixed(conn, LAMINA_CTL_DESTROY, ref, sizeof(*ref), NULL, 0);
}

int ctl_pause(struct ctl_conn *conn, const struct lamina_ctl_domref *ref)
{
	return ctl_fixed(conn, LAMINA_CTL_PAUSE, ref, sizeof(*ref), NULL, 0);
}

int ctl_unpause(struct ctl_conn *conn, const struct lamina_ctl_domref *ref)
{
	return ctl_fixed(conn, LAMINA_CTL_UNPAUSE, ref, sizeof(*ref), NULL, 0);
}

int ctl_shutdown(struct ctl_conn *conn, const struct lamina_ctl_domref *ref, uint32_t reason)
{
	struct lamina_ctl_shutdown req = {.dom = *ref, .reason = reason};

	return ctl_fixed(conn, LAMINA_CTL_SHUTDOWN, &req, sizeof(req), NULL, 0);
}

int ctl_info(struct ctl_conn *conn, const struct lamina_ctl_domref *ref, struct lamina_ctl_dominfo *out)
{
	int err = ctl_fixed(conn, LAMINA_CTL_INFO, ref, sizeof(*ref), out, sizeof(*out));

	if (!err)
		ctl_dominfo_terminate(out);
	return err;
}

int ctl_wait_begin(struct ctl_conn *conn, const struct lamina_ctl_domref *ref, uint32_t timeout_ms,
		   uint32_t *seq)
{
	struct lamina_ctl_wait req = {.dom = *ref, .timeout_ms = timeout_ms};

	return ctl_send(conn, LAMINA_CTL_WAIT, &req, sizeof(req), seq);
}

int ctl_wait_end(struct ctl_conn *conn, uint32_t seq, uint32_t timeout_ms, struct lamina_ctl_dominfo *out)
{
	struct ctl_reply rep = {.buf = out, .cap = sizeof(*out)};
	struct ctl_len_rule rule = {.min = sizeof(*out)};
	int saved = conn->timeout_ms;
	int err;

	/* The server answers at timeout_ms; give it a second of slack before giving up locally. */
	conn->timeout_ms =
	    timeout_ms ? (int)(timeout_ms > 0x7fffffffu - 1000u ? 0x7fffffff : timeout_ms + 1000u) : -1;
	err = ctl_recv(conn, LAMINA_CTL_WAIT, seq, &rep, &rule);
	conn->timeout_ms = saved;
	if (!err)
		ctl_dominfo_terminate(out);
	return err;
}

int ctl_wait(struct ctl_conn *conn, const struct lamina_ctl_domref *ref, uint32_t timeout_ms,
	     struct lamina_ctl_dominfo *out)
{
	uint32_t seq;
	int err = ctl_wait_begin(conn, ref, timeout_ms, &seq);

	return err ? err : ctl_wait_end(conn, seq, timeout_ms, out);
}

int ctl_host_info(struct ctl_conn *conn, struct lamina_ctl_hostinfo *out)
{
	return ctl_fixed(conn, LAMINA_CTL_HOST_INFO, NULL, 0, out, sizeof(*out));
}

int ctl_host_stop(struct ctl_conn *conn)
{
	return ctl_fixed(conn, LAMINA_CTL_HOST_STOP, NULL, 0, NULL, 0);
}

int ctl_list(struct ctl_conn *conn, struct lamina_ctl_dominfo **out, size_t *count)
{
	const size_t cap =
	    sizeof(struct lamina_ctl_list_reply) + CTL_LIST_PAGE * sizeof(struct lamina_ctl_dominfo);
	struct ctl_len_rule rule = {.min = sizeof(struct lamina_ctl_list_reply),
				    .unit = sizeof(struct lamina_ctl_dominfo)};
	struct lamina_ctl_list_req req = {.first_domid = 0, .max = CTL_LIST_PAGE};
	struct lamina_ctl_dominfo *all = NULL, *grown;
	struct lamina_ctl_list_reply head;
	struct ctl_reply rep;
	size_t n = 0, got;
	unsigned pages = 0;
	char *buf;
	int err;

	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	rep = (struct ctl_reply){.buf = buf, .cap = cap};
	for (;;) {
		err = ctl_call(conn, LAMINA_CTL_LIST, &req, sizeof(req), &rep, &rule);
		if (err)
			goto out_fail;
		memcpy(&head, buf, sizeof(head));
		got = (rep.len - sizeof(head)) / sizeof(struct lamina_ctl_dominfo);
		if (head.count != got || got > req.max) {
			err = -EPROTO;
			snprintf(conn->err, sizeof(conn->err), "LIST: reply says %u records, carries %zu",
				 head.count, got);
			goto out_fail;
		}
		if (head.next_domid != 0 && head.next_domid <= req.first_domid) {
			err = -EPROTO;
			snprintf(conn->err, sizeof(conn->err), "LIST: next_domid %u does not advance past %u",
				 head.next_domid, req.first_domid);
			goto out_fail;
		}
		if (got) {
			grown = realloc(all, (n + got) * sizeof(*all));
			if (!grown) {
				err = -ENOMEM;
				goto out_fail;
			}
			all = grown;
			memcpy(all + n, buf + sizeof(head), got * sizeof(*all));
			for (size_t i = n; i < n + got; i++)
				ctl_dominfo_terminate(&all[i]);
			n += got;
		}
		if (head.next_domid == 0)
			break;
		if (++pages >= CTL_LIST_MAX_PAGES) {
			err = -EPROTO;
			snprintf(conn->err, sizeof(conn->err), "LIST: more than %u pages",
				 CTL_LIST_MAX_PAGES);
			goto out_fail;
		}
		req.first_domid = head.next_domid;
	}
	free(buf);
	*out = all;
	*count = n;
	return 0;

out_fail:
	free(all);
	free(buf);
	return err;
}

const char *ctl_state_name(uint32_t state)
{
	static const char *const names[] = {
	    [LAMINA_DOM_RUNNING] = "running",	[LAMINA_DOM_PAUSED] = "paused",
	    [LAMINA_DOM_SHUTDOWN] = "shutdown", [LAMINA_DOM_CRASHED] = "crashed",
	    [LAMINA_DOM_DYING] = "dying",	[LAMINA_DOM_DEAD] = "dead",
	};

	return state < sizeof(names) / sizeof(names[0]) ? names[state] : "unknown";
}

const char *ctl_action_name(uint32_t action)
{
	static const char *const names[] = {
	    [LAMINA_ACT_DESTROY] = "destroy",
	    [LAMINA_ACT_RESTART] = "restart",
	    [LAMINA_ACT_PRESERVE] = "preserve",
	    [LAMINA_ACT_RENAME_RESTART] = "rename-restart",
	    [LAMINA_ACT_COREDUMP_DESTROY] = "coredump-destroy",
	    [LAMINA_ACT_COREDUMP_RESTART] = "coredump-restart",
	};

	return action < sizeof(names) / sizeof(names[0]) ? names[action] : "unknown";
}

const char *ctl_shutdown_reason_name(uint32_t reason)
{
	static const char *const names[] = {
	    [SHUTDOWN_poweroff] = "poweroff", [SHUTDOWN_reboot] = "reboot",
	    [SHUTDOWN_suspend] = "suspend",   [SHUTDOWN_crash] = "crash",
	    [SHUTDOWN_watchdog] = "watchdog", [SHUTDOWN_soft_reset] = "soft_reset",
	};

	return reason < sizeof(names) / sizeof(names[0]) && names[reason] ? names[reason] : "unknown";
}

const char *ctl_op_name(uint16_t op)
{
	static const struct {
		uint16_t op;
		const char *name;
	} names[] = {
	    {LAMINA_CTL_HELLO, "HELLO"},
	    {LAMINA_CTL_CREATE, "CREATE"},
	    {LAMINA_CTL_DESTROY, "DESTROY"},
	    {LAMINA_CTL_PAUSE, "PAUSE"},
	    {LAMINA_CTL_UNPAUSE, "UNPAUSE"},
	    {LAMINA_CTL_SHUTDOWN, "SHUTDOWN"},
	    {LAMINA_CTL_LIST, "LIST"},
	    {LAMINA_CTL_INFO, "INFO"},
	    {LAMINA_CTL_WAIT, "WAIT"},
	    {LAMINA_CTL_HOST_STOP, "HOST_STOP"},
	    {LAMINA_CTL_HOST_INFO, "HOST_INFO"},
	    {LAMINA_CTL_DOMSTATS, "DOMSTATS"},
	    {LAMINA_CTL_DUMP_CORE, "DUMP_CORE"},
	    {LAMINA_CTL_EVTCHN_ALLOC_UNBOUND, "EVTCHN_ALLOC_UNBOUND"},
	    {LAMINA_CTL_EVTCHN_BIND_INTERDOMAIN, "EVTCHN_BIND_INTERDOMAIN"},
	    {LAMINA_CTL_EVTCHN_BIND_VIRQ, "EVTCHN_BIND_VIRQ"},
	    {LAMINA_CTL_EVTCHN_CLOSE, "EVTCHN_CLOSE"},
	    {LAMINA_CTL_MAP_SPECIAL, "MAP_SPECIAL"},
	    {LAMINA_CTL_GNT_MAP, "GNT_MAP"},
	    {LAMINA_CTL_GNT_UNMAP, "GNT_UNMAP"},
	    {LAMINA_CTL_GNT_COPY, "GNT_COPY"},
	    {LAMINA_CTL_GNT_BUFFER, "GNT_BUFFER"},
	    {LAMINA_CTL_GNT_FOREIGN_MAP, "GNT_FOREIGN_MAP"},
	    {LAMINA_CTL_GNT_TOOLSTACK, "GNT_TOOLSTACK"},
	    {LAMINA_CTL_GNT_INFO, "GNT_INFO"},
	    {LAMINA_CTL_GNT_SET_LIMITS, "GNT_SET_LIMITS"},
	    {LAMINA_CTL_GNT_RING, "GNT_RING"},
	    {LAMINA_CTL_SUBSCRIBE, "SUBSCRIBE"},
	    {LAMINA_CTL_EVENT, "EVENT"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].op == op)
			return names[i].name;
	return "request";
}
