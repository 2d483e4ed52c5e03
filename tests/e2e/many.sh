#!/usr/bin/env bash
# 50 domains created concurrently all boot; destroying them leaves no fds, threads or memory
# behind in the daemon.
. "$LAMINA_SRCDIR/tests/lib.sh"
lt_need_kvm
lt_host_start
N=${LAMINA_MANY:-50}
pid=$(lt_hv_pid)
fds() { ls /proc/$pid/fd | wc -l; }
threads() { ls /proc/$pid/task | wc -l; }
rss() { awk '/^VmRSS/ { print $2 }' /proc/$pid/status; }

# Warm up once so lazily created daemon state is not counted as a leak.
lt_domctl create "$(lt_xml warm "app=idle")" >/dev/null || lt_fail "warm-up create failed"
lt_wait_console warm 'idle: domain' 20 || lt_fail "warm-up domain did not boot"
lt_domctl destroy warm || lt_fail "warm-up destroy failed"
sleep 1
fd0=$(fds); th0=$(threads); rss0=$(rss)
lt_log "baseline: $fd0 fds, $th0 threads, ${rss0} KiB RSS"

pids=()
for i in $(seq $N); do
	lt_domctl create "$(lt_xml m$i "app=idle")" >/dev/null &
	pids+=($!)
done
for p in "${pids[@]}"; do wait $p || lt_fail "a concurrent create failed"; done
for i in $(seq $N); do lt_wait_console m$i 'idle: domain' 30 || lt_fail "m$i did not boot"; done
n=$(lt_domctl list --json | jq 'length')
[ "$n" -eq "$N" ] || lt_fail "list shows $n domains, want $N"
lt_log "with $N domains: $(fds) fds, $(threads) threads, $(rss) KiB RSS"

pids=()
for i in $(seq $N); do lt_domctl destroy m$i & pids+=($!); done
for p in "${pids[@]}"; do wait $p || lt_fail "a concurrent destroy failed"; done
# Teardown is asynchronous: give the reaper time.
for i in $(seq 100); do [ "$(fds)" -le "$fd0" ] && [ "$(threads)" -le "$th0" ] && break; sleep 0.1; done
fd1=$(fds); th1=$(threads); rss1=$(rss)
lt_log "after destroy: $fd1 fds, $th1 threads, ${rss1} KiB RSS"
[ "$fd1" -le "$fd0" ] || lt_fail "fd leak: $fd0 -> $fd1"; 
[ "$th1" -le "$th0" ] || lt_fail "thread leak: $th0 -> $th1"
[ "$rss1" -le $((rss0 + 4096)) ] || lt_fail "memory leak: RSS $rss0 -> $rss1 KiB"
[ "$(lt_domctl list --json | jq 'length')" -eq 0 ] || lt_fail "domains left after destroy"
lt_pass
