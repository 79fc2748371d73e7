#!/usr/bin/env python3
"""-restore of kdump-compressed files, and refusals of bad or foreign input.

  kdump_restore_test.py GUESTDUMP

TAP output. The demo guest is dumped as ELF and in every kdump format
query-dump-guest-memory-capability lists (raw and flattened, each codec);
each kdump file restored and dumped again as ELF gives the original ELF byte
for byte (memory, notes, block layout). Then malformed kdump files (made by
editing a real one) and files of other kinds are refused: non-zero exit, one
line on stderr naming the problem, in bounded time and under a 1 GiB
address-space limit.
"""
import importlib.util
import os
import resource
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
spec = importlib.util.spec_from_file_location(
    "qmp_client", os.path.join(ROOT, "scripts", "qmp-client.py"))
qmp_client = importlib.util.module_from_spec(spec)
spec.loader.exec_module(qmp_client)

PAGE = 4096
DESC = 24
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))
    return bool(cond)


class Host:
    """guestdump with a QMP socket; waits until the socket accepts."""

    def __init__(self, gd, tmp, args):
        self.sock = os.path.join(tmp, "qmp-%d.sock" % time.monotonic_ns())
        self.proc = subprocess.Popen(
            [gd, "-qmp", "unix:%s,server=on,wait=off" % self.sock] + args,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("guestdump %s exited: %s" % (
                    " ".join(args), self.proc.stderr.read().decode(errors="replace")))
            if os.path.exists(self.sock):
                try:
                    self.qmp = qmp_client.QMP(self.sock, timeout=300)
                    break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("guestdump %s: no QMP socket" % " ".join(args))
            time.sleep(0.05)

    def dump(self, path, fmt="elf"):
        self.qmp.execute("dump-guest-memory", {"paging": False,
                                               "protocol": "file:" + path,
                                               "format": fmt})

    def quit(self):
        try:
            self.qmp.execute("quit")
        except (OSError, qmp_client.QMPError, EOFError):
            pass
        self.proc.wait(timeout=60)
        self.proc.stderr.close()


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def refused(gd, path, fragment, extra=()):
    """-restore path exits non-zero with one stderr line holding fragment."""
    name = "refused %s: %s" % (os.path.basename(path), fragment)
    try:
        r = subprocess.run([gd, "-restore", path, "-S"] + list(extra), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=60, preexec_fn=limit_memory)
    except subprocess.TimeoutExpired:
        return check(name, False, "the host did not exit within 60 s")
    err = r.stderr.decode(errors="replace").strip()
    return check(name, r.returncode != 0 and fragment in err and "\n" not in err,
                 "exit %d, stderr %r" % (r.returncode, err))


class Kdump:
    """A raw kdump file of the x86_64 layout, for editing."""

    def __init__(self, data):
        self.d = bytearray(data)
        self.block = struct.unpack_from("<I", self.d, 428)[0]
        self.sub_blocks, self.bitmap_blocks = struct.unpack_from("<II", self.d, 432)
        self.bitmap1 = (1 + self.sub_blocks) * self.block
        self.bitmap_len = self.bitmap_blocks // 2 * self.block
        self.offset_page = self.bitmap1 + self.bitmap_blocks * self.block
        self.max_mapnr = struct.unpack_from("<Q", self.d, self.block + 96)[0]

    def pages(self):
        bm = self.d[self.bitmap1 + self.bitmap_len:self.bitmap1 + 2 * self.bitmap_len]
        return [p for p in range(self.max_mapnr) if bm[p // 8] >> (p % 8) & 1]

    def desc(self, i):
        return list(struct.unpack_from("<QIIQ", self.d, self.offset_page + i * DESC))

    def set_desc(self, i, d):
        struct.pack_into("<QIIQ", self.d, self.offset_page + i * DESC, *d)

    def edited(self, fn):
        k = Kdump(bytes(self.d))
        fn(k)
        return bytes(k.d)


def flatten(raw, records=None):
    """raw in makedumpfile's flattened format, cut into 64 KiB records."""
    out = bytearray(b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1))
    out += bytes(PAGE - len(out))
    for off in range(0, len(raw), 65536) if records is None else []:
        chunk = raw[off:off + 65536]
        out += struct.pack(">qq", off, len(chunk)) + chunk
    for off, chunk in records or []:
        out += struct.pack(">qq", off, len(chunk)) + chunk
    return bytes(out) + struct.pack(">qq", -1, -1)


def put(tmp, name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_roundtrips(gd, tmp):
    """Every kdump format of the demo guest restores to the guest its ELF shows."""
    h = Host(gd, tmp, ["-demo", "-demo-seed", "5", "-m", "64M", "-smp", "2", "-S"])
    caps = h.qmp.execute("query-dump-guest-memory-capability")["formats"]
    fmts = [f for f in caps if f.startswith("kdump")]
    orig = os.path.join(tmp, "orig.elf")
    h.dump(orig)
    for f in fmts:
        h.dump(os.path.join(tmp, "orig." + f), f)
    h.quit()
    check("capability lists kdump formats (%s)" % ", ".join(fmts), len(fmts) >= 4)
    want = read(orig)
    for f in fmts:
        again = os.path.join(tmp, "again-%s.elf" % f)
        try:
            r = Host(gd, tmp, ["-S", "-restore", os.path.join(tmp, "orig." + f)])
            r.dump(again)
            r.quit()
            got = read(again)
            check("%s restores to the ELF's guest byte for byte" % f, got == want,
                  "%d bytes against %d" % (len(got), len(want)))
        except Exception as e:
            check("%s restores" % f, False, str(e))
        finally:
            if os.path.exists(again):
                os.chmod(again, 0o600)
                os.unlink(again)
    return os.path.join(tmp, "orig.kdump-raw-zlib"), want


def elf_parts(data):
    """An ELF64 vmcore's PT_LOADs as (paddr, bytes) and its note names."""
    phoff, = struct.unpack_from("<Q", data, 32)
    phnum, = struct.unpack_from("<H", data, 56)
    loads, names = [], []
    for i in range(phnum):
        typ, _, off, _, paddr, filesz = struct.unpack_from("<IIQQQQ", data, phoff + 56 * i)
        if typ == 1:
            loads.append((paddr, data[off:off + filesz]))
        elif typ == 4:
            at = off
            while at + 12 <= off + filesz:
                namesz, descsz, _ = struct.unpack_from("<III", data, at)
                if namesz == 0 and descsz == 0:
                    break
                names.append(data[at + 12:at + 12 + namesz].rstrip(b"\0").decode())
                at += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return loads, names


def restored(gd, tmp, name, data):
    """The ELF guestdump dumps after -restore of data (a file named name)."""
    path = put(tmp, name, data)
    again = os.path.join(tmp, name + ".elf")
    try:
        r = Host(gd, tmp, ["-S", "-restore", path])
        r.dump(again)
        r.quit()
        return read(again)
    finally:
        if os.path.exists(again):
            os.chmod(again, 0o600)
            os.unlink(again)


def test_vmcoreinfo_text(gd, tmp, raw, want):
    """VMCOREINFO from the sub header's text when the note chunk has none."""
    k = Kdump(raw)
    off_note, size_note = struct.unpack_from("<QQ", raw, k.block + 48)
    notes = raw[off_note:off_note + size_note]
    at = notes.find(b"VMCOREINFO\0")
    check("the demo guest's kdump carries a VMCOREINFO note", at > 0)
    renamed = bytearray(raw)
    renamed[off_note + at:off_note + at + 11] = b"VMCOREINFX\0"
    got = restored(gd, tmp, "renamed.kdump", bytes(renamed))
    check("a kdump whose notes lack VMCOREINFO gets it from the sub header's text "
          "(a new ELF equals the original)", got == want)
    # header version 3: no note chunk yet, only the VMCOREINFO text
    v3 = bytearray(raw)
    struct.pack_into("<I", v3, 8, 3)
    loads, names = elf_parts(restored(gd, tmp, "v3.kdump", bytes(v3)))
    want_loads, want_names = elf_parts(want)
    check("a header version 3 kdump (no notes) restores its memory, no vCPUs and "
          "its VMCOREINFO", loads == want_loads and names == ["VMCOREINFO"] and
          "CORE" in want_names, "notes %s" % names)


def test_i386(gd, tmp):
    """A 32-bit guest's kdump files have the i386 header layout and restore too."""
    elf32 = os.path.join(ROOT, "tests", "fuzz", "corpus", "restore", "elf32")
    orig = os.path.join(tmp, "i386.elf")
    h = Host(gd, tmp, ["-S", "-restore", elf32])
    h.dump(orig)
    fmts = ("kdump-zlib", "kdump-raw-zlib")
    for f in fmts:
        h.dump(os.path.join(tmp, "i386." + f), f)
    h.quit()
    want = read(orig)
    for f in fmts:
        path = os.path.join(tmp, "i386." + f)
        raw = read(path)
        if f == "kdump-zlib":
            raw = raw[PAGE + 16:]   # flattened: the header is the first record
        check("%s of a 32-bit guest has the i386 header layout (block size at 416)" % f,
              struct.unpack_from("<I", raw, 416)[0] == PAGE and
              struct.unpack_from("<I", raw, 428)[0] != PAGE)
        again = os.path.join(tmp, "i386-again.elf")
        try:
            r = Host(gd, tmp, ["-S", "-restore", path])
            r.dump(again)
            r.quit()
            check("%s of a 32-bit guest restores to its ELF byte for byte" % f,
                  read(again) == want)
        except Exception as e:
            check("%s of a 32-bit guest restores" % f, False, str(e))
        finally:
            if os.path.exists(again):
                os.chmod(again, 0o600)
                os.unlink(again)


def test_flattened_records(gd, tmp, raw, want):
    """Records out of order and rewritten (makedumpfile rewrites its sub header)."""
    k = Kdump(raw)
    recs = []
    for off in range(0, len(raw), 40000):
        recs.append((off, raw[off:off + 40000]))
    recs.reverse()
    # a wrong sub header first, the right one after it: the later record wins
    recs.insert(0, (k.block, bytes(200)))
    recs.append((k.block, raw[k.block:k.block + 200]))
    path = put(tmp, "shuffled.flat", flatten(raw, recs))
    again = os.path.join(tmp, "again-shuffled.elf")
    try:
        r = Host(gd, tmp, ["-S", "-restore", path])
        r.dump(again)
        r.quit()
        check("flattened records in any order, later ones winning, restore",
              read(again) == want)
    except Exception as e:
        check("flattened records in any order restore", False, str(e))
    finally:
        if os.path.exists(again):
            os.chmod(again, 0o600)
            os.unlink(again)


def test_refusals(gd, tmp, raw):
    k = Kdump(raw)
    pages = k.pages()
    nz = next(i for i in range(len(pages))
              if k.desc(i)[2] == 1 and k.desc(i)[1] < PAGE)   # a zlib page
    size = len(raw)
    hole_pfn = 0x20000   # 512 MiB: beyond the 64 MiB guest, below 4 GiB's BIOS

    def edit(name, fn, fragment):
        refused(gd, put(tmp, name, k.edited(fn)), fragment)

    refused(gd, put(tmp, "short.kdump", raw[:300]), "truncated")
    refused(gd, put(tmp, "big.kdump", raw), "more than the 16 MiB -restore-max-ram allows",
            ["-restore-max-ram", "16M"])
    refused(gd, put(tmp, "half.kdump", raw[:size // 2]), "truncated")
    refused(gd, put(tmp, "descs.kdump", raw[:k.offset_page + 10 * DESC]),
            "bitmap claims %d pages but the file holds descriptors for 10" % len(pages))
    edit("sig.kdump", lambda e: e.d.__setitem__(slice(0, 8), b"KDUMP  X"),
         "not an ELF vmcore nor a kdump-compressed file")
    edit("version.kdump", lambda e: struct.pack_into("<I", e.d, 8, 7), "header version 7")
    edit("block.kdump", lambda e: struct.pack_into("<I", e.d, 428, 8192),
         "not the x86 page size 4096")
    edit("incomplete.kdump", lambda e: struct.pack_into("<I", e.d, 424, 0x9),
         "marked incomplete")
    edit("status.kdump", lambda e: struct.pack_into("<I", e.d, 424, 0x101),
         "unknown status flags")
    edit("bitmaps.kdump", lambda e: struct.pack_into("<I", e.d, 436, 1 << 30),
         "truncated: its header, sub header and bitmaps")
    edit("oddbitmap.kdump", lambda e: struct.pack_into("<I", e.d, 436, 3), "bitmap blocks")
    edit("split.kdump", lambda e: struct.pack_into("<I", e.d, e.block + 12, 1),
         "split dump")
    edit("mapnr.kdump", lambda e: struct.pack_into("<Q", e.d, e.block + 96, 1 << 41),
         "beyond x86's 52-bit")
    edit("mapnr2.kdump",
         lambda e: struct.pack_into("<Q", e.d, e.block + 96, e.bitmap_len * 8 + 1),
         "but its bitmaps hold")
    edit("note.kdump", lambda e: struct.pack_into("<Q", e.d, e.block + 48, size),
         "truncated: its ELF notes")
    edit("notesize.kdump", lambda e: struct.pack_into("<Q", e.d, e.block + 56, 1 << 40),
         "truncated: its ELF notes")
    edit("vmcoreinfo.kdump", lambda e: struct.pack_into("<Q", e.d, e.block + 40, 1 << 62),
         "truncated: its VMCOREINFO")
    edit("bm2.kdump", lambda e: e.d.__setitem__(e.bitmap1 + e.bitmap_len + hole_pfn // 8,
                                                e.d[e.bitmap1 + e.bitmap_len
                                                    + hole_pfn // 8] | 1),
         "second bitmap has page 0x%x, which its first bitmap lacks" % hole_pfn)

    def desc_edit(i, field, value):
        def fn(e):
            d = e.desc(i)
            d[field] = value
            e.set_desc(i, d)
        return fn

    edit("dsize.kdump", desc_edit(nz, 1, 5000), "bytes of compressed data")
    edit("dzero.kdump", desc_edit(nz, 1, 0), "0 bytes of compressed data")
    edit("draw.kdump", desc_edit(nz, 2, 0), "of uncompressed data")
    edit("dflags.kdump", desc_edit(nz, 2, 0x40), "unknown flags 0x40")
    edit("dtwo.kdump", desc_edit(nz, 2, 0x3), "unknown flags 0x3")
    edit("doff.kdump", desc_edit(nz, 0, size - 10), "truncated: page data")
    edit("dwrap.kdump", desc_edit(nz, 0, (1 << 64) - 8), "truncated: page data")
    edit("dcodec.kdump", desc_edit(nz, 2, 0x2), "lzo data does not decompress")

    def garble(e):
        off, sz = e.desc(nz)[:2]
        e.d[off:off + sz] = bytes(b ^ 0x5a for b in e.d[off:off + sz])
    edit("garbled.kdump", garble, "zlib data does not decompress")

    def short_page(e):
        # valid zlib data that holds less than a page
        data = zlib.compress(b"x" * 100)
        d = e.desc(nz)
        e.d[d[0]:d[0] + len(data)] = data
        d[1] = len(data)
        e.set_desc(nz, d)
    edit("shortpage.kdump", short_page, "does not decompress to one page")

    # 131072 runs of one page: more blocks than restore creates
    runs = bytearray(raw[:k.bitmap1])
    struct.pack_into("<I", runs, 436, 16)                   # 2 x 8 blocks: 2^18 pfns
    struct.pack_into("<Q", runs, k.block + 96, 1 << 18)
    struct.pack_into("<Q", runs, k.block + 56, 0)           # no notes
    struct.pack_into("<Q", runs, k.block + 40, 0)
    runs += b"\x55" * (8 * PAGE) * 2
    runs += bytes(DESC << 17)                               # room for their descriptors
    refused(gd, put(tmp, "runs.kdump", bytes(runs)), "more than 65536 runs")

    # every bit of two 1 MiB bitmaps set (8 Mi pages, 32 GiB) and no descriptors:
    # refused after counting, without building runs of pages the file lacks
    ones = bytearray(raw[:k.bitmap1])
    struct.pack_into("<I", ones, 436, 2 * 256)
    struct.pack_into("<Q", ones, k.block + 96, 256 * PAGE * 8)
    struct.pack_into("<Q", ones, k.block + 56, 0)
    struct.pack_into("<Q", ones, k.block + 40, 0)
    ones += b"\xff" * (256 * PAGE) * 2
    refused(gd, put(tmp, "ones.kdump", bytes(ones)),
            "bitmap claims %d pages but the file holds descriptors for 0" % (256 * PAGE * 8))

    # flattened
    flat = flatten(raw)
    refused(gd, put(tmp, "noend.flat", flat[:-16]), "end marker is missing")
    refused(gd, put(tmp, "cut.flat", flat[:PAGE + 16 + 1000]),
            "truncated: flattened record at offset 0x1000 claims 0x10000 bytes")
    refused(gd, put(tmp, "type.flat", flat[:16] + struct.pack(">q", 2) + flat[24:]),
            "unknown header (type 2")
    refused(gd, put(tmp, "far.flat", flatten(b"", [(1 << 50, b"x" * 16)])), "beyond 16 TiB")
    refused(gd, put(tmp, "neg.flat", flatten(b"", [(-5, b"x" * 16)])), "beyond 16 TiB")
    refused(gd, put(tmp, "halfflat.flat", flatten(raw[:size // 2])), "truncated")
    refused(gd, put(tmp, "empty.flat", flatten(b"")), "shorter than its header")

    # other kinds of file
    refused(gd, put(tmp, "savevm.qevm", b"QEVM\0\0\0\3" + bytes(100)),
            "a QEMU migration stream or savevm file")
    refused(gd, put(tmp, "win.dmp", b"PAGEDU64" + bytes(100)), "a Windows crash dump")
    refused(gd, put(tmp, "win32.dmp", b"PAGEDUMP" + bytes(100)), "a Windows crash dump")
    exe = bytearray(b"\x7fELF\x02\x01\x01" + bytes(57))
    struct.pack_into("<H", exe, 16, 2)
    refused(gd, put(tmp, "prog.elf", bytes(exe)), "not a core dump")
    refused(gd, put(tmp, "text.txt", b"hello\n"), "unrecognised first bytes")
    refused(gd, put(tmp, "empty", b""), "is empty")
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    refused(gd, fifo, "not a regular file")
    refused(gd, tmp, "not a regular file")


def main():
    gd = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="kdump-restore-") as tmp:
        try:
            raw, want = test_roundtrips(gd, tmp)
            test_flattened_records(gd, tmp, read(raw), want)
            test_i386(gd, tmp)
            test_vmcoreinfo_text(gd, tmp, read(raw), want)
            test_refusals(gd, tmp, read(raw))
        except Exception as e:
            check("no exception", False, repr(e))
        for root, dirs, files in os.walk(tmp):
            for n in files:
                p = os.path.join(root, n)
                if not stat.S_ISFIFO(os.lstat(p).st_mode):
                    os.chmod(p, 0o600)
    print("1..%d" % len(results))
    for i, (name, ok, detail) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
        if not ok and detail:
            for line in detail.splitlines():
                print("# " + line)
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
