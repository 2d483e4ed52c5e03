#!/bin/bash
# ./run bench store: lamina-xenstored against Xen's C xenstored (xen-utils-4.17, socket-only under
# the xs-shim.so LD_PRELOAD shim), same load client, same run. Read, write and watch-fire round
# trips: ops/s (target >= 2x Xen's) and p99 latency (target <= Xen's). Both daemons and the client
# share one CPU (taskset), so neither side pays for cross-CPU wake-ups the scheduler may or may not
# choose; LAMINA_BENCH_CPU picks it (default 0). The two daemons run side by side and are loaded in
# turn, LAMINA_BENCH_ROUNDS times (default 3); each figure is the median over the rounds.
# LAMINA_BENCH_N sets requests per test and round.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

N=${LAMINA_BENCH_N:-30000}
ROUNDS=${LAMINA_BENCH_ROUNDS:-3}
CPU=${LAMINA_BENCH_CPU:-0}
LOAD="$BENCH_OBJ/bench/xs-load"
SHIM="$BENCH_OBJ/bench/xs-shim.so"
for f in "$LOAD" "$SHIM" "$LAMINA_XENSTORED"; do
	[ -e "$f" ] || { echo "bench store: $f missing (./run build first)"; exit 1; }
done

# Xen's daemon: the installed package, else install it, else unpack it privately.
find_xen_xenstored() {
	local x=${LAMINA_XEN_XENSTORED:-/usr/lib/xen-4.17/bin/xenstored}
	if [ -x "$x" ]; then echo "$x"; return 0; fi
	if [ "$(id -u)" -eq 0 ]; then
		echo "bench store: installing xen-utils-4.17 for Xen's xenstored" >&2
		if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends xen-utils-4.17 >/dev/null 2>&1 &&
			[ -x /usr/lib/xen-4.17/bin/xenstored ]; then
			echo /usr/lib/xen-4.17/bin/xenstored; return 0
		fi
	fi
	local d="$BENCH_PREFIX/bench/xen-utils"
	if [ ! -x "$d/usr/lib/xen-4.17/bin/xenstored" ]; then
		echo "bench store: unpacking xen-utils-4.17 into $d" >&2
		mkdir -p "$d"
		(cd "$d" && apt-get download xen-utils-4.17 >/dev/null 2>&1 && dpkg-deb -x xen-utils-4.17_*.deb .) || return 1
	fi
	echo "$d/usr/lib/xen-4.17/bin/xenstored"
}

work=$(mktemp -d /tmp/bench-store.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

wait_sock() {
	local i
	for i in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done
	echo "bench store: no socket at $1"; return 1
}

# run_load NAME SOCKET -> appends to $work/NAME.txt ("metric value" lines)
run_load() {
	taskset -c "$CPU" "$LOAD" -s "$2" -n "$N" >>"$work/$1.txt"
}
# val NAME METRIC: the median over the rounds
val() { awk -v k="$2" '$1 == k { print $2 }' "$work/$1.txt" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

bench_begin store

# lamina-xenstored
mkdir -p "$work/lamina"
taskset -c "$CPU" "$LAMINA_XENSTORED" --rundir "$work/lamina" --no-hv --log "$work/lamina.log" &
pids+=($!)
wait_sock "$work/lamina/xenstored/socket"

# Xen's xenstored, socket-only
xen=$(find_xen_xenstored) || xen=
if [ -z "$xen" ]; then
	echo "bench store: Xen's xenstored unavailable (xen-utils-4.17 could not be installed or unpacked)"
	run_load lamina "$work/lamina/xenstored/socket"
	for t in read write watch; do
		bench_metric "store_${t}_ops_per_s" "$(val lamina ${t}_ops_per_s)" ops/s 0 ""
	done
	bench_end
	exit 1
fi
XENSTORED_PATH="$work/xen.sock" LD_PRELOAD="$SHIM" taskset -c "$CPU" "$xen" -N -F "$work/xen.pid" \
	>"$work/xen.log" 2>&1 &
pids+=($!)
wait_sock "$work/xen.sock"

for r in $(seq "$ROUNDS"); do
	run_load lamina "$work/lamina/xenstored/socket"
	run_load xen "$work/xen.sock"
done

echo "store: $N requests per test, median of $ROUNDS rounds, daemons and client on CPU $CPU; limit = Xen xenstored ($xen)"
echo "store: socket figures only: the guest kernel has no store load app, so no guest-over-ring figures yet"
for t in read write watch; do
	bench_metric "store_${t}_ops_per_s" "$(val lamina ${t}_ops_per_s)" ops/s "$(val xen ${t}_ops_per_s)" ">= 2"
	bench_metric "store_${t}_p99_us" "$(val lamina ${t}_p99_us)" us "$(val xen ${t}_p99_us)" "<= 1"
	bench_metric "store_${t}_p50_us" "$(val lamina ${t}_p50_us)" us "$(val xen ${t}_p50_us)" ""
done
bench_end
