/* `domctl stat NAME [--json]`: the per-device statistics of a domain's split drivers. lamina-blkback
 * keeps RUNDIR/blkback/DOMID-DEVID.txt and .json current (at most 4 times a second while the
 * device is busy, and when it disconnects); this prints them, one block per device. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_block.h"
#include "cmd_net.h"

static int stat_print_file(const char *path, const char *indent)
{
	char line[512];
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

int domctl_cmd_stat(struct domctl_ctx *ctx, int argc, char **argv)
{
	static const char *const flags[] = { "--json", NULL };
	char dir[4096], path[4400], prefix[32];
	unsigned devid, found = 0;
	const char *pos[1];
	int set[1] = { 0 }, npos;
	struct dirent *de;
	uint32_t domid;
	DIR *d;

	if (domctl_args(ctx, argc, argv, flags, set, NULL, NULL, pos, 1, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 1)
		return domctl_usage(ctx);
	if (domctl_block_domid(ctx, pos[0], &domid))
		return DOMCTL_EXIT_ERROR;
	snprintf(dir, sizeof(dir), "%s/blkback", ctx->rundir);
	snprintf(prefix, sizeof(prefix), "%u-", domid);
	if (set[0])
		printf("{\"domid\":%u,\"vbd\":[", domid);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		const char *ext = strrchr(de->d_name, '.');

		if (strncmp(de->d_name, prefix, strlen(prefix)) || !ext || strcmp(ext, set[0] ? ".json" : ".txt") ||
		    sscanf(de->d_name + strlen(prefix), "%u.", &devid) != 1)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (set[0]) {
			printf("%s{\"devid\":%u,\"stats\":", found ? "," : "", devid);
			stat_print_file(path, "");
			printf("}");
		} else {
			printf("vbd %u\n", devid);
			stat_print_file(path, "  ");
		}
		found++;
	}
	if (d)
		closedir(d);
	if (!set[0])
		found += (unsigned)domctl_net_stat_print(ctx, domid);
	if (set[0])
		printf("]}\n");
	else if (!found)
		printf("%s: no split-driver statistics (no connected vbd, or lamina-blkback not running)\n", pos[0]);
	return DOMCTL_EXIT_OK;
}
