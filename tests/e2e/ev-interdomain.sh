#!/usr/bin/env bash
# Interdomain event channel ping-pong between two guests: one (app=evtchn-test role=server)
# allocates a port for the other, which binds it (role=client port=P) and times round trips.
# Both must report SUCCESS; the median round trip is printed.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/ev-lib.sh"
lt_need_kvm
lt_host_start
ev_need_ops
ROUNDS=${EV_ROUNDS:-300}
keep="<on_poweroff>preserve</on_poweroff><on_crash>preserve</on_crash>"

# The server allocates its port once its peer exists, and the client needs the port on its
# command line: learn it first (a fresh guest's ports are deterministic) from a server whose peer
# is an idle domain, then run the real pair as domains 3 and 4 and check the server agrees.
lt_domctl create "$(lt_xml cal-server "app=evtchn-test peer=2 role=server rounds=1")" >/dev/null ||
	lt_fail "create cal-server failed"
lt_domctl create "$(lt_xml cal-peer "app=idle")" >/dev/null || lt_fail "create cal-peer failed"
lt_wait_console cal-server 'evtchn-test: port [0-9]+' 20 || lt_fail "the calibration server printed no port"
port=$(lt_domctl console --dump cal-server | grep -oE 'evtchn-test: port [0-9]+' | head -n1 | grep -oE '[0-9]+$')
lt_domctl destroy cal-server >/dev/null && lt_domctl destroy cal-peer >/dev/null || lt_fail "destroy failed"
lt_log "a server allocates port $port"
lt_domctl create "$(lt_xml pp-server "app=evtchn-test peer=4 role=server rounds=$ROUNDS" 8192 "$keep")" >/dev/null ||
	lt_fail "create pp-server failed"
lt_domctl create "$(lt_xml pp-client "app=evtchn-test peer=3 role=client port=$port rounds=$ROUNDS" 8192 "$keep")" \
	>/dev/null || lt_fail "create pp-client failed"
[ "$(lt_domctl info pp-server --json | jq -r .id)" = 3 ] && [ "$(lt_domctl info pp-client --json | jq -r .id)" = 4 ] ||
	lt_fail "the pair did not get ids 3 and 4"
for d in pp-client pp-server; do
	w=$(lt_domctl wait $d --timeout 60) || lt_fail "$d: $w"
done
lt_domctl console --dump pp-client | grep -E 'evtchn-test:' | sed 's/^/  client: /'
lt_domctl console --dump pp-server | grep -E 'evtchn-test' | sed 's/^/  server: /'
ev_result_ok pp-server || lt_fail "server: $(lt_console_result pp-server)"
ev_result_ok pp-client || lt_fail "client: $(lt_console_result pp-client)"
lt_domctl console --dump pp-server | grep -qE "evtchn-test: port $port\b" || lt_fail "the server allocated another port"
lt_domctl console --dump pp-client | grep -qE "$ROUNDS round trips with domain 3" ||
	lt_fail "the client did not report $ROUNDS round trips"
lt_pass
