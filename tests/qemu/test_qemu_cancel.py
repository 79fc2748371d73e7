#!/usr/bin/env python3
"""dump-cancel in the QEMU under test: libvirt's flow and HMP, TAP.

    test_qemu_cancel.py --build BUILD

A running guest (SeaBIOS with nothing to boot, TCG, 256 MiB) in
$GUESTDUMP_QEMU (default BUILD/qemu/qemu-system-x86_64). libvirt's flow for
a memory-only dump and domjobabort: getfd with a pipe, a detached dump,
query-dump polling while the pipe is read, then the reader stops; dump-cancel
must end the dump within a second although the writer waits on the full pipe
(asserted with a 10 s bound, the time is reported): DUMP_COMPLETED with
"dump: cancelled", query-dump "failed", RESUME, the pipe's write end closed.
Then a whole dump through a new pipe on the same connection. HMP dump-cancel
of a dump into a FIFO, info dump, and both errors without a dump. Stock 7.2
has no dump-cancel: the test then checks only that it answers CommandNotFound.
"""
import argparse
import fcntl
import os
import shutil
import struct
import sys
import tempfile
import termios
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemu_common as qc  # noqa: E402
import qemu_driver  # noqa: E402

# The flow's dumps are live (the guest runs on while they are written), and
# stock 7.2, which has no "live", is asked only whether dump-cancel exists.
FLOW_EXTRA = {"live": True}
CANCEL_BOUND = 10.0
NO_DUMP = "There is no dump in progress"
F_GETPIPE_SZ = 1032


def queued(fd):
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


def wait_stalled(qmp, rfd):
    """Until the pipe is at least half full and progress stood still three times."""
    size = fcntl.fcntl(rfd, F_GETPIPE_SZ)
    last, still = -1, 0
    for _ in range(600):
        q = qmp.execute("query-dump")
        if q["status"] != "active":
            return False, "query-dump: %s" % q
        still = still + 1 if queued(rfd) >= size // 2 and q["completed"] == last else 0
        if still == 3:
            return True, ""
        last = q["completed"]
        time.sleep(0.05)
    return False, "the dump never stalled on the full pipe"


def read_to_eof(rfd, timeout=30.0):
    """Everything left in the pipe, or None if the write end stays open."""
    os.set_blocking(rfd, False)
    deadline = time.monotonic() + timeout
    data = bytearray()
    while time.monotonic() < deadline:
        try:
            chunk = os.read(rfd, 1 << 16)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        if not chunk:
            return bytes(data)
        data += chunk
    return None


def cancelled_event(qmp):
    """The DUMP_COMPLETED dump-cancel sent before its reply (or a reason it is wrong)."""
    ev = [e for e in qmp.events if e["event"] == "DUMP_COMPLETED"]
    if len(ev) != 1:
        return "expected one DUMP_COMPLETED before the reply, got %d" % len(ev)
    qmp.events.remove(ev[0])
    d = ev[0]["data"]
    if d["result"]["status"] != "failed" or d.get("error") != "dump: cancelled":
        return "event: %s" % d
    return None


def timed_cancel(qmp):
    t0 = time.monotonic()
    r = qmp.command("dump-cancel")
    return time.monotonic() - t0, r


def libvirt_flow(t, g, tmp):
    qmp = g.qmp
    qmp.execute("query-dump-guest-memory-capability")
    r, w = os.pipe()
    qmp.execute("getfd", fds=[w], fdname="dump")
    os.close(w)
    # ELF: its 256 MiB of output cannot fit in the pipe (the SeaBIOS guest's
    # RAM is mostly zero, so a kdump file would be a few MiB).
    qmp.execute("dump-guest-memory", paging=False, protocol="fd:dump", detach=True,
                format="elf", **FLOW_EXTRA)
    got, last, polled_ok = bytearray(), 0, True
    while len(got) < (4 << 20):
        q = qmp.execute("query-dump")
        polled_ok &= q["status"] == "active" and last <= q["completed"] < q["total"]
        last = q["completed"]
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        got += chunk
    t.ok(polled_ok and len(got) >= (4 << 20) and got[:4] == b"\x7fELF",
         "flow: detached ELF into a getfd pipe, query-dump active and growing "
         "while 4 MiB are read")
    ok, why = wait_stalled(qmp, r)
    t.ok(ok, "flow: the reader stops, the writer waits on the full pipe", why)
    took, rsp = timed_cancel(qmp)
    t.diag("dump-cancel with the writer waiting on a full pipe took %.1f ms" %
           (took * 1000))
    t.ok("return" in rsp and took < CANCEL_BOUND,
         "flow: dump-cancel returns within %d s (%.1f ms)" % (CANCEL_BOUND, took * 1000),
         str(rsp))
    why = cancelled_event(qmp)
    t.ok(why is None, "flow: DUMP_COMPLETED failed, 'dump: cancelled', before the reply",
         why)
    q = qmp.execute("query-dump")
    t.ok(q["status"] == "failed", "flow: query-dump says failed", str(q))
    try:
        qmp.wait_event("RESUME", timeout=10)
        resumed = qmp.execute("query-status")["status"] == "running"
    except qemu_driver.DriverError:
        resumed = False
    t.ok(resumed, "flow: the guest runs again (RESUME, query-status running)")
    t.ok(read_to_eof(r) is not None, "flow: the dump's end of the pipe is closed")
    os.close(r)

    r, w = os.pipe()
    qmp.execute("getfd", fds=[w], fdname="dump")
    os.close(w)
    data = bytearray()
    reader = threading.Thread(target=lambda: data.extend(read_to_eof(r, 300) or b""))
    reader.start()
    qmp.execute("dump-guest-memory", paging=False, protocol="fd:dump", detach=True,
                format="kdump-zlib", **FLOW_EXTRA)
    ev = qmp.wait_event("DUMP_COMPLETED", timeout=300)
    reader.join()
    os.close(r)
    res = ev["data"]["result"]
    # A whole flattened kdump file ends with the end marker: 16 bytes of 0xff.
    t.ok(res["status"] == "completed" and res["completed"] == res["total"] and
         data[:12] == b"makedumpfile" and data[-16:] == b"\xff" * 16,
         "flow: then a whole kdump-zlib through a new getfd pipe on the same "
         "connection (%d bytes)" % len(data), str(ev["data"]))
    qmp.wait_event("RESUME", timeout=60)


def hmp(t, g, tmp):
    qmp = g.qmp
    fifo = os.path.join(tmp, "hmp.fifo")
    os.mkfifo(fifo, 0o600)
    r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    out = qmp.hmp("dump-guest-memory -d %s" % fifo)
    ok, why = wait_stalled(qmp, r)
    # The SeaBIOS guest has no VMCOREINFO: QEMU prints the warning there.
    t.ok("Error" not in out and ok, "HMP: dump-guest-memory -d into a FIFO nobody reads",
         out + why)
    out = qmp.hmp("dump-cancel")
    why = cancelled_event(qmp)
    t.ok(out == "" and why is None, "HMP: dump-cancel ends it ('dump: cancelled')",
         out + (why or ""))
    out = qmp.hmp("info dump")
    t.ok(out.strip() == "Status: failed", "HMP: info dump says failed", out)
    t.ok(os.path.exists(fifo) and read_to_eof(r) is not None,
         "HMP: the FIFO (not created by the dump) stays; its writer is closed")
    os.close(r)
    out = qmp.hmp("dump-cancel")
    t.ok(out.strip() == "Error: " + NO_DUMP, "HMP: dump-cancel without a dump", out)
    qmp.wait_event("RESUME", timeout=10)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    a = ap.parse_args(argv)
    qemu = qc.binary(a.build)
    why = qc.check_binary(qemu)
    if why:
        return qc.missing_all(why)
    t = qc.Tap()
    tmp = tempfile.mkdtemp(prefix="qemu-cancel-")
    g = qemu_driver.QemuGuest(mem="256M", smp=2, qemu=qemu)
    try:
        g.start()
        qmp = g.qmp
        fmts = qmp.execute("query-dump-guest-memory-capability")["formats"]
        rsp = qmp.command("dump-cancel")
        if not qc.is_integrated(fmts):
            t.ok(rsp.get("error", {}).get("class") == "CommandNotFound",
                 "stock QEMU: no dump-cancel (CommandNotFound)", str(rsp))
            return t.finish()
        err = rsp.get("error", {})
        t.ok(err.get("class") == "GenericError" and err.get("desc") == NO_DUMP,
             "dump-cancel without a dump: GenericError '%s'" % NO_DUMP, str(rsp))
        qmp.execute("cont")
        qmp.wait_event("RESUME", timeout=10)
        libvirt_flow(t, g, tmp)
        hmp(t, g, tmp)
    except (qemu_driver.DriverError, OSError) as e:
        t.ok(False, "the QEMU under test runs the cancel checks", str(e))
    finally:
        g.quit()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
