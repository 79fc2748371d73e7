#!/bin/sh
# Fetch and unpack Debian's kernel package into a cache folder without installing it.
#
#   get-kernel.sh CACHE_DIR
#
# Installing linux-image-amd64 runs initramfs hooks for minutes and needs a
# writable /boot; unpacking the .deb takes seconds and leaves the host alone.
# Prints "KVER ROOT" (ROOT holds boot/vmlinuz-KVER and lib/modules/KVER) on
# stdout. Exit status 77 (meson's "skipped") when apt cannot name or fetch the
# package, e.g. without a package list or network; 1 on other failures.
set -eu
cache=${1:?usage: get-kernel.sh CACHE_DIR}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
# linux-guest and kdump-compare may ask at the same time: one fetches and
# unpacks, the other waits for it (bounded) and then finds the tree complete.
exec 9>"$cache/.get-kernel.lock"
flock -w 600 9 || { echo "get-kernel: $cache stayed locked for 10 minutes" >&2; exit 1; }

skip() { echo "get-kernel: $*" >&2; exit 77; }

command -v apt-cache >/dev/null 2>&1 || skip "no apt-cache (not a Debian host)"
command -v dpkg-deb >/dev/null 2>&1 || skip "no dpkg-deb"

# The metapackage names the real versioned package; resolving it each run
# follows Debian's point releases, while the unpacked tree below is reused.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
      awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$pkg" ]; then
    # No package list: fall back to whatever an earlier run unpacked.
    old=$(ls -d "$cache"/root-linux-image-* 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$old" ] ||
        skip "apt-cache does not know linux-image-amd64 (run apt-get update)"
    pkg=${old##*/root-}
fi
kver=${pkg#linux-image-}
root=$cache/root-$pkg
# The modules the guests load: qemu_fw_cfg hands VMCOREINFO to the host; the
# filtered-dump guest (filter_exact.py) reads virtio disks into the page cache
# through the block device and an ext4 file system.
keep="qemu_fw_cfg virtio virtio_ring virtio_pci virtio_pci_legacy_dev
      virtio_pci_modern_dev virtio_blk ext4 jbd2 mbcache crc16 crc32c_generic"
want=$(echo $keep)

# A tree unpacked with another module list is unpacked again.
if [ "$(cat "$root/.complete" 2>/dev/null)" != "$want" ]; then
    deb=$(ls "$cache/$pkg"_*.deb 2>/dev/null | head -n 1 || true)
    if [ -z "$deb" ]; then
        (cd "$cache" && apt-get download "$pkg" >&2) ||
            skip "apt-get download $pkg failed (no network?)"
        deb=$(ls "$cache/$pkg"_*.deb | head -n 1)
    fi
    rm -rf "$root"
    # Unpack to a temporary name so an interrupted run never looks complete.
    dpkg-deb -x "$deb" "$root.tmp"
    mv "$root.tmp" "$root"
    [ -f "$root/boot/vmlinuz-$kver" ] || { echo "no vmlinuz-$kver in $deb" >&2; exit 1; }
    # The guests need a dozen modules; dropping the other ~390 MB keeps the
    # build dir small.
    find "$root/lib/modules/$kver" -type f | while read -r f; do
        base=${f##*/}; base=${base%%.ko*}
        case " $want " in *" $base "*) ;; *) rm -f "$f" ;; esac
    done
    find "$root/lib/modules/$kver" -depth -type d -empty -delete
    rm -rf "$root/usr"
    echo "$want" > "$root/.complete"
    rm -f "$deb"
fi
echo "$kver $root"
