#!/usr/bin/env python3
"""Synthetic guest states in the QEMU under test: same bytes as guestdump and 7.2, TAP.

    test_qemu_same_bytes.py --build BUILD --guestdump BUILD/guestdump --gen WIN_GEN

ELF/kdump: each guest of tests/compat/elf_compat.py (page tables and registers
put in with -device loader and the gdbstub, VMCOREINFO through fw_cfg) goes
into $GUESTDUMP_QEMU (default BUILD/qemu/qemu-system-x86_64) and into stock
Debian QEMU 7.2; their dumps (paging off and on, with and without a filter,
every kdump format the binary lists) must be equal except the corrections of
docs/compat.md (elf_compare.py; for kdump K1 utsname, K2 phys_base). Then guestdump
-restores the binary's paging=false ELF and dumps again: for the integrated
QEMU the bytes must be identical, for stock 7.2 equal except the corrections.

win-dmp: each case of tests/compat/win_compare.py (tests/qtest/win-guest.c's
synthetic Windows state) in both QEMUs: byte-identical files or the same
error, and the binary leaves guest RAM as it was (pmemsave before and after).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemu_common as qc  # noqa: E402
import elf_compare  # noqa: E402
import elf_compat  # noqa: E402
import win_compare  # noqa: E402
import guests  # noqa: E402

# The win-dmp case also dumped through HMP's -w flag.
HMP_CASE = "long4-smp2"
# Where the integrated QEMU's kdump may differ from 7.2's (reassembled files):
# disk_dump_header's utsname (docs/compat.md K1) and, in the sub-header (block
# 1, x86 pages), phys_base, which 7.2 reads as hex from a decimal NUMBER() (K2).
ALLOWED = ((12, 12 + 6 * 65), (4096, 4096 + 8))


def elf_plan(fmts):
    plan = dict(elf_compat.DUMPS)
    for f in fmts:
        if f.startswith("kdump"):
            plan[f] = {"paging": False, "format": f}
    return plan


def run_qemu(qemu, work, g, blob, plan):
    """elf_compat's QEMU run with our dump list (it reads the module's DUMPS)."""
    os.makedirs(work, exist_ok=True)
    saved = elf_compat.DUMPS
    elf_compat.DUMPS = plan
    try:
        return elf_compat.run_qemu(qemu, work, g, blob)
    finally:
        elf_compat.DUMPS = saved


def plain_kdump(path, work):
    if not qc.flattened(path):
        return path
    out = os.path.join(work, os.path.basename(path) + ".raw")
    ok, msg = qc.tlg.reassemble(path, out)
    if not ok:
        raise RuntimeError("makedumpfile -R %s: %s" % (path, msg))
    return out


def kdump_differences(a, b, work, allow=True):
    """Byte differences outside ALLOWED (when allowed), both reassembled."""
    with open(plain_kdump(a, work), "rb") as f:
        x = f.read()
    with open(plain_kdump(b, work), "rb") as f:
        y = f.read()
    if len(x) != len(y):
        return ["sizes %d and %d" % (len(x), len(y))]
    if x == y:
        return []
    if not allow:
        return ["the files differ"]
    ok = [False] * len(x)
    for lo, hi in ALLOWED:
        for i in range(lo, min(hi, len(x))):
            ok[i] = True
    bad = next((i for i in range(len(x)) if x[i] != y[i] and not ok[i]), None)
    if bad is not None:
        return ["first difference outside utsname and phys_base at 0x%x" % bad]
    return []


def restore_and_dump(gd_bin, elf, work, plan, efer):
    """guestdump -restore of elf, then every dump of plan. efer: per vCPU, the
    value the binary was given; the notes have no EFER and -restore's rule
    (docs/machine.md) cannot see long mode in a vCPU with a flat CS."""
    emu = guests.Guestdump(gd_bin, elf)
    out = {}
    try:
        for cpu, v in enumerate(efer):
            if v is not None:
                emu.qmp.execute("x-guestdump-set-registers", **{
                    "cpu-index": cpu, "registers": [{"name": "efer", "value": v}]})
        for name, args in plan.items():
            path = os.path.join(work, "restored-" + name)
            a = dict(args, protocol="file:" + path)
            a.setdefault("format", "elf")
            r = emu.qmp.command("dump-guest-memory", **a)
            if "error" in r:
                raise RuntimeError("guestdump %s: %s" % (name, r["error"]["desc"]))
            ev = emu.qmp.wait_event("DUMP_COMPLETED", 120)
            if ev["data"].get("error"):
                raise RuntimeError("guestdump %s: %s" % (name, ev["data"]["error"]))
            out[name] = path
    finally:
        emu.stop()
    return out


def compat_differences(g, mode, name, qemu72, ours):
    """elf_compare's verdict: stock 7.2's file against one with the corrections."""
    paging = elf_compat.DUMPS[name]["paging"]
    return elf_compare.compare(
        elf_compare.Elf(qemu72), elf_compare.Elf(ours),
        g.extra_va if paging else [], la57=(mode == "long5"),
        stale_phys=g.stale_phys if paging else ())


def elf_cases(t, qemu, integrated, fmts, gd_bin, top):
    plan = elf_plan(fmts)
    for mode in elf_compat.MODES:
        work = os.path.join(top, mode)
        os.makedirs(work, exist_ok=True)
        g = elf_compat.build(mode)
        blob = os.path.join(work, "tables.bin")
        with open(blob, "wb") as f:
            f.write(g.blob)
        stock_plan = dict(elf_compat.DUMPS)
        if "kdump-zlib" in plan:
            stock_plan["kdump-zlib"] = plan["kdump-zlib"]
        try:
            mine = run_qemu(qemu, os.path.join(work, "binary"), g, blob, plan)
            stock = run_qemu(qc.STOCK, os.path.join(work, "stock"), g, blob, stock_plan)
        except Exception as e:          # a driver failure is a test failure
            t.ok(False, "%s: the guest state in both QEMUs" % mode, repr(e))
            continue
        for name in elf_compat.DUMPS:
            if integrated:
                errs = compat_differences(g, mode, name, stock[name], mine[name])
                t.ok(not errs, "%s %s: the binary's ELF equals stock 7.2's except "
                     "docs/compat.md's corrections" % (mode, name), "\n".join(errs[:10]))
            else:
                t.ok(qc.sha256_file(stock[name]) == qc.sha256_file(mine[name]),
                     "%s %s: the binary (a stock build) writes stock 7.2's bytes"
                     % (mode, name))
        if "kdump-zlib" in stock_plan:
            try:
                errs = kdump_differences(stock["kdump-zlib"], mine["kdump-zlib"], work,
                                         integrated)
            except Exception as e:
                errs = [repr(e)]
            t.ok(not errs, "%s: the binary's kdump-zlib equals stock 7.2's outside "
                 "utsname and phys_base (docs/compat.md K1, K2)" % mode, "\n".join(errs))
        try:
            efer = [(g.cpu_regs[c] if g.cpu_regs else g.regs).get("efer")
                    for c in (0, 1)]
            rest = restore_and_dump(gd_bin, mine["plain"], os.path.join(work, "binary"),
                                    plan, efer)
        except Exception as e:
            t.ok(False, "%s: guestdump -restore of the binary's ELF" % mode, repr(e))
            continue
        for name in plan:
            if integrated:
                t.ok(qc.sha256_file(rest[name]) == qc.sha256_file(mine[name]),
                     "%s %s: guestdump after -restore writes the binary's bytes"
                     % (mode, name))
            elif name in elf_compat.DUMPS:
                errs = compat_differences(g, mode, name, mine[name], rest[name])
                t.ok(not errs, "%s %s: guestdump after -restore equals stock 7.2 "
                     "except docs/compat.md's corrections" % (mode, name),
                     "\n".join(errs[:10]))


def pmem_digest(q, mem, path):
    """All guest RAM as pmemsave writes it (the monitor, not the guest, reads it)."""
    if os.path.exists(path):
        os.unlink(path)
    q.qmp.execute("pmemsave", val=0, size=mem, filename=path)
    h = qc.sha256_file(path)
    os.unlink(path)
    return h


def win_run(qemu, work, guest, gdir, note, hmp=False):
    """win_compare's QEMU run, with pmemsave of all RAM around the dump; with hmp,
    the dump is HMP's dump-guest-memory -w."""
    with qc.qemu_driver.QemuGuest(mem="%dM" % (guest["mem"] >> 20), smp=guest["smp"],
                                  qemu=qemu) as q:
        win_compare.load_guest(q, guest, gdir, note)
        ram = os.path.join(work, "ram.bin")
        before = pmem_digest(q, guest["mem"], ram)
        out = os.path.join(work, os.path.basename(qemu) + ".dmp")
        if hmp:
            said = q.qmp.hmp("dump-guest-memory -w " + out)
            reply = {"error": {"desc": said.strip()}} if said.strip() else \
                {"return": {}}
            ev = q.qmp.wait_event("DUMP_COMPLETED", timeout=60)
        else:
            r = q.dump(out, fmt="win-dmp")
            reply = r["reply"]
            ev = r["event"] or q.qmp.wait_event("DUMP_COMPLETED", timeout=60)
        after = pmem_digest(q, guest["mem"], ram)
        return out, reply, ev, before == after


def win_cases(t, qemu, integrated, gen, top):
    for name, gen_args, want_err in win_compare.CASES:
        work = os.path.join(top, "win-" + name)
        gdir = os.path.join(work, "guest")
        os.makedirs(work, exist_ok=True)
        note = "--no-vmcoreinfo" not in gen_args
        gen_args = [x for x in gen_args if x != "--no-vmcoreinfo"]
        try:
            subprocess.run([gen, "--out", gdir, "--mem-mib", str(win_compare.MEM_MIB)]
                           + gen_args, check=True, stdout=subprocess.DEVNULL,
                           timeout=60)
            with open(os.path.join(gdir, "guest.json")) as f:
                guest = json.load(f)
            bw = os.path.join(work, "binary")
            sw = os.path.join(work, "stock")
            os.makedirs(bw)
            os.makedirs(sw)
            mf, mr, mev, m_ram = win_run(qemu, bw, guest, gdir, note)
            sf, sr, sev, _ = win_run(qc.STOCK, sw, guest, gdir, note)
            if name == HMP_CASE:
                hw = os.path.join(work, "binary-hmp")
                os.makedirs(hw)
                hf, hr, hev, h_ram = win_run(qemu, hw, guest, gdir, note, hmp=True)
        except Exception as e:
            t.ok(False, "win-dmp %s in both QEMUs" % name, repr(e))
            continue
        if want_err:
            ok = (mr.get("error", {}).get("desc") == sr.get("error", {}).get("desc")
                  == want_err and mev["data"] == sev["data"])
            t.ok(ok, "win-dmp %s: the binary fails as 7.2 does: %s" % (name, want_err),
                 "binary %r %r\nstock %r %r" % (mr, mev, sr, sev))
        else:
            mb = open(mf, "rb").read() if os.path.exists(mf) else b""
            sb = open(sf, "rb").read() if os.path.exists(sf) else b""
            # Stock's bytes with exactly the corrections compat.md names (W7 on
            # x86 headers) made, each checked to be as named.
            diag = []
            want, allowed_ok = win_compare.apply_allowed(guest, gdir, sb, mb, diag)
            t.ok("return" in mr and allowed_ok and mb == want and len(mb) > 8192
                 and mev["data"]["result"] == sev["data"]["result"],
                 "win-dmp %s: the binary's file is byte-identical to stock 7.2's "
                 "but for compat.md's corrections (%d bytes)" % (name, len(mb)),
                 "\n".join(diag + [win_compare.first_difference(want, mb)])
                 + " %r %r" % (mr, mev))
        if name == HMP_CASE:
            same = os.path.exists(hf) and os.path.exists(mf) and \
                qc.sha256_file(hf) == qc.sha256_file(mf)
            t.ok("return" in hr and same and h_ram and
                 hev["data"]["result"]["status"] == "completed",
                 "win-dmp %s: HMP dump-guest-memory -w writes the QMP dump's bytes, "
                 "guest RAM unchanged" % name, "HMP %r, event %r" % (hr, hev))
        desc = "win-dmp %s: guest RAM unchanged by the binary's dump" % name
        if not m_ram and not integrated:
            t.skip(desc, "stock 7.2 writes the CONTEXTs into guest RAM and may not "
                   "restore them (docs/compat.md W1)")
        else:
            t.ok(m_ram, desc)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--guestdump", required=True)
    ap.add_argument("--gen", required=True)
    ap.add_argument("--keep")
    a = ap.parse_args(argv)
    qemu = qc.binary(a.build)
    why = qc.check_binary(qemu) or qc.check_binary(qc.STOCK)
    if why:
        return qc.missing_all(why)
    t = qc.Tap()
    t.diag("QEMU under test: %s; reference: %s" % (qemu, qc.STOCK))
    q = qc.qemu_driver.QemuGuest(mem="16M", qemu=qemu, machine="none",
                                 vmcoreinfo_device=False)
    try:
        q.start()
        fmts = q.qmp.execute("query-dump-guest-memory-capability")["formats"]
    finally:
        q.quit()
    integrated = qc.is_integrated(fmts)
    qc.check_formats(t, fmts)
    if "kdump-zlib" in fmts and not qc.need(
            t, shutil.which("makedumpfile"), "kdump comparisons", "makedumpfile "
            "not installed"):
        fmts = [f for f in fmts if not f.startswith("kdump")]
    top = a.keep or tempfile.mkdtemp(prefix="qemu-same-bytes-")
    try:
        elf_cases(t, qemu, integrated, fmts, a.guestdump, top)
        win_cases(t, qemu, integrated, a.gen, top)
    finally:
        if not a.keep:
            shutil.rmtree(top, ignore_errors=True)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
