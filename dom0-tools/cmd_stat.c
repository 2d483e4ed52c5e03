/* `domctl stat NAME [--json]`: the per-device statistics of a domain's split drivers. Each back-end
 * keeps RUNDIR/<back-end>/DOMID-DEVID.txt and .json current (at most 4 times a second while the
 * device is busy, and when it disconnects); this prints them, one block per device, a table row per
 * device type (block, network). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_block.h"
#include "cmd_net.h"

/* One device type's statistics files. */
struct stat_source {
	const char *dir;    /* under RUNDIR: the back-end's directory */
	const char *key;    /* JSON member and text heading: "vbd", "vif" */
	const char *indent; /* text lines: a heading per device and indented lines, or one prefixed line */
	int heading;
};

static const struct stat_source stat_sources[] = {
	{ "blkback", "vbd", "  ", 1 },
	{ "netback", "vif", "  net ", 0 },
};

static int stat_print_file(const char *path, const char *indent)
{
	char line[2048];
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);

		if (n && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n)
			printf("%s%s\n", indent, line);
	}
	fclose(f);
	return 0;
}

/* Print the files of one source for domid; how many. */
static unsigned stat_print_source(const struct domctl_ctx *ctx, const struct stat_source *src, uint32_t domid,
				  int json)
{
	char dir[4096], path[4400], prefix[32];
	unsigned devid, found = 0;
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", ctx->rundir, src->dir);
	snprintf(prefix, sizeof(prefix), "%u-", domid);
	if (json)
		printf("\"%s\":[", src->key);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		const char *ext = strrchr(de->d_name, '.');

		if (strncmp(de->d_name, prefix, strlen(prefix)) || !ext || strcmp(ext, json ? ".json" : ".txt") ||
		    sscanf(de->d_name + strlen(prefix), "%u.", &devid) != 1)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (json) {
			printf("%s{\"devid\":%u,\"stats\":", found ? "," : "", devid);
			stat_print_file(path, "");
			printf("}");
		} else {
			if (src->heading)
				printf("%s %u\n", src->key, devid);
			stat_print_file(path, src->indent);
		}
		found++;
	}
	if (d)
		closedir(d);
	if (json)
		printf("]");
	return found;
}

int domctl_cmd_stat(struct domctl_ctx *ctx, int argc, char **argv)
{
	static const char *const flags[] = { "--json", NULL };
	const char *pos[1];
	int set[1] = { 0 }, npos;
	unsigned found = 0;
	uint32_t domid;

	if (domctl_args(ctx, argc, argv, flags, set, NULL, NULL, pos, 1, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 1)
		return domctl_usage(ctx);
	if (domctl_block_domid(ctx, pos[0], &domid))
		return DOMCTL_EXIT_ERROR;
	if (set[0])
		printf("{\"domid\":%u", domid);
	for (size_t i = 0; i < sizeof(stat_sources) / sizeof(stat_sources[0]); i++) {
		if (set[0])
			printf(",");
		found += stat_print_source(ctx, &stat_sources[i], domid, set[0]);
	}
	if (set[0])
		printf("}\n");
	else if (!found)
		printf("%s: no split-driver statistics (no connected device, or no back-end running)\n", pos[0]);
	return DOMCTL_EXIT_OK;
}
