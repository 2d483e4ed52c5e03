/* Views of domains: `list` and `info` (the hypervisor's records, as a table in the manner of
 * `xl list`, as text or as JSON), `dumpxml` (a live domain's configuration from the toolstack's
 * state) and `validate` (a domain XML file checked and printed normalized). */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "domctl.h"
#include "domcfg.h"

/* State files older than this whose domain is not listed belong to domains that went away on
 * their own (poweroff with on_poweroff=destroy); younger ones may be a create in progress. */
#define DOMCTL_STALE_SECS 10

static void domctl_gc_state(const char *rundir, const struct lamina_ctl_dominfo *v, size_t n)
{
	char dir[4096], path[8192], name[LAMINA_NAME_MAX];
	struct dirent *e;
	struct stat st;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/domains", rundir);
	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name), i;

		if (len <= 5 || len - 5 >= sizeof(name) || strcmp(e->d_name + len - 5, ".json"))
			continue;
		memcpy(name, e->d_name, len - 5);
		name[len - 5] = '\0';
		for (i = 0; i < n && strcmp(v[i].name, name); i++)
			;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (i == n && stat(path, &st) == 0 && st.st_mtime + DOMCTL_STALE_SECS < time(NULL))
			unlink(path);
	}
	closedir(d);
}

int domctl_cmd_list(struct domctl_ctx *ctx, int argc, char **argv)
{
	static const char *const flags[] = {"--json", NULL};
	struct lamina_ctl_dominfo *v = NULL;
	struct ctl_conn conn;
	const char *pos[1];
	size_t n = 0, len;
	char *json, st[7];
	int set[1] = {0}, npos, r;

	if (domctl_args(ctx, argc, argv, flags, set, NULL, NULL, pos, 0, &npos))
		return DOMCTL_EXIT_USAGE;
	if (domctl_connect(ctx, &conn))
		return DOMCTL_EXIT_ERROR;
	r = ctl_list(&conn, &v, &n);
	ctl_close(&conn);
	if (r) {
		domctl_err("list: %s", conn.err[0] ? conn.err : strerror(-r));
		return DOMCTL_EXIT_ERROR;
	}
	domctl_gc_state(ctx->rundir, v, n);
	if (set[0]) {
		r = domctl_json_list(v, n, &json, &len);
		if (!r) {
			fwrite(json, 1, len, stdout);
			free(json);
		}
	} else {
		printf("%-32s %5s %8s %5s %6s %9s\n", "Name", "ID", "Mem(MiB)", "VCPUs", "State", "Time(s)");
		for (size_t i = 0; i < n; i++) {
			domctl_state_flags(v[i].state, st);
			printf("%-32s %5u %8llu %5u %6s %9.1f\n", v[i].name, v[i].domid,
			       (unsigned long long)(v[i].memory_kib / 1024), v[i].vcpus, st,
			       (double)v[i].cpu_time_ns / 1e9);
		}
	}
	free(v);
	return r ? DOMCTL_EXIT_ERROR : DOMCTL_EXIT_OK;
}

static void domctl_info_text(const struct lamina_ctl_dominfo *i)
{
	char uuid[37];

	domcfg_format_uuid(i->uuid, uuid);
	printf("name:           %s\n", i->name);
	printf("id:             %u\n", i->domid);
	printf("uuid:           %s\n", uuid);
	printf("state:          %s", ctl_state_name(i->state));
	if (i->state == LAMINA_DOM_SHUTDOWN || i->state == LAMINA_DOM_CRASHED || i->state == LAMINA_DOM_DEAD)
		printf(" (%s, code %d)", ctl_shutdown_reason_name(i->shutdown_reason), i->shutdown_code);
	printf("\n");
	printf("memory:         %llu KiB (max %llu KiB)\n", (unsigned long long)i->memory_kib,
	       (unsigned long long)i->max_memory_kib);
	printf("vcpus:          %u (%u online)\n", i->vcpus, i->vcpus_online);
	printf("cpu time:       %.3f s\n", (double)i->cpu_time_ns / 1e9);
	printf("exits:          %llu\n", (unsigned long long)i->exits);
	printf("hypercalls:     %llu\n", (unsigned long long)i->hypercalls);
	printf("console bytes:  %llu\n", (unsigned long long)i->console_bytes);
	if (i->first_console_ns && i->first_console_ns >= i->create_ns)
		printf("first output:   %.3f ms after create\n",
		       (double)(i->first_console_ns - i->create_ns) / 1e6);
	printf("restarts:       %u\n", i->restarts);
	printf("on_poweroff:    %s\n", ctl_action_name(i->on_poweroff));
	printf("on_reboot:      %s\n", ctl_action_name(i->on_reboot));
	printf("on_crash:       %s\n", ctl_action_name(i->on_crash));
}

int domctl_cmd_info(struct domctl_ctx *ctx, int argc, char **argv)
{
	static const char *const flags[] = {"--json", NULL};
	struct lamina_ctl_dominfo info;
	struct lamina_ctl_domref ref;
	struct ctl_conn conn;
	const char *pos[1];
	char *json;
	size_t len;
	int set[1] = {0}, npos, r;

	if (domctl_args(ctx, argc, argv, flags, set, NULL, NULL, pos, 1, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 1)
		return domctl_usage(ctx);
	if (ctl_domref_parse(&ref, pos[0]) < 0) {
		domctl_err("'%s' is neither a domain name nor an id", pos[0]);
		return DOMCTL_EXIT_USAGE;
	}
	if (domctl_connect(ctx, &conn))
		return DOMCTL_EXIT_ERROR;
	r = ctl_info(&conn, &ref, &info);
	ctl_close(&conn);
	if (r) {
		domctl_err("%s: %s", pos[0], r == -ENOENT || r == -ESRCH ? "no such domain" : conn.err);
		return DOMCTL_EXIT_ERROR;
	}
	if (!set[0]) {
		domctl_info_text(&info);
		return DOMCTL_EXIT_OK;
	}
	r = domctl_json_info(&info, &json, &len);
	if (r) {
		domctl_err("info: cannot format JSON: %s", strerror(-r));
		return DOMCTL_EXIT_ERROR;
	}
	fwrite(json, 1, len, stdout);
	free(json);
	return DOMCTL_EXIT_OK;
}

int domctl_cmd_validate(struct domctl_ctx *ctx, int argc, char **argv)
{
	char err[DOMCFG_ERR_MAX], *xml;
	struct domcfg *cfg;
	const char *pos[1];
	size_t len;
	int npos, rc = DOMCTL_EXIT_ERROR;

	if (domctl_args(ctx, argc, argv, NULL, NULL, NULL, NULL, pos, 1, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 1)
		return domctl_usage(ctx);
	cfg = malloc(sizeof(*cfg));
	if (!cfg)
		return DOMCTL_EXIT_ERROR;
	if (domcfg_parse_file(pos[0], cfg, err, sizeof(err))) {
		domctl_err("%s", err);
		goto out;
	}
	if (domcfg_render_xml(cfg, -1, &xml, &len)) {
		domctl_err("%s: cannot render the configuration", pos[0]);
		goto out;
	}
	fwrite(xml, 1, len, stdout);
	free(xml);
	rc = DOMCTL_EXIT_OK;
out:
	free(cfg);
	return rc;
}

int domctl_cmd_dumpxml(struct domctl_ctx *ctx, int argc, char **argv)
{
	struct lamina_ctl_dominfo info;
	struct lamina_ctl_domref ref;
	struct ctl_conn conn;
	struct domcfg *cfg;
	const char *pos[1];
	uint32_t domid;
	size_t len;
	char *xml;
	int npos, r, rc = DOMCTL_EXIT_ERROR;

	if (domctl_args(ctx, argc, argv, NULL, NULL, NULL, NULL, pos, 1, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 1)
		return domctl_usage(ctx);
	if (ctl_domref_parse(&ref, pos[0]) < 0) {
		domctl_err("'%s' is neither a domain name nor an id", pos[0]);
		return DOMCTL_EXIT_USAGE;
	}
	if (domctl_connect(ctx, &conn))
		return DOMCTL_EXIT_ERROR;
	r = ctl_info(&conn, &ref, &info);
	ctl_close(&conn);
	if (r) {
		domctl_err("%s: %s", pos[0], r == -ENOENT || r == -ESRCH ? "no such domain" : conn.err);
		if (ref.domid == LAMINA_DOMID_BY_NAME && (r == -ENOENT || r == -ESRCH))
			domcfg_state_remove(ctx->rundir, ref.name);
		return DOMCTL_EXIT_ERROR;
	}
	cfg = malloc(sizeof(*cfg));
	if (!cfg)
		return DOMCTL_EXIT_ERROR;
	r = domcfg_state_read(ctx->rundir, info.name, cfg, &domid);
	if (r) {
		domctl_err("%s: no usable toolstack state in %s/domains/%s.json: %s", info.name, ctx->rundir,
			   info.name, r == -EINVAL ? "malformed" : strerror(-r));
		goto out;
	}
	if (domcfg_render_xml(cfg, info.domid, &xml, &len)) {
		domctl_err("%s: cannot render the configuration", info.name);
		goto out;
	}
	fwrite(xml, 1, len, stdout);
	free(xml);
	rc = DOMCTL_EXIT_OK;
out:
	free(cfg);
	return rc;
}
