#!/usr/bin/env python3
"""Live dumps against paused ones: the guest's pause, the dump's time, the guest's writes.

    live_bench.py --build BUILD [--host qemu,guestdump] [--qemu BIN]
                  [--sizes 1G,4G,16G] [--formats elf,kdump-zlib] [--modes paused,live]
                  [--touch SIZE] [--gd-load-max SIZE] [--window S] [--reps N]
                  [--out DIR] [--json FILE] [--markdown] [--smoke]

For each host, guest size, format and mode the guest is running a write load
while dump-guest-memory (detach: true, into a file; `live: true` for the live
mode) dumps it:

* qemu: the QEMU with guestdump's module (--qemu, else $GUESTDUMP_QEMU, else
  BUILD/qemu/qemu-system-x86_64; TCG, one vCPU) boots tests/bench/wload.S, a
  bare-metal multiboot program that rewrites --touch bytes of RAM in a loop
  (default: 3/4 of RAM, at most 2 GiB; the rest of a large guest is never
  touched) and prints a byte on COM1 per 16 MiB written.
* guestdump: the guestdump host's demo guest (BUILD/guestdump -demo, one
  vCPU) with its write load (-demo-write-load: a thread rewrites all RAM above
  64 MiB, pass after pass), whose status page the bench polls over qtest
  every 10 ms; guests above --gd-load-max (default 4G) run without the load,
  which would populate all their RAM.

Measured, per dump:
* pause: the RESUME event's timestamp minus the STOP event's (both set by the
  host when it emits them), i.e. how long the guest was stopped;
* dump: from sending the command to the DUMP_COMPLETED event's timestamp;
* guest writes: MB/s the guest wrote between STOP and DUMP_COMPLETED,
  from its progress reports (serial bytes, status page) and the time they
  were read, against the --window seconds just before the command (the
  baseline without a dump, measured on the same guest in the same run).
A mode the binary does not have (`live` before it exists) is reported as
skipped with the host's error. A benchmark, not a test: nothing passes or
fails. --smoke (a 128 MiB guest, ELF, both modes, short windows) is the
test qemu-live-bench-smoke: it checks, as TAP, that the machinery runs (each
dump completes, STOP and RESUME come, the load ran before the dump), never
a time; a missing binary fails it under CI=true and skips it
elsewhere.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "compat"))
import qemu_driver  # noqa: E402

CHUNK = 16 << 20                # bytes written per progress byte of wload
WLOAD_AT = 32 << 20             # where wload's buffer starts
LOWMEM = 3 << 30                # pc: RAM below the PCI hole when -m is 3.5 GiB or more
DEMO_LOAD_STATUS = 0x3fff000    # the demo write load's status page


def parse_size(s):
    units = {"K": 10, "M": 20, "G": 30, "T": 40}
    s = s.strip().upper()
    if s and s[-1] in units:
        return int(float(s[:-1]) * (1 << units[s[-1]]))
    return int(s)


def human(n):
    for u, sh in (("G", 30), ("M", 20)):
        if n >= 1 << sh and n % (1 << sh) == 0:
            return "%d %siB" % (n >> sh, u)
    return "%d MiB" % (n >> 20)


def build_wload(work):
    """tests/bench/wload.S as a multiboot ELF in work; its path."""
    obj, elf = os.path.join(work, "wload.o"), os.path.join(work, "wload.elf")
    subprocess.run(["gcc", "-m32", "-c", "-o", obj, os.path.join(HERE, "wload.S")],
                   check=True)
    subprocess.run(["ld", "-m", "elf_i386", "-Ttext=0x100000", "-o", elf, obj],
                   check=True)
    return elf


class Guest:
    """A host process with QMP on a unix socket and, where the guest reports its
    writes, a thread that records (wall time, bytes written so far): from the
    serial console (wload: a '.' per 16 MiB) or by polling the demo load's
    status page over qtest."""

    def __init__(self, name, cmd, tmp, serial_path=None, qtest_path=None):
        self.name, self.tmp = name, tmp
        self.marks = []                 # (time.time(), bytes written so far)
        self.passes = 0
        self.count = 0
        self.lock = threading.Lock()
        self.closing = False
        self.err = open(os.path.join(tmp, name + ".stderr"), "w+b")
        # The module appends a JSON line per live dump here (copies, waits,
        # protect_us: what registering and write-protecting RAM took).
        self.stats = os.path.join(tmp, name + ".live-stats")
        if os.path.exists(self.stats):
            os.unlink(self.stats)
        env = dict(os.environ, GUESTDUMP_LIVE_STATS=self.stats)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env,
                                     stdout=subprocess.DEVNULL, stderr=self.err)
        self.ser = self.qmp = self.qt = None
        try:
            if serial_path:
                self.ser = qemu_driver.connect_unix(serial_path, time.monotonic() + 60)
                threading.Thread(target=self._serial, daemon=True).start()
            self.qmp = qemu_driver.Qmp(os.path.join(tmp, name + ".qmp"), timeout=120)
            if qtest_path:
                self.qt = qemu_driver.connect_unix(qtest_path, time.monotonic() + 60)
                threading.Thread(target=self._poll_demo_load, daemon=True).start()
        except Exception:
            self.close()
            raise qemu_driver.DriverError("%s did not start: %s" % (name, self.stderr()))

    def _serial(self):
        while True:
            try:
                d = self.ser.recv(4096)
            except OSError:
                return
            if not d:
                return
            now = time.time()
            with self.lock:
                self.count += d.count(b".")
                self.passes += d.count(b"\n")
                self.marks.append((now, self.count * CHUNK))

    def _poll_demo_load(self):
        """Every 10 ms: the demo load's status page (docs/demo-guest.md, "Write
        load"): "GDLOAD01", pass, pages written in this pass, pages per pass."""
        f = self.qt.makefile("rb")
        while not self.closing:
            try:
                self.qt.sendall(b"read 0x%x 32\n" % DEMO_LOAD_STATUS)
                line = f.readline()
            except OSError:
                return
            now = time.time()
            if not line.startswith(b"OK 0x"):
                return
            st = bytes.fromhex(line[5:].strip().decode())
            if st[:8] == b"GDLOAD01":
                p, i, n = (int.from_bytes(st[o:o + 8], "little") for o in (8, 16, 24))
                with self.lock:
                    self.passes = max(p - 1, 0)
                    self.marks.append((now, ((p - 1) * n + i) * 4096))
            time.sleep(0.01)

    def live_stats(self):
        """The module's statistics of the last live dump, or None."""
        try:
            with open(self.stats) as f:
                lines = f.read().splitlines()
            return json.loads(lines[-1]) if lines else None
        except (OSError, ValueError):
            return None

    def huge_mib(self):
        """AnonHugePages of the host process, MiB: RAM still in huge pages, whose
        write protection costs a PMD instead of 512 PTEs."""
        try:
            with open("/proc/%d/smaps_rollup" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("AnonHugePages:"):
                        return int(line.split()[1]) >> 10
        except OSError:
            pass
        return None

    def reports(self):
        return bool(self.ser or self.qt)

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")[-2000:]

    def wait_passes(self, n, timeout):
        """Waits until the load has completed n more passes (its RAM is populated)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            goal = self.passes + n
        while time.monotonic() < deadline:
            with self.lock:
                if self.passes >= goal:
                    return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def written(self, t):
        """Progress bytes the guest had reported at wall time t."""
        with self.lock:
            n = 0
            for when, c in self.marks:
                if when > t:
                    break
                n = c
            return n

    def rate(self, a, b):
        """MB/s the guest wrote between wall times a and b (None: no progress reports)."""
        if b <= a or not self.reports():
            return None
        return (self.written(b) - self.written(a)) / 1e6 / (b - a)

    def close(self):
        self.closing = True
        if self.qt:
            self.qt.close()
            self.qt = None
        if self.qmp:
            try:
                self.qmp.command("quit")
            except (OSError, qemu_driver.DriverError, ValueError):
                pass
            self.qmp.close()
            self.qmp = None
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.ser:
            self.ser.close()
            self.ser = None


def start_qemu(binary, wload, size, touch, tmp):
    ser = os.path.join(tmp, "qemu.serial")
    cmd = [binary, "-nodefaults", "-no-user-config", "-display", "none",
           "-machine", "pc", "-accel", "tcg", "-cpu", "qemu64", "-smp", "1",
           "-m", "%dM" % (size >> 20), "-kernel", wload,
           "-append", "mb=%d at=%d" % (touch >> 20, WLOAD_AT >> 20),
           "-chardev", "socket,id=ser0,path=%s,server=on,wait=on" % ser,
           "-serial", "chardev:ser0",
           "-qmp", "unix:%s,server=on,wait=off" % os.path.join(tmp, "qemu.qmp")]
    return Guest("qemu", cmd, tmp, serial_path=ser)


def start_guestdump(build, size, load, tmp):
    """The demo guest; with load, its write load (-demo-write-load), whose
    progress is read over qtest."""
    qt = os.path.join(tmp, "guestdump.qtest")
    cmd = [os.path.join(build, "guestdump"), "-demo", "-smp", "1",
           "-m", "%dM" % (size >> 20),
           "-qmp", "unix:%s,server=on,wait=off" % os.path.join(tmp, "guestdump.qmp")]
    if load:
        cmd += ["-demo-write-load", "-qtest", "unix:%s,server=on,wait=off" % qt]
    return Guest("guestdump", cmd, tmp, qtest_path=qt if load else None)


def ts(ev):
    return ev["timestamp"]["seconds"] + ev["timestamp"]["microseconds"] / 1e6


def one_dump(g, fmt, live, path, window, timeout):
    """Dumps once; a dict of what was measured, or {"error": text}."""
    q = g.qmp
    if os.path.exists(path):
        os.unlink(path)
    os.sync()
    q.events.clear()                        # the last dump's events were all read
    q.sock.settimeout(timeout)              # a timeout ends the bench (the socket's
                                            # file cannot read after one)
    args = {"paging": False, "protocol": "file:" + path, "format": fmt,
            "detach": True}
    if live:
        args["live"] = True
    time.sleep(window)                      # the baseline window
    huge = g.huge_mib()
    t0 = time.time()
    r = q.command("dump-guest-memory", **args)
    if "error" in r:
        return {"error": r["error"].get("desc")}
    done = q.wait_event("DUMP_COMPLETED", timeout)
    t1 = ts(done)
    # A running guest is stopped and resumed by every dump; RESUME may trail
    # DUMP_COMPLETED (a paused dump resumes the guest as it ends).
    got = {"STOP": q.wait_event("STOP", 60), "RESUME": q.wait_event("RESUME", 60)}
    res = {"dump_s": t1 - t0, "huge_mib_before": huge,
           "bytes": os.path.getsize(path) if os.path.exists(path) else None}
    if "error" in done.get("data", {}):
        res["error"] = done["data"]["error"]
    res["pause_ms"] = (ts(got["RESUME"]) - ts(got["STOP"])) * 1e3
    res["stop_after_ms"] = (ts(got["STOP"]) - t0) * 1e3
    time.sleep(0.2)                         # the console's last bytes before t1
    res["base_mbs"] = g.rate(t0 - window, t0)
    res["during_mbs"] = g.rate(ts(got["STOP"]), t1)
    if live:
        res["live_stats"] = g.live_stats()
    if os.path.exists(path):
        os.unlink(path)
    return res


def run_line(r):
    """One dump's figures, for the per-run lines."""
    if "error" in r:
        return "error: %s" % r["error"]
    st = r.get("live_stats") or {}
    protect = st["protect_us"] / 1e3 if "protect_us" in st else None
    return "pause %.1f ms, protect %s ms, %s MiB in huge pages before, dump %.2f s" % (
        r["pause_ms"], fmt_num(protect, "%.1f"), r["huge_mib_before"], r["dump_s"])


def summarize(runs):
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0]["error"] if runs else "no run"}

    def med(k):
        v = [r[k] for r in ok if r.get(k) is not None]
        return statistics.median(v) if v else None
    out = {k: med(k) for k in ("pause_ms", "dump_s", "base_mbs", "during_mbs", "bytes")}
    p = [r["pause_ms"] for r in ok if r.get("pause_ms") is not None]
    out["pause_max_ms"] = max(p) if p else None
    pr = [r["live_stats"]["protect_us"] / 1e3 for r in ok
          if (r.get("live_stats") or {}).get("protect_us") is not None]
    out["protect_ms"] = statistics.median(pr) if pr else None
    cp = [r["live_stats"].get("copies") for r in ok if r.get("live_stats")]
    out["copies"] = statistics.median(cp) if cp else None
    out["runs"] = runs
    return out


def fmt_num(v, f):
    return "–" if v is None else f % v


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--host", default="qemu,guestdump")
    ap.add_argument("--qemu")
    ap.add_argument("--sizes", default="1G,4G,16G")
    ap.add_argument("--formats", default="elf,kdump-zlib")
    ap.add_argument("--modes", default="paused,live")
    ap.add_argument("--touch", help="RAM the QEMU guest rewrites (default: 3/4 of "
                    "RAM, at most 2G)")
    ap.add_argument("--gd-load-max", default="4G", help="the largest guestdump guest "
                    "run with -demo-write-load, which rewrites (populates) all its "
                    "RAM above 64 MiB; larger ones run without a load")
    ap.add_argument("--window", type=float, default=2.0,
                    help="seconds of baseline before each dump")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--out")
    ap.add_argument("--json")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--smoke", action="store_true",
                    help="128 MiB, ELF, both modes, 0.3 s windows: the machinery only")
    a = ap.parse_args()
    if a.smoke:
        a.sizes, a.formats, a.window = "128M", "elf", 0.3
    hosts = [h for h in a.host.split(",") if h]
    sizes = [parse_size(s) for s in a.sizes.split(",")]
    formats = a.formats.split(",")
    modes = a.modes.split(",")
    for h in hosts:
        if h not in ("qemu", "guestdump"):
            ap.error("--host: qemu and/or guestdump")
    for m in modes:
        if m not in ("paused", "live"):
            ap.error("--modes: paused and/or live")
    binary = a.qemu or os.environ.get("GUESTDUMP_QEMU") or os.path.join(
        a.build, "qemu", "qemu-system-x86_64")
    missing = None
    if "qemu" in hosts and not os.access(binary, os.X_OK):
        missing = "no QEMU at %s (scripts/qemu/build.sh BUILD/qemu, or --qemu)" % binary
    elif "guestdump" in hosts and not os.access(os.path.join(a.build, "guestdump"),
                                                os.X_OK):
        missing = "no %s/guestdump" % a.build
    if missing and not a.smoke:
        ap.error(missing)
    if missing:
        if os.environ.get("CI") == "true":
            print("1..1\nnot ok 1 - %s (CI=true: required)" % missing)
            return 1
        print("1..0 # SKIP %s" % missing)
        return 0
    say = (lambda line: print("# " + line, flush=True)) if a.smoke else \
        (lambda line: print(line, flush=True))
    work = a.out or tempfile.mkdtemp(prefix="live-bench-", dir="/var/tmp")
    os.makedirs(work, exist_ok=True)
    wload = build_wload(work) if "qemu" in hosts else None
    gd_load_max = parse_size(a.gd_load_max)

    results = []
    for host in hosts:
        for size in sizes:
            touch = None
            if host == "qemu":
                touch = parse_size(a.touch) if a.touch else min(size * 3 // 4, 2 << 30)
                touch = min(touch, min(size, LOWMEM) - WLOAD_AT) // CHUNK * CHUNK
                if touch < CHUNK:
                    ap.error("guest of %s too small for the load" % human(size))
            label = "%s %s" % (host, human(size))
            g = None
            try:
                if host == "qemu":
                    g = start_qemu(binary, wload, size, touch, work)
                else:
                    g = start_guestdump(a.build, size, size <= gd_load_max, work)
                if g.reports() and not g.wait_passes(2, 600):
                    raise qemu_driver.DriverError("the write load did not run: %s"
                                                  % g.stderr())
                caps = [f["format"] if isinstance(f, dict) else f for f in g.qmp.execute(
                    "query-dump-guest-memory-capability")["formats"]]
                # Stock 7.2 (no kdump-zstd) has no live dumps: its paused ones only.
                stock = host == "qemu" and "kdump-zstd" not in caps
                for fmt in formats:
                    for mode in modes:
                        if stock and mode == "live":
                            say("%-18s %-10s %-6s not in stock QEMU 7.2" % (label, fmt,
                                                                             mode))
                            continue
                        path = os.path.join(work, "dump-%s-%s" % (fmt, mode))
                        runs = [one_dump(g, fmt, mode == "live", path, a.window,
                                         a.timeout) for _ in range(a.reps)]
                        for i, r in enumerate(runs, 1):
                            say("  run %d: %s" % (i, run_line(r)))
                        s = summarize(runs)
                        s.update(host=host, size=size, format=fmt, mode=mode,
                                 touch=touch, load=os.getloadavg()[0])
                        results.append(s)
                        if "error" in s:
                            say("%-18s %-10s %-6s error: %s" % (label, fmt, mode,
                                                                s["error"]))
                            continue
                        say("%-18s %-10s %-6s pause %s ms (max %s, protect %s)  dump %s s  "
                            "guest %s MB/s during, %s before  (load %.1f)" % (
                                label, fmt, mode, fmt_num(s["pause_ms"], "%.1f"),
                                fmt_num(s["pause_max_ms"], "%.1f"),
                                fmt_num(s["protect_ms"], "%.1f"),
                                fmt_num(s["dump_s"], "%.2f"),
                                fmt_num(s["during_mbs"], "%.0f"),
                                fmt_num(s["base_mbs"], "%.0f"), s["load"]))
            except (qemu_driver.DriverError, OSError, ValueError) as e:
                say("%-18s error: %s" % (label, e))
                results.append({"host": host, "size": size, "format": "-", "mode": "-",
                                "touch": touch, "error": str(e)})
            finally:
                if g:
                    g.close()

    if a.markdown:
        print("\n| host | guest (touched) | format | mode | pause ms (max) | of it "
              "protect ms | dump s | guest MB/s during / before | pages copied |")
        print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for s in results:
            guest = human(s["size"]) + (" (%s)" % human(s["touch"]) if s["touch"] else "")
            if "error" in s:
                print("| %s | %s | %s | %s | error: %s | | | | |" % (
                    s["host"], guest, s["format"], s["mode"], s["error"]))
                continue
            print("| %s | %s | %s | %s | %s (%s) | %s | %s | %s / %s | %s |" % (
                s["host"], guest, s["format"], s["mode"], fmt_num(s["pause_ms"], "%.1f"),
                fmt_num(s["pause_max_ms"], "%.1f"), fmt_num(s["protect_ms"], "%.1f"),
                fmt_num(s["dump_s"], "%.2f"), fmt_num(s["during_mbs"], "%.0f"),
                fmt_num(s["base_mbs"], "%.0f"), fmt_num(s["copies"], "%d")))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"qemu": binary, "results": results}, f, indent=1)
    if not a.out:
        shutil.rmtree(work, ignore_errors=True)
    if a.smoke:
        return tap(results)
    return 0


def tap(results):
    """The smoke test's verdict: the machinery ran, whatever the times."""
    checks = []
    for s in results:
        what = "%s %s %s %s" % (s["host"], human(s["size"]), s["format"], s["mode"])
        checks.append(("error" not in s, what + ": the dump completed",
                       s.get("error", "")))
        if "error" in s:
            continue
        checks.append((s["pause_ms"] is not None and s["pause_ms"] >= 0,
                       what + ": STOP then RESUME around it", ""))
        if s["base_mbs"] is not None:
            checks.append(((s["base_mbs"] or 0) > 0,
                           what + ": the guest's write load ran before it", ""))
    print("1..%d" % len(checks))
    for i, (ok, desc, why) in enumerate(checks, 1):
        print("%s %d - %s%s" % ("ok" if ok else "not ok", i, desc,
                                " (%s)" % why if why else ""))
    return 0 if all(c[0] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
