#!/usr/bin/env bash
# Read-only and shared images: one guest writes an image; three guests then attach it read-only at
# once and verify it (each also sees its writes refused); a writable attach while they hold it, and
# a missing image, fail at create with a clear error before any guest starts.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/blk-lib.sh"
lt_need_kvm
blk_need
lt_host_start

img=$LAMINA_RUNDIR/shared.img
truncate -s 8M "$img"
lt_domctl create "$(blk_xml w0 "app=blk-verify blocks=128 seed=9" "$(blk_disk "$img" xvda)")" >/dev/null ||
	lt_fail "create w0"
w=$(lt_domctl wait w0 --timeout 60) || lt_fail "w0: $w"
blk_result_ok w0 || lt_fail "w0: $(lt_console_result w0)"
lt_domctl destroy w0 || lt_fail "destroy w0"

for r in r1 r2 r3; do
	lt_domctl create "$(blk_xml $r "app=blk-verify mode=check blocks=128 seed=9" "$(blk_disk "$img" xvda readonly)")" \
		>/dev/null || lt_fail "create $r (read-only, shared)"
done
for r in r1 r2 r3; do
	w=$(lt_domctl wait $r --timeout 60) || lt_fail "$r: $w"
	lt_domctl console --dump $r | grep -E '^  '
	blk_result_ok $r || lt_fail "$r: $(lt_console_result $r)"
	lt_domctl console --dump $r | grep -q 'write to the read-only disk refused.*ok' || lt_fail "$r: write not refused"
done

out=$(lt_domctl create "$(blk_xml w1 "app=hello" "$(blk_disk "$img" xvda)")" 2>&1) && lt_fail "a writer was let in: $out"
echo "$out"
echo "$out" | grep -q 'in use' || lt_fail "unclear error for a locked image: $out"
lt_domctl info w1 >/dev/null 2>&1 && lt_fail "w1 exists although its disk was refused"
out=$(lt_domctl create "$(blk_xml w2 "app=hello" "$(blk_disk /nonexistent/disk.img xvda)")" 2>&1) &&
	lt_fail "a missing image was accepted"
echo "$out"
echo "$out" | grep -q 'No such file' || lt_fail "unclear error for a missing image: $out"
lt_pass
