/* Watches: registration per connection (with the watch quota), and firing: a change to a path
 * reaches every watch on that path or above it (and, for removals, below it) whose connection
 * may read the node, with the registered token. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "xs_store.h"

int xs_watch_add(struct xs_conn *c, const char *path, const char *token, bool relative)
{
	struct xs_watch *w;
	int rc;

	for (w = c->watches; w; w = w->next)
		if (strcmp(w->path, path) == 0 && strcmp(w->token, token) == 0)
			return -EEXIST;
	rc = xs_quota_check(c, XS_Q_WATCHES, (uint64_t)c->nwatches + 1);
	if (rc < 0)
		return rc;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->path = strdup(path);
	w->token = strdup(token);
	if (!w->path || !w->token) {
		free(w->path);
		free(w->token);
		free(w);
		return -ENOMEM;
	}
	w->relative = relative;
	w->next = c->watches;
	c->watches = w;
	c->nwatches++;
	return 0;
}

static void xs_watch_free(struct xs_watch *w)
{
	free(w->path);
	free(w->token);
	free(w);
}

int xs_watch_del(struct xs_conn *c, const char *path, const char *token)
{
	struct xs_watch **pp;

	for (pp = &c->watches; *pp; pp = &(*pp)->next) {
		struct xs_watch *w = *pp;
		if (strcmp(w->path, path) == 0 && strcmp(w->token, token) == 0) {
			*pp = w->next;
			c->nwatches--;
			xs_watch_free(w);
			return 0;
		}
	}
	return -ENOENT;
}

void xs_watch_drop_all(struct xs_conn *c)
{
	while (c->watches) {
		struct xs_watch *w = c->watches;
		c->watches = w->next;
		xs_watch_free(w);
	}
	c->nwatches = 0;
}

/* Queues one WATCH_EVENT; relative registrations see relative paths. */
int xs_watch_event(struct xs_conn *c, const struct xs_watch *w, const char *path)
{
	char prefix[40];
	size_t pl;

	if (c->dead)
		return 0;
	if (w->relative) {
		pl = (size_t)snprintf(prefix, sizeof(prefix), "/local/domain/%u/", c->id);
		if (strncmp(path, prefix, pl) == 0)
			path += pl;
	}
	if (c->out_events >= XS_CONN_EVENT_LIMIT || c->out_bytes >= 4 * (size_t)XS_CONN_OUT_LIMIT) {
		if (c->tops && c->tops->backlog) {
			c->tops->backlog(c, "the ring does not drain: watch events past the limit");
			return -ENOSPC;
		}
		xs_log(c->st, XS_LOG_ERR, "conn dom%u: %u watch events queued, dropping event for %s", c->id,
		       c->out_events, path);
		return -ENOSPC;
	}
	return xs_conn_queue(c, XS_WATCH_EVENT, 0, 0, path, (uint32_t)strlen(path) + 1, w->token,
			     (uint32_t)strlen(w->token) + 1, false);
}

void xs_watch_fire(struct xs_store *st, const char *path, const struct xs_perm *p, uint32_t np, bool recurse)
{
	struct xs_conn *c;
	struct xs_watch *w;

	for (c = st->conns; c; c = c->next) {
		if (c->dead || !c->watches)
			continue;
		if (!(xs_perm_for_conn(c, p, np) & XS_P_READ))
			continue;
		for (w = c->watches; w; w = w->next) {
			if (w->path[0] == '@')
				continue;
			if (xs_path_is_under(path, w->path))
				xs_watch_event(c, w, path);
			else if (recurse && xs_path_is_under(w->path, path))
				xs_watch_event(c, w, w->path);
		}
	}
}

void xs_watch_fire_special(struct xs_store *st, const char *name)
{
	struct xs_special *sp = xs_special_get(st, name);
	struct xs_conn *c;
	struct xs_watch *w;

	if (!sp)
		return;
	for (c = st->conns; c; c = c->next) {
		if (c->dead)
			continue;
		if (!(xs_perm_for_conn(c, sp->perms, sp->nperms) & XS_P_READ))
			continue;
		for (w = c->watches; w; w = w->next)
			if (strcmp(w->path, name) == 0)
				xs_watch_event(c, w, name);
	}
}
