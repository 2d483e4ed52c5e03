# Sourced by every test (make check sets LAMINA_SRCDIR/LAMINA_BUILDDIR): where the freshly built
# programs are, so tests run against the build tree without an install.
: "${LAMINA_BUILDDIR:?}" "${LAMINA_SRCDIR:?}"
export LAMINA_HV="$LAMINA_BUILDDIR/hypervisor/lamina-hv"
export LAMINA_XENSTORED="$LAMINA_BUILDDIR/xenstore-like/lamina-xenstored"
export LAMINA_CONSOLED="$LAMINA_BUILDDIR/pv-drivers/lamina-consoled"
export LAMINA_BLKBACK="$LAMINA_BUILDDIR/pv-drivers/lamina-blkback"
export LAMINA_NETBACK="$LAMINA_BUILDDIR/pv-drivers/lamina-netback"
export LAMINA_DOMCTL="$LAMINA_BUILDDIR/dom0-tools/domctl"
export LAMINA_GUEST="$LAMINA_BUILDDIR/guest/lamina-guest"
export PATH="$LAMINA_BUILDDIR/dom0-tools:$PATH"
