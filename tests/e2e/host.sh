#!/usr/bin/env bash
# The host lifecycle: start is idempotent, status answers, check reports KVM honestly, stop
# leaves no daemon and no KVM file descriptors behind.
. "$LAMINA_SRCDIR/tests/lib.sh"
lt_need_kvm
lt_host_start

lt_domctl host start >/dev/null 2>&1 || lt_fail "a second host start on a running host failed"
lt_domctl host status || lt_fail "host status failed"
chk=$(lt_domctl host check 2>&1); echo "$chk"
echo "$chk" | grep -qiE 'kvm.*(works|runs|ok)' || lt_fail "host check does not report a working KVM"
[ "$(stat -c %a "$LAMINA_RUNDIR/hv.sock")" = 600 ] || lt_fail "hv.sock is not mode 0600"

lt_domctl create "$(lt_xml s1 "app=spin")" >/dev/null || lt_fail "create failed"
lt_wait_console s1 'spin:' 20 || lt_fail "s1 did not boot"
pid=$(lt_hv_pid)
lt_domctl host stop || lt_fail "host stop failed"
for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && lt_fail "lamina-hv ($pid) still running after host stop"
[ -e "$LAMINA_RUNDIR/hv.sock" ] && lt_fail "hv.sock left behind"
lt_domctl host status >/dev/null 2>&1 && lt_fail "host status says running after stop"
lt_pass
