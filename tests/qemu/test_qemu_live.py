#!/usr/bin/env python3
"""Live dumps in the QEMU with guestdump's module (issue 12's consistency test).

  test_qemu_live.py --build BUILD_ROOT

TAP output. QEMU runs the pc machine under the qtest accelerator; pages
written through qtest right after a live dump starts, while this test holds
the dump back by not reading its pipe, are in the dump with their old
contents and in the guest with their new ones; the live dump equals the
paused dump taken just before, in ELF (paging off and on) and kdump-zlib.
STOP and RESUME both come before the command returns. Stock QEMU 7.2 has
no `live`: it must refuse the argument.
"""
import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

import qemu_common as qc
import qemu_driver

sys.path.insert(0, os.path.join(qc.TESTS, "qtest"))
import live_test  # noqa: E402

PAGE = 4096


class Qtest:
    def __init__(self, path):
        self.sock = qemu_driver.connect_unix(path, time.monotonic() + 60)
        self.sock.settimeout(60)
        self.file = self.sock.makefile("rb")

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\n")
        while True:
            r = self.file.readline().decode().strip()
            if r.startswith("IRQ"):
                continue
            if not r.startswith("OK"):
                raise qemu_driver.DriverError("qtest %s: %s" % (line[:40], r))
            return r[3:]

    def write(self, addr, data):
        import base64
        self.cmd("b64write 0x%x 0x%x %s" % (addr, len(data),
                                            base64.b64encode(data).decode()))

    def read(self, addr, size):
        import base64
        return base64.b64decode(self.cmd("b64read 0x%x 0x%x" % (addr, size)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    qemu = qc.binary(args.build)
    why = qc.check_binary(qemu)
    if why:
        return qc.missing_all(why)
    t = qc.Tap()
    d = tempfile.mkdtemp(prefix="gd-qemu-live-")
    qmp_path, qt_path = os.path.join(d, "qmp.sock"), os.path.join(d, "qt.sock")
    base = [qemu, "-display", "none", "-nodefaults", "-machine", "pc", "-m", "128M",
            "-qmp", "unix:%s,server=on,wait=off" % qmp_path]
    proc = subprocess.Popen(
        base + ["-accel", "qtest", "-qtest", "unix:%s,server=on,wait=off" % qt_path],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "stderr"), "w"))
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(qmp_path) and proc.poll() is None and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            qmp = qemu_driver.Qmp(qmp_path, timeout=120)
            qt = Qtest(qt_path)
        else:
            # Debian's stock build has no qtest accelerator: a paused TCG guest.
            proc = subprocess.Popen(base + ["-S"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            qmp = qemu_driver.Qmp(qmp_path, timeout=120)
        formats = qmp.execute("query-dump-guest-memory-capability")["formats"]
        if not qc.is_integrated(formats):
            r = qmp.command("dump-guest-memory", paging=False, live=True,
                            protocol="file:" + os.path.join(d, "x"))
            t.ok("error" in r, "stock QEMU refuses live (a guestdump extension)", str(r))
            qmp.command("quit")
            proc.wait(60)
            return t.finish()
        # Something to see in RAM: a tagged page every 64 KiB.
        for a in range(0x100000, 0x8000000, 0x10000):
            qt.write(a, struct.pack("<8sQ", b"BEFORE!!", a) * (PAGE // 16))
        cases = [("elf", dict(paging=False)), ("elf paging", dict(paging=True)),
                 ("kdump-zlib", dict(paging=False, format="kdump-zlib"))]
        for n, (name, fa) in enumerate(cases):
            ref = os.path.join(d, "ref%d" % n)
            qmp.events.clear()
            r = qmp.command("dump-guest-memory", protocol="file:" + ref, **fa)
            t.ok("error" not in r, "%s: paused reference dump" % name, str(r))
            with open(ref, "rb") as f:
                want = f.read()
            os.unlink(ref)
            rfd, wfd = os.pipe()
            qmp.execute("getfd", fds=[wfd], fdname="live%d" % n)
            os.close(wfd)
            qmp.events.clear()
            r = qmp.command("dump-guest-memory", protocol="fd:live%d" % n,
                            detach=True, live=True, **fa)
            names = [e["event"] for e in qmp.events]
            t.ok("error" not in r and names[:2] == ["STOP", "RESUME"],
                 "%s: live dump started, STOP then RESUME before it returned" % name,
                 "%s %s" % (r, names))
            addrs = [0x5000000 + k * 0x230000 for k in range(10)] + [0x7ff0000]
            for a in addrs:
                qt.write(a, live_test.pattern(b"LIVE%04d" % n, a))
            got = live_test.drain(rfd)
            ev = qmp.wait_event("DUMP_COMPLETED", 300)["data"]
            t.ok(ev["result"]["status"] == "completed", "%s: completed" % name, str(ev))
            t.ok(got == want, "%s: live dump == the paused dump before the writes" % name,
                 "%d vs %d bytes" % (len(got), len(want)))
            if fa.get("format") is None:
                loads = live_test.elf_loads(got)
                t.ok(all(live_test.elf_read(got, loads, a, 16) ==
                         struct.pack("<8sQ", b"BEFORE!!", a - a % 0x10000)
                         or n > 0 for a in addrs),
                     "%s: the written pages hold their old contents in the dump" % name)
            t.ok(all(qt.read(a, PAGE) == live_test.pattern(b"LIVE%04d" % n, a)
                     for a in addrs), "%s: the guest has the new contents" % name)
        t.ok(qmp.execute("query-status")["status"] == "running",
             "the guest runs after the live dumps")
        qmp.command("quit")
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
