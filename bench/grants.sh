#!/usr/bin/env bash
# ./run bench grants: one Domain-0 back-end thread (bench/gnt-bench) against a guest that granted
# 256 pages (app=grant-test mode=bench), each figure set against a limit measured in the same run:
#   - grant-copy bandwidth through the shared-memory copy ring (LAMINA_CTL_GNT_RING; the mean of
#     both directions) for 4 KiB, 64 KiB and 1 MiB batches, 8 batches in flight (and, for
#     information, one at a time) vs memcpy of the same sizes in the same process: >= 0.5 for
#     64 KiB and up
#   - for information, the same copies as control-socket requests (GNT_COPY), 8 in flight and one
#     at a time, vs memcpy measured in that process
#   - map+unmap latency per page (control round trips, and with the back-end's mmap/munmap) vs
#     the per-page cost of the windowed alternative (memslot split + restore, raw KVM, no vCPU)
#   - grant operations per second from one thread: small copies and batched map/unmap
# LAMINA_BENCH_OBJ=DIR runs the programs of another build tree (its hypervisor, domctl, guest).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
OBJ=${LAMINA_BENCH_OBJ:-$BENCH_OBJ}
if [ -n "${LAMINA_BENCH_OBJ:-}" ]; then
	export PATH="$OBJ/dom0-tools:$PATH" LAMINA_HV="$OBJ/hypervisor/lamina-hv"
	LAMINA_GUEST="$OBJ/guest/lamina-guest"
fi
bench_begin grants
ITERS=${LAMINA_BENCH_ITERS:-300}
GB="$OBJ/bench/gnt-bench"
make -s -C "$OBJ/bench" gnt-bench >/dev/null

export LAMINA_RUNDIR=$(mktemp -d /tmp/lamina-bench.XXXXXX)
cleanup() { domctl host stop >/dev/null 2>&1 || true; rm -rf "$LAMINA_RUNDIR"; }
trap cleanup EXIT
domctl host start >/dev/null

# val KEY: the value of "RESULT KEY V" lines on stdin.
val() { awk -v k="$1" '$1 == "RESULT" && $2 == k { print $3 }' | tail -n 1; }

cat >"$LAMINA_RUNDIR/gb.xml" <<XML
<domain type='xen'><name>gb</name><memory unit='MiB'>16</memory><vcpu>1</vcpu>
<os><type>xenpvh</type><kernel>$LAMINA_GUEST</kernel><cmdline>app=grant-test mode=bench pages=256</cmdline></os>
</domain>
XML
domctl create "$LAMINA_RUNDIR/gb.xml" >/dev/null
for _ in $(seq 400); do
	domctl console --dump gb 2>/dev/null | grep -q 'grant-test: bench first' && break
	sleep 0.05
done
line=$(domctl console --dump gb | grep -oE 'grant-test: bench first [0-9]+ pages [0-9]+' | head -n1)
[ -n "$line" ] || { domctl console --dump gb | tail -n 5 >&2; echo "the bench guest did not grant its pages" >&2; exit 1; }
first=$(echo "$line" | awk '{print $4}')
pages=$(echo "$line" | awk '{print $6}')
domid=$(domctl info gb --json | jq -r .id)

ring=$("$GB" ring "$domid" "$first" "$pages" "$ITERS")
echo "$ring" | sed 's/^/  /'
for s in 4 64 1024; do
	target=">= 0.5"
	[ $s -eq 4 ] && target=""
	bench_metric "gnt_ring_copy_${s}k_bandwidth" "$(echo "$ring" | val ring_copy_${s}k_MBps)" MB/s \
		"$(echo "$ring" | val memcpy_${s}k_MBps)" "$target"
	bench_metric "gnt_ring_copy_${s}k_bandwidth_depth1" "$(echo "$ring" | val ring_copy_${s}k_depth1_MBps)" \
		MB/s "$(echo "$ring" | val memcpy_${s}k_MBps)" ""
done
bench_metric gnt_ring_copy_ops_per_s "$(echo "$ring" | val ring_copy_ops_per_s)" ops/s 0 ""

copy=$("$GB" copy "$domid" "$first" "$pages" "$ITERS")
echo "$copy" | sed 's/^/  /'
for s in 4 64 1024; do
	bench_metric "gnt_copy_${s}k_bandwidth" "$(echo "$copy" | val gnt_copy_${s}k_MBps)" MB/s \
		"$(echo "$copy" | val memcpy_${s}k_MBps)" ""
	bench_metric "gnt_copy_${s}k_bandwidth_depth1" "$(echo "$copy" | val gnt_copy_${s}k_depth1_MBps)" MB/s \
		"$(echo "$copy" | val memcpy_${s}k_MBps)" ""
done

bench_metric ctl_request_round_trip "$(echo "$copy" | val ctl_rtt_ns)" ns 0 ""
slots=$("$GB" slots "$ITERS")
window=$(( $(echo "$slots" | val slot_split_ns) + $(echo "$slots" | val slot_restore_ns) ))
map=$("$GB" map "$domid" "$first" "$pages" "$ITERS")
echo "$map" | sed 's/^/  /'
bench_metric gnt_map_unmap_latency "$(echo "$map" | val gnt_map_unmap_ns)" ns "$window" "<= 1"
bench_metric gnt_map_mmap_unmap_latency "$(echo "$map" | val gnt_map_mmap_unmap_ns)" ns "$window" "<= 1"
bench_metric gnt_map_batched_per_page "$(echo "$map" | val gnt_map_batched_per_page_ns)" ns "$window" "<= 1"
bench_metric window_slot_split_restore "$window" ns "$window" ""
bench_metric gnt_copy_ops_per_s "$(echo "$copy" | val gnt_copy_ops_per_s)" ops/s 0 ""
bench_metric gnt_map_ops_per_s "$(echo "$map" | val gnt_map_ops_per_s)" ops/s 0 ""
bench_end
