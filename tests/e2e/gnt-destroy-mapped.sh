#!/usr/bin/env bash
# A domain destroyed while a Domain-0 back-end maps its pages: the back-end's mapping stays valid
# (the memory lives until the last mapping goes), its maps are accounted as maps of a dead domain,
# new maps are refused, and unmapping them releases everything.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/gnt-lib.sh"
lt_need_kvm
lt_host_start
gnt_need_ops

lt_domctl create "$(lt_xml g1 "app=grant-test mode=hold" 16384)" >/dev/null || lt_fail "create failed"
lt_wait_console g1 'grant-test: ready' 20 || lt_fail "the guest never said ready"
domid=$(lt_domctl info g1 --json | jq -r .id)
rw=$(gnt_ref g1 rw) ro=$(gnt_ref g1 ro)
mkfifo "$LAMINA_RUNDIR/gc.in"
"$GNT_CLIENT" hold "$domid" "$rw" "$ro" <"$LAMINA_RUNDIR/gc.in" >"$LAMINA_RUNDIR/gc.out" 2>&1 &
pid=$!
exec 3>"$LAMINA_RUNDIR/gc.in"
for ((i = 0; i < 400; i++)); do
	grep -q '^mapped' "$LAMINA_RUNDIR/gc.out" && break
	kill -0 $pid 2>/dev/null || break
	sleep 0.05
done
grep -q '^mapped' "$LAMINA_RUNDIR/gc.out" || { cat "$LAMINA_RUNDIR/gc.out"; lt_fail "the client never mapped"; }
lt_wait_console g1 'grant-test: holding' 10 || lt_fail "the guest did not see the maps"
lt_domctl console --dump g1 | grep -E '^  '
lt_domctl destroy g1 || lt_fail "destroy failed"
echo go >&3
exec 3>&-
wait $pid
rc=$?
cat "$LAMINA_RUNDIR/gc.out"
[ $rc -eq 0 ] || lt_fail "gnt-client hold failed"
gnt_hv_alive || lt_fail "lamina-hv died"
lt_pass
