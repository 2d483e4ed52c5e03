/* Optional persistence of the node tree across daemon restarts: a versioned binary file written
 * atomically (temp file + rename), read back with every length and path checked.
 * Version 2: the magic, one record per node (parents first), then a record with pathlen 0 whose
 * nperms counts the special paths that follow (@introduceDomain, @releaseDomain: name and
 * permissions). Version 1 files (nodes only) are still read. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "xs_store.h"

static const char xs_persist_magic[8] = {'L', 'X', 'S', 'T', 'O', 'R', 'E', '2'};
static const char xs_persist_magic_v1[8] = {'L', 'X', 'S', 'T', 'O', 'R', 'E', '1'};

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

static int xs_persist_specials(FILE *f, const struct xs_store *st)
{
	const uint32_t nspecial = sizeof(st->special) / sizeof(st->special[0]);
	struct xs_rec sep = {0, nspecial, 0};
	uint32_t i;

	if (fwrite(&sep, sizeof(sep), 1, f) != 1)
		return -EIO;
	for (i = 0; i < nspecial; i++) {
		const struct xs_special *sp = &st->special[i];
		struct xs_rec r = {(uint32_t)strlen(sp->name), sp->nperms, 0};

		if (fwrite(&r, sizeof(r), 1, f) != 1 || fwrite(sp->name, 1, r.pathlen, f) != r.pathlen ||
		    fwrite(sp->perms, sizeof(sp->perms[0]), r.nperms, f) != r.nperms)
			return -EIO;
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
	if (rc == 0)
		rc = xs_persist_specials(f, st);
	if (fclose(f) != 0 && rc == 0)
		rc = -EIO;
	if (rc == 0 && rename(tmp, file) < 0)
		rc = -errno;
	if (rc < 0)
		remove(tmp);
	return rc;
}

/* The special paths' permissions after the separator; applied to specials[] (a copy) only when
 * all of them read back valid. 0, or -errno. */
static int xs_persist_read_specials(FILE *f, uint32_t count, struct xs_special *specials, uint32_t nspecial)
{
	char name[32];
	struct xs_perm perms[8];
	struct xs_rec r;
	uint32_t i, j;

	if (count > 16)
		return -EINVAL;
	for (i = 0; i < count; i++) {
		if (fread(&r, sizeof(r), 1, f) != 1)
			return -EIO;
		if (r.pathlen == 0 || r.pathlen >= sizeof(name) || r.nperms == 0 ||
		    r.nperms > sizeof(perms) / sizeof(perms[0]) || r.vlen != 0)
			return -EINVAL;
		if (fread(name, 1, r.pathlen, f) != r.pathlen || fread(perms, sizeof(perms[0]), r.nperms, f) != r.nperms)
			return -EIO;
		name[r.pathlen] = '\0';
		for (j = 0; j < r.nperms; j++)
			if (perms[j].id > XS_DOMID_MAX || perms[j].perms > XS_P_BOTH)
				return -EINVAL;
		for (j = 0; j < nspecial; j++)
			if (specials[j].name && strcmp(specials[j].name, name) == 0) {
				memcpy(specials[j].perms, perms, r.nperms * sizeof(perms[0]));
				specials[j].nperms = r.nperms;
			}
	}
	return fgetc(f) == EOF ? 1 : -EINVAL; /* nothing may follow */
}

/* Reads one record; parents come before children in the file. 0: a node; 1: the end (of the file,
 * or the specials section in a version 2 file, read into specials); -errno. */
static int xs_persist_read_node(FILE *f, struct xs_htab *h, int version, struct xs_special *specials,
				uint32_t nspecial)
{
	char path[XENSTORE_ABS_PATH_MAX + 1], parent[XENSTORE_ABS_PATH_MAX + 1];
	struct xs_perm perms[64];
	struct xs_node *n, *pn;
	struct xs_rec r;
	char *val = NULL;
	uint32_t i;
	int rc = -EINVAL;

	if (fread(&r, sizeof(r), 1, f) != 1)
		return feof(f) && version == 1 ? 1 : -EIO;
	if (r.pathlen == 0 && version == 2 && r.vlen == 0)
		return xs_persist_read_specials(f, r.nperms, specials, nspecial);
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
	const uint32_t nspecial = sizeof(st->special) / sizeof(st->special[0]);
	struct xs_special specials[sizeof(st->special) / sizeof(st->special[0])];
	struct xs_htab h;
	char magic[sizeof(xs_persist_magic)];
	FILE *f = fopen(file, "rbe");
	int version = 0;
	size_t i;
	int rc;

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	if (fread(magic, sizeof(magic), 1, f) == 1)
		version = memcmp(magic, xs_persist_magic, sizeof(magic)) == 0	       ? 2
			  : memcmp(magic, xs_persist_magic_v1, sizeof(magic)) == 0 ? 1
										   : 0;
	if (!version) {
		fclose(f);
		return -EINVAL;
	}
	memcpy(specials, st->special, sizeof(specials));
	if (xs_htab_init(&h, 1024) < 0) {
		fclose(f);
		return -ENOMEM;
	}
	while ((rc = xs_persist_read_node(f, &h, version, specials, nspecial)) == 0)
		;
	fclose(f);
	if (rc < 0 || !xs_htab_get(&h, "/")) {
		xs_htab_free_all(&h);
		return rc < 0 ? rc : -EINVAL;
	}
	xs_htab_free_all(&st->nodes);
	st->nodes = h;
	memcpy(st->special, specials, sizeof(specials));
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
