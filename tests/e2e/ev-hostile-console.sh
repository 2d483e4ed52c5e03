#!/usr/bin/env bash
# A console ring with impossible indexes: ev-dom0 maps the console page of a running guest with
# MAP_SPECIAL and moves out_prod far beyond the ring. lamina-consoled disconnects that console with
# one logged reason and keeps serving another domain's console, both ways.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/ev-lib.sh"
lt_need_kvm
lt_host_start
ev_need_ops
ev_need_consoled
log="$LAMINA_RUNDIR/consoled.log"

# Three victims, one per kind of corruption, and one domain that behaves.
doms="v-beyond v-huge v-backwards good"
for d in $doms; do
	lt_domctl create "$(lt_xml $d "app=echo timeout=60" 8192 "<on_poweroff>preserve</on_poweroff>")" >/dev/null ||
		lt_fail "create $d failed"
done
for d in $doms; do
	lt_wait_console $d 'echo: type a line' 20 || lt_fail "$d did not start"
	ev_wait_file "$log" "$d \(domain [0-9]+\): console connected" 10 || lt_fail "$d's console not connected"
done
# The guests wait for input and leave their rings alone: consoled's sweep finds the damage.
for mode in beyond huge backwards; do
	id=$(lt_domctl info v-$mode --json | jq -r .id)
	"$EV_DOM0" scribble "$id" $mode || lt_fail "scribble $mode failed"
	ev_wait_file "$log" "v-$mode \(domain $id\): console disconnected" 10 ||
		lt_fail "consoled did not disconnect the console with out_prod moved $mode"
	grep -E "v-$mode \(domain $id\): console disconnected" "$log" | sed 's/^/  /'
done
sleep 2.5 # a few sweeps: each reason is logged once
for mode in beyond huge backwards; do
	n=$(grep -cE "v-$mode \(domain [0-9]+\): console disconnected" "$log")
	[ "$n" -eq 1 ] || lt_fail "v-$mode: the reason was logged $n times"
done
out=$(printf 'x\n' | timeout 10 "$LAMINA_DOMCTL" console v-huge 2>&1) && lt_fail "attach to the broken console succeeded: $out"
echo "$out" | grep -qi 'disconnected\|no console ring' || lt_fail "attach refusal does not say why: $out"
# consoled is alive and still serves the good domain both ways.
kill -0 "$(ev_consoled_pid)" || lt_fail "lamina-consoled died"
out=$( (sleep 0.3; printf 'still here\nquit\n'; sleep 0.5) | timeout 20 "$LAMINA_DOMCTL" console good --linger 1500 2>&1)
echo "$out" | grep -q 'echo: still here' || lt_fail "the other console stopped working: $out"
lt_pass
