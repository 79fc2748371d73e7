#!/usr/bin/env python3
"""A real Linux guest end to end: QEMU 7.2 vmcore -> guestdump -restore -> readers.

    test_linux_guest.py --guestdump BIN --cache DIR [--convert BIN] [--keep]

Boots Debian's kernel (unpacked, not installed) with our busybox initramfs
under real QEMU 7.2, takes its ELF (paging off and on) and kdump-zlib dumps,
restores the ELF into guestdump, dumps every format guestdump offers and
checks the outputs with makedumpfile, libkdumpfile, drgn and crash, against
what the same tools read from QEMU's dumps. With --convert, guestdump-convert
turns QEMU's ELF into kdump-zlib too: the bytes -restore + dump-guest-memory
wrote, read by makedumpfile --dump-dmesg, drgn and crash. The kernel, the initramfs and
QEMU's dumps are cached in DIR; the debug vmlinux crash needs in
$GUESTDUMP_CACHE (get-kernel-dbg.sh). Output is TAP; a missing tool skips the
checks that need it, and a missing QEMU or kernel package skips everything.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True      # keep the source tree clean when meson runs us
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))
import elf_compare  # noqa: E402
import guests  # noqa: E402
import mk_initramfs  # noqa: E402

SYS_PY = "/usr/bin/python3"     # the python that has Debian's drgn and libkdumpfile
MEM = "96M"
SMP = 2
APPEND = "console=ttyS0 nokaslr panic=-1"
QEMU_DUMPS = [("qemu.elf", "elf", False), ("qemu-paging.elf", "elf", True),
              ("qemu.kdump", "kdump-zlib", False)]


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = []

    def diag(self, text):
        for line in str(text).splitlines() or [""]:
            print("# " + line, flush=True)

    def ok(self, cond, desc, diag=None):
        self.n += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, desc), flush=True)
        if not cond:
            self.failed.append(desc)
            if diag:
                self.diag(diag)
        return cond

    def skip(self, desc, reason):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, desc, reason), flush=True)

    def finish(self):
        print("1..%d" % self.n, flush=True)
        return 1 if self.failed else 0


def skip_all(reason):
    print("1..0 # SKIP %s" % reason, flush=True)
    return 0


# meson sets MALLOC_PERTURB_ to catch our memory bugs; drgn with libkdumpfile
# (Debian 12) segfaults under it, so the outside readers run without it.
TOOL_ENV = {k: v for k, v in os.environ.items() if k != "MALLOC_PERTURB_"}


def run(argv, timeout=300, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       env=TOOL_ENV, **kw)
    return p.returncode, (p.stdout + p.stderr).strip()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tail(text, n=12, width=300):
    return "\n".join(line[:width] for line in text.splitlines()[-n:])


# ---- ELF facts the checks need (read here, not by the tools under test) ----

def elf_vmcoreinfo(path):
    """The VMCOREINFO note's text as a dict, or {} when the dump has none."""
    for name, desc in elf_compare.Elf(path).notes():
        if name == b"VMCOREINFO":
            kv = {}
            for line in desc.decode(errors="replace").splitlines():
                k, sep, v = line.partition("=")
                if sep:
                    kv[k] = v
            return kv
    return {}


def elf_load_layout(path):
    """[(paddr, memsz)] of the PT_LOADs: the guest's RAM blocks when paging=false."""
    return [(p["paddr"], p["memsz"]) for p in elf_compare.Elf(path).phdrs
            if p["type"] == elf_compare.PT_LOAD]


def elf_memory_runs(path):
    """[(start, length, sha256)] of the runs of contiguous PT_LOADs: the memory,
    whatever the segments' boundaries (a kdump file keeps none)."""
    e = elf_compare.Elf(path)
    runs = []
    for p in sorted((p for p in e.phdrs if p["type"] == elf_compare.PT_LOAD
                     and p["filesz"]), key=lambda p: p["paddr"]):
        data = e.data[p["offset"]:p["offset"] + p["filesz"]]
        if runs and runs[-1][0] + runs[-1][1] == p["paddr"]:
            runs[-1][1] += p["filesz"]
            runs[-1][2].update(data)
        else:
            runs.append([p["paddr"], p["filesz"], hashlib.sha256(data)])
    return [(a, n, h.hexdigest()) for a, n, h in runs]


# ---- preparing the guest (cached) ----

def prepare_kernel(cache, t):
    p = subprocess.run(["sh", os.path.join(HERE, "get-kernel.sh"), cache],
                       capture_output=True, text=True, timeout=900)
    if p.returncode == 77:
        return None, "kernel package unavailable: " + tail(p.stderr, 2)
    if p.returncode != 0:
        t.ok(False, "Debian kernel package fetched and unpacked", p.stderr)
        return None, None
    kver, root = p.stdout.split()
    return (kver, root), None


def prepare_initrd(cache, kver, root):
    with open(os.path.join(HERE, "mk_initramfs.py"), "rb") as f:
        key = hashlib.sha256(f.read() + kver.encode()).hexdigest()[:16]
    path = os.path.join(cache, "initrd-%s-%s.gz" % (kver, key))
    if os.path.exists(path):
        return path, None
    for old in os.listdir(cache):
        if old.startswith("initrd-") and old.endswith(".gz"):
            os.unlink(os.path.join(cache, old))
    rc = mk_initramfs.main([path, "--modroot", root, "--kver", kver])
    if rc == 77:
        return None, "no static busybox or qemu_fw_cfg module (busybox-static)"
    if rc:
        return None, "mk_initramfs failed"
    return path, None


def capture_qemu(cache, kernel, initrd, t):
    """QEMU's dumps of the booted guest, taken once per kernel/initrd/QEMU."""
    _, ver = run([guests.qemu_binary(), "--version"], timeout=30)
    driver = b""
    for f in ("guests.py", "../qemu_driver.py"):
        with open(os.path.join(HERE, f), "rb") as fh:
            driver += fh.read()
    key = hashlib.sha256(json.dumps([sha256_file(kernel), sha256_file(initrd), ver, MEM,
                                     SMP, APPEND, QEMU_DUMPS]).encode() + driver
                         ).hexdigest()[:16]
    out = os.path.join(cache, "qemu-capture-" + key)
    done = os.path.join(out, "capture.json")
    if os.path.exists(done):
        with open(done) as f:
            info = json.load(f)
        info["cached"] = True
        return out, info
    for old in os.listdir(cache):
        if old.startswith("qemu-capture-"):
            shutil.rmtree(os.path.join(cache, old), ignore_errors=True)
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    info = guests.boot_linux_and_dump(kernel, initrd, APPEND, tmp, QEMU_DUMPS,
                                      mem=MEM, smp=SMP,
                                      marker=mk_initramfs.READY_MARKER)
    info["qemu_version"] = ver
    info["cached"] = False
    if any(info["errors"].values()):
        return tmp, info        # a failed capture is reported, never reused
    with open(os.path.join(tmp, "capture.json"), "w") as f:
        json.dump(info, f, indent=1)
    os.rename(tmp, out)
    return out, info


# ---- tools ----

def dmesg(dump, work):
    """makedumpfile --dump-dmesg: (ok, log text or error output)."""
    out = os.path.join(work, os.path.basename(dump) + ".dmesg")
    if os.path.exists(out):
        os.unlink(out)
    rc, msg = run(["makedumpfile", "--dump-dmesg", dump, out])
    if rc != 0 or not os.path.exists(out):
        return False, msg
    with open(out, errors="replace") as f:
        return True, f.read()


def copy_in_phys_order(src, dst):
    """Copies an ELF vmcore, putting its last PT_LOAD back where QEMU's order
    (phys ascending) has it. False when it already was in that order."""
    e = elf_compare.Elf(src)
    size = e.phentsize
    raw = [bytes(e.data[e.phoff + i * size:e.phoff + (i + 1) * size])
           for i in range(len(e.phdrs))]
    phys = [p["paddr"] for p in e.phdrs]
    if len(raw) < 3 or phys[-1] >= phys[-2]:
        return False
    last = raw.pop()
    at = next(i for i in range(1, len(raw)) if phys[i] >= phys[-1])
    raw.insert(at, last)
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as f:
        f.seek(e.phoff)
        f.write(b"".join(raw))
    return True


def reassemble(flat, out):
    if os.path.exists(out):
        os.unlink(out)
    with open(flat, "rb") as fi:
        p = subprocess.run(["makedumpfile", "-R", out], stdin=fi, capture_output=True,
                           text=True, timeout=300, env=TOOL_ENV)
    return p.returncode == 0 and os.path.exists(out), (p.stdout + p.stderr).strip()


def reader(kind, *args):
    rc, out = run([SYS_PY, os.path.join(HERE, "readers.py"), kind] + list(args),
                  timeout=600)
    if rc != 0:
        return None, "%s\n(%s exited with status %d)" % (out, kind, rc)
    try:
        return json.loads(out.splitlines()[-1]), out
    except (ValueError, IndexError):
        return None, out


def have_module(mod):
    if not os.path.exists(SYS_PY):
        return False
    p = subprocess.run([SYS_PY, "-c", "import " + mod], capture_output=True,
                       env=TOOL_ENV)
    return p.returncode == 0


# ---- the checks ----

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--guestdump", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--keep", action="store_true", help="keep guestdump's outputs")
    ap.add_argument("--convert", help="guestdump-convert: also check its kdump-zlib")
    a = ap.parse_args(argv)

    if not guests.qemu_binary():
        return skip_all("qemu-system-x86_64 not installed (Debian: qemu-system-x86)")
    # One cache for several build dirs saves the download and the QEMU boot.
    cache = os.path.abspath(os.environ.get("GUESTDUMP_TEST_CACHE") or a.cache)
    os.makedirs(cache, exist_ok=True)
    t = Tap()
    t0 = time.monotonic()

    k, why = prepare_kernel(cache, t)
    if not k:
        return skip_all(why) if why else t.finish()
    kver, root = k
    kernel = os.path.join(root, "boot", "vmlinuz-" + kver)
    initrd, why = prepare_initrd(cache, kver, root)
    if not initrd:
        return skip_all(why)

    try:
        qdir, info = capture_qemu(cache, kernel, initrd, t)
    except (guests.DriverError, OSError, subprocess.SubprocessError, ValueError) as e:
        t.ok(False, "QEMU 7.2 boots the Linux guest and dumps it", str(e))
        return t.finish()
    t.diag("kernel %s; QEMU dumps %s (boot %.1f s)" % (
        kver, "cached" if info["cached"] else "captured now", info["boot_s"]))
    for name, fmt, paging in QEMU_DUMPS:
        err = info["errors"].get(name)
        t.ok(err is None, "QEMU dumps the booted guest as %s%s" %
             (fmt, " paging=true" if paging else ""), err)
    q_elf = os.path.join(qdir, "qemu.elf")
    q_pelf = os.path.join(qdir, "qemu-paging.elf")
    q_kdump = os.path.join(qdir, "qemu.kdump")
    vmci = elf_vmcoreinfo(q_elf)
    if not t.ok(vmci.get("OSRELEASE") == kver,
                "QEMU's ELF carries the guest's VMCOREINFO (qemu_fw_cfg reported it)",
                "VMCOREINFO: %r" % sorted(vmci)[:10]):
        return t.finish()

    work = tempfile.mkdtemp(prefix="linux-guest-", dir=cache)
    try:
        run_checks(a, t, work, kver, vmci, q_elf, q_pelf, q_kdump)
    finally:
        if a.keep:
            t.diag("outputs kept in " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    t.diag("total %.1f s" % (time.monotonic() - t0))
    return t.finish()


def run_checks(a, t, work, kver, vmci, q_elf, q_pelf, q_kdump):
    have_mdf = shutil.which("makedumpfile") is not None
    no_mdf = "makedumpfile not installed"

    # The reference kernel log: what makedumpfile reads from QEMU's own kdump.
    ref_log = None
    if have_mdf:
        q_raw = os.path.join(work, "qemu-reassembled.kdump")
        ok, msg = reassemble(q_kdump, q_raw)
        if t.ok(ok, "makedumpfile -R reassembles QEMU's kdump-zlib", msg):
            ok, ref_log = dmesg(q_raw, work)
            t.ok(ok and mk_initramfs.KMSG_MARKER in ref_log,
                 "makedumpfile --dump-dmesg reads the guest's log from QEMU's "
                 "kdump-zlib",
                 tail(ref_log or ""))
            if not ok:
                ref_log = None
        ok, msg = dmesg(q_elf, work)
        t.ok(not ok and "Can't get the number of PT_LOAD" in msg,
             "makedumpfile cannot read QEMU 7.2's ELF (section headers first): "
             "'Can't get the number of PT_LOAD'",
             "makedumpfile said: " + tail(msg, 4))
    else:
        t.skip("kernel log from QEMU's dumps", no_mdf)

    try:
        emu = guests.Guestdump(a.guestdump, q_elf)
    except (guests.DriverError, OSError, ValueError) as e:
        t.ok(False, "guestdump starts with -restore of QEMU's ELF vmcore", str(e))
        return
    outs = {}
    try:
        t.ok(True, "guestdump starts with -restore of QEMU's ELF vmcore")
        caps = emu.qmp.execute("query-dump-guest-memory-capability")
        fmts = [f for f in caps.get("formats", []) if f.startswith(("elf", "kdump"))]
        plan = [("ours.elf", "elf", False), ("ours-paging.elf", "elf", True)]
        plan += [("ours-%s.kdump" % f, f, False) for f in fmts if f != "elf"]
        for name, fmt, paging in plan:
            path = os.path.join(work, name)
            t1 = time.monotonic()
            try:
                err = emu.dump(path, fmt, paging)
            except (guests.DriverError, OSError, ValueError) as e:
                err = str(e)
            if t.ok(err is None and os.path.exists(path),
                    "guestdump writes %s%s of the restored guest (%.1f s)" % (
                        fmt, " paging=true" if paging else "", time.monotonic() - t1),
                    err or "no output file"):
                outs[(fmt, paging)] = path
    finally:
        log = emu.stop()
        t.ok(emu.proc.returncode == 0, "guestdump exits cleanly on quit",
             "exit status %s: %s" % (emu.proc.returncode, tail(log)))

    elf = outs.get(("elf", False))
    pelf = outs.get(("elf", True))
    if elf:
        # Without this, every later check could pass on some other guest.
        ql, ol = elf_load_layout(q_elf), elf_load_layout(elf)
        t.ok(ql == ol, "guestdump -restore recreates QEMU's RAM blocks",
             "QEMU %s\nours %s" % ([(hex(a), hex(b)) for a, b in ql],
                                   [(hex(a), hex(b)) for a, b in ol]))
        t.ok(elf_vmcoreinfo(elf) == vmci,
             "guestdump's dump of the restored guest carries the guest's VMCOREINFO")
    kdumps = {f: p for (f, paging), p in outs.items() if f.startswith("kdump")}
    # Plain (seekable) kdump files by format: the raw outputs now, the
    # reassembled flattened ones once makedumpfile -R has run.
    raws = {f: p for f, p in kdumps.items() if f.startswith("kdump-raw-")}

    # Restore fidelity, seen through the ELF comparison that allows only the
    # documented corrections.
    cmp_tool = os.path.join(HERE, "..", "elf_compare.py")
    if elf and os.path.exists(cmp_tool):
        for q, o, what in ((q_elf, elf, "paging=false"), (q_pelf, pelf, "paging=true")):
            if not o:
                continue
            rc, msg = run([sys.executable, cmp_tool, q, o])
            t.ok(rc == 0, "guestdump's %s ELF of the restored guest equals QEMU's "
                 "except docs/compat.md's corrections (elf_compare.py)" % what,
                 tail(msg))

    # makedumpfile: the kernel log from every output equals QEMU's.
    if not have_mdf:
        t.skip("makedumpfile reads guestdump's outputs", no_mdf)
    else:
        for fmt, path in sorted(kdumps.items()):
            if fmt.startswith("kdump-raw-"):
                raws[fmt] = path
                continue
            r = path + ".reassembled"
            ok, msg = reassemble(path, r)
            if t.ok(ok, "makedumpfile -R reassembles guestdump's %s" % fmt, msg):
                raws[fmt] = r
                twin = kdumps.get(fmt.replace("kdump-", "kdump-raw-"))
                if twin:
                    t.ok(sha256_file(r) == sha256_file(twin),
                         "makedumpfile -R of %s is byte-identical to guestdump's %s" % (
                             fmt, fmt.replace("kdump-", "kdump-raw-")))
        q_raw = os.path.join(work, "qemu-reassembled.kdump")
        ours = raws.get("kdump-raw-zlib") or raws.get("kdump-zlib")
        if ours and os.path.exists(q_raw):
            check_kdump_vs_qemu(t, q_raw, ours, kver)
        # The paging=true ELF reads only with the direct map's PT_LOAD last
        # (docs/compat.md ELF row 8): makedumpfile takes PAGE_OFFSET from it.
        logs = [("ELF", elf), ("paging=true ELF", pelf)]
        logs += [(f, raws[f]) for f in sorted(raws)]
        for what, path in logs:
            if not path:
                continue
            ok, text = dmesg(path, work)
            if not ok and "compression unsupported" in text:
                # Debian builds makedumpfile without snappy and zstd. What it must
                # do then is recognise the codec our header names and refuse it;
                # the page-by-page libkdumpfile check below reads these outputs.
                t.ok(what.endswith(("snappy", "zstd")),
                     "makedumpfile names the codec of guestdump's %s, which Debian "
                     "builds it without" % what, text)
                continue
            if ref_log is None:
                t.ok(ok and mk_initramfs.KMSG_MARKER in text,
                     "makedumpfile --dump-dmesg reads the guest's log from "
                     "guestdump's %s" % what, tail(text))
            else:
                t.ok(ok and text == ref_log,
                     "makedumpfile --dump-dmesg of guestdump's %s equals the log "
                     "from QEMU's kdump-zlib" % what,
                     tail(text) if not ok else diff_hint(ref_log, text))
        if elf:
            conv = os.path.join(work, "ours-d31.kdump")
            rc, msg = run(["makedumpfile", "-c", "-d", "31", elf, conv])
            if t.ok(rc == 0 and os.path.exists(conv),
                    "makedumpfile -c -d 31 converts guestdump's ELF", tail(msg)):
                ok, text = dmesg(conv, work)
                t.ok(ok and (text == ref_log if ref_log else
                             mk_initramfs.KMSG_MARKER in text),
                     "the converted -d 31 dump holds the same kernel log", tail(text))
        if pelf:
            # Why compat.md ELF row 8 exists: the same file with its PT_LOADs
            # in QEMU's physical order does not read.
            qorder = os.path.join(work, "ours-paging-qemu-order.elf")
            moved = copy_in_phys_order(pelf, qorder)
            ok, text = dmesg(qorder, work)
            t.ok(moved and not ok and "Could not validate mem_section" in text,
                 "makedumpfile cannot read guestdump's paging=true ELF with its "
                 "PT_LOADs in QEMU's order: 'Could not validate mem_section'",
                 "moved: %s; makedumpfile said: %s" % (moved, tail(text, 4)))
            os.unlink(qorder)

    if elf:
        check_kdump_restores(a, t, work, q_kdump, elf, have_mdf, ref_log)

    # libkdumpfile: every raw kdump output opens and every page matches the ELF.
    if not have_module("kdumpfile"):
        t.skip("libkdumpfile opens guestdump's raw kdump outputs",
               "python3-libkdumpfile not installed")
    elif elf:
        for fmt, path in sorted(kdumps.items()):
            if not fmt.startswith("kdump-raw-"):
                continue
            res, out = reader("kdumpfile", path, elf)
            good = res and res["pages"] > 0 and res["equal"] == res["pages"]
            t.ok(bool(good), "libkdumpfile opens guestdump's %s and its %s pages equal "
                 "the ELF's" % (fmt, res["pages"] if res else "?"),
                 json.dumps(res) if res else tail(out))
            if res:
                t.ok(res.get("arch.name") == "x86_64",
                     "libkdumpfile learns the architecture of guestdump's %s" % fmt,
                     "arch.name=%r linux.uts.release=%r" % (
                         res.get("arch.name"), res.get("linux.uts.release")))

    # drgn: guestdump's paging=true ELF reads as QEMU's does.
    if not have_module("drgn"):
        t.skip("drgn opens guestdump's paging=true ELF", "python3-drgn not installed")
    elif pelf:
        # Debian's System.map is a stub (the real one is in the -dbg package), so
        # the known addresses come from VMCOREINFO: init_uts_ns holds the
        # release string, _stext the first kernel code bytes.
        ranges, must_hold = [], {}
        uts = int(vmci.get("SYMBOL(init_uts_ns)", "0"), 16)
        if uts:
            ranges.append("0x%x:400" % uts)
            must_hold[ranges[-1]] = kver.encode()
        stext = int(vmci.get("SYMBOL(_stext)", "0"), 16)
        if stext:
            ranges.append("0x%x:64" % stext)
        qres, qout = reader("drgn", q_pelf, *ranges)
        ores, oout = reader("drgn", pelf, *ranges)
        t.ok(ores is not None and ores["arch"] == "Architecture.X86_64"
             and ores["is_linux_kernel"],
             "drgn opens guestdump's paging=true ELF as an x86-64 Linux kernel core",
             json.dumps(ores) if ores else tail(oout))
        t.ok(qres is not None, "drgn opens QEMU's paging=true ELF (the reference)",
             tail(qout))
        if ores and qres:
            t.ok({k: v for k, v in ores.items() if k != "reads"} ==
                 {k: v for k, v in qres.items() if k != "reads"},
                 "drgn sees the same platform in guestdump's and QEMU's paging ELF",
                 "ours %s\nqemu %s" % (json.dumps(ores), json.dumps(qres)))
            for r in ranges:
                got = ores["reads"].get(r, "")
                want = qres["reads"].get(r, "")
                data = bytes.fromhex(got) if not got.startswith("error") else b""
                t.ok(got == want and len(data) == int(r.split(":")[1])
                     and must_hold.get(r, b"") in data,
                     "drgn reads the kernel at %s from guestdump's dump as from QEMU's%s"
                     % (r, " (holds %s)" % kver if r in must_hold else ""),
                     "ours %s\nqemu %s" % (got[:120], want[:120]))

        # QEMU 7.2's kdump leaves utsname.machine empty, so libkdumpfile cannot
        # name the architecture and drgn refuses the file; ours must open.
        qraw = os.path.join(work, "qemu-reassembled.kdump")
        if os.path.exists(qraw):
            res, out = reader("drgn", qraw)
            t.diag("drgn on QEMU 7.2's reassembled kdump-zlib: %s" % (
                "opens" if res else tail(out, 2).replace("\n", " ")))
        for fmt, path in sorted(raws.items()):
            res, out = reader("drgn", path, *ranges)
            good = (res is not None and res["arch"] == "Architecture.X86_64"
                    and res["is_linux_kernel"] and qres is not None
                    and res["reads"] == qres["reads"])
            t.ok(good, "drgn (through libkdumpfile) opens guestdump's %s%s and reads "
                 "the same kernel bytes as from QEMU's ELF" % (
                     fmt, "" if fmt.startswith("kdump-raw-") else " (reassembled)"),
                 json.dumps(res)[:600] if res else tail(out))

    converted = check_convert(a, t, work, q_elf, q_kdump, kdumps, ref_log, vmci,
                              have_mdf)

    # crash: the kernel's debug vmlinux, from Debian's -dbg package (cached).
    if not shutil.which("crash"):
        t.skip("crash reads guestdump's dumps", "crash not installed")
        return
    vmlinux = prepare_vmlinux(t, kver, vmci, os.path.dirname(q_elf))
    if not vmlinux:
        return
    for what, path in (("ELF", elf), ("paging=true ELF", pelf),
                       ("kdump-zlib", kdumps.get("kdump-zlib")),
                       ("kdump-zlib from guestdump-convert", converted)):
        if path:
            check_crash(t, vmlinux, what, path, kver)


def check_convert(a, t, work, q_elf, q_kdump, kdumps, ref_log, vmci, have_mdf):
    """guestdump-convert QEMU.ELF OUT (kdump-zlib, its default): the bytes of the
    restored guest's dump-guest-memory, and the readers read it; QEMU's own
    kdump-zlib back to ELF: QEMU's ELF's memory and notes. Returns OUT."""
    if not a.convert:
        return None
    back = os.path.join(work, "convert-qemu-kdump.elf")
    rc, msg = run([a.convert, "-q", "-O", "elf", q_kdump, back])
    t.ok(rc == 0 and elf_memory_runs(back) == elf_memory_runs(q_elf) and
         elf_compare.Elf(back).notes() == elf_compare.Elf(q_elf).notes(),
         "guestdump-convert turns QEMU's kdump-zlib of the Linux guest into an ELF "
         "with QEMU's ELF's memory and notes", tail(msg))
    out = os.path.join(work, "convert.kdump")
    t1 = time.monotonic()
    rc, msg = run([a.convert, "-q", q_elf, out])
    if not t.ok(rc == 0 and os.path.exists(out),
                "guestdump-convert turns QEMU's ELF into kdump-zlib (%.1f s)" % (
                    time.monotonic() - t1), tail(msg)):
        return None
    ours = kdumps.get("kdump-zlib")
    t.ok(ours is not None and sha256_file(ours) == sha256_file(out),
         "guestdump-convert's kdump-zlib is the restored guest's dump-guest-memory "
         "kdump-zlib, byte for byte")
    if not have_mdf:
        t.skip("makedumpfile reads guestdump-convert's kdump-zlib",
               "makedumpfile not installed")
        return out
    raw = out + ".reassembled"
    ok, msg = reassemble(out, raw)
    if not t.ok(ok, "makedumpfile -R reassembles guestdump-convert's kdump-zlib", msg):
        return out
    ok, text = dmesg(raw, work)
    t.ok(ok and (text == ref_log if ref_log else mk_initramfs.KMSG_MARKER in text),
         "makedumpfile --dump-dmesg reads the guest's log from guestdump-convert's "
         "kdump-zlib (QEMU's log)", tail(text))
    if not have_module("drgn"):
        t.skip("drgn opens guestdump-convert's kdump-zlib", "python3-drgn not installed")
        return out
    uts = int(vmci.get("SYMBOL(init_uts_ns)", "0"), 16)
    ranges = ["0x%x:400" % uts] if uts else []
    res, msg = reader("drgn", raw, *ranges)
    data = res["reads"].get(ranges[0], "") if res and ranges else ""
    t.ok(res is not None and res["arch"] == "Architecture.X86_64" and
         res["is_linux_kernel"] and
         (not ranges or vmci.get("OSRELEASE", "").encode().hex() in data),
         "drgn opens guestdump-convert's kdump-zlib (reassembled) as an x86-64 "
         "Linux kernel and reads its release from init_uts_ns",
         json.dumps(res)[:600] if res else tail(msg))
    return out


# ---- -restore of kdump files ----

def elf_memory(path):
    """The PT_LOADs' (paddr, bytes) and the PT_NOTE bytes of an ELF vmcore."""
    e = elf_compare.Elf(path)
    loads = [(p["paddr"], bytes(e.data[p["offset"]:p["offset"] + p["filesz"]]))
             for p in e.phdrs if p["type"] == elf_compare.PT_LOAD]
    notes = b"".join(bytes(e.data[p["offset"]:p["offset"] + p["filesz"]])
                     for p in e.phdrs if p["type"] == elf_compare.PT_NOTE)
    return sorted(loads), notes


def merged(ranges):
    """Sorted (start, end) ranges with touching ones joined."""
    out = []
    for lo, hi in sorted(ranges):
        if out and out[-1][1] == lo:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def kdump_present_ranges(path):
    """Guest-physical ranges of the pages a raw x86_64 kdump file holds (bitmap 2),
    the end of the memory it describes (max_mapnr pages), its header version."""
    with open(path, "rb") as f:
        h = f.read(4096)
        block = struct.unpack_from("<I", h, 428)[0]
        sub, nbm = struct.unpack_from("<II", h, 432)
        f.seek(block)
        mapnr = struct.unpack_from("<Q", f.read(104), 96)[0]
        f.seek((1 + sub) * block + nbm // 2 * block)
        bm = f.read(nbm // 2 * block)
    pages = [(pfn * 4096, pfn * 4096 + 4096) for pfn in range(mapnr)
             if bm[pfn >> 3] >> (pfn & 7) & 1]
    return merged(pages), mapnr * 4096, struct.unpack_from("<I", h, 8)[0]


def restored_elf(a, src, out):
    """guestdump -restore src, dumped as ELF (paging=false) into out; an error or None."""
    try:
        emu = guests.Guestdump(a.guestdump, src)
    except (guests.DriverError, OSError, ValueError) as e:
        return str(e)
    try:
        return emu.dump(out, "elf")
    finally:
        emu.stop()


def check_kdump_restores(a, t, work, q_kdump, elf, have_mdf, ref_log):
    """
    -restore of kdump files gives the guest of the ELF they were made from:
    QEMU 7.2's own kdump-zlib, and makedumpfile 1.7.2's conversions of
    guestdump's ELF with every codec Debian builds it with (raw, flattened,
    and filtered with -d 31, whose left-out pages come back as holes).
    """
    want_loads, want_notes = elf_memory(elf)
    out = os.path.join(work, "from-qemu-kdump.elf")
    err = restored_elf(a, q_kdump, out)
    if t.ok(err is None, "guestdump -restore reads QEMU 7.2's kdump-zlib (flattened)",
            err):
        t.ok(sha256_file(out) == sha256_file(elf),
             "the restore of QEMU's kdump-zlib dumps as ELF byte for byte as the "
             "restore of QEMU's ELF (memory, notes, blocks)")
        os.unlink(out)
    if not have_mdf:
        t.skip("-restore of makedumpfile's outputs", "makedumpfile not installed")
        return
    helptext = run(["makedumpfile", "-h"])[1]
    modes = [("uncompressed", [])]
    modes += [(name, [opt]) for opt, name, lib in (("-c", "zlib", None),
                                                  ("-l", "lzo", "LZO"),
                                                  ("-p", "snappy", "snappy"),
                                                  ("-z", "zstd", "zstd"))
              if lib is None or not re.search(r"%s support:\s*disabled" % lib, helptext)]
    t.diag("makedumpfile codecs: %s" % ", ".join(m for m, _ in modes))
    cases = [("makedumpfile %s -d 0" % " ".join(opts or ["(no codec)"]), opts + ["-d", "0"],
              False, False) for _, opts in modes]
    cases.append(("makedumpfile -c -d 31", ["-c", "-d", "31"], False, True))
    cases.append(("makedumpfile -F -l -d 31 (flattened)", ["-F", "-l", "-d", "31"], True,
                  True))
    for what, opts, flat, filtered in cases:
        kd = os.path.join(work, "mdf.kdump")
        for p in (kd, out):
            if os.path.exists(p):
                os.chmod(p, 0o600)
                os.unlink(p)
        if flat:
            with open(kd, "wb") as fo:
                p = subprocess.run(["makedumpfile"] + opts + [elf], stdout=fo,
                                   stderr=subprocess.PIPE, text=True, timeout=300,
                                   env=TOOL_ENV)
            rc, msg = p.returncode, p.stderr
        else:
            rc, msg = run(["makedumpfile"] + opts + [elf, kd])
        if not t.ok(rc == 0, "%s converts guestdump's ELF" % what, tail(msg)):
            continue
        err = restored_elf(a, kd, out)
        if not t.ok(err is None, "guestdump -restore reads the output of %s" % what, err):
            continue
        got_loads, got_notes = elf_memory(out)
        t.ok(got_notes == want_notes, "-restore of %s keeps every note byte" % what)
        if flat:
            raw = kd + ".raw"
            ok, msg = reassemble(kd, raw)
            present, end, version = kdump_present_ranges(raw) if ok else (None, 0, None)
            if ok:
                os.unlink(raw)
        else:
            present, end, version = kdump_present_ranges(kd)
        t.diag("%s wrote header version %s" % (what, version))
        got = merged((p, p + len(b)) for p, b in got_loads)
        t.ok(got == present, "-restore of %s holds exactly the pages the file holds%s" % (
            what, ", its filtered-out pages are holes" if filtered else ""),
            "restored %d ranges, file %s" % (len(got), len(present or [])))
        # makedumpfile describes memory up to the kernel's last page frame
        # (the BIOS below 4 GiB is not in its bitmaps)
        below = merged((p, min(p + len(b), end)) for p, b in want_loads if p < end)
        if filtered:
            t.ok(0 < sum(h - l for l, h in got) < sum(h - l for l, h in below),
                 "-d 31 left pages out of %s" % what)
        else:
            t.ok(got == below, "-restore of %s holds every page of the ELF below the "
                 "file's end (0x%x)" % (what, end),
                 "restored %s, ELF %s" % (got[:4], below[:4]))
        same = True
        for paddr, data in got_loads:
            src = next(((p, b) for p, b in want_loads
                        if p <= paddr and paddr + len(data) <= p + len(b)), None)
            if src is None or src[1][paddr - src[0]:paddr - src[0] + len(data)] != data:
                same = False
                break
        t.ok(same, "every page restored from %s equals guestdump's ELF" % what,
             "first difference in the block at 0x%x" % paddr if not same else None)
        ok, text = dmesg(out, work)
        t.ok(ok and (text == ref_log if ref_log else mk_initramfs.KMSG_MARKER in text),
             "makedumpfile --dump-dmesg reads the kernel log from the ELF of the "
             "guest restored from %s" % what, tail(text))
    for p in (os.path.join(work, "mdf.kdump"), out):
        if os.path.exists(p):
            os.chmod(p, 0o600)
            os.unlink(p)


def booted_debian_version(qdir):
    """The Debian version in the guest's "Linux version" banner, if printed."""
    try:
        with open(os.path.join(qdir, "serial.log"), errors="replace") as f:
            m = re.search(r"Linux version \S+ .* Debian (\S+) \(", f.read())
    except OSError:
        return None
    return m.group(1) if m else None


def gnu_build_id(path):
    for name, desc in elf_compare.Elf(path).notes():
        if name == b"GNU" and len(desc) == 20:
            return desc.hex()
    return None


def prepare_vmlinux(t, kver, vmci, qdir):
    """An installed debug vmlinux, else the one get-kernel-dbg.sh caches
    (downloading linux-image-KVER-dbg once). It must be the booted kernel's."""
    vmlinux = "/usr/lib/debug/boot/vmlinux-" + kver
    if not os.path.exists(vmlinux):
        deb_ver = booted_debian_version(qdir)
        t1 = time.monotonic()
        p = subprocess.run(["sh", os.path.join(HERE, "get-kernel-dbg.sh"), kver]
                           + ([deb_ver] if deb_ver else []),
                           capture_output=True, text=True, timeout=1800)
        if p.returncode == 77:
            t.skip("crash reads guestdump's dumps",
                   "no debug vmlinux: " + tail(p.stderr, 2).replace("\n", " "))
            return None
        if not t.ok(p.returncode == 0 and p.stdout.strip(),
                    "get-kernel-dbg.sh provides the debug vmlinux of %s%s (%.1f s)" % (
                        kver, " (Debian %s)" % deb_ver if deb_ver else "",
                        time.monotonic() - t1), tail(p.stderr)):
            return None
        vmlinux = p.stdout.split()[-1]
    want, got = vmci.get("BUILD-ID"), gnu_build_id(vmlinux)
    if not t.ok(want is not None and got == want,
                "the debug vmlinux is the booted kernel's build (%s)" % want,
                "%s has build ID %s; the guest's VMCOREINFO says %s (a cached "
                "vmlinux of another build: remove it to fetch the right one)" % (
                    vmlinux, got, want)):
        return None
    return vmlinux


FRAME = re.compile(r" *#\d+ \[[0-9a-f]+\] \w+ at [0-9a-f]+")


def check_crash(t, vmlinux, what, path, kver):
    """crash's sys, bt -a and log on one dump: the guest's release and vCPU
    count, a backtrace with frames for every vCPU, the boot banner and our
    marker in the log."""
    t1 = time.monotonic()
    rc, out = run(["crash", "-s", vmlinux, path], input="sys\nbt -a\nlog\nquit\n",
                  timeout=600)
    secs = time.monotonic() - t1
    if not t.ok(rc == 0, "crash opens guestdump's %s (%.1f s)" % (what, secs),
                tail(out)):
        return
    sysinfo = dict(re.findall(r"^ *([A-Z ]+?): (.*)$", out, re.M))
    t.ok(sysinfo.get("RELEASE") == kver and sysinfo.get("CPUS") == str(SMP),
         "crash sys on guestdump's %s: RELEASE %s, CPUS %d" % (what, kver, SMP),
         "sys said RELEASE=%r CPUS=%r" % (sysinfo.get("RELEASE"), sysinfo.get("CPUS")))
    # bt -a: "PID: ... CPU: n ..." then frames " #0 [addr] function at addr".
    frames = {}
    cpu = None
    for line in out.splitlines():
        m = re.match(r"PID: +\d+ +TASK: +[0-9a-f]+ +CPU: +(\d+)", line)
        if m:
            cpu = int(m.group(1))
            frames.setdefault(cpu, 0)
        elif cpu is not None and FRAME.match(line):
            frames[cpu] += 1
    t.ok(sorted(frames) == list(range(SMP)) and all(frames.values()),
         "crash bt -a on guestdump's %s: a backtrace for each of the %d vCPUs" % (
             what, SMP), "frames per CPU: %r" % frames)
    t.ok("] Linux version %s " % kver in out and mk_initramfs.KMSG_MARKER in out,
         "crash log on guestdump's %s: the boot banner and the marker" % what,
         tail(out))


# disk_dump_header: signature[8], header_version (int), then new_utsname,
# six 65-byte strings: sysname, nodename, release, version, machine, domain.
UTS_OFF, UTS_LEN = 12, 6 * 65


def check_kdump_vs_qemu(t, q_raw, ours, kver):
    """Same bytes as QEMU 7.2's kdump-zlib except docs/compat.md's K1 (utsname
    from the guest's init_uts_ns); nokaslr keeps phys_base 0, so K2 is moot."""
    with open(q_raw, "rb") as f:
        qb = f.read()
    with open(ours, "rb") as f:
        ob = f.read()
    end = UTS_OFF + UTS_LEN
    same = len(qb) == len(ob) and qb[:UTS_OFF] == ob[:UTS_OFF] and qb[end:] == ob[end:]
    first = None
    if not same:
        n = min(len(qb), len(ob))
        first = next((i for i in range(n) if qb[i] != ob[i]
                      and not UTS_OFF <= i < end), n)
    t.ok(same, "guestdump's kdump-zlib equals QEMU 7.2's byte for byte outside "
         "utsname (docs/compat.md K1), both reassembled",
         "sizes %d/%d; first difference outside utsname at %s" % (
             len(qb), len(ob), hex(first) if first is not None else "-"))
    uts = [ob[UTS_OFF + 65 * i:UTS_OFF + 65 * (i + 1)].split(b"\0")[0]
           for i in range(6)]
    t.ok(uts[0] == b"Linux" and uts[2] == kver.encode() and uts[4] == b"x86_64",
         "guestdump's kdump header names the guest: Linux %s x86_64" % kver,
         "utsname %r" % uts)


def diff_hint(want, got):
    a, b = want.splitlines(), got.splitlines()
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return "first difference at line %d:\n- %s\n+ %s" % (i + 1, x, y)
    return "lengths differ: %d vs %d lines" % (len(a), len(b))


if __name__ == "__main__":
    sys.exit(main())
