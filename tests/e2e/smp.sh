#!/usr/bin/env bash
# Secondary vCPUs: app=smp-test brings vCPU 1 up (VCPUOP_initialise/up/down) and both run at once;
# pause, unpause, core dump and destroy while vCPU 1 spins; a 2-vCPU domain that never brings
# vCPU 1 up still works, dumps and goes away; a triple fault on vCPU 1 crashes that domain only.
. "$LAMINA_SRCDIR/tests/lib.sh"
lt_need_kvm
lt_host_start
t_start=$(date +%s%N)

# lt_xml with <vcpu>2</vcpu>.
smp_xml() {
	local f
	f=$(lt_xml "$@")
	sed -i 's|<vcpu>1</vcpu>|<vcpu>2</vcpu>|' "$f"
	echo "$f"
}

# 1. The app's own checks.
lt_domctl create "$(smp_xml smp "app=smp-test" 8192 "<on_poweroff>preserve</on_poweroff>")" >/dev/null ||
	lt_fail "create smp failed"
lt_wait_console smp '^Test result:' 20 || lt_fail "smp-test printed no result"
res=$(lt_console_result smp)
[ "$res" = "Test result: SUCCESS" ] || lt_fail "smp-test: $res"
lt_domctl console --dump smp | grep -q 'smp: vCPU 1 up in ring 3' || lt_fail "no console line from vCPU 1"
lt_domctl console --dump smp | grep -E 'ping-pong|exactly 2N|reached ring 3' | sed "s/^/[$lt_name] /"
info=$(lt_domctl info smp --json)
[ "$(echo "$info" | jq -r .vcpus)" = 2 ] || lt_fail "info of smp: vcpus is not 2: $info"
lt_domctl destroy smp || lt_fail "destroy smp failed"

# 2. Held: both vCPUs spin. Info, pause, unpause, core dump, destroy.
lt_domctl create "$(smp_xml hold "app=smp-test hold=1")" >/dev/null || lt_fail "create hold failed"
lt_wait_console hold 'smp: heartbeat advancing' 20 || lt_fail "hold: vCPU 1 not spinning"
info=$(lt_domctl info hold --json)
[ "$(echo "$info" | jq -r .vcpus)" = 2 ] || lt_fail "hold: vcpus is not 2: $info"
[ "$(echo "$info" | jq -r .vcpus_online)" = 2 ] || lt_fail "hold: vcpus_online is not 2: $info"
lt_domctl pause hold || lt_fail "pause hold failed"
[ "$(lt_domctl info hold --json | jq -r .state)" = paused ] || lt_fail "hold is not paused"
sleep 0.3
cpu_a=$(lt_domctl info hold --json | jq -r .cpu_time_ns)
a=$(lt_domctl console --dump hold | wc -c)
sleep 0.5
b=$(lt_domctl console --dump hold | wc -c)
cpu_b=$(lt_domctl info hold --json | jq -r .cpu_time_ns)
[ "$a" -eq "$b" ] || lt_fail "console grew while paused ($a -> $b bytes)"
# both vCPU threads parked: well under one CPU-second per second between the two samples
[ $((cpu_b - cpu_a)) -lt 100000000 ] || lt_fail "paused domain used $((cpu_b - cpu_a)) ns of CPU in 0.5 s"
lt_domctl dump-core hold "$LAMINA_RUNDIR/hold.core" >/dev/null || lt_fail "dump-core of paused hold failed"
lt_domctl unpause hold || lt_fail "unpause hold failed"
n0=$(lt_domctl console --dump hold | grep -c 'heartbeat advancing')
for ((i = 0; i < 100; i++)); do
	n1=$(lt_domctl console --dump hold | grep -c 'heartbeat advancing')
	[ "$n1" -gt $((n0 + 1)) ] && break
	sleep 0.05
done
[ "$n1" -gt $((n0 + 1)) ] || lt_fail "vCPU 1 did not resume after unpause"
lt_domctl dump-core hold "$LAMINA_RUNDIR/hold2.core" >/dev/null || lt_fail "dump-core of running hold failed"
[ "$(readelf -n "$LAMINA_RUNDIR/hold2.core" | grep -c NT_PRSTATUS)" = 2 ] || lt_fail "core lacks two vCPUs"
[ "$(lt_domctl info hold --json | jq -r .state)" = running ] || lt_fail "hold not running after the dump"
t0=$(date +%s%N)
lt_domctl destroy hold || lt_fail "destroy hold (vCPU 1 spinning) failed"
lt_log "destroy with vCPU 1 spinning: $((($(date +%s%N) - t0) / 1000000)) ms"
lt_domctl list | grep -qw hold && lt_fail "hold still listed after destroy"

# 3. Two vCPUs, vCPU 1 never brought up.
lt_domctl create "$(smp_xml hello "app=hello")" >/dev/null || lt_fail "create hello failed"
lt_wait_console hello '^Test result:' 20 || lt_fail "hello printed no result"
[ "$(lt_console_result hello)" = "Test result: SUCCESS" ] || lt_fail "hello: $(lt_console_result hello)"
lt_domctl console --dump hello | grep -q 'vcpus: *2 (1 online)' || lt_fail "hello does not see 2 vCPUs, 1 online"
lt_domctl create "$(smp_xml idle "app=idle")" >/dev/null || lt_fail "create idle failed"
lt_wait_console idle 'idle: domain' 20 || lt_fail "idle printed nothing"
info=$(lt_domctl info idle --json)
[ "$(echo "$info" | jq -r .vcpus)/$(echo "$info" | jq -r .vcpus_online)" = 2/1 ] ||
	lt_fail "idle: want 2 vCPUs, 1 online: $info"
lt_domctl dump-core idle "$LAMINA_RUNDIR/idle.core" >/dev/null || lt_fail "dump-core of idle failed"
[ "$(readelf -n "$LAMINA_RUNDIR/idle.core" | grep -c NT_PRSTATUS)" = 2 ] || lt_fail "idle core lacks two vCPU notes"
lt_domctl destroy idle || lt_fail "destroy idle failed"
lt_domctl list | grep -qw idle && lt_fail "idle still listed after destroy"

# 4. A triple fault on vCPU 1: that domain crashes, a bystander and the daemon go on.
lt_domctl create "$(lt_xml bystander "app=spin")" >/dev/null || lt_fail "create bystander failed"
lt_domctl create "$(smp_xml tf "app=smp-test crash=1" 8192 "<on_crash>preserve</on_crash>")" >/dev/null ||
	lt_fail "create tf failed"
lt_domctl wait tf --timeout 20 >/dev/null
[ "$(lt_domctl info tf --json | jq -r .state)" = crashed ] || lt_fail "tf is not crashed"
grep -q 'tf: crashed: triple fault (vcpu1' "$LAMINA_RUNDIR/hv.log" || lt_fail "no vcpu1 triple fault in hv.log"
lt_domctl destroy tf || lt_fail "destroy tf failed"
[ "$(lt_domctl info bystander --json | jq -r .state)" = running ] || lt_fail "bystander is not running"
lt_domctl host status >/dev/null || lt_fail "daemon not answering"

ms=$((($(date +%s%N) - t_start) / 1000000))
lt_log "all steps in $ms ms"
[ "$ms" -lt 30000 ] || lt_fail "took $ms ms (limit 30 s)"
lt_pass
