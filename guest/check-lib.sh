# Shared by check-boot.sh and check-events.sh (sourced; $tag names the caller): argument checks,
# a private host in a temporary LAMINA_RUNDIR, domain XML, and booting one app to its verdict.
# usage from a script: tag=NAME; . check-lib.sh GUEST HV DOMCTL
set -u
guest=${1:?guest} hv=${2:?lamina-hv} domctl=${3:?domctl}
skip() { echo "$tag: SKIP: $*" >&2; echo "**** guest $tag checks SKIPPED: $* ****" >&2; exit 77; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is not usable here"
[ -x "$hv" ] || skip "$hv not built"
[ -x "$domctl" ] || skip "$domctl not built"
abspath() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
guest=$(abspath "$guest") hv=$(abspath "$hv") domctl=$(abspath "$domctl")

LAMINA_RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/lamina-guest-check.XXXXXX") || exit 1
LAMINA_HV=$hv
export LAMINA_RUNDIR LAMINA_HV
# The host daemons `domctl host start` runs, from the same build tree as lamina-hv.
top=$(dirname "$(dirname "$hv")")
xenstored_bin=$top/xenstore-like/lamina-xenstored
[ -x "$xenstored_bin" ] && export LAMINA_XENSTORED="$xenstored_bin"
[ -x "$top/pv-drivers/lamina-consoled" ] && export LAMINA_CONSOLED="$top/pv-drivers/lamina-consoled"
work=$LAMINA_RUNDIR/xml
mkdir -p "$work"
fails=0 skips=0 last_id=0
ok="Test result: SUCCESS"
cleanup() { "$domctl" host stop >/dev/null 2>&1; rm -rf "$LAMINA_RUNDIR"; }
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM
fail() { echo "$tag: FAIL: $*" >&2; fails=$((fails + 1)); }

host_start() {
	"$domctl" host start >/dev/null || {
		echo "$tag: FAIL: host start" >&2
		cat "$LAMINA_RUNDIR"/*.log >&2 2>/dev/null
		exit 1
	}
}

# xml NAME CMDLINE [MEMORY_MIB]
xml() {
	cat >"$work/$1.xml" <<XML
<domain type='xen'>
  <name>$1</name>
  <memory unit='MiB'>${3:-8}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='xenpvh'>xenpvh</type>
    <kernel>$guest</kernel>
    <cmdline>$2</cmdline>
  </os>
  <on_poweroff>preserve</on_poweroff>
  <on_reboot>preserve</on_reboot>
  <on_crash>preserve</on_crash>
</domain>
XML
}

# create NAME CMDLINE: start a domain; its id goes to $last_id.
create() {
	xml "$1" "$2"
	out=$("$domctl" create "$work/$1.xml") || { fail "$1: create failed"; return 1; }
	last_id=$(echo "$out" | sed -n 's/.* with id \([0-9]*\).*/\1/p')
	[ -n "$last_id" ] || { fail "$1: no id in '$out'"; return 1; }
}

# finish NAME CMDLINE WANT_STATE WANT_VERDICT: wait for a created domain, check state and last line.
finish() {
	name=$1 want_state=$3 want=$4
	t0=$(date +%s%N)
	"$domctl" wait "$name" --timeout 60 >"$work/$name.wait" 2>&1
	t1=$(date +%s%N)
	state=$("$domctl" info "$name" | awk -F': *' '$1 == "state" { print $2 }')
	"$domctl" console --dump "$name" >"$work/$name.log" 2>&1
	verdict=$(grep '^Test result:' "$work/$name.log" | tail -1)
	nverdicts=$(grep -c '^Test result:' "$work/$name.log")
	case "$state" in
	"$want_state"*) ;;
	*)
		fail "$name: state '$state', want '$want_state'"
		cat "$work/$name.log" >&2
		;;
	esac
	if [ -n "$want" ]; then
		[ "$verdict" = "$want" ] || { fail "$name: verdict '$verdict', want '$want'"; cat "$work/$name.log" >&2; }
		[ "$nverdicts" -eq 1 ] || fail "$name: $nverdicts result lines"
	fi
	echo "$tag: $name ($2): $state; ${verdict:-no result line} ($(( (t1 - t0) / 1000000 )) ms)"
	"$domctl" destroy "$name" >/dev/null 2>&1
}

# run NAME CMDLINE WANT_STATE WANT_VERDICT [MEMORY_MIB]: boot, wait, check state and last line.
run() {
	xml "$1" "$2" "${5:-8}"
	"$domctl" create "$work/$1.xml" >/dev/null || { fail "$1: create failed"; return; }
	finish "$@"
}

# verdict_ev NAME: the app needs what the hypervisor may not have yet (events, special pages):
# SUCCESS, or its own SKIP (said loudly); anything else fails.
verdict_ev() {
	v=$(grep '^Test result:' "$work/$1.log" | tail -1)
	n=$(grep -c '^Test result:' "$work/$1.log")
	case "$v" in
	"$ok") [ "$n" -eq 1 ] || fail "$1: $n result lines" ;;
	"Test result: SKIP"*)
		echo "**** $tag: $1 SKIPPED: ${v#Test result: SKIP: } ****" >&2
		skips=$((skips + 1))
		;;
	*) fail "$1: verdict '$v'"; cat "$work/$1.log" >&2 ;;
	esac
}

# run_ev NAME CMDLINE: run, then verdict_ev.
run_ev() {
	run "$1" "$2" "shutdown (poweroff" ""
	verdict_ev "$1"
}

# console_wait NAME REGEX SECONDS: wait for a console line; prints it.
console_wait() {
	i=0
	while [ "$i" -lt $(($3 * 20)) ]; do
		line=$("$domctl" console --dump "$1" 2>/dev/null | grep -E "$2" | head -1)
		[ -n "$line" ] && { echo "$line"; return 0; }
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}

# finish_checks: the exit status.
finish_checks() {
	[ "$fails" -eq 0 ] || { echo "$tag: $fails failures" >&2; exit 1; }
	echo "$tag: ok ($skips skipped)"
}
