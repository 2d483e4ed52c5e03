/* Optional persistence of the node tree across daemon restarts: a versioned binary file written
 * atomically (temp file + rename), read back with every length and path checked. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "xs_store.h"

static const char xs_persist_magic[8] = {'L', 'X', 'S', 'T', 'O', 'R', 'E', '1'};

struct xs_rec {
	uint32_t pathlen, nperms, vlen;
};

static int xs_persist_node(FILE *f, struct xs_store *st, const struct xs_node *n)
{
	struct xs_rec r = {(uint32_t)strlen(n->path), n->nperms, n->vlen};
	char cp[XENSTORE_ABS_PATH_MAX + 2];
	uint32_t off = 0;
	int rc;

	if (fwrite(&r, sizeof(r), 1, f) != 1 || fwrite(n->path, 1, r.pathlen, f) != r.pathlen ||
	    (r.nperms && fwrite(n->perms, sizeof(*n->perms), r.nperms, f) != r.nperms) ||
	    (r.vlen && fwrite(n->value, 1, r.vlen, f) != r.vlen))
		return -EIO;
	while (off < n->clen) {
		const char *name = n->children + off;
		const struct xs_node *child;
		off += (uint32_t)strlen(name) + 1;
		snprintf(cp, sizeof(cp), "%s/%s", strcmp(n->path, "/") == 0 ? "" : n->path, name);
		child = xs_htab_get(&st->nodes, cp);
		if (child && (rc = xs_persist_node(f, st, child)) < 0)
			return rc;
	}
	return 0;
}

int xs_persist_save(struct xs_store *st, const char *file)
{
	char tmp[4096];
	const struct xs_node *root = xs_htab_get(&st->nodes, "/");
	FILE *f;
	int rc;

	if (!root)
		return -EIO;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "wbe");
	if (!f)
		return -errno;
	rc = fwrite(xs_persist_magic, sizeof(xs_persist_magic), 1, f) == 1 ? 0 : -EIO;
	if (rc == 0)
		rc = xs_persist_node(f, st, root);
	if (fclose(f) != 0 && rc == 0)
		rc = -EIO;
	if (rc == 0 && rename(tmp, file) < 0)
		rc = -errno;
	if (rc < 0)
		remove(tmp);
	return rc;
}

/* Reads one record; parents come before children in the file. */
static int xs_persist_read_node(FILE *f, struct xs_htab *h)
{
	char path[XENSTORE_ABS_PATH_MAX + 1], parent[XENSTORE_ABS_PATH_MAX + 1];
	struct xs_perm perms[64];
	struct xs_node *n, *pn;
	struct xs_rec r;
	char *val = NULL;
	uint32_t i;
	int rc = -EINVAL;

	if (fread(&r, sizeof(r), 1, f) != 1)
		return feof(f) ? 1 : -EIO;
	if (r.pathlen == 0 || r.pathlen > XENSTORE_ABS_PATH_MAX || r.nperms == 0 || r.nperms > 64 ||
	    r.vlen > XENSTORE_PAYLOAD_MAX)
		return -EINVAL;
	if (fread(path, 1, r.pathlen, f) != r.pathlen ||
	    fread(perms, sizeof(perms[0]), r.nperms, f) != r.nperms)
		return -EIO;
	path[r.pathlen] = '\0';
	if (strlen(path) != r.pathlen || !xs_path_valid(path) || xs_htab_get(h, path))
		return -EINVAL;
	for (i = 0; i < r.nperms; i++)
		if (perms[i].id > XS_DOMID_MAX || perms[i].perms > XS_P_BOTH)
			return -EINVAL;
	if (r.vlen) {
		val = malloc(r.vlen);
		if (!val)
			return -ENOMEM;
		if (fread(val, 1, r.vlen, f) != r.vlen) {
			free(val);
			return -EIO;
		}
	}
	pn = NULL;
	if (strcmp(path, "/") != 0) {
		if (xs_path_parent(path, parent, sizeof(parent)) < 0 || !(pn = xs_htab_get(h, parent)))
			goto out;
	} else if (h->count) {
		goto out;
	}
	n = xs_node_new(path);
	if (!n || xs_node_set_value(n, val, r.vlen) < 0 || xs_node_set_perms(n, perms, r.nperms) < 0 ||
	    (pn && xs_node_child_add(pn, xs_path_base(path)) < 0) || xs_htab_put(h, n) < 0) {
		xs_node_free(n);
		rc = -ENOMEM;
		goto out;
	}
	rc = 0;
out:
	free(val);
	return rc;
}

/* Replaces the tree with the file's; a missing file leaves the fresh tree. */
int xs_persist_load(struct xs_store *st, const char *file)
{
	struct xs_htab h;
	char magic[sizeof(xs_persist_magic)];
	FILE *f = fopen(file, "rbe");
	size_t i;
	int rc;

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	if (fread(magic, sizeof(magic), 1, f) != 1 || memcmp(magic, xs_persist_magic, sizeof(magic)) != 0) {
		fclose(f);
		return -EINVAL;
	}
	if (xs_htab_init(&h, 1024) < 0) {
		fclose(f);
		return -ENOMEM;
	}
	while ((rc = xs_persist_read_node(f, &h)) == 0)
		;
	fclose(f);
	if (rc < 0 || !xs_htab_get(&h, "/")) {
		xs_htab_free_all(&h);
		return rc < 0 ? rc : -EINVAL;
	}
	xs_htab_free_all(&st->nodes);
	st->nodes = h;
	/* Fresh generations and owner counts. */
	for (i = 0; i < XS_DOM_BUCKETS; i++) {
		struct xs_domain *d;
		for (d = st->domains[i]; d; d = d->next)
			d->nodes = 0;
	}
	for (i = 0; i < h.nb; i++) {
		struct xs_node *n;
		for (n = st->nodes.b[i]; n; n = n->hnext) {
			n->gen = ++st->gen;
			xs_tree_count_owner(st, n, 1);
		}
	}
	return 0;
}
