#!/usr/bin/env bash
# Guest <-> Domain-0 event ping-pong through eventfds: the guest (app=dom0-pingpong) allocates a
# port for Domain-0, ev-dom0 binds it with EVTCHN_BIND_INTERDOMAIN and times notify -> answer
# round trips on the two eventfds. Then the port is closed and the guest reports SUCCESS.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/ev-lib.sh"
lt_need_kvm
lt_host_start
ev_need_ops
ROUNDS=${EV_ROUNDS:-500}

lt_domctl create "$(lt_xml pp0 "app=dom0-pingpong rounds=$ROUNDS" 8192 "<on_poweroff>preserve</on_poweroff>")" \
	>/dev/null || lt_fail "create failed"
lt_wait_console pp0 'dom0-pingpong: port [0-9]+' 20 || lt_fail "the guest printed no port"
port=$(lt_domctl console --dump pp0 | grep -oE 'dom0-pingpong: port [0-9]+' | head -n1 | grep -oE '[0-9]+$')
domid=$(lt_domctl info pp0 --json | jq -r .id)
out=$("$EV_DOM0" pingpong "$domid" "$port" "$ROUNDS" 2>&1) || lt_fail "ev-dom0 pingpong: $out"
echo "$out"
w=$(lt_domctl wait pp0 --timeout 30) || lt_fail "pp0: $w"
ev_result_ok pp0 || lt_fail "guest: $(lt_console_result pp0)"
lt_domctl console --dump pp0 | grep -q "answered $ROUNDS rounds" || lt_fail "the guest did not answer every round"
# A port of a domain that does not exist, and a port the domain does not have, are refused.
"$EV_DOM0" pingpong 4000 1 1 >/dev/null 2>&1 && lt_fail "binding a port of a missing domain succeeded"
lt_pass
