#!/bin/bash
# make check: the store's fuzz target for a bounded time (20 s by default) in a temporary directory;
# inputs that fail are kept in tests/fuzz-store-crashes/ of the build tree.
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"
: "${LAMINA_SRCDIR:?run through make check}" "${LAMINA_BUILDDIR:?run through make check}"
out=$(mktemp -d /tmp/fuzz-store.XXXXXX)
trap 'rm -rf "$out"' EXIT
LAMINA_FUZZ_OUT=$out LAMINA_FUZZ_SECONDS=${LAMINA_FUZZ_CHECK_SECONDS:-20} "$LAMINA_SRCDIR/tests/fuzz/run-fuzz.sh" store
rc=$?
if [ $rc -eq 77 ]; then
	echo "SKIP: store fuzzing not run (see above)"
elif [ $rc -ne 0 ]; then
	keep="$LAMINA_BUILDDIR/tests/fuzz-store-crashes"
	mkdir -p "$keep" && cp -a "$out/crashes/." "$keep/" && echo "failing inputs kept in $keep"
fi
exit $rc
