#!/bin/sh
# Fetch Debian's debug vmlinux for one kernel into a shared cache, without installing it.
#
#   get-kernel-dbg.sh KVER [DEBIAN_VERSION]
#
# crash needs the kernel's vmlinux with debug info. It ships in
# linux-image-KVER-dbg (~860 MB, 5 GB unpacked, mostly modules' debug info);
# installing it is slow and writes /usr/lib/debug. This keeps the .deb and
# only usr/lib/debug/boot/vmlinux-KVER (~630 MB) in
# ${GUESTDUMP_CACHE:-/var/cache/guestdump}/kernel-dbg, outside any build dir,
# so every checkout on a machine shares one download. DEBIAN_VERSION (the
# booted kernel's, e.g. 6.1.192-3) pins the download and which cached .deb is
# used: another version's vmlinux would not describe the guest. The caller
# checks the vmlinux's build ID against the guest's.
# Prints the vmlinux path on stdout. Exit status 77 (meson's "skipped") when
# apt cannot fetch the package (no package list or network); 1 on other
# failures.
set -eu
kver=${1:?usage: get-kernel-dbg.sh KVER [DEBIAN_VERSION]}
want=${2:-}
dir=${GUESTDUMP_CACHE:-/var/cache/guestdump}/kernel-dbg
pkg=linux-image-$kver-dbg
member=./usr/lib/debug/boot/vmlinux-$kver
out=$dir/vmlinux-$kver

fail() { echo "get-kernel-dbg: $*" >&2; exit 1; }
skip() { echo "get-kernel-dbg: $*" >&2; exit 77; }

# Only this script writes $out, always by renaming a complete file.
if [ -s "$out" ]; then
    echo "$out"
    exit 0
fi
for tool in dpkg-deb tar flock; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool not found"
done
{ mkdir -p "$dir" 2>/dev/null && [ -w "$dir" ]; } ||
    fail "cannot write $dir; point GUESTDUMP_CACHE at a writable folder"
dir=$(cd "$dir" && pwd)
out=$dir/vmlinux-$kver

# One writer at a time: other checkouts (and other tests) share this folder.
exec 9>>"$dir/.lock"
flock 9
if [ -s "$out" ]; then
    echo "$out"
    exit 0
fi
# Leftovers of a killed run; nobody else writes here while we hold the lock.
rm -rf "$dir"/.tmp-*
tmp=$(mktemp -d "$dir/.tmp-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# Debian names the file PKG_VERSION_ARCH.deb; with a version, only that one will do.
if [ -n "$want" ]; then
    set -- "$dir/${pkg}_${want}_"*.deb
else
    set -- "$dir/${pkg}_"*.deb
fi
deb=
[ -f "$1" ] && deb=$1
if [ -z "$deb" ]; then
    command -v apt-get >/dev/null 2>&1 || skip "no apt-get (not a Debian host)"
    spec=$pkg${want:+=$want}
    echo "get-kernel-dbg: downloading $spec (~860 MB) into $dir" >&2
    # Into the temporary folder first: an interrupted download never looks cached.
    (cd "$tmp" && apt-get download "$spec" >&2) ||
        skip "apt-get download $spec failed (no package list or network?)"
    for f in "$tmp/${pkg}_"*.deb; do
        [ -f "$f" ] || fail "apt-get download left no ${pkg}_*.deb"
        mv "$f" "$dir/"
        deb=$dir/${f##*/}
    done
fi

name=$(dpkg-deb -f "$deb" Package) || fail "$deb is not a Debian package"
ver=$(dpkg-deb -f "$deb" Version)
[ "$name" = "$pkg" ] || fail "$deb holds $name, not $pkg"
if [ -n "$want" ] && [ "$ver" != "$want" ]; then
    fail "$deb is version $ver but the booted kernel is $want"
fi

# Only the one member is written; tar reads the rest of the archive past it.
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" "$member" ||
    fail "cannot extract $member from $deb"
[ -s "$tmp/$member" ] || fail "$deb has no $member"
mv "$tmp/$member" "$out"      # a rename within $dir: never half there
echo "$out"
