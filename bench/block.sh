#!/usr/bin/env bash
# ./run bench block: a guest's blkfront through lamina-blkback against fio (io_uring) on the host,
# both on the same tmpfs image in the same run:
#   - 4 KiB random read, QD32, one vCPU: guest IOPS >= 0.4 x host fio IOPS
#   - 4 KiB random read, QD1: guest p50 <= 2 x host p50 + one event round trip (40 us here,
#     the eventfd -> guest upcall -> exit round trip of docs/design.md / PLATFORM.md)
#   - 1 MiB sequential read and write: guest MB/s >= 0.5 x host MB/s
#   - the same QD32 read with persistent grants off (guest persistent=0), with batching off
#     (lamina-blkback --no-batching) and with inline service off (--no-inline: every request through
#     io_uring, whose workers take tmpfs reads) and with polling off (--no-poll: req_event re-armed
#     at once, every request after an idle moment costs the guest an exit): shown against the
#     default run.
#   - information: host fio with synchronous preadv (psync), the ceiling of serving tmpfs inline;
#     QD128 on a 4-page ring (ring-order=2); QD32 on a copy of the image on the run directory's
#     disk-backed file system (page-cached, through io_uring) against fio on that copy.
# LAMINA_BENCH_OBJ=DIR runs the programs of another build tree.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
OBJ=${LAMINA_BENCH_OBJ:-$BENCH_OBJ}
if [ -n "${LAMINA_BENCH_OBJ:-}" ]; then
	export PATH="$OBJ/dom0-tools:$PATH" LAMINA_HV="$OBJ/hypervisor/lamina-hv"
	export LAMINA_XENSTORED="$OBJ/xenstore-like/lamina-xenstored" LAMINA_CONSOLED="$OBJ/pv-drivers/lamina-consoled"
	export LAMINA_BLKBACK="$OBJ/pv-drivers/lamina-blkback" LAMINA_NETBACK="$OBJ/pv-drivers/lamina-netback"
	LAMINA_GUEST="$OBJ/guest/lamina-guest"
fi
MS=${LAMINA_BENCH_MS:-3000}
command -v fio >/dev/null || { echo "fio is not installed: cannot measure the host limit"; exit 1; }
bench_begin block

export LAMINA_RUNDIR=$(mktemp -d /tmp/lamina-bench.XXXXXX)
IMG=$(mktemp /dev/shm/lamina-blk-bench.XXXXXX)
cleanup() { domctl host stop >/dev/null 2>&1 || true; rm -rf "$LAMINA_RUNDIR" "$IMG"; }
trap cleanup EXIT
truncate -s 256M "$IMG"
dd if=/dev/urandom of="$IMG" bs=1M count=256 conv=notrunc status=none

# fio_run NAME RW BS QD [FILE] [ENGINE]: one fio job (io_uring unless ENGINE) on the image, its page
# cache kept; prints its JSON.
fio_run() {
	fio --name="$1" --filename="${5:-$IMG}" --ioengine="${6:-io_uring}" --invalidate=0 --rw="$2" --bs="$3" --iodepth="$4" \
		--runtime=$((MS / 1000 > 0 ? MS / 1000 : 1)) --time_based --size=256M --output-format=json 2>/dev/null
}
h_qd32=$(fio_run rr32 randread 4k 32 | jq '.jobs[0].read.iops | floor')
h_psync=$(fio_run ps randread 4k 1 "$IMG" psync | jq '.jobs[0].read.iops | floor')
h_qd1_p50=$(fio_run rr1 randread 4k 1 | jq '.jobs[0].read.clat_ns.percentile["50.000000"] / 1000 | floor')
h_seqr=$(fio_run sr read 1M 2 | jq '.jobs[0].read.bw / 1024 | floor')
h_seqw=$(fio_run sw write 1M 2 | jq '.jobs[0].write.bw / 1024 | floor')

domctl host start >/dev/null

# guest_bench NAME CMDLINE-EXTRA [IMAGE]: boot blk-bench on the image, wait, print its BENCH lines.
guest_bench() {
	cat >"$LAMINA_RUNDIR/$1.xml" <<XML
<domain type='xen'><name>$1</name><memory unit='MiB'>16</memory><vcpu>1</vcpu>
<os><type>xenpvh</type><kernel>$LAMINA_GUEST</kernel><cmdline>app=blk-bench ms=$MS $2</cmdline></os>
<devices><disk type='file' device='disk'><source file='${3:-$IMG}'/><target dev='xvda'/></disk></devices>
<on_poweroff>preserve</on_poweroff>
</domain>
XML
	domctl create "$LAMINA_RUNDIR/$1.xml" >/dev/null
	domctl wait "$1" --timeout $((MS * 8 / 1000 + 60)) >/dev/null
	domctl console --dump "$1" | grep '^BENCH blk'
	domctl destroy "$1" >/dev/null
}
# field LINES PHASE KEY
field() { echo "$1" | awk -v p="$2" -v k="$3" '$3 == p { for (i = 4; i <= NF; i++) { split($i, a, "="); if (a[1] == k) print a[2] } }'; }

g=$(guest_bench bb "")
echo "$g"
# The same file on the run directory's (disk-backed) file system, in the page cache: served
# through io_uring, whose reads of cached pages complete inside the submit.
DIMG="$LAMINA_RUNDIR/disk.img"
cp "$IMG" "$DIMG"
cat "$DIMG" >/dev/null # in the page cache for both; fio is told not to drop it (--invalidate=0)
if [ "$(stat -f -c %T "$DIMG")" != tmpfs ]; then
	h_d32=$(fio_run drr32 randread 4k 32 "$DIMG" | jq '.jobs[0].read.iops | floor')
	g_d=$(guest_bench bbd "phases=randread-4k-qd32" "$DIMG")
	echo "$g_d"
fi
g_r4=$(guest_bench bbr4 "ring-order=2 phases=randread-4k-qd128")
echo "$g_r4"
g_np=$(guest_bench bbnp "persistent=0 phases=randread-4k-qd32")
echo "$g_np"
# blkback_restart FLAG: the back-end again, with one optimisation turned off.
blkback_restart() {
	kill "$(cat "$LAMINA_RUNDIR/lamina-blkback.pid")"
	sleep 0.3
	"$LAMINA_BLKBACK" --rundir "$LAMINA_RUNDIR" --pid-file "$LAMINA_RUNDIR/lamina-blkback.pid" "$1" \
		>>"$LAMINA_RUNDIR/blkback.log" 2>&1 &
	sleep 0.5
}
blkback_restart --no-batching
g_nb=$(guest_bench bbnb "phases=randread-4k-qd32")
echo "$g_nb"
blkback_restart --no-inline
g_ni=$(guest_bench bbni "phases=randread-4k-qd32")
echo "$g_ni"
blkback_restart --no-poll
g_npo=$(guest_bench bbnpo "phases=randread-4k-qd1,randread-4k-qd32")
echo "$g_npo"

bench_metric "blk randread 4k qd32" "$(field "$g" randread-4k-qd32 iops)" IOPS "$h_qd32" ">= 0.4"
bench_metric "blk randread 4k qd1 p50" "$(field "$g" randread-4k-qd1 p50_us)" us $((2 * h_qd1_p50 + 40)) "<= 1"
bench_metric "blk seqread 1m" "$(field "$g" seqread-1m mbps)" MB/s "$h_seqr" ">= 0.5"
bench_metric "blk seqwrite 1m" "$(field "$g" seqwrite-1m mbps)" MB/s "$h_seqw" ">= 0.5"
bench_metric "blk randwrite 4k qd32 (info)" "$(field "$g" randwrite-4k-qd32 iops)" IOPS "$h_qd32" ""
bench_metric "blk randread 4k qd128, 4-page ring (info)" "$(field "$g_r4" randread-4k-qd128 iops)" IOPS "$h_qd32" ""
if [ -n "${h_d32:-}" ]; then
	bench_metric "blk randread 4k qd32, page-cached disk file (info)" "$(field "$g_d" randread-4k-qd32 iops)" IOPS \
		"$h_d32" ""
fi
bench_metric "blk qd32 persistent grants off" "$(field "$g_np" randread-4k-qd32 iops)" IOPS \
	"$(field "$g" randread-4k-qd32 iops)" ""
bench_metric "blk qd32 batching off" "$(field "$g_nb" randread-4k-qd32 iops)" IOPS \
	"$(field "$g" randread-4k-qd32 iops)" ""
bench_metric "blk qd32 inline off (io_uring workers)" "$(field "$g_ni" randread-4k-qd32 iops)" IOPS \
	"$(field "$g" randread-4k-qd32 iops)" ""
bench_metric "blk qd1 p50 polling off (info)" "$(field "$g_npo" randread-4k-qd1 p50_us)" us \
	"$(field "$g" randread-4k-qd1 p50_us)" ""
bench_metric "blk qd32 polling off" "$(field "$g_npo" randread-4k-qd32 iops)" IOPS \
	"$(field "$g" randread-4k-qd32 iops)" ""
bench_metric "blk qd32 against host fio psync (info)" "$(field "$g" randread-4k-qd32 iops)" IOPS "$h_psync" ""
bench_end
