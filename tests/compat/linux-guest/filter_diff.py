#!/usr/bin/env python3
"""Are two filtered kdump files the same dump, page for page? And if not, why?

    filter_diff.py REF.kdump OURS.kdump [--elf UNFILTERED.elf] [--show N]

REF is what `makedumpfile -d LEVEL` wrote from the unfiltered ELF, OURS what
guestdump wrote with `dump-level LEVEL`. Both must be plain (seekable) kdump
files, uncompressed or zlib pages. The kept pages are the pfns set in each
file's second bitmap; for every pfn kept by both, the page data must be equal.
The report gives counts, the first differing pfns of each kind and, with
--elf, what the guest's struct page says about each of them (flags decoded
with VMCOREINFO's PG_* numbers, mapping, _mapcount, private, compound head,
whether the page is all zero), plus a histogram of those classes, so a
mismatch names the class the classifier got wrong. Exit status 0 when equal,
1 when not, 2 on unreadable input. Standard library only.
"""
import argparse
import collections
import mmap
import os
import struct
import sys
import zlib

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import elf_compare  # noqa: E402

PAGE = 4096
# disk_dump_header field offsets (x86-64): after signature[8], header_version,
# new_utsname (6 x 65 bytes) and a timeval padded to 8.
HDR_VERSION, HDR_BLOCK_SIZE = 8, 428
# page_desc flags.
DH_ZLIB, DH_LZO, DH_SNAPPY, DH_ZSTD = 0x1, 0x2, 0x4, 0x20


class KdumpError(Exception):
    pass


class Kdump:
    """A plain kdump file: header facts, the second bitmap's pfns, page data."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "rb")
        try:
            self.m = mmap.mmap(self.f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:
            raise KdumpError("%s: empty file" % path)
        m = self.m
        if m[:8] != b"KDUMP   ":
            raise KdumpError("%s: not a plain kdump file (signature %r; reassemble "
                             "flattened files with makedumpfile -R)" % (path, m[:8]))
        self.version = struct.unpack_from("<i", m, HDR_VERSION)[0]
        (bs, self.sub_blocks, self.bitmap_blocks, max_mapnr
         ) = struct.unpack_from("<iiII", m, HDR_BLOCK_SIZE)
        if bs != PAGE or not 0 < self.sub_blocks < 1 << 16:
            raise KdumpError("%s: block size %d, sub header %d blocks" % (
                path, bs, self.sub_blocks))
        sub = bs
        self.phys_base, self.dump_level = struct.unpack_from("<Qi", m, sub)
        self.max_mapnr = max_mapnr
        if self.version >= 6:
            self.max_mapnr = struct.unpack_from("<Q", m, sub + 96)[0]
        vo, vs = struct.unpack_from("<QQ", m, sub + 32)
        self.vmcoreinfo = parse_vmcoreinfo(bytes(m[vo:vo + vs])) if vs else {}
        bm = bs * (1 + self.sub_blocks)
        half = self.bitmap_blocks * bs // 2
        if bm + 2 * half > len(m) or self.max_mapnr > half * 8:
            raise KdumpError("%s: bitmaps (%d blocks) do not fit the file or "
                             "max_mapnr %d" % (path, self.bitmap_blocks, self.max_mapnr))
        self.bitmap1 = m[bm:bm + half]
        self.bitmap2 = m[bm + half:bm + 2 * half]
        self.pfns = bitmap_pfns(self.bitmap2, self.max_mapnr)
        self.index = {pfn: i for i, pfn in enumerate(self.pfns)}
        self.pd_off = bm + 2 * half
        if self.pd_off + 24 * len(self.pfns) > len(m):
            raise KdumpError("%s: %d page descriptors do not fit the file" % (
                path, len(self.pfns)))

    def desc(self, pfn):
        return struct.unpack_from("<qIIQ", self.m, self.pd_off + 24 * self.index[pfn])

    def page(self, pfn):
        off, size, flags, _ = self.desc(pfn)
        raw = self.m[off:off + size]
        if len(raw) != size:
            raise KdumpError("%s: pfn 0x%x's data runs past the end" % (self.path, pfn))
        if flags & DH_ZLIB:
            data = zlib.decompress(raw)
        elif flags & (DH_LZO | DH_SNAPPY | DH_ZSTD):
            raise KdumpError("%s: pfn 0x%x uses page flags 0x%x; compare zlib or "
                             "uncompressed files" % (self.path, pfn, flags))
        else:
            data = raw
        if len(data) != PAGE:
            raise KdumpError("%s: pfn 0x%x holds %d bytes" % (self.path, pfn, len(data)))
        return data


def parse_vmcoreinfo(text):
    kv = {}
    for line in text.decode(errors="replace").splitlines():
        k, sep, v = line.partition("=")
        if sep:
            kv[k] = v
    return kv


def bitmap_pfns(bitmap, limit):
    out = []
    for i, byte in enumerate(bitmap):
        if byte:
            base = i * 8
            out.extend(base + b for b in range(8) if byte >> b & 1 and base + b < limit)
    return out


# ---- the guest's struct page, from the unfiltered ELF ----

KERNEL_MAP = 0xffffffff80000000
PTE_ADDR = 0x000ffffffffff000


class Guest:
    """Physical reads from an ELF vmcore and the struct page of a pfn."""

    def __init__(self, elf_path):
        e = elf_compare.Elf(elf_path)
        self.data = e.data
        self.loads = sorted((p["paddr"], p["offset"], p["filesz"]) for p in e.phdrs
                            if p["type"] == elf_compare.PT_LOAD and p["filesz"])
        self.vmci = {}
        for name, desc in e.notes():
            if name == b"VMCOREINFO":
                self.vmci = parse_vmcoreinfo(desc)
        v = self.vmci
        self.num = lambda k: int(v["NUMBER(%s)" % k])
        self.phys_base = int(v.get("NUMBER(phys_base)", "0"))
        self.pgd = self.kva2pa(int(v["SYMBOL(init_top_pgt)"], 16)) \
            if "SYMBOL(init_top_pgt)" in v else None
        self.memo = {}
        self.flag_bits = {k[10:-1]: int(x) for k, x in v.items()
                          if k.startswith("NUMBER(PG_") and k != "NUMBER(PG_head_mask)"}

    def phys(self, pa, n):
        for start, off, size in self.loads:
            if start <= pa and pa + n <= start + size:
                return bytes(self.data[off + pa - start:off + pa - start + n])
        raise KeyError("phys 0x%x not in the ELF" % pa)

    def u64(self, pa):
        return struct.unpack("<Q", self.phys(pa, 8))[0]

    def kva2pa(self, va):
        return va - KERNEL_MAP + self.phys_base

    def v2p(self, va):
        if va >= KERNEL_MAP:
            return self.kva2pa(va)
        if self.pgd is None:
            raise KeyError("no SYMBOL(init_top_pgt) to walk")
        table = self.pgd
        for level, shift in enumerate((39, 30, 21, 12)):
            e = self.u64(table + 8 * (va >> shift & 511))
            if not e & 1:
                raise KeyError("va 0x%x not mapped" % va)
            if level in (1, 2) and e & 0x80:
                return (e & PTE_ADDR & ~((1 << shift) - 1)) | (va & ((1 << shift) - 1))
            table = e & PTE_ADDR
        return table | (va & 0xfff)

    def struct_page(self, pfn):
        v = self.vmci
        ms_size = int(v["SIZE(mem_section)"])
        per_root = PAGE // ms_size
        nr = pfn >> (self.num("SECTION_SIZE_BITS") - 12)
        root = int(v["SYMBOL(mem_section)"], 16)
        root_ptr = self.u64(self.v2p(root + 8 * (nr // per_root)))
        if not root_ptr:
            raise KeyError("no mem_section root for pfn 0x%x" % pfn)
        ms = root_ptr + (nr % per_root) * ms_size
        smm = self.u64(self.v2p(ms + int(v["OFFSET(mem_section.section_mem_map)"])))
        mem_map = smm & ~0x3f
        size = int(v["SIZE(page)"])
        va = (mem_map + pfn * size) & (1 << 64) - 1
        return va, self.phys(self.v2p(va), size)

    def fields(self, pfn):
        """(va, flags, mapping, _mapcount, private, compound_head), memoised."""
        if pfn not in self.memo:
            v = self.vmci
            va, p = self.struct_page(pfn)
            off = lambda k: int(v["OFFSET(page.%s)" % k])   # noqa: E731
            self.memo[pfn] = (va, struct.unpack_from("<Q", p, off("flags"))[0],
                              struct.unpack_from("<Q", p, off("mapping"))[0],
                              struct.unpack_from("<i", p, off("_mapcount"))[0],
                              struct.unpack_from("<Q", p, off("private"))[0],
                              struct.unpack_from("<Q", p, off("compound_head"))[0])
        return self.memo[pfn]

    def buddy_head(self, pfn):
        """(head pfn, order) of the free block holding pfn, or None."""
        buddy = int(self.vmci.get("NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)", "1"))
        for order in range(11):
            head = pfn & ~((1 << order) - 1)
            try:
                _, _, _, mapcount, private, _ = self.fields(head)
            except (KeyError, struct.error, ValueError):
                return None
            if mapcount == buddy and private >= order:
                return head, private
        return None

    def describe(self, pfn):
        """(class, text) of pfn's struct page."""
        v = self.vmci
        try:
            va, flags, mapping, mapcount, private, chead = self.fields(pfn)
        except (KeyError, struct.error, ValueError) as e:
            return "unreadable", "struct page unreadable: %s" % e
        names = [n for n, b in sorted(self.flag_bits.items(), key=lambda x: x[1])
                 if flags >> b & 1]
        head_mask = int(v.get("NUMBER(PG_head_mask)", "0"))
        if head_mask and flags & head_mask:
            names.append("head")
        try:
            zero = self.phys(pfn * PAGE, PAGE) == bytes(PAGE)
        except KeyError:
            zero = None
        bit = lambda n: n in names  # noqa: E731
        free = self.buddy_head(pfn)
        if free:
            cls = "free"
        elif mapcount == int(v.get("NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)", "1")):
            cls = "offline"
        elif chead & 1:
            cls = "tail"
        elif bit("slab"):
            cls = "slab"
        elif bit("hwpoison"):
            cls = "hwpoison"
        elif mapping & 1:
            cls = "anon" + ("+swapcache" if bit("swapcache") else "")
        elif bit("lru") or (bit("swapcache") and bit("swapbacked")):
            cls = "cache" + ("+private" if bit("private") else "")
        elif mapping:
            cls = "mapped-nonlru"
        else:
            cls = "other"
        if zero:
            cls += ",zero"
        text = ("struct page 0x%x: flags 0x%x [%s] mapping 0x%x _mapcount %d "
                "private 0x%x compound_head 0x%x%s%s" % (
                    va, flags, ",".join(names), mapping, mapcount, private, chead,
                    " (zero page)" if zero else "",
                    "; in the free block of order %d at pfn 0x%x" % (free[1], free[0])
                    if free else ""))
        return cls, text


def compare(ref_path, ours_path, elf_path=None, show=8):
    """(equal, report text)."""
    ref, ours = Kdump(ref_path), Kdump(ours_path)
    lines = []
    a, b = set(ref.pfns), set(ours.pfns)
    only_ref, only_ours = sorted(a - b), sorted(b - a)
    lines.append("kept pages: reference %d, ours %d, both %d; only in reference %d, "
                 "only in ours %d" % (len(a), len(b), len(a & b), len(only_ref),
                                      len(only_ours)))
    lines.append("dump_level: reference %d, ours %d; max_mapnr %d / %d" % (
        ref.dump_level, ours.dump_level, ref.max_mapnr, ours.max_mapnr))
    differ = []
    for pfn in sorted(a & b):
        if ref.page(pfn) != ours.page(pfn):
            differ.append(pfn)
    lines.append("pages kept by both whose data differ: %d" % len(differ))
    guest = Guest(elf_path) if elf_path and (only_ref or only_ours or differ) else None
    for what, pfns in (("only in reference (we dropped what makedumpfile keeps)",
                        only_ref),
                       ("only in ours (we kept what makedumpfile drops)", only_ours),
                       ("data differ", differ)):
        if not pfns:
            continue
        lines.append("%s: first pfns %s" % (what, " ".join("0x%x" % p for p in pfns[:show])))
        if guest:
            hist = collections.Counter(guest.describe(p)[0] for p in pfns[:20000])
            lines.append("  classes (guest's struct page): " + ", ".join(
                "%s %d" % kv for kv in hist.most_common()))
            for p in pfns[:show]:
                lines.append("  pfn 0x%x: %s" % (p, guest.describe(p)[1]))
    equal = not (only_ref or only_ours or differ) and ref.dump_level == ours.dump_level
    return equal, "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ref")
    ap.add_argument("ours")
    ap.add_argument("--elf", help="the unfiltered ELF both were made from")
    ap.add_argument("--show", type=int, default=8)
    a = ap.parse_args(argv)
    try:
        equal, report = compare(a.ref, a.ours, a.elf, a.show)
    except (KdumpError, OSError, zlib.error) as e:
        print("filter_diff: %s" % e, file=sys.stderr)
        return 2
    print(report)
    print("EQUAL" if equal else "DIFFERENT")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
