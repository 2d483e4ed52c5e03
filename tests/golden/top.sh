#!/usr/bin/env bash
# Golden shape of `domctl top --batch` on a real host: two idle domains, two iterations sorted by
# name. Every number becomes N (and the "-" of a hypervisor without DOMSTATS too, with its note),
# so the expected file fixes the header, the columns, the row order and the block structure.
# LAMINA_GOLDEN_UPDATE=1 rewrites the expected file.
. "$LAMINA_SRCDIR/tests/lib.sh"
lt_need_kvm
lt_host_start
expected="$LAMINA_SRCDIR/tests/golden/expected/top-batch.out"

for d in top-b top-a; do
	lt_domctl create "$(lt_xml $d "app=idle" 4096)" >/dev/null || lt_fail "create $d failed"
	lt_wait_console $d 'idle: domain' 20 || lt_fail "$d did not boot"
done
out=$(lt_domctl top --batch --iterations 2 --delay 0.3 --sort n 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] || lt_fail "top exited $rc"
shape=$(echo "$out" | sed -E 's/ \(no DOMSTATS: events not shown\)//; s/[0-9]+(\.[0-9]+)?/N/g; s/ - / N /g; s/ -$/ N/; s/ +/ /g')
if [ "${LAMINA_GOLDEN_UPDATE:-0}" = 1 ]; then
	echo "$shape" >"$expected"
	lt_pass
fi
diff -u "$expected" <(echo "$shape") || lt_fail "top --batch shape differs from $expected"
# The values behind the shape: ids are the domains', memory is 4096 KiB, idle CPU under 5%.
echo "$out" | awk '$1 == "top-a" || $1 == "top-b" { if ($6 != 4096 || $5 > 5) bad = 1; n++ }
	END { exit !(n == 4 && !bad) }' || lt_fail "rows do not carry the domains' values"
lt_pass
