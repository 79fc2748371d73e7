#!/usr/bin/env python3
"""Busybox initramfs for booting Debian's kernel as the real-guest test's guest.

    mk_initramfs.py OUT.cpio.gz --modroot ROOT --kver KVER [--busybox PATH]

The archive is written here (newc cpio + gzip, standard library only) so the
test needs neither cpio nor root. The init loads qemu_fw_cfg.ko, because that
driver is what hands the kernel's VMCOREINFO address to the host through fw_cfg
etc/vmcoreinfo, with gd.load= on the command line fills memory with file,
block-device and anonymous pages (filter_exact.py's guests), puts a known line into the kernel log (the dmesg checks look
for it) and prints READY_MARKER on the serial console.
Exit status 77 when busybox-static or the module is missing.
"""
import argparse
import gzip
import lzma
import os
import shutil
import subprocess
import sys

READY_MARKER = "GUESTDUMP-GUEST-READY"
# Loaded only with gd.load= on the command line, in dependency order.
LOAD_MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
                "virtio_pci", "virtio_blk", "crc16", "mbcache", "jbd2", "crc32c_generic",
                "ext4")
KMSG_MARKER = "guestdump-linux-guest: kernel log marker 5f3c9a"

INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
insmod /lib/modules/qemu_fw_cfg.ko
echo "fw_cfg vmcoreinfo: $(ls /sys/firmware/qemu_fw_cfg/by_name/etc | grep -c vmcore)"
echo "%s" > /dev/kmsg
# gd.load=FILE_MB,PRIV_MB,ANON_MB (filter_exact.py's guests, two virtio disks:
# vda holds data, vdb is blank) fills memory the way a busy system does.
load=
for w in $(cat /proc/cmdline); do case $w in gd.load=*) load=${w#gd.load=} ;; esac; done
if [ -n "$load" ]; then
    set -- $(echo "$load" | tr , ' ')
    for m in %s; do insmod /lib/modules/$m.ko; done
    n=0
    while [ ! -b /dev/vdb ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    mke2fs -q -b 4096 /dev/vdb
    mkdir -p /mnt
    mount -t ext4 /dev/vdb /mnt
    # File cache without private data: written, dropped, read back whole
    # (ext4 reads contiguous blocks without buffer heads).
    dd if=/dev/vda of=/mnt/file bs=1M count=$1 2>/dev/null
    sync
    echo 3 > /proc/sys/vm/drop_caches
    cat /mnt/file > /dev/null
    # File cache with private data: written after the drop, so each page
    # keeps the buffer heads of the write, clean after sync.
    dd if=/dev/vda of=/mnt/file2 bs=1M skip=$1 count=$2 2>/dev/null
    sync
    # Anonymous memory: dd's buffer, filled from the cached file (a copy,
    # fast under TCG) and kept alive by a pipe that never ends. ANON_MB must
    # not exceed FILE_MB.
    (head -c $(($3 << 20)) /mnt/file; while :; do sleep 3600; done) |
        dd bs=$(($3 + 1))M iflag=fullblock of=/dev/null 2>/dev/null &
    n=0
    while [ $(awk '/^AnonPages:/ { print $2 }' /proc/meminfo) -lt $(($3 * 1000)) ] &&
          [ $n -lt 3000 ]; do sleep 0.1; n=$((n + 1)); done
    echo "gd.load done:"
    grep -E '^(MemFree|Cached|AnonPages|Buffers):' /proc/meminfo
fi
echo "%s"
exec sh
""" % (KMSG_MARKER, " ".join(LOAD_MODULES), READY_MARKER)


class Cpio:
    """newc writer: fixed inode numbers and mtime 0 so equal inputs give equal bytes."""

    def __init__(self):
        self.out = bytearray()
        self.ino = 1

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        nameb = name.encode() + b"\0"
        hdr = "070701" + "".join("%08X" % v for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1],
            len(nameb), 0))
        self.ino += 1
        self.out += hdr.encode() + nameb
        self.out += b"\0" * (-len(self.out) % 4)
        self.out += data
        self.out += b"\0" * (-len(self.out) % 4)

    def dir(self, name):
        self._entry(name, 0o040755)

    def file(self, name, data, mode=0o644):
        self._entry(name, 0o100000 | mode, data)

    def chardev(self, name, major, minor):
        self._entry(name, 0o020600, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        return bytes(self.out)


def read_module(path):
    """Debian ships modules plain, xz- or zstd-compressed depending on release."""
    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(raw)
    if path.endswith(".zst"):
        if not shutil.which("zstd"):
            raise SystemExit(77)
        return subprocess.run(["zstd", "-qdc", path], check=True,
                              capture_output=True).stdout
    return raw


def find_module(modroot, kver, name="qemu_fw_cfg"):
    for dirpath, _, files in os.walk(os.path.join(modroot, "lib/modules", kver)):
        for f in files:
            if f.split(".ko")[0] == name and ".ko" in f:
                return os.path.join(dirpath, f)
    return None


def is_static_elf(path):
    """A dynamically linked busybox would die in an initramfs with no libc."""
    with open(path, "rb") as f:
        data = f.read()
    return data[:4] == b"\x7fELF" and b"/lib64/ld-linux" not in data


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--modroot", required=True)
    ap.add_argument("--kver", required=True)
    ap.add_argument("--busybox", default="/bin/busybox")
    a = ap.parse_args(argv)

    if not os.path.exists(a.busybox) or not is_static_elf(a.busybox):
        print("mk_initramfs: need a static busybox (Debian: busybox-static) at %s"
              % a.busybox, file=sys.stderr)
        return 77
    mod = find_module(a.modroot, a.kver)
    if not mod:
        print("mk_initramfs: no qemu_fw_cfg module for %s under %s"
              % (a.kver, a.modroot), file=sys.stderr)
        return 77

    c = Cpio()
    for d in ("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"):
        c.dir(d)
    # The kernel opens /dev/console for init's stdio before init can mount
    # devtmpfs; without this node the ready marker would never reach serial.
    c.chardev("dev/console", 5, 1)
    with open(a.busybox, "rb") as f:
        c.file("bin/busybox", f.read(), 0o755)
    c.file("lib/modules/qemu_fw_cfg.ko", read_module(mod))
    for name in LOAD_MODULES:
        # get-kernel.sh keeps them; an older unpacked tree may not have them,
        # and only the loaded guests (which check their memory) need them.
        path = find_module(a.modroot, a.kver, name)
        if path:
            c.file("lib/modules/%s.ko" % name, read_module(path))
    c.file("init", INIT.encode(), 0o755)
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(gzip.compress(c.finish(), compresslevel=1, mtime=0))
    os.replace(tmp, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
