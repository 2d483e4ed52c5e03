/* The fake lamina-hv of the consoled tests: it serves hv.sock (HELLO, SUBSCRIBE with
 * notifications, MAP_SPECIAL with memfd console pages, BIND_INTERDOMAIN with eventfd pairs,
 * EVTCHN_CLOSE), plays the guests' side of their xencons rings, and runs lamina-consoled. */
#ifndef LAMINA_TEST_CONSOLED_FAKE_H
#define LAMINA_TEST_CONSOLED_FAKE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <xen/xen.h>
#include <xen/io/console.h>

#include <lamina/control.h>
#include "test_ctl_fake.h"

#define FAKE_DOMS 4
#define LOG_CAP 8192

struct fake_dom {
	uint32_t domid;
	char name[LAMINA_NAME_MAX];
	int memfd;
	struct xencons_interface *ring;
	int notify_fd, event_fd; /* our ends: consoled notifies us on notify_fd, we signal event_fd */
	int binds, closes, maps;
};

struct fake_hv {
	char rundir[64];
	struct ctl_fake srv; /* hv.sock and consoled's connection to it */
	pid_t consoled;
	struct fake_dom dom[FAKE_DOMS];
	int ndom;
};

/* The CUnit fixture: the tests run in order against one consoled. */
extern struct fake_hv hv;

int fake_suite_init(void);    /* start consoled with two domains, web (1) and bad (2) */
int fake_suite_cleanup(void); /* stop it, remove the run directory */
void hv_event(uint32_t kind, struct fake_dom *d);
void hv_serve(int ms); /* answer consoled's requests for ms milliseconds */
void dom_new_page(struct fake_dom *d);
struct fake_dom *dom_add(uint32_t domid, const char *name);
void guest_write(struct fake_dom *d, const char *s, size_t len);	 /* out ring, then signal */
size_t read_file(const char *name, char *buf, size_t cap);		 /* a file of the run directory */
int wait_file(const char *name, const char *text);			 /* serve until it contains text */
int attach(const char *name, const char *mode, char *reply, size_t len); /* ATTACH NAME MODE */
int attach_verb(const char *line, char *reply, size_t len); /* any request line; the reply line */
int client_expect(int s, const char *text);
uint64_t notified(struct fake_dom *d); /* consoled's notifies since the last call */

#endif
