#!/bin/bash
# make check: one fuzz target (tests/fuzz/fuzz-bounded.sh NAME) for a bounded time, 15 s by default
# (LAMINA_FUZZ_CHECK_SECONDS, else LAMINA_FUZZ_SECONDS), in a temporary directory; inputs that fail
# are kept in tests/fuzz-NAME-crashes/ of the build tree. Exit 77 (SKIP) without clang/libFuzzer.
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"
: "${LAMINA_SRCDIR:?run through make check}" "${LAMINA_BUILDDIR:?run through make check}"
name=${1:?usage: fuzz-bounded.sh NAME}
out=$(mktemp -d "/tmp/fuzz-$name.XXXXXX")
trap 'rm -rf "$out"' EXIT
LAMINA_FUZZ_OUT=$out LAMINA_FUZZ_SECONDS=${LAMINA_FUZZ_CHECK_SECONDS:-${LAMINA_FUZZ_SECONDS:-15}} \
	"$LAMINA_SRCDIR/tests/fuzz/run-fuzz.sh" "$name"
rc=$?
if [ $rc -eq 77 ]; then
	echo "SKIP: $name fuzzing not run (see above)"
elif [ $rc -ne 0 ]; then
	keep="$LAMINA_BUILDDIR/tests/fuzz-$name-crashes"
	mkdir -p "$keep" && cp -a "$out/crashes/." "$keep/" && echo "failing inputs kept in $keep"
fi
exit $rc
