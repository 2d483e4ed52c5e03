/* Nodes and their paths: canonical paths and their validity as Xen's xenstored defines them, the
 * path hash table, node values, packed child lists, and permission lists with the rule that
 * decides what a connection may do to a node. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "xs_store.h"

/* Relative paths name nodes below the connection's /local/domain/<id>. */
int xs_path_canon(const struct xs_conn *c, const char *in, char *out, size_t outsz)
{
	size_t len = strlen(in);
	int n;

	if (in[0] == '/' || in[0] == '@') {
		if (len >= outsz)
			return -EINVAL;
		memcpy(out, in, len + 1);
		return 0;
	}
	if (len > XENSTORE_REL_PATH_MAX)
		return -EINVAL;
	n = snprintf(out, outsz, "/local/domain/%u/%s", c ? c->id : 0u, in);
	if (n < 0 || (size_t)n >= outsz)
		return -EINVAL;
	return 0;
}

/* Absolute, no empty component, no trailing '/', only [A-Za-z0-9-/_@]. */
bool xs_path_valid(const char *p)
{
	size_t len = strlen(p), i;

	if (len == 0 || p[0] != '/' || len > XENSTORE_ABS_PATH_MAX)
		return false;
	if (len > 1 && p[len - 1] == '/')
		return false;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch == '/' && i + 1 < len && p[i + 1] == '/')
			return false;
		if (!isalnum(ch) && !strchr("-/_@", ch))
			return false;
	}
	return true;
}

bool xs_path_is_under(const char *child, const char *parent)
{
	size_t pl = strlen(parent);

	if (strcmp(parent, "/") == 0)
		return child[0] == '/';
	if (strncmp(child, parent, pl) != 0)
		return false;
	return child[pl] == '\0' || child[pl] == '/';
}

int xs_path_parent(const char *p, char *out, size_t outsz)
{
	const char *slash = strrchr(p, '/');
	size_t len;

	if (!slash || strcmp(p, "/") == 0)
		return -EINVAL;
	len = (size_t)(slash - p);
	if (len == 0)
		len = 1; /* parent of "/a" is "/" */
	if (len >= outsz)
		return -EINVAL;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

const char *xs_path_base(const char *p)
{
	const char *slash = strrchr(p, '/');

	return slash ? slash + 1 : p;
}

/* FNV-1a */
uint32_t xs_path_hash(const char *p)
{
	uint32_t h = 2166136261u;

	while (*p) {
		h ^= (unsigned char)*p++;
		h *= 16777619u;
	}
	return h;
}

int xs_htab_init(struct xs_htab *h, size_t nb)
{
	h->b = calloc(nb, sizeof(*h->b));
	if (!h->b)
		return -ENOMEM;
	h->nb = nb;
	h->count = 0;
	return 0;
}

void xs_htab_free_all(struct xs_htab *h)
{
	size_t i;

	for (i = 0; h->b && i < h->nb; i++) {
		struct xs_node *n = h->b[i], *next;
		for (; n; n = next) {
			next = n->hnext;
			xs_node_free(n);
		}
	}
	free(h->b);
	h->b = NULL;
	h->nb = h->count = 0;
}

struct xs_node *xs_htab_get(const struct xs_htab *h, const char *path)
{
	uint32_t hash = xs_path_hash(path);
	struct xs_node *n;

	for (n = h->b[hash & (h->nb - 1)]; n; n = n->hnext)
		if (n->hash == hash && strcmp(n->path, path) == 0)
			return n;
	return NULL;
}

static int xs_htab_grow(struct xs_htab *h)
{
	size_t nb = h->nb * 2, i;
	struct xs_node **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (i = 0; i < h->nb; i++) {
		struct xs_node *n = h->b[i], *next;
		for (; n; n = next) {
			next = n->hnext;
			n->hnext = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
		}
	}
	free(h->b);
	h->b = b;
	h->nb = nb;
	return 0;
}

/* Takes ownership of n; the path must not be present yet. */
int xs_htab_put(struct xs_htab *h, struct xs_node *n)
{
	size_t slot;

	if (h->count >= h->nb && xs_htab_grow(h) < 0)
		return -ENOMEM;
	n->hash = xs_path_hash(n->path);
	slot = n->hash & (h->nb - 1);
	n->hnext = h->b[slot];
	h->b[slot] = n;
	h->count++;
	return 0;
}

struct xs_node *xs_htab_take(struct xs_htab *h, const char *path)
{
	uint32_t hash = xs_path_hash(path);
	struct xs_node **pp;

	for (pp = &h->b[hash & (h->nb - 1)]; *pp; pp = &(*pp)->hnext) {
		struct xs_node *n = *pp;
		if (n->hash == hash && strcmp(n->path, path) == 0) {
			*pp = n->hnext;
			n->hnext = NULL;
			h->count--;
			return n;
		}
	}
	return NULL;
}

struct xs_node *xs_node_new(const char *path)
{
	struct xs_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->path = strdup(path);
	if (!n->path) {
		free(n);
		return NULL;
	}
	n->present = true;
	return n;
}

struct xs_node *xs_node_dup(const struct xs_node *src)
{
	struct xs_node *n = xs_node_new(src->path);

	if (!n)
		return NULL;
	n->gen = src->gen;
	n->present = src->present;
	if (xs_node_set_value(n, src->value, src->vlen) < 0 ||
	    xs_node_set_perms(n, src->perms, src->nperms) < 0)
		goto fail;
	if (src->clen) {
		n->children = malloc(src->clen);
		if (!n->children)
			goto fail;
		memcpy(n->children, src->children, src->clen);
		n->clen = n->ccap = src->clen;
	}
	return n;
fail:
	xs_node_free(n);
	return NULL;
}

void xs_node_free(struct xs_node *n)
{
	if (!n)
		return;
	free(n->path);
	free(n->value);
	free(n->perms);
	free(n->children);
	free(n);
}

int xs_node_set_value(struct xs_node *n, const char *v, uint32_t len)
{
	char *nv = NULL;

	if (len) {
		nv = malloc(len);
		if (!nv)
			return -ENOMEM;
		memcpy(nv, v, len);
	}
	free(n->value);
	n->value = nv;
	n->vlen = len;
	return 0;
}

int xs_node_set_perms(struct xs_node *n, const struct xs_perm *p, uint32_t np)
{
	struct xs_perm *np_ = NULL;

	if (np) {
		np_ = malloc(np * sizeof(*p));
		if (!np_)
			return -ENOMEM;
		memcpy(np_, p, np * sizeof(*p));
	}
	free(n->perms);
	n->perms = np_;
	n->nperms = np;
	return 0;
}

static long xs_node_child_find(const struct xs_node *n, const char *name)
{
	uint32_t off = 0;

	while (off < n->clen) {
		const char *c = n->children + off;
		size_t l = strlen(c);
		if (strcmp(c, name) == 0)
			return off;
		off += (uint32_t)l + 1;
	}
	return -1;
}

int xs_node_child_add(struct xs_node *n, const char *name)
{
	uint32_t l = (uint32_t)strlen(name) + 1;

	if (xs_node_child_find(n, name) >= 0)
		return 0;
	if (n->clen + l > n->ccap) {
		uint32_t cap = n->ccap ? n->ccap * 2 : 64;
		char *b;
		while (cap < n->clen + l)
			cap *= 2;
		b = realloc(n->children, cap);
		if (!b)
			return -ENOMEM;
		n->children = b;
		n->ccap = cap;
	}
	memcpy(n->children + n->clen, name, l);
	n->clen += l;
	return 0;
}

int xs_node_child_del(struct xs_node *n, const char *name)
{
	long off = xs_node_child_find(n, name);
	uint32_t l;

	if (off < 0)
		return -ENOENT;
	l = (uint32_t)strlen(n->children + off) + 1;
	memmove(n->children + off, n->children + off + l, n->clen - (uint32_t)off - l);
	n->clen -= l;
	return 0;
}

/* What the node-size quota measures: value, child names and permission entries. */
uint32_t xs_node_size(const struct xs_node *n)
{
	return n->vlen + n->clen + n->nperms * (uint32_t)sizeof(struct xs_perm);
}

static const char xs_perm_letters[] = "nrwb";

/* Parses len bytes of NUL-terminated "<n|r|w|b><domid>" strings. */
int xs_perms_parse(const char *buf, uint32_t len, struct xs_perm *out, uint32_t max, uint32_t *np)
{
	uint32_t off = 0, n = 0;

	if (len == 0 || buf[len - 1] != '\0')
		return -EINVAL;
	while (off < len) {
		const char *s = buf + off, *lp;
		size_t l = strlen(s);
		unsigned long id = 0;
		size_t i;

		if (l < 2 || !(lp = strchr(xs_perm_letters, s[0])) || s[0] == '\0')
			return -EINVAL;
		for (i = 1; i < l; i++) {
			if (s[i] < '0' || s[i] > '9' || i > 6)
				return -EINVAL;
			id = id * 10 + (unsigned long)(s[i] - '0');
		}
		if (id > XS_DOMID_MAX)
			return -EINVAL;
		if (n >= max)
			return -E2BIG;
		out[n].id = (uint32_t)id;
		out[n].perms = (uint32_t)(lp - xs_perm_letters);
		n++;
		off += (uint32_t)l + 1;
	}
	*np = n;
	return 0;
}

/* Writes the wire form (each entry NUL-terminated); returns bytes written or -E2BIG. */
int xs_perms_format(const struct xs_perm *p, uint32_t np, char *out, size_t outsz)
{
	size_t off = 0;
	uint32_t i;

	for (i = 0; i < np; i++) {
		int w = snprintf(out + off, outsz - off, "%c%u", xs_perm_letters[p[i].perms & XS_P_BOTH],
				 p[i].id);
		if (w < 0 || off + (size_t)w + 1 > outsz)
			return -E2BIG;
		off += (size_t)w + 1;
	}
	return (int)off;
}

/* The first entry names the owner and the default for everyone else; owners, the privileged
 * and a domain acting for the owner (SET_TARGET) get everything. */
uint32_t xs_perm_for_conn(const struct xs_conn *c, const struct xs_perm *p, uint32_t np)
{
	uint32_t i;

	if (np == 0)
		return c->priv ? XS_P_ALL : XS_P_NONE;
	if (c->priv || p[0].id == c->id || (c->target != XS_DOMID_NONE && p[0].id == c->target))
		return XS_P_ALL;
	for (i = 1; i < np; i++)
		if (p[i].id == c->id || (c->target != XS_DOMID_NONE && p[i].id == c->target))
			return p[i].perms & XS_P_BOTH;
	return p[0].perms & XS_P_BOTH;
}
