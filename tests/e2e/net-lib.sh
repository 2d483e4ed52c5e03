# Shared by the network end-to-end tests: every test runs its host (lamina-hv, the store,
# lamina-netback) inside a network namespace it creates, with the default bridge lambr0 in there;
# nothing it does can reach any other network. The namespace goes away on exit.
. "$LAMINA_SRCDIR/tests/lib.sh"

nt_ns=""

nt_cleanup() {
	local rc=$?
	if [ -n "${LAMINA_RUNDIR:-}" ] && [ -d "$LAMINA_RUNDIR" ]; then
		for s in "$LAMINA_RUNDIR"/netback.log; do
			[ "$rc" -ne 0 ] && [ -f "$s" ] && { echo "---- $s (last 30 lines)"; tail -n 30 "$s"; }
		done
		timeout 30 ip netns exec "$nt_ns" "$LAMINA_DOMCTL" host stop >/dev/null 2>&1 || true
		if [ -f "$LAMINA_RUNDIR/hv.pid" ] && kill -0 "$(cat "$LAMINA_RUNDIR/hv.pid")" 2>/dev/null; then
			kill -9 "$(cat "$LAMINA_RUNDIR/hv.pid")" 2>/dev/null || true
		fi
		[ "${LAMINA_KEEP_RUNDIR:-0}" = 1 ] || rm -rf "$LAMINA_RUNDIR"
	fi
	[ -n "$nt_ns" ] && ip netns del "$nt_ns" 2>/dev/null
	exit $rc
}

# A namespace of our own, then a private host started inside it with the default bridge.
nt_host_start() {
	command -v ip >/dev/null || lt_skip "iproute2 (ip) is missing"
	[ "$(id -u)" = 0 ] || lt_skip "network namespaces need root"
	nt_ns="lamina-$lt_name-$$"
	ip netns add "$nt_ns" || lt_skip "cannot create a network namespace"
	LAMINA_RUNDIR=$(mktemp -d /tmp/lamina-test.XXXXXX)
	export LAMINA_RUNDIR
	trap nt_cleanup EXIT
	ip netns exec "$nt_ns" ip link set lo up
	ip netns exec "$nt_ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip netns exec "$nt_ns" "$LAMINA_DOMCTL" host start --bridge >"$LAMINA_RUNDIR/host-start.out" 2>&1 ||
		{ cat "$LAMINA_RUNDIR/host-start.out"; lt_fail "domctl host start --bridge failed"; }
	grep -q "lamina-netback started" "$LAMINA_RUNDIR/host-start.out" ||
		{ cat "$LAMINA_RUNDIR/host-start.out"; lt_fail "lamina-netback did not start"; }
}

nt_exec() { ip netns exec "$nt_ns" "$@"; }

# nt_guest NAME IP [EXTRA_CMDLINE] [MAC]: a net-echo guest with one vif on lambr0.
nt_guest() {
	local name=$1 ip=$2 extra=${3:-} mac=${4:-} macxml="" f
	[ -n "$mac" ] && macxml="<mac address='$mac'/>"
	f=$(lt_xml "$name" "app=net-echo ip=$ip $extra" 32768 \
		"<devices><console type='pty'/><interface type='bridge'><source bridge='lambr0'/>$macxml</interface></devices>")
	nt_exec "$LAMINA_DOMCTL" create "$f" >/dev/null || lt_fail "create $name failed"
	lt_wait_console "$name" "net-echo: up" 30 || {
		nt_exec "$LAMINA_DOMCTL" console --dump "$name"
		lt_fail "$name: netfront did not come up"
	}
}
