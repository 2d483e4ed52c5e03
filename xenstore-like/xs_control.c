/* XS_CONTROL (alias XS_DEBUG) sub-commands for Domain-0: log level, quota query and set,
 * print to the log, help. Dispatched by table like every other request. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "xs_store.h"

#define XS_CTL_MAXARGS 8

struct xs_ctl_cmd {
	const char *name;
	const char *help;
	int (*fn)(struct xs_conn *c, const struct xsd_sockmsg *h, const char **argv, int argc);
};

static int xs_ctl_reply(struct xs_conn *c, const struct xsd_sockmsg *h, const char *text)
{
	size_t l = strlen(text) + 1;

	if (l > XENSTORE_PAYLOAD_MAX)
		return -E2BIG;
	return xs_conn_queue(c, h->type, h->req_id, h->tx_id, text, (uint32_t)l, NULL, 0, true);
}

static int xs_ctl_print(struct xs_conn *c, const struct xsd_sockmsg *h, const char **argv, int argc)
{
	if (argc != 2)
		return -EINVAL;
	xs_log(c->st, XS_LOG_ERR, "control print: %s", argv[1]);
	return xs_ctl_reply(c, h, "OK");
}

static int xs_ctl_log(struct xs_conn *c, const struct xsd_sockmsg *h, const char **argv, int argc)
{
	static const char *const levels[] = {"error", "info", "debug"};
	char out[64];
	int i;

	if (argc == 1) {
		snprintf(out, sizeof(out), "%s", levels[c->st->log_level]);
		return xs_ctl_reply(c, h, out);
	}
	if (argc != 2)
		return -EINVAL;
	for (i = 0; i < 3; i++) {
		if (strcmp(argv[1], levels[i]) == 0) {
			c->st->log_level = i;
			return xs_ctl_reply(c, h, "OK");
		}
	}
	if (strcmp(argv[1], "on") == 0 || strcmp(argv[1], "off") == 0) {
		c->st->log_level = argv[1][1] == 'n' ? XS_LOG_DEBUG : XS_LOG_ERR;
		return xs_ctl_reply(c, h, "OK");
	}
	return -EINVAL;
}

static int xs_ctl_parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (!*s || *s == '-')
		return -EINVAL;
	v = strtoul(s, &end, 10);
	if (*end || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* quota                 -> "name value" lines
 * quota NAME VALUE      -> set a limit
 * quota DOMID           -> what the domain uses */
static int xs_ctl_quota(struct xs_conn *c, const struct xsd_sockmsg *h, const char **argv, int argc)
{
	struct xs_store *st = c->st;
	char out[1024];
	size_t off = 0;
	uint32_t v;
	int k;

	if (argc == 1) {
		for (k = 0; k < XS_Q_COUNT; k++)
			off += (size_t)snprintf(out + off, sizeof(out) - off, "%s %u\n", xs_quota_name(k),
						st->quota.v[k]);
		return xs_ctl_reply(c, h, out);
	}
	if (argc == 3) {
		k = xs_quota_by_name(argv[1]);
		if (k < 0 || xs_ctl_parse_u32(argv[2], &v) < 0)
			return -EINVAL;
		if (k == XS_Q_PAYLOAD && v > XENSTORE_PAYLOAD_MAX)
			return -EINVAL;
		st->quota.v[k] = v;
		xs_log(st, XS_LOG_INFO, "quota %s set to %u", xs_quota_name(k), v);
		return xs_ctl_reply(c, h, "OK");
	}
	if (argc == 2 && xs_ctl_parse_u32(argv[1], &v) == 0 && v <= XS_DOMID_MAX) {
		struct xs_domain *d = xs_domain_get(st, v, false);
		struct xs_conn *o;
		uint32_t w = 0, t = 0;
		for (o = st->conns; o; o = o->next) {
			if (!o->priv && o->id == v) {
				w += o->nwatches;
				t += o->ntxns;
			}
		}
		snprintf(out, sizeof(out), "nodes %u\nwatches %u\ntransactions %u\nintroduced %d\n",
			 d ? d->nodes : 0, w, t, d ? d->introduced : 0);
		return xs_ctl_reply(c, h, out);
	}
	return -EINVAL;
}

static int xs_ctl_help(struct xs_conn *c, const struct xsd_sockmsg *h, const char **argv, int argc);

static const struct xs_ctl_cmd xs_ctl_cmds[] = {
    {"help", "help", xs_ctl_help},
    {"log", "log [error|info|debug|on|off]", xs_ctl_log},
    {"print", "print STRING", xs_ctl_print},
    {"quota", "quota [NAME VALUE | DOMID]", xs_ctl_quota},
};

static int xs_ctl_help(struct xs_conn *c, const struct xsd_sockmsg *h, const char **argv, int argc)
{
	char out[512];
	size_t off = 0, i;

	for (i = 0; i < sizeof(xs_ctl_cmds) / sizeof(xs_ctl_cmds[0]); i++)
		off += (size_t)snprintf(out + off, sizeof(out) - off, "%s\n", xs_ctl_cmds[i].help);
	return xs_ctl_reply(c, h, out);
}

int xs_control(struct xs_conn *c, const struct xsd_sockmsg *h, char *body, uint32_t len)
{
	const char *argv[XS_CTL_MAXARGS];
	uint32_t off = 0;
	int argc = 0;
	size_t i;

	if (len == 0 || body[len - 1] != '\0')
		return -EINVAL;
	while (off < len) {
		if (argc == XS_CTL_MAXARGS)
			return -E2BIG;
		argv[argc++] = body + off;
		off += (uint32_t)strlen(body + off) + 1;
	}
	for (i = 0; i < sizeof(xs_ctl_cmds) / sizeof(xs_ctl_cmds[0]); i++)
		if (strcmp(argv[0], xs_ctl_cmds[i].name) == 0)
			return xs_ctl_cmds[i].fn(c, h, argv, argc);
	return -EINVAL;
}
