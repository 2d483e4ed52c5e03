#!/bin/bash
# make check: the store's fuzz target for a bounded time (20 s by default) in a temporary directory.
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"
: "${LAMINA_SRCDIR:?run through make check}"
out=$(mktemp -d /tmp/fuzz-store.XXXXXX)
trap 'rm -rf "$out"' EXIT
LAMINA_FUZZ_OUT=$out LAMINA_FUZZ_SECONDS=${LAMINA_FUZZ_CHECK_SECONDS:-20} "$LAMINA_SRCDIR/tests/fuzz/run-fuzz.sh" store
rc=$?
[ $rc -eq 77 ] && echo "SKIP: store fuzzing not run (see above)"
exit $rc
