#!/usr/bin/env bash
# A domain that restarts (on_crash=restart around app=crash crash=shutdown) gets a new console
# page and port each time: lamina-consoled re-maps and re-binds on every RESTARTED notification,
# without growing its descriptors, and the restarted instances' console output still reaches the
# log. Destroying the domain releases everything.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/ev-lib.sh"
lt_need_kvm
lt_host_start
ev_need_ops
ev_need_consoled
log="$LAMINA_RUNDIR/consoled.log"
con=$(ev_consoled_pid)
read -r fd0 th0 <<<"$(ev_proc_counts $con)"

lt_domctl create "$(lt_xml phoenix "app=crash crash=shutdown" 8192 "<on_crash>restart</on_crash>")" >/dev/null ||
	lt_fail "create failed"
for ((i = 0; i < 200; i++)); do
	n=$(grep -c 'phoenix (domain [0-9]*): restarted; console reconnected' "$log")
	[ "$n" -ge 5 ] && break
	sleep 0.05
done
lt_log "$n restarts reconnected so far"
[ "$n" -ge 5 ] || lt_fail "consoled did not reconnect the console across restarts"
read -r fd1 th1 <<<"$(ev_proc_counts $con)"
sleep 1
read -r fd2 th2 <<<"$(ev_proc_counts $con)"
lt_log "consoled: $fd0 fds before, $fd1 and $fd2 while restarting; threads $th0 $th1 $th2"
[ "$fd2" -le $((fd0 + 4)) ] || lt_fail "consoled holds $fd2 descriptors while one domain restarts (baseline $fd0)"
lt_domctl console --dump phoenix | grep -q 'crash: SCHEDOP_shutdown' || lt_fail "no console output from the guest"
lt_domctl destroy phoenix || lt_fail "destroy failed"
ev_wait_file "$log" 'phoenix \(domain [0-9]+\): destroyed' 10 || lt_fail "consoled did not see the destroy"
for ((i = 0; i < 50; i++)); do
	read -r fd3 th3 <<<"$(ev_proc_counts $con)"
	[ "$fd3" -eq "$fd0" ] && break
	sleep 0.1
done
[ "$fd3" -eq "$fd0" ] || lt_fail "consoled descriptors $fd0 -> $fd3 after destroy"
[ "$th3" -eq "$th0" ] || lt_fail "consoled threads $th0 -> $th3"
kill -0 "$con" || lt_fail "lamina-consoled died"
lt_pass
