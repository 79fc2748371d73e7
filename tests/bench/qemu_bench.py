#!/usr/bin/env python3
"""Stock QEMU 7.2 against the QEMU with guestdump's module, the same guest RAM, one run.

    qemu_bench.py --build BUILD [--qemu BIN] [--stock /usr/bin/qemu-system-x86_64]
                  [--size 2G] [--mix demo|zero|random] [--reps 1] [--out DIR]
                  [--json FILE] [--markdown]

The RAM image of kdump_bench.py (--mix: demo pages, all zero or random)
becomes the RAM of both QEMUs through the same command line
(memory-backend-file, prealloc, -S, TCG); each dumps it over QMP:
kdump-zlib and ELF into a file, ELF and flattened kdump-zlib into a pipe
passed with getfd and drained by cat (libvirt's way), an untimed warm-up
first, timed from the command to its reply (and cat's end). The binary under
test is --qemu, else $GUESTDUMP_QEMU, else BUILD/qemu/qemu-system-x86_64.
Prints seconds, MB/s of guest RAM, CPU seconds and the ratio stock / module
(above 1: the module is faster); --markdown adds the table for
docs/performance.md. A benchmark, not a test: nothing passes or fails.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kdump_bench as kb  # noqa: E402

CASES = [("file", "kdump-zlib"), ("file", "elf"), ("pipe", "elf"),
         ("pipe", "kdump-zlib")]
WHAT = {("file", "kdump-zlib"): "kdump-zlib into a file",
        ("file", "elf"): "ELF into a file",
        ("pipe", "elf"): "ELF into a getfd pipe",
        ("pipe", "kdump-zlib"): "kdump-zlib (flattened) into a getfd pipe"}


def qemu_cmd(binary, img, size, sock):
    return [binary, "-nodefaults", "-display", "none", "-no-user-config",
            "-machine", "pc,memory-backend=ram", "-accel", "tcg", "-cpu", "qemu64",
            "-m", str(size >> 20), "-S", "-object",
            "memory-backend-file,id=ram,size=%d,mem-path=%s,share=off,prealloc=on"
            % (size, img), "-qmp", "unix:%s,server=on,wait=off" % sock]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--qemu")
    ap.add_argument("--stock", default="/usr/bin/qemu-system-x86_64")
    ap.add_argument("--size", default="2G")
    ap.add_argument("--mix", default="demo", choices=("demo", "zero", "random"))
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--out")
    ap.add_argument("--json")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()

    binary = a.qemu or os.environ.get("GUESTDUMP_QEMU") or os.path.join(
        a.build, "qemu", "qemu-system-x86_64")
    for b in (binary, a.stock):
        if not shutil.which(b):
            ap.error("no QEMU at %s" % b)
    size = kb.parse_size(a.size)
    if size > 3 << 30:
        ap.error("--size up to 3G (above, pc moves RAM past the PCI hole)")
    work = a.out or tempfile.mkdtemp(prefix="qemu-bench-", dir="/var/tmp")
    os.makedirs(work, exist_ok=True)
    img = os.path.join(work, "ram-%s-%d.img" % (a.mix, size))
    if not os.path.exists(img):
        print("making %s ..." % img, flush=True)
        print("  pages: %s" % kb.make_ram(img, size, a.mix))
    fmts = sorted({f for _, f in CASES})
    modes = ["file", "pipe"]
    res = {}
    for name, b in (("stock", a.stock), ("module", binary)):
        print("%s (%s):" % (name, b), flush=True)
        sock = os.path.join(work, name + ".sock")
        res[name] = kb.run_tool(name, qemu_cmd(b, img, size, sock), sock, fmts, work,
                                a.reps, modes)
    mb = size / 1e6
    print("\n%-42s %9s %9s %9s %9s %7s" % ("case (%s MB, %s)" % (int(mb), a.mix),
                                          "stock s", "module s", "stock MB/s",
                                          "mod MB/s", "ratio"))
    rows = []
    for mode, fmt in CASES:
        s, m = res["stock"][mode][fmt], res["module"][mode][fmt]
        if "median_s" not in s or "median_s" not in m:
            why = s.get("skipped") or m.get("skipped")
            print("%-42s skipped: %s" % (WHAT[(mode, fmt)], why))
            rows.append((WHAT[(mode, fmt)], None, None, None, None, None, why))
            continue
        st, mt = s["median_s"], m["median_s"]
        ratio = st / mt if mt else float("inf")
        print("%-42s %9.2f %9.2f %9.0f %9.0f %6.2fx" % (WHAT[(mode, fmt)], st, mt,
                                                     mb / st, mb / mt, ratio))
        rows.append((WHAT[(mode, fmt)], st, mt, s["cpu_s"], m["cpu_s"], ratio, None))
    if a.markdown:
        print("\n| %s MB %s guest | stock 7.2 | with guestdump's module | stock / "
              "module |" % (int(mb), a.mix))
        print("| --- | --- | --- | --- |")
        for what, st, mt, sc, mc, ratio, why in rows:
            if st is None:
                print("| %s | – | – | skipped: %s |" % (what, why))
                continue
            print("| %s | %.0f MB/s (%.2f s, cpu %.2f s) | %.0f MB/s (%.2f s, cpu "
                  "%.2f s) | %.2fx |" % (what, mb / st, st, sc, mb / mt, mt, mc, ratio))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"size": size, "mix": a.mix, "stock": a.stock, "module": binary,
                       "results": res}, f, indent=1)
    if not a.out:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
