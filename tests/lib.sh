# Shared by the end-to-end tests: an isolated host (its own LAMINA_RUNDIR) per test, domain XML
# written on the fly, and the four outcomes. Source after env.sh (make check does both).
set -u

lt_name=$(basename "$0" .sh)
lt_fail() { echo "Test result: FAILURE: $lt_name: $*"; lt_dump; exit 1; }
lt_skip() { echo "*** SKIP: $lt_name: $* ***"; echo "Test result: SKIP: $*"; exit 77; }
lt_pass() { echo "Test result: SUCCESS"; exit 0; }
lt_log() { echo "[$lt_name] $*"; }

# KVM must be usable, not just present: the probe is `domctl host check`, but a missing device
# is enough to skip.
lt_need_kvm() {
	[ -c /dev/kvm ] || lt_skip "/dev/kvm is absent: end-to-end tests need KVM"
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || lt_skip "/dev/kvm is not accessible to $(id -un)"
	[ -x "$LAMINA_GUEST" ] || [ -f "$LAMINA_GUEST" ] || lt_fail "guest kernel missing: $LAMINA_GUEST"
}

# Start a private host; stop it (and everything it started) when the test exits.
lt_host_start() {
	LAMINA_RUNDIR=$(mktemp -d /tmp/lamina-test.XXXXXX)
	export LAMINA_RUNDIR
	trap lt_cleanup EXIT
	"$LAMINA_DOMCTL" host start >"$LAMINA_RUNDIR/host-start.out" 2>&1 ||
		{ cat "$LAMINA_RUNDIR/host-start.out"; lt_fail "domctl host start failed"; }
}

# Files a test made outside its run directory (tmpfs images): removed at exit as well.
lt_extra_files=()

lt_cleanup() {
	local rc=$?
	[ ${#lt_extra_files[@]} -eq 0 ] || rm -f "${lt_extra_files[@]}"
	if [ -n "${LAMINA_RUNDIR:-}" ] && [ -d "$LAMINA_RUNDIR" ]; then
		timeout 30 "$LAMINA_DOMCTL" host stop >/dev/null 2>&1 || true
		if [ -f "$LAMINA_RUNDIR/hv.pid" ] && kill -0 "$(cat "$LAMINA_RUNDIR/hv.pid")" 2>/dev/null; then
			kill -9 "$(cat "$LAMINA_RUNDIR/hv.pid")" 2>/dev/null || true
		fi
		[ "${LAMINA_KEEP_RUNDIR:-0}" = 1 ] || rm -rf "$LAMINA_RUNDIR"
	fi
	exit $rc
}

lt_dump() {
	[ -n "${LAMINA_RUNDIR:-}" ] || return 0
	local f
	for f in "$LAMINA_RUNDIR"/hv.log "$LAMINA_RUNDIR"/console/*.log; do
		[ -f "$f" ] || continue
		echo "---- $f (last 30 lines)"
		tail -n 30 "$f"
	done
}

# lt_xml NAME CMDLINE [MEM_KIB] [EXTRA XML] : writes $LAMINA_RUNDIR/NAME.xml, prints its path.
lt_xml() {
	local name=$1 cmdline=$2 mem=${3:-8192} extra=${4:-} f
	f="$LAMINA_RUNDIR/$name.xml"
	cat >"$f" <<XML
<domain type='xen'>
  <name>$name</name>
  <memory unit='KiB'>$mem</memory>
  <vcpu>1</vcpu>
  <os>
    <type>xenpvh</type>
    <kernel>$LAMINA_GUEST</kernel>
    <cmdline>$cmdline</cmdline>
  </os>
  $extra
</domain>
XML
	echo "$f"
}

lt_domctl() { "$LAMINA_DOMCTL" "$@"; }

# lt_wait_console NAME REGEX [TIMEOUT_S]: wait until the console log matches.
lt_wait_console() {
	local name=$1 re=$2 t=${3:-20} i
	for ((i = 0; i < t * 20; i++)); do
		"$LAMINA_DOMCTL" console --dump "$name" 2>/dev/null | grep -qE "$re" && return 0
		sleep 0.05
	done
	return 1
}

# lt_console_result NAME: the guest's "Test result:" line.
lt_console_result() { "$LAMINA_DOMCTL" console --dump "$1" 2>/dev/null | grep -E '^Test result:' | tail -n 1; }

# lt_hv_pid: the daemon's pid.
lt_hv_pid() { cat "$LAMINA_RUNDIR/hv.pid"; }
