#!/bin/bash
# Hostile front-ends: bad sizes and fragments, grant refs never granted (frames dropped, counted,
# vif stays up); a fragment chain that never ends and a runaway producer (that vif disconnected).
# Through all of it lamina-netback keeps serving an honest guest.
. "$LAMINA_SRCDIR/tests/e2e/net-lib.sh"
lt_need_kvm
nt_host_start
nt_guest good 10.213.0.2/24 "secs=90"
nt_guest size 10.213.0.3/24 "secs=60 hostile=size"
nt_guest grant 10.213.0.4/24 "secs=60 hostile=grant"
nt_guest chain 10.213.0.5/24 "secs=60 hostile=chain"
nt_guest runaway 10.213.0.6/24 "secs=60 hostile=runaway"
sleep 1
pid=$(cat "$LAMINA_RUNDIR/lamina-netback.pid")
kill -0 "$pid" || lt_fail "lamina-netback died"
check() { # NAME REGEX WHAT
	local s
	s=$(nt_exec "$LAMINA_DOMCTL" stat "$1")
	echo "$s"
	echo "$s" | grep -qE "$2" || lt_fail "$1: $3"
}
check size "connected .*drop_size=2 drop_frags=1" "bad sizes not dropped and counted"
check grant "connected .*drop_grant=2" "ungranted refs not dropped and counted"
check chain "disconnected" "an endless fragment chain did not disconnect the vif"
check runaway "disconnected" "a runaway producer did not disconnect the vif"
grep -E "fragment chain longer|producer ran away" "$LAMINA_RUNDIR/netback.log" || lt_fail "disconnects not logged"
nt_exec ping -c 5 -i 0.1 -W 2 10.213.0.2 >/dev/null || lt_fail "the honest guest lost its network"
nt_exec ping -c 3 -i 0.1 -W 2 10.213.0.3 >/dev/null || lt_fail "the vif with dropped frames stopped working"
lt_pass
