#!/usr/bin/env python3
"""ELF dumps of one guest state through real QEMU 7.2 and through guestdump.

    elf_compat.py --guestdump BUILD/guestdump [--qemu Q] [--keep DIR] [--modes a,b]

For each paging mode (long4 long5 pae x86 x86pse) a guest is built here,
plus 'merge' (two vCPUs whose tables make QEMU grow a mapping downwards):
page tables with 4 KiB pages in reverse physical order, contiguous runs,
2 MiB / 4 MiB / 1 GiB pages, a PTE with protection-key and bit-52 bits, a PTE
at the LAPIC, a PTE at the BIOS ROM, a user half and a kernel half, two vCPUs
with paging; the long4 and pae guests also publish a VMCOREINFO note through
fw_cfg etc/vmcoreinfo, as Linux's driver does. QEMU (-S, tcg, qemu64) gets
the tables with -device loader, the control registers through its gdbstub
and the fw_cfg writes through HMP port I/O; guestdump gets the same loader,
the same fw_cfg writes over qtest, and every register QEMU's own notes
report (plus EFER) over QMP. Both dump with paging off and on, each with
and without a begin/length filter; tests/compat/elf_compare.py must find
them equal except the corrections of docs/compat.md. Last, the same refused
requests go to both: same error texts and query-dump states, and no file
left by guestdump. TAP output; skips without qemu-system-x86_64.
"""
import argparse
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
import elf_compare  # noqa: E402
from qemu_driver import DriverError, GdbStub, Qmp  # noqa: E402

MEM_MB = 32
TABLES = 0x100000
P, RW, PS, NX = 1, 2, 0x80, 1 << 63
MODES = ('long4', 'long5', 'pae', 'x86', 'x86pse', 'merge')
# name -> dump-guest-memory arguments besides protocol. The filter cuts
# through the middle of blocks and of mappings (reference 3.3).
DUMPS = {
    'plain': {'paging': False},
    'paging': {'paging': True},
    'filter': {'paging': False, 'begin': 0x9f000, 'length': 0x422000},
    'paging-filter': {'paging': True, 'begin': 0x401800, 'length': 0x300000},
}


# ---------------------------------------------------------------------------
# The guest
# ---------------------------------------------------------------------------

class Guest:
    def __init__(self, mode):
        self.mode = mode
        self.blob = bytearray(0xa10000 - TABLES)
        self.extra_va = []                 # correction 4: pages QEMU drops
        self.stale_phys = []               # correction 5: QEMU's merged-down VAs
        self.regs = {}
        self.cpu_regs = None               # per vCPU, when they differ
        self.note = None                   # (paddr, size) of a VMCOREINFO note

    def w64(self, addr, v):
        struct.pack_into('<Q', self.blob, addr - TABLES, v)

    def w32(self, addr, v):
        struct.pack_into('<I', self.blob, addr - TABLES, v)

    def marker(self, pa):
        if TABLES <= pa < TABLES + len(self.blob) - 16:
            struct.pack_into('<8sQ', self.blob, pa - TABLES, b'GDCOMPAT', pa)


def user_ptes(g, pt, w, pkey):
    """virt 0x400000 + i*4K: 8 reversed pages, 4 contiguous, then odd ones."""
    for i in range(8):
        pa = 0x400000 + (7 - i) * 0x1000
        w(pt + i * g.esize, pa | P | RW)
        g.marker(pa)
    for i in range(8, 12):
        pa = 0x500000 + (i - 8) * 0x1000
        w(pt + i * g.esize, pa | P)
        g.marker(pa)
    if pkey:
        # PKEY 5 and software bit 52: QEMU keeps them and loses the page.
        w(pt + 12 * g.esize, 0x508000 | P | (5 << 59) | (1 << 52))
        g.marker(0x508000)
        g.extra_va.append((g.user_base + 12 * 0x1000, 0x1000))
    w(pt + 13 * g.esize, 0xfee00000 | P)          # LAPIC: never a PT_LOAD
    w(pt + 14 * g.esize, 0xfffc0000 | P)          # BIOS ROM: RAM-backed
    w(pt + 15 * g.esize, 0xfffc1000 | P)


def build_merge():
    """Two CR3s: vCPU 0 maps V+4K->P+4K, vCPU 1 maps V->P and V+4K->P+4K."""
    g = Guest('merge')
    pml4_a, pdpt_a, pd_a, pt_a = 0x100000, 0x101000, 0x102000, 0x103000
    pml4_b, pdpt_b, pd_b, pt_b = 0x104000, 0x105000, 0x106000, 0x107000
    for pml4, pdpt, pd, pt in ((pml4_a, pdpt_a, pd_a, pt_a),
                               (pml4_b, pdpt_b, pd_b, pt_b)):
        g.w64(pml4, pdpt | P | RW)
        g.w64(pdpt, pd | P | RW)
        g.w64(pd, pt | P | RW)
    g.w64(pt_a + 17 * 8, 0x301000 | P)
    g.w64(pt_b + 16 * 8, 0x300000 | P)
    g.w64(pt_b + 17 * 8, 0x301000 | P)
    g.marker(0x300000)
    g.marker(0x301000)
    base = {'efer': 0xd01, 'cr4': 0x20, 'cr0': 0x80000011}
    g.cpu_regs = [dict(base, cr3=pml4_a), dict(base, cr3=pml4_b)]
    g.regs = g.cpu_regs[0]
    g.stale_phys = [0x10000]
    return g


NOTE_PA, FWCFG_INFO, FWCFG_DESC = 0x200000, 0x201000, 0x201040


def add_vmcoreinfo(g):
    """A Linux-style VMCOREINFO note whose descriptor ends mid-word over
    non-zero padding: QEMU's NUL after the descriptor must show in both."""
    text = (b'OSRELEASE=6.1.0-compat\nPAGESIZE=4096\n'
            b'NUMBER(phys_base)=16777216\nKERNELOFFSET=0\nX=1')
    assert len(text) % 4 != 0
    note = struct.pack('<III', 11, len(text), 0) + b'VMCOREINFO\0\0' + text
    pad = b'\xa5' * 16
    off = NOTE_PA - TABLES
    g.blob[off:off + len(note) + len(pad)] = note + pad
    g.note = (NOTE_PA, 12 + 12 + ((len(text) + 3) & ~3) + 20)


def build(mode):
    if mode == 'merge':
        return build_merge()
    g = Guest(mode)
    if mode in ('long4', 'pae'):
        add_vmcoreinfo(g)
    long_mode = mode.startswith('long')
    g.esize = 8 if mode in ('long4', 'long5', 'pae') else 4
    w = g.w64 if g.esize == 8 else g.w32
    g.user_base = 0x400000
    for pa in (0x600000, 0x800000, 0xa00000, 0xa01000, 0xa02000, 0xa03000):
        g.marker(pa)
    if long_mode:
        pml4, pdpt_u, pd_u, pt_u = 0x100000, 0x101000, 0x102000, 0x103000
        pdpt_dm, pdpt_k, pd_k, pt_k = 0x104000, 0x105000, 0x106000, 0x107000
        w(pml4 + 0 * 8, pdpt_u | P | RW)
        w(pml4 + 273 * 8, pdpt_dm | P | RW)
        w(pml4 + 511 * 8, pdpt_k | P | RW | NX)
        w(pdpt_u + 0 * 8, pd_u | P | RW)
        w(pd_u + 2 * 8, pt_u | P | RW)
        w(pd_u + 3 * 8, 0x600000 | P | RW | PS | NX)
        user_ptes(g, pt_u, w, pkey=True)
        w(pdpt_dm + 0, 0 | P | RW | PS)               # 1 GiB over all RAM
        w(pdpt_k + 510 * 8, pd_k | P | RW)
        w(pd_k + 8 * 8, 0x800000 | P | RW | PS)
        w(pd_k + 9 * 8, pt_k | P | RW)
        for i in range(4):
            w(pt_k + i * 8, (0xa00000 + i * 0x1000) | P | RW)
        cr3, cr4 = pml4, 0x20
        if mode == 'long5':
            pml5 = 0x10f000
            w(pml5 + 0 * 8, pml4 | P | RW)
            w(pml5 + 511 * 8, pml4 | P | RW)
            cr3, cr4 = pml5, 0x20 | 0x1000
            # The same user tables seen through PML5[511] (upper half).
            g.extra_va.append((0xffff000000000000 + g.extra_va[0][0], 0x1000))
        g.regs = {'efer': 0xd01, 'cr4': cr4, 'cr3': cr3, 'cr0': 0x80000011}
    elif mode == 'pae':
        pdpt, pd_u, pt_u, pd_k, pt_k = 0x100000, 0x102000, 0x103000, 0x106000, 0x107000
        w(pdpt + 0 * 8, pd_u | P)
        w(pdpt + 3 * 8, pd_k | P)
        w(pd_u + 2 * 8, pt_u | P | RW)
        w(pd_u + 3 * 8, 0x600000 | P | RW | PS)
        user_ptes(g, pt_u, w, pkey=False)
        w(pd_k + 8 * 8, 0x800000 | P | RW | PS)
        w(pd_k + 9 * 8, pt_k | P | RW)
        for i in range(4):
            w(pt_k + i * 8, (0xa00000 + i * 0x1000) | P | RW)
        g.regs = {'cr4': 0x20, 'cr3': pdpt, 'cr0': 0x80000011}
    else:
        pd, pt_u, pt_k = 0x100000, 0x103000, 0x107000
        w(pd + 1 * 4, pt_u | P | RW)
        user_ptes(g, pt_u, w, pkey=False)
        w(pd + 2 * 4, 0x800000 | P | RW | PS)          # 4 MiB with PSE only
        w(pd + 772 * 4, pt_k | P | RW)
        for i in range(4):
            w(pt_k + i * 4, (0xa00000 + i * 0x1000) | P | RW)
        g.regs = {'cr4': 0x10 if mode == 'x86pse' else 0, 'cr3': pd,
                  'cr0': 0x80000011}
    return g


# ---------------------------------------------------------------------------
# QEMU: QMP and the gdbstub
# ---------------------------------------------------------------------------

def program_vmcoreinfo(g, outw, inb, outl, write):
    """What Linux's qemu_fw_cfg driver does: find etc/vmcoreinfo in the file
    directory by port I/O and DMA-write {guest_format=1, size, paddr}."""
    outw(0x510, 0x19)
    count = int.from_bytes(bytes(inb(0x511) for _ in range(4)), 'big')
    key = None
    for _ in range(count):
        ent = bytes(inb(0x511) for _ in range(64))
        if ent[8:].split(b'\0')[0] == b'etc/vmcoreinfo':
            key = int.from_bytes(ent[4:6], 'big')
    if key is None:
        raise RuntimeError('no etc/vmcoreinfo in fw_cfg')
    paddr, size = g.note
    write(FWCFG_INFO, struct.pack('<HHIQ', 0, 1, size, paddr))
    write(FWCFG_DESC, struct.pack('>IIQ', key << 16 | 0x08 | 0x10, 16, FWCFG_INFO))
    outl(0x514, 0)
    outl(0x518, int.from_bytes(struct.pack('>I', FWCFG_DESC), 'little'))


def run_qemu(qemu, work, g, blob):
    qmp_path = os.path.join(work, 'qemu-qmp.sock')
    gdb_path = os.path.join(work, 'qemu-gdb.sock')
    proc = subprocess.Popen(
        [qemu, '-S', '-nodefaults', '-no-user-config', '-display', 'none',
         '-machine', 'pc', '-accel', 'tcg', '-cpu', 'qemu64', '-m', str(MEM_MB),
         '-smp', '2', '-L', '/usr/share/seabios', '-L', '/usr/share/qemu',
         '-device', f'loader,file={blob},addr={TABLES:#x},force-raw=on',
         '-device', 'vmcoreinfo',
         '-chardev', f'socket,id=gdb0,path={gdb_path},server=on,wait=off',
         '-gdb', 'chardev:gdb0',
         '-qmp', f'unix:{qmp_path},server=on,wait=off'],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, 'qemu.stderr'), 'w'))
    try:
        q = Qmp(qmp_path)
        gdb = GdbStub(gdb_path)
        if g.note:
            def hmp(line):
                return q.hmp(line)

            program_vmcoreinfo(
                g, lambda port, v: hmp(f'o /h {port:#x} {v:#x}'),
                lambda port: int(hmp(f'i /b {port:#x}').split('=')[1], 16),
                lambda port, v: hmp(f'o /w {port:#x} {v:#x}'), gdb.write_mem)
        for cpu in (0, 1):
            gdb.select(cpu)
            for name, value in (g.cpu_regs[cpu] if g.cpu_regs else g.regs).items():
                gdb.write_reg(name, value)
        out = {}
        for name, args in DUMPS.items():
            f = os.path.join(work, f'qemu-{name}.elf')
            q.execute('dump-guest-memory', **dict(args, protocol=f'file:{f}'))
            out[name] = f
        q.execute('quit')
        proc.wait(timeout=30)
        return out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def qemu_note_regs(path):
    """Every register the QEMU notes of a paging=false ELF carry, per vCPU."""
    return [parse_qemu_cpu(desc) for name, desc in elf_compare.Elf(path).notes()
            if name == b'QEMU']


def parse_qemu_cpu(b):
    r = {}
    gprs = ('rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
            'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15')
    for i, n in enumerate(gprs):
        r[n] = struct.unpack_from('<Q', b, 8 + i * 8)[0]
    r['rip'], r['rflags'] = struct.unpack_from('<QQ', b, 136)
    segs = ('cs', 'ds', 'es', 'fs', 'gs', 'ss', 'ldt', 'tr', 'gdt', 'idt')
    for i, n in enumerate(segs):
        sel, limit, flags, _, base = struct.unpack_from('<IIIIQ', b, 152 + i * 24)
        if n in ('gdt', 'idt'):
            r[n + '_base'], r[n + '_limit'] = base, limit
        else:
            r[n], r[n + '_flags'] = sel, flags
            r[n + '_base'], r[n + '_limit'] = base, limit
    for i in (0, 2, 3, 4):
        r[f'cr{i}'] = struct.unpack_from('<Q', b, 392 + i * 8)[0]
    r['kernel_gs_base'] = struct.unpack_from('<Q', b, 432)[0]
    return r


class QTest:
    """guestdump's qtest protocol: one command line, one reply line."""

    def __init__(self, listener, proc):
        listener.settimeout(30)
        self.sock, _ = listener.accept()
        self.file = self.sock.makefile('rwb')

    def cmd(self, line):
        self.file.write(line.encode() + b'\n')
        self.file.flush()
        r = self.file.readline().decode().strip()
        if not r.startswith('OK'):
            raise RuntimeError(f'qtest {line}: {r}')
        return r


def run_guestdump(host, work, g, blob, cpu_regs):
    qmp_path = os.path.join(work, 'gd-qmp.sock')
    qtest_path = os.path.join(work, 'gd-qtest.sock')
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(qtest_path)
    listener.listen(1)
    proc = subprocess.Popen(
        [host, '-S', '-machine', 'pc', '-m', str(MEM_MB), '-smp', '2',
         '-device', f'loader,file={blob},addr={TABLES:#x},force-raw=on',
         '-device', 'vmcoreinfo', '-qtest', f'unix:{qtest_path}',
         '-qmp', f'unix:{qmp_path},server=on,wait=off'],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, 'gd.stderr'), 'w'))
    try:
        qt = QTest(listener, proc)
        q = Qmp(qmp_path)
        if g.note:
            program_vmcoreinfo(
                g, lambda port, v: qt.cmd(f'outw {port:#x} {v:#x}'),
                lambda port: int(qt.cmd(f'inb {port:#x}').split()[1], 16),
                lambda port, v: qt.cmd(f'outl {port:#x} {v:#x}'),
                lambda addr, data: qt.cmd(
                    f'write {addr:#x} {len(data):#x} 0x{data.hex()}'))
        for cpu, regs in enumerate(cpu_regs):
            regs = dict(regs)
            regs['efer'] = (g.cpu_regs[cpu] if g.cpu_regs else g.regs).get('efer', 0)
            q.execute('x-guestdump-set-registers', **{
                'cpu-index': cpu,
                'registers': [{'name': k, 'value': v} for k, v in regs.items()]})
        out = {}
        for name, args in DUMPS.items():
            f = os.path.join(work, f'gd-{name}.elf')
            q.execute('dump-guest-memory', **dict(args, protocol=f'file:{f}'))
            out[name] = f
        q.execute('quit')
        proc.wait(timeout=30)
        return out
    finally:
        listener.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# Refused requests: (arguments besides protocol, protocol or None for a file).
ERROR_CASES = [
    ({'paging': True, 'format': 'kdump-zlib'}, None),
    ({'paging': False, 'format': 'kdump-zlib', 'begin': 0, 'length': 4096}, None),
    ({'paging': False, 'begin': 0}, None),
    ({'paging': False, 'length': 4096}, None),
    ({'paging': False}, 'fd:nosuch'),
    ({'paging': False}, 'tcp:127.0.0.1:1'),
    ({'paging': False}, 'file:/nonexistent/dir/x.elf'),
    ({'paging': False, 'begin': 0, 'length': 0}, None),
    ({'paging': False, 'begin': 1 << 44, 'length': 4096}, None),
    ({'paging': True, 'begin': 4096, 'length': -1}, None),
    ({'paging': False, 'begin': -4096, 'length': 8192}, None),
]


def run_errors(host_cmd, work, prefix):
    """Each refused request's error text, whether a file was left, query-dump."""
    qmp_path = os.path.join(work, f'{prefix}-qmp.sock')
    proc = subprocess.Popen(host_cmd + ['-qmp', f'unix:{qmp_path},server=on,wait=off'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = []
    try:
        q = Qmp(qmp_path)
        for i, (args, proto) in enumerate(ERROR_CASES):
            f = os.path.join(work, f'{prefix}-refused-{i}.elf')
            try:
                q.execute('dump-guest-memory',
                          **dict(args, protocol=proto or f'file:{f}'))
                err = None
            except DriverError as ex:
                err = str(ex).split(': ', 1)[1]
            st = q.execute('query-dump')
            out.append((err, os.path.exists(f), st['status']))
        q.execute('quit')
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out


def compare_errors(qemu, host, work):
    """Same texts and query-dump states; files QEMU leaves behind, we do not."""
    base = ['-S', '-machine', 'pc', '-m', str(MEM_MB)]
    q = run_errors([qemu, '-nodefaults', '-no-user-config', '-display', 'none',
                    '-accel', 'tcg', '-cpu', 'qemu64', '-L', '/usr/share/seabios']
                   + base, work, 'qemu')
    o = run_errors([host] + base, work, 'gd')
    errs = []
    for (args, proto), (qe, qfile, qst), (oe, ofile, ost) in zip(ERROR_CASES, q, o):
        what = json.dumps(dict(args, protocol=proto or 'file:...'))
        if qe is None or qe != oe:
            errs.append(f'{what}: qemu {qe!r} guestdump {oe!r}')
        if qst != ost:
            errs.append(f'{what}: query-dump status qemu {qst} guestdump {ost}')
        if ofile:
            errs.append(f'{what}: guestdump left a file behind')
    return errs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--guestdump', required=True)
    ap.add_argument('--qemu', default=os.environ.get('QEMU', 'qemu-system-x86_64'))
    ap.add_argument('--keep', help='keep the dumps in this folder')
    ap.add_argument('--modes', default=','.join(MODES))
    a = ap.parse_args()
    modes = a.modes.split(',')
    print(f'1..{len(DUMPS) * len(modes) + 1}')
    qemu = shutil.which(a.qemu)
    if not qemu:
        for i in range(len(DUMPS) * len(modes) + 1):
            print(f'ok {i + 1} # SKIP qemu-system-x86_64 not installed')
        return 0
    top = a.keep or tempfile.mkdtemp(prefix='elf-compat-')
    n = 0
    failed = False
    try:
        for mode in modes:
            work = os.path.join(top, mode)
            os.makedirs(work, exist_ok=True)
            g = build(mode)
            blob = os.path.join(work, 'tables.bin')
            with open(blob, 'wb') as f:
                f.write(g.blob)
            try:
                qf = run_qemu(qemu, work, g, blob)
                regs = qemu_note_regs(qf['plain'])
                gf = run_guestdump(a.guestdump, work, g, blob, regs)
                results = []
                for name, args in DUMPS.items():
                    paging = args['paging']
                    results.append((name, elf_compare.compare(
                        elf_compare.Elf(qf[name]), elf_compare.Elf(gf[name]),
                        g.extra_va if paging else [],
                        la57=(mode == 'long5'),
                        stale_phys=g.stale_phys if paging else ())))
            except Exception as ex:       # a crash is a failure, with its reason
                results = [(name, [repr(ex)]) for name in DUMPS]
            for what, errs in results:
                n += 1
                if errs:
                    failed = True
                    print(f'not ok {n} {mode} {what}')
                    for e in errs:
                        print(f'# {e}')
                else:
                    print(f'ok {n} {mode} {what}: equal except the listed corrections')
        n += 1
        work = os.path.join(top, 'errors')
        os.makedirs(work, exist_ok=True)
        try:
            errs = compare_errors(qemu, a.guestdump, work)
        except Exception as ex:
            errs = [repr(ex)]
        if errs:
            failed = True
            print(f'not ok {n} refused requests')
            for e in errs:
                print(f'# {e}')
        else:
            print(f'ok {n} refused requests: same texts and states, no file left')
    finally:
        if not a.keep:
            shutil.rmtree(top, ignore_errors=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
