/* The toolstack's per-domain state file: the normalized config and domain id as JSON, written
 * with yajl_gen atomically (rename) and read back with yajl_tree, checked like any input. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "domcfg.h"

#define DOMCFG_STATE_DIR "domains"
#define DOMCFG_STATE_MAX (256 * 1024)

static void domcfg_gen_str(yajl_gen g, const char *key, const char *value)
{
	yajl_gen_string(g, (const unsigned char *)key, strlen(key));
	yajl_gen_string(g, (const unsigned char *)value, strlen(value));
}

static void domcfg_gen_num(yajl_gen g, const char *key, unsigned long long value)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%llu", value);

	yajl_gen_string(g, (const unsigned char *)key, strlen(key));
	yajl_gen_number(g, num, (size_t)n);
}

static void domcfg_gen_bool(yajl_gen g, const char *key, int value)
{
	yajl_gen_string(g, (const unsigned char *)key, strlen(key));
	yajl_gen_bool(g, value);
}

static void domcfg_gen_devices(yajl_gen g, const struct domcfg *cfg)
{
	char mac[18];

	yajl_gen_string(g, (const unsigned char *)"disks", 5);
	yajl_gen_array_open(g);
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		yajl_gen_map_open(g);
		domcfg_gen_str(g, "source", cfg->disks[i].source);
		domcfg_gen_str(g, "target", cfg->disks[i].target);
		domcfg_gen_bool(g, "block", cfg->disks[i].is_block);
		domcfg_gen_bool(g, "readonly", cfg->disks[i].readonly);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_string(g, (const unsigned char *)"interfaces", 10);
	yajl_gen_array_open(g);
	for (unsigned i = 0; i < cfg->nnics; i++) {
		yajl_gen_map_open(g);
		domcfg_gen_str(g, "bridge", cfg->nics[i].bridge);
		if (cfg->nics[i].has_mac) {
			domcfg_format_mac(cfg->nics[i].mac, mac);
			domcfg_gen_str(g, "mac", mac);
		}
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
}

int domcfg_json_gen(const struct domcfg *cfg, uint32_t domid, char **out, size_t *len)
{
	const unsigned char *buf;
	char uuid[37];
	yajl_gen g = yajl_gen_alloc(NULL);
	int r = 0;

	if (!g)
		return -ENOMEM;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_map_open(g);
	domcfg_gen_num(g, "domid", domid);
	domcfg_gen_str(g, "name", cfg->name);
	domcfg_format_uuid(cfg->uuid, uuid);
	domcfg_gen_str(g, "uuid", uuid);
	domcfg_gen_bool(g, "uuid_generated", cfg->uuid_generated);
	domcfg_gen_str(g, "title", cfg->title);
	domcfg_gen_str(g, "description", cfg->description);
	domcfg_gen_num(g, "memory_kib", cfg->memory_kib);
	domcfg_gen_num(g, "max_memory_kib", cfg->max_memory_kib);
	domcfg_gen_num(g, "vcpus", cfg->vcpus);
	domcfg_gen_str(g, "kernel", cfg->kernel);
	domcfg_gen_str(g, "initrd", cfg->initrd);
	domcfg_gen_str(g, "cmdline", cfg->cmdline);
	domcfg_gen_str(g, "on_poweroff", domcfg_action_name(cfg->on_poweroff));
	domcfg_gen_str(g, "on_reboot", domcfg_action_name(cfg->on_reboot));
	domcfg_gen_str(g, "on_crash", domcfg_action_name(cfg->on_crash));
	domcfg_gen_bool(g, "console", cfg->has_console);
	domcfg_gen_devices(g, cfg);
	yajl_gen_map_close(g);
	if (yajl_gen_get_buf(g, &buf, len) != yajl_gen_status_ok) {
		r = -EINVAL;
		goto out;
	}
	*out = malloc(*len + 1);
	if (!*out) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(*out, buf, *len);
	(*out)[*len] = '\0';
out:
	yajl_gen_free(g);
	return r;
}

/* Copy a string member into buf; absent members leave buf empty unless required. */
static int domcfg_json_str(yajl_val root, const char *key, int required, char *buf, size_t size, char *err,
			   size_t errlen)
{
	const char *path[] = {key, NULL};
	yajl_val v = yajl_tree_get(root, path, yajl_t_any);
	const char *s;

	buf[0] = '\0';
	if (!v && !required)
		return 0;
	s = v && YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
	if (!s)
		return snprintf(err, errlen, "\"%s\" must be a string", key), -EINVAL;
	if (strlen(s) >= size)
		return snprintf(err, errlen, "\"%s\" is longer than %zu bytes", key, size - 1), -EINVAL;
	strcpy(buf, s);
	return 0;
}

static int domcfg_json_num(yajl_val root, const char *key, uint64_t max, uint64_t *out, char *err,
			   size_t errlen)
{
	const char *path[] = {key, NULL};
	yajl_val v = yajl_tree_get(root, path, yajl_t_any);

	if (!v || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0 || (uint64_t)YAJL_GET_INTEGER(v) > max)
		return snprintf(err, errlen, "\"%s\" must be an integer in 0..%llu", key,
				(unsigned long long)max),
		       -EINVAL;
	*out = (uint64_t)YAJL_GET_INTEGER(v);
	return 0;
}

static int domcfg_json_bool(yajl_val root, const char *key)
{
	const char *path[] = {key, NULL};

	return YAJL_IS_TRUE(yajl_tree_get(root, path, yajl_t_any));
}

static int domcfg_json_devices(yajl_val root, struct domcfg *cfg, char *err, size_t errlen)
{
	const char *dpath[] = {"disks", NULL}, *npath[] = {"interfaces", NULL};
	yajl_val disks = yajl_tree_get(root, dpath, yajl_t_array);
	yajl_val nics = yajl_tree_get(root, npath, yajl_t_array);
	char mac[32];
	int r = 0;

	if (disks && disks->u.array.len > DOMCFG_MAX_DISKS)
		return snprintf(err, errlen, "more than %d disks", DOMCFG_MAX_DISKS), -EINVAL;
	if (nics && nics->u.array.len > DOMCFG_MAX_NICS)
		return snprintf(err, errlen, "more than %d interfaces", DOMCFG_MAX_NICS), -EINVAL;
	for (size_t i = 0; !r && disks && i < disks->u.array.len; i++) {
		yajl_val d = disks->u.array.values[i];
		struct domcfg_disk *dk = &cfg->disks[cfg->ndisks++];

		r = domcfg_json_str(d, "source", 1, dk->source, sizeof(dk->source), err, errlen);
		if (!r)
			r = domcfg_json_str(d, "target", 1, dk->target, sizeof(dk->target), err, errlen);
		dk->is_block = (uint8_t)domcfg_json_bool(d, "block");
		dk->readonly = (uint8_t)domcfg_json_bool(d, "readonly");
	}
	for (size_t i = 0; !r && nics && i < nics->u.array.len; i++) {
		yajl_val n = nics->u.array.values[i];
		struct domcfg_nic *nic = &cfg->nics[cfg->nnics++];

		r = domcfg_json_str(n, "bridge", 1, nic->bridge, sizeof(nic->bridge), err, errlen);
		if (!r)
			r = domcfg_json_str(n, "mac", 0, mac, sizeof(mac), err, errlen);
		if (!r && mac[0]) {
			r = domcfg_parse_mac(mac, nic->mac, err, errlen);
			nic->has_mac = 1;
		}
	}
	return r;
}

int domcfg_json_parse(const char *json, struct domcfg *cfg, uint32_t *domid, char *err, size_t errlen)
{
	char text[64], ybuf[256];
	uint64_t v;
	yajl_val root;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	root = yajl_tree_parse(json, ybuf, sizeof(ybuf));
	if (!root)
		return snprintf(err, errlen, "not JSON: %s", ybuf), -EINVAL;
	if (!YAJL_IS_OBJECT(root)) {
		snprintf(err, errlen, "not a JSON object");
		r = -EINVAL;
		goto out;
	}
	if ((r = domcfg_json_num(root, "domid", LAMINA_DOMID_BY_NAME - 1, &v, err, errlen)))
		goto out;
	*domid = (uint32_t)v;
	if ((r = domcfg_json_str(root, "name", 1, cfg->name, sizeof(cfg->name), err, errlen)) ||
	    (r = domcfg_check_name(cfg->name, err, errlen)) ||
	    (r = domcfg_json_str(root, "uuid", 1, text, sizeof(text), err, errlen)) ||
	    (r = domcfg_parse_uuid(text, cfg->uuid, err, errlen)) ||
	    (r = domcfg_json_str(root, "title", 0, cfg->title, sizeof(cfg->title), err, errlen)) ||
	    (r = domcfg_json_str(root, "description", 0, cfg->description, sizeof(cfg->description), err,
				 errlen)) ||
	    (r = domcfg_json_str(root, "kernel", 1, cfg->kernel, sizeof(cfg->kernel), err, errlen)) ||
	    (r = domcfg_json_str(root, "initrd", 0, cfg->initrd, sizeof(cfg->initrd), err, errlen)) ||
	    (r = domcfg_json_str(root, "cmdline", 0, cfg->cmdline, sizeof(cfg->cmdline), err, errlen)))
		goto out;
	if ((r = domcfg_json_num(root, "memory_kib", UINT64_MAX >> 1, &cfg->memory_kib, err, errlen)) ||
	    (r = domcfg_json_num(root, "max_memory_kib", UINT64_MAX >> 1, &cfg->max_memory_kib, err,
				 errlen)) ||
	    (r = domcfg_json_num(root, "vcpus", LAMINA_MAX_VCPUS, &v, err, errlen)))
		goto out;
	cfg->vcpus = (uint32_t)v;
	if ((r = domcfg_json_str(root, "on_poweroff", 1, text, sizeof(text), err, errlen)) ||
	    (r = domcfg_parse_action(text, 0, &cfg->on_poweroff, err, errlen)) ||
	    (r = domcfg_json_str(root, "on_reboot", 1, text, sizeof(text), err, errlen)) ||
	    (r = domcfg_parse_action(text, 0, &cfg->on_reboot, err, errlen)) ||
	    (r = domcfg_json_str(root, "on_crash", 1, text, sizeof(text), err, errlen)) ||
	    (r = domcfg_parse_action(text, 1, &cfg->on_crash, err, errlen)))
		goto out;
	cfg->uuid_generated = (uint8_t)domcfg_json_bool(root, "uuid_generated");
	cfg->has_console = (uint8_t)domcfg_json_bool(root, "console");
	r = domcfg_json_devices(root, cfg, err, errlen);
	if (!r)
		r = domcfg_check(cfg, err, errlen);
out:
	yajl_tree_free(root);
	return r;
}

int domcfg_state_path(const char *rundir, const char *name, char *path, size_t size)
{
	char why[DOMCFG_ERR_MAX];
	int n;

	/* The name becomes a file name: only valid domain names (no '/', no leading '.'). */
	if (domcfg_check_name(name, why, sizeof(why)))
		return -EINVAL;
	n = snprintf(path, size, "%s/%s/%s.json", rundir, DOMCFG_STATE_DIR, name);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int domcfg_state_write(const char *rundir, const struct domcfg *cfg, uint32_t domid)
{
	char dir[4096], path[4096], tmp[4200];
	char *json;
	size_t len;
	int fd, r;

	snprintf(dir, sizeof(dir), "%s/%s", rundir, DOMCFG_STATE_DIR);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	r = domcfg_state_path(rundir, cfg->name, path, sizeof(path));
	if (r)
		return r;
	r = domcfg_json_gen(cfg, domid, &json, &len);
	if (r)
		return r;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto out_free;
	}
	if (write(fd, json, len) != (ssize_t)len)
		r = -EIO;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
out_free:
	free(json);
	return r;
}

int domcfg_state_read(const char *rundir, const char *name, struct domcfg *cfg, uint32_t *domid)
{
	char path[4096], err[DOMCFG_ERR_MAX];
	char *buf;
	ssize_t n;
	int fd, r;

	r = domcfg_state_path(rundir, name, path, sizeof(path));
	if (r)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(DOMCFG_STATE_MAX + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out_close;
	}
	n = read(fd, buf, DOMCFG_STATE_MAX + 1);
	if (n < 0 || n > DOMCFG_STATE_MAX) {
		r = n < 0 ? -errno : -EFBIG;
		goto out_free;
	}
	buf[n] = '\0';
	r = domcfg_json_parse(buf, cfg, domid, err, sizeof(err));
out_free:
	free(buf);
out_close:
	close(fd);
	return r;
}

int domcfg_state_remove(const char *rundir, const char *name)
{
	char path[4096];
	int r = domcfg_state_path(rundir, name, path, sizeof(path));

	if (r)
		return r;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}
