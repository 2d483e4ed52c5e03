/* JSON views of the hypervisor's domain records for `list --json` and `info --json`, written
 * with yajl_gen so strings from the wire are always escaped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domctl.h"
#include "domcfg.h"

static void domctl_key(yajl_gen g, const char *key)
{
	yajl_gen_string(g, (const unsigned char *)key, strlen(key));
}

static void domctl_json_str(yajl_gen g, const char *key, const char *value)
{
	domctl_key(g, key);
	yajl_gen_string(g, (const unsigned char *)value, strlen(value));
}

static void domctl_json_u64(yajl_gen g, const char *key, unsigned long long value)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%llu", value);

	domctl_key(g, key);
	yajl_gen_number(g, num, (size_t)n);
}

int domctl_json_dominfo(yajl_gen g, const struct lamina_ctl_dominfo *info)
{
	char name[LAMINA_NAME_MAX], uuid[37], secs[32];
	int n;

	/* The record came off the wire: never trust its name to be terminated. */
	memcpy(name, info->name, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	domcfg_format_uuid(info->uuid, uuid);
	yajl_gen_map_open(g);
	domctl_json_u64(g, "id", info->domid);
	domctl_json_str(g, "name", name);
	domctl_json_str(g, "uuid", uuid);
	domctl_json_str(g, "state", ctl_state_name(info->state));
	if (info->state == LAMINA_DOM_SHUTDOWN || info->state == LAMINA_DOM_CRASHED ||
	    info->state == LAMINA_DOM_DEAD) {
		domctl_json_str(g, "shutdown_reason", ctl_shutdown_reason_name(info->shutdown_reason));
		domctl_key(g, "shutdown_code");
		yajl_gen_integer(g, info->shutdown_code);
	}
	domctl_json_u64(g, "memory_kib", info->memory_kib);
	domctl_json_u64(g, "max_memory_kib", info->max_memory_kib);
	domctl_json_u64(g, "vcpus", info->vcpus);
	domctl_json_u64(g, "vcpus_online", info->vcpus_online);
	n = snprintf(secs, sizeof(secs), "%.3f", (double)info->cpu_time_ns / 1e9);
	domctl_key(g, "cpu_time_s");
	yajl_gen_number(g, secs, (size_t)n);
	domctl_json_u64(g, "cpu_time_ns", info->cpu_time_ns);
	domctl_json_u64(g, "create_ns", info->create_ns);
	domctl_json_u64(g, "first_console_ns", info->first_console_ns);
	domctl_json_u64(g, "exits", info->exits);
	domctl_json_u64(g, "hypercalls", info->hypercalls);
	domctl_json_u64(g, "console_bytes", info->console_bytes);
	domctl_json_u64(g, "restarts", info->restarts);
	domctl_json_str(g, "on_poweroff", ctl_action_name(info->on_poweroff));
	domctl_json_str(g, "on_reboot", ctl_action_name(info->on_reboot));
	domctl_json_str(g, "on_crash", ctl_action_name(info->on_crash));
	if (info->state == LAMINA_DOM_DEAD && info->action_taken != 0xff)
		domctl_json_str(g, "action_taken", ctl_action_name(info->action_taken));
	return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -EINVAL;
}

/* Copy the generator's buffer out with a trailing newline. */
static int domctl_json_take(yajl_gen g, char **out, size_t *len)
{
	const unsigned char *buf;
	size_t n;

	if (yajl_gen_get_buf(g, &buf, &n) != yajl_gen_status_ok)
		return -EINVAL;
	*out = malloc(n + 2);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, buf, n);
	if (n == 0 || buf[n - 1] != '\n')
		(*out)[n++] = '\n';
	(*out)[n] = '\0';
	*len = n;
	return 0;
}

int domctl_json_list(const struct lamina_ctl_dominfo *v, size_t n, char **out, size_t *len)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	int r = 0;

	if (!g)
		return -ENOMEM;
	yajl_gen_array_open(g);
	for (size_t i = 0; !r && i < n; i++)
		r = domctl_json_dominfo(g, &v[i]);
	if (!r && yajl_gen_array_close(g) != yajl_gen_status_ok)
		r = -EINVAL;
	if (!r)
		r = domctl_json_take(g, out, len);
	yajl_gen_free(g);
	return r;
}

int domctl_json_info(const struct lamina_ctl_dominfo *info, char **out, size_t *len)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	int r;

	if (!g)
		return -ENOMEM;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_indent_string, "  ");
	r = domctl_json_dominfo(g, info);
	if (!r)
		r = domctl_json_take(g, out, len);
	yajl_gen_free(g);
	return r;
}
