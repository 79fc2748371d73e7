#!/usr/bin/env python3
"""Same guest state through real QEMU 7.2 and through guestdump's kdump writer.

    kdump_compare.py --build BUILD [--qemu qemu-system-x86_64] [--keep DIR]
                     [--kernel VMLINUZ --modules MODROOT] [--cases demo,mix,...]

For each guest state QEMU 7.2 writes an ELF vmcore and a kdump-zlib dump.
Then:
  1. tool:  BUILD/tests/bench/kdump-tool converts QEMU's ELF (the same blocks,
            notes and vCPU count) to kdump-zlib: it must equal QEMU's file
            byte for byte, except the corrections of docs/compat.md (K1
            utsname, K2 phys_base), which are checked to be exactly those.
  2. host:  BUILD/guestdump -restore ELF dumps every kdump format over QMP;
            its kdump-zlib follows the same rule, and all are checked as in 3.
  3. every codec (zlib lzo snappy zstd): the raw output equals the
            flattened one reassembled by makedumpfile -R (when installed);
            libkdumpfile (Debian's /usr/bin/python3) reads every page of
            every PT_LOAD as the ELF holds it.
  4. linux: makedumpfile --dump-dmesg reads the same kernel log from the
            host's kdump-raw-zlib and kdump-raw-lzo as from QEMU's kdump-zlib.
  5. oracle-zero: registers set through the gdbstub recreate the state of
            the shared oracle's "zero" reference dumps; our zlib, lzo and
            snappy files must have the SHA-256 of QEMU 7.2's (a QEMU 7.2
            built with lzo and snappy made those). The local QEMU's ELF
            must be the recorded one unless `--version` shows another QEMU
            than ORACLE_ZERO_QEMU (then the hashes are skipped, saying so).
Cases: mix (32 MiB, 2 vCPUs, 8 MiB of zero/text/random pages at 1 MiB),
zero (32 MiB, nothing loaded), linux and linux-kaslr (Debian's kernel, with
nokaslr and without; 7.2 cannot give the log of the second, K2), with a busybox
initramfs that loads qemu_fw_cfg, so the guest writes VMCOREINFO; needs
--kernel and --modules (or KDUMP_COMPARE_KERNEL / KDUMP_COMPARE_MODULES),
a folder where the kernel package was unpacked, and busybox-static).
  7. restore: guestdump -restore of QEMU's kdump-zlib (and kdump-lzo,
            kdump-snappy when that QEMU has them), dumped as ELF, equals
            QEMU's ELF but for docs/compat.md's corrections (elf_compare.py).
  8. convert: BUILD/guestdump-convert turns QEMU's ELF into kdump-zlib (its
            default): QEMU's file but for K1/K2 as in 1, and byte for byte what
            step 2's guestdump -restore wrote (the same restore and writer);
            into ELF: QEMU's ELF's memory (every PT_LOAD) and notes; and
            QEMU's own kdump-zlib into ELF: QEMU's ELF's memory and notes.
  6. demo:  guestdump's demo guest, no QEMU: every kdump format over QMP
            (flattened and raw) checked as in 3, and libkdumpfile learns
            the architecture from the header (compat K1).
Exit status: 0 all equal, 1 a difference, 77 (meson's skip) when no difference
was found but a check could not run for want of a tool, QEMU or the kernel
(each printed as "skip: ..." naming it).
"""
import argparse
import gzip
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qemu_driver import GDB_REGS, GdbStub, Qmp  # noqa: E402

SKIP = 77
# SHA-256 of QEMU 7.2's own kdump files of the oracle-zero state (elf is the
# ELF this script's QEMU must produce for the state to be the same), and the
# `qemu-system-x86_64 --version` of the QEMU that recorded that ELF.
ORACLE_ZERO_QEMU = "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"
ORACLE_ZERO = {
    "elf": "568734ede2c9a96475934b67c34362d208f2b29a19e18bb5697365c403541f8d",
    "zlib": "74cbb6d9a073d6b07e0dbddb70cbaaa3890dc11e92b9448cc82171de07964d60",
    "lzo": "45d94dfd8ccee2528d611279e0788bcd2f2d9d96b339c6053a6c04c7a480a510",
    "snappy": "8e32d1b861c8f6e6dd17f140d84c6f9948e8efdbbc5e7493ff4521ba9f052c7e",
}
CODECS = ("zlib", "lzo", "snappy", "zstd")


def mix_blob(size, seed):
    """Zero, text-like and random pages in runs, deterministic."""
    rnd = random.Random(seed)
    words = [b"static ", b"int ", b"return ", b"struct ", b"page", b"(void)", b";\n",
             b"    ", b"if (", b") {\n", b"guest", b"memory", b"0x1000 "]
    out = bytearray()
    while len(out) < size:
        kind = rnd.random()
        for _ in range(rnd.randint(1, 15)):
            if kind < 0.4:
                out += bytes(4096)
            elif kind < 0.8:
                page = bytearray()
                while len(page) < 4096:
                    page += rnd.choice(words)
                out += page[:4096]
            else:
                out += rnd.randbytes(4096)
    return bytes(out[:size])


def cpio_newc(entries):
    """entries: (name, mode, data) -> a newc archive."""
    out = bytearray()
    for ino, (name, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], 1):
        nm = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nm), 0))
        out += hdr.encode() + nm
        out += b"\0" * ((4 - len(out) % 4) % 4) + data
        out += b"\0" * ((4 - len(out) % 4) % 4)
    return bytes(out)


def make_initramfs(modroot, path):
    busybox = shutil.which("busybox") or "/bin/busybox"
    mods = []
    for dirpath, _, files in os.walk(os.path.join(modroot, "lib", "modules")):
        mods += [os.path.join(dirpath, f) for f in files
                 if f.startswith("qemu_fw_cfg.ko")]
    if not mods or not os.path.exists(busybox):
        return False
    mod = open(mods[0], "rb").read()
    if mods[0].endswith(".xz"):
        import lzma
        mod = lzma.decompress(mod)
    init = (b"#!/bin/busybox sh\n/bin/busybox --install -s /bin\n"
            b"mount -t proc proc /proc\nmount -t sysfs sysfs /sys\n"
            b"insmod /lib/qemu_fw_cfg.ko\necho KDUMP-COMPARE-READY\nexec sh\n")
    entries = [("bin", 0o40755, b""), ("proc", 0o40755, b""), ("sys", 0o40755, b""),
               ("dev", 0o40755, b""), ("lib", 0o40755, b""),
               ("bin/busybox", 0o100755, open(busybox, "rb").read()),
               ("lib/qemu_fw_cfg.ko", 0o100644, mod), ("init", 0o100755, init)]
    with open(path, "wb") as f:
        f.write(gzip.compress(cpio_newc(entries), 1))
    return True


def run_qemu(qemu, work, case, args):
    sock = os.path.join(work, "qemu.sock")
    cmd = [qemu, "-nodefaults", "-display", "none", "-no-user-config", "-machine", "pc",
           "-accel", "tcg", "-cpu", "qemu64", "-m", case["mem"],
           "-smp", str(case["smp"]),
           "-qmp", f"unix:{sock},server=on,wait=off", "-device", "vmcoreinfo"]
    cmd += case.get("qemu_args", [])
    gdb_sock = os.path.join(work, "gdb.sock")
    if case.get("regs"):
        cmd += ["-gdb", f"unix:{gdb_sock},server=on,wait=off"]
    serial = os.path.join(work, "serial.log")
    if case.get("boot"):
        cmd += ["-serial", f"file:{serial}", "-kernel", args.kernel, "-initrd",
                case["initrd"], "-append", case["append"]]
    else:
        cmd += ["-S"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        q = Qmp(sock)
        if case.get("regs"):
            g = GdbStub(gdb_sock)
            for num, value in case["regs"]:
                g.write_reg(GDB_REGS[num], value)
        if case.get("boot"):
            deadline = time.time() + 120
            while b"KDUMP-COMPARE-READY" not in open(serial, "rb").read():
                if time.time() > deadline or p.poll() is not None:
                    raise RuntimeError("the Linux guest did not come up")
                time.sleep(0.2)
            time.sleep(1)
            q.execute("stop")
        caps = q.execute("query-dump-guest-memory-capability")["formats"]
        # lzo and snappy too when this QEMU has them: restore reads them (7)
        for fmt, name in (("elf", "qemu.elf"), ("kdump-zlib", "qemu-zlib.flat"),
                          ("kdump-lzo", "qemu-lzo.flat"),
                          ("kdump-snappy", "qemu-snappy.flat")):
            if fmt not in caps:
                continue
            q.execute("dump-guest-memory",
                      **{"paging": False, "format": fmt,
                         "protocol": "file:" + os.path.join(work, name)})
        q.execute("quit")
    finally:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_host(build, work, case, elf):
    """guestdump restored from QEMU's ELF: every kdump format, flattened and raw."""
    sock = os.path.join(work, "host.sock")
    cmd = [os.path.join(build, "guestdump"), "-m", case["mem"], "-smp", str(case["smp"]),
           "-restore", elf, "-qmp", f"unix:{sock},server=on,wait=off"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    files = {}
    try:
        q = Qmp(sock)
        caps = q.execute("query-dump-guest-memory-capability")["formats"]
        for codec in CODECS:
            if f"kdump-{codec}" not in caps:
                continue
            paths = []
            for fmt in (f"kdump-{codec}", f"kdump-raw-{codec}"):
                path = os.path.join(work, f"host-{fmt}.kdump")
                q.execute("dump-guest-memory", **{"paging": False, "format": fmt,
                                                  "protocol": "file:" + path})
                paths.append(path)
            files[codec] = tuple(paths)
        q.execute("quit")
    finally:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return files


def restore_qemu_kdumps(build, work, name, elf):
    """guestdump -restore of each QEMU kdump file, dumped as ELF: QEMU's ELF's
    memory and notes (elf_compare.py: equal but for docs/compat.md's rows)."""
    problems = []
    compare = os.path.join(os.path.dirname(os.path.abspath(__file__)), "elf_compare.py")
    for codec in ("zlib", "lzo", "snappy"):
        src = os.path.join(work, f"qemu-{codec}.flat")
        if not os.path.exists(src):
            continue
        out = os.path.join(work, f"restored-{codec}.elf")
        sock = os.path.join(work, "restore.sock")
        p = subprocess.Popen([os.path.join(build, "guestdump"), "-S", "-restore", src,
                              "-qmp", f"unix:{sock},server=on,wait=off"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            q = Qmp(sock)
            q.execute("dump-guest-memory", paging=False, protocol="file:" + out)
            q.execute("quit")
        except Exception as e:  # noqa: BLE001 - any failure is this check's
            p.kill()
            problems.append(f"{name}/restore-{codec}: -restore of QEMU's kdump-{codec} "
                            f"failed: {e}: {p.stderr.read().decode(errors='replace')}")
            continue
        finally:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        r = subprocess.run([sys.executable, compare, elf, out], capture_output=True,
                           text=True)
        if r.returncode:
            problems.append(f"{name}/restore-{codec}: the ELF of QEMU's kdump-{codec} "
                            f"restored differs from QEMU's ELF: {r.stdout[-800:]}"
                            f"{r.stderr[-400:]}")
        else:
            print(f"{name}: -restore of QEMU's kdump-{codec} gives QEMU's ELF's memory "
                  "and notes")
        os.chmod(out, 0o600)
        os.unlink(out)
    return problems


def flat_records(data):
    """[(offset, size, position of the data in the flattened file)]"""
    assert data[:13] == b"makedumpfile\0", "not a flattened file"
    recs, pos = [], 4096
    while True:
        off, size = struct.unpack_from(">qq", data, pos)
        pos += 16
        if off == -1 and size == -1:
            assert pos == len(data), "data after the end marker"
            return recs
        recs.append((off, size, pos))
        pos += size


def reassemble(data):
    recs = flat_records(data)
    out = bytearray(max((o + s for o, s, _ in recs), default=0))
    for off, size, pos in recs:
        out[off:off + size] = data[pos:pos + size]
    return bytes(out)


# The only bytes of a kdump file (reassembled) where ours may differ from 7.2's,
# by docs/compat.md correction: (start, end, name).
# K1: disk_dump_header.utsname, 6 strings of 65 bytes after the 8-byte signature
# and the 4-byte header_version; 7.2 leaves all but machine zero.
K1_UTSNAME = (12, 12 + 6 * 65, "K1 utsname")
# K2: kdump_sub_header.phys_base, its first field, in the block after the
# 4096-byte disk_dump_header; 7.2 parses the guest's decimal as hex.
K2_PHYS_BASE = (4096, 4104, "K2 phys_base")


def with_corrections(qemu_raw, ours_raw):
    """QEMU's reassembled file with the K1 and K2 bytes taken from ours."""
    out = bytearray(qemu_raw)
    for start, end, _ in (K1_UTSNAME, K2_PHYS_BASE):
        out[start:end] = ours_raw[start:end]
    return bytes(out)


def corrections_only(qemu_flat, ours_flat, what):
    """Equal, or different only in utsname (K1) and phys_base (K2)."""
    if qemu_flat == ours_flat:
        return []
    problems = []
    qr, orr = flat_records(qemu_flat), flat_records(ours_flat)
    if [(o, s) for o, s, _ in qr] != [(o, s) for o, s, _ in orr]:
        return [f"{what}: the flattened record sequence differs"]
    q, o = reassemble(qemu_flat), reassemble(ours_flat)
    allowed = set()
    k1, k1_end, _ = K1_UTSNAME
    # 7.2's machine field is x86_64 like a guest's; any other field differing
    # must be because we took the guest's utsname (K1).
    if q[k1:k1 + 4 * 65] != o[k1:k1 + 4 * 65]:
        fields = [o[k1 + 65 * i:k1 + 65 * (i + 1)].split(b"\0")[0] for i in range(6)]
        if fields[0] != b"Linux" or not fields[2] or not fields[3]:
            problems.append(f"{what}: utsname differs but is not a guest utsname")
        allowed.update(range(k1, k1_end))
    k2, k2_end, _ = K2_PHYS_BASE
    if q[k2:k2_end] != o[k2:k2_end]:
        allowed.update(range(k2, k2_end))
    diff = [i for i in range(min(len(q), len(o))) if q[i] != o[i] and i not in allowed] \
        if len(q) == len(o) else ["length"]
    if diff:
        problems.append(f"{what}: differs from QEMU 7.2 beyond K1/K2 "
                        f"(first at {diff[0]})")
    return problems


def elf_notes(path):
    """The bytes of every PT_NOTE, in order."""
    d = open(path, "rb").read()
    phoff, = struct.unpack_from("<Q", d, 32)
    phentsize, phnum = struct.unpack_from("<HH", d, 54)
    out = b""
    for i in range(phnum):
        t, _, off, _, _, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", d,
                                                          phoff + i * phentsize)
        if t == 4:
            out += d[off:off + filesz]
    return out


def convert_case(build, work, elf, qflat, host, name):
    """Step 7: guestdump-convert of QEMU's ELF, to kdump-zlib and to ELF."""
    conv = os.path.join(build, "guestdump-convert")
    problems = []
    out = os.path.join(work, "convert-zlib.flat")
    r = subprocess.run([conv, "-q", elf, out], capture_output=True, text=True)
    if r.returncode != 0 or r.stderr:
        return [f"{name}/convert: exit {r.returncode}: {r.stderr.strip()}"]
    mine = open(out, "rb").read()
    problems += corrections_only(qflat, mine, f"{name}/convert")
    if "zlib" in host and mine != open(host["zlib"][0], "rb").read():
        problems.append(f"{name}/convert: not the bytes guestdump -restore + "
                        "dump-guest-memory wrote for the same ELF")
    out_elf = os.path.join(work, "convert.elf")
    r = subprocess.run([conv, "-q", "--format", "elf", elf, out_elf],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return problems + [f"{name}/convert elf: exit {r.returncode}: {r.stderr}"]
    if elf_loads(out_elf) != elf_loads(elf):
        problems.append(f"{name}/convert elf: memory differs from QEMU's ELF")
    if elf_notes(out_elf) != elf_notes(elf):
        problems.append(f"{name}/convert elf: notes differ from QEMU's ELF")
    # QEMU's own kdump-zlib back to ELF (the kdump reader behind restore):
    # QEMU's ELF's memory, wherever its PT_LOADs split it, and its notes.
    qfile = os.path.join(work, "qemu-zlib.flat")
    back = os.path.join(work, "convert-from-qemu-kdump.elf")
    r = subprocess.run([conv, "-q", "--format", "elf", qfile, back],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return problems + [f"{name}/convert kdump->elf: exit {r.returncode}: "
                           f"{r.stderr.strip()}"]
    if elf_memory(back) != elf_memory(elf):
        problems.append(f"{name}/convert kdump->elf: memory differs from QEMU's ELF")
    if elf_notes(back) != elf_notes(elf):
        problems.append(f"{name}/convert kdump->elf: notes differ from QEMU's ELF")
    return problems


def elf_memory(path):
    """(start, sha256) of each run of contiguous PT_LOADs: the memory, not how
    the segments cut it (a kdump file keeps no block boundaries)."""
    d = open(path, "rb").read()
    phoff, = struct.unpack_from("<Q", d, 32)
    phentsize, phnum = struct.unpack_from("<HH", d, 54)
    segs = []
    for i in range(phnum):
        t, _, off, _, paddr, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", d,
                                                               phoff + i * phentsize)
        if t == 1 and filesz:
            segs.append((paddr, off, filesz))
    runs = []
    for paddr, off, n in sorted(segs):
        if runs and runs[-1][0] + runs[-1][1] == paddr:
            runs[-1][1] += n
            runs[-1][2].update(d[off:off + n])
        else:
            h = hashlib.sha256(d[off:off + n])
            runs.append([paddr, n, h])
    return [(a, n, h.hexdigest()) for a, n, h in runs]


def elf_loads(path):
    d = open(path, "rb").read()
    assert d[4] == 2, "ELF64 expected"
    phoff, = struct.unpack_from("<Q", d, 32)
    phentsize, phnum = struct.unpack_from("<HH", d, 54)
    loads = []
    for i in range(phnum):
        t, _, off, _, paddr, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", d,
                                                               phoff + i * phentsize)
        if t == 1 and filesz:
            digest = hashlib.sha256(d[off:off + filesz]).hexdigest()
            loads.append((paddr, filesz, digest))
    return loads


LKDF = """
import sys, hashlib, kdumpfile
k = kdumpfile.kdumpfile(sys.argv[1])
for spec in sys.argv[2:]:
    a, n = (int(x, 0) for x in spec.split(':'))
    h = hashlib.sha256()
    while n:
        c = min(n, 1 << 20)
        h.update(k.read(kdumpfile.KDUMP_MACHPHYSADDR, a, c))
        a += c; n -= c
    print(h.hexdigest())
"""


def check_readers(tool, work, elf, name):
    """Our writer (kdump-tool) over QEMU's ELF, every codec, checked by readers."""
    files, notes = {}, []
    for codec in CODECS:
        flat = os.path.join(work, f"ours-{codec}.flat")
        raw = os.path.join(work, f"ours-{codec}.raw")
        r1 = subprocess.run([tool, "convert", elf, flat, "--format", codec],
                            capture_output=True, text=True)
        r2 = subprocess.run([tool, "convert", elf, raw, "--format", codec, "--raw"],
                            capture_output=True, text=True)
        if r1.returncode == 2:
            notes.append(f"{name}/{codec}: not built")
            continue
        if r1.returncode or r2.returncode:
            return [f"{name}/{codec}: writer failed: {r1.stderr}{r2.stderr}"], notes
        files[codec] = (flat, raw)
    problems, more = verify_outputs(work, elf, name, files)
    return problems, notes + more


def verify_outputs(work, elf, name, files):
    """files: codec -> (flattened, raw) dumps of the guest the ELF holds."""
    problems, notes = [], []
    loads = elf_loads(elf)
    have_lkdf = subprocess.run(["/usr/bin/python3", "-c", "import kdumpfile"],
                               capture_output=True).returncode == 0
    mdf = shutil.which("makedumpfile")
    for codec, (flat, raw) in files.items():
        if reassemble(open(flat, "rb").read()) != open(raw, "rb").read():
            problems.append(f"{name}/{codec}: raw != reassembled flattened")
        if mdf:
            re_path = os.path.join(work, f"{os.path.basename(raw)}.re")
            with open(flat, "rb") as fi:
                subprocess.run([mdf, "-R", re_path], stdin=fi, capture_output=True)
            if not os.path.exists(re_path) or open(re_path, "rb").read() != \
                    open(raw, "rb").read():
                problems.append(f"{name}/{codec}: makedumpfile -R output != raw output")
        if have_lkdf:
            r = subprocess.run(["/usr/bin/python3", "-c", LKDF, raw] +
                               [f"{a:#x}:{n}" for a, n, _ in loads],
                               capture_output=True, text=True)
            if r.returncode:
                problems.append(f"{name}/{codec}: libkdumpfile: "
                                f"{r.stderr.strip()[-200:]}")
            elif r.stdout.split() != [h for _, _, h in loads]:
                problems.append(f"{name}/{codec}: libkdumpfile pages differ "
                                "from the ELF")
    if not mdf:
        notes.append("skip: makedumpfile not installed: -R not checked")
    if not have_lkdf:
        notes.append("skip: python3-libkdumpfile not installed: pages not checked")
    return problems, notes


LKDF_ARCH = """
import sys, kdumpfile
k = kdumpfile.kdumpfile(sys.argv[1])
print(k.attr['arch.name'], k.attr['linux.uts.release'])
"""


def demo_case(build, work):
    """guestdump's own demo guest: every kdump format over QMP, no QEMU needed."""
    sock = os.path.join(work, "demo.sock")
    proc = subprocess.Popen([os.path.join(build, "guestdump"), "-demo", "-m", "64M",
                             "-smp", "2", "-S", "-qmp",
                             f"unix:{sock},server=on,wait=off"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    problems, notes, files = [], [], {}
    elf = os.path.join(work, "demo.elf")
    try:
        q = Qmp(sock)
        caps = q.execute("query-dump-guest-memory-capability")["formats"]
        q.execute("dump-guest-memory", **{"paging": False, "protocol": "file:" + elf})
        for codec in CODECS:
            if f"kdump-{codec}" not in caps:
                notes.append(f"demo/{codec}: not offered by this build")
                continue
            paths = []
            for fmt in (f"kdump-{codec}", f"kdump-raw-{codec}"):
                path = os.path.join(work, f"demo-{fmt}.kdump")
                q.execute("dump-guest-memory", **{"paging": False, "format": fmt,
                                                  "protocol": "file:" + path})
                st = q.execute("query-dump")
                if st["status"] != "completed" or st["completed"] != st["total"]:
                    problems.append(f"demo/{fmt}: query-dump says {st}")
                paths.append(path)
            files[codec] = tuple(paths)
        q.execute("quit")
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    p, n = verify_outputs(work, elf, "demo", files)
    problems += p
    notes += n
    if files and subprocess.run(["/usr/bin/python3", "-c", "import kdumpfile"],
                                capture_output=True).returncode == 0:
        # K1: the demo guest is Linux-like, so readers must learn its architecture.
        r = subprocess.run(["/usr/bin/python3", "-c", LKDF_ARCH, files["zlib"][1]],
                           capture_output=True, text=True)
        if r.returncode or not r.stdout.startswith("x86_64 "):
            problems.append(f"demo: libkdumpfile has no architecture: "
                            f"{(r.stdout + r.stderr).strip()[-200:]}")
    return problems, notes


def qemu_version(qemu):
    """The first line of `qemu --version`, as ORACLE_ZERO_QEMU records it."""
    r = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=30)
    return r.stdout.splitlines()[0].strip() if r.stdout else "(unknown version)"


def dmesg(work, raw, tag):
    out = os.path.join(work, f"{tag}.dmesg")
    r = subprocess.run(["makedumpfile", "--dump-dmesg", raw, out], capture_output=True)
    return open(out, "rb").read() if r.returncode == 0 else None


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--qemu", default=os.environ.get("QEMU", "qemu-system-x86_64"))
    ap.add_argument("--kernel", default=os.environ.get("KDUMP_COMPARE_KERNEL"))
    ap.add_argument("--modules", default=os.environ.get("KDUMP_COMPARE_MODULES"))
    ap.add_argument("--kernel-cache",
                    help="a linux-guest test cache: use the kernel unpacked there")
    ap.add_argument("--cases",
                    default="demo,mix,zero,oracle-zero,linux,linux-kaslr")
    ap.add_argument("--keep")
    args = ap.parse_args()
    if args.kernel_cache and not args.kernel and \
            any(c.startswith("linux") for c in args.cases.split(",")):
        # The linux-guest test's helper: fetches and unpacks Debian's kernel
        # package once (under a lock, so both tests can ask at the same time).
        here = os.path.dirname(os.path.abspath(__file__))
        r = subprocess.run(["sh", os.path.join(here, "linux-guest", "get-kernel.sh"),
                            args.kernel_cache], capture_output=True, text=True)
        if r.returncode:
            print("get-kernel.sh: " + r.stderr.strip()[-500:])
    if args.kernel_cache and not args.kernel and os.path.isdir(args.kernel_cache):
        for d in sorted(os.listdir(args.kernel_cache)):
            root = os.path.join(args.kernel_cache, d)
            boot = os.path.join(root, "boot")
            if d.startswith("root-linux-image-") and \
                    os.path.exists(os.path.join(root, ".complete")):
                kernels = [k for k in os.listdir(boot) if k.startswith("vmlinuz-")]
                if kernels:
                    args.kernel = os.path.join(boot, kernels[0])
                    args.modules = root
    qemu = shutil.which(args.qemu)
    tool = os.path.join(args.build, "tests", "bench", "kdump-tool")
    work_root = args.keep or tempfile.mkdtemp(prefix="kdump-compare-")
    problems, notes = [], []
    ran = 0
    for name in args.cases.split(","):
        work = os.path.join(work_root, name)
        os.makedirs(work, exist_ok=True)
        if name == "demo":
            p, n = demo_case(args.build, work)
            problems += p
            notes += n
            ran += 1
            print("demo: done")
            continue
        if not qemu:
            notes.append(f"skip: {name}: {args.qemu} not installed")
            continue
        ran += 1
        case = {"mem": "32M", "smp": 1}
        if name == "mix":
            blob = os.path.join(work, "mix.bin")
            with open(blob, "wb") as f:
                f.write(mix_blob(8 << 20, 7))
            case = {"mem": "32M", "smp": 2, "qemu_args": [
                "-device", f"loader,file={blob},addr=0x100000,force-raw=on"]}
        elif name == "oracle-zero":
            # The "zero" state of the shared oracle's reference dumps: QEMU 7.2
            # built with lzo and snappy wrote these files for it.
            case = {"mem": "32M", "smp": 1, "regs": [(0, 0x1111), (1, 0x2222),
                                                     (2, 0x3333), (3, 0x4444)],
                    "sha256": ORACLE_ZERO}
        elif name in ("linux", "linux-kaslr"):
            if not (args.kernel and args.modules):
                notes.append(f"skip: {name}: no kernel (--kernel/--modules, or "
                             "--kernel-cache where get-kernel.sh can fetch it)")
                continue
            initrd = os.path.join(work, "initrd.gz")
            if not make_initramfs(args.modules, initrd):
                notes.append(f"skip: {name}: busybox (busybox-static) not installed or "
                             "no qemu_fw_cfg module")
                continue
            kaslr = "" if name == "linux-kaslr" else " nokaslr"
            case = {"mem": "256M", "smp": 2, "boot": True, "initrd": initrd,
                    "append": f"console=ttyS0{kaslr} panic=-1"}
        run_qemu(qemu, work, case, args)
        elf = os.path.join(work, "qemu.elf")
        qflat = open(os.path.join(work, "qemu-zlib.flat"), "rb").read()
        mine = os.path.join(work, "tool-zlib.flat")
        r = subprocess.run([tool, "convert", elf, mine, "--format", "zlib"],
                           capture_output=True, text=True)
        if r.returncode:
            problems.append(f"{name}: kdump-tool failed: {r.stderr}")
            continue
        problems += corrections_only(qflat, open(mine, "rb").read(), f"{name}/tool")
        host = run_host(args.build, work, case, elf)
        if "zlib" in host:
            problems += corrections_only(qflat, open(host["zlib"][0], "rb").read(),
                                         f"{name}/host")
            p, n = verify_outputs(work, elf, f"{name}/host", host)
            problems += p
        else:
            problems.append(f"{name}/host: guestdump wrote no dump")
        problems += convert_case(args.build, work, elf, qflat, host, name)
        sums = dict(case.get("sha256", {}))
        elf_sum = hashlib.sha256(open(elf, "rb").read()).hexdigest()
        if sums and elf_sum != sums.pop("elf"):
            # Another QEMU may lay the same state out differently; the same
            # QEMU must reproduce the reference, or the state is not the same.
            local = qemu_version(qemu)
            if local == ORACLE_ZERO_QEMU:
                problems.append(f"{name}: {local} wrote an ELF ({elf_sum}) that is not "
                                "the recorded reference of that same QEMU")
            else:
                notes.append(f"{name}: the local QEMU ({local}) is not the one that "
                             f"recorded the reference ({ORACLE_ZERO_QEMU}) and its "
                             "ELF differs; reference hashes not checked")
            sums = {}
        for codec, want in sums.items():
            path = os.path.join(work, f"sha-{codec}.flat")
            r = subprocess.run([tool, "convert", elf, path, "--format", codec],
                               capture_output=True, text=True)
            if r.returncode == 2:
                notes.append(f"{name}/{codec}: not built")
                continue
            got = hashlib.sha256(open(path, "rb").read()).hexdigest()
            if got != want:
                problems.append(f"{name}/{codec}: not QEMU 7.2's bytes ({got})")
        problems += restore_qemu_kdumps(args.build, work, name, elf)
        p, n = check_readers(tool, work, elf, name)
        problems += p
        notes += n
        if name.startswith("linux") and not shutil.which("makedumpfile"):
            notes.append(f"skip: {name}: makedumpfile not installed: logs not compared")
        elif name.startswith("linux"):
            qraw = os.path.join(work, "qemu-zlib.raw")
            with open(qraw, "wb") as f:
                f.write(reassemble(qflat))
            want = dmesg(work, qraw, "qemu")
            # Through the host, as a user would get them (restore, then dump).
            got = {c: dmesg(work, host[c][1], c) for c in ("zlib", "lzo") if c in host}
            if not got:
                problems.append(f"{name}: the host wrote no kdump-raw-zlib/lzo")
            if want is None and "zlib" in host:
                # K2: with KASLR 7.2's hex-parsed phys_base hides the log. QEMU's
                # own file with only K1/K2's bytes made ours (corrections_only
                # checked nothing else differs) must give the log ours gives.
                notes.append(f"{name}: QEMU's dump has no readable log (K2); "
                             "compared with QEMU's dump corrected by K1/K2")
                fixed = os.path.join(work, "qemu-zlib-k1k2.raw")
                with open(fixed, "wb") as f:
                    f.write(with_corrections(open(qraw, "rb").read(),
                                             open(host["zlib"][1], "rb").read()))
                want = dmesg(work, fixed, "qemu-k1k2")
            if want is None:
                problems.append(f"{name}: no kernel log from QEMU's dump, even with "
                                "K1/K2 applied")
            for codec, log in got.items():
                if not log or want is None or log != want:
                    problems.append(f"{name}/{codec}: --dump-dmesg differs from "
                                    "QEMU's (or fails)")
        print(f"{name}: done")
    skips = [n for n in notes if n.startswith("skip: ")]
    for n in notes:
        print(n if n in skips else "note: " + n)
    for p in problems:
        print("FAIL: " + p)
    if not args.keep:
        shutil.rmtree(work_root, ignore_errors=True)
    print("kdump_compare: " + ("OK" if not problems else f"{len(problems)} problem(s)"))
    if problems:
        return 1
    if skips:
        # What ran was equal, but a check could not run: show it as skipped.
        print("kdump_compare: skipped, %d check(s) could not run (above)" % len(skips))
        return SKIP
    return 0 if ran else SKIP


if __name__ == "__main__":
    sys.exit(main())
