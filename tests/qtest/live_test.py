#!/usr/bin/env python3
"""Live dumps (dump-guest-memory live: true) in the guestdump host: issue 12's tests.

  live_test.py GUESTDUMP

TAP output. (1) pages written through qtest while a slow pipe reader holds a
live dump back are in the dump with their old contents and in the guest with
the new, in every format; never-touched RAM too. (2) -demo-write-load
rewrites all of RAM during live dumps with a copy buffer of a few pages: the
dumps complete and are the snapshot of one instant. (3) a failure or a quit
mid-dump leaves no RAM registered or protected and the guest's writes
proceed. (4) the page walk of a live paging=true dump is the one of the
pause, whatever the guest writes into its tables afterwards. (5) where
userfaultfd is refused (an unprivileged host process), live fails before
anything is written and names why.
"""
import base64
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "compat"))
import qemu_driver  # noqa: E402

GUESTDUMP = None
results = []

LOAD_START = 0x4000000
LOAD_STATUS = 0x3fff000
PAGE = 4096
CR3 = 0x1a00000


def check(name, cond, detail=""):
    sys.stderr.write("%s: %s %s\n" % ("ok" if cond else "FAIL", name, "" if cond else detail))
    results.append((name, bool(cond), detail))
    return bool(cond)


class Host:
    """A guestdump process with QMP and qtest on unix sockets."""

    def __init__(self, args, env=None, user=None):
        self.dir = tempfile.mkdtemp(prefix="gd-live-")
        os.chmod(self.dir, 0o777)
        self.qmp_path = os.path.join(self.dir, "qmp.sock")
        qt_path = os.path.join(self.dir, "qtest.sock")
        cmd = [GUESTDUMP] + args + [
            "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
            "-qtest", "unix:%s,server=on,wait=off" % qt_path]
        full_env = dict(os.environ)
        full_env.update(env or {})
        kw = {}
        if user is not None:
            kw["user"] = user
            kw["group"] = pwd.getpwuid(user).pw_gid
            kw["extra_groups"] = []
        self.err = open(os.path.join(self.dir, "stderr"), "w+")
        self.proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL,
                                     stderr=self.err, **kw)
        self.qmp = qemu_driver.Qmp(self.qmp_path, timeout=120)
        self.qt = qemu_driver.connect_unix(qt_path, time.monotonic() + 60)
        self.qt.settimeout(60)
        self.qtf = self.qt.makefile("rb")

    def path(self, name):
        return os.path.join(self.dir, name)

    def qtest(self, line):
        self.qt.sendall(line.encode() + b"\n")
        r = self.qtf.readline().decode().strip()
        if not r.startswith("OK"):
            raise qemu_driver.DriverError("qtest %s: %s" % (line[:40], r))
        return r[3:]

    def write(self, addr, data):
        self.qtest("b64write 0x%x 0x%x %s" % (addr, len(data),
                                              base64.b64encode(data).decode()))

    def read(self, addr, size):
        return base64.b64decode(self.qtest("b64read 0x%x 0x%x" % (addr, size)))

    def readq(self, addr):
        return struct.unpack("<Q", self.read(addr, 8))[0]

    def dump(self, **args):
        # Events of earlier dumps (a synchronous dump sends DUMP_COMPLETED too).
        self.qmp.events.clear()
        return self.qmp.command("dump-guest-memory", **args)

    def dump_ok(self, **args):
        r = self.dump(**args)
        if "error" in r:
            raise qemu_driver.DriverError("dump: %s" % r["error"]["desc"])

    def wait_completed(self, timeout=600):
        return self.qmp.wait_event("DUMP_COMPLETED", timeout)["data"]

    def smaps_uffd_wp(self):
        """VMAs of the host registered for userfaultfd write protection ('uw')."""
        n = 0
        with open("/proc/%d/smaps" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmFlags:") and " uw" in line:
                    n += 1
        return n

    def load_status(self):
        magic, p, i, n = struct.unpack("<8sQQQ", self.read(LOAD_STATUS, 32))
        return magic, p, i, n

    def close(self):
        try:
            self.qmp.command("quit")
        except (OSError, qemu_driver.DriverError):
            pass
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.qt.close()
        self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def pipe_fd(host, name):
    r, w = os.pipe()
    host.qmp.execute("getfd", fds=[w], fdname=name)
    os.close(w)
    return r


def drain(fd):
    chunks = []
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            break
        chunks.append(b)
    os.close(fd)
    return b"".join(chunks)


def elf_loads(data):
    """PT_LOADs of an ELF64 vmcore: (paddr, vaddr, offset, filesz)."""
    if data[:4] != b"\x7fELF":
        return []
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    out = []
    for i in range(phnum):
        typ, _, off, vaddr, paddr, filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if typ == 1:
            out.append((paddr, vaddr, off, filesz))
    return out


def elf_read(data, loads, gpa, size):
    for paddr, _, off, filesz in loads:
        if paddr <= gpa and gpa + size <= paddr + filesz:
            return data[off + gpa - paddr:off + gpa - paddr + size]
    return None


def pattern(tag, addr):
    return struct.pack("<8sQ", tag, addr) * (PAGE // 16)


def write_load_bad_pages(data):
    """Pages of the write load's region that disagree with the dumped status page."""
    loads = elf_loads(data)
    st = elf_read(data, loads, LOAD_STATUS, 32)
    magic, p, i, _ = struct.unpack("<8sQQQ", st)
    if magic != b"GDLOAD01" or p < 2:
        return None, (magic, p, i)
    idx = bad = 0
    for paddr, _, off, filesz in sorted(loads):
        if 0xfff00000 <= paddr < 1 << 32:        # pc.bios: ROM, not loaded
            continue
        g = (max(paddr, LOAD_START) + PAGE - 1) & ~(PAGE - 1)
        while g + PAGE <= paddr + filesz:
            idx += 1
            want = struct.pack("<Q", p if idx <= i else p - 1) * (PAGE // 8)
            if data[off + g - paddr:off + g - paddr + PAGE] != want:
                bad += 1
            g += PAGE
    return bad, (magic, p, i, idx)


def read_stats(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# --------------------------------------------------------------------------
# (1) consistency: qtest writes while a slow pipe reader holds the dump back
# --------------------------------------------------------------------------

def test_consistency_running():
    h = Host(["-demo", "-m", "256M"])
    try:
        pages = [0x1000000 + 0x3000, 0x5000000, 0x8000000, 0xc001000, 0xff00000,
                 0xffff000]
        old = {a: h.read(a, PAGE) for a in pages}
        r = pipe_fd(h, "live1")
        h.qmp.events.clear()
        h.dump_ok(paging=False, protocol="fd:live1", detach=True, live=True)
        names = [e["event"] for e in h.qmp.events]
        check("1 running: STOP then RESUME before the command returns",
              names[:2] == ["STOP", "RESUME"], str(names))
        check("1 running: RAM is registered for write protection during the dump",
              h.smaps_uffd_wp() > 0)
        check("1 running: the guest runs during the dump",
              h.qmp.execute("query-status")["status"] == "running")
        for a in pages:
            h.write(a, pattern(b"NEWPAGE!", a))
        check("1 running: query-dump says active while the reader waits",
              h.qmp.execute("query-dump")["status"] == "active")
        data = drain(r)
        ev = h.wait_completed()
        check("1 running: DUMP_COMPLETED completed", ev["result"]["status"] == "completed"
              and "error" not in ev, str(ev))
        loads = elf_loads(data)
        for a in pages:
            check("1 running: 0x%x has its old contents in the dump" % a,
                  elf_read(data, loads, a, PAGE) == old[a])
            check("1 running: 0x%x has its new contents in the guest" % a,
                  h.read(a, PAGE) == pattern(b"NEWPAGE!", a))
        tick = elf_read(data, loads, 0x2000000, PAGE)
        check("1 running: the tick page is whole (one tick in all its words)",
              tick[:8] == b"GDTICK01" and len(set(struct.unpack("<511Q", tick[8:]))) == 1)
        check("1 running: no RAM registered after the dump", h.smaps_uffd_wp() == 0)
    finally:
        h.close()


FORMATS = [
    ("elf paging=false", dict(paging=False), "pipe"),
    ("elf paging=true", dict(paging=True), "pipe"),
    ("kdump-zlib", dict(paging=False, format="kdump-zlib"), "pipe"),
    ("kdump-lzo", dict(paging=False, format="kdump-lzo"), "fdset"),
    ("kdump-snappy", dict(paging=False, format="kdump-snappy"), "pipe"),
    ("kdump-zstd", dict(paging=False, format="kdump-zstd"), "pipe"),
    ("kdump-raw-zlib", dict(paging=False, format="kdump-raw-zlib"), "file"),
    ("elf filter", dict(paging=False, begin=0x4f00000, length=0x300000), "pipe"),
]


def test_consistency_formats():
    """A paused guest: live dump + writes during it == paused dump before the writes."""
    # The default copy buffer: this test's writer (qtest, on the main thread)
    # must not wait for slots the dump frees only once this test reads.
    h = Host(["-demo", "-m", "128M", "-S"])
    caps = [f for f in h.qmp.execute("query-dump-guest-memory-capability")["formats"]]
    try:
        for n, (name, args, sink) in enumerate(FORMATS):
            fmt = args.get("format", "elf")
            if fmt not in caps:
                check("1 %s: format offered" % name, False, "not in capability")
                continue
            ref = h.path("ref%d" % n)
            h.dump_ok(protocol="file:" + ref, **args)
            with open(ref, "rb") as f:
                want = f.read()
            os.unlink(ref)
            tag = b"ROUND%03d" % n
            addrs = [0x4f80000 + k * 0x21000 for k in range(8)] + \
                    [0x2000000, 0x3000000, 0x6000000 + n * PAGE]
            h.qmp.events.clear()
            if sink == "pipe":
                r = pipe_fd(h, "f%d" % n)
                h.dump_ok(protocol="fd:f%d" % n, detach=True, live=True, **args)
            elif sink == "fdset":
                out = h.path("live%d" % n)
                wp = os.open(out, os.O_WRONLY | os.O_CREAT, 0o600)
                h.qmp.execute("add-fd", fds=[wp], **{"fdset-id": 7 + n})
                os.close(wp)
                h.dump_ok(protocol="file:/dev/fdset/%d" % (7 + n), detach=True,
                          live=True, **args)
            else:
                out = h.path("live%d" % n)
                h.dump_ok(protocol="file:" + out, detach=True, live=True, **args)
            for a in addrs:
                h.write(a, pattern(tag, a))
            if sink == "pipe":
                got = drain(r)
            ev = h.wait_completed()
            if sink != "pipe":
                with open(out, "rb") as f:
                    got = f.read()
                os.unlink(out)
            check("1 %s (%s): completed" % (name, sink),
                  ev["result"]["status"] == "completed", str(ev))
            check("1 %s (%s): live dump == the paused dump before the writes"
                  % (name, sink), got == want, "%d vs %d bytes" % (len(got), len(want)))
            check("1 %s: the guest has the new contents" % name,
                  all(h.read(a, PAGE) == pattern(tag, a) for a in addrs))
            if sink == "fdset":
                h.qmp.execute("remove-fd", **{"fdset-id": 7 + n})
        check("1 formats: the paused guest stayed paused",
              h.qmp.execute("query-status")["running"] is False)
    finally:
        h.close()


def test_unpopulated(env, label):
    """Pages no one ever touched (RAM above 4 GiB) are protected too."""
    h = Host(["-demo", "-m", "5G", "-S"], env=env)
    try:
        base = 0x140000000
        addrs = [base + 0x40000, base + 0x81000, base + 0x1ff000]
        r = pipe_fd(h, "up")
        h.dump_ok(paging=False, protocol="fd:up", detach=True, live=True,
                  begin=base, length=0x200000)
        for a in addrs:
            h.write(a, pattern(b"UNPOPUL!", a))
        data = drain(r)
        ev = h.wait_completed()
        check("1 %s: completed" % label, ev["result"]["status"] == "completed", str(ev))
        loads = elf_loads(data)
        for a in addrs:
            check("1 %s: 0x%x is zero in the dump" % (label, a),
                  elf_read(data, loads, a, PAGE) == bytes(PAGE))
            check("1 %s: 0x%x is written in the guest" % (label, a),
                  h.read(a, PAGE) == pattern(b"UNPOPUL!", a))
    finally:
        h.close()


# --------------------------------------------------------------------------
# (2) the write load with a tiny copy buffer
# --------------------------------------------------------------------------

def wait_load_pass(h, want, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        magic, p, _, _ = h.load_status()
        if magic == b"GDLOAD01" and p >= want:
            return True
        time.sleep(0.1)
    return False


def test_write_load():
    stats = tempfile.mktemp(prefix="gd-live-stats-")
    h = Host(["-demo", "-demo-write-load", "-m", "256M"],
             env={"GUESTDUMP_LIVE_COPY_PAGES": "16", "GUESTDUMP_LIVE_STATS": stats})
    try:
        check("2 the write load runs", wait_load_pass(h, 2))
        # Synchronous, into a file.
        f = h.path("load.elf")
        h.dump_ok(paging=False, protocol="file:" + f, live=True)
        h.qmp.events.clear()
        with open(f, "rb") as fh:
            data = fh.read()
        os.unlink(f)
        bad, info = write_load_bad_pages(data)
        check("2 sync file: the dump is one instant of the write load", bad == 0,
              "bad pages %s, status %s" % (bad, info))
        # Detached, into a pipe read slowly: the guest outruns the dump.
        r = pipe_fd(h, "load")
        h.dump_ok(paging=True, protocol="fd:load", detach=True, live=True)
        chunks = []
        while True:
            b = os.read(r, 1 << 20)
            if not b:
                break
            chunks.append(b)
            if len(chunks) % 16 == 0:
                time.sleep(0.05)
        os.close(r)
        ev = h.wait_completed()
        check("2 slow pipe: completed", ev["result"]["status"] == "completed", str(ev))
        bad, info = write_load_bad_pages(b"".join(chunks))
        check("2 slow pipe: the dump is one instant of the write load", bad == 0,
              "bad pages %s, status %s" % (bad, info))
        before = h.load_status()
        time.sleep(0.3)
        after = h.load_status()
        check("2 the load goes on after the dumps", after[1:3] != before[1:3])
        st = read_stats(stats)
        check("2 two live dumps reported", len(st) == 2, str(st))
        check("2 the copy buffer filled and writers waited for the dump",
              all(s["waits"] > 0 and s["peak"] >= 16 for s in st), str(st))
        check("2 no page read after its release", all(s["late_reads"] == 0 for s in st),
              str(st))
    finally:
        h.close()
        if os.path.exists(stats):
            os.unlink(stats)


# --------------------------------------------------------------------------
# (3) failure and quit mid-dump lift every protection
# --------------------------------------------------------------------------

def test_failure_unprotects():
    h = Host(["-demo", "-demo-write-load", "-m", "256M"],
             env={"GUESTDUMP_LIVE_COPY_PAGES": "8"})
    try:
        check("3 the write load runs", wait_load_pass(h, 1))
        r = pipe_fd(h, "fail")
        h.dump_ok(paging=False, protocol="fd:fail", detach=True, live=True)
        os.read(r, 1 << 16)
        time.sleep(0.3)
        check("3 RAM is protected while the dump is held back", h.smaps_uffd_wp() > 0)
        os.close(r)
        ev = h.wait_completed()
        check("3 the dump failed with EPIPE",
              ev["result"]["status"] == "failed" and "Broken pipe" in ev.get("error", ""),
              str(ev))
        check("3 no RAM registered after the failure", h.smaps_uffd_wp() == 0)
        before = h.load_status()
        time.sleep(0.3)
        after = h.load_status()
        check("3 the write load goes on", after[1:3] != before[1:3],
              "%s %s" % (before, after))
        t0 = time.monotonic()
        for k in range(64):
            h.write(0x3400000 + k * PAGE, pattern(b"AFTERFAI", k))
        check("3 64 qtest page writes (8 copy slots) proceed",
              all(h.read(0x3400000 + k * PAGE, PAGE) == pattern(b"AFTERFAI", k)
                  for k in range(64)), "%.1f s" % (time.monotonic() - t0))
        wait_load_pass(h, 2)
        f = h.path("after.elf")
        h.dump_ok(paging=False, protocol="file:" + f, live=True)
        with open(f, "rb") as fh:
            bad, info = write_load_bad_pages(fh.read())
        check("3 the next live dump works and is one instant", bad == 0,
              "bad %s %s" % (bad, info))
    finally:
        h.close()

    # quit while a live dump is stuck on a pipe and writers wait for copy slots
    h = Host(["-demo", "-demo-write-load", "-m", "256M"],
             env={"GUESTDUMP_LIVE_COPY_PAGES": "4"})
    try:
        wait_load_pass(h, 1)
        r = pipe_fd(h, "stuck")
        h.dump_ok(paging=False, protocol="fd:stuck", detach=True, live=True)
        time.sleep(0.5)
        h.qmp.command("quit")
        try:
            rc = h.proc.wait(30)
        except subprocess.TimeoutExpired:
            rc = None
        check("3 quit during a stuck live dump ends the process", rc == 0, str(rc))
        os.close(r)
    finally:
        h.close()


# --------------------------------------------------------------------------
# (4) the page walk is the pause's
# --------------------------------------------------------------------------

def test_page_walk():
    h = Host(["-demo", "-m", "256M", "-S"])
    try:
        ref = h.path("ref.elf")
        h.dump_ok(paging=True, protocol="file:" + ref)
        with open(ref, "rb") as f:
            want = f.read()
        r = pipe_fd(h, "walk")
        h.dump_ok(paging=True, protocol="fd:walk", detach=True, live=True)
        # The guest drops its kernel half and remaps user data elsewhere.
        h.write(CR3 + 256 * 8, bytes(256 * 8))
        got = drain(r)
        ev = h.wait_completed()
        check("4 completed", ev["result"]["status"] == "completed", str(ev))
        check("4 live paging=true dump == the dump of the tables at the pause",
              got == want, "%d vs %d bytes" % (len(got), len(want)))
        after = h.path("after.elf")
        h.dump_ok(paging=True, protocol="file:" + after)
        with open(after, "rb") as f:
            later = f.read()
        check("4 the rewrite changed the tables (a dump now walks fewer mappings)",
              len(elf_loads(later)) < len(elf_loads(want)),
              "%d vs %d" % (len(elf_loads(later)), len(elf_loads(want))))
    finally:
        h.close()


# --------------------------------------------------------------------------
# (5) refused protection
# --------------------------------------------------------------------------

def test_refused():
    """An unprivileged process without /dev/userfaultfd: live fails, names why."""
    user = None
    if os.geteuid() == 0:
        user = pwd.getpwnam("nobody").pw_uid
    with open("/proc/sys/vm/unprivileged_userfaultfd") as f:
        unpriv = f.read().strip() == "1"
    h = Host(["-demo", "-m", "128M"], user=user)
    try:
        f = h.path("refused.elf")
        r = h.dump(paging=False, protocol="file:" + f, live=True)
        if unpriv:
            check("5 vm.unprivileged_userfaultfd=1: live works unprivileged",
                  "error" not in r, str(r))
            return
        err = r.get("error", {}).get("desc", "")
        check("5 refused: the error names userfaultfd and why",
              err.startswith("live dump: userfaultfd is not available") and
              "Operation not permitted" in err, err)
        check("5 refused: no file left", not os.path.exists(f))
        check("5 refused: the guest runs", h.qmp.execute("query-status")["status"]
              == "running")
        check("5 refused: query-dump says failed",
              h.qmp.execute("query-dump")["status"] == "failed")
        r = h.dump(paging=False, protocol="file:" + f)
        check("5 refused: a paused dump still works", "error" not in r, str(r))
    finally:
        h.close()


def main():
    global GUESTDUMP
    GUESTDUMP = os.path.abspath(sys.argv[1])
    tests = [test_consistency_running, test_consistency_formats,
             lambda: test_unpopulated({}, "unpopulated (WP_UNPOPULATED)"),
             lambda: test_unpopulated({"GUESTDUMP_LIVE_NO_WP_UNPOPULATED": "1"},
                                      "unpopulated (populated first)"),
             test_write_load, test_failure_unprotects, test_page_walk, test_refused]
    only = os.environ.get("LIVE_TEST_ONLY")
    for n, t in enumerate(tests):
        if only and str(n) not in only.split(","):
            continue
        sys.stderr.write("live_test: part %d\n" % n)
        try:
            t()
        except Exception as e:  # noqa: BLE001 - a crash is a failed check
            check("%s raised" % getattr(t, "__name__", "test"), False, repr(e))
    print("1..%d" % len(results))
    failed = 0
    for i, (name, ok, detail) in enumerate(results, 1):
        print("%s %d - %s%s" % ("ok" if ok else "not ok", i, name,
                                "" if ok else "  # " + detail))
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
