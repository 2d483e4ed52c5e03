#!/usr/bin/env bash
# Grants between a guest (app=grant-test) and a Domain-0 back-end (gnt-client full): map rw and ro
# grants and write through the rw one (the guest sees it); the ro grant refuses every write (no
# writable mapping, copy refused, page intact); a grant to another domain and a missing domain are
# refused; ending access is refused while mapped; copies both ways with partial pages; foreign maps
# only for the toolstack; a back-end that disconnects holding a map has it undone; then copies race
# a guest flipping the grant's flags and fail cleanly
# while the daemon lives on; then the copy ring against a second guest (bench/gnt-bench ringcheck).
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/gnt-lib.sh"
lt_need_kvm
lt_host_start
gnt_need_ops

lt_domctl create "$(lt_xml g0 "app=grant-test" 16384 "<on_poweroff>preserve</on_poweroff>")" >/dev/null ||
	lt_fail "create failed"
lt_wait_console g0 'grant-test: ready' 20 || lt_fail "the guest never said ready: $(lt_domctl console --dump g0 | tail -n 5)"
domid=$(lt_domctl info g0 --json | jq -r .id)
rw=$(gnt_ref g0 rw) ro=$(gnt_ref g0 ro) copy=$(gnt_ref g0 copy) other=$(gnt_ref g0 other)
[ -n "$rw" ] && [ -n "$ro" ] && [ -n "$copy" ] && [ -n "$other" ] || lt_fail "the guest printed no refs"
out=$("$GNT_CLIENT" full "$domid" "$rw" "$ro" "$copy" "$other" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || lt_fail "gnt-client full failed"
w=$(lt_domctl wait g0 --timeout 30) || lt_fail "g0: $w"
lt_domctl console --dump g0 | grep -E '^  |grant-test:'
gnt_result_ok g0 || lt_fail "guest: $(lt_console_result g0)"
gnt_hv_alive || lt_fail "lamina-hv died"

# The shared-memory copy ring (LAMINA_CTL_GNT_RING) against a second guest's grants: copies both
# ways with a partial page, read back through GNT_COPY, per-segment refusals, one ring per
# connection, and a client whose producer index runs past its ring loses that ring only.
GB="$LAMINA_BUILDDIR/bench/gnt-bench"
[ -x "$GB" ] || lt_fail "missing $GB (the top-level make builds it)"
lt_domctl create "$(lt_xml g1 "app=grant-test mode=bench pages=16" 16384)" >/dev/null || lt_fail "create g1 failed"
lt_wait_console g1 'grant-test: bench first' 20 || lt_fail "g1 granted nothing: $(lt_domctl console --dump g1 | tail -n 5)"
line=$(lt_domctl console --dump g1 | grep -oE 'grant-test: bench first [0-9]+ pages [0-9]+' | head -n1)
first=$(echo "$line" | awk '{print $4}')
pages=$(echo "$line" | awk '{print $6}')
domid1=$(lt_domctl info g1 --json | jq -r .id)
out=$("$GB" ringcheck "$domid1" "$first" "$pages" 1 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || lt_fail "gnt-bench ringcheck failed"
grep -q 'grant-copy ring disconnected: request producer' "$LAMINA_RUNDIR/hv.log" ||
	lt_fail "the broken ring was not logged"
gnt_hv_alive || lt_fail "lamina-hv died"
lt_pass
