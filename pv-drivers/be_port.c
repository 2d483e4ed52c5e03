/* A guest's special page and its event channel, as a back-end holds them: MAP_SPECIAL gives the
 * page and the guest's port, BIND_INTERDOMAIN gives Domain-0's end as two eventfds. */
#include <errno.h>
#include <unistd.h>

#include "backend.h"

int be_port_open(struct ctl_conn *conn, uint32_t domid, uint32_t which, struct be_port *p)
{
	int err;

	*p = (struct be_port)BE_PORT_INIT;
	p->domid = domid;
	p->which = which;
	err = ctl_map_special(conn, domid, which, &p->page);
	if (err)
		return err;
	err = ctl_evtchn_bind_interdomain(conn, domid, p->page.map.port, &p->ch);
	if (err) {
		ctl_unmap_special(&p->page);
		return err;
	}
	/* The mapping keeps the pages: one descriptor less per guest for a daemon serving thousands. */
	close(p->page.fd);
	p->page.fd = -1;
	return 0;
}

int be_port_is_open(const struct be_port *p)
{
	return p->page.addr != NULL;
}

void be_port_close(struct ctl_conn *conn, struct be_port *p)
{
	if (p->ch.notify_fd >= 0 || p->ch.event_fd >= 0)
		ctl_evtchn_close(conn && conn->fd >= 0 ? conn : NULL, &p->ch);
	ctl_unmap_special(&p->page);
}
