/* Request handlers for every xs_wire.h message type, and the table that dispatches them
 * (type, name, privilege, transaction use, handler). Payloads are validated before any use. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "xs_store.h"

#define XS_CANON_MAX (XENSTORE_ABS_PATH_MAX + 64)

typedef int (*xs_op_fn)(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t);

static int xs_reply(struct xs_conn *c, const struct xsd_sockmsg *h, const void *data, uint32_t len)
{
	return xs_conn_queue(c, h->type, h->req_id, h->tx_id, data, len, NULL, 0, true);
}

static int xs_ack(struct xs_conn *c, const struct xsd_sockmsg *h)
{
	return xs_reply(c, h, "OK", 3);
}

/* Splits a payload of exactly n NUL-terminated strings (the last byte must be a NUL). */
static int xs_args(const struct xsd_sockmsg *h, char *b, const char **vec, unsigned n)
{
	uint32_t off = 0;
	unsigned i = 0;

	if (h->len == 0 || b[h->len - 1] != '\0')
		return -EINVAL;
	while (off < h->len) {
		if (i < n)
			vec[i] = b + off;
		i++;
		off += (uint32_t)strlen(b + off) + 1;
	}
	return i == n ? 0 : -EINVAL;
}

static int xs_parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

static int xs_node_path(struct xs_conn *c, const char *in, char *out)
{
	if (xs_path_canon(c, in, out, XS_CANON_MAX) < 0 || !xs_path_valid(out))
		return -EINVAL;
	return 0;
}

static int xs_op_read(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	struct xs_view v = {c->st, c, t};
	char path[XS_CANON_MAX];
	const struct xs_node *n;
	const char *a[1];
	int rc;

	if ((rc = xs_args(h, b, a, 1)) < 0 || (rc = xs_node_path(c, a[0], path)) < 0 ||
	    (rc = xs_tree_get(&v, path, XS_P_READ, &n)) < 0)
		return rc;
	return xs_reply(c, h, n->value, n->vlen);
}

static int xs_op_write(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	struct xs_view v = {c->st, c, t};
	char path[XS_CANON_MAX];
	size_t plen = strnlen(b, h->len);
	int rc;

	if (plen >= h->len)
		return -EINVAL; /* no NUL after the path */
	if ((rc = xs_node_path(c, b, path)) < 0 ||
	    (rc = xs_tree_write(&v, path, b + plen + 1, h->len - (uint32_t)plen - 1)) < 0)
		return rc;
	return xs_ack(c, h);
}

/* MKDIR and RM: one path argument, one tree operation, an "OK" reply. */
static int xs_op_on_path(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t,
			 int (*op)(struct xs_view *v, const char *path))
{
	struct xs_view v = {c->st, c, t};
	char path[XS_CANON_MAX];
	const char *a[1];
	int rc;

	if ((rc = xs_args(h, b, a, 1)) < 0 || (rc = xs_node_path(c, a[0], path)) < 0 || (rc = op(&v, path)) < 0)
		return rc;
	return xs_ack(c, h);
}

static int xs_op_mkdir(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	return xs_op_on_path(c, h, b, t, xs_tree_mkdir);
}

static int xs_op_rm(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	return xs_op_on_path(c, h, b, t, xs_tree_rm);
}

static int xs_op_directory(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	struct xs_view v = {c->st, c, t};
	char path[XS_CANON_MAX];
	const struct xs_node *n;
	const char *a[1];
	int rc;

	if ((rc = xs_args(h, b, a, 1)) < 0 || (rc = xs_node_path(c, a[0], path)) < 0 ||
	    (rc = xs_tree_get(&v, path, XS_P_READ, &n)) < 0)
		return rc;
	if (n->clen > XENSTORE_PAYLOAD_MAX)
		return -E2BIG; /* the client continues with DIRECTORY_PART */
	return xs_reply(c, h, n->children, n->clen);
}

/* Reply: "<generation>\0" then whole child names from byte offset; a final extra NUL marks the end. */
static int xs_op_directory_part(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	struct xs_view v = {c->st, c, t};
	char path[XS_CANON_MAX], out[XENSTORE_PAYLOAD_MAX];
	const struct xs_node *n;
	const char *a[2];
	uint32_t off, len = 0, genlen;
	int rc;

	if ((rc = xs_args(h, b, a, 2)) < 0 || (rc = xs_parse_u32(a[1], UINT32_MAX - 1, &off)) < 0 ||
	    (rc = xs_node_path(c, a[0], path)) < 0 || (rc = xs_tree_get(&v, path, XS_P_READ, &n)) < 0)
		return rc;
	genlen = (uint32_t)snprintf(out, sizeof(out), "%llu", (unsigned long long)n->gen) + 1;
	if (off >= n->clen) {
		out[genlen] = '\0';
		return xs_reply(c, h, out, genlen + 1);
	}
	if (off > 0 && n->children[off - 1] != '\0')
		return -EINVAL; /* not at the start of a name */
	while (off + len < n->clen) {
		uint32_t l = (uint32_t)strlen(n->children + off + len) + 1;
		if (genlen + len + l >= XENSTORE_PAYLOAD_MAX)
			break;
		len += l;
	}
	memcpy(out + genlen, n->children + off, len);
	if (off + len == n->clen)
		out[genlen + len++] = '\0';
	return xs_reply(c, h, out, genlen + len);
}

static int xs_op_get_perms(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	struct xs_view v = {c->st, c, t};
	char path[XS_CANON_MAX], out[XENSTORE_PAYLOAD_MAX];
	const struct xs_perm *p;
	const struct xs_node *n;
	const char *a[1];
	uint32_t np;
	int rc;

	if ((rc = xs_args(h, b, a, 1)) < 0)
		return rc;
	if (a[0][0] == '@') {
		struct xs_special *sp = xs_special_get(c->st, a[0]);
		if (!sp)
			return -ENOENT;
		if (!(xs_perm_for_conn(c, sp->perms, sp->nperms) & XS_P_READ))
			return -EACCES;
		p = sp->perms;
		np = sp->nperms;
	} else {
		if ((rc = xs_node_path(c, a[0], path)) < 0 || (rc = xs_tree_get(&v, path, XS_P_READ, &n)) < 0)
			return rc;
		p = n->perms;
		np = n->nperms;
	}
	rc = xs_perms_format(p, np, out, sizeof(out));
	if (rc < 0)
		return rc;
	return xs_reply(c, h, out, (uint32_t)rc);
}

static int xs_op_set_perms(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	struct xs_view v = {c->st, c, t};
	struct xs_perm perms[64];
	char path[XS_CANON_MAX];
	size_t plen = strnlen(b, h->len);
	uint32_t np;
	int rc;

	if (plen + 1 >= h->len)
		return -EINVAL; /* path and at least one permission */
	rc = xs_perms_parse(b + plen + 1, h->len - (uint32_t)plen - 1, perms, 64, &np);
	if (rc < 0)
		return rc == -E2BIG ? -ENOSPC : rc;
	if (b[0] == '@') {
		struct xs_special *sp = xs_special_get(c->st, b);
		if (!sp)
			return -ENOENT;
		if ((xs_perm_for_conn(c, sp->perms, sp->nperms) & (XS_P_WRITE | XS_P_OWNER)) !=
		    (XS_P_WRITE | XS_P_OWNER))
			return -EACCES;
		if (np > sizeof(sp->perms) / sizeof(sp->perms[0]))
			return -ENOSPC;
		memcpy(sp->perms, perms, np * sizeof(perms[0]));
		sp->nperms = np;
		c->st->tree_dirty = true; /* persisted with the tree */
		return xs_ack(c, h);
	}
	if ((rc = xs_node_path(c, b, path)) < 0 || (rc = xs_tree_set_perms(&v, path, perms, np)) < 0)
		return rc;
	return xs_ack(c, h);
}

static int xs_watch_path(struct xs_conn *c, const char *in, char *out, bool *relative)
{
	if (in[0] == '@') {
		if (strlen(in) > XENSTORE_REL_PATH_MAX)
			return -EINVAL;
		*relative = false;
		strcpy(out, in);
		return 0;
	}
	*relative = in[0] != '/';
	return xs_node_path(c, in, out);
}

static int xs_op_watch(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	char path[XS_CANON_MAX];
	const char *a[2];
	bool rel;
	int rc;

	if ((rc = xs_args(h, b, a, 2)) < 0 || (rc = xs_watch_path(c, a[0], path, &rel)) < 0 ||
	    (rc = xs_watch_add(c, path, a[1], rel)) < 0)
		return rc;
	rc = xs_ack(c, h);
	/* The initial event: fired once at registration, whether or not the path exists. */
	if (rc == 0)
		xs_watch_event(c, c->watches, path);
	return rc;
}

static int xs_op_unwatch(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	char path[XS_CANON_MAX];
	const char *a[2];
	bool rel;
	int rc;

	if ((rc = xs_args(h, b, a, 2)) < 0 || (rc = xs_watch_path(c, a[0], path, &rel)) < 0 ||
	    (rc = xs_watch_del(c, path, a[1])) < 0)
		return rc;
	return xs_ack(c, h);
}

static int xs_op_txn_start(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	char out[16];
	uint32_t id;
	int rc;

	if (t)
		return -EBUSY; /* no nesting */
	if ((rc = xs_txn_start(c, &id)) < 0)
		return rc;
	return xs_reply(c, h, out, (uint32_t)snprintf(out, sizeof(out), "%u", id) + 1);
}

static int xs_op_txn_end(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	const char *a[1];
	int rc;

	if ((rc = xs_args(h, b, a, 1)) < 0)
		return rc;
	if (!t)
		return -ENOENT;
	if (strcmp(a[0], "T") != 0 && strcmp(a[0], "F") != 0)
		return -EINVAL;
	if ((rc = xs_txn_end(c, t, a[0][0] == 'T')) < 0)
		return rc;
	return xs_ack(c, h);
}

static int xs_op_introduce(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	uint32_t domid, port, mfn;
	const char *a[3];
	int rc;

	if ((rc = xs_args(h, b, a, 3)) < 0 || (rc = xs_parse_u32(a[0], XS_DOMID_MAX, &domid)) < 0 ||
	    (rc = xs_parse_u32(a[1], UINT32_MAX, &mfn)) < 0 ||
	    (rc = xs_parse_u32(a[2], UINT32_MAX, &port)) < 0)
		return rc;
	if ((rc = xs_domain_introduce(c->st, domid, mfn, port)) < 0)
		return rc;
	return xs_ack(c, h);
}

static int xs_domid_arg(const struct xsd_sockmsg *h, char *b, uint32_t *domid)
{
	const char *a[1];
	int rc = xs_args(h, b, a, 1);

	return rc < 0 ? rc : xs_parse_u32(a[0], XS_DOMID_MAX, domid);
}

static int xs_op_release(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	uint32_t domid;
	int rc;

	if ((rc = xs_domid_arg(h, b, &domid)) < 0)
		return rc;
	if (domid == 0)
		return -EINVAL;
	if ((rc = xs_domain_release(c->st, domid)) < 0)
		return rc;
	return xs_ack(c, h);
}

static int xs_op_is_introduced(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	struct xs_domain *d;
	uint32_t domid;
	int rc;

	if ((rc = xs_domid_arg(h, b, &domid)) < 0)
		return rc;
	d = xs_domain_get(c->st, domid, false);
	return xs_reply(c, h, domid == 0 || (d && d->introduced) ? "T" : "F", 2);
}

static int xs_op_get_domain_path(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	char out[32];
	uint32_t domid;
	int rc;

	if ((rc = xs_domid_arg(h, b, &domid)) < 0)
		return rc;
	return xs_reply(c, h, out, (uint32_t)snprintf(out, sizeof(out), "/local/domain/%u", domid) + 1);
}

static int xs_op_resume(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	struct xs_domain *d;
	uint32_t domid;
	int rc;

	if ((rc = xs_domid_arg(h, b, &domid)) < 0)
		return rc;
	d = xs_domain_get(c->st, domid, false);
	if (!d || !d->introduced)
		return -ENOENT;
	d->shutdown = false;
	return xs_ack(c, h);
}

/* domid acts for target (a device model for its guest): it gets the target's rights. */
static int xs_op_set_target(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	uint32_t domid, target;
	struct xs_domain *d;
	struct xs_conn *o;
	const char *a[2];
	int rc;

	if ((rc = xs_args(h, b, a, 2)) < 0 || (rc = xs_parse_u32(a[0], XS_DOMID_MAX, &domid)) < 0 ||
	    (rc = xs_parse_u32(a[1], XS_DOMID_MAX, &target)) < 0)
		return rc;
	d = xs_domain_get(c->st, domid, false);
	if (!d || !d->introduced)
		return -ENOENT;
	d->target = target;
	for (o = c->st->conns; o; o = o->next)
		if (!o->priv && o->id == domid)
			o->target = target;
	return xs_ack(c, h);
}

static int xs_op_reset_watches(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	xs_watch_drop_all(c);
	xs_txn_drop_all(c);
	return xs_ack(c, h);
}

static int xs_op_control(struct xs_conn *c, const struct xsd_sockmsg *h, char *b, struct xs_txn *t)
{
	return xs_control(c, h, b, h->len);
}

struct xs_op {
	const char *name;
	bool needs_priv;
	bool uses_txn; /* the header's tx_id names a transaction */
	xs_op_fn fn;
};

static const struct xs_op xs_ops[XS_TYPE_COUNT] = {
    [XS_CONTROL] = {"CONTROL", true, false, xs_op_control},
    [XS_DIRECTORY] = {"DIRECTORY", false, true, xs_op_directory},
    [XS_READ] = {"READ", false, true, xs_op_read},
    [XS_GET_PERMS] = {"GET_PERMS", false, true, xs_op_get_perms},
    [XS_WATCH] = {"WATCH", false, false, xs_op_watch},
    [XS_UNWATCH] = {"UNWATCH", false, false, xs_op_unwatch},
    [XS_TRANSACTION_START] = {"TRANSACTION_START", false, true, xs_op_txn_start},
    [XS_TRANSACTION_END] = {"TRANSACTION_END", false, true, xs_op_txn_end},
    [XS_INTRODUCE] = {"INTRODUCE", true, false, xs_op_introduce},
    [XS_RELEASE] = {"RELEASE", true, false, xs_op_release},
    [XS_GET_DOMAIN_PATH] = {"GET_DOMAIN_PATH", false, false, xs_op_get_domain_path},
    [XS_WRITE] = {"WRITE", false, true, xs_op_write},
    [XS_MKDIR] = {"MKDIR", false, true, xs_op_mkdir},
    [XS_RM] = {"RM", false, true, xs_op_rm},
    [XS_SET_PERMS] = {"SET_PERMS", false, true, xs_op_set_perms},
    [XS_WATCH_EVENT] = {"WATCH_EVENT", false, false, NULL}, /* daemon to client only */
    [XS_ERROR] = {"ERROR", false, false, NULL},		    /* daemon to client only */
    [XS_IS_DOMAIN_INTRODUCED] = {"IS_DOMAIN_INTRODUCED", true, false, xs_op_is_introduced},
    [XS_RESUME] = {"RESUME", true, false, xs_op_resume},
    [XS_SET_TARGET] = {"SET_TARGET", true, false, xs_op_set_target},
    [XS_RESET_WATCHES] = {"RESET_WATCHES", false, false, xs_op_reset_watches},
    [XS_DIRECTORY_PART] = {"DIRECTORY_PART", false, true, xs_op_directory_part},
};

/* Handles one complete request (body NUL-terminated at h->len); the error return becomes an
 * XS_ERROR reply. */
int xs_ops_dispatch(struct xs_conn *c, const struct xsd_sockmsg *h, char *body)
{
	const struct xs_op *op;
	struct xs_txn *t = NULL;

	if (h->type >= XS_TYPE_COUNT || !xs_ops[h->type].fn) {
		xs_log(c->st, XS_LOG_DEBUG, "dom%u: unknown message type %u", c->id, h->type);
		return -ENOSYS;
	}
	op = &xs_ops[h->type];
	if (op->needs_priv && !c->priv)
		return -EACCES;
	if (op->uses_txn && h->tx_id) {
		t = xs_txn_find(c, h->tx_id);
		if (!t)
			return -ENOENT;
	}
	xs_log(c->st, XS_LOG_DEBUG, "dom%u: %s tx %u len %u", c->id, op->name, h->tx_id, h->len);
	return op->fn(c, h, body, t);
}
