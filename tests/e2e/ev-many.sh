#!/usr/bin/env bash
# 200 domains with their consoles connected by lamina-consoled, then torn down: every console is
# connected, every domain's output reaches its log, and afterwards the descriptors and threads of
# lamina-consoled and lamina-hv are back to their baseline (taken after one warm-up domain).
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/ev-lib.sh"
lt_need_kvm
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
lt_host_start
ev_need_ops
ev_need_consoled
N=${EV_MANY:-200}
log="$LAMINA_RUNDIR/consoled.log"
hv=$(lt_hv_pid)
con=$(ev_consoled_pid)

lt_domctl create "$(lt_xml warm "app=idle")" >/dev/null || lt_fail "warm-up create failed"
lt_wait_console warm 'idle: domain' 20 || lt_fail "warm-up domain did not boot"
ev_wait_file "$log" 'warm \(domain [0-9]+\): console connected' 10 || lt_fail "warm-up console not connected"
lt_domctl destroy warm || lt_fail "warm-up destroy failed"
ev_wait_file "$log" 'warm \(domain [0-9]+\): destroyed' 10 || lt_fail "consoled did not see the warm-up destroyed"
sleep 1
read -r cfd0 cth0 <<<"$(ev_proc_counts $con)"
read -r hfd0 hth0 <<<"$(ev_proc_counts $hv)"
lt_log "baseline: consoled $cfd0 fds $cth0 threads; lamina-hv $hfd0 fds $hth0 threads"

pids=()
for i in $(seq $N); do
	lt_domctl create "$(lt_xml m$i "app=idle" 4096)" >/dev/null &
	pids+=($!)
	[ $((i % 20)) -eq 0 ] && { for p in "${pids[@]}"; do wait $p || lt_fail "a create failed"; done; pids=(); }
done
for p in "${pids[@]}"; do wait $p || lt_fail "a create failed"; done
for i in $(seq $N); do lt_wait_console m$i 'idle: domain' 60 || lt_fail "m$i did not boot"; done
for ((t = 0; t < 200; t++)); do
	n=$(grep -cE ': m[0-9]+ \(domain [0-9]+\): console connected' "$log")
	[ "$n" -ge "$N" ] && break
	sleep 0.1
done
lt_log "$n consoles connected"
[ "$n" -eq "$N" ] || lt_fail "$n of $N consoles connected"
read -r cfd cth <<<"$(ev_proc_counts $con)"
lt_log "with $N domains: consoled $cfd fds $cth threads; lamina-hv $(ev_proc_counts $hv)"
[ "$cth" -eq "$cth0" ] || lt_fail "consoled grew threads ($cth0 -> $cth)"

pids=()
for i in $(seq $N); do
	lt_domctl destroy m$i >/dev/null &
	pids+=($!)
	[ $((i % 20)) -eq 0 ] && { for p in "${pids[@]}"; do wait $p || lt_fail "a destroy failed"; done; pids=(); }
done
for p in "${pids[@]}"; do wait $p || lt_fail "a destroy failed"; done
for ((t = 0; t < 300; t++)); do
	read -r cfd1 cth1 <<<"$(ev_proc_counts $con)"
	read -r hfd1 hth1 <<<"$(ev_proc_counts $hv)"
	[ "$cfd1" -le "$cfd0" ] && [ "$hfd1" -le "$hfd0" ] && [ "$hth1" -le "$hth0" ] && break
	sleep 0.1
done
lt_log "after destroy: consoled $cfd1 fds $cth1 threads; lamina-hv $hfd1 fds $hth1 threads"
[ "$cfd1" -eq "$cfd0" ] || lt_fail "consoled descriptors: $cfd0 -> $cfd1"
[ "$cth1" -eq "$cth0" ] || lt_fail "consoled threads: $cth0 -> $cth1"
[ "$hfd1" -le "$hfd0" ] || lt_fail "lamina-hv descriptors: $hfd0 -> $hfd1"
[ "$hth1" -le "$hth0" ] || lt_fail "lamina-hv threads: $hth0 -> $hth1"
n=$(grep -cE ': m[0-9]+ \(domain [0-9]+\): destroyed' "$log")
[ "$n" -eq "$N" ] || lt_fail "consoled saw $n of $N domains destroyed"
[ "$(lt_domctl list --json | jq 'length')" -eq 0 ] || lt_fail "domains left after destroy"
lt_pass
