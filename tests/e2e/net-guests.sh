#!/bin/bash
# Two guests on one bridge ping each other, both ways (through the bridge, two vifs, two rings
# each): g1 serves, then pings g2 once g2 is up; g2 pings g1 at once.
. "$LAMINA_SRCDIR/tests/e2e/net-lib.sh"
lt_need_kvm
nt_host_start
nt_guest g1 10.213.0.2/24 "secs=30 ping=10.213.0.3 count=5 delay=4"
nt_guest g2 10.213.0.3/24 "secs=30 ping=10.213.0.2 count=5"
for g in g1 g2; do
	lt_wait_console $g "5/5 pings answered" 30 || {
		nt_exec "$LAMINA_DOMCTL" console --dump $g
		lt_fail "$g did not get all its pings answered"
	}
	nt_exec "$LAMINA_DOMCTL" console --dump $g | grep "reply from"
done
nt_exec ping -c 3 -i 0.1 -W 2 10.213.0.2 >/dev/null || lt_fail "g1 stopped answering Domain-0"
nt_exec ping -c 3 -i 0.1 -W 2 10.213.0.3 >/dev/null || lt_fail "g2 stopped answering Domain-0"
lt_pass
