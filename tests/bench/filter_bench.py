#!/usr/bin/env python3
"""dump-level 31 inside QEMU against QEMU 7.2's ELF plus makedumpfile -c -d 31, one run.

    filter_bench.py --qemu MODULE_QEMU --cache DIR [--stock /usr/bin/qemu-system-x86_64]
                    [--mem 2G] [--load FILE_MB,PRIV_MB,ANON_MB] [--out DIR] [--json F]

Boots Debian's kernel (the linux-guest test's kernel and initramfs, TCG, 2
vCPUs) with the load of test_filter_exact.py scaled up (default: 2 GiB, 1280
MiB of ext4 file cache, 128 of it with buffer heads, 64 MiB anonymous, the
rest free) in the QEMU with
guestdump's module (scripts/qemu/build.sh DIR) and, as a second boot of the
same guest, in stock QEMU 7.2. While the guest runs, each dump is one QMP
dump-guest-memory; the guest pause is the time between QEMU's STOP and RESUME
events (QMP timestamps), the time is from the command to its reply:

  module  kdump-zlib with dump-level 31          (the one-pass filtered dump)
  module  kdump-zlib unfiltered                  (a)
  stock   ELF, then makedumpfile -c -d 31 of it  (b)

makedumpfile 1.7.2 cannot read QEMU 7.2's ELF (docs/compat.md ELF row 8), so
(b)'s makedumpfile step runs on the module's ELF of the same guest (the same
PT_LOADs and bytes, headers readable), taken right after. Without the module
QEMU, --host GUESTDUMP restores stock QEMU's ELF into the host program and
takes the module's three dumps there (no real guest behind the pause then). Prints a JSON
report and the markdown table for docs/performance.md. A benchmark, not a
test: nothing passes or fails.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LG = os.path.join(os.path.dirname(HERE), "compat", "linux-guest")
sys.dont_write_bytecode = True
sys.path.insert(0, LG)
sys.path.insert(1, os.path.dirname(LG))
import guests  # noqa: E402
import mk_initramfs  # noqa: E402
import qemu_driver  # noqa: E402
import test_filter_exact as tfe  # noqa: E402
import test_linux_guest as tlg  # noqa: E402


def ts(e):
    return e["timestamp"]["seconds"] + e["timestamp"]["microseconds"] / 1e6


def timed_dump(g, path, fmt, **extra):
    """(seconds, pause seconds, bytes) of one dump of the running guest."""
    g.qmp.events.clear()
    t0 = time.monotonic()
    r = g.qmp.command("dump-guest-memory", paging=False, protocol="file:" + path,
                      format=fmt, **extra)
    secs = time.monotonic() - t0
    if "error" in r:
        raise qemu_driver.DriverError("%s: %s" % (fmt, r["error"].get("desc")))
    done = g.qmp.wait_event("DUMP_COMPLETED")
    if done.get("data", {}).get("error"):
        raise qemu_driver.DriverError(done["data"]["error"])
    try:
        stop = g.qmp.wait_event("STOP", 10)
        resume = g.qmp.wait_event("RESUME", 10)
        pause = ts(resume) - ts(stop)
    except (qemu_driver.DriverError, OSError):
        pause = None
    return secs, pause, os.path.getsize(path)


def boot(qemu, kernel, initrd, append, disks, mem, work, tag):
    g = qemu_driver.BootedGuest(kernel, initrd, append, mk_initramfs.READY_MARKER,
                                serial_path=os.path.join(work, tag + "-serial.log"),
                                boot_timeout=1800, mem=mem, smp=2, qemu=qemu,
                                extra_args=disks)
    g.start()
    g.qmp.sock.settimeout(3600)     # an unfiltered 2 GiB kdump-zlib takes minutes
    return g


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qemu", help="QEMU with guestdump's module")
    ap.add_argument("--host", help="instead of --qemu: guestdump restoring the stock "
                    "ELF (no real guest pause for guestdump's dumps)")
    ap.add_argument("--stock", default="/usr/bin/qemu-system-x86_64")
    ap.add_argument("--cache", required=True, help="kernel/initramfs cache folder")
    ap.add_argument("--mem", default="2G")
    ap.add_argument("--load", default="1152,128,64")
    ap.add_argument("--out")
    ap.add_argument("--json")
    a = ap.parse_args()

    load = tuple(int(x) for x in a.load.split(","))
    cache = os.path.abspath(a.cache)
    os.makedirs(cache, exist_ok=True)
    t = tlg.Tap()
    k, why = tlg.prepare_kernel(cache, t)
    if not k:
        raise SystemExit("no kernel: %s" % why)
    kver, root = k
    kernel = os.path.join(root, "boot", "vmlinuz-" + kver)
    mine = os.path.join(cache, "filter-exact")     # test_filter_exact.py's initramfs
    os.makedirs(mine, exist_ok=True)
    initrd, why = tlg.prepare_initrd(mine, kver, root)
    if not initrd:
        raise SystemExit("no initramfs: %s" % why)
    work = a.out or tempfile.mkdtemp(prefix="filter-bench-", dir=cache)
    os.makedirs(work, exist_ok=True)
    append = "console=ttyS0 panic=-1 gd.load=%d,%d,%d" % load
    disks = tfe.write_disks(work, load[0], load[1])
    rep = {"mem": a.mem, "load": a.load, "kernel": kver, "runs": {}}

    plan = (("d31", "kdump-zlib", {"dump-level": 31}),
            ("d31-raw", "kdump-raw-zlib", {"dump-level": 31}),
            ("unfiltered", "kdump-zlib", {}),
            ("module-elf", "elf", {}))

    def module_dumps(g, tag):
        for name, fmt, extra in plan:
            path = os.path.join(work, name + ("." + fmt if fmt == "elf" else ".kdump"))
            s, p, n = timed_dump(g, path, fmt, **extra)
            rep["runs"][name] = {"seconds": s, "pause": p, "bytes": n}
            print("%s %-12s %7.2f s  pause %s s  %12d bytes" % (tag, name, s, p, n),
                  flush=True)
            if name != "module-elf":
                os.unlink(path)

    if not a.qemu and not a.host:
        raise SystemExit("need --qemu or --host")
    if a.qemu:
        g = boot(a.qemu, kernel, initrd, append, disks, a.mem, work, "module")
        try:
            rep["boot_module_s"] = g.boot_seconds
            rep["meminfo_module"] = tfe.meminfo(os.path.join(work, "module-serial.log"))
            module_dumps(g, "module")
        finally:
            g.quit()
    g = boot(a.stock, kernel, initrd, append, disks, a.mem, work, "stock")
    try:
        rep["boot_stock_s"] = g.boot_seconds
        rep["meminfo_stock"] = tfe.meminfo(os.path.join(work, "stock-serial.log"))
        path = os.path.join(work, "stock.elf")
        s, p, n = timed_dump(g, path, "elf")
        rep["runs"]["stock-elf"] = {"seconds": s, "pause": p, "bytes": n}
        print("stock  ELF          %7.2f s  pause %s s  %12d bytes" % (s, p, n),
              flush=True)
    finally:
        g.quit()
    if a.host:
        # The host program holds the stock ELF's state (-restore); its pause
        # is whatever STOP/RESUME it reports (None when it sends none).
        emu = guests.Guestdump(a.host, path)
        try:
            emu.qmp.command("cont")
            module_dumps(emu, "host  ")
        finally:
            emu.stop()
    os.unlink(path)
    elf = os.path.join(work, "module-elf.elf")
    out = os.path.join(work, "mdf-c-d31.kdump")
    t0 = time.monotonic()
    p = subprocess.run(["makedumpfile", "-c", "-d", "31", elf, out],
                       capture_output=True, text=True)
    secs = time.monotonic() - t0
    if p.returncode:
        raise SystemExit("makedumpfile failed: %s" % p.stderr[-500:])
    rep["runs"]["makedumpfile"] = {"seconds": secs, "bytes": os.path.getsize(out)}
    print("makedumpfile -c -d 31 %7.2f s  %12d bytes" % (secs, os.path.getsize(out)),
          flush=True)
    os.unlink(out)
    os.unlink(elf)

    if not a.out:
        shutil.rmtree(work, ignore_errors=True)

    r = rep["runs"]
    b_time = r["stock-elf"]["seconds"] + r["makedumpfile"]["seconds"]
    b_bytes = r["stock-elf"]["bytes"] + r["makedumpfile"]["bytes"]
    rep["summary"] = {
        "speedup_vs_b": b_time / r["d31"]["seconds"],
        "speedup_vs_a": r["unfiltered"]["seconds"] / r["d31"]["seconds"],
        "size_vs_makedumpfile": r["d31"]["bytes"] / r["makedumpfile"]["bytes"],
        "raw_size_vs_makedumpfile": r["d31-raw"]["bytes"] / r["makedumpfile"]["bytes"]}
    print(json.dumps(rep, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rep, f, indent=1)
    mb = lambda n: "%.1f MB" % (n / 1e6)  # noqa: E731
    sec = lambda v: "-" if v is None else "%.2f s" % v  # noqa: E731
    print("\n| dump | time | guest pause | bytes written | file |")
    print("|---|---|---|---|---|")
    who = "module" if a.qemu else "guestdump -restore"
    print("| %s, kdump-zlib dump-level 31 | %.2f s | %s | %s | %s |" % (
        who, r["d31"]["seconds"], sec(r["d31"]["pause"]), mb(r["d31"]["bytes"]),
        mb(r["d31"]["bytes"])))
    print("| %s, kdump-raw-zlib dump-level 31 | %.2f s | %s | %s | %s |" % (
        who, r["d31-raw"]["seconds"], sec(r["d31-raw"]["pause"]),
        mb(r["d31-raw"]["bytes"]), mb(r["d31-raw"]["bytes"])))
    print("| (a) %s, kdump-zlib unfiltered | %.2f s | %s | %s | %s |" % (
        who, r["unfiltered"]["seconds"], sec(r["unfiltered"]["pause"]),
        mb(r["unfiltered"]["bytes"]), mb(r["unfiltered"]["bytes"])))
    print("| (b) stock 7.2 ELF + makedumpfile -c -d 31 | %.2f s (%.2f + %.2f) | %s | "
          "%s (%s + %s) | %s |" % (
              b_time, r["stock-elf"]["seconds"], r["makedumpfile"]["seconds"],
              sec(r["stock-elf"]["pause"]), mb(b_bytes), mb(r["stock-elf"]["bytes"]),
              mb(r["makedumpfile"]["bytes"]), mb(r["makedumpfile"]["bytes"])))
    print("\nspeed-up against (b): %.1fx; against (a): %.1fx; file size / makedumpfile's: "
          "%.4f (flattened), %.4f (raw)" % (
              rep["summary"]["speedup_vs_b"], rep["summary"]["speedup_vs_a"],
              rep["summary"]["size_vs_makedumpfile"],
              rep["summary"]["raw_size_vs_makedumpfile"]))


if __name__ == "__main__":
    main()
