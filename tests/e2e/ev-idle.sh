#!/usr/bin/env bash
# An idle guest (app=idle: SCHEDOP_block in a loop) uses almost no CPU: its cpu_time grows by less
# than 1% of a 2 s interval, and lamina-hv's own CPU time stays low too; a spinning guest's
# cpu_time, measured the same way, grows by most of the interval (the measure can see CPU use).
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/ev-lib.sh"
lt_need_kvm
lt_host_start
ev_need_ops

lt_domctl create "$(lt_xml idle1 "app=idle")" >/dev/null || lt_fail "create failed"
lt_wait_console idle1 'idle' 20 || lt_fail "the guest did not boot"
sleep 0.5
hz=$(getconf CLK_TCK)
hv=$(lt_hv_pid)
hv_ticks() { awk '{ print $14 + $15 }' "/proc/$hv/stat"; }
c0=$(lt_domctl info idle1 --json | jq -r .cpu_time_ns); h0=$(hv_ticks); t0=$(date +%s%N)
sleep 2
c1=$(lt_domctl info idle1 --json | jq -r .cpu_time_ns); h1=$(hv_ticks); t1=$(date +%s%N)
used=$((c1 - c0)); wall=$((t1 - t0))
hv_ns=$(( (h1 - h0) * 1000000000 / hz ))
lt_log "guest cpu_time grew ${used} ns over ${wall} ns ($(awk -v u=$used -v w=$wall 'BEGIN{printf "%.3f", 100*u/w}')%);" \
	"lamina-hv used ${hv_ns} ns"
[ "$used" -lt $((wall / 100)) ] || lt_fail "idle guest used ${used} ns of ${wall} ns (>= 1%)"
[ "$hv_ns" -lt $((wall / 20)) ] || lt_fail "lamina-hv used ${hv_ns} ns of CPU over ${wall} ns for an idle guest (>= 5%)"
# The counter itself works: a spinning guest's cpu_time grows by most of an interval.
lt_domctl create "$(lt_xml spin1 "app=spin")" >/dev/null || lt_fail "create spin1 failed"
lt_wait_console spin1 'spin' 20 || lt_fail "spin1 did not boot"
c0=$(lt_domctl info spin1 --json | jq -r .cpu_time_ns); t0=$(date +%s%N)
sleep 1
c1=$(lt_domctl info spin1 --json | jq -r .cpu_time_ns); t1=$(date +%s%N)
lt_log "spinning guest: cpu_time grew $((c1 - c0)) ns over $((t1 - t0)) ns"
[ $((c1 - c0)) -gt $(((t1 - t0) / 5)) ] || lt_fail "a spinning guest's cpu_time grew only $((c1 - c0)) ns"
lt_pass
