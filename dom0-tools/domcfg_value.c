/* Value rules of the domain configuration: names, sizes with libvirt's units, numbers, UUIDs,
 * MACs, lifecycle actions and file paths. Every input is text from a file a user handed us. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domcfg.h"

#define DOMCFG_ERR(err, errlen, ...) (snprintf((err), (errlen), __VA_ARGS__), -EINVAL)

int domcfg_check_name(const char *name, char *err, size_t errlen)
{
	size_t len = strlen(name);

	if (len == 0 || len >= LAMINA_NAME_MAX)
		return DOMCFG_ERR(err, errlen, "name must be 1-%d characters", LAMINA_NAME_MAX - 1);
	if (strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != len)
		return DOMCFG_ERR(err, errlen, "\"%s\": a name may only contain A-Z a-z 0-9 _ . -", name);
	if (name[0] == '-' || name[0] == '.')
		return DOMCFG_ERR(err, errlen, "\"%s\": a name may not start with '%c'", name, name[0]);
	if (strspn(name, "0123456789") == len)
		return DOMCFG_ERR(err, errlen,
				  "\"%s\": a name may not be all digits (it would read as an id)", name);
	return 0;
}

/* Leading and trailing XML whitespace is allowed around numbers, as the schema's types allow. */
static int domcfg_trim(const char *text, const char **start, size_t *len)
{
	const char *s = text, *e = text + strlen(text);

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		e--;
	*start = s;
	*len = (size_t)(e - s);
	return *len ? 0 : -EINVAL;
}

int domcfg_parse_uint(const char *text, uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	const char *s;
	uint64_t v = 0;
	size_t len;

	if (domcfg_trim(text, &s, &len) < 0)
		return DOMCFG_ERR(err, errlen, "a number is required");
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (!isdigit((unsigned char)s[i]))
			return DOMCFG_ERR(err, errlen, "\"%s\" is not a number", text);
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return DOMCFG_ERR(err, errlen, "\"%s\" is too large", text);
		v = v * 10 + d;
	}
	if (v > max)
		return DOMCFG_ERR(err, errlen, "%llu is more than %llu", (unsigned long long)v,
				  (unsigned long long)max);
	*out = v;
	return 0;
}

/* libvirt's scaled integers: b/bytes = 1; k/KiB = 1024, KB = 1000; and so on up to E; the
 * letters are case-insensitive ("kb" is 1000, "kib" 1024). */
static int domcfg_unit_scale(const char *unit, uint64_t *scale)
{
	static const char prefixes[] = "kmgtpe";
	const char *p;
	uint64_t base;

	if (!unit || !*unit) {
		*scale = 1024;
		return 0;
	}
	if (!strcasecmp(unit, "b") || !strcasecmp(unit, "byte") || !strcasecmp(unit, "bytes")) {
		*scale = 1;
		return 0;
	}
	p = strchr(prefixes, tolower((unsigned char)unit[0]));
	if (!p || !*p)
		return -EINVAL;
	if (unit[1] == '\0' || !strcasecmp(unit + 1, "ib"))
		base = 1024;
	else if (!strcasecmp(unit + 1, "b"))
		base = 1000;
	else
		return -EINVAL;
	*scale = 1;
	for (const char *q = prefixes; q <= p; q++)
		*scale *= base;
	return 0;
}

int domcfg_parse_size(const char *text, const char *unit, uint64_t *kib, char *err, size_t errlen)
{
	uint64_t v, scale;
	int r;

	if (domcfg_unit_scale(unit, &scale) < 0)
		return DOMCFG_ERR(err, errlen, "unknown unit \"%s\" (use b, KiB, KB, MiB, MB, GiB, GB, ...)",
				  unit);
	r = domcfg_parse_uint(text, UINT64_MAX, &v, err, errlen);
	if (r)
		return r;
	if (v && scale > UINT64_MAX / v)
		return DOMCFG_ERR(err, errlen, "\"%s\" %s is too large", text, unit);
	v *= scale;
	*kib = v / 1024 + (v % 1024 ? 1 : 0);
	return 0;
}

int domcfg_parse_uuid(const char *text, uint8_t uuid[16], char *err, size_t errlen)
{
	const char *s;
	size_t len, n = 0;
	int dashed;

	if (domcfg_trim(text, &s, &len) < 0)
		return DOMCFG_ERR(err, errlen, "a UUID is required");
	if (len != 32 && len != 36)
		return DOMCFG_ERR(err, errlen, "\"%s\" is not a UUID", text);
	dashed = len == 36;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
			if (s[i] != '-')
				return DOMCFG_ERR(err, errlen, "\"%s\" is not a UUID", text);
			continue;
		}
		if (i + 1 >= len || !isxdigit((unsigned char)s[i]) || !isxdigit((unsigned char)s[i + 1]))
			return DOMCFG_ERR(err, errlen, "\"%s\" is not a UUID", text);
		hi = isdigit((unsigned char)s[i]) ? s[i] - '0' : tolower((unsigned char)s[i]) - 'a' + 10;
		lo = isdigit((unsigned char)s[i + 1]) ? s[i + 1] - '0'
						      : tolower((unsigned char)s[i + 1]) - 'a' + 10;
		if (n >= 16)
			return DOMCFG_ERR(err, errlen, "\"%s\" is not a UUID", text);
		uuid[n++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	if (n != 16)
		return DOMCFG_ERR(err, errlen, "\"%s\" is not a UUID", text);
	return 0;
}

void domcfg_format_uuid(const uint8_t u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
		 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

int domcfg_parse_mac(const char *text, uint8_t mac[6], char *err, size_t errlen)
{
	unsigned v[6];
	int used = 0;

	if (strlen(text) != 17 ||
	    sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%n", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &used) != 6 ||
	    used != 17)
		return DOMCFG_ERR(err, errlen, "\"%s\" is not a MAC address (xx:xx:xx:xx:xx:xx)", text);
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? text[i] != ':' : !isxdigit((unsigned char)text[i]))
			return DOMCFG_ERR(err, errlen, "\"%s\" is not a MAC address (xx:xx:xx:xx:xx:xx)",
					  text);
	if (v[0] & 1)
		return DOMCFG_ERR(err, errlen, "\"%s\" is a multicast address", text);
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

void domcfg_format_mac(const uint8_t m[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static const char *const domcfg_actions[] = {
    [LAMINA_ACT_DESTROY] = "destroy",
    [LAMINA_ACT_RESTART] = "restart",
    [LAMINA_ACT_PRESERVE] = "preserve",
    [LAMINA_ACT_RENAME_RESTART] = "rename-restart",
    [LAMINA_ACT_COREDUMP_DESTROY] = "coredump-destroy",
    [LAMINA_ACT_COREDUMP_RESTART] = "coredump-restart",
};

int domcfg_parse_action(const char *text, int crash, uint8_t *action, char *err, size_t errlen)
{
	for (uint8_t i = 0; i < sizeof(domcfg_actions) / sizeof(domcfg_actions[0]); i++) {
		if (strcmp(text, domcfg_actions[i]))
			continue;
		if (!crash && (i == LAMINA_ACT_COREDUMP_DESTROY || i == LAMINA_ACT_COREDUMP_RESTART))
			return DOMCFG_ERR(err, errlen, "\"%s\" is only valid in on_crash", text);
		*action = i;
		return 0;
	}
	return DOMCFG_ERR(err, errlen,
			  "\"%s\" is not an action (destroy, restart, preserve, rename-restart%s)", text,
			  crash ? ", coredump-destroy, coredump-restart" : "");
}

const char *domcfg_action_name(uint8_t action)
{
	return action < sizeof(domcfg_actions) / sizeof(domcfg_actions[0]) ? domcfg_actions[action]
									   : "destroy";
}

int domcfg_resolve_file(const char *path, const char *basedir, int allow_block, char *out, size_t size,
			char *err, size_t errlen)
{
	struct stat st;
	int n;

	if (!*path)
		return DOMCFG_ERR(err, errlen, "a path is required");
	if (path[0] == '/')
		n = snprintf(out, size, "%s", path);
	else
		n = snprintf(out, size, "%s/%s", basedir, path);
	if (n < 0 || (size_t)n >= size)
		return DOMCFG_ERR(err, errlen, "path is longer than %zu bytes", size - 1);
	if (stat(out, &st) < 0)
		return DOMCFG_ERR(err, errlen, "%s: %s", out, strerror(errno));
	if (!S_ISREG(st.st_mode) && !(allow_block && S_ISBLK(st.st_mode)))
		return DOMCFG_ERR(err, errlen, "%s: not a regular file", out);
	if (access(out, R_OK) < 0)
		return DOMCFG_ERR(err, errlen, "%s: not readable: %s", out, strerror(errno));
	return 0;
}

int domcfg_check(const struct domcfg *cfg, char *err, size_t errlen)
{
	if (cfg->max_memory_kib < LAMINA_MIN_MEMORY_KIB)
		return DOMCFG_ERR(err, errlen, "/domain/memory: %llu KiB is less than the minimum of %u KiB",
				  (unsigned long long)cfg->max_memory_kib, LAMINA_MIN_MEMORY_KIB);
	if (cfg->memory_kib < LAMINA_MIN_MEMORY_KIB)
		return DOMCFG_ERR(err, errlen,
				  "/domain/currentMemory: %llu KiB is less than the minimum of %u KiB",
				  (unsigned long long)cfg->memory_kib, LAMINA_MIN_MEMORY_KIB);
	if (cfg->memory_kib > cfg->max_memory_kib)
		return DOMCFG_ERR(
		    err, errlen, "/domain/currentMemory: %llu KiB is more than <memory> (%llu KiB)",
		    (unsigned long long)cfg->memory_kib, (unsigned long long)cfg->max_memory_kib);
	if (cfg->vcpus < 1 || cfg->vcpus > LAMINA_MAX_VCPUS)
		return DOMCFG_ERR(err, errlen, "/domain/vcpu: %u is not in 1..%u", cfg->vcpus,
				  LAMINA_MAX_VCPUS);
	for (unsigned i = 0; i < cfg->ndisks; i++)
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(cfg->disks[i].target, cfg->disks[j].target))
				return DOMCFG_ERR(err, errlen,
						  "/domain/devices/disk[%u]/target: %s is used twice", i + 1,
						  cfg->disks[i].target);
	return 0;
}
