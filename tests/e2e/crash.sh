#!/usr/bin/env bash
# Crashes stay inside their domain: a page fault, a triple fault and an explicit crash shutdown
# each end in the crashed state and are handled per on_crash (preserve, destroy, restart).
. "$LAMINA_SRCDIR/tests/lib.sh"
lt_need_kvm
lt_host_start

# A bystander that must not notice anything.
lt_domctl create "$(lt_xml bystander "app=spin")" >/dev/null || lt_fail "create bystander failed"

# 1. page fault, on_crash=preserve: stays listed as crashed until destroyed.
lt_domctl create "$(lt_xml pf "app=crash crash=pagefault" 8192 "<on_crash>preserve</on_crash>")" >/dev/null ||
	lt_fail "create pf failed"
w=$(lt_domctl wait pf --timeout 20); rc=$?
[ $rc -eq 1 ] || lt_fail "wait on a crashing domain exited $rc (want 1): $w"
echo "$w" | grep -qi crash || lt_fail "wait did not say crashed: $w"
state=$(lt_domctl info pf --json | jq -r .state)
[ "$state" = crashed ] || lt_fail "pf state is '$state', want crashed"
lt_domctl console --dump pf | grep -qiE 'page fault|#PF|vector 14' || lt_fail "no fault report on pf's console"
lt_domctl destroy pf || lt_fail "destroy of a crashed domain failed"

# 2. triple fault, on_crash=destroy: gone.
lt_domctl create "$(lt_xml tf "app=crash crash=triple" 8192 "<on_crash>destroy</on_crash>")" >/dev/null ||
	lt_fail "create tf failed"
lt_domctl wait tf --timeout 20 >/dev/null; rc=$?
[ $rc -eq 1 ] || lt_fail "wait on a triple-faulting domain exited $rc (want 1)"
sleep 0.2
lt_domctl list | grep -qw tf && lt_fail "tf still listed with on_crash=destroy"

# 3. explicit crash shutdown, on_crash=restart: it comes back (and crashes again).
lt_domctl create "$(lt_xml rs "app=crash crash=shutdown" 8192 "<on_crash>restart</on_crash>")" >/dev/null ||
	lt_fail "create rs failed"
ok=0
for i in $(seq 100); do
	n=$(lt_domctl info rs --json 2>/dev/null | jq -r .restarts)
	[ "${n:-0}" != null ] && [ "${n:-0}" -ge 2 ] && { ok=1; break; }
	sleep 0.1
done
[ $ok = 1 ] || lt_fail "rs did not restart after crashing (restarts=${n:-?})"
lt_domctl destroy rs || lt_fail "destroy rs failed"

# The bystander still runs and progresses.
[ "$(lt_domctl info bystander --json | jq -r .state)" = running ] || lt_fail "bystander is not running"
a=$(lt_domctl console --dump bystander | wc -c); sleep 0.5
b=$(lt_domctl console --dump bystander | wc -c)
[ "$b" -gt "$a" ] || lt_fail "bystander stopped progressing"
lt_pass
