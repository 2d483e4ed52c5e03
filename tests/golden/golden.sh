#!/bin/sh
# Golden tests of domain XML parsing and domctl's command-line output. Every case's output
# (stdout and stderr, then "exit N") must equal its checked-in expected file exactly; every
# accepted configuration must also pass libvirt's schema (virt-xml-validate), input and
# normalized output alike. LAMINA_GOLDEN_UPDATE=1 rewrites the expected files instead.
set -u
: "${LAMINA_SRCDIR:?}" "${LAMINA_BUILDDIR:?}"
domctl="$LAMINA_BUILDDIR/dom0-tools/domctl"
golden="$LAMINA_SRCDIR/tests/golden"
expected="$golden/expected"
update=${LAMINA_GOLDEN_UPDATE:-0}

tmp=$(mktemp -d /tmp/lamina-golden.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/cases/kernel" "$tmp/out"
# A stand-in kernel: validation only checks that the file exists and is readable.
printf 'not really a kernel\n' >"$tmp/cases/kernel/lamina-guest"
: >"$tmp/cases/disk.img"
kernel="$tmp/cases/kernel/lamina-guest"

have_schema=1
command -v virt-xml-validate >/dev/null 2>&1 || have_schema=0
fails=0 passes=0

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# compare NAME FILE: FILE holds the actual output of case NAME
compare() {
	if [ "$update" = 1 ]; then
		mkdir -p "$expected"
		cp "$2" "$expected/$1.out"
		return 0
	fi
	if [ ! -f "$expected/$1.out" ]; then
		fail "$1: no expected output $expected/$1.out"
		return 1
	fi
	if ! diff -u "$expected/$1.out" "$2"; then
		fail "$1: output differs from $expected/$1.out"
		return 1
	fi
	passes=$((passes + 1))
	return 0
}

schema_check() { # NAME FILE WHAT
	[ "$have_schema" = 1 ] || return 0
	if ! virt-xml-validate "$2" domain >"$tmp/schema.log" 2>&1; then
		cat "$tmp/schema.log"
		fail "$1: $3 does not pass virt-xml-validate"
	fi
}

# run_case NAME TEMPLATE
run_case() {
	name=$1
	xml="$tmp/cases/$name.xml"
	sed -e "s|@GUEST_KERNEL@|$kernel|g" -e "s|@DIR@|$tmp/cases|g" "$2" >"$xml"
	"$domctl" validate "$xml" >"$tmp/out/$name.raw" 2>&1
	rc=$?
	echo "exit $rc" >>"$tmp/out/$name.raw"
	# Paths under the temporary directory, and uuids domctl generated, differ per run.
	if grep -q '<uuid>' "$xml"; then
		sed -e "s|$tmp|@TMP@|g" "$tmp/out/$name.raw" >"$tmp/out/$name.out"
	else
		sed -e "s|$tmp|@TMP@|g" \
			-e 's|<uuid>[0-9a-f]\{8\}-[0-9a-f]\{4\}-4[0-9a-f]\{3\}-[89ab][0-9a-f]\{3\}-[0-9a-f]\{12\}</uuid>|<uuid>@GENERATED-V4@</uuid>|' \
			"$tmp/out/$name.raw" >"$tmp/out/$name.out"
	fi
	compare "$name" "$tmp/out/$name.out"
	if [ "$rc" = 0 ]; then
		sed '$d' "$tmp/out/$name.raw" >"$tmp/out/$name.norm.xml"
		schema_check "$name" "$tmp/out/$name.norm.xml" "the normalized output"
		# The schema wants absolute kernel paths: a relative one is Lamina's extension.
		grep -q '<kernel>/' "$xml" && schema_check "$name" "$xml" "the input"
		# Normalizing is idempotent: the normalized output validates to itself.
		"$domctl" validate "$tmp/out/$name.norm.xml" >"$tmp/out/$name.again" 2>&1 ||
			fail "$name: the normalized output is refused"
		cmp -s "$tmp/out/$name.norm.xml" "$tmp/out/$name.again" ||
			fail "$name: normalizing twice changes the output"
	fi
}

for t in "$golden"/cases/*.xml.in; do
	run_case "$(basename "$t" .xml.in)" "$t"
done
for t in "$LAMINA_SRCDIR"/examples/*.xml.in; do
	run_case "example-$(basename "$t" .xml.in)" "$t"
done
for t in "$LAMINA_SRCDIR"/examples/bad/*.xml.in; do
	run_case "example-bad-$(basename "$t" .xml.in)" "$t"
done
# Good cases must be accepted and bad ones refused, whatever the expected files say.
for f in "$tmp"/out/good-*.out "$tmp"/out/example-[!b]*.out; do
	[ -f "$f" ] && ! tail -n 1 "$f" | grep -qx 'exit 0' && fail "$(basename "$f" .out): refused"
done
for f in "$tmp"/out/bad-*.out "$tmp"/out/example-bad-*.out; do
	[ -f "$f" ] && ! tail -n 1 "$f" | grep -qx 'exit 1' && fail "$(basename "$f" .out): not refused"
done

# The command line: usage and errors that need no running host (and no daemon binaries).
rundir="$tmp/no-host"
while IFS='|' read -r name args; do
	case "$name" in '' | '#'*) continue ;; esac
	args=$(printf '%s' "$args" | sed "s|@TMP@|$tmp|g")
	# shellcheck disable=SC2086
	LAMINA_RUNDIR="$rundir" LAMINA_HV="$tmp/none/lamina-hv" LAMINA_XENSTORED="$tmp/none/lamina-xenstored" \
		LAMINA_CONSOLED="$tmp/none/lamina-consoled" LAMINA_BLKBACK="$tmp/none/lamina-blkback" \
		LAMINA_NETBACK="$tmp/none/lamina-netback" "$domctl" $args >"$tmp/out/cli-$name.raw" 2>&1
	echo "exit $?" >>"$tmp/out/cli-$name.raw"
	sed -e "s|$tmp|@TMP@|g" "$tmp/out/cli-$name.raw" >"$tmp/out/cli-$name.out"
	compare "cli-$name" "$tmp/out/cli-$name.out"
done <"$golden/cli.list"

echo "golden: $passes matched, $fails failed"
[ "$fails" = 0 ] || exit 1
if [ "$have_schema" = 0 ]; then
	echo "SKIP: virt-xml-validate (package libvirt-clients) is not installed: schema checks not run"
	exit 77
fi
exit 0
