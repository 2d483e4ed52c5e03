/* Node access on behalf of a connection: permission checks, implicit creation of parents with
 * inherited permissions, recursive removal and quota accounting, on the live tree or inside a
 * transaction's private copies (which xs_txn.c checks and applies at commit). */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "xs_store.h"

#define XS_TXN_MAX_NODES 4096u /* private copies one unprivileged transaction may hold */

int xs_tree_init(struct xs_store *st)
{
	static const char *const base[] = {"/", "/tool", "/tool/xenstored"};
	struct xs_perm p = {.id = 0, .perms = XS_P_NONE};
	size_t i;
	int rc;

	for (i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		struct xs_node *n = xs_node_new(base[i]);
		if (!n || xs_node_set_perms(n, &p, 1) < 0) {
			xs_node_free(n);
			return -ENOMEM;
		}
		if (i + 1 < sizeof(base) / sizeof(base[0]))
			rc = xs_node_child_add(n, xs_path_base(base[i + 1]));
		else
			rc = 0;
		if (rc < 0 || (rc = xs_tree_live_put(st, n)) < 0) {
			xs_node_free(n);
			return rc;
		}
	}
	return 0;
}

void xs_tree_count_owner(struct xs_store *st, const struct xs_node *n, int delta)
{
	struct xs_domain *d;

	if (!n->nperms)
		return;
	d = xs_domain_get(st, n->perms[0].id, true);
	if (d)
		d->nodes = (uint32_t)((int64_t)d->nodes + delta < 0 ? 0 : (int64_t)d->nodes + delta);
}

int xs_tree_live_put(struct xs_store *st, struct xs_node *n)
{
	int rc;

	n->gen = ++st->gen;
	n->present = true;
	rc = xs_htab_put(&st->nodes, n);
	if (rc == 0)
		xs_tree_count_owner(st, n, 1);
	return rc;
}

/* The node at path as this view sees it: NULL when absent. In a transaction every path touched
 * gets a private copy recording the generation it was seen at. */
static int xs_view_node(struct xs_view *v, const char *path, struct xs_node **out)
{
	struct xs_node *live, *o;
	struct xs_txn *t = v->t;

	live = xs_htab_get(&v->st->nodes, path);
	if (!t) {
		*out = live;
		return 0;
	}
	o = xs_htab_get(&t->ov, path);
	if (!o) {
		if (!v->c->priv && t->ov.count >= XS_TXN_MAX_NODES)
			return -ENOSPC;
		if (live) {
			o = xs_node_dup(live);
			if (o) {
				o->base_present = true;
				o->base_gen = live->gen;
			}
		} else {
			o = xs_node_new(path);
			if (o)
				o->present = false;
		}
		if (!o)
			return -ENOMEM;
		if (xs_htab_put(&t->ov, o) < 0) {
			xs_node_free(o);
			return -ENOMEM;
		}
		o->onext = t->ofirst;
		t->ofirst = o;
	}
	*out = o->present ? o : NULL;
	return 0;
}

static void xs_view_changed(struct xs_view *v, struct xs_node *n)
{
	if (v->t) {
		n->dirty = true;
	} else {
		n->gen = ++v->st->gen;
		v->st->tree_dirty = true;
	}
}

static void xs_view_fire(struct xs_view *v, struct xs_node *n, bool recurse)
{
	if (v->t) {
		n->fire = true;
		n->fire_recurse |= recurse;
	} else {
		xs_watch_fire(v->st, n->path, n->perms, n->nperms, recurse);
	}
}

/* Nearest existing ancestor of path (path itself excluded). */
static int xs_view_ancestor(struct xs_view *v, const char *path, struct xs_node **out)
{
	char buf[XENSTORE_ABS_PATH_MAX + 1];
	int rc;

	snprintf(buf, sizeof(buf), "%s", path);
	for (;;) {
		char parent[XENSTORE_ABS_PATH_MAX + 1];
		if (xs_path_parent(buf, parent, sizeof(parent)) < 0)
			return -ENOENT;
		rc = xs_view_node(v, parent, out);
		if (rc < 0)
			return rc;
		if (*out)
			return 0;
		memcpy(buf, parent, strlen(parent) + 1);
	}
}

/* A missing node is reported as ENOENT only to those who could create it. */
static int xs_view_absent_err(struct xs_view *v, const char *path)
{
	struct xs_node *a;
	int rc;

	if (v->c->priv)
		return -ENOENT;
	rc = xs_view_ancestor(v, path, &a);
	if (rc < 0)
		return rc;
	if (xs_perm_for_conn(v->c, a->perms, a->nperms) & XS_P_WRITE)
		return -ENOENT;
	return -EACCES;
}

static int xs_tree_lookup(struct xs_view *v, const char *path, uint32_t need, struct xs_node **out)
{
	struct xs_node *n;
	int rc = xs_view_node(v, path, &n);

	if (rc < 0)
		return rc;
	if (!n)
		return xs_view_absent_err(v, path);
	if ((xs_perm_for_conn(v->c, n->perms, n->nperms) & need) != need)
		return -EACCES;
	*out = n;
	return 0;
}

int xs_tree_get(struct xs_view *v, const char *path, uint32_t need, const struct xs_node **out)
{
	struct xs_node *n;
	int rc = xs_tree_lookup(v, path, need, &n);

	if (rc == 0)
		*out = n;
	return rc;
}

static int xs_view_own_nodes(struct xs_view *v)
{
	struct xs_domain *d = xs_domain_get(v->st, v->c->id, false);
	int64_t n = (d ? d->nodes : 0) + (v->t ? v->t->own_nodes_delta : 0);

	return n < 0 ? 0 : (int)n;
}

static void xs_view_account(struct xs_view *v, const struct xs_node *n, int delta)
{
	if (!v->t)
		xs_tree_count_owner(v->st, n, delta);
	else if (n->nperms && n->perms[0].id == v->c->id)
		v->t->own_nodes_delta += delta;
}

/* Makes path and its missing parents; *out is the new leaf. */
static int xs_tree_create(struct xs_view *v, const char *path, struct xs_node **out)
{
	char chain[XENSTORE_ABS_PATH_MAX + 1];
	struct xs_node *parent, *n = NULL;
	const char *p;
	int rc, missing = 0;

	rc = xs_view_ancestor(v, path, &parent);
	if (rc < 0)
		return rc;
	if (!(xs_perm_for_conn(v->c, parent->perms, parent->nperms) & XS_P_WRITE))
		return -EACCES;
	for (p = path + strlen(parent->path); *p; p++)
		missing += (*p == '/');
	if (strcmp(parent->path, "/") == 0)
		missing++;
	rc = xs_quota_check(v->c, XS_Q_NODES, (uint64_t)xs_view_own_nodes(v) + (uint64_t)missing);
	if (rc < 0)
		return rc;
	rc = xs_quota_check(v->c, XS_Q_NODE_SIZE, xs_node_size(parent) + strlen(path));
	if (rc < 0)
		return rc;
	/* Walk down from the ancestor, creating each missing component. */
	p = path + strlen(parent->path);
	while (*p) {
		const char *slash;
		size_t l;
		if (*p == '/')
			p++;
		slash = strchr(p, '/');
		l = slash ? (size_t)(slash - path) : strlen(path);
		memcpy(chain, path, l);
		chain[l] = '\0';
		if (v->t) {
			struct xs_node *dummy;
			rc = xs_view_node(v, chain, &dummy);
			if (rc < 0)
				return rc;
			n = xs_htab_get(&v->t->ov, chain);
			n->present = true;
			n->vlen = 0;
			free(n->value);
			n->value = NULL;
			n->clen = 0;
		} else {
			n = xs_node_new(chain);
			if (!n)
				return -ENOMEM;
		}
		rc = xs_node_set_perms(n, parent->perms, parent->nperms);
		if (rc == 0 && !v->c->priv)
			n->perms[0].id = v->c->id;
		if (rc == 0)
			rc = xs_node_child_add(parent, xs_path_base(chain));
		if (rc < 0) {
			if (!v->t)
				xs_node_free(n);
			return rc;
		}
		xs_view_changed(v, parent);
		if (!v->t) {
			rc = xs_tree_live_put(v->st, n);
			if (rc < 0) {
				xs_node_child_del(parent, xs_path_base(chain));
				xs_node_free(n);
				return rc;
			}
		} else {
			xs_view_account(v, n, 1);
		}
		xs_view_changed(v, n);
		parent = n;
		p = path + l;
	}
	*out = n;
	return 0;
}

int xs_tree_write(struct xs_view *v, const char *path, const char *val, uint32_t len)
{
	struct xs_node *n;
	int rc = xs_tree_lookup(v, path, XS_P_WRITE, &n);

	if (rc == -ENOENT) {
		rc = xs_quota_check(v->c, XS_Q_NODE_SIZE, len);
		if (rc == 0)
			rc = xs_tree_create(v, path, &n);
	} else if (rc == 0) {
		rc = xs_quota_check(v->c, XS_Q_NODE_SIZE, xs_node_size(n) - n->vlen + len);
	}
	if (rc < 0)
		return rc;
	rc = xs_node_set_value(n, val, len);
	if (rc < 0)
		return rc;
	xs_view_changed(v, n);
	xs_view_fire(v, n, false);
	return 0;
}

int xs_tree_mkdir(struct xs_view *v, const char *path)
{
	struct xs_node *n;
	int rc = xs_tree_lookup(v, path, XS_P_WRITE, &n);

	if (rc != -ENOENT)
		return rc;
	rc = xs_tree_create(v, path, &n);
	if (rc == 0)
		xs_view_fire(v, n, false);
	return rc;
}

static void xs_child_path(const char *parent, const char *name, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/%s", strcmp(parent, "/") == 0 ? "" : parent, name);
}

/* Removes n and everything below it (n is already looked up in this view). */
static int xs_tree_rm_sub(struct xs_view *v, struct xs_node *n)
{
	char cp[XENSTORE_ABS_PATH_MAX + 2];
	uint32_t off = 0;
	int rc;

	while (off < n->clen) {
		struct xs_node *child;
		const char *name = n->children + off;
		off += (uint32_t)strlen(name) + 1;
		xs_child_path(n->path, name, cp, sizeof(cp));
		rc = xs_view_node(v, cp, &child);
		if (rc < 0)
			return rc;
		if (child && (rc = xs_tree_rm_sub(v, child)) < 0)
			return rc;
	}
	xs_view_account(v, n, -1);
	if (v->t) {
		n->present = false;
		n->dirty = true;
		n->clen = 0;
	} else {
		xs_htab_take(&v->st->nodes, n->path);
		xs_node_free(n);
		v->st->tree_dirty = true;
	}
	return 0;
}

int xs_tree_rm(struct xs_view *v, const char *path)
{
	char pp[XENSTORE_ABS_PATH_MAX + 1];
	struct xs_node *n, *parent;
	struct xs_perm perms[16], *pcopy = perms;
	uint32_t np;
	int rc = xs_tree_lookup(v, path, XS_P_WRITE, &n);

	if (rc == -ENOENT) {
		/* Removing what is not there is fine when its parent exists. */
		if (xs_path_parent(path, pp, sizeof(pp)) < 0)
			return -EINVAL;
		rc = xs_view_node(v, pp, &parent);
		if (rc < 0)
			return rc;
		return parent ? 0 : -ENOENT;
	}
	if (rc < 0)
		return rc;
	if (strcmp(path, "/") == 0)
		return -EINVAL;
	if (xs_path_parent(path, pp, sizeof(pp)) < 0)
		return -EINVAL;
	rc = xs_view_node(v, pp, &parent);
	if (rc < 0)
		return rc;
	if (!parent)
		return -EIO; /* a node without its parent: the tree is broken */
	np = n->nperms;
	if (np > 16) {
		pcopy = malloc(np * sizeof(*pcopy));
		if (!pcopy)
			return -ENOMEM;
	}
	memcpy(pcopy, n->perms, np * sizeof(*pcopy));
	if (v->t) {
		n->fire = true;
		n->fire_recurse = true;
	}
	rc = xs_tree_rm_sub(v, n);
	if (rc == 0) {
		xs_node_child_del(parent, xs_path_base(path));
		xs_view_changed(v, parent);
		if (!v->t)
			xs_watch_fire(v->st, path, pcopy, np, true);
	}
	if (pcopy != perms)
		free(pcopy);
	return rc;
}

int xs_tree_set_perms(struct xs_view *v, const char *path, const struct xs_perm *p, uint32_t np)
{
	struct xs_node *n;
	bool owner_change;
	int rc = xs_tree_lookup(v, path, XS_P_WRITE | XS_P_OWNER, &n);

	if (rc < 0)
		return rc;
	if (np == 0)
		return -EINVAL;
	owner_change = n->nperms == 0 || n->perms[0].id != p[0].id;
	if (!v->c->priv && owner_change)
		return -EPERM;
	rc = xs_quota_check(v->c, XS_Q_PERMS, np);
	if (rc == 0)
		rc = xs_quota_check(v->c, XS_Q_NODE_SIZE,
				    (uint64_t)n->vlen + n->clen + (uint64_t)np * sizeof(*p));
	if (rc < 0)
		return rc;
	if (owner_change)
		xs_view_account(v, n, -1);
	rc = xs_node_set_perms(n, p, np);
	if (owner_change)
		xs_view_account(v, n, 1);
	if (rc < 0)
		return rc;
	xs_view_changed(v, n);
	xs_view_fire(v, n, false);
	return 0;
}
