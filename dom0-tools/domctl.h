/* The domctl command line: owns the sub-command table and what commands share (context, output
 * helpers, JSON views of domains, the host's daemon table). One file per command group. */
#ifndef LAMINA_DOMCTL_H
#define LAMINA_DOMCTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <yajl/yajl_gen.h>

#include "ctl_client.h"

/* Exit statuses. */
enum {
	DOMCTL_EXIT_OK = 0,
	DOMCTL_EXIT_ERROR = 1,
	DOMCTL_EXIT_USAGE = 2,
	DOMCTL_EXIT_TIMEOUT = 3,
};

struct domctl_ctx {
	const char *rundir; /* resolved: --rundir, else $LAMINA_RUNDIR, else /run/lamina */
	const struct domctl_cmd *cmd;
};

/* A sub-command: "create", or two words for grouped ones ("host start"). run returns an exit
 * status; argv[0] is the command's last word, options follow. */
struct domctl_cmd {
	const char *name;
	int (*run)(struct domctl_ctx *ctx, int argc, char **argv);
	const char *usage; /* the arguments after the name */
	const char *help;  /* one line */
};

/* Command handlers, one group per file. */
int domctl_cmd_host_start(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_host_stop(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_host_status(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_host_check(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_create(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_destroy(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_pause(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_unpause(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_shutdown(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_reboot(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_wait(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_list(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_info(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_validate(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_dumpxml(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_console(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_store(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_top(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_dump_core(struct domctl_ctx *ctx, int argc, char **argv);

/* Shared helpers (domctl_util.c). */
void domctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int domctl_usage(const struct domctl_ctx *ctx); /* prints usage to stderr, returns DOMCTL_EXIT_USAGE */
int domctl_connect(const struct domctl_ctx *ctx, struct ctl_conn *conn);
/* Parse the command's options: each flag in names (e.g. {"--json", "--paused", NULL}) sets the
 * matching entry of set; options with a value are in vnames/values. Positional arguments are
 * collected into pos (at most maxpos). Returns 0 or DOMCTL_EXIT_USAGE after printing why. */
int domctl_args(const struct domctl_ctx *ctx, int argc, char **argv, const char *const *names, int *set,
		const char *const *vnames, const char **values, const char **pos, int maxpos, int *npos);
/* Parse NAME|ID into ref; for an id, ask lamina-hv for the name. 0 or -errno (message printed). */
int domctl_resolve(struct ctl_conn *conn, const char *arg, struct lamina_ctl_domref *ref,
		   char name[LAMINA_NAME_MAX]);
/* Copy the domain's console log to stdout as it grows, until the domain is gone (cmd_console.c). */
int domctl_console_follow(const struct domctl_ctx *ctx, struct ctl_conn *conn, const char *name);
/* Attach to NAME's console through lamina-consoled (console_attach.c): 0 when the session ended
 * (detach, domain gone, input over and quiet for linger_ms), -ENOENT/-ECONNREFUSED when consoled
 * does not run and -ENXIO when it does not know the domain (nothing printed), other -errno after
 * printing why. ro asks for read-only. */
#define DOMCTL_CONSOLE_LINGER_MS 1000
int domctl_console_attach(const struct domctl_ctx *ctx, const char *name, int ro, int linger_ms);
/* Ask lamina-consoled to drain NAME's ring into its log now (before the log is read): 0 when it
 * did, -errno otherwise (no consoled, unknown domain: the log is then all there is). */
int domctl_console_flush(const struct domctl_ctx *ctx, const char *name);
/* "r-----" style flags for the list's State column. */
void domctl_state_flags(uint32_t state, char out[7]);
/* Write the whole file to stdout; -errno on failure. */
int domctl_cat(const char *path);

/* JSON views of control replies (dominfo_json.c, part of libdomctl). *out is malloc'd and ends
 * with a newline. */
int domctl_json_dominfo(yajl_gen g, const struct lamina_ctl_dominfo *info);
int domctl_json_list(const struct lamina_ctl_dominfo *v, size_t n, char **out, size_t *len);
int domctl_json_info(const struct lamina_ctl_dominfo *info, char **out, size_t *len);

/* Host daemons (host_daemons.c): lamina-hv first, then the rest; a daemon whose binary does not
 * exist is skipped. Each runs as `NAME --rundir DIR` with LAMINA_RUNDIR=DIR. */
struct domctl_daemon {
	const char *name;   /* binary and pid-file name: DIR/NAME.pid */
	const char *env;    /* overrides the binary path */
	const char *socket; /* relative to the rundir; waited for after start */
	const char *logname;
	const char *pidname; /* relative to the rundir */
};
#define DOMCTL_MAX_DAEMONS 8
extern const struct domctl_daemon domctl_daemons[];
extern const size_t domctl_ndaemons;
/* The binary to run: $env, else LAMINA_SBINDIR/name. */
int domctl_daemon_path(const struct domctl_daemon *d, char *out, size_t size);
/* The pid in its pid file if that process is alive, else 0. */
long domctl_daemon_pid(const char *rundir, const struct domctl_daemon *d);
/* Start detached (setsid, stdio to DIR/log), write the pid file, wait up to timeout_ms for its
 * socket. Returns 0, -ENOENT if the binary does not exist, or -errno with why in err. */
int domctl_daemon_start(const char *rundir, const struct domctl_daemon *d, int timeout_ms, char *err,
			size_t errlen);
/* SIGTERM, then SIGKILL after timeout_ms; waits until the process is gone; removes pid file and
 * socket. 0 if it was not running. */
int domctl_daemon_stop(const char *rundir, const struct domctl_daemon *d, int timeout_ms);
/* Process checks: alive (and not a zombie); wait until gone (0 or -ETIMEDOUT); TERM, then
 * KILL after timeout_ms, until gone (0 or -EBUSY). */
int domctl_alive(long pid);
int domctl_pid_gone(long pid, int timeout_ms);
int domctl_pid_kill(long pid, int timeout_ms);
/* Seconds since the process started, from /proc; -1 if unknown. */
long domctl_proc_uptime(long pid);
/* Wait until the hypervisor answers HELLO; 0 or -ETIMEDOUT. */
int domctl_wait_hello(const char *rundir, long pid, int timeout_ms);
/* Sleep for ms milliseconds. */
void domctl_sleep_ms(int ms);

#endif
