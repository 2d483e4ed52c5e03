#!/bin/bash
# Two guests on one bridge ping each other (through the bridge, two vifs, two rings each).
. "$LAMINA_SRCDIR/tests/e2e/net-lib.sh"
lt_need_kvm
nt_host_start
nt_guest g1 10.213.0.2/24 "secs=60"
nt_guest g2 10.213.0.3/24 "secs=2 ping=10.213.0.2 count=5"
lt_wait_console g2 "5/5 pings answered" 30 || {
	nt_exec "$LAMINA_DOMCTL" console --dump g2
	lt_fail "g2 did not get all its pings answered by g1"
}
nt_exec "$LAMINA_DOMCTL" console --dump g2 | grep "reply from"
lt_wait_console g2 "Test result: SUCCESS" 20 || lt_fail "g2 did not end with SUCCESS"
out=$(nt_exec ping -c 3 -i 0.1 -W 2 10.213.0.2) || lt_fail "g1 stopped answering Domain-0"
lt_pass
