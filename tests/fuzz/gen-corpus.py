#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/ (tiny, deterministic): python3 gen-corpus.py"""
import base64
import os
import struct
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def save(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def note(name, ntype, desc):
    n = name.encode() + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)
    return struct.pack("<III", len(n), len(desc), ntype) + pad(n) + pad(desc)


VMCOREINFO = (b"OSRELEASE=6.1.0-fuzz\nPAGESIZE=4096\n"
              b"SYMBOL(init_top_pgt)=ffffffff82a0a000\nNUMBER(phys_base)=16777216\n")

# ---------------------------------------------------------------- qmp
def qmp():
    cases = {
        "negotiate": (0, b'{"execute": "qmp_capabilities"}\r\n'
                         b'{"execute": "query-status", "id": 1}'),
        "capability": (1, b'{"execute":"query-dump-guest-memory-capability"}'
                          b'{"execute":"query-dump"}{"execute":"query-version","id":"x"}'),
        "dump-args": (1, b'{"execute": "dump-guest-memory", "arguments": {"paging": false,'
                         b' "protocol": "fd:none", "format": "kdump-zlib",'
                         b' "begin": 4096, "length": 8192, "detach": true}}'),
        "dump-file": (1, b'{"execute": "dump-guest-memory", "arguments": {"paging": true,'
                         b' "protocol": "file:/tmp/x", "begin": 0, "length": 1048576}}'
                         b'{"execute": "dump-guest-memory", "arguments": {"paging": false,'
                         b' "protocol": "file:y", "detach": true, "format": "kdump-lzo"}}'
                         b'{"execute": "query-dump"}'),
        "dump-bad": (1, b'{"execute": "dump-guest-memory", "arguments": {"paging": "yes",'
                        b' "protocol": 7}}'),
        "hmp": (1, b'{"execute": "human-monitor-command", "arguments":'
                   b' {"command-line": "info status"}}'
                   b'{"execute": "human-monitor-command", "arguments":'
                   b' {"command-line": "help dump-guest-memory"}}'),
        "hmp-dump-expr": (1, b'{"execute": "human-monitor-command", "arguments":'
                             b' {"command-line": "info dump"}, "id": [1, 2.5e10]}'),
        "registers": (1, b'{"execute": "x-guestdump-set-registers", "arguments":'
                         b' {"cpu-index": 1, "registers": [{"name": "cr3", "value": 4096},'
                         b' {"name": "rip", "value": 18446744073709551615}]}}'
                         b'{"execute": "x-guestdump-query-registers",'
                         b' "arguments": {"cpu-index": 1}}'),
        "fds": (1, b'{"execute": "add-fd", "arguments": {"fdset-id": 1}}'
                   b'{"execute": "query-fdsets"}{"execute": "remove-fd",'
                   b' "arguments": {"fdset-id": 1, "fd": 3}}'
                   b'{"execute": "getfd", "arguments": {"fdname": "a"}}'
                   b'{"execute": "closefd", "arguments": {"fdname": "a"}}'),
        "runstate": (1, b'{"execute": "stop"}{"execute": "cont"}{"execute": "query-status"}'),
        "schema": (1, b'{"execute": "query-commands"}{"execute": "query-qmp-schema"}'),
        "oob": (3, b'{"exec-oob": "query-status", "id": 2}{"execute": "quit"}'),
        "malformed": (1, b"{'execute': 'query-version', \"id\": \"\\u00e9\\ud83d\\ude00\"}"
                         b'[1, 2\x00{"a": tru}\xff]]}{"execute": 1}{"execute": "x",'
                         b' "arguments": []}{"id": null, "foo": 1}'),
        "nesting": (1, b"[" * 300 + b"]" * 300 + b'{"execute": "query-dump"}'),
    }
    for name, (flags, text) in cases.items():
        save("qmp", name, bytes([flags]) + struct.pack("<H", len(text) // 2) + text)


# ---------------------------------------------------------------- hmp
def hmp():
    cases = {
        "info": "help\ninfo\ninfo status\ninfo version\ninfo dump\n? info\nhelp nosuch\n",
        "dump": "dump-guest-memory -p f 0x1000 (4096*2)\ndump-guest-memory -z -R f\n"
                "dump-guest-memory -d -w f\ninfo dump\n"
                "dump-guest-memory f ~0 -1\ndump-guest-memory -x f\n",
        "expr": "dump-guest-memory f (1+2)*3/0 4\ndump-guest-memory f 0x10%3 077|0x8^1&7\n"
                "dump-guest-memory f ((((((1)))))) -(-(2))\ndump-guest-memory\n",
        "runstate": "stop\ns\ninfo status\ncont\nc\nquit\nq\n",
        "fds": "getfd a\nclosefd a\ngetfd\nclosefd\n",
        "long": "info " + "x" * 5000 + "\n\r\ninfo status\r\n",
    }
    for name, text in cases.items():
        save("hmp", name, text.encode())


# ---------------------------------------------------------------- restore
def prstatus64(index):
    b = bytearray(336)
    struct.pack_into("<I", b, 32, index + 1)
    struct.pack_into("<Q", b, 112 + 10 * 8, 0x1000 + index)
    return bytes(b)


def prstatus32(index):
    b = bytearray(144)
    struct.pack_into("<I", b, 24, index + 1)
    return bytes(b)


def qemu_note(long_mode, cr3):
    q = bytearray(440)
    struct.pack_into("<II", q, 0, 1, 440)
    struct.pack_into("<Q", q, 136, 0xffffffff81000000 if long_mode else 0xc1000000)
    struct.pack_into("<Q", q, 144, 0x246)
    struct.pack_into("<III", q, 152, 0x10, 0xffffffff,
                     0x00af9b00 if long_mode else 0x00cf9b00)
    struct.pack_into("<Q", q, 392, 0x80050033 if long_mode else 0x80000011)
    struct.pack_into("<Q", q, 392 + 24, cr3)
    struct.pack_into("<Q", q, 392 + 32, 0x6a0 if long_mode else 0x10)
    return bytes(q)


def vmcore(is64, ncpus, loads, notes, trailer, xnum=False):
    """QEMU 7.2's layout: ELF header, section headers, program headers, notes, data.

    xnum: e_phnum is PN_XNUM and section header 0 holds the count, as QEMU
    writes it for guests with 65535 segments or more.
    """
    ehsz, phsz, shsz = (64, 56, 64) if is64 else (52, 32, 40)
    nph = 1 + len(loads)
    phoff = ehsz + 2 * shsz
    note_off = phoff + nph * phsz
    at = note_off + len(notes)
    shdrs = bytearray(2 * shsz)
    if xnum:
        struct.pack_into("<I", shdrs, 44 if is64 else 28, nph)
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1, 1]) + b"\0" * 9
    if is64:
        eh = ident + struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, phoff, ehsz, 0, ehsz,
                                 phsz, 0xffff if xnum else nph, shsz, 2, 0)
    else:
        eh = ident + struct.pack("<HHIIIIIHHHHHH", 4, 3, 1, 0, phoff, ehsz, 0, ehsz,
                                 phsz, nph, shsz, 2, 0)
    phs = []
    if is64:
        phs.append(struct.pack("<IIQQQQQQ", 4, 0, note_off, 0, 0, len(notes), len(notes), 0))
    else:
        phs.append(struct.pack("<IIIIIIII", 4, note_off, 0, 0, len(notes), len(notes), 0, 0))
    data = b""
    for pa, blob in loads:
        if is64:
            phs.append(struct.pack("<IIQQQQQQ", 1, 0, at, pa, pa, len(blob), len(blob), 0))
        else:
            phs.append(struct.pack("<IIIIIIII", 1, at, pa, pa, len(blob), len(blob), 0, 0))
        at += len(blob)
        data += blob
    return eh + bytes(shdrs) + b"".join(phs) + notes + data + trailer


def restore():
    # Low RAM with a long-mode identity map (1 GiB page) at 0x1000 and the note at 0x3000.
    low = bytearray(0x4000)
    struct.pack_into("<Q", low, 0x1000, 0x2003)
    struct.pack_into("<Q", low, 0x2000, 0x83)
    guest = note("VMCOREINFO", 0, VMCOREINFO)
    low[0x3000:0x3000 + len(guest)] = guest
    high = b"HIGHPAGE" + bytes(0xff8)
    for pick in range(3):
        notes = note("CORE", 1, prstatus64(0)) + note("QEMU", 0, qemu_note(True, 0x1000))
        save("restore", "elf64-%d" % pick,
             vmcore(True, 1, [(0, bytes(low)), (0x100000, high)], notes + guest,
                    bytes([pick])))
    notes = (note("CORE", 1, prstatus64(0)) + note("CORE", 1, prstatus64(1)) +
             note("QEMU", 0, qemu_note(True, 0x1000)) + note("QEMU", 0, qemu_note(False, 0)))
    save("restore", "elf64-smp2",
         vmcore(True, 2, [(0, bytes(low)), (0xfffff000, bytes(0x1000))], notes, b"\1"))
    notes = note("CORE", 1, prstatus64(0)) + note("QEMU", 0, qemu_note(True, 0x1000))
    save("restore", "elf64-xnum",
         vmcore(True, 1, [(0, bytes(low))], notes, b"\0", xnum=True))
    notes = note("CORE", 1, prstatus32(0)) + note("QEMU", 0, qemu_note(False, 0))
    save("restore", "elf32", vmcore(False, 1, [(0, bytes(low))], notes + guest, b"\0"))


def kdump(is64, pages, notes, codec, flat=False, level=1):
    """makedumpfile's diskdump layout: header, sub header + notes, bitmaps, descs, data.

    pages: {pfn: 4096 bytes}; codec 0 (stored) or 1 (zlib). flat: cut into
    makedumpfile's flattened records (two per block, later ones first).
    """
    import zlib
    blk = 4096
    mapnr = max(pages) + 1
    bm_blocks = 2 * max(1, -(-mapnr // (8 * blk)))
    sub = struct.pack("<QIIQQQQQQQQQQQ", 0x1000000, level, 0, 0, mapnr, 0, 0,
                      blk + 104, len(notes), 0, 0, 0, mapnr, mapnr) if is64 else \
        struct.pack("<IIIII" "QI" "QI" "QI" "QQQ", 0, level, 0, 0, mapnr, 0, 0,
                    blk + 80, len(notes), 0, 0, 0, mapnr, mapnr)
    sub_blocks = -(-(len(sub) + len(notes)) // blk)
    hdr = bytearray(blk)
    hdr[0:8] = b"KDUMP   "
    struct.pack_into("<I", hdr, 8, 6)
    hdr[12 + 4 * 65:12 + 4 * 65 + 6] = b"x86_64"
    struct.pack_into("<IIIIIIIIII", hdr, 424 if is64 else 412, codec, blk, sub_blocks,
                     bm_blocks, mapnr, 0, 0, 0, 0, 1)
    bm = bytearray(bm_blocks // 2 * blk)
    for pfn in pages:
        bm[pfn // 8] |= 1 << (pfn % 8)
    descs_off = (1 + sub_blocks + bm_blocks) * blk
    data_off = descs_off + 24 * len(pages)
    descs, data = b"", b""
    for pfn in sorted(pages):
        c = zlib.compress(pages[pfn], 1) if codec else pages[pfn]
        descs += struct.pack("<QIIQ", data_off + len(data), len(c), codec, 0)
        data += c
    raw = bytes(hdr) + (sub + notes).ljust(sub_blocks * blk, b"\0") + bytes(bm) * 2 + \
        descs + data
    if not flat:
        return raw
    out = b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1)
    out = out.ljust(blk, b"\0")
    for off in reversed(range(0, len(raw), blk // 2)):
        out += struct.pack(">qq", off, len(raw[off:off + blk // 2])) + raw[off:off + blk // 2]
    return out + struct.pack(">qq", -1, -1)


def restore_kdump():
    low = bytearray(0x4000)
    struct.pack_into("<Q", low, 0x1000, 0x2003)
    struct.pack_into("<Q", low, 0x2000, 0x83)
    pages = {i: bytes(low[i * 4096:(i + 1) * 4096]) for i in range(4)}
    pages[0x100] = b"HIGHPAGE" + bytes(0xff8)
    pages[0x102] = bytes(range(256)) * 16
    guest = note("VMCOREINFO", 0, VMCOREINFO)
    notes = note("CORE", 1, prstatus64(0)) + note("QEMU", 0, qemu_note(True, 0x1000))
    save("restore", "kdump-zlib", kdump(True, pages, notes + guest, 1) + b"\2")
    save("restore", "kdump-stored", kdump(True, pages, notes + guest, 0) + b"\0")
    save("restore", "kdump-flat", kdump(True, pages, notes + guest, 1, flat=True) + b"\2")
    notes = note("CORE", 1, prstatus32(0)) + note("QEMU", 0, qemu_note(False, 0))
    save("restore", "kdump-i386", kdump(False, pages, notes + guest, 1) + b"\0")


# ---------------------------------------------------------------- page walk
CR0_PG = 0x80000001


def walk_case(name, flags, cr0, cr3, cr4, efer, ram, begin=0, length=0):
    save("page-walk", name, bytes([flags]) + struct.pack("<QQQQqq", cr0, cr3, cr4, efer,
                                                          begin, length) + bytes(ram))


def page_walk():
    # 4-level: 4 KiB, 2 MiB and 1 GiB leaves, a higher-half alias, an entry outside RAM.
    ram = bytearray(0x5000)
    struct.pack_into("<Q", ram, 0x1000, 0x2003)               # PML4[0] -> PDPT
    struct.pack_into("<Q", ram, 0x1000 + 511 * 8, 0x2003)     # PML4[511] -> same
    struct.pack_into("<Q", ram, 0x2000, 0x3003)               # PDPT[0] -> PD
    struct.pack_into("<Q", ram, 0x2008, 0x40000083)           # PDPT[1]: 1 GiB page
    struct.pack_into("<Q", ram, 0x3000, 0x4003)               # PD[0] -> PT
    struct.pack_into("<Q", ram, 0x3008, 0x200083)             # PD[1]: 2 MiB page
    struct.pack_into("<Q", ram, 0x3010, 0x123456789000 | 3)   # PD[2]: table outside RAM
    for i in range(8):
        struct.pack_into("<Q", ram, 0x4000 + i * 8, (i * 0x1000) | 3)
    struct.pack_into("<Q", ram, 0x4000 + 100 * 8, 0x100000003)  # a page in the high block
    walk_case("long4", 3, CR0_PG, 0x1000, 0x20, 0x500, ram)
    walk_case("long4-filter", 7, CR0_PG, 0x1000, 0x20, 0x500, ram, 0x1000, 0x3000)
    walk_case("long4-noa20", 1, CR0_PG, 0x1000, 0x20, 0x500, ram)
    # 5-level: PML5[0] -> the PML4 above.
    ram5 = bytearray(ram) + bytes(0x1000)
    struct.pack_into("<Q", ram5, 0x5000, 0x1003)
    walk_case("la57", 3, CR0_PG, 0x5000, 0x1020, 0x500, ram5)
    # A table that points at itself on every level.
    loop = bytearray(0x1000)
    for i in range(512):
        struct.pack_into("<Q", loop, i * 8, 0x3)
    walk_case("self-loop", 3, CR0_PG, 0, 0x20, 0x500, loop)
    # PAE: PDPTE -> PD with a 2 MiB and a 4 KiB-table entry.
    pae = bytearray(0x4000)
    struct.pack_into("<Q", pae, 0x20, 0x1001)
    struct.pack_into("<Q", pae, 0x1000, 0x2003)
    struct.pack_into("<Q", pae, 0x1008, 0x400083)
    struct.pack_into("<Q", pae, 0x2000, 0x3003)
    walk_case("pae", 3, CR0_PG, 0x20, 0x20, 0, pae)
    # 32-bit with PSE: a 4 MiB page and a page table.
    p32 = bytearray(0x3000)
    struct.pack_into("<I", p32, 0x1000, 0x2003)
    struct.pack_into("<I", p32, 0x1004, 0x400083)
    struct.pack_into("<I", p32, 0x2000, 0x5003)
    walk_case("x86-pse", 3, CR0_PG, 0x1000, 0x10, 0, p32)
    walk_case("x86-nopse", 3, CR0_PG, 0x1000, 0, 0, p32)
    walk_case("no-paging", 2, 0x11, 0x1000, 0x20, 0x500, ram)


# ---------------------------------------------------------------- guest note
def guest_note():
    good = note("VMCOREINFO", 0, VMCOREINFO)
    hdr = lambda flags, fmt, size, off: bytes([flags]) + struct.pack("<HII", fmt, size, off)
    for f in range(4):
        save("guest-note", "fmt%d" % f, hdr(f | 4, 1, len(good), 0) + good)
    save("guest-note", "elf32", hdr(0, 1, len(good), 0) + good)
    save("guest-note", "paging", hdr(8 | 4, 1, len(good), 0) + good)
    save("guest-note", "hex-phys-base",
         hdr(5, 1, 200, 0) + note("VMCOREINFO", 0, b"NUMBER(phys_base)=0x1000000\n"))
    save("guest-note", "bad-phys-base",
         hdr(4, 1, 200, 0) + note("VMCOREINFO", 0, b"NUMBER(phys_base)=-zz\nX=1"))
    save("guest-note", "other-name", hdr(4, 1, 64, 0) + note("LINUX", 7, b"abc"))
    save("guest-note", "huge-header",
         hdr(4, 1, 64, 0) + struct.pack("<III", 0xfffffff0, 0xfffffff0, 0))
    save("guest-note", "bad-format", hdr(4, 2, len(good), 0) + good)
    save("guest-note", "outside-ram",
         bytes([0x84]) + struct.pack("<HIQ", 1, 4096, 0xfffffffffffff000) + good)
    save("guest-note", "cleared", hdr(0x14, 1, len(good), 0) + good)


# ---------------------------------------------------------------- win-dump
def win_dump():
    for mode in range(3):
        save("win-dump", "valid-%d" % mode, bytes([mode]) + struct.pack("<H", 0))
    save("win-dump", "signature", bytes([0]) + struct.pack("<H", 8) + b"PAGEDUMP")
    save("win-dump", "note-size", bytes([4]) + struct.pack("<HH", 4120, 0))
    save("win-dump", "cr3", bytes([8]) + struct.pack("<QH", 0x200000, 0))
    # Patches over the page tables and the kernel structures.
    patches = (struct.pack("<IB", 0x100000, 8) + b"\xff" * 8 +
               struct.pack("<IB", 0x300000, 16) + b"KDBG" + bytes(12) +
               struct.pack("<IB", 0x302000, 8) + struct.pack("<Q", 0xfffff80000001000))
    save("win-dump", "patched", bytes([0]) + struct.pack("<H", 0) + patches)


# ---------------------------------------------------------------- qtest
def qtest():
    lines = {
        "memory": "readb 0x1000\nwritew 0x1000 0xbeef\nreadl 0x1000\nwriteq 0x2000 0x1\n"
                  "readq 0xffffffffffffff00\nread 0x1000 0x10\nwrite 0x1000 4 0xdeadbeef\n"
                  "memread 0x9fff0 0x20\nmemset 0x3000 0x100 0xa5\n"
                  "b64write 0x4000 8 %s\nb64read 0x4000 8\nmemwrite 0x5000 2 0x0102\n"
                  % base64.b64encode(b"12345678").decode(),
        "ports": "outw 0x510 0x0\ninb 0x511\ninb 0x511\ninl 0x514\noutb 0x70 0x1\n"
                 "inw 0x60\nendianness\n",
        # fw_cfg DMA: select etc/vmcoreinfo's key and write its 16 bytes from 0x2000.
        "fw-cfg-dma": "write 0x2000 16 0x0000010000010000ff00000000000000\n"
                      "write 0x1000 16 0x00200018000000100000000000002000\n"
                      "outl 0x514 0x0\noutl 0x518 0x00100000\nreadl 0x1000\n"
                      "outw 0x510 0x1900\ninb 0x511\n",
        "regs": "x-set-reg 0 cr3 0x1000\nx-get-reg 0 cr3\nx-get-reg 9 rip\n"
                "x-set-reg 0 nosuch 1\nclock_step\nclock_step 100\nclock_set 5\n",
        "garbage": "readb\nwrite 0x0 0x10 zz\nmemset 0 0xffffffffffffffff 0\nfoo bar\n"
                   "read 0x0 0x4000001\n\n",
    }
    for name, text in lines.items():
        save("qtest", name, text.encode())


# ---------------------------------------------------------------- filter
def filter_case(name, level, text=b"", patches=()):
    data = struct.pack("<BH", level, len(text)) + text
    for region, off, blob in patches:
        data += struct.pack("<BIB", region, off, len(blob)) + blob
    save("filter", name, data)


def filter_():
    """fuzz-filter: the synthetic guest of tests/unit/linux-mm-guest.c (regions:
    0 struct pages, 1 mem_section, 2 page tables, 3 anywhere)."""
    def page(pfn, off, blob):
        return (0, pfn * 64 + off, blob)
    lru, head = 1 << 4, 1 << 16
    filter_case("plain-31", 31)
    filter_case("plain-1", 1)
    filter_case("classes", 31, patches=[
        page(100, 0, struct.pack("<Q", lru)),
        page(110, 24, struct.pack("<Q", 0xffff888000006001)),
        page(120, 40, struct.pack("<Qi", 2, -129)),
        page(256, 0, struct.pack("<Q", head)),
        page(257, 17, bytes([3])),
        page(4000, 40, struct.pack("<Qi", 10, -129)),
    ])
    filter_case("absurd-order", 8, patches=[
        page(0, 0, struct.pack("<Q", head)), page(0, 24, struct.pack("<Q", 1)),
        page(1, 17, bytes([63]))])
    filter_case("section-elsewhere", 16, patches=[
        (1, 0x1010, struct.pack("<Q", 0xffff88807f000003))])
    filter_case("root-null", 16, patches=[(1, 0, struct.pack("<Q", 0))])
    filter_case("pgd-loop", 31, patches=[
        (2, 0x888, struct.pack("<Q", 0x100003)), (2, 0x1000, struct.pack("<Q", 0x101003))])
    filter_case("overrides", 31, b"SIZE(page)=1024\nNUMBER(SECTION_SIZE_BITS)=13\n"
                b"LENGTH(mem_section)=1\nOSRELEASE=4.15.0\n")
    filter_case("missing-free-area", 16, b"LENGTH(zone.free_area)=x\n")


if __name__ == "__main__":
    qmp()
    hmp()
    restore()
    restore_kdump()
    page_walk()
    guest_note()
    win_dump()
    qtest()
    filter_()
    sys.exit(0)
