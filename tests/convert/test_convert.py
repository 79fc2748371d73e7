#!/usr/bin/env python3
"""guestdump-convert end to end, without QEMU (TAP).

    test_convert.py --convert BUILD/guestdump-convert --guestdump BUILD/guestdump

The input is an ELF vmcore of guestdump's demo guest (-demo, 2 vCPUs, page
tables, VMCOREINFO), written by dump-guest-memory. Checks:
  * every format this build writes: guestdump-convert's output is byte for
    byte what `guestdump -restore ELF` + dump-guest-memory writes (the same
    restore, the same writer); ELF -> ELF gives back the input itself;
  * --paging and --begin/--length: as dump-guest-memory with those arguments;
  * OUTPUT '-': the same bytes through a pipe; kdump-raw into a pipe refused;
  * ELF -> kdump-raw-zlib -> (QEMU-readable) and a Linux /proc/vmcore-shaped
    ELF (kernel-text alias segment, CORE notes, VMCOREINFO) converts;
  * bad inputs (truncated at many points, lying headers, phdrs past the end,
    zero-length, directory, FIFO, character device, other file kinds): exit 1,
    exactly one line on stderr, no output file and no temporary left;
  * existing OUTPUT without --force is kept; usage errors exit 2;
  * progress: a summary line on a pipe, nothing with -q, a bar on a terminal;
  * SIGINT mid-conversion: exit 1, no output, no temporary.
"""
import argparse
import json
import os
import pty
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "compat"))
from qemu_driver import Qmp  # noqa: E402


class TAP:
    def __init__(self):
        self.n = self.failed = 0

    def ok(self, cond, name, diag=""):
        self.n += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, name))
        if not cond:
            self.failed += 1
            for line in str(diag).splitlines():
                print("# " + line)
        sys.stdout.flush()


def host_dumps(guestdump, work, args, dumps):
    """Runs guestdump with args and takes each (name, qmp arguments) dump."""
    sock = os.path.join(work, "gd-%d.sock" % os.getpid())
    p = subprocess.Popen([guestdump] + args + ["-qmp", "unix:%s,server=on,wait=off" % sock],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        q = Qmp(sock)
        formats = q.execute("query-dump-guest-memory-capability")["formats"]
        for path, qargs in dumps:
            a = {"paging": False, "protocol": "file:" + path}
            a.update(qargs)
            q.execute("dump-guest-memory", **a)
        q.execute("quit")
        q.close()
    finally:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return formats


def run(conv, *args, **kw):
    return subprocess.run([conv] + list(args), capture_output=True, **kw)


def leftovers(d, name):
    return [f for f in os.listdir(d) if f.startswith("." + name + ".convert-")]


def refused(conv, work, path, name, want=None, opts=()):
    """exit 1, one line naming the problem, no output, no temporary."""
    out = os.path.join(work, "out-" + name)
    r = run(conv, *opts, path, out)
    err = r.stderr.decode(errors="replace")
    lines = err.splitlines()
    ok = (r.returncode == 1 and len(lines) == 1 and lines[0].startswith("guestdump-convert: ")
          and not os.path.exists(out) and not leftovers(work, "out-" + name))
    if want:
        ok = ok and want in err
    return ok, "exit %d, stderr %r" % (r.returncode, err)


def elf_parts(data):
    """(phoff, phnum) of an ELF64 file."""
    return struct.unpack_from("<Q", data, 32)[0], struct.unpack_from("<H", data, 56)[0]


def note(name, ntype, desc):
    n = name.encode() + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(n), len(desc), ntype) + pad(n) + pad(desc)


def linux_vmcore(path):
    """What kdump saves from /proc/vmcore: CORE prstatus per CPU, VMCOREINFO,
    a PT_LOAD for the kernel text (an alias inside RAM) and RAM segments."""
    ram = [(0x1000, 0x9f000), (0x100000, 0x1f00000)]
    text = (0x1000000, 0x200000)      # inside the second RAM segment
    prstatus = bytearray(336)
    struct.pack_into("<I", prstatus, 32, 1)          # pr_pid
    struct.pack_into("<Q", prstatus, 112 + 16 * 8, 0xffffffff81000000)   # rip
    vmci = b"OSRELEASE=6.1.0-test\nPAGESIZE=4096\nNUMBER(phys_base)=0\n"
    notes = note("CORE", 1, bytes(prstatus)) + note("VMCOREINFO", 0, vmci)
    segs = [(text[0], text[1], 0xffffffff81000000)] + \
        [(a, n, 0xffff888000000000 + a) for a, n in ram]
    phnum = 1 + len(segs)
    off = 64 + 56 * phnum
    body = bytearray()
    ph = struct.pack("<IIQQQQQQ", 4, 0, off, 0, 0, len(notes), 0, 0)
    body += notes
    pos = off + len(notes)
    content = {}
    for paddr, size, vaddr in segs:
        pos = (pos + 4095) & ~4095
        while len(body) < pos - off:
            body += b"\0"
        data = bytearray(size)
        for k in range(0, size, 0x10000):       # a marker every 64 KiB
            data[k:k + 8] = struct.pack("<Q", paddr + k)
        if paddr == ram[1][0]:
            # the kernel's own copy of its VMCOREINFO note, where restore finds it
            n = note("VMCOREINFO", 0, vmci)
            data[0x700100:0x700100 + len(n)] = n
        content[paddr] = bytes(data)
        ph += struct.pack("<IIQQQQQQ", 1, 7, pos, vaddr, paddr, size, size, 4096)
        body += data
        pos += size
    eh = bytearray(64)
    eh[0:16] = b"\x7fELF\x02\x01\x01" + bytes(9)
    struct.pack_into("<HHIQQQIHHHHHH", eh, 16, 4, 62, 1, 0, 64, 0, 0, 64, 56, phnum,
                     0, 0, 0)
    with open(path, "wb") as f:
        f.write(bytes(eh) + ph + body)
    return ram


def elf_loads(path):
    d = open(path, "rb").read()
    phoff, phnum = elf_parts(d)
    out = {}
    for i in range(phnum):
        t, _, off, _, paddr, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", d,
                                                               phoff + 56 * i)
        if t == 1:
            out[paddr] = d[off:off + filesz]
    return out


def memory_of(path):
    """An ELF's memory as merged (start, bytes) runs: the same memory whatever
    the PT_LOAD boundaries (a kdump file does not record them)."""
    runs = []
    for paddr, data in sorted(elf_loads(path).items()):
        if runs and runs[-1][0] + len(runs[-1][1]) == paddr:
            runs[-1] = (runs[-1][0], runs[-1][1] + data)
        elif data:
            runs.append((paddr, data))
    return runs


def iter_nonzero_pages(path):
    """The non-zero 4 KiB pages of an ELF's PT_LOAD contents."""
    zero = bytes(4096)
    for data in elf_loads(path).values():
        for i in range(0, len(data), 4096):
            if data[i:i + 4096] != zero[:len(data[i:i + 4096])]:
                yield i


def notes_of(path):
    d = open(path, "rb").read()
    phoff, phnum = elf_parts(d)
    out = b""
    for i in range(phnum):
        t, _, off, _, _, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", d, phoff + 56 * i)
        if t == 4:
            out += d[off:off + filesz]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--convert", required=True)
    ap.add_argument("--guestdump", required=True)
    ap.add_argument("--keep")
    ap.add_argument("--part", choices=("all", "outputs", "inputs"), default="all",
                    help="outputs: formats, stdout, usage, progress, signals; inputs: "
                    "foreign and malformed inputs (run under ASan in the unit suite)")
    a = ap.parse_args()
    conv = a.convert
    part = a.part
    tap = TAP()
    work = a.keep or tempfile.mkdtemp(prefix="convert-test-")
    os.makedirs(work, exist_ok=True)
    try:
        elf = os.path.join(work, "demo.elf")
        host_dumps(a.guestdump, work, ["-demo", "-m", "64M", "-smp", "2"],
                   [(elf, {"format": "elf"})])

        if part in ("all", "outputs"):
            # -- every format: the bytes of -restore + dump-guest-memory --------
            sock_formats = host_dumps(a.guestdump, work, ["-restore", elf, "-S"], [])
            # win-dmp needs a Windows guest: win-dmp-compare converts those
            sock_formats = [f for f in sock_formats if f != "win-dmp"]
            dumps = [(os.path.join(work, "ref-" + f), {"format": f}) for f in sock_formats]
            dumps += [(os.path.join(work, "ref-paging"), {"format": "elf", "paging": True}),
                      (os.path.join(work, "ref-range"), {"format": "elf", "begin": 0x100000,
                                                         "length": 0x300000})]
            host_dumps(a.guestdump, work, ["-restore", elf, "-S"], dumps)
            for f in sock_formats:
                out = os.path.join(work, "conv-" + f)
                r = run(conv, "-q", "--format", f, elf, out)
                same = r.returncode == 0 and open(out, "rb").read() == \
                    open(os.path.join(work, "ref-" + f), "rb").read()
                tap.ok(same, "format %s: -restore + dump-guest-memory's bytes" % f,
                       r.stderr.decode())
            out = os.path.join(work, "conv-paging")
            r = run(conv, "-q", "-O", "elf", "--paging", elf, out)
            tap.ok(r.returncode == 0 and open(out, "rb").read() ==
                   open(os.path.join(work, "ref-paging"), "rb").read(), "--paging",
                   r.stderr.decode())
            out = os.path.join(work, "conv-range")
            r = run(conv, "-q", "-O", "elf", "--begin", "1M", "--length", "0x300000", elf, out)
            tap.ok(r.returncode == 0 and open(out, "rb").read() ==
                   open(os.path.join(work, "ref-range"), "rb").read(), "--begin/--length",
                   r.stderr.decode())
            tap.ok(open(os.path.join(work, "conv-elf"), "rb").read() == open(elf, "rb").read(),
                   "ELF -> ELF gives back guestdump's own ELF")

            ok, diag = refused(conv, work, elf, "windmp", "no Windows DUMP_HEADER",
                               ("-O", "win-dmp"))
            tap.ok(ok, "win-dmp of a Linux guest: its note is not a Windows one", diag)

            # -- kdump inputs (the kdump reader behind restore) ----------------------
            mem, notes = memory_of(elf), notes_of(elf)
            for f in sock_formats:
                if not f.startswith("kdump"):
                    continue
                back = os.path.join(work, "back-%s.elf" % f)
                r = run(conv, "-q", "-O", "elf", os.path.join(work, "conv-" + f), back)
                ok = r.returncode == 0 and memory_of(back) == mem and notes_of(back) == notes
                tap.ok(ok, "ELF -> %s -> ELF keeps every byte of memory and the notes" % f,
                       r.stderr.decode())
            again = os.path.join(work, "again.kdump")
            r = run(conv, "-q", os.path.join(work, "conv-kdump-raw-zlib"), again)
            tap.ok(r.returncode == 0 and open(again, "rb").read() ==
                   open(os.path.join(work, "conv-kdump-zlib"), "rb").read(),
                   "kdump-raw-zlib -> kdump-zlib: the bytes ELF -> kdump-zlib gives",
                   r.stderr.decode())
            # -- memory stays bounded for a kdump input, too -----------------------
            # 512 MiB of demo RAM (most pages non-zero) as kdump-lzo, back to ELF:
            # the pages go through a temporary file that RAM maps, not this
            # process's memory.
            big = os.path.join(work, "big.kdump")
            host_dumps(a.guestdump, work, ["-demo", "-m", "512M"],
                       [(big, {"format": "kdump-lzo"})])
            bigelf = os.path.join(work, "big.elf")
            # VmHWM, polled: the child's rusage would count the forked test.
            p = subprocess.Popen([conv, "-q", "-O", "elf", big, bigelf],
                                 stderr=subprocess.PIPE)
            hwm = 0
            while p.poll() is None:
                try:
                    with open("/proc/%d/status" % p.pid) as f:
                        for line in f:
                            if line.startswith("VmHWM:"):
                                hwm = max(hwm, int(line.split()[1]) * 1024)
                except OSError:
                    pass
                time.sleep(0.02)
            err = p.stderr.read().decode()
            p.stderr.close()
            nonzero = sum(1 for _ in iter_nonzero_pages(bigelf)) * 4096 \
                if p.returncode == 0 else 0
            tap.ok(p.returncode == 0 and nonzero > 256 << 20 and 0 < hwm < nonzero // 2,
                   "kdump input: peak RSS %d MiB for %d MiB of non-zero pages"
                   % (hwm >> 20, nonzero >> 20), err)
            for f in (big, bigelf):
                os.unlink(f) if os.path.exists(f) else None
            # -- standard output ---------------------------------------------------
            r = subprocess.run([conv, "-q", elf, "-"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
            tap.ok(r.returncode == 0 and r.stdout == open(os.path.join(work, "conv-kdump-zlib"),
                                                          "rb").read(),
                   "'-': kdump-zlib (flattened) through a pipe", r.stderr.decode())
            r = subprocess.run([conv, "-q", "-O", "elf", elf, "-"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
            tap.ok(r.returncode == 0 and r.stdout == open(elf, "rb").read(),
                   "'-': ELF through a pipe", r.stderr.decode())
            r = subprocess.run([conv, "-q", "-O", "kdump-raw-zlib", elf, "-"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            tap.ok(r.returncode == 1 and b"seekable" in r.stderr and r.stdout == b"",
                   "'-': kdump-raw into a pipe is refused (it needs seeking)",
                   r.stderr.decode())
            with open(os.path.join(work, "stdout-file"), "wb") as f:
                r = subprocess.run([conv, "-q", "-O", "kdump-raw-zlib", elf, "-"], stdout=f,
                                   stderr=subprocess.PIPE)
            tap.ok(r.returncode == 0 and open(os.path.join(work, "stdout-file"), "rb").read() ==
                   open(os.path.join(work, "conv-kdump-raw-zlib"), "rb").read(),
                   "'-': kdump-raw into a file on standard output", r.stderr.decode())

            # -- OUTPUT rules, usage --------------------------------------------------------
            existing = os.path.join(work, "existing")
            with open(existing, "wb") as f:
                f.write(b"keep me")
            r = run(conv, "-q", elf, existing)
            kept = open(existing, "rb").read() == b"keep me"
            r2 = run(conv, "-q", "--force", elf, existing)
            tap.ok(r.returncode == 1 and b"--force" in r.stderr and kept and
                   r2.returncode == 0 and open(existing, "rb").read() ==
                   open(os.path.join(work, "conv-kdump-zlib"), "rb").read(),
                   "existing OUTPUT kept without --force, replaced with it",
                   (r.stderr + r2.stderr).decode())
            usage = [[], [elf], ["-x", elf, "o"], ["--format", "nope", elf, "o"],
                     ["--paging", elf, "o"], ["-O", "elf", "--begin", "0", elf, "o"],
                     ["--threads", "0", elf, "o"], ["--dump-level", "32", elf, "o"],
                     ["-d", "x", elf, "o"], [elf, "o", "extra"]]
            bad_usage = []
            for u in usage:
                r = run(conv, *u)
                if r.returncode != 2 or b"Try 'guestdump-convert --help'" not in r.stderr:
                    bad_usage.append("%r: %d %r" % (u, r.returncode, r.stderr))
            tap.ok(not bad_usage and not os.path.exists("o"), "usage errors exit 2",
                   "\n".join(bad_usage))
            # dump-level goes to dump-guest-memory, which refuses it for ELF
            # (the Linux levels themselves: filter-exact, on real kernels).
            r = run(conv, "-q", "-O", "elf", "-d", "31", elf, os.path.join(work, "d31"))
            tap.ok(r.returncode == 1 and r.stderr.count(b"\n") == 1 and
                   b"dump-level is only supported by the kdump formats" in r.stderr and
                   not os.path.exists(os.path.join(work, "d31")),
                   "--dump-level with ELF: dump-guest-memory's refusal, exit 1, no file",
                   r.stderr.decode())
            r = run(conv, "--help")
            tap.ok(r.returncode == 0 and b"kdump-zlib" in r.stdout and b"--format" in r.stdout,
                   "--help")

            # -- progress ----------------------------------------------------------------------
            out = os.path.join(work, "p1")
            r = run(conv, elf, out)
            lines = r.stderr.decode().splitlines()
            tap.ok(r.returncode == 0 and lines and "demo.elf' -> '" in lines[-1] and
                   all(ln.startswith("guestdump-convert: ") for ln in lines),
                   "not a terminal: plain lines", r.stderr.decode())
            out = os.path.join(work, "p2")
            r = run(conv, "-q", elf, out)
            tap.ok(r.returncode == 0 and r.stderr == b"", "-q: nothing", r.stderr.decode())
            master, slave = pty.openpty()
            out = os.path.join(work, "p3")
            p = subprocess.Popen([conv, elf, out], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=slave)
            os.close(slave)
            text = b""
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                text += chunk
            p.wait()
            os.close(master)
            tap.ok(p.returncode == 0 and b"\r[" in text and b"100%" in text and b"/s" in text,
                   "a terminal: a bar with bytes, rate and time left", repr(text[-300:]))

            # -- SIGINT ------------------------------------------------------------------------
            # Into a pipe nobody reads, the writer blocks: the signal must get it out.
            rfd, wfd = os.pipe()
            p = subprocess.Popen([conv, "-q", "-O", "elf", elf, "-"], stdout=wfd,
                                 stderr=subprocess.PIPE)
            os.close(wfd)
            time.sleep(1.0)
            p.send_signal(signal.SIGINT)
            try:
                _, err = p.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
            os.close(rfd)
            tap.ok(p.returncode == 1 and b"interrupted" in err,
                   "SIGINT while blocked on a full pipe: exit 1", err.decode())
            # Into a file: wait until the temporary has data, then interrupt.
            out = os.path.join(work, "sigint.kdump")
            p = subprocess.Popen([conv, "-q", "--threads", "1", elf, out],
                                 stderr=subprocess.PIPE)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and p.poll() is None:
                tmp = leftovers(work, "sigint.kdump")
                if tmp and os.path.getsize(os.path.join(work, tmp[0])) > 0:
                    break
                time.sleep(0.005)
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=60)
            tap.ok(p.returncode == 1 and not os.path.exists(out) and
                   not leftovers(work, "sigint.kdump"),
                   "SIGTERM while writing a file: exit 1, nothing left", err.decode())
        if part in ("all", "inputs"):
            # -- a Linux /proc/vmcore as kdump saves it ----------------------------
            lin = os.path.join(work, "linux.vmcore")
            ram = linux_vmcore(lin)
            out = os.path.join(work, "linux.elf")
            r = run(conv, "-q", "-O", "elf", lin, out)
            want = elf_loads(lin)
            got = elf_loads(out) if r.returncode == 0 else {}
            head = open(out, "rb").read(20) if r.returncode == 0 else b""
            tap.ok(r.returncode == 0 and sorted(got) == [p for p, _ in ram] and
                   all(got[p] == want[p] for p, _ in ram) and head[4] == 2 and
                   struct.unpack_from("<H", head, 18)[0] == 62,
                   "Linux /proc/vmcore: kernel-text alias dropped, RAM kept, x86-64",
                   r.stderr.decode())
            r = run(conv, "-q", lin, os.path.join(work, "linux.kdump"))
            tap.ok(r.returncode == 0, "Linux /proc/vmcore -> kdump-zlib", r.stderr.decode())

            # -- bad inputs ------------------------------------------------------------
            data = open(elf, "rb").read()
            phoff, phnum = elf_parts(data)
            bad = os.path.join(work, "bad")
            end = max(o + n for t, o, n in
                      (struct.unpack_from("<I4xQ16xQ", data, phoff + 56 * i)
                       for i in range(phnum)) if t == 1)
            cuts = [1, 15, 40, 63, phoff + 10, phoff + 56 * phnum - 1, len(data) // 2,
                    end - 1]
            results = []
            for cut in cuts:
                with open(bad, "wb") as f:
                    f.write(data[:cut])
                results.append((cut,) + refused(conv, work, bad, "trunc"))
            tap.ok(all(ok for _, ok, _ in results), "truncated at %d places" % len(cuts),
                   "\n".join("%d: %s" % (c, d) for c, ok, d in results if not ok))

            def lie(name, off, fmt, val, want=None):
                d = bytearray(data)
                struct.pack_into(fmt, d, off, val)
                with open(bad, "wb") as f:
                    f.write(d)
                ok, diag = refused(conv, work, bad, name, want)
                tap.ok(ok, "lying header: " + name, diag)

            lie("phoff past the end", 32, "<Q", len(data) + 4096, "truncated")
            lie("phnum 0", 56, "<H", 0)
            lie("phentsize", 54, "<H", 32, "program header size")
            lie("PT_LOAD offset past the end", phoff + 56 * 1 + 8, "<Q", len(data) * 2,
                "truncated")
            lie("PT_LOAD filesz past the end", phoff + 56 * 1 + 32, "<Q", len(data),
                "truncated")
            lie("PT_LOAD filesz != memsz", phoff + 56 * 1 + 40, "<Q", 1 << 40, "paging")
            lie("PT_NOTE past the end", phoff + 8, "<Q", len(data) - 8, "truncated")
            lie("paddr beyond 52 bits", phoff + 56 * 1 + 24, "<Q", 1 << 60, "52-bit")
            lie("machine", 18, "<H", 183, "not x86")
            lie("class", 4, "<B", 9, "ELF class")
            lie("big-endian", 5, "<B", 2, "little-endian")

            def kind(name, content, want):
                with open(bad, "wb") as f:
                    f.write(content)
                ok, diag = refused(conv, work, bad, name.replace(" ", "-"), want)
                tap.ok(ok, "named: " + name, diag)

            kind("zero-length", b"", "is empty")
            kind("QEMU migration stream", b"QEVM\0\0\0\3" + bytes(100), "migration stream")
            kind("Windows crash dump", b"PAGEDU64" + bytes(100), "Windows crash dump")
            kind("ELF executable", data[:16] + struct.pack("<H", 2) + data[18:4096],
                 "not a core dump")
            kind("random bytes", os.urandom(8192), "not")
            # a process core: every PT_LOAD at physical address 0
            pc = bytearray(data)
            for i in range(phnum):
                if struct.unpack_from("<I", pc, phoff + 56 * i)[0] == 1:
                    struct.pack_into("<Q", pc, phoff + 56 * i + 24, 0)
            kind("process core dump", bytes(pc), "process core dump")

            ok, diag = refused(conv, work, work, "dir", "directory")
            tap.ok(ok, "named: a directory", diag)
            ok, diag = refused(conv, work, "/dev/zero", "chr", "character device")
            tap.ok(ok, "named: /dev/zero", diag)
            fifo = os.path.join(work, "fifo")
            os.mkfifo(fifo)
            ok, diag = refused(conv, work, fifo, "fifo", "FIFO")
            tap.ok(ok, "named: a FIFO (no reader wait)", diag)

            # -- kdump files that lie ------------------------------------------------
            rawpath = os.path.join(work, "inputs-raw.kdump")
            r = run(conv, "-q", "-O", "kdump-raw-zlib", elf, rawpath)
            tap.ok(r.returncode == 0, "ELF -> kdump-raw-zlib for the kdump refusals",
                   r.stderr.decode())
            raw = open(rawpath, "rb").read()
            bad_k = os.path.join(work, "bad.kdump")
            with open(bad_k, "wb") as f:
                f.write(raw[:len(raw) // 3])
            ok, diag = refused(conv, work, bad_k, "badk")
            tap.ok(ok, "truncated kdump file: one line, exit 1, nothing left", diag)
            # disk_dump_header: sub_hdr_size at 432, bitmap_blocks at 436 (x86-64);
            # the second bitmap claiming every page frame, more than the file holds
            sub, blocks = struct.unpack_from("<II", raw, 432)
            second = (1 + sub) * 4096 + blocks // 2 * 4096
            lying = bytearray(raw)
            lying[second:second + blocks // 2 * 4096] = b"\xff" * (blocks // 2 * 4096)
            with open(bad_k, "wb") as f:
                f.write(lying)
            ok, diag = refused(conv, work, bad_k, "badk")
            tap.ok(ok, "kdump bitmap claiming more pages than the file holds: one line, "
                   "exit 1, nothing left", diag)

    except Exception as e:        # a harness failure is a failure
        tap.ok(False, "harness", repr(e))
    finally:
        print("1..%d" % tap.n)
        if not a.keep:
            subprocess.run(["rm", "-rf", work])
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
