#!/bin/bash
# ./run bench store: lamina-xenstored against Xen's C xenstored (xen-utils-4.17, socket-only under
# the xs-shim.so LD_PRELOAD shim), same load client, same run. Read, write and watch-fire round
# trips: ops/s (target >= 2x Xen's) and p99 latency (target <= Xen's). Both daemons and the client
# share one CPU (taskset), so neither side pays for cross-CPU wake-ups the scheduler may or may not
# choose; LAMINA_BENCH_CPU picks it (default 0). The two daemons run side by side and are loaded in
# turn, LAMINA_BENCH_ROUNDS times (default 3); each figure is the median over the rounds.
# LAMINA_BENCH_N sets requests per test and round.
# Concurrent (the headline): xs-load -c, LAMINA_BENCH_CONNS connections (default 8) each keeping
# LAMINA_BENCH_DEPTH requests in flight (default 8), LAMINA_BENCH_CONC_N requests per test and
# round (default 200000, at most 5 s each); aggregate ops/s (target >= 2x Xen's) and per-request
# p99 (target <= Xen's). Policy for the targets: both daemons on CPU LAMINA_BENCH_CPU, the client
# on another CPU (a server's capacity on one CPU, the client off it). Kept as information: the
# same with nothing pinned, and the sequential figures (bounded by two context switches per
# request, the same for any daemon: docs/xenstore.md, "Benchmark").
# Guest over its ring (needs /dev/kvm): app=store-load in a real guest against lamina-xenstored as
# `domctl host start` runs it, LAMINA_BENCH_RING_N requests per kind and round (default 5000),
# same rounds; shown against this run's lamina socket figures (information: the ring adds an
# event-channel round trip and its exits), with the guest's exits per request from `domctl info`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

N=${LAMINA_BENCH_N:-30000}
RING_N=${LAMINA_BENCH_RING_N:-5000}
ROUNDS=${LAMINA_BENCH_ROUNDS:-3}
CPU=${LAMINA_BENCH_CPU:-0}
CONNS=${LAMINA_BENCH_CONNS:-8}
DEPTH=${LAMINA_BENCH_DEPTH:-8}
CONC_N=${LAMINA_BENCH_CONC_N:-200000}
NCPU=$(nproc)
CCPU=$(( (CPU + 1) % NCPU )) # the concurrent client's CPU: another one, when there is one
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
host_up=0
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ "$host_up" = 1 ]; then LAMINA_RUNDIR="$work/host" timeout 30 domctl host stop >/dev/null 2>&1 || true; fi
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
# run_conc NAME SOCKET CPULIST -> appends to $work/NAME.txt
run_conc() {
	taskset -c "$3" "$LOAD" -s "$2" -n "$CONC_N" -c "$CONNS" -d "$DEPTH" -t 5 >>"$work/$1.txt"
}
# val NAME METRIC: the median over the rounds
val() { awk -v k="$2" '$1 == k { print $2 }' "$work/$1.txt" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# ring_guest NAME CMDLINE: runs one guest to its end (preserved for its log and counters); its
# console on stdout, or a failure.
ring_guest() {
	local xml="$work/host/$1.xml" i
	cat >"$xml" <<XML
<domain type='xen'><name>$1</name><memory unit='MiB'>16</memory><vcpu>1</vcpu>
<os><type>xenpvh</type><kernel>$LAMINA_GUEST</kernel><cmdline>$2</cmdline></os>
<on_poweroff>preserve</on_poweroff><on_crash>preserve</on_crash></domain>
XML
	domctl create "$xml" >/dev/null || return 1
	domctl wait "$1" --timeout 120 >/dev/null || true
	domctl console --dump "$1" | grep -q '^Test result: SUCCESS' ||
		{ domctl console --dump "$1" | tail -n 5 >&2; echo "bench store: guest $1 failed" >&2; return 1; }
	domctl console --dump "$1"
}
# exits NAME: vCPU exits of a (finished) domain
exits() { domctl info "$1" --json | jq -r .exits; }

# ring_section: the guest-over-ring figures, against the lamina socket figures of this run.
ring_section() {
	local r t out e1 en
	if [ ! -c /dev/kvm ] || [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ] || [ ! -f "$LAMINA_GUEST" ]; then
		echo "store: no usable /dev/kvm or no guest kernel ($LAMINA_GUEST): no guest-over-ring figures"
		return 0
	fi
	mkdir -p "$work/host"
	export LAMINA_RUNDIR="$work/host"
	domctl host start >"$work/host-start.out" 2>&1 || { cat "$work/host-start.out"; return 1; }
	host_up=1
	for _ in $(seq 200); do
		grep -q 'connected to the hypervisor' "$work/host/xenstored.log" 2>/dev/null && break
		sleep 0.05
	done
	for r in $(seq "$ROUNDS"); do
		for t in read write watch; do
			out=$(ring_guest "sl-$t-$r" "app=store-load ops=$RING_N kind=$t") || return 1
			echo "$out" | awk '$1 == "BENCH" { sub(/^store_ring_/, "", $2); print $2, $3 }' >>"$work/ring.txt"
			[ "$r" != 1 ] || echo "$out" | grep -E "^store-load: [0-9]+ (store-port|$t )" | sed "s/^store-load:/  guest ($t, round 1):/" || true
			# Exits per request: this run against one of a single request (boot, set-up, warm-up).
			ring_guest "sl1-$t-$r" "app=store-load ops=1 kind=$t" >/dev/null || return 1
			e1=$(exits "sl1-$t-$r") en=$(exits "sl-$t-$r")
			echo "${t}_exits_per_op $(awk -v a="$en" -v b="$e1" -v n="$RING_N" 'BEGIN { printf "%.2f", (a - b) / (n - 1) }')" \
				>>"$work/ring.txt"
			domctl destroy "sl-$t-$r" >/dev/null; domctl destroy "sl1-$t-$r" >/dev/null
		done
	done
	echo "store: guest over its ring: app=store-load, $RING_N requests per kind, median of $ROUNDS rounds; limit = lamina over its socket (this run)"
	for t in read write watch; do
		bench_metric "store_ring_${t}_ops_per_s" "$(val ring ${t}_ops_per_s)" ops/s "$(val lamina ${t}_ops_per_s)" ""
		bench_metric "store_ring_${t}_p99_us" "$(val ring ${t}_p99_us)" us "$(val lamina ${t}_p99_us)" ""
		bench_metric "store_ring_${t}_p50_us" "$(val ring ${t}_p50_us)" us "$(val lamina ${t}_p50_us)" ""
		bench_metric "store_ring_${t}_exits_per_op" "$(val ring ${t}_exits_per_op)" exits 0 ""
	done
}

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
	ring_section || echo "bench store: the guest-over-ring section failed"
	bench_end
	exit 1
fi
XENSTORED_PATH="$work/xen.sock" LD_PRELOAD="$SHIM" taskset -c "$CPU" "$xen" -N -F "$work/xen.pid" \
	>"$work/xen.log" 2>&1 &
pids+=($!)
wait_sock "$work/xen.sock"

# Sequential and concurrent-split rounds with the daemons on $CPU, then concurrent rounds with
# nothing pinned (the daemons' affinity widened in place: same processes, same trees).
for r in $(seq "$ROUNDS"); do
	run_load lamina "$work/lamina/xenstored/socket"
	run_load xen "$work/xen.sock"
	run_conc lamina "$work/lamina/xenstored/socket" "$CCPU"
	run_conc xen "$work/xen.sock" "$CCPU"
done
for p in "${pids[@]}"; do taskset -a -p -c "0-$((NCPU - 1))" "$p" >/dev/null; done
for r in $(seq "$ROUNDS"); do
	run_conc lamina-free "$work/lamina/xenstored/socket" "0-$((NCPU - 1))"
	run_conc xen-free "$work/xen.sock" "0-$((NCPU - 1))"
done

echo "store: concurrent: $CONNS connections x $DEPTH in flight, $CONC_N requests per test, median of $ROUNDS rounds," \
	"daemons on CPU $CPU, client on CPU $CCPU; limit = Xen xenstored ($xen)"
for t in read write watch; do
	bench_metric "store_conc_${t}_ops_per_s" "$(val lamina conc_${t}_ops_per_s)" ops/s "$(val xen conc_${t}_ops_per_s)" ">= 2"
	bench_metric "store_conc_${t}_p99_us" "$(val lamina conc_${t}_p99_us)" us "$(val xen conc_${t}_p99_us)" "<= 1"
	bench_metric "store_conc_${t}_p50_us" "$(val lamina conc_${t}_p50_us)" us "$(val xen conc_${t}_p50_us)" ""
done
echo "store: concurrent, nothing pinned (information)"
for t in read write watch; do
	bench_metric "store_conc_free_${t}_ops_per_s" "$(val lamina-free conc_${t}_ops_per_s)" ops/s "$(val xen-free conc_${t}_ops_per_s)" ""
	bench_metric "store_conc_free_${t}_p99_us" "$(val lamina-free conc_${t}_p99_us)" us "$(val xen-free conc_${t}_p99_us)" ""
done
echo "store: sequential (information): $N requests per test, one outstanding, median of $ROUNDS rounds, daemons and client on CPU $CPU"
for t in read write watch; do
	bench_metric "store_${t}_ops_per_s" "$(val lamina ${t}_ops_per_s)" ops/s "$(val xen ${t}_ops_per_s)" ""
	bench_metric "store_${t}_p99_us" "$(val lamina ${t}_p99_us)" us "$(val xen ${t}_p99_us)" ""
	bench_metric "store_${t}_p50_us" "$(val lamina ${t}_p50_us)" us "$(val xen ${t}_p50_us)" ""
done
ring_rc=0
ring_section || { ring_rc=$?; echo "bench store: the guest-over-ring section failed"; }
bench_end
exit $ring_rc
