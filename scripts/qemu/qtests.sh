#!/bin/sh
# Builds and runs QEMU 7.2's own qtests that reach the dump code, against the built QEMU.
#   qtests.sh BUILDDIR QEMU   QEMU's build tree (build.sh's, under the cache) and the
#                             installed binary (which finds the firmware; the build
#                             tree's own qemu-bundle has no Debian firmware)
#   qtests.sh --dest DESTDIR  the tree that built DESTDIR/qemu-system-x86_64 (the test
#                             suite's way); missing: skip (exit 77), or fail when CI=true
# qmp-test (the QMP protocol), qmp-cmd-test (every query-* command on every
# machine type, so query-dump and query-dump-guest-memory-capability too)
# and test-hmp (every HMP command on every machine type, dump-guest-memory
# included). Prints TAP; exits non-zero when a test fails.
set -eu
if [ "$1" = --dest ]; then
    b=$(cat "$2/qemu-build-dir" 2>/dev/null) || b=""
    if [ -z "$b" ] || [ ! -f "$b/build.ninja" ] || [ ! -x "$2/qemu-system-x86_64" ]; then
        echo "qtests.sh: no QEMU build behind $2 (sh scripts/qemu/build.sh $2)" >&2
        [ "${CI:-}" = true ] && exit 1
        exit 77
    fi
    qemu=$2/qemu-system-x86_64
else
    b=$1
    qemu=$2
fi
cache=${GUESTDUMP_CACHE:-/var/cache/guestdump}/qemu
# Builds in the shared tree wait for a build.sh that runs there.
if [ -z "${GUESTDUMP_QEMU_LOCKED:-}" ]; then
    exec 9>"$cache/.lock"
    flock 9
fi
export CCACHE_DIR="$cache/ccache" CCACHE_BASEDIR="$cache" CCACHE_NOHASHDIR=1
command -v ccache >/dev/null && export PATH="/usr/lib/ccache:$PATH"
tests="qmp-test qmp-cmd-test test-hmp"
targets=""
for t in $tests; do
    targets="$targets tests/qtest/$t"
done
# shellcheck disable=SC2086
ninja -C "$b" $targets
export QTEST_QEMU_BINARY="$qemu"
status=0
for t in $tests; do
    start=$(date +%s)
    echo "qtests.sh: $t"
    # QEMU's meson gives test-hmp 120 s on a quiet machine; a shared one is slower.
    if ! timeout 600 "$b/tests/qtest/$t" --tap -k; then
        echo "qtests.sh: $t FAILED" >&2
        status=1
    fi
    echo "qtests.sh: $t took $(($(date +%s) - start)) s"
done
exit $status
