/* Transactions: private copies of every node a transaction touched, a generation check of each
 * against the live tree at commit (any change since first touch fails the commit with EAGAIN),
 * and the application of the copies plus the watch events they owe. */
#include <stdlib.h>
#include <string.h>

#include "xs_store.h"

int xs_txn_start(struct xs_conn *c, uint32_t *id)
{
	struct xs_txn *t;
	int rc;

	rc = xs_quota_check(c, XS_Q_TXNS, (uint64_t)c->ntxns + 1);
	if (rc < 0)
		return rc;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	if (xs_htab_init(&t->ov, 64) < 0) {
		free(t);
		return -ENOMEM;
	}
	/* Ids are never 0 and never reused while in use on this connection. */
	do {
		t->id = ++c->st->next_txn;
	} while (t->id == 0 || xs_txn_find(c, t->id));
	t->conn = c;
	t->next = c->txns;
	c->txns = t;
	c->ntxns++;
	*id = t->id;
	return 0;
}

struct xs_txn *xs_txn_find(struct xs_conn *c, uint32_t id)
{
	struct xs_txn *t;

	for (t = c->txns; t; t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

void xs_txn_free(struct xs_txn *t)
{
	if (!t)
		return;
	xs_htab_free_all(&t->ov);
	free(t);
}

static void xs_txn_unlink(struct xs_conn *c, struct xs_txn *t)
{
	struct xs_txn **pp;

	for (pp = &c->txns; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			c->ntxns--;
			return;
		}
	}
}

void xs_txn_drop_all(struct xs_conn *c)
{
	while (c->txns) {
		struct xs_txn *t = c->txns;
		c->txns = t->next;
		xs_txn_free(t);
	}
	c->ntxns = 0;
}

static bool xs_txn_conflicts(struct xs_store *st, struct xs_txn *t)
{
	struct xs_node *o;

	for (o = t->ofirst; o; o = o->onext) {
		struct xs_node *live = xs_htab_get(&st->nodes, o->path);
		if (o->base_present != (live != NULL))
			return true;
		if (live && live->gen != o->base_gen)
			return true;
	}
	return false;
}

/* Moves one private copy's state into the live tree. */
static int xs_txn_apply_one(struct xs_store *st, struct xs_node *o)
{
	struct xs_node *live = xs_htab_get(&st->nodes, o->path);

	if (!o->present) {
		if (live) {
			xs_htab_take(&st->nodes, o->path);
			xs_tree_count_owner(st, live, -1);
			xs_node_free(live);
		}
		return 0;
	}
	if (!live) {
		struct xs_node *n = xs_node_dup(o);
		if (!n)
			return -ENOMEM;
		return xs_tree_live_put(st, n) < 0 ? (xs_node_free(n), -ENOMEM) : 0;
	}
	xs_tree_count_owner(st, live, -1);
	/* Swap the buffers: the copy is freed with the transaction. */
	{
		struct xs_node tmp = *live;
		live->value = o->value;
		live->vlen = o->vlen;
		live->perms = o->perms;
		live->nperms = o->nperms;
		live->children = o->children;
		live->clen = o->clen;
		live->ccap = o->ccap;
		o->value = tmp.value;
		o->vlen = tmp.vlen;
		o->perms = tmp.perms;
		o->nperms = tmp.nperms;
		o->children = tmp.children;
		o->clen = tmp.clen;
		o->ccap = tmp.ccap;
	}
	live->gen = ++st->gen;
	xs_tree_count_owner(st, live, 1);
	return 0;
}

/* A removal fires once, at its top; what went with it is covered by the recursion. */
static bool xs_txn_parent_removed(struct xs_txn *t, const struct xs_node *o)
{
	char pp[XENSTORE_ABS_PATH_MAX + 1];
	struct xs_node *p;

	if (xs_path_parent(o->path, pp, sizeof(pp)) < 0)
		return false;
	p = xs_htab_get(&t->ov, pp);
	return p && !p->present && p->dirty && p->base_present;
}

int xs_txn_end(struct xs_conn *c, struct xs_txn *t, bool commit)
{
	struct xs_store *st = c->st;
	struct xs_node *o, *rev = NULL, *next;
	int rc = 0;

	xs_txn_unlink(c, t);
	if (!commit)
		goto out;
	if (xs_txn_conflicts(st, t)) {
		rc = -EAGAIN;
		goto out;
	}
	/* Apply in first-touch order (the list is newest first). */
	for (o = t->ofirst; o; o = next) {
		next = o->onext;
		o->onext = rev;
		rev = o;
	}
	t->ofirst = rev;
	for (o = t->ofirst; o; o = o->onext) {
		if (!o->dirty)
			continue;
		rc = xs_txn_apply_one(st, o);
		if (rc < 0) {
			xs_log(st, XS_LOG_ERR, "transaction %u: commit failed half-way (%d)", t->id, rc);
			goto out;
		}
		st->tree_dirty = true;
	}
	for (o = t->ofirst; o; o = o->onext) {
		if (!o->fire)
			continue;
		if (!o->present && xs_txn_parent_removed(t, o))
			continue;
		/* Live perms after commit; the copy keeps the old ones for removed nodes. */
		if (o->present) {
			struct xs_node *live = xs_htab_get(&st->nodes, o->path);
			if (live) {
				xs_watch_fire(st, live->path, live->perms, live->nperms, false);
				continue;
			}
		}
		xs_watch_fire(st, o->path, o->perms, o->nperms, o->fire_recurse);
	}
out:
	xs_txn_free(t);
	return rc;
}
