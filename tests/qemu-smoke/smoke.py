#!/usr/bin/env python3
"""Smoke test of the QEMU 7.2 that scripts/qemu/build.sh builds with guestdump's module.

    smoke.py QEMU_BINARY [STOCK_QEMU]

Starts the binary paused (-S -nodefaults -machine pc -device vmcoreinfo),
checks that query-dump-guest-memory-capability lists what the module adds
(kdump-raw-*, kdump-zstd), dumps ELF and kdump-zlib and checks both files,
query-dump and DUMP_COMPLETED; then lets the guest run and dumps it
detached (STOP, RESUME, still running afterwards). With STOCK_QEMU
(Debian's 7.2) present, the same machine is dumped there too and the ELF's
memory segments must agree: that checks the glue's RAM listener merges
blocks as QEMU 7.2's dump does.

TAP output. A missing binary fails under CI=true, else skips (a TAP "1..0 # SKIP").
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

TIMEOUT = 60

sys.dont_write_bytecode = True      # keep the source tree clean when meson runs us
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "compat"))
from qemu_driver import DriverError, Qmp  # noqa: E402


class Guest:
    """The binary running the smoke machine, paused, with a QMP socket."""

    def __init__(self, binary, tmp, name):
        self.sock_path = os.path.join(tmp, name + ".sock")
        self.proc = subprocess.Popen(
            [binary, "-S", "-nodefaults", "-display", "none", "-machine", "pc",
             "-accel", "tcg", "-m", "64M", "-smp", "2", "-device", "vmcoreinfo",
             "-qmp", "unix:%s,server=on,wait=off" % self.sock_path],
            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self.qmp = Qmp(self.sock_path, timeout=TIMEOUT)
        except Exception:
            self.close()
            raise

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        _, err = self.proc.communicate(timeout=TIMEOUT)
        return err.decode(errors="replace")


def elf_loads(path):
    """(p_paddr, p_filesz, p_memsz) of each PT_LOAD, and the number of NT_PRSTATUS."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise AssertionError("not an ELF64 file")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads, prstatus = [], 0
    for i in range(phnum):
        p_type, _, off, _, paddr, filesz, memsz, _ = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            loads.append((paddr, filesz, memsz))
        elif p_type == 4:
            pos = off
            while pos + 12 <= off + filesz:
                namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
                name = data[pos + 12:pos + 12 + namesz].rstrip(b"\0")
                if name == b"CORE" and ntype == 1:
                    prstatus += 1
                pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return loads, prstatus


def main():
    if len(sys.argv) < 2:
        print("usage: smoke.py QEMU_BINARY [STOCK_QEMU]", file=sys.stderr)
        return 2
    binary = sys.argv[1]
    stock = sys.argv[2] if len(sys.argv) > 2 else None
    if not os.access(binary, os.X_OK):
        msg = "%s not built (sh scripts/qemu/build.sh DIR)" % binary
        if os.environ.get("CI") == "true":
            print("Bail out! " + msg)
            return 1
        print("1..0 # SKIP " + msg)
        return 0

    results = []

    def check(ok, what):
        results.append(ok)
        print("%s %d - %s" % ("ok" if ok else "not ok", len(results), what))

    tmp = tempfile.mkdtemp(prefix="gd-qemu-smoke-")
    guest = None
    try:
        guest = Guest(binary, tmp, "integrated")
        q = guest.qmp
        formats = q.execute("query-dump-guest-memory-capability")["formats"]
        print("# formats: %s" % " ".join(formats))
        for f in ("elf", "kdump-zlib", "kdump-lzo", "kdump-snappy", "kdump-zstd",
                  "kdump-raw-zlib", "kdump-raw-lzo", "kdump-raw-snappy",
                  "kdump-raw-zstd", "win-dmp"):
            check(f in formats, "capability lists %s" % f)

        elf = os.path.join(tmp, "smoke.elf")
        q.execute("dump-guest-memory", paging=False, protocol="file:" + elf)
        ev = q.wait_event("DUMP_COMPLETED")["data"]
        check(ev["result"]["status"] == "completed" and "error" not in ev,
              "ELF dump completes, DUMP_COMPLETED says so")
        loads, prstatus = elf_loads(elf)
        ram = sum(m for _, _, m in loads)
        print("# ELF PT_LOADs: %s" % [(hex(a), hex(m)) for a, _, m in loads])
        check(prstatus == 2, "ELF has one NT_PRSTATUS per vCPU (%d)" % prstatus)
        # 64 MiB of RAM plus the BIOS ROM images, which QEMU dumps as RAM.
        check(64 << 20 <= ram < (64 << 20) + (2 << 20),
              "ELF segments cover the guest's RAM (%d bytes)" % ram)
        st = q.execute("query-dump")
        check(st["status"] == "completed" and st["completed"] == st["total"] > 0,
              "query-dump reports the finished dump")

        kd = os.path.join(tmp, "smoke.kdump")
        q.execute("dump-guest-memory", paging=False, protocol="file:" + kd,
              format="kdump-zlib", detach=True)
        ev = q.wait_event("DUMP_COMPLETED")["data"]
        check(ev["result"]["status"] == "completed", "detached kdump-zlib completes")
        with open(kd, "rb") as f:
            head = f.read(4096 + 16)
        # Flattened format: "makedumpfile" signature, then the first data
        # block at 4096 carries the KDUMP disk header.
        check(head.startswith(b"makedumpfile"),
              "kdump-zlib is a flattened makedumpfile stream")
        with open(kd, "rb") as f:
            f.seek(4096 + 16)
            check(f.read(8) == b"KDUMP   ", "its first block is the KDUMP disk header")

        # A running guest (its BIOS under TCG): the dump pauses it and, from
        # the glue's bottom half, resumes it and sends the event.
        q.execute("cont")
        q.wait_event("RESUME")
        raw = os.path.join(tmp, "smoke.kdump-raw")
        q.execute("dump-guest-memory", paging=False, protocol="file:" + raw,
              format="kdump-raw-zstd", detach=True)
        ev = q.wait_event("DUMP_COMPLETED")["data"]
        check(ev["result"]["status"] == "completed",
              "detached kdump-raw-zstd of a running guest completes")
        q.wait_event("STOP")
        q.wait_event("RESUME")
        st = q.execute("query-status")
        check(st["running"] and st["status"] == "running",
              "the dump paused the guest and resumed it (STOP, RESUME, running)")
        with open(raw, "rb") as f:
            check(f.read(8) == b"KDUMP   ", "kdump-raw-zstd starts with the disk header")

        try:
            q.execute("dump-guest-memory", paging=False, protocol="file:" + elf,
                  format="kdump-zstd", begin=0, length=4096)
            check(False, "a format with begin/length is refused")
        except DriverError as e:
            check("kdump-compressed format doesn't support paging or filter" in str(e),
                  "a kdump format with begin/length is refused with 7.2's text")

        if stock and os.access(stock, os.X_OK):
            ref = Guest(stock, tmp, "stock")
            try:
                ref_elf = os.path.join(tmp, "stock.elf")
                ref.qmp.execute("dump-guest-memory", paging=False,
                            protocol="file:" + ref_elf)
                ref.qmp.wait_event("DUMP_COMPLETED")
            finally:
                ref.close()
            ref_loads, _ = elf_loads(ref_elf)
            check([(a, m) for a, _, m in loads] == [(a, m) for a, _, m in ref_loads],
                  "PT_LOAD segments equal stock QEMU 7.2's (RAM blocks merged alike)")
        else:
            print("# stock QEMU not installed: segment comparison skipped")
        q.execute("quit")
    except Exception as e:                     # a crash of the binary ends here
        check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        if guest:
            err = guest.close()
            if err.strip():
                print("# stderr: " + err.strip().replace("\n", "\n# "))
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
