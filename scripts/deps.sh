#!/bin/sh
# Makes sure the Debian 12 packages guestdump needs are installed.
#   deps.sh build   what building needs
#   deps.sh test    that, plus the independent readers, real QEMU and clang (libFuzzer)
#                   the tests use
#   deps.sh qemu    what scripts/qemu/build.sh needs to build QEMU 7.2 from Debian's
#                   source (and the firmware the built binary loads)
# As root it installs what is missing; otherwise it prints the apt-get line.
set -e
build_pkgs="meson ninja-build pkg-config gcc libc6-dev python3 libglib2.0-dev libjson-glib-dev
zlib1g-dev liblzo2-dev libsnappy-dev libzstd-dev"
# binutils: readelf; file: file(1) for win-dmp magic; zstd: unpacks a kernel's
# .ko.zst for the Linux-guest initramfs; libvirt: suite qemu drives the QEMU
# with the module through it. A test whose tool is missing skips, and under
# CI=true scripts/test-summary.py fails on any skip.
test_pkgs="binutils file gdb socat qemu-system-x86 makedumpfile crash python3-libkdumpfile
python3-drgn busybox-static cpio zstd clang libclang-rt-14-dev libvirt-daemon-system
libvirt-clients"
qemu_pkgs="dpkg-dev xz-utils ccache gcc make ninja-build meson python3 pkg-config
libglib2.0-dev libpixman-1-dev zlib1g-dev liblzo2-dev libsnappy-dev libzstd-dev
qemu-system-data seabios ipxe-qemu"

case "${1:-build}" in
build) pkgs=$build_pkgs ;;
test) pkgs="$build_pkgs $test_pkgs" ;;
qemu) pkgs=$qemu_pkgs ;;
*) echo "usage: $0 build|test|qemu" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
# The Linux-guest test downloads Debian's kernel package (not installed):
# that needs apt's package lists even when every package above is present.
if [ "${1:-build}" = test ] && [ "$(id -u)" = 0 ] &&
   [ -z "$(apt-cache depends linux-image-amd64 2>/dev/null)" ]; then
    apt-get update -qq || echo "deps: apt-get update failed" >&2
fi
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ]; then
    echo "deps: installing$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing >/dev/null
else
    echo "deps: missing packages; run as root:" >&2
    echo "  apt-get install -y$missing" >&2
    [ "${1:-build}" = test ] && { echo "deps: tests that need them will be skipped" >&2; exit 0; }
    exit 1
fi
