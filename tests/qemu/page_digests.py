#!/usr/bin/python3
"""Digest of every guest page of a dump as a reader sees it, run under Debian's python3.

    page_digests.py elf|kdumpfile|drgn DUMP REF.elf

The pages are those of REF's PT_LOADs (a paging=false ELF of the same guest
state), read in that order from DUMP by the named reader: the ELF file itself,
libkdumpfile, or drgn (physical reads). Prints one JSON object: pages, the
SHA-256 of all of them, and the first unreadable ones. Equal digests across
formats mean every reader saw the same memory in every dump.
"""
import hashlib
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "compat"))
import elf_compare  # noqa: E402

PAGE = 4096


def loads(ref):
    e = elf_compare.Elf(ref)
    return [(p["paddr"], p["offset"], p["filesz"]) for p in e.phdrs
            if p["type"] == elf_compare.PT_LOAD and p["filesz"]]


def main():
    kind, dump, ref = sys.argv[1:4]
    if kind == "kdumpfile":
        import kdumpfile
        k = kdumpfile.kdumpfile(dump)

        def read(a):
            return bytes(k.read(kdumpfile.KDUMP_MACHPHYSADDR, a, PAGE))
    elif kind == "drgn":
        import drgn
        prog = drgn.program_from_core_dump(dump)

        def read(a):
            return bytes(prog.read(a, PAGE, True))
    elif kind == "elf":
        f = open(dump, "rb")
        where = {}
        for paddr, off, size in loads(dump):
            for pos in range(0, size - size % PAGE, PAGE):
                where[paddr + pos] = off + pos

        def read(a):
            f.seek(where[a])
            return f.read(PAGE)
    else:
        raise SystemExit("unknown reader " + kind)
    h = hashlib.sha256()
    pages, bad = 0, []
    for paddr, _, size in loads(ref):
        for pos in range(0, size - size % PAGE, PAGE):
            pages += 1
            try:
                data = read(paddr + pos)
            except Exception as e:     # an unreadable page is the finding
                data = b""
                if len(bad) < 5:
                    bad.append("0x%x: %s" % (paddr + pos, e))
            h.update(data)
    print(json.dumps({"pages": pages, "sha256": h.hexdigest(), "bad": bad}))


if __name__ == "__main__":
    main()
