/* Domain-0 side of tests/e2e/xs-guest.sh's hostile-ring case: maps a live guest's store page with
 * MAP_SPECIAL (as any privileged process may) and breaks it the way a hostile guest would, then
 * has the store look at the ring by re-introducing the domain (XS_INTRODUCE with the page and
 * port the hypervisor names), and waits for the store to mark the ring broken.
 *   xs-hostile-ring DOMID idx|garbage    exit 0 when the page shows the expected error */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xen/io/xs_wire.h>

#include "ctl_client.h"
#include "xs_client.h"

int main(int argc, char **argv)
{
	struct ctl_special sp = CTL_SPECIAL_INIT;
	volatile struct xenstore_domain_interface *in;
	struct ctl_conn conn;
	struct xs_client *xs = NULL;
	uint32_t domid, want, err;
	char intro[64];
	int rc, n, ret = 1;

	if (argc != 3 || (strcmp(argv[2], "idx") && strcmp(argv[2], "garbage"))) {
		fprintf(stderr, "usage: xs-hostile-ring DOMID idx|garbage\n");
		return 2;
	}
	domid = (uint32_t)strtoul(argv[1], NULL, 10);
	if ((rc = ctl_connect(&conn, NULL)) < 0) {
		fprintf(stderr, "xs-hostile-ring: %s\n", conn.err);
		return 1;
	}
	if ((rc = ctl_map_special(&conn, domid, LAMINA_SPECIAL_XENSTORE, &sp)) < 0) {
		fprintf(stderr, "xs-hostile-ring: MAP_SPECIAL: %s\n", conn.err);
		goto out;
	}
	in = sp.addr;
	if (strcmp(argv[2], "idx") == 0) {
		/* a producer index a whole ring and more ahead of the consumer */
		in->req_prod = in->req_cons + XENSTORE_RING_SIZE + 3000;
		want = XENSTORE_ERROR_RINGIDX;
	} else {
		/* a header announcing a payload longer than the protocol allows */
		struct xsd_sockmsg h = {.type = XS_READ, .req_id = 7, .len = XENSTORE_PAYLOAD_MAX + 904};
		uint32_t prod = in->req_prod;
		for (size_t i = 0; i < sizeof(h); i++)
			in->req[MASK_XENSTORE_IDX(prod + i)] = ((const char *)&h)[i];
		__atomic_store_n(&in->req_prod, prod + (uint32_t)sizeof(h), __ATOMIC_RELEASE);
		want = XENSTORE_ERROR_PROTO;
	}
	if ((rc = xs_client_open(NULL, &xs)) < 0) {
		fprintf(stderr, "xs-hostile-ring: store socket: %s\n", strerror(-rc));
		goto out;
	}
	n = snprintf(intro, sizeof(intro), "%u%c%llu%c%u", domid, 0, (unsigned long long)sp.map.gfn, 0,
		     sp.map.port);
	rc = xs_client_request(xs, XS_INTRODUCE, 0, intro, (uint32_t)n + 1, NULL, NULL);
	if (rc < 0) {
		fprintf(stderr, "xs-hostile-ring: XS_INTRODUCE: %s\n", strerror(-rc));
		goto out;
	}
	for (int i = 0; i < 500 && in->error == XENSTORE_ERROR_NONE; i++)
		usleep(10000);
	err = in->error;
	printf("dom%u: ring error %u (want %u), connection %u\n", domid, err, want, in->connection);
	ret = err == want ? 0 : 1;
out:
	xs_client_close(xs);
	ctl_unmap_special(&sp);
	ctl_close(&conn);
	return ret;
}
