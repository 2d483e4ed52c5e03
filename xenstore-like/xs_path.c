/* Store paths: canonical form, validity as Xen's xenstored defines it, and tree relations. */
#include <string.h>
#include <stdio.h>
#include <ctype.h>

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
