#!/usr/bin/env bash
# ELF core dumps: `domctl dump-core` of a running domain (paused for the dump, running after), of a
# paused one (stays paused), read back by readelf and by gdb with the guest kernel (a page the
# hypervisor filled at run time, the domain id the guest learnt, $pc inside .text); and a crash
# with on_crash=coredump-destroy leaving the same format in RUNDIR/dump/NAME.DOMID.core.
. "$LAMINA_SRCDIR/tests/lib.sh"
lt_need_kvm
command -v gdb >/dev/null 2>&1 || lt_skip "gdb is not installed (Debian package gdb)"
for t in readelf nm jq; do
	command -v $t >/dev/null 2>&1 || lt_skip "$t is not installed (Debian packages binutils, jq)"
done
lt_host_start

MIB=$((1024 * 1024))
text_lo=$((0x$(readelf -SW "$LAMINA_GUEST" | sed -n 's/.* \.text  *PROGBITS  *\([0-9a-f]*\) .*/\1/p')0))
text_lo=$((text_lo / 16))
text_hi=$((0x$(nm "$LAMINA_GUEST" | awk '$3 == "lamina_text_end" { print $1 }')))
[ "$text_lo" -gt 0 ] && [ "$text_hi" -gt "$text_lo" ] || lt_fail "cannot find the guest's .text range"

# check_core FILE RAM_BYTES: an x86-64 ELF core with notes and one PT_LOAD of RAM at 0, sparse.
check_core() {
	local f=$1 ram=$2 h l size alloc off
	h=$(readelf -hW "$f") || lt_fail "readelf cannot read $f"
	echo "$h" | grep -q 'CORE (Core file)' || lt_fail "$f is not ET_CORE: $h"
	echo "$h" | grep -q 'X86-64' || lt_fail "$f is not x86-64"
	l=$(readelf -lnW "$f")
	echo "$l" | grep -qE '^ +NOTE ' || lt_fail "no PT_NOTE in $f"
	echo "$l" | grep -qE "^ +LOAD +0x0*1000 0x0+ 0x0+ $(printf '0x%06x 0x%06x' "$ram" "$ram") RWE 0x1000" ||
		lt_fail "no PT_LOAD of $ram bytes of RAM at 0 (file offset 0x1000) in $f: $l"
	for off in $(echo "$l" | awk '$1 == "LOAD" { print $2 }'); do
		[ $((off % 4096)) -eq 0 ] || lt_fail "PT_LOAD file offset $off is not page aligned: $l"
	done
	echo "$l" | grep -q 'CORE .*NT_PRSTATUS' || lt_fail "no NT_PRSTATUS note in $f"
	echo "$l" | grep -q 'LAMINA .*0x4c4d4e01' || lt_fail "no Lamina domain note in $f"
	echo "$l" | grep -q 'LAMINA .*0x4c4d4e02' || lt_fail "no Lamina vCPU note in $f"
	size=$(stat -c %s "$f")
	alloc=$(($(stat -c %b "$f") * $(stat -c %B "$f")))
	[ "$size" -ge "$ram" ] || lt_fail "$f is $size bytes, less than RAM ($ram)"
	[ "$alloc" -lt $((size / 4)) ] || lt_fail "$f is not sparse: $alloc of $size bytes allocated"
	lt_log "$f: $size bytes, $alloc allocated"
}

# check_pc FILE: gdb finds vCPU 0's $pc inside the guest kernel's .text.
check_pc() {
	local pc
	pc=$(gdb -batch -nx -ex 'printf "PC=%lu\n", $pc' "$LAMINA_GUEST" "$1" 2>&1 | sed -n 's/^PC=//p')
	[ -n "$pc" ] || lt_fail "gdb could not read \$pc from $1"
	[ "$pc" -ge "$text_lo" ] && [ "$pc" -lt "$text_hi" ] ||
		lt_fail "\$pc $(printf %#x "$pc") of $1 is outside .text [$(printf %#x $text_lo), $(printf %#x $text_hi))"
}

# 1. A running spin guest.
lt_domctl create "$(lt_xml sp app=spin 65536)" >/dev/null || lt_fail "create sp failed"
lt_wait_console sp 'spin: 2' 20 || lt_fail "sp did not start spinning"
domid=$(lt_domctl info sp --json | jq -r .id)
core=$LAMINA_RUNDIR/sp.core
out=$(lt_domctl dump-core sp "$core") || lt_fail "dump-core sp failed: $out"
lt_log "$out"
check_core "$core" $((64 * MIB))
[ "$(stat -c %a "$core")" = 600 ] || lt_fail "the core is not private (mode $(stat -c %a "$core"))"
[ "$(lt_domctl info sp --json | jq -r .state)" = running ] || lt_fail "sp is not running after the dump"
a=$(lt_domctl console --dump sp | wc -c); sleep 0.4
b=$(lt_domctl console --dump sp | wc -c)
[ "$b" -gt "$a" ] || lt_fail "sp stopped progressing after the dump"

# The real proof: gdb reads guest memory at the symbols' addresses. The hypercall page was filled
# by the hypervisor (stub 0: mov $0,%eax; out %eax,$0x5c; ret), the domain id learnt by the guest.
# vCPU 0 may have stopped in a callee (time_now_ns): k is app_spin's, so select its frame first.
g=$(gdb -batch -nx -ex 'x/8xb &lamina_hypercall_page' -ex 'frame function app_spin' \
	-ex 'printf "DOMID=%u\n", k->domid' "$LAMINA_GUEST" "$core" 2>&1)
echo "$g" | grep -qE ':\s+0xb8\s+0x00\s+0x00\s+0x00\s+0x00\s+0xe7\s+0x5c\s+0xc3' ||
	lt_fail "gdb does not see the hypercall page in the core: $g"
echo "$g" | grep -qx "DOMID=$domid" || lt_fail "gdb does not read k->domid = $domid from the core: $g"
check_pc "$core"

# 2. A paused domain is dumped as it is and stays paused.
lt_domctl pause sp || lt_fail "pause sp failed"
lt_domctl dump-core "$domid" "$core.2" >/dev/null || lt_fail "dump-core of a paused domain (by id) failed"
check_core "$core.2" $((64 * MIB))
[ "$(lt_domctl info sp --json | jq -r .state)" = paused ] || lt_fail "sp is not paused after the dump"
lt_domctl unpause sp || lt_fail "unpause sp failed"

# 3. Refusals: no such domain (no file left behind), a file that is not a regular file.
lt_domctl dump-core nosuch "$LAMINA_RUNDIR/none.core" 2>"$LAMINA_RUNDIR/err" && lt_fail "dump-core of nosuch succeeded"
grep -q 'no such domain' "$LAMINA_RUNDIR/err" || lt_fail "no 'no such domain': $(cat "$LAMINA_RUNDIR/err")"
[ -e "$LAMINA_RUNDIR/none.core" ] && lt_fail "a failed dump left its file"
lt_domctl dump-core sp /dev/null 2>"$LAMINA_RUNDIR/err" && lt_fail "dump-core into /dev/null succeeded"
grep -q 'regular file' "$LAMINA_RUNDIR/err" || lt_fail "no 'regular file' refusal: $(cat "$LAMINA_RUNDIR/err")"
[ "$(lt_domctl info sp --json | jq -r .state)" = running ] || lt_fail "sp is not running after refusals"

# 4. on_crash=coredump-destroy: the domain goes, its core stays, in the same format.
out=$(lt_domctl create "$(lt_xml cr "app=crash crash=pagefault" 16384 "<on_crash>coredump-destroy</on_crash>")") ||
	lt_fail "create cr failed: $out"
crid=$(echo "$out" | sed -n 's/.* created with id \([0-9]*\)$/\1/p')
[ -n "$crid" ] || lt_fail "no domain id in: $out"
lt_domctl wait cr --timeout 20 >/dev/null
for i in $(seq 100); do lt_domctl list | grep -qw cr || break; sleep 0.1; done
lt_domctl list | grep -qw cr && lt_fail "cr still listed with on_crash=coredump-destroy"
ccore=$LAMINA_RUNDIR/dump/cr.$crid.core
[ -f "$ccore" ] || lt_fail "no core at $ccore: $(ls -l "$LAMINA_RUNDIR/dump" 2>&1)"
check_core "$ccore" $((16 * MIB))
# The domain note: version 1, the domid, state crashed (3), reason SHUTDOWN_crash (3).
printf -v idhex '%02x %02x' $((crid & 255)) $((crid >> 8))
readelf -nW "$ccore" | grep -q "description data: 01 00 00 00 $idhex 00 00 03 00 00 00 03 00 00 00" ||
	lt_fail "the domain note does not say dom$crid crashed: $(readelf -nW "$ccore")"
# vCPU 0 stopped in the SCHEDOP_shutdown stub of the hypercall page, called from the fault handler.
g=$(gdb -batch -nx -ex 'printf "PC=%lu HC=%lu\n", $pc, &lamina_hypercall_page' -ex bt "$LAMINA_GUEST" "$ccore" 2>&1)
pc=$(echo "$g" | sed -n 's/^PC=\([0-9]*\) .*/\1/p'); hc=$(echo "$g" | sed -n 's/.* HC=\([0-9]*\)$/\1/p')
[ -n "$pc" ] && [ -n "$hc" ] && [ "$pc" -ge "$hc" ] && [ "$pc" -lt $((hc + 4096)) ] ||
	lt_fail "the crashed vCPU's \$pc is not in the hypercall page: $g"
echo "$g" | grep -q 'traps_fatal' || lt_fail "gdb's backtrace of the crash does not reach traps_fatal: $g"

# 5. A crashed, preserved domain (its vCPU thread has ended) is dumped on request, as it stopped.
lt_domctl create "$(lt_xml kept "app=crash crash=pagefault" 8192 "<on_crash>preserve</on_crash>")" >/dev/null ||
	lt_fail "create kept failed"
lt_domctl wait kept --timeout 20 >/dev/null
kid=$(lt_domctl info kept --json | jq -r .id)
lt_domctl dump-core kept "$LAMINA_RUNDIR/kept.core" >/dev/null || lt_fail "dump-core of a crashed domain failed"
check_core "$LAMINA_RUNDIR/kept.core" $((8 * MIB))
printf -v idhex '%02x %02x' $((kid & 255)) $((kid >> 8))
readelf -nW "$LAMINA_RUNDIR/kept.core" | grep -q "description data: 01 00 00 00 $idhex 00 00 03 00 00 00 03" ||
	lt_fail "the domain note of kept does not say crashed"
gdb -batch -nx -ex bt "$LAMINA_GUEST" "$LAMINA_RUNDIR/kept.core" 2>&1 | grep -q traps_fatal ||
	lt_fail "gdb's backtrace of kept does not reach traps_fatal"
lt_domctl destroy kept || lt_fail "destroy kept failed"

# 6. on_crash=coredump-restart: a core, then the domain comes back under the same id (and crashes
# again: each core replaces the last by rename, so a reader never sees a partial one).
out=$(lt_domctl create "$(lt_xml cr2 "app=crash crash=shutdown" 8192 "<on_crash>coredump-restart</on_crash>")") ||
	lt_fail "create cr2 failed: $out"
c2=$(echo "$out" | sed -n 's/.* created with id \([0-9]*\)$/\1/p')
for i in $(seq 100); do
	n=$(lt_domctl info cr2 --json 2>/dev/null | jq -r .restarts)
	[ "${n:-0}" != null ] && [ "${n:-0}" -ge 1 ] && break
	sleep 0.1
done
[ "${n:-0}" != null ] && [ "${n:-0}" -ge 1 ] || lt_fail "cr2 did not restart"
[ -f "$LAMINA_RUNDIR/dump/cr2.$c2.core" ] || lt_fail "no core of cr2 in $LAMINA_RUNDIR/dump"
check_core "$LAMINA_RUNDIR/dump/cr2.$c2.core" $((8 * MIB))
lt_domctl destroy cr2 || lt_fail "destroy cr2 failed"
left=$(ls -A "$LAMINA_RUNDIR/dump" | grep '^\.')
[ -z "$left" ] || lt_fail "temporary core files left in $LAMINA_RUNDIR/dump: $left"

[ "$(lt_domctl info sp --json | jq -r .state)" = running ] || lt_fail "sp is not running at the end"
lt_pass
