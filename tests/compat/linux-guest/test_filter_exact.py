#!/usr/bin/env python3
"""dump-level on a real Linux guest equals makedumpfile 1.7.2 -d LEVEL, page for page.

    test_filter_exact.py --guestdump BIN --cache DIR [--keep] [--stand-in]
                         [--state NAME ...]

Boots Debian's kernel (the linux-guest test's kernel and initramfs) under QEMU
7.2 with KASLR on and off, 256 MiB and 1 GiB, while the initramfs fills memory
with ext4 file cache (pages with and without buffer heads) and a live
process's anonymous memory (gd.load=, mk_initramfs.py), and takes QEMU's
paging=false ELF (cached per state). guestdump restores it and writes its
unfiltered ELF, which makedumpfile reads (docs/compat.md ELF row 8); for each
level makedumpfile -d LEVEL of that ELF is the reference and guestdump's
kdump-raw-zlib with dump-level LEVEL must keep the same pfns (second bitmap)
with the same data and record the same dump_level (filter_diff.py; a mismatch
is reported with the guest's struct page of the first differing pfns). The
level-31 files are then read by makedumpfile --dump-dmesg, drgn and crash
(sys, bt -a, log, kmem -i). --stand-in replaces guestdump's filtered file by
makedumpfile -d LEVEL of guestdump's paging=true ELF (to exercise the harness
without dump-level). Output is TAP.
"""
import argparse
import collections
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))
import filter_diff  # noqa: E402
import guests  # noqa: E402
import mk_initramfs  # noqa: E402
import test_linux_guest as tlg  # noqa: E402

SMP = 2
ALL = (1, 2, 4, 8, 16, 31)
# name, memory, extra kernel arguments, gd.load= (file MiB without private
# data, file MiB with buffer heads, anonymous MiB), levels checked. Every
# level on the small guests; two per large one keeps the run to minutes.
STATES = [
    ("256M-nokaslr", "256M", "nokaslr", (48, 24, 24), ALL),
    ("256M-kaslr", "256M", "", (48, 24, 24), ALL),
    ("1G-kaslr", "1G", "", (256, 64, 128), (2, 31)),
    ("1G-nokaslr", "1G", "nokaslr", (256, 64, 128), (8, 16)),
]
# By hand only (--state): the benchmark's guest (tests/bench/filter_bench.py).
EXTRA_STATES = [("2G-kaslr", "2G", "", (1152, 128, 64), (31,))]
DISK_SEED = 13      # change when the disk contents below change
# crash takes about a minute per file on a loaded machine: the KASLR states,
# where its address translation has the most to get right.
CRASH_STATES = ("256M-kaslr", "1G-kaslr")


def write_disks(d, file_mb, priv_mb):
    """vda: data the guest copies into ext4 (every fifth MiB zero, so each
    class has zero pages too); vdb: blank, for the file system."""
    r = random.Random(DISK_SEED)
    vda, vdb = os.path.join(d, "vda.img"), os.path.join(d, "vdb.img")
    with open(vda, "wb") as f:
        for i in range(file_mb + priv_mb):
            f.write(bytes(1 << 20) if i % 5 == 4 else r.randbytes(1 << 20))
    with open(vdb, "wb") as f:
        f.truncate((file_mb + priv_mb + 64) << 20)
    return ["-drive", "file=%s,format=raw,if=virtio,readonly=on" % vda,
            "-drive", "file=%s,format=raw,if=virtio,snapshot=on" % vdb]


def capture(cache, kernel, initrd, state):
    """QEMU's paging=false ELF of one loaded guest state, cached by its inputs."""
    name, mem, extra, load, _ = state
    append = " ".join(filter(None, ["console=ttyS0", extra, "panic=-1",
                                    "gd.load=%d,%d,%d" % load]))
    _, ver = tlg.run([guests.qemu_binary(), "--version"], timeout=30)
    src = b""
    for f in ("guests.py", "../qemu_driver.py"):
        with open(os.path.join(HERE, f), "rb") as fh:
            src += fh.read()
    key = hashlib.sha256(json.dumps([tlg.sha256_file(kernel), tlg.sha256_file(initrd),
                                     ver, mem, SMP, append, DISK_SEED]).encode()
                         + src).hexdigest()[:16]
    out = os.path.join(cache, "capture-%s-%s" % (name, key))
    done = os.path.join(out, "capture.json")
    if os.path.exists(done):
        with open(done) as f:
            info = json.load(f)
        info["cached"] = True
        return out, info
    for old in os.listdir(cache):
        if old.startswith("capture-%s-" % name):
            shutil.rmtree(os.path.join(cache, old), ignore_errors=True)
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    disks = tempfile.mkdtemp(prefix="disks-", dir=cache)
    try:
        args = write_disks(disks, load[0], load[1])
        info = guests.boot_linux_and_dump(kernel, initrd, append, tmp,
                                          [("qemu.elf", "elf", False)], mem=mem,
                                          smp=SMP, marker=mk_initramfs.READY_MARKER,
                                          boot_timeout=900, extra_args=args)
    finally:
        shutil.rmtree(disks, ignore_errors=True)
    info["append"] = append
    info["cached"] = False
    if any(info["errors"].values()):
        return tmp, info
    with open(done.replace(out, tmp), "w") as f:
        json.dump(info, f, indent=1)
    os.rename(tmp, out)
    return out, info


def meminfo(serial):
    """The guest's /proc/meminfo lines printed after gd.load, in kB."""
    with open(serial, errors="replace") as f:
        text = f.read()
    tail = text.split("gd.load done:")[-1] if "gd.load done:" in text else ""
    return {k: int(v) for k, v in re.findall(r"^(\w+): +(\d+) kB", tail, re.M)}


def mdf(args, timeout=900):
    return tlg.run(["makedumpfile"] + args, timeout=timeout)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--guestdump", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--stand-in", action="store_true")
    ap.add_argument("--state", action="append", help="only these states")
    a = ap.parse_args(argv)

    if not guests.qemu_binary():
        return tlg.skip_all("qemu-system-x86_64 not installed (Debian: qemu-system-x86)")
    if not shutil.which("makedumpfile"):
        return tlg.skip_all("makedumpfile not installed")
    cache = os.path.abspath(os.environ.get("GUESTDUMP_TEST_CACHE") or a.cache)
    os.makedirs(cache, exist_ok=True)
    t = tlg.Tap()
    t0 = time.monotonic()
    k, why = tlg.prepare_kernel(cache, t)
    if not k:
        return tlg.skip_all(why) if why else t.finish()
    kver, root = k
    kernel = os.path.join(root, "boot", "vmlinuz-" + kver)
    # Our own folder: linux-guest prunes its initramfs and captures by prefix.
    mine = os.path.join(cache, "filter-exact")
    os.makedirs(mine, exist_ok=True)
    initrd, why = tlg.prepare_initrd(mine, kver, root)
    if not initrd:
        return tlg.skip_all(why)
    for m in mk_initramfs.LOAD_MODULES:
        if not t.ok(mk_initramfs.find_module(root, kver, m),
                    "the unpacked kernel has %s.ko for the loaded guest" % m,
                    "get-kernel.sh keeps it; remove %s to unpack again" % root):
            return t.finish()

    states = [s for s in STATES + EXTRA_STATES
              if s[0] in (a.state or [x[0] for x in STATES])]
    for state in states:
        run_state(a, t, mine, kver, kernel, initrd, state)
    t.diag("total %.1f s" % (time.monotonic() - t0))
    return t.finish()


def run_state(a, t, cache, kver, kernel, initrd, state):
    name, mem, extra, load, levels = state
    t1 = time.monotonic()
    try:
        qdir, info = capture(cache, kernel, initrd, state)
    except (guests.DriverError, OSError, subprocess.SubprocessError, ValueError) as e:
        t.ok(False, "%s: QEMU 7.2 boots the loaded guest and dumps it" % name, str(e))
        return
    if not t.ok(not any(info["errors"].values()),
                "%s: QEMU 7.2 boots the loaded guest and dumps it (%s, boot %.1f s)" % (
                    name, "cached" if info["cached"] else "captured now",
                    info["boot_s"]), json.dumps(info["errors"])):
        return
    mi = meminfo(os.path.join(qdir, "serial.log"))
    t.ok(mi.get("Cached", 0) >= (load[0] + load[1]) * 1024
         and mi.get("AnonPages", 0) >= load[2] * 1024 * 3 // 4,
         "%s: the guest holds its load (Cached %d kB >= %d MiB, AnonPages %d kB ~ "
         "%d MiB, MemFree %d kB)" % (name, mi.get("Cached", 0), load[0] + load[1],
                                     mi.get("AnonPages", 0), load[2],
                                     mi.get("MemFree", 0)), json.dumps(mi))
    q_elf = os.path.join(qdir, "qemu.elf")
    vmci = tlg.elf_vmcoreinfo(q_elf)
    offset = int(vmci.get("KERNELOFFSET", "0"), 16)
    t.ok(vmci.get("OSRELEASE") == kver and (offset != 0) == ("nokaslr" not in extra),
         "%s: VMCOREINFO of %s, KERNELOFFSET 0x%x, phys_base %d" % (
             name, kver, offset, int(vmci.get("NUMBER(phys_base)", "0"))),
         "OSRELEASE %r, KERNELOFFSET %r" % (vmci.get("OSRELEASE"), vmci.get("KERNELOFFSET")))

    work = tempfile.mkdtemp(prefix="filter-exact-%s-" % name, dir=cache)
    try:
        check_levels(a, t, work, name, kver, vmci, q_elf, levels)
    finally:
        if a.keep:
            t.diag("%s: outputs kept in %s" % (name, work))
        else:
            shutil.rmtree(work, ignore_errors=True)
    t.diag("%s: %.1f s" % (name, time.monotonic() - t1))


def check_levels(a, t, work, name, kver, vmci, q_elf, levels):
    elf = os.path.join(work, "ours.elf")
    pelf = os.path.join(work, "ours-paging.elf")
    filtered = {}
    try:
        emu = guests.Guestdump(a.guestdump, q_elf)
    except (guests.DriverError, OSError, ValueError) as e:
        t.ok(False, "%s: guestdump starts with -restore of QEMU's ELF" % name, str(e))
        return
    try:
        err = emu.dump(elf, "elf")
        if not t.ok(err is None, "%s: guestdump writes the unfiltered ELF" % name, err):
            return
        if a.stand_in:
            err = emu.dump(pelf, "elf", True)
            t.ok(err is None, "%s: (stand-in) guestdump writes the paging=true ELF" % name,
                 err)
        for lvl in levels + ((31,) if 31 not in levels else ()):
            if a.stand_in:
                continue
            for fmt in ("kdump-raw-zlib",) + (("kdump-zlib",) if lvl == 31 else ()):
                path = os.path.join(work, "ours-d%d.%s" % (lvl, fmt))
                t1 = time.monotonic()
                err = emu.dump(path, fmt, **{"dump-level": lvl})
                if t.ok(err is None and os.path.exists(path),
                        "%s: guestdump writes %s with dump-level %d (%.1f s)" % (
                            name, fmt, lvl, time.monotonic() - t1), err):
                    filtered[(lvl, fmt)] = path
    finally:
        log = emu.stop()
        t.ok(emu.proc.returncode == 0, "%s: guestdump exits cleanly" % name,
             tlg.tail(log))

    total = None
    for lvl in levels:
        ref = os.path.join(work, "mdf-d%d.kdump" % lvl)
        t1 = time.monotonic()
        rc, msg = mdf(["-d", str(lvl), elf, ref])
        if not t.ok(rc == 0 and os.path.exists(ref),
                    "%s: makedumpfile -d %d of guestdump's ELF (%.1f s)" % (
                        name, lvl, time.monotonic() - t1), tlg.tail(msg)):
            continue
        ours = filtered.get((lvl, "kdump-raw-zlib"))
        if a.stand_in:
            ours = os.path.join(work, "stand-in-d%d.kdump" % lvl)
            rc, msg = mdf(["-d", str(lvl), pelf, ours])
            if rc:
                t.ok(False, "%s: (stand-in) makedumpfile -d %d of the paging=true ELF"
                     % (name, lvl), tlg.tail(msg))
                continue
        if not ours:
            continue
        try:
            refk = filter_diff.Kdump(ref)
            total = total or len(filter_diff.bitmap_pfns(refk.bitmap1, refk.max_mapnr))
            # The level must bite on this guest, or equality proves nothing.
            dropped = total - len(refk.pfns)
            # Level 1 keeps every bit (zero pages share one descriptor).
            shared = 0
            if lvl & 1:
                offs = collections.Counter(refk.desc(p)[0] for p in refk.pfns)
                shared = offs.most_common(1)[0][1] if offs else 0
            t.ok(dropped > 1000 or (lvl == 1 and shared > 1000),
                 "%s: makedumpfile -d %d drops %d of %d pages here%s" % (
                     name, lvl, dropped, total,
                     " (%d zero pages share one descriptor)" % shared if lvl == 1 else ""))
            t1 = time.monotonic()
            equal, report = filter_diff.compare(ref, ours, elf)
        except (filter_diff.KdumpError, OSError, ValueError) as e:
            t.ok(False, "%s: dump-level %d keeps makedumpfile's pages" % (name, lvl),
                 str(e))
            continue
        t.ok(equal, "%s: dump-level %d keeps exactly the pages makedumpfile -d %d keeps, "
             "with the same data (%s; %.1f s)" % (
                 name, lvl, lvl, report.splitlines()[0], time.monotonic() - t1),
             report)

    d31 = filtered.get((31, "kdump-raw-zlib"))
    if d31:
        # makedumpfile -c is zlib at the same level: the whole file, headers
        # and compressed pages, should be what makedumpfile writes.
        conv = os.path.join(work, "mdf-c-d31.kdump")
        rc, msg = mdf(["-c", "-d", "31", elf, conv])
        same = rc == 0 and tlg.sha256_file(conv) == tlg.sha256_file(d31)
        t.ok(same, "%s: dump-level 31 kdump-raw-zlib is byte-identical to makedumpfile "
             "-c -d 31 of the ELF (%d bytes)" % (name, os.path.getsize(d31)),
             tlg.tail(msg) if rc else "sizes: ours %d, makedumpfile's %d" % (
                 os.path.getsize(d31), os.path.getsize(conv)))
        # The offline converter goes through the same dump-level, straight
        # from QEMU's ELF: the same bytes again.
        conv = os.path.join(os.path.dirname(os.path.abspath(a.guestdump)),
                            "guestdump-convert")
        out = os.path.join(work, "convert-d31.kdump")
        p = subprocess.run([conv, "-q", "-O", "kdump-raw-zlib", "-d", "31", "-f",
                            q_elf, out], capture_output=True, text=True)
        t.ok(p.returncode == 0 and os.path.exists(out) and
             tlg.sha256_file(out) == tlg.sha256_file(d31),
             "%s: guestdump-convert -d 31 of QEMU's ELF writes the same bytes" % name,
             p.stderr.strip())
    flat = filtered.get((31, "kdump-zlib"))
    if flat and d31:
        r = flat + ".reassembled"
        ok, msg = tlg.reassemble(flat, r)
        t.ok(ok and tlg.sha256_file(r) == tlg.sha256_file(d31),
             "%s: makedumpfile -R of dump-level 31 kdump-zlib equals the kdump-raw-zlib"
             % name, msg)
    if d31:
        check_readers(t, work, name, kver, vmci, elf, d31)


def check_readers(t, work, name, kver, vmci, elf, d31):
    what = "%s dump-level 31" % name
    ok, ref_log = tlg.dmesg(elf, work)
    ok2, log = tlg.dmesg(d31, work)
    t.ok(ok and ok2 and log == ref_log and mk_initramfs.KMSG_MARKER in log,
         "%s: makedumpfile --dump-dmesg reads the unfiltered ELF's log" % what,
         tlg.tail(log) if not ok2 else tlg.diff_hint(ref_log or "", log))

    if not tlg.have_module("drgn"):
        t.skip("%s: drgn" % what, "python3-drgn not installed")
    else:
        g = filter_diff.Guest(elf)
        ranges, want = [], {}
        for sym, n in (("init_uts_ns", 400), ("_stext", 64)):
            addr = int(vmci.get("SYMBOL(%s)" % sym, "0"), 16)
            if addr:
                r = "0x%x:%d" % (addr, n)
                ranges.append(r)
                want[r] = g.phys(g.v2p(addr), n).hex()
        res, out = tlg.reader("drgn", d31, *ranges)
        t.ok(res is not None and res["is_linux_kernel"] and res["reads"] == want
             and kver.encode().hex() in want.get(ranges[0], ""),
             "%s: drgn opens it and reads init_uts_ns and _stext as in the ELF" % what,
             json.dumps(res)[:600] if res else tlg.tail(out))

    if name not in CRASH_STATES:
        return
    if not shutil.which("crash"):
        t.skip("%s: crash" % what, "crash not installed")
        return
    vmlinux = tlg.prepare_vmlinux(t, kver, vmci, os.path.dirname(elf))
    if not vmlinux:
        return
    t1 = time.monotonic()
    rc, out = tlg.run(["crash", "-s", vmlinux, d31],
                      input="sys\nbt -a\nlog\nkmem -i\nquit\n", timeout=900)
    if not t.ok(rc == 0, "%s: crash opens it (%.1f s)" % (what, time.monotonic() - t1),
                tlg.tail(out)):
        return
    sysinfo = dict(re.findall(r"^ *([A-Z ]+?): (.*)$", out, re.M))
    t.ok(sysinfo.get("RELEASE") == kver and sysinfo.get("CPUS") == str(SMP),
         "%s: crash sys: RELEASE %s, CPUS %d" % (what, kver, SMP),
         "RELEASE=%r CPUS=%r" % (sysinfo.get("RELEASE"), sysinfo.get("CPUS")))
    frames, cpu = {}, None
    for line in out.splitlines():
        m = re.match(r"PID: +\d+ +TASK: +[0-9a-f]+ +CPU: +(\d+)", line)
        if m:
            cpu = int(m.group(1))
            frames.setdefault(cpu, 0)
        elif cpu is not None and tlg.FRAME.match(line):
            frames[cpu] += 1
    t.ok(sorted(frames) == list(range(SMP)) and all(frames.values()),
         "%s: crash bt -a: a backtrace for each of the %d vCPUs" % (what, SMP),
         "frames per CPU: %r" % frames)
    t.ok("] Linux version %s " % kver in out and mk_initramfs.KMSG_MARKER in out,
         "%s: crash log: the boot banner and the marker" % what, tlg.tail(out))
    m = re.search(r"^\s*TOTAL MEM\s+(\d+)", out, re.M)
    f = re.search(r"^\s*FREE\s+(\d+)", out, re.M)
    t.ok(m and f and int(m.group(1)) > 0 and 0 < int(f.group(1)) < int(m.group(1))
         and "kmem: " not in out,
         "%s: crash kmem -i: TOTAL MEM %s pages, FREE %s" % (
             what, m.group(1) if m else "?", f.group(1) if f else "?"),
         tlg.tail(out, 30))


if __name__ == "__main__":
    sys.exit(main())
