#!/usr/bin/env python3
"""guestdump-convert against makedumpfile on the same ELF vmcore, in one run.

    convert_bench.py --build BUILD [--size 2G] [--mix demo|zero|random] [--reps 1]
                     [--threads N] [--out DIR] [--json FILE]

A RAM image of --size with kdump_bench.py's page mix becomes guestdump's
guest RAM (-device loader at address 0) and is dumped once as an ELF vmcore
(dump-guest-memory, paging=false): the input. Then, each timed from exec to
exit with `sync` before and one untimed warm-up run:
  * guestdump-convert -O kdump-raw-zlib  vs  makedumpfile -c -d 0 (both write
    a plain, seekable kdump file), and guestdump-convert's default kdump-zlib
    (flattened);
  * guestdump-convert -O kdump-raw-lzo   vs  makedumpfile -l -d 0;
  * cat INPUT > copy: the disk's ceiling for reading and writing that much;
and the peak private (RssAnon) and mapped-file (RssFile) memory of one
guestdump-convert run. Printed as wall seconds (median), MB/s of guest RAM,
CPU seconds per run, and the ratio makedumpfile time / guestdump-convert
time. A benchmark, not a test.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kdump_bench import QMP, make_ram, parse_size, timed_cmd  # noqa: E402


def make_elf(build, img, size, work):
    elf = os.path.join(work, "input.elf")
    if os.path.exists(elf):
        return elf
    sock = os.path.join(work, "gd.sock")
    p = subprocess.Popen([os.path.join(build, "guestdump"), "-m", str(size >> 20), "-S",
                          "-device", f"loader,file={img},addr=0,force-raw=on",
                          "-qmp", f"unix:{sock},server=on,wait=off"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        q = QMP(sock)
        q.execute("dump-guest-memory", {"paging": False, "format": "elf",
                                        "protocol": "file:" + elf})
        q.execute("quit")
    finally:
        p.wait(timeout=60)
    return elf


def peak_memory(cmd):
    """Peak RssAnon and RssFile (KiB) of cmd, sampled every 20 ms."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = {"RssAnon": 0, "RssFile": 0}
    while p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    k = line.split(":")[0]
                    if k in peak:
                        peak[k] = max(peak[k], int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.02)
    return peak


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--size", default="2G")
    ap.add_argument("--mix", default="demo", choices=("demo", "zero", "random"))
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out")
    ap.add_argument("--json")
    a = ap.parse_args()

    size = parse_size(a.size)
    if size > 3 << 30:
        ap.error("--size up to 3G (one image at address 0 below the PCI hole)")
    work = a.out or tempfile.mkdtemp(prefix="convert-bench-", dir="/var/tmp")
    os.makedirs(work, exist_ok=True)
    img = os.path.join(work, f"ram-{a.mix}-{size}.img")
    if not os.path.exists(img):
        print(f"making {img} ...", flush=True)
        print("  pages:", make_ram(img, size, a.mix), flush=True)
    elf = make_elf(a.build, img, size, work)
    conv = [os.path.join(a.build, "guestdump-convert"), "-q", "--force"]
    if a.threads:
        conv += ["--threads", str(a.threads)]
    mdf = shutil.which("makedumpfile")
    out = os.path.join(work, "out.dump")
    runs = [
        ("guestdump-convert -O kdump-raw-zlib", conv + ["-O", "kdump-raw-zlib", elf, out]),
        ("guestdump-convert (kdump-zlib, flattened)", conv + [elf, out]),
        ("makedumpfile -c -d 0", [mdf, "-c", "-d", "0", elf, out] if mdf else None),
        ("guestdump-convert -O kdump-raw-lzo", conv + ["-O", "kdump-raw-lzo", elf, out]),
        ("makedumpfile -l -d 0", [mdf, "-l", "-d", "0", elf, out] if mdf else None),
        ("cat INPUT > copy", ["cat", elf]),
    ]
    mb = size / 1e6
    report = {"size": size, "mix": a.mix, "reps": a.reps, "cpus": os.cpu_count(),
              "input_bytes": os.path.getsize(elf), "times_s": {}}
    for name, cmd in runs:
        if not cmd:
            print(f"  {name:42} skipped (not installed)")
            continue
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = timed_cmd(cmd, a.reps, out=out)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU seconds per run (warm-up included in the average): what the
        # conversion costs whatever else loads the machine.
        cpu = ((c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)) / (a.reps + 1)
        report["times_s"][name] = t
        report.setdefault("cpu_s", {})[name] = cpu
        size_out = os.path.getsize(out) if os.path.exists(out) else 0
        print(f"  {name:42} {t:7.2f} s  {mb / t:7.1f} MB/s  cpu {cpu:6.2f} s"
              f"  -> {size_out / 1e6:8.1f} MB  (load {os.getloadavg()[0]:.1f})"
              if t else f"  {name:42} failed", flush=True)
    ts = report["times_s"]
    for codec, ours, theirs in (
            ("zlib", "guestdump-convert -O kdump-raw-zlib", "makedumpfile -c -d 0"),
            ("lzo", "guestdump-convert -O kdump-raw-lzo", "makedumpfile -l -d 0")):
        if ts.get(ours) and ts.get(theirs):
            r = ts[theirs] / ts[ours]
            report[f"ratio_{codec}"] = r
            print(f"kdump-{codec}: guestdump-convert is {r:.2f}x makedumpfile's speed")
    report["peak_kib"] = peak_memory(conv + ["-O", "kdump-raw-zlib", elf, out])
    print("guestdump-convert peak memory (KiB):", report["peak_kib"])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    if not a.out:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
