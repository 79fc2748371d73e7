#!/usr/bin/env python3
"""win-dmp: one synthetic Windows-like guest dumped by real QEMU 7.2 and by guestdump.

    win_compare.py --guestdump BUILD/guestdump --gen BUILD/tests/qtest/win-guest-gen
                   [--qemu qemu-system-x86_64] [--keep DIR] [--cases a,b]

For each case, win-guest-gen writes the guest (RAM blobs, registers, where
the vmcoreinfo note is). Both hosts get it the way a guest would leave it:
RAM from -device loader, etc/vmcoreinfo programmed through fw_cfg DMA,
registers set from outside: QEMU through tests/compat/qemu_driver.py (HMP
port I/O, gdbstub), guestdump through the qtest protocol and
x-guestdump-set-registers. Then both write win-dmp
and the files must be equal byte for byte; failing dumps must give the same
error text in the reply and in DUMP_COMPLETED; our guest RAM must be what
was loaded. TAP output; everything skips when qemu-system-x86_64 is absent.
"""
import argparse
import base64
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemu_driver  # noqa: E402  (the project's driver for real QEMU 7.2)

# (name, win-guest-gen arguments, expected error or None)
CASES = [
    ("long4-smp2", ["--mode", "long4", "--smp", "2"], None),
    ("long4-fallback-bugcheck", ["--mode", "long4", "--kdbg-encrypted",
                                 "--bugcheck", "0xd1"], None),
    ("long4-fewer-processors", ["--mode", "long4", "--smp", "3",
                                "--number-processors", "2"], None),
    ("pae-smp2-fallback", ["--mode", "pae", "--smp", "2", "--kdbg-encrypted"], None),
    ("x86-bugcheck", ["--mode", "x86", "--bugcheck", "0x7e"], None),
    ("no-note", ["--mode", "long4", "--no-vmcoreinfo"],
     "win-dump: invalid vmcoreinfo note size"),
    ("zero-processors", ["--mode", "long4", "--number-processors", "0"], None),
    ("bad-bugcheck-ptr", ["--mode", "long4", "--tweak", "bad-bugcheck-ptr"], None),
    ("pae-bad-bugcheck-ptr", ["--mode", "pae", "--tweak", "bad-bugcheck-ptr"], None),
    ("dtb-low-bits", ["--mode", "long4", "--smp", "2", "--tweak", "dtb-low-bits"], None),
    ("share-context", ["--mode", "long4", "--smp", "2", "--tweak", "share-context"],
     None),
    ("bad-context1", ["--mode", "long4", "--smp", "2", "--tweak", "bad-context1"],
     "win-dump: failed to save CPU #1 context"),
    ("pae-space-high-garbage", ["--mode", "pae", "--tweak", "space-high-garbage"], None),
    ("x86-space-high-garbage", ["--mode", "x86", "--tweak", "space-high-garbage"], None),
    ("bad-signature", ["--mode", "long4", "--tweak", "bad-signature"],
     "win-dump: invalid header, expected 'PAGE', got 'PAGX'"),
    ("bad-validdump", ["--mode", "pae", "--tweak", "bad-validdump"],
     "win-dump: invalid header, expected 'DUMP' or 'DU64', got 'DU32'"),
    ("kdbg-unmapped", ["--mode", "long4", "--tweak", "kdbg-unmapped"],
     "win-dump: failed to read OwnerTag"),
    ("kdbg-both-bad", ["--mode", "x86", "--tweak", "kdbg-both-bad"],
     "win-dump: invalid KDBG OwnerTag, expected 'KDBG', got 'DD'"),
]

MEM_MIB = 48

# The docs/compat.md corrections that make our bytes differ from 7.2's, each by
# name with its file range; nothing else may differ.
W7_HIGH = (0xfa4, 0xfa8)


def guest_bytes(guest, gdir, pa, n):
    """Bytes of the loaded guest image at a guest-physical address (zeros elsewhere)."""
    out = bytearray(n)
    for ld in guest["loads"]:
        lo, hi = max(pa, ld["addr"]), min(pa + n, ld["addr"] + ld["size"])
        if lo < hi:
            with open(os.path.join(gdir, ld["file"]), "rb") as f:
                f.seek(lo - ld["addr"])
                out[lo - pa:hi - pa] = f.read(hi - lo)
    return bytes(out)


def allowed_differences(guest, gdir, qb):
    """(start, end, QEMU's bytes, ours, name) for the corrections this dump shows."""
    if qb[4:8] != b"DUMP":
        return []
    # W7: the x86 header's RequiredDumpSpace (a LARGE_INTEGER at 0xfa0): 7.2 writes
    # the low half only, so the high half keeps what the guest had there ("PAGE",
    # Windows' filler, or the space-high-garbage tweak); we write space >> 32.
    start, end = W7_HIGH
    note = guest["vmcoreinfo"]["addr"] + 24
    space = 4096 + (struct.unpack_from("<I", qb, 0x68)[0] << 12)
    return [(start, end, guest_bytes(guest, gdir, note + start, end - start),
             struct.pack("<I", space >> 32), "W7 RequiredDumpSpace high half")]


def apply_allowed(guest, gdir, qb, gb, diag):
    """QEMU's file with the allowed corrections made; each must be exactly as named."""
    qb = bytearray(qb)
    ok = True
    for start, end, qemu_has, we_write, what in allowed_differences(guest, gdir, qb):
        if len(qb) < end or len(gb) < end:
            diag.append("%s: file too short" % what)
            ok = False
            continue
        if bytes(qb[start:end]) != qemu_has or gb[start:end] != we_write:
            diag.append("%s at 0x%x: qemu %s, guestdump %s; expected %s and %s" %
                        (what, start, bytes(qb[start:end]).hex(), gb[start:end].hex(),
                         qemu_has.hex(), we_write.hex()))
            ok = False
        qb[start:end] = gb[start:end]
        diag.append("allowed difference: %s (0x%x..0x%x)" % (what, start, end))
    return bytes(qb), ok


def wait_connect(path, proc, timeout=30):
    deadline = time.time() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("cannot connect to %s" % path)
            time.sleep(0.05)


SCRATCH = 0x2000
FW_CFG_CTL, FW_CFG_DATA, FW_CFG_DMA_HI, FW_CFG_DMA_LO = 0x510, 0x511, 0x514, 0x518


def swap32(v):
    """The DMA address port is big-endian: what an outl must carry."""
    return int.from_bytes(v.to_bytes(4, "big"), "little")


def vmcoreinfo_dma_blob(key, note_addr, note_size):
    """FWCfgDmaAccess at SCRATCH and the 16-byte FWCfgVMCoreInfo after it."""
    info = struct.pack("<HHIQ", 1, 1, note_size, note_addr)
    desc = struct.pack(">IIQ", (key << 16) | 0x08 | 0x10, len(info), SCRATCH + 16)
    return desc + info


def file_key(read_bytes, name):
    raw = read_bytes(0x19, 4)
    count = int.from_bytes(raw, "big")
    if count > 512:
        raise RuntimeError("implausible fw_cfg file count %d" % count)
    raw = read_bytes(0x19, 4 + 64 * count)[4:]
    for i in range(count):
        size, sel = struct.unpack(">IH", raw[64 * i:64 * i + 6])
        if raw[64 * i + 8:64 * i + 64].split(b"\0")[0].decode() == name:
            return sel
    raise RuntimeError("fw_cfg has no %s" % name)


def gdb_registers(regs):
    """Our register names as QEMU's gdbstub knows them (descriptor flags come from
    the driver's temporary GDT instead)."""
    out = {}
    for n, v in regs.items():
        n = {"rflags": "eflags", "kernel_gs_base": "k_gs_base"}.get(n, n)
        if n in qemu_driver.GDB_NUM:
            out[n] = v
    return out


def load_guest(q, guest, gdir, program_note):
    """The generated guest into a started QemuGuest: RAM blobs, the vmcoreinfo
    note's address (when the guest driver would program it) and registers."""
    for ld in guest["loads"]:
        q.load_file(os.path.join(gdir, ld["file"]), ld["addr"])
    q.start()
    if program_note:
        q.set_vmcoreinfo(guest["vmcoreinfo"]["addr"], guest["vmcoreinfo"]["size"],
                         scratch=SCRATCH)
    q.set_registers({i: gdb_registers(r) for i, r in enumerate(guest["cpus"])})


def run_qemu(qemu, work, guest, gdir, program_note, elf=None):
    with qemu_driver.QemuGuest(mem="%dM" % (guest["mem"] >> 20), smp=guest["smp"],
                               qemu=qemu) as q:
        load_guest(q, guest, gdir, program_note)
        if elf:
            # The same state as an ELF vmcore, for guestdump-convert.
            r = q.dump(elf, fmt="elf")
            if "error" in r["reply"]:
                raise RuntimeError("QEMU's ELF dump failed: %r" % r["reply"])
        out = os.path.join(work, "qemu.dmp")
        r = q.dump(out, fmt="win-dmp")
        # A failing dump's event came before the reply; the driver keeps it.
        ev = r["event"] or q.qmp.wait_event("DUMP_COMPLETED", timeout=60)
        return out, r["reply"], ev


class QTest:
    def __init__(self, sock):
        self.sock = sock
        self.f = sock.makefile("rb")

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\n")
        while True:
            r = self.f.readline().decode().strip()
            if r.startswith("IRQ"):
                continue
            if not r.startswith("OK"):
                raise RuntimeError("qtest %r -> %r" % (line, r))
            return r[2:].strip()


def run_guestdump(host, work, guest, gdir, program_note, detach=False):
    qmp_path = os.path.join(work, "host-qmp.sock")
    qt_path = os.path.join(work, "host-qtest.sock")
    cmd = [host, "-S", "-machine", "pc", "-m", str(guest["mem"] >> 20),
           "-smp", str(guest["smp"]), "-device", "vmcoreinfo",
           "-qmp", "unix:%s,server=on,wait=off" % qmp_path,
           "-qtest", "unix:%s,server=on,wait=off" % qt_path]
    for ld in guest["loads"]:
        cmd += ["-device", "loader,file=%s,addr=%d,force-raw=on" %
                (os.path.join(gdir, ld["file"]), ld["addr"])]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_connect(qmp_path, p).close()
        q = qemu_driver.Qmp(qmp_path)
        t = QTest(wait_connect(qt_path, p))
        if program_note:
            def read_bytes(key, n):
                t.cmd("outw 0x%x 0x%x" % (FW_CFG_CTL, key))
                return bytes(int(t.cmd("inb 0x%x" % FW_CFG_DATA), 16) for _ in range(n))
            key = file_key(read_bytes, "etc/vmcoreinfo")
            blob = vmcoreinfo_dma_blob(key, guest["vmcoreinfo"]["addr"],
                                       guest["vmcoreinfo"]["size"])
            saved = base64.b64decode(t.cmd("b64read 0x%x 32" % SCRATCH))
            t.cmd("b64write 0x%x %d %s" % (SCRATCH, len(blob),
                                           base64.b64encode(blob).decode()))
            t.cmd("outl 0x%x 0" % FW_CFG_DMA_HI)
            t.cmd("outl 0x%x 0x%x" % (FW_CFG_DMA_LO, swap32(SCRATCH)))
            if base64.b64decode(t.cmd("b64read 0x%x 4" % SCRATCH)) != b"\0\0\0\0":
                raise RuntimeError("fw_cfg DMA did not complete")
            t.cmd("b64write 0x%x 32 %s" % (SCRATCH, base64.b64encode(saved).decode()))
        for i, regs in enumerate(guest["cpus"]):
            q.execute("x-guestdump-set-registers", **{
                "cpu-index": i,
                "registers": [{"name": n, "value": v} for n, v in regs.items()]})
        ram_before = ram_digest(t, guest)
        out = os.path.join(work, "guestdump.dmp")
        args = {"paging": False, "format": "win-dmp", "protocol": "file:" + out}
        if detach:
            args["detach"] = True
        r = q.command("dump-guest-memory", **args)
        polls = []
        if detach:
            while True:
                st = q.execute("query-dump")
                polls.append(st)
                if st["status"] != "active":
                    break
                time.sleep(0.01)
        ev = q.wait_event("DUMP_COMPLETED", timeout=60)
        ram_after = ram_digest(t, guest)
        q.execute("quit")
        return out, r, ev, ram_before == ram_after, polls
    finally:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def ram_digest(t, guest):
    """All guest RAM below 4 GiB except the VGA/ROM window, via qtest reads."""
    h = hashlib.sha256()
    for lo, hi in ((0, 0xa0000), (0x100000, guest["mem"])):
        for a in range(lo, hi, 1 << 20):
            n = min(1 << 20, hi - a)
            h.update(base64.b64decode(t.cmd("b64read 0x%x %d" % (a, n))))
    return h.hexdigest()


class TAP:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=""):
        self.n += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, name))
        if not cond:
            self.failed += 1
            for line in str(diag).splitlines():
                print("# " + line)
        sys.stdout.flush()

    def skip(self, name, why):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, name, why))


def first_difference(a, b):
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return ("first difference at 0x%x: qemu %02x, guestdump %02x"
                    % (i, a[i], b[i]))
    return "sizes %d (qemu) and %d (guestdump)" % (len(a), len(b))


def check_convert(convert, work, guest, gdir, elf, qf, want_err, note):
    """guestdump-convert of QEMU's ELF into win-dmp: QEMU's win-dmp (but for the
    named corrections), or, where QEMU fails, exit 1, one line, no file."""
    out = os.path.join(work, "convert.dmp")
    r = subprocess.run([convert, "-q", "--format", "win-dmp", elf, out],
                       capture_output=True, text=True)
    diag = ["exit %d, stderr %r" % (r.returncode, r.stderr)]
    if want_err:
        lines = r.stderr.splitlines()
        ok = (r.returncode == 1 and len(lines) == 1 and not os.path.exists(out) and
              not [f for f in os.listdir(work) if f.startswith(".convert.dmp")])
        if not note:
            # the guest's FwCfg driver never wrote the note: say so, and why
            ok = ok and "FwCfg driver" in r.stderr and "VMCOREINFO" in r.stderr
        return ok, diag
    # dump-guest-memory's warnings about the guest (QEMU gives the same) only
    if r.returncode != 0 or any(": warning: win-dump: " not in line
                                for line in r.stderr.splitlines()):
        return False, diag
    qb, gb = open(qf, "rb").read(), open(out, "rb").read()
    qb, allowed_ok = apply_allowed(guest, gdir, qb, gb, diag)
    if qb != gb:
        diag.append(first_difference(qb, gb))
    return qb == gb and allowed_ok and len(gb) > 8192, diag


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--guestdump", required=True)
    ap.add_argument("--convert", help="BUILD/guestdump-convert: also convert QEMU's "
                    "ELF of each state to win-dmp and compare")
    ap.add_argument("--gen", required=True)
    ap.add_argument("--qemu", default=os.environ.get("QEMU", "qemu-system-x86_64"))
    ap.add_argument("--keep")
    ap.add_argument("--cases")
    a = ap.parse_args()

    cases = [c for c in CASES if not a.cases or c[0] in a.cases.split(",")]
    qemu = shutil.which(a.qemu)
    print("1..%d" % (len(cases) * (2 if a.convert else 1) + 1))
    if not qemu:
        for c in cases:
            print("ok - %s # SKIP %s not found" % (c[0], a.qemu))
            if a.convert:
                print("ok - %s/convert # SKIP %s not found" % (c[0], a.qemu))
        print("ok - detached # SKIP no QEMU")
        return 0
    tap = TAP()
    work_root = a.keep or tempfile.mkdtemp(prefix="win-compare-")
    try:
        for name, gen_args, want_err in cases:
            work = os.path.join(work_root, name)
            gdir = os.path.join(work, "guest")
            os.makedirs(work, exist_ok=True)
            note = "--no-vmcoreinfo" not in gen_args
            gen_args = [x for x in gen_args if x != "--no-vmcoreinfo"]
            subprocess.run([a.gen, "--out", gdir, "--mem-mib", str(MEM_MIB)] + gen_args,
                           check=True, stdout=subprocess.DEVNULL)
            guest = json.load(open(os.path.join(gdir, "guest.json")))
            elf = os.path.join(work, "qemu.elf") if a.convert else None
            try:
                qf, qr, qev = run_qemu(qemu, work, guest, gdir, note, elf=elf)
                gf, gr, gev, ram_same, _ = run_guestdump(a.guestdump, work, guest, gdir,
                                                         note)
            except Exception as e:     # a driver failure is a test failure
                tap.ok(False, name, repr(e))
                if a.convert:
                    tap.ok(False, name + "/convert", "no QEMU state")
                continue
            diag = []
            if want_err:
                ok = ("error" in qr and "error" in gr and
                      qr["error"]["desc"] == gr["error"]["desc"] == want_err and
                      qev["data"].get("error") == gev["data"].get("error") == want_err)
                ok = ok and qev["data"]["result"] == gev["data"]["result"]
                diag.append("qemu %r / %r; guestdump %r / %r" % (qr, qev, gr, gev))
            else:
                qb = open(qf, "rb").read() if os.path.exists(qf) else b""
                gb = open(gf, "rb").read() if os.path.exists(gf) else b""
                qb, allowed_ok = apply_allowed(guest, gdir, qb, gb, diag)
                ok = ("return" in qr and "return" in gr and qb == gb and
                      len(qb) > 8192 and allowed_ok)
                if qb != gb:
                    diag.append(first_difference(qb, gb))
                diag.append("qemu %r, guestdump %r" % (qr, gr))
                rq, rg = qev["data"]["result"], gev["data"]["result"]
                if (rq["total"], rq["completed"]) != (rg["total"], rg["completed"]):
                    ok = False
                    diag.append("DUMP_COMPLETED qemu %r, guestdump %r" % (rq, rg))
            if not ram_same:
                ok = False
                diag.append("guestdump's guest RAM changed during the dump")
            tap.ok(ok, name, "\n".join(diag))
            if a.convert:
                cok, cdiag = check_convert(a.convert, work, guest, gdir, elf, qf,
                                           want_err, note)
                tap.ok(cok, name + "/convert", "\n".join(cdiag))

        # Detached: query-dump's total is RequiredDumpSpace from the header on.
        work = os.path.join(work_root, "detached")
        gdir = os.path.join(work, "guest")
        os.makedirs(work, exist_ok=True)
        subprocess.run([a.gen, "--out", gdir, "--mem-mib", str(MEM_MIB), "--smp", "2"],
                       check=True, stdout=subprocess.DEVNULL)
        guest = json.load(open(os.path.join(gdir, "guest.json")))
        try:
            gf, gr, gev, ram_same, polls = run_guestdump(a.guestdump, work, guest, gdir,
                                                         True, detach=True)
            size = os.path.getsize(gf)
            res = gev["data"]["result"]
            ok = (gr == {"return": {}} and ram_same and res["status"] == "completed" and
                  res["total"] == res["completed"] == size and
                  all(p["total"] in (polls[0]["total"], size) for p in polls))
            tap.ok(ok, "detached", "reply %r event %r polls %r" % (gr, gev, polls[-3:]))
        except Exception as e:
            tap.ok(False, "detached", repr(e))
    finally:
        if not a.keep:
            shutil.rmtree(work_root, ignore_errors=True)
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
