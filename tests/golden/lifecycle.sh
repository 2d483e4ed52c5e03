#!/bin/sh
# domctl against a real host under KVM: the output shapes of list/info/dumpxml/wait (text and
# JSON), toolstack state files, exit statuses (0 ok, 1 error, 2 usage, 3 timeout), refusals
# that start nothing, and a host stop that leaves no daemon behind.
set -u
: "${LAMINA_SRCDIR:?}" "${LAMINA_BUILDDIR:?}"
domctl="$LAMINA_BUILDDIR/dom0-tools/domctl"
guest="${LAMINA_GUEST:-$LAMINA_BUILDDIR/guest/lamina-guest}"
export LAMINA_HV="${LAMINA_HV:-$LAMINA_BUILDDIR/hypervisor/lamina-hv}"

fail() {
	echo "Test result: FAILURE: lifecycle: $*"
	[ -f "${LAMINA_RUNDIR:-/nonexistent}/hv.log" ] && tail -n 20 "$LAMINA_RUNDIR/hv.log"
	exit 1
}
if [ ! -c /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "*** SKIP: lifecycle: /dev/kvm is absent or not writable: this test needs KVM ***"
	exit 77
fi
[ -x "$LAMINA_HV" ] || fail "lamina-hv is not built: $LAMINA_HV"
[ -f "$guest" ] || fail "the guest kernel is not built: $guest"

LAMINA_RUNDIR=$(mktemp -d /tmp/lamina-lifecycle.XXXXXX) || exit 1
export LAMINA_RUNDIR
cleanup() {
	timeout 30 "$domctl" host stop >/dev/null 2>&1
	if [ -f "$LAMINA_RUNDIR/hv.pid" ]; then kill -9 "$(cat "$LAMINA_RUNDIR/hv.pid")" 2>/dev/null; fi
	rm -rf "$LAMINA_RUNDIR"
}
trap cleanup EXIT
ex="$LAMINA_RUNDIR/examples"
mkdir -p "$ex"
for t in "$LAMINA_SRCDIR"/examples/*.xml.in; do
	sed "s|@GUEST_KERNEL@|$guest|g" "$t" >"$ex/$(basename "$t" .in)"
done

# run EXPECTED_EXIT ARGS...: domctl's output in $out
run() {
	want=$1
	shift
	out=$("$domctl" "$@" 2>&1)
	got=$?
	[ "$got" = "$want" ] || fail "domctl $*: exit $got, expected $want: $out"
}
expect() { # REGEX WHAT
	printf '%s\n' "$out" | grep -qE "$1" || fail "$2: output lacks /$1/: $out"
}

run 0 host start
expect '^lamina-hv started \(pid [0-9]+\), run directory ' "host start"
[ "$(stat -c %a "$LAMINA_RUNDIR")" = 700 ] || fail "the run directory is not mode 0700"
run 0 host start
expect '^host already running' "a second host start"
run 0 host status
expect '^lamina-hv +running +pid [0-9]+ +up [0-9]+s +domains 0' "host status"
run 0 host status --json
expect '"name": "lamina-hv"' "host status --json"

# A refused file starts nothing.
run 2 create "$ex/hello.xml" --bogus
sed 's|<memory unit=.MiB.>16</memory>|<memory>1x</memory>|' "$ex/hello.xml" >"$ex/broken.xml"
run 1 create "$ex/broken.xml"
expect '/domain/memory: "1x" is not a number' "create of a bad file"
run 0 list
[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "a refused create left a domain: $out"

# A paused domain: list, info, dumpxml, JSON, wait with a timeout.
run 0 create "$ex/spin.xml" --paused
expect '^Domain spin created with id [0-9]+$' "create"
id=$(printf '%s\n' "$out" | sed -n 's/.* id \([0-9]*\)$/\1/p')
run 0 list
expect '^Name +ID +Mem\(MiB\) +VCPUs +State +Time\(s\)$' "list header"
expect "^spin +$id +16 +1 +--p--- +[0-9]+\.[0-9]$" "list row of a paused domain"
run 0 list --json
expect "^\[\{\"id\":$id,\"name\":\"spin\",.*\"state\":\"paused\"" "list --json"
run 0 info spin --json
expect '^  "state": "paused",$' "info --json"
run 0 info "$id"
expect '^name: +spin$' "info by id"
run 0 dumpxml spin
expect "^<domain type=\"xen\" id=\"$id\">$" "dumpxml carries the live id"
printf '%s\n' "$out" >"$ex/dump.xml"
if command -v virt-xml-validate >/dev/null; then
	virt-xml-validate "$ex/dump.xml" domain >/dev/null 2>&1 || fail "dumpxml output fails virt-xml-validate"
fi
[ -f "$LAMINA_RUNDIR/domains/spin.json" ] || fail "no toolstack state file for spin"
run 1 create "$ex/spin.xml"
expect 'a domain of that name exists' "a duplicate create"
run 0 unpause spin
run 0 info spin
expect '^state: +running$' "unpause"
run 3 wait spin --timeout 0.2
expect '^spin: timeout after 0.2 s$' "wait --timeout"
run 0 shutdown spin --wait
expect '^spin: poweroff' "shutdown --wait"
[ -f "$LAMINA_RUNDIR/domains/spin.json" ] && fail "spin's state file outlived the domain"
run 1 info spin
expect 'no such domain' "info of a gone domain"

# How a domain stopped: poweroff with its code (kept by on_poweroff=preserve, so the wait cannot
# miss it), crash (kept by on_crash=preserve).
sed 's|<on_poweroff>destroy</on_poweroff>|<on_poweroff>preserve</on_poweroff>|' "$ex/selftest.xml" >"$ex/keep.xml"
run 0 create "$ex/keep.xml"
run 0 wait selftest --timeout 20
expect '^selftest: poweroff \(code 0\)$' "wait for a poweroff"
run 0 list
expect '^selftest +[0-9]+ +16 +1 +---s-- ' "a preserved domain that powered off"
run 0 console --dump selftest
expect 'Test result: SUCCESS' "the selftest guest's console"
run 0 destroy selftest
run 0 create "$ex/crash.xml"
run 1 wait crash --timeout 20
expect '^crash: crashed$' "wait for a crash"
run 0 list
expect '^crash +[0-9]+ +16 +1 +----c- ' "a preserved crashed domain"
run 0 destroy crash
run 1 destroy crash
expect 'no such domain' "destroying twice"

# Stop: nothing left running, sockets and pid files gone.
pid=$(cat "$LAMINA_RUNDIR/hv.pid")
run 0 create "$ex/spin.xml"
run 0 host stop
expect '^host stopped$' "host stop"
# Gone, or a zombie that init has not reaped yet: either way it no longer runs.
state=$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' "/proc/$pid/stat" 2>/dev/null)
case "$state" in '' | Z | X) ;; *) fail "lamina-hv ($pid) still runs after host stop (state $state)" ;; esac
[ -e "$LAMINA_RUNDIR/hv.sock" ] && fail "hv.sock left behind"
[ -e "$LAMINA_RUNDIR/hv.pid" ] && fail "hv.pid left behind"
ls "$LAMINA_RUNDIR"/domains/*.json >/dev/null 2>&1 && fail "state files left behind"
run 1 host status
run 1 list
expect 'cannot connect to .*hv.sock' "list without a host"
echo "Test result: SUCCESS"
exit 0
