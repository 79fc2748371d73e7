#!/usr/bin/python3
"""Independent readers (libkdumpfile, drgn) of one dump, run under Debian's python3.

    readers.py kdumpfile DUMP REF.elf   every page of REF's PT_LOADs read back from DUMP
    readers.py drgn DUMP ADDR:LEN ...   drgn's view of DUMP and the bytes at kernel VAs

Prints one JSON object. Both modules exist only for /usr/bin/python3 on
Debian, which is why the test runs this as a separate process.
"""
import json
import os
import sys

sys.dont_write_bytecode = True      # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import elf_compare  # noqa: E402

PAGE = 4096


def elf_loads(path):
    """(paddr, file offset, filesz) of each PT_LOAD with contents."""
    e = elf_compare.Elf(path)
    if not e.is64:
        raise SystemExit("%s: not an ELF64 file" % path)
    return [(p["paddr"], p["offset"], p["filesz"]) for p in e.phdrs
            if p["type"] == elf_compare.PT_LOAD and p["filesz"]]


def check_kdumpfile(dump, ref):
    import kdumpfile
    k = kdumpfile.kdumpfile(dump)
    res = {"opened": True}
    for key in ("arch.name", "file.format", "linux.uts.release", "linux.uts.machine"):
        try:
            res[key] = str(k.attr[key])
        except (KeyError, Exception) as e:   # an absent attribute is information
            res[key] = None if isinstance(e, KeyError) else "error: %s" % e
    pages = equal = 0
    first_bad = []
    with open(ref, "rb") as f:
        for paddr, off, size in elf_loads(ref):
            f.seek(off)
            for pos in range(0, size - size % PAGE, PAGE):
                want = f.read(PAGE)
                pages += 1
                try:
                    got = bytes(k.read(kdumpfile.KDUMP_MACHPHYSADDR, paddr + pos, PAGE))
                except Exception as e:
                    got = None
                    err = str(e)
                if got == want:
                    equal += 1
                elif len(first_bad) < 5:
                    why = "differs" if got is not None else err
                    first_bad.append("0x%x: %s" % (paddr + pos, why))
    res.update(pages=pages, equal=equal, first_bad=first_bad)
    return res


def check_drgn(dump, ranges):
    import drgn
    prog = drgn.program_from_core_dump(dump)
    res = {"arch": str(prog.platform.arch) if prog.platform else None,
           "platform_flags": str(prog.platform.flags) if prog.platform else None,
           "is_linux_kernel": bool(prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL),
           "reads": {}}
    for r in ranges:
        a, n = (int(x, 0) for x in r.split(":"))
        try:
            res["reads"][r] = bytes(prog.read(a, n)).hex()
        except Exception as e:
            res["reads"][r] = "error: %s" % e
    return res


def main():
    what = sys.argv[1]
    if what == "kdumpfile":
        res = check_kdumpfile(sys.argv[2], sys.argv[3])
    elif what == "drgn":
        res = check_drgn(sys.argv[2], sys.argv[3:])
    else:
        raise SystemExit("unknown reader %s" % what)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
