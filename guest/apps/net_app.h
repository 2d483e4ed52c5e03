/* What the network apps share: one vif brought up with netfront and the network layer, served
 * until a deadline (net_echo.c owns it; net_bench.c builds its streams on it). */
#ifndef GUEST_APPS_NET_APP_H
#define GUEST_APPS_NET_APP_H

#include "apps.h"
#include "../drivers/netfront.h"
#include "../net/net.h"

struct net_echo {
	struct kernel *k;
	struct netfront nf;
	struct net_if nif;
	struct net_ops ops; /* the stack's ops: a copy the app may extend */
	struct gnttab gt;
	unsigned replies;
	uint16_t last_seq;
	void *user; /* the app's own state, for its callbacks */
};

/* ip=A.B.C.D/N [wait=N]: grants, the first vif, the interface (UDP echo on port 7). On failure
 * res says why. */
int net_echo_setup(struct kernel *k, struct net_echo **out, struct app_result *res);
/* Poll and answer until deadline, want_replies echo replies (0: none), or a detach (true). */
bool ne_serve(struct net_echo *ne, uint64_t deadline, unsigned want_replies);

#endif
