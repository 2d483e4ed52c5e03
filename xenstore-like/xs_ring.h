/* The guest ring transport: a domain's xenstore_domain_interface page and event channel, reached
 * through a mapper (ops) that the hypervisor side provides; owns index validation and copying. */
#ifndef LAMINA_XS_RING_H
#define LAMINA_XS_RING_H

#include <stdint.h>
#include "xs_store.h"

_Static_assert(sizeof(struct xenstore_domain_interface) == 2 * XENSTORE_RING_SIZE + 7 * 4,
	       "xenstore_domain_interface layout");
_Static_assert(__builtin_offsetof(struct xenstore_domain_interface, req_cons) == 2048, "req_cons offset");
_Static_assert(__builtin_offsetof(struct xenstore_domain_interface, server_features) == 2064,
	       "server_features offset");

/* How the store reaches a guest's ring page and event channel. map_ring returns the page (or NULL
 * with errno set); bind_evtchn returns an fd that becomes readable when the guest notifies (read
 * 8 bytes to clear it, as an eventfd) or -errno; notify signals the guest. */
struct xs_ring_ops {
	void *(*map_ring)(void *ctx, uint32_t domid, uint64_t gfn);
	void (*unmap_ring)(void *ctx, uint32_t domid, void *page);
	int (*bind_evtchn)(void *ctx, uint32_t domid, uint32_t port);
	void (*unbind_evtchn)(void *ctx, uint32_t domid, int fd);
	int (*notify)(void *ctx, int fd);
};

struct xs_ring;

/* What the event loop offers the transport: watch an fd on behalf of a ring. */
struct xs_ring_env {
	const struct xs_ring_ops *ops;
	void *ops_ctx;
	int (*poll_add)(void *pctx, int fd, struct xs_ring *r);
	void (*poll_del)(void *pctx, int fd);
	void *pctx;
};

/* Lets INTRODUCE connect rings through env (kept by reference). */
void xs_ring_install(struct xs_store *st, struct xs_ring_env *env);
/* The event channel fired: consume requests, flush replies. Never fails the daemon: a broken
 * ring is disconnected and logged. */
void xs_ring_kick(struct xs_ring *r);
struct xs_conn *xs_ring_conn(struct xs_ring *r);

/* xs_devmap.c: a mapper over files in dir, for tests and development (lamina-xenstored
 * --ring-dir): see the file's head comment for the layout. */
int xs_devmap_new(const char *dir, const struct xs_ring_ops **ops, void **ctx);
void xs_devmap_free(void *ctx);
/* Why the ring was disconnected (XENSTORE_ERROR_*), 0 while healthy. */
uint32_t xs_ring_error(const struct xs_ring *r);

#endif
