/* libxsclient: Lamina's own client of the store socket (blocking, one request at a time, watch
 * events queued while a reply is awaited). Every call returns 0 or -errno (store errors mapped). */
#ifndef LAMINA_XS_CLIENT_H
#define LAMINA_XS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

struct xs_client;

/* path NULL: $XENSTORED_PATH, else $LAMINA_RUNDIR/xenstored/socket, else /run/lamina/... */
int xs_client_open(const char *path, struct xs_client **out);
int xs_client_open_rundir(const char *rundir, struct xs_client **out);
void xs_client_close(struct xs_client *c);
int xs_client_fd(const struct xs_client *c);

/* Raw request: *reply is malloc'd with a NUL after *rlen bytes (free it). */
int xs_client_request(struct xs_client *c, uint32_t type, uint32_t tx, const void *payload, uint32_t len,
		      char **reply, uint32_t *rlen);

int xs_client_read(struct xs_client *c, uint32_t tx, const char *path, char **val, uint32_t *len);
int xs_client_write(struct xs_client *c, uint32_t tx, const char *path, const void *val, uint32_t len);
int xs_client_mkdir(struct xs_client *c, uint32_t tx, const char *path);
int xs_client_rm(struct xs_client *c, uint32_t tx, const char *path);
/* *names: a NULL-terminated array in one allocation (free(*names)). */
int xs_client_ls(struct xs_client *c, uint32_t tx, const char *path, char ***names, unsigned *n);
int xs_client_get_perms(struct xs_client *c, uint32_t tx, const char *path, char ***perms, unsigned *n);
int xs_client_set_perms(struct xs_client *c, uint32_t tx, const char *path, const char *const *perms,
			unsigned n);
int xs_client_watch(struct xs_client *c, const char *path, const char *token);
int xs_client_unwatch(struct xs_client *c, const char *path, const char *token);
/* Next watch event; timeout_ms < 0 waits for ever; -ETIMEDOUT. Free *path (token shares it). */
int xs_client_read_watch(struct xs_client *c, int timeout_ms, char **path, char **token);
int xs_client_txn_start(struct xs_client *c, uint32_t *tx);
int xs_client_txn_end(struct xs_client *c, uint32_t tx, bool commit);
int xs_client_control(struct xs_client *c, const char *const *argv, int argc, char **reply);

/* `domctl store SUBCOMMAND ...`: argv[0] is the sub-command (a leading "store" is skipped):
 * read PATH..., write PATH VALUE [PATH VALUE]..., ls [-r] [PATH], rm PATH..., mkdir PATH...,
 * watch [-n COUNT] PATH..., perms PATH [PERM...]. rundir NULL: as xs_client_open. Exit status. */
int xs_cli_main(int argc, char **argv, const char *rundir);

#endif
