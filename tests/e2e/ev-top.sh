#!/usr/bin/env bash
# `domctl top` on a live host: in --batch mode a guest ping-ponging events with Domain-0 shows
# non-zero EVSENT/s and EVRECV/s, and top keeps running while domains are created and destroyed
# under it; the interactive mode draws, sorts on a key and quits on 'q'.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/ev-lib.sh"
lt_need_kvm
lt_host_start
ev_need_ops

lt_domctl create "$(lt_xml busy "app=dom0-pingpong rounds=8192")" >/dev/null || lt_fail "create failed"
lt_wait_console busy 'dom0-pingpong: port [0-9]+' 20 || lt_fail "the guest printed no port"
port=$(lt_domctl console --dump busy | grep -oE 'dom0-pingpong: port [0-9]+' | head -n1 | grep -oE '[0-9]+$')
id=$(lt_domctl info busy --json | jq -r .id)
"$EV_DOM0" pingpong "$id" "$port" 8000 >"$LAMINA_RUNDIR/pp.out" 2>&1 &
pp=$!
# Domains come and go while top samples.
(
	for i in 1 2 3 4 5 6; do
		lt_domctl create "$(lt_xml churn$i "app=idle")" >/dev/null 2>&1
		sleep 0.2
		[ $i -gt 2 ] && lt_domctl destroy churn$((i - 2)) >/dev/null 2>&1
	done
) &
churn=$!
out=$(timeout 60 "$LAMINA_DOMCTL" top --batch --iterations 8 --delay 0.25 --sort n 2>&1); rc=$?
wait $churn
kill $pp 2>/dev/null; wait $pp 2>/dev/null
echo "$out" | sed 's/^/  /'
[ $rc -eq 0 ] || lt_fail "top exited $rc"
[ "$(echo "$out" | grep -c '^domctl top: iteration')" -eq 8 ] || lt_fail "top did not print 8 iterations"
echo "$out" | grep -q 'no DOMSTATS' && lt_fail "lamina-hv did not answer DOMSTATS"
# The busy rows (one per iteration): EVSENT/s and EVRECV/s are columns 7 and 8; the ping-pong
# (about half a second) shows in at least one of them.
[ "$(echo "$out" | awk '$1 == "busy"' | wc -l)" -eq 8 ] || lt_fail "busy is missing from some iterations"
echo "$out" | awk '$1 == "busy" && $7 > 0 && $8 > 0 { found = 1 } END { exit !found }' ||
	lt_fail "busy never shows events sent and received"
# Interactive on a terminal (script(1) gives it one): it draws the domains, 'm' sorts by memory
# (the title then names MEM(KiB) besides the header), 'q' quits with status 0.
if command -v script >/dev/null; then
	(sleep 1; printf m; sleep 0.6; printf q) | TERM=xterm COLUMNS=120 LINES=30 \
		timeout 20 script -qefc "$LAMINA_DOMCTL top --delay 0.3" /dev/null >"$LAMINA_RUNDIR/top.tty"; rc=$?
	[ $rc -eq 0 ] || lt_fail "interactive top exited $rc"
	grep -aq busy "$LAMINA_RUNDIR/top.tty" || lt_fail "interactive top did not show the domain"
	[ "$(grep -ao 'MEM(KiB)' "$LAMINA_RUNDIR/top.tty" | wc -l)" -ge 2 ] || lt_fail "'m' did not sort by memory"
else
	lt_log "script(1) missing: interactive mode not checked"
fi
lt_pass
