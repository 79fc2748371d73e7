#!/usr/bin/env python3
"""Compare a QEMU 7.2 ELF vmcore with guestdump's of the same guest state.

Equal in structure and content except the corrections listed in
docs/compat.md (ELF section): e_ehsize, header order, canonical virtual
addresses, PTE bits 52-62, merge-downward phys, the direct map's PT_LOAD
last. Exit status 0 when equal.

    elf_compare.py QEMU.elf OURS.elf [--extra-va START:LEN ...]

--extra-va names virtual ranges QEMU dropped because of PTE bits 52-62
(correction 4); only there may guestdump have mappings QEMU lacks.
--stale-phys VA names a PT_LOAD that QEMU grew downwards without lowering
its p_paddr (correction 5): there guestdump's p_paddr must be lower by less
than the segment's size, and is taken as the reference.
"""
import argparse
import bisect
import hashlib
import mmap
import struct
import sys

PT_LOAD, PT_NOTE = 1, 4
PN_XNUM = 0xFFFF
EM_X86_64 = 62


class Elf:
    """An ELF vmcore's headers; data maps the file, so a large dump costs no copy."""

    def __init__(self, path):
        with open(path, 'rb') as f:
            self.data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        d = self.data
        if d[:4] != b'\x7fELF':
            raise ValueError(f'{path}: not ELF')
        self.is64 = d[4] == 2
        if self.is64:
            (self.type, self.machine, self.version, self.entry, self.phoff,
             self.shoff, self.flags, self.ehsize, self.phentsize, self.phnum,
             self.shentsize, self.shnum, self.shstrndx) = struct.unpack_from(
                '<HHIQQQIHHHHHH', d, 16)
        else:
            (self.type, self.machine, self.version, self.entry, self.phoff,
             self.shoff, self.flags, self.ehsize, self.phentsize, self.phnum,
             self.shentsize, self.shnum, self.shstrndx) = struct.unpack_from(
                '<HHIIIIIHHHHHH', d, 16)
        self.ident = d[:16]
        self.shdrs = [self._shdr(i) for i in range(self.shnum)]
        real = self.phnum
        if self.phnum == PN_XNUM:
            real = self.shdrs[0]['info']
        self.phdrs = [self._phdr(i) for i in range(real)]

    def _shdr(self, i):
        off = self.shoff + i * self.shentsize
        if self.is64:
            f = struct.unpack_from('<IIQQQQIIQQ', self.data, off)
        else:
            f = struct.unpack_from('<IIIIIIIIII', self.data, off)
        keys = ('name', 'type', 'flags', 'addr', 'offset', 'size', 'link', 'info',
                'addralign', 'entsize')
        return dict(zip(keys, f))

    def _phdr(self, i):
        off = self.phoff + i * self.phentsize
        if self.is64:
            t, fl, o, v, p, fs, ms, al = struct.unpack_from('<IIQQQQQQ', self.data, off)
        else:
            t, o, v, p, fs, ms, fl, al = struct.unpack_from('<IIIIIIII', self.data, off)
        return dict(type=t, flags=fl, offset=o, vaddr=v, paddr=p, filesz=fs,
                    memsz=ms, align=al)

    @property
    def note(self):
        return self.phdrs[0]

    def notes(self):
        """[(name, desc)] of every PT_NOTE, in file order."""
        out = []
        for ph in self.phdrs:
            if ph['type'] != PT_NOTE:
                continue
            d = self.data[ph['offset']:ph['offset'] + ph['filesz']]
            off = 0
            while off + 12 <= len(d):
                namesz, descsz, _ = struct.unpack_from('<III', d, off)
                desc = off + 12 + ((namesz + 3) & ~3)
                out.append((d[off + 12:off + 12 + namesz].rstrip(b'\0'),
                            d[desc:desc + descsz]))
                off = desc + ((descsz + 3) & ~3)
        return out

    @property
    def memory_offset(self):
        return self.note['offset'] + self.note['filesz']

    @property
    def none_offset(self):
        return (1 << 64) - 1 if self.is64 else (1 << 32) - 1


def canonical(v, la57):
    """QEMU's user-half addresses (4-level: bits 63:48 forced, 5-level: 63:57)."""
    if la57:
        if v >> 57 == 0x7F and not (v >> 56) & 1:
            return v & ((1 << 57) - 1)
    elif v >> 48 == 0xFFFF and not (v >> 47) & 1:
        return v & ((1 << 48) - 1)
    return v


def guess_la57(elf):
    """A QEMU 5-level walk leaves bits 63:57 set but not all of 63:48."""
    return any(ph['vaddr'] >> 57 == 0x7F and ph['vaddr'] >> 48 != 0xFFFF
               for ph in elf.phdrs[1:])


def loads(elf, fix_va, la57=False):
    out = []
    for ph in elf.phdrs[1:]:
        off = ph['offset']
        rel = None if off == elf.none_offset else off - elf.memory_offset
        va = canonical(ph['vaddr'], la57) if fix_va else ph['vaddr']
        out.append((ph['type'], ph['paddr'], va, ph['memsz'], ph['filesz'], rel,
                    ph['flags'], ph['align']))
    return out


# Linux x86-64's __START_KERNEL_map: makedumpfile ignores PT_LOADs from here
# up when it guesses PAGE_OFFSET from the last one below (correction 8).
KERNEL_IMAGE_BASE = 0xFFFFFFFF80000000


def direct_map_last(lst):
    """Correction 7 applied to QEMU's list: the largest PT_LOAD in the kernel
    half below KERNEL_IMAGE_BASE (the first of equal ones) moves to the end,
    unless no PT_LOAD below KERNEL_IMAGE_BASE follows it."""
    best = None
    for i, t in enumerate(lst):
        if t[0] == PT_LOAD and 1 << 63 <= t[2] < KERNEL_IMAGE_BASE and (
                best is None or t[3] > lst[best][3]):
            best = i
    if best is None or not any(t[0] == PT_LOAD and t[2] < KERNEL_IMAGE_BASE
                               for t in lst[best + 1:]):
        return lst
    return lst[:best] + lst[best + 1:] + [lst[best]]


def makedumpfile_page_offset_ok(lst):
    """Whether the last PT_LOAD below KERNEL_IMAGE_BASE, where makedumpfile
    1.7.2 takes PAGE_OFFSET from, is the largest one in the kernel half."""
    below = [t for t in lst if t[0] == PT_LOAD and t[2] < KERNEL_IMAGE_BASE]
    kernel = [t for t in below if t[2] >= 1 << 63]
    if not kernel:
        return True
    return below[-1] in kernel and below[-1][3] == max(t[3] for t in kernel)


def order_ok(lst):
    """QEMU's order (phys ascending) but for correction 8's one move: for
    lists the page comparison checks, where QEMU's own order differs."""
    if lst == direct_map_last(lst) and all(
            a[1] <= b[1] for a, b in zip(lst, lst[1:])):
        return True
    # Put the last PT_LOAD back where phys order has it; the rule must move it.
    *rest, last = lst
    if not all(a[1] <= b[1] for a, b in zip(rest, rest[1:])):
        return False
    keys = [t[1] for t in rest]
    for i in range(bisect.bisect_left(keys, last[1]),
                   bisect.bisect_right(keys, last[1]) + 1):
        if direct_map_last(rest[:i] + [last] + rest[i:]) == lst:
            return True
    return False


def pages(lst):
    s = set()
    for _, pa, va, ms, _, _, _, _ in lst:
        for i in range(0, ms, 4096):
            s.add((va + i, pa + i))
    return s


def compare(q, o, extra_va, la57=None, stale_phys=()):
    errs = []

    def eq(what, a, b):
        if a == b:
            return
        if isinstance(a, bytes) and isinstance(b, bytes):
            i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y),
                     min(len(a), len(b)))
            errs.append(f'{what}: {len(a)} vs {len(b)} bytes, first difference '
                        f'at +{i:#x}: qemu {a[i:i + 16].hex()} '
                        f'guestdump {b[i:i + 16].hex()}')
        else:
            errs.append(f'{what}: qemu {a!r} guestdump {b!r}')

    eq('e_ident', q.ident, o.ident)
    # e_phnum follows the PT_LOAD list, compared below.
    for f in ('type', 'machine', 'version', 'entry', 'flags', 'phentsize',
              'shentsize', 'shnum', 'shstrndx'):
        eq('e_' + f, getattr(q, f), getattr(o, f))
    # Correction 1: QEMU 7.2 writes sizeof(pointer).
    eq('qemu e_ehsize (7.2 quirk)', q.ehsize, 8)
    eq('guestdump e_ehsize', o.ehsize, 64 if o.is64 else 52)
    # Correction 2: program headers first, then section headers, then notes.
    eq('guestdump e_phoff', o.phoff, o.ehsize)
    eq('guestdump e_shoff', o.shoff, o.phoff + len(o.phdrs) * o.phentsize)
    eq('guestdump note offset', o.note['offset'], o.shoff + o.shnum * o.shentsize)
    eq('qemu e_shoff', q.shoff, 64 if q.is64 else 52)
    # Sections: equal but the string table's offset, which is layout.
    for i, (a, b) in enumerate(zip(q.shdrs, o.shdrs)):
        for k in a:
            if k == 'offset' and a['type'] == 3:
                eq(f'shdr[{i}].offset - memory', a[k] - q.memory_offset,
                   b[k] - o.memory_offset)
            else:
                eq(f'shdr[{i}].{k}', a[k], b[k])
    strtab = q.shdrs[-1]
    eq('.shstrtab', q.data[strtab['offset']:strtab['offset'] + strtab['size']],
       o.data[o.shdrs[-1]['offset']:o.shdrs[-1]['offset'] + o.shdrs[-1]['size']])
    eq('PT_NOTE', {k: v for k, v in q.note.items() if k != 'offset'},
       {k: v for k, v in o.note.items() if k != 'offset'})
    eq('notes', q.data[q.note['offset']:q.memory_offset],
       o.data[o.note['offset']:o.memory_offset])
    total_q = len(q.data) - q.memory_offset - (strtab['size'] if q.shnum else 0)
    total_o = len(o.data) - o.memory_offset - (o.shdrs[-1]['size'] if o.shnum else 0)
    eq('memory size', total_q, total_o)
    eq('memory sha256',
       hashlib.sha256(q.data[q.memory_offset:q.memory_offset + total_q]).hexdigest(),
       hashlib.sha256(o.data[o.memory_offset:o.memory_offset + total_o]).hexdigest())
    eq('file size - memory offset', len(q.data) - q.memory_offset,
       len(o.data) - o.memory_offset)

    if la57 is None:
        la57 = guess_la57(q)
    lq, lo = loads(q, True, la57), loads(o, False)
    for va in stale_phys:
        qi = [i for i, t in enumerate(lq) if t[2] == va]
        oi = [i for i, t in enumerate(lo) if t[2] == va]
        if not qi and not oi:
            continue                     # filtered away in both
        if len(qi) != 1 or len(oi) != 1:
            errs.append(f'stale-phys {va:#x}: not exactly one PT_LOAD in each file')
            continue
        tq, to = lq[qi[0]], lo[oi[0]]
        if not (to[1] < tq[1] < to[1] + to[3]) or tq[3] != to[3]:
            errs.append(f'stale-phys {va:#x}: qemu {fmt(tq)} guestdump {fmt(to)} '
                        f'is not the merge-downward bug')
            continue
        lq[qi[0]] = to
    if stale_phys:
        # QEMU left the grown segment where its old p_paddr sorted it.
        lq.sort(key=lambda t: t[1])
        if lq == sorted(lo, key=lambda t: t[1]):
            lq = lo
    x86_64_paging = o.machine == EM_X86_64 and o.is64
    if x86_64_paging:
        # Correction 7: where makedumpfile finds the direct map.
        lq = direct_map_last(lq)
        if not makedumpfile_page_offset_ok(lo):
            errs.append('guestdump: the last PT_LOAD below 0xffffffff80000000 is not '
                        'the largest kernel-half mapping (correction 8)')
    if lq == lo:
        eq('e_phnum', q.phnum, o.phnum)
    else:
        # Correction 4 (and 5) change the list: compare the (virt, phys) pages.
        pq, po = pages(lq), pages(lo)
        missing = pq - po
        extra = po - pq
        bad_extra = [p for p in extra
                     if not any(s <= p[0] < s + n for s, n in extra_va)]
        # With stale phys fixed, QEMU's extra segments (the later add that no
        # longer merged) are covered by guestdump's: equal page sets suffice.
        if missing or bad_extra or not (extra_va or stale_phys):
            n = min(len(lq), len(lo))
            for i in range(n):
                if lq[i] != lo[i]:
                    errs.append(f'PT_LOAD {i + 1}: qemu {fmt(lq[i])} '
                                f'guestdump {fmt(lo[i])}')
                    break
            eq('PT_LOAD count', len(lq), len(lo))
            if missing:
                errs.append(f'{len(missing)} pages QEMU maps are missing, e.g. '
                            f'{[hex(x) for x in sorted(missing)[0]]}')
            if bad_extra:
                errs.append(f'{len(bad_extra)} unexplained extra pages, e.g. '
                            f'{[hex(x) for x in sorted(bad_extra)[0]]}')
        if not order_ok(lo):
            errs.append('guestdump: PT_LOADs are not in phys order, with at most '
                        'the direct map moved last (correction 8)')
        # File placement must agree wherever both map a page.
        qoff = page_offsets(lq)
        ooff = page_offsets(lo)
        for key in set(qoff) & set(ooff):
            if qoff[key] != ooff[key]:
                errs.append(f'page {hex(key[0])}->{hex(key[1])}: file offset '
                            f'{qoff[key]} vs {ooff[key]}')
                break
    return errs


def page_offsets(lst):
    out = {}
    for _, pa, va, ms, fs, rel, _, _ in lst:
        for i in range(0, fs, 4096):
            out[(va + i, pa + i)] = rel + i
    return out


def fmt(t):
    return ('type=%d paddr=%#x vaddr=%#x memsz=%#x filesz=%#x off=%s' %
            (t[0], t[1], t[2], t[3], t[4], 'none' if t[5] is None else hex(t[5])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('qemu')
    ap.add_argument('ours')
    ap.add_argument('--extra-va', action='append', default=[],
                    help='START:LEN virtual range (hex ok) QEMU dropped')
    ap.add_argument('--stale-phys', action='append', default=[],
                    help='VA of a PT_LOAD QEMU merged downwards (correction 5)')
    ap.add_argument('--la57', action='store_true', default=None,
                    help='5-level paging (default: guessed from the QEMU file)')
    a = ap.parse_args()
    extra = [tuple(int(x, 0) for x in r.split(':')) for r in a.extra_va]
    errs = compare(Elf(a.qemu), Elf(a.ours), extra, a.la57,
                   [int(v, 0) for v in a.stale_phys])
    for e in errs:
        print('DIFF', e)
    print(f'{len(errs)} differences' if errs else 'equal except the listed corrections')
    return 1 if errs else 0


if __name__ == '__main__':
    sys.exit(main())
