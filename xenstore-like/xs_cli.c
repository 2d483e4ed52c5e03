/* `domctl store ...`: the command-line front of libxsclient, one table row per sub-command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs_client.h"

struct xs_cli_cmd {
	const char *name;
	const char *usage;
	int min_args;
	int (*fn)(struct xs_client *c, int argc, char **argv);
};

static void xs_cli_err(const char *what, const char *path, int rc)
{
	fprintf(stderr, "store %s %s: %s\n", what, path, strerror(-rc));
}

static void xs_cli_print_value(const char *v, uint32_t len)
{
	uint32_t i;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			putchar(ch);
		else
			printf("\\x%02x", ch);
	}
}

static int xs_cli_read(struct xs_client *c, int argc, char **argv)
{
	int i, rc;

	for (i = 0; i < argc; i++) {
		char *v;
		uint32_t len;
		if ((rc = xs_client_read(c, 0, argv[i], &v, &len)) < 0) {
			xs_cli_err("read", argv[i], rc);
			return 1;
		}
		xs_cli_print_value(v, len);
		putchar('\n');
		free(v);
	}
	return 0;
}

static int xs_cli_write(struct xs_client *c, int argc, char **argv)
{
	int i, rc;

	if (argc % 2) {
		fprintf(stderr, "store write: PATH VALUE pairs expected\n");
		return 2;
	}
	for (i = 0; i < argc; i += 2) {
		if ((rc = xs_client_write(c, 0, argv[i], argv[i + 1], (uint32_t)strlen(argv[i + 1]))) < 0) {
			xs_cli_err("write", argv[i], rc);
			return 1;
		}
	}
	return 0;
}

static int xs_cli_ls_rec(struct xs_client *c, const char *path, int depth, bool rec)
{
	char **names, child[4096];
	unsigned n, i;
	int rc = xs_client_ls(c, 0, path, &names, &n);

	if (rc < 0) {
		xs_cli_err("ls", path, rc);
		return 1;
	}
	for (i = 0; i < n; i++) {
		char *v = NULL;
		uint32_t len = 0;
		snprintf(child, sizeof(child), "%s/%s", strcmp(path, "/") == 0 ? "" : path, names[i]);
		printf("%*s%s = \"", depth * 1, "", names[i]);
		if (xs_client_read(c, 0, child, &v, &len) == 0)
			xs_cli_print_value(v, len);
		printf("\"\n");
		free(v);
		if (rec && xs_cli_ls_rec(c, child, depth + 1, rec) != 0) {
			free(names);
			return 1;
		}
	}
	free(names);
	return 0;
}

static int xs_cli_ls(struct xs_client *c, int argc, char **argv)
{
	bool rec = argc > 0 && strcmp(argv[0], "-r") == 0;

	if (rec) {
		argc--;
		argv++;
	}
	return xs_cli_ls_rec(c, argc ? argv[0] : "/", 0, rec);
}

static int xs_cli_rm(struct xs_client *c, int argc, char **argv)
{
	int i, rc;

	for (i = 0; i < argc; i++) {
		if ((rc = xs_client_rm(c, 0, argv[i])) < 0) {
			xs_cli_err("rm", argv[i], rc);
			return 1;
		}
	}
	return 0;
}

static int xs_cli_mkdir(struct xs_client *c, int argc, char **argv)
{
	int i, rc;

	for (i = 0; i < argc; i++) {
		if ((rc = xs_client_mkdir(c, 0, argv[i])) < 0) {
			xs_cli_err("mkdir", argv[i], rc);
			return 1;
		}
	}
	return 0;
}

/* Prints "PATH TOKEN" per event (the token is the watched path); -n stops after COUNT. */
static int xs_cli_watch(struct xs_client *c, int argc, char **argv)
{
	long count = -1;
	int i, rc;

	if (argc >= 2 && strcmp(argv[0], "-n") == 0) {
		count = strtol(argv[1], NULL, 10);
		argc -= 2;
		argv += 2;
	}
	if (argc < 1) {
		fprintf(stderr, "store watch: PATH expected\n");
		return 2;
	}
	for (i = 0; i < argc; i++) {
		if ((rc = xs_client_watch(c, argv[i], argv[i])) < 0) {
			xs_cli_err("watch", argv[i], rc);
			return 1;
		}
	}
	while (count != 0) {
		char *path, *token;
		if ((rc = xs_client_read_watch(c, -1, &path, &token)) < 0) {
			xs_cli_err("watch", argv[0], rc);
			return 1;
		}
		printf("%s %s\n", path, token);
		fflush(stdout);
		free(path);
		if (count > 0)
			count--;
	}
	return 0;
}

static int xs_cli_perms(struct xs_client *c, int argc, char **argv)
{
	char **p;
	unsigned n, i;
	int rc;

	if (argc > 1) {
		rc = xs_client_set_perms(c, 0, argv[0], (const char *const *)argv + 1, (unsigned)argc - 1);
		if (rc < 0) {
			xs_cli_err("perms", argv[0], rc);
			return 1;
		}
		return 0;
	}
	if ((rc = xs_client_get_perms(c, 0, argv[0], &p, &n)) < 0) {
		xs_cli_err("perms", argv[0], rc);
		return 1;
	}
	for (i = 0; i < n; i++)
		printf("%s%s", i ? " " : "", p[i]);
	putchar('\n');
	free(p);
	return 0;
}

static const struct xs_cli_cmd xs_cli_cmds[] = {
    {"read", "read PATH...", 1, xs_cli_read},
    {"write", "write PATH VALUE [PATH VALUE]...", 2, xs_cli_write},
    {"ls", "ls [-r] [PATH]", 0, xs_cli_ls},
    {"rm", "rm PATH...", 1, xs_cli_rm},
    {"mkdir", "mkdir PATH...", 1, xs_cli_mkdir},
    {"watch", "watch [-n COUNT] PATH...", 1, xs_cli_watch},
    {"perms", "perms PATH [PERM...]  (PERM: n|r|w|b followed by a domain id; the first is the owner)", 1,
     xs_cli_perms},
};

static void xs_cli_usage(void)
{
	size_t i;

	fprintf(stderr, "usage: domctl store COMMAND\n");
	for (i = 0; i < sizeof(xs_cli_cmds) / sizeof(xs_cli_cmds[0]); i++)
		fprintf(stderr, "  %s\n", xs_cli_cmds[i].usage);
}

int xs_cli_main(int argc, char **argv, const char *rundir)
{
	struct xs_client *c;
	size_t i;
	int rc;

	if (argc > 0 && strcmp(argv[0], "store") == 0) {
		argc--;
		argv++;
	}
	if (argc < 1) {
		xs_cli_usage();
		return 2;
	}
	for (i = 0; i < sizeof(xs_cli_cmds) / sizeof(xs_cli_cmds[0]); i++) {
		const struct xs_cli_cmd *cmd = &xs_cli_cmds[i];
		if (strcmp(argv[0], cmd->name) != 0)
			continue;
		if (argc - 1 < cmd->min_args) {
			fprintf(stderr, "usage: domctl store %s\n", cmd->usage);
			return 2;
		}
		rc = rundir ? xs_client_open_rundir(rundir, &c) : xs_client_open(NULL, &c);
		if (rc < 0) {
			fprintf(stderr, "store: cannot connect to lamina-xenstored: %s\n", strerror(-rc));
			return 1;
		}
		rc = cmd->fn(c, argc - 1, argv + 1);
		xs_client_close(c);
		return rc;
	}
	xs_cli_usage();
	return 2;
}
