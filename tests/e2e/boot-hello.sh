#!/usr/bin/env bash
# A PVH guest boots, greets with its domain id and memory size, powers off; the toolstack sees
# how it stopped and the domain is gone (on_poweroff defaults to destroy).
. "$LAMINA_SRCDIR/tests/lib.sh"
lt_need_kvm
lt_host_start

xml=$(lt_xml hello "app=hello" 16384)
out=$(lt_domctl create "$xml") || lt_fail "create failed: $out"
lt_log "$out"
domid=$(echo "$out" | grep -oE 'id [0-9]+' | grep -oE '[0-9]+')
[ -n "$domid" ] || lt_fail "create did not print the domain id: $out"

w=$(lt_domctl wait hello --timeout 20); rc=$?
lt_log "wait: $w (exit $rc)"
[ $rc -eq 0 ] || lt_fail "wait exited $rc: $w"
echo "$w" | grep -qi poweroff || lt_fail "wait did not report a poweroff: $w"

con=$(lt_domctl console --dump hello) || lt_fail "console --dump failed"
echo "$con"
echo "$con" | grep -qE "domain $domid\b" || lt_fail "greeting lacks the domain id $domid"
echo "$con" | grep -qE '16384 KiB|16 MiB' || lt_fail "greeting lacks the memory size"
[ -f "$LAMINA_RUNDIR/console/hello.log" ] || lt_fail "no console log file in the rundir"

lt_domctl list | grep -qw hello && lt_fail "hello is still listed after poweroff with on_poweroff=destroy"
lt_pass
