/* domctl's entry point: global options, the one table of sub-commands and per-command help.
 * Adding a command is one row here and one handler in its group's file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domctl.h"
#include "cmd_block.h"
#include "cmd_net.h"

static const struct domctl_cmd domctl_cmds[] = {
    {"host start", domctl_cmd_host_start, "", "start lamina-hv and the other host daemons"},
    {"host stop", domctl_cmd_host_stop, "", "destroy every domain and stop the host daemons"},
    {"host status", domctl_cmd_host_status, "[--json]", "show which host daemons run"},
    {"host check", domctl_cmd_host_check, "[--json]", "check that this machine can run Lamina domains"},
    {"create", domctl_cmd_create, "FILE.xml [--paused] [--console]",
     "create a domain from a domain XML file"},
    {"list", domctl_cmd_list, "[--json]", "list domains"},
    {"info", domctl_cmd_info, "NAME|ID [--json]", "show one domain's state and counters"},
    {"pause", domctl_cmd_pause, "NAME|ID", "pause a domain's vCPUs"},
    {"unpause", domctl_cmd_unpause, "NAME|ID", "resume a paused domain"},
    {"shutdown", domctl_cmd_shutdown, "NAME|ID [--reboot] [--wait]", "ask a domain to power off (or reboot)"},
    {"reboot", domctl_cmd_reboot, "NAME|ID [--wait]", "ask a domain to reboot"},
    {"destroy", domctl_cmd_destroy, "NAME|ID", "stop a domain at once and free it"},
    {"wait", domctl_cmd_wait, "NAME|ID [--timeout S]", "wait until a domain stops and say how"},
    {"dumpxml", domctl_cmd_dumpxml, "NAME|ID", "print a running domain's normalized configuration"},
    {"dump-core", domctl_cmd_dump_core, "NAME|ID FILE", "write a domain's memory and vCPU registers to an ELF core FILE"},
    {"validate", domctl_cmd_validate, "FILE.xml", "check a domain XML file and print it normalized"},
    {"console", domctl_cmd_console, "NAME|ID [--dump] [--ro] [--linger MS]",
     "attach to a domain's console (Ctrl-] detaches); --dump: print its output so far"},
    {"top", domctl_cmd_top, "[--batch] [--iterations N] [--delay S] [--sort KEY]",
     "live per-domain CPU, events, exits, hypercalls and console counters"},
    {"store", domctl_cmd_store, "read|write|ls|rm|mkdir|watch|perms ARGS", "read and change the store"},
    {"block-attach", domctl_cmd_block_attach, "NAME|ID FILE TARGET [--readonly]", "hot-plug an image as disk TARGET (xvdX)"},
    {"block-detach", domctl_cmd_block_detach, "NAME|ID TARGET [--timeout S] [--force]",
     "unplug a disk once the guest closed it (--force: at once)"},
    {"block-list", domctl_cmd_block_list, "NAME|ID", "list a domain's disks and their handshake states"},
    {"stat", domctl_cmd_stat, "NAME|ID [--json]", "per-device split-driver statistics (block, network)"},
    {"net-attach", domctl_cmd_net_attach, "NAME|ID --bridge BR [--mac M] [--allow-spoof]", "hot-plug a vif on bridge BR"},
    {"net-detach", domctl_cmd_net_detach, "NAME|ID DEV [--force]", "unplug vif DEV once the guest closed it"},
    {"net-list", domctl_cmd_net_list, "NAME|ID", "list a domain's vifs and their handshake states"},
};

static void domctl_print_help(FILE *f)
{
	fprintf(f, "usage: domctl [--rundir DIR] COMMAND [ARGS]\n\n"
		   "Domain-0 toolstack of the Lamina hypervisor.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < sizeof(domctl_cmds) / sizeof(domctl_cmds[0]); i++)
		fprintf(f, "  %-12s %s\n", domctl_cmds[i].name, domctl_cmds[i].help);
	fprintf(f,
		"\nOptions:\n"
		"  --rundir DIR  sockets, logs and state (default: $LAMINA_RUNDIR, else %s)\n"
		"  -h, --help    this help; 'domctl COMMAND --help' for one command's\n"
		"\nExit status: 0 ok, 1 error, 2 usage, 3 timeout (wait).\n",
		CTL_DEFAULT_RUNDIR);
}

/* The row for argv[0] (and argv[1] for two-word commands); *words says how many it took. */
static const struct domctl_cmd *domctl_find(int argc, char **argv, int *words)
{
	char two[64];

	if (argc >= 2 && snprintf(two, sizeof(two), "%s %s", argv[0], argv[1]) < (int)sizeof(two))
		for (size_t i = 0; i < sizeof(domctl_cmds) / sizeof(domctl_cmds[0]); i++)
			if (!strcmp(domctl_cmds[i].name, two)) {
				*words = 2;
				return &domctl_cmds[i];
			}
	for (size_t i = 0; i < sizeof(domctl_cmds) / sizeof(domctl_cmds[0]); i++)
		if (!strcmp(domctl_cmds[i].name, argv[0])) {
			*words = 1;
			return &domctl_cmds[i];
		}
	return NULL;
}

/* A group name alone ("host"): list its commands. */
static int domctl_group_help(const char *group, FILE *f)
{
	size_t len = strlen(group);
	int found = 0;

	for (size_t i = 0; i < sizeof(domctl_cmds) / sizeof(domctl_cmds[0]); i++) {
		if (strncmp(domctl_cmds[i].name, group, len) || domctl_cmds[i].name[len] != ' ')
			continue;
		if (!found++)
			fprintf(f, "usage: domctl %s SUBCOMMAND\n\n", group);
		fprintf(f, "  domctl %s%s%s\n      %s\n", domctl_cmds[i].name,
			*domctl_cmds[i].usage ? " " : "", domctl_cmds[i].usage, domctl_cmds[i].help);
	}
	return found;
}

static int domctl_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return 0;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct domctl_ctx ctx = {0};
	const char *rundir = NULL;
	int i = 1, words;

	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			domctl_print_help(stdout);
			return DOMCTL_EXIT_OK;
		} else if (!strcmp(argv[i], "--rundir") && i + 1 < argc) {
			rundir = argv[i + 1];
			i += 2;
		} else if (!strncmp(argv[i], "--rundir=", 9)) {
			rundir = argv[i] + 9;
			i++;
		} else {
			domctl_err("unknown option '%s'", argv[i]);
			domctl_print_help(stderr);
			return DOMCTL_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		domctl_print_help(stderr);
		return DOMCTL_EXIT_USAGE;
	}
	ctx.rundir = ctl_rundir(rundir);
	ctx.cmd = domctl_find(argc - i, argv + i, &words);
	if (!ctx.cmd) {
		if (i + 1 < argc)
			domctl_err("unknown command '%s %s' (see 'domctl --help')", argv[i], argv[i + 1]);
		if (domctl_group_help(argv[i], stderr))
			return DOMCTL_EXIT_USAGE;
		if (i + 1 < argc)
			return DOMCTL_EXIT_USAGE;
		domctl_err("unknown command '%s' (see 'domctl --help')", argv[i]);
		return DOMCTL_EXIT_USAGE;
	}
	i += words - 1;
	if (domctl_wants_help(argc - i, argv + i)) {
		printf("usage: domctl %s%s%s\n\n%s\n", ctx.cmd->name, *ctx.cmd->usage ? " " : "",
		       ctx.cmd->usage, ctx.cmd->help);
		return DOMCTL_EXIT_OK;
	}
	return ctx.cmd->run(&ctx, argc - i, argv + i);
}
