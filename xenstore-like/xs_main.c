/* lamina-xenstored: options, logging and start-up; the store and the loop do the work. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "xs_hv.h"
#include "xs_server.h"

static void xs_usage(FILE *f)
{
	fprintf(f,
		"usage: lamina-xenstored [options]\n"
		"  --rundir DIR          run directory (default $LAMINA_RUNDIR or /run/lamina);\n"
		"                        the socket is DIR/xenstored/socket\n"
		"  --socket PATH         socket path (default $XENSTORED_PATH, else as above)\n"
		"  --pid-file FILE       write the pid once the socket is listening\n"
		"  --log FILE            log file (default: standard error); --log-level error|info|debug\n"
		"  --persist FILE        load the tree from FILE and save it there (each second when\n"
		"                        changed, and at exit)\n"
		"  --quota NAME=VALUE    nodes, watches, outstanding, transactions, node-size,\n"
		"                        payload, perms (per unprivileged domain)\n"
		"  --hv-socket PATH      lamina-hv's control socket (default DIR/hv.sock): domains are\n"
		"                        introduced and released from its notifications, rings mapped\n"
		"                        through it; retried with backoff while it is not running\n"
		"  --no-hv               socket only: no hypervisor connection\n"
		"  --ring-dir DIR        connect introduced domains' rings through files in DIR\n"
		"                        (development mapper, see xs_devmap.c; implies --no-hv)\n"
		"  -E N, -W N, -t N, -S N, -A N   Xen-style: nodes, watches, transactions, node size,\n"
		"                        permissions per node\n");
}

static int xs_set_quota(struct xs_store *st, const char *name, const char *val)
{
	char *end;
	unsigned long v;
	int k = xs_quota_by_name(name);

	if (k < 0 || !*val)
		return -EINVAL;
	v = strtoul(val, &end, 10);
	if (*end || v > UINT32_MAX || (k == XS_Q_PAYLOAD && v > XENSTORE_PAYLOAD_MAX))
		return -EINVAL;
	st->quota.v[k] = (uint32_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"rundir", required_argument, NULL, 'r'},
	    {"socket", required_argument, NULL, 's'},
	    {"pid-file", required_argument, NULL, 'F'},
	    {"log", required_argument, NULL, 'l'},
	    {"log-level", required_argument, NULL, 'L'},
	    {"persist", required_argument, NULL, 'p'},
	    {"quota", required_argument, NULL, 'Q'},
	    {"ring-dir", required_argument, NULL, 'R'},
	    {"hv-socket", required_argument, NULL, 'H'},
	    {"no-hv", no_argument, NULL, 'N'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const char *const levels[] = {"error", "info", "debug"};
	const char *rundir = getenv("LAMINA_RUNDIR"), *sock = getenv("XENSTORED_PATH");
	struct xs_server_cfg cfg = {0};
	struct xs_server *srv = NULL;
	struct xs_store *st;
	char path[4096], *eq;
	const char *logfile = NULL, *ringdir = NULL, *hvsock = NULL;
	char hvpath[4096];
	bool use_hv = true;
	struct xs_hv *hv = NULL;
	const struct xs_ring_ops *rops = NULL;
	void *rctx = NULL;
	int opt, rc, i, ret = 1;

	st = xs_store_new();
	if (!st) {
		fprintf(stderr, "lamina-xenstored: out of memory\n");
		return 1;
	}
	st->log = stderr;
	while ((opt = getopt_long(argc, argv, "E:W:t:S:A:h", opts, NULL)) != -1) {
		rc = 0;
		switch (opt) {
		case 'r':
			rundir = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'F':
			cfg.pid_file = optarg;
			break;
		case 'l':
			logfile = optarg;
			break;
		case 'p':
			cfg.persist_file = optarg;
			break;
		case 'R':
			ringdir = optarg;
			break;
		case 'H':
			hvsock = optarg;
			break;
		case 'N':
			use_hv = false;
			break;
		case 'L':
			rc = -EINVAL;
			for (i = 0; i < 3; i++)
				if (strcmp(optarg, levels[i]) == 0)
					st->log_level = i, rc = 0;
			break;
		case 'Q':
			eq = strchr(optarg, '=');
			if (!eq) {
				rc = -EINVAL;
				break;
			}
			*eq = '\0';
			rc = xs_set_quota(st, optarg, eq + 1);
			break;
		case 'E':
			rc = xs_set_quota(st, "nodes", optarg);
			break;
		case 'W':
			rc = xs_set_quota(st, "watches", optarg);
			break;
		case 't':
			rc = xs_set_quota(st, "transactions", optarg);
			break;
		case 'S':
			rc = xs_set_quota(st, "node-size", optarg);
			break;
		case 'A':
			rc = xs_set_quota(st, "perms", optarg);
			break;
		case 'h':
			xs_usage(stdout);
			ret = 0;
			goto out;
		default:
			xs_usage(stderr);
			ret = 2;
			goto out;
		}
		if (rc < 0) {
			fprintf(stderr, "lamina-xenstored: bad value for -%c: %s\n", opt, optarg);
			ret = 2;
			goto out;
		}
	}
	if (optind != argc) {
		xs_usage(stderr);
		ret = 2;
		goto out;
	}
	if (!rundir)
		rundir = "/run/lamina";
	if (!sock) {
		snprintf(path, sizeof(path), "%s/xenstored/socket", rundir);
		sock = path;
	}
	/* The socket's directory (rundir/xenstored by default) is ours to create. */
	{
		char dir[4096], *slash;
		snprintf(dir, sizeof(dir), "%s", sock);
		slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			if (mkdir(dir, 0755) < 0 && errno == ENOENT) {
				char *up = strrchr(dir, '/');
				if (up && up != dir) {
					*up = '\0';
					mkdir(dir, 0755);
					*up = '/';
				}
				mkdir(dir, 0755);
			}
		}
	}
	cfg.socket_path = sock;
	/* Each connected guest holds two eventfds here: allow as many descriptors as we may. */
	{
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	if (logfile) {
		FILE *f = fopen(logfile, "ae");
		if (!f) {
			fprintf(stderr, "lamina-xenstored: %s: %s\n", logfile, strerror(errno));
			goto out;
		}
		st->log = f;
	}
	if (cfg.persist_file && (rc = xs_persist_load(st, cfg.persist_file)) < 0) {
		xs_log(st, XS_LOG_ERR, "cannot load %s: %s; starting empty", cfg.persist_file, strerror(-rc));
	}
	rc = xs_server_new(st, &cfg, &srv);
	if (rc < 0) {
		xs_log(st, XS_LOG_ERR, "cannot listen on %s: %s", sock, strerror(-rc));
		goto out;
	}
	/* Guests' rings need a mapper (map the ring page, bind the event channel): the hypervisor's,
	 * over its control socket, or for tests --ring-dir's file-based one. Without a mapper
	 * INTRODUCE records the domain only. */
	if (!ringdir && use_hv) {
		struct xs_hv_loop loop = {xs_server_add_fd, xs_server_del_fd, srv};
		if (!hvsock) {
			snprintf(hvpath, sizeof(hvpath), "%s/%s", rundir, LAMINA_CTL_SOCKET);
			hvsock = hvpath;
		}
		rc = xs_hv_new(st, hvsock, &loop, &hv);
		if (rc < 0) {
			xs_log(st, XS_LOG_ERR, "hypervisor connection %s: %s", hvsock, strerror(-rc));
			goto out;
		}
		xs_server_set_mapper(srv, &xs_hv_ring_ops, hv);
	} else if (ringdir) {
		rc = xs_devmap_new(ringdir, &rops, &rctx);
		if (rc < 0) {
			xs_log(st, XS_LOG_ERR, "--ring-dir %s: %s", ringdir, strerror(-rc));
			goto out;
		}
		xs_server_set_mapper(srv, rops, rctx);
	}
	rc = xs_server_run(srv);
	ret = rc < 0 ? 1 : 0;
out:
	xs_server_free(srv); /* rings first: their release still uses the mapper */
	xs_hv_free(hv);
	if (st->log && st->log != stderr)
		fclose(st->log);
	xs_store_free(st); /* releases rings through the mapper: before it goes */
	if (rctx)
		xs_devmap_free(rctx);
	return ret;
}
