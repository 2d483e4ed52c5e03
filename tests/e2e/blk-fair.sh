#!/usr/bin/env bash
# Two guests drive one lamina-blkback flat out at once (4 KiB random reads at QD32, each on its own
# tmpfs image, served inline): both make progress and neither takes the daemon for itself, because
# a device's turn ends after four ring sizes of requests (its "yields" counter shows the turns it
# gave up).
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/blk-lib.sh"
lt_need_kvm
blk_need
lt_host_start

for g in f1 f2; do
	img=$(mktemp /dev/shm/lamina-blk-fair.XXXXXX)
	lt_extra_files+=("$img")
	dd if=/dev/urandom of="$img" bs=1M count=16 status=none
	lt_domctl create "$(blk_xml $g "app=blk-bench ms=1500 phases=randread-4k-qd32" "$(blk_disk "$img" xvda)")" \
		>/dev/null || lt_fail "create $g"
done
declare -A iops
for g in f1 f2; do
	w=$(lt_domctl wait $g --timeout 60) || lt_fail "$g: $w"
	line=$(lt_domctl console --dump $g | grep '^BENCH blk randread-4k-qd32') || lt_fail "$g printed no figure"
	echo "$g: $line"
	blk_result_ok $g || lt_fail "$g: $(lt_console_result $g)"
	iops[$g]=$(echo "$line" | grep -oE 'iops=[0-9]+' | cut -d= -f2)
	y=$(lt_domctl stat $g --json | jq '.vbd[0].stats.yields')
	echo "$g: blkback turns given up: $y"
	[ "$y" -gt 0 ] || lt_fail "$g: the device never yielded its turn"
done
lo=${iops[f1]} hi=${iops[f2]}
[ "$lo" -le "$hi" ] || { lo=${iops[f2]}; hi=${iops[f1]}; }
echo "slower guest: $lo IOPS, faster: $hi IOPS"
# Both ran for the same 1.5 s of their own time; the slower must have had a real share. The bound
# is loose: with make check running another test beside this one, the host scheduler alone has
# given one vCPU 5x the other's time; a device holding the daemon leaves the other near zero.
[ $((lo * 10)) -ge "$hi" ] || lt_fail "one guest starved the other: $lo against $hi IOPS"
lt_pass
