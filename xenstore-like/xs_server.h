/* The daemon's event loop: the listening socket, client connections, guest ring event channels,
 * signals and the persistence timer, all in one epoll set. */
#ifndef LAMINA_XS_SERVER_H
#define LAMINA_XS_SERVER_H

#include "xs_store.h"
#include "xs_ring.h"

struct xs_server_cfg {
	const char *socket_path;
	const char *persist_file; /* NULL: no persistence */
	const char *pid_file;
};

struct xs_server;

int xs_server_new(struct xs_store *st, const struct xs_server_cfg *cfg, struct xs_server **out);
/* Runs until SIGTERM/SIGINT (or st->stop); 0 or -errno. */
int xs_server_run(struct xs_server *srv);
void xs_server_free(struct xs_server *srv);
/* Connects guest rings through ops (the hypervisor's mapper); without it INTRODUCE only records. */
void xs_server_set_mapper(struct xs_server *srv, const struct xs_ring_ops *ops, void *ctx);
/* Another module's descriptor in the loop: fn(arg) runs when fd is readable (lctx is the server;
 * the shape of struct xs_hv_loop). A removed entry is freed after the current batch of events. */
int xs_server_add_fd(void *lctx, int fd, void (*fn)(void *arg), void *arg);
void xs_server_del_fd(void *lctx, int fd);

#endif
