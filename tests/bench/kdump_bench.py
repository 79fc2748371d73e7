#!/usr/bin/env python3
"""Dump throughput of guestdump against QEMU 7.2, makedumpfile and cat, in one run.

    kdump_bench.py --build BUILD [--size 2G] [--mix demo|zero|random]
                   [--formats elf,kdump-zlib,kdump-lzo,kdump-snappy,kdump-zstd]
                   [--reps 1] [--threads N] [--pipe | --both]
                   [--qemu qemu-system-x86_64]
                   [--no-qemu] [--no-makedumpfile] [--out DIR] [--json FILE]

A RAM image of --size is made with the page mix asked for (demo: runs of
40 % zero, 40 % text/code taken from /usr/include and shared libraries,
20 % random pages; zero; random). The same image becomes the RAM of
  * guestdump: -m SIZE -S -device loader,file=IMG,addr=0,force-raw=on
  * QEMU 7.2:   memory-backend-file,mem-path=IMG,share=off,prealloc=on
and each format is dumped over QMP (file:, or with --pipe fd: a pipe drained
by cat into a file on the same disk; --both does both, file first, from the
same processes), timed from the command to its reply,
`sync` before each run, one untimed warm-up per tool. Then makedumpfile
-c/-l/-p (-d 0) converts guestdump's ELF dump of that guest, and `cat`
copies each dump file to the same disk: the ceiling for writing those
bytes (for the pipe: `cat dump | cat > copy` through a 1 MiB pipe).
Everything is printed as MB/s of guest RAM and as ratios
(guestdump / QEMU; guestdump time / cat time), all measured in this run.
This is a benchmark, not a test: nothing here passes or fails.
"""
import argparse
import array
import fcntl
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

PAGE = 4096


def parse_size(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(s[:-1]) * mult[s[-1].upper()]) if s[-1].upper() in mult else int(s)


def text_corpus(limit=64 << 20):
    out = bytearray()
    for root in ("/usr/include", "/usr/lib/x86_64-linux-gnu"):
        for dirpath, _, files in os.walk(root):
            for f in sorted(files):
                p = os.path.join(dirpath, f)
                if os.path.islink(p) or not (f.endswith(".h") or ".so" in f):
                    continue
                try:
                    out += open(p, "rb").read(1 << 20)
                except OSError:
                    continue
                if len(out) >= limit:
                    return bytes(out)
    return bytes(out) or bytes(range(256)) * 4096


def make_ram(path, size, mix, seed=1):
    rnd = random.Random(seed)
    corpus = text_corpus() if mix == "demo" else b""
    zero = bytes(PAGE)
    counts = {"zero": 0, "text": 0, "random": 0}
    with open(path, "wb") as f:
        pages = size // PAGE
        done = 0
        while done < pages:
            r = rnd.random()
            kind = mix if mix in ("zero", "random") else \
                "zero" if r < 0.4 else "text" if r < 0.8 else "random"
            run = min(pages - done, 1 + int(rnd.expovariate(1 / 7)))
            for _ in range(run):
                if kind == "zero":
                    f.write(zero)
                elif kind == "text":
                    off = rnd.randrange(0, len(corpus) - PAGE) & ~7
                    f.write(corpus[off:off + PAGE])
                else:
                    f.write(rnd.randbytes(PAGE))
            counts[kind] += run
            done += run
    return counts


class QMP:
    def __init__(self, path, timeout=120):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        self.buf = b""
        self._read()
        self.execute("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("QMP closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, cmd, args=None, fd=None):
        msg = json.dumps({"execute": cmd, "arguments": args or {}}).encode() + b"\n"
        if fd is not None:
            self.sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                       array.array("i", [fd]))])
        else:
            self.sock.sendall(msg)
        while True:
            r = self._read()
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise RuntimeError(f"{cmd}: {r['error']['desc']}")


def timed_dump(q, fmt, path, pipe):
    if os.path.exists(path):
        os.chmod(path, 0o600)
        os.unlink(path)
    os.sync()
    t0 = time.monotonic()
    if pipe:
        r, w = os.pipe()
        with open(path, "wb") as out:
            cat = subprocess.Popen(["cat"], stdin=r, stdout=out)
        os.close(r)
        q.execute("getfd", {"fdname": "bench"}, fd=w)
        os.close(w)
        q.execute("dump-guest-memory", {"paging": False, "format": fmt,
                                        "protocol": "fd:bench"})
        cat.wait()
    else:
        q.execute("dump-guest-memory", {"paging": False, "format": fmt,
                                        "protocol": "file:" + path})
    return time.monotonic() - t0


def cpu_seconds(pid):
    """user + system seconds of a process: what a run cost, whatever the load."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_tool(name, cmd, sock, formats, work, reps, modes):
    """Returns {mode: {format: result}} for each of modes ("file", "pipe")."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    res = {m: {} for m in modes}
    try:
        q = QMP(sock)
        caps = [f["format"] if isinstance(f, dict) else f
                for f in q.execute("query-dump-guest-memory-capability")["formats"]]
        for mode in modes:
            pipe = mode == "pipe"
            for fmt in formats:
                if fmt not in caps:
                    res[mode][fmt] = {"skipped": f"{name} cannot write {fmt}"}
                    continue
                path = os.path.join(work, f"{name}-{fmt}-{mode}.dump")
                timed_dump(q, fmt, path, pipe)                   # warm-up, untimed
                c0 = cpu_seconds(proc.pid)
                ts = [timed_dump(q, fmt, path, pipe) for _ in range(reps)]
                cpu = (cpu_seconds(proc.pid) - c0) / reps
                r = {"median_s": statistics.median(ts), "times_s": ts, "cpu_s": cpu,
                     "bytes": os.path.getsize(path), "file": path}
                res[mode][fmt] = r
                print(f"  {name:9} {fmt:14} {mode:4} {r['median_s']:7.2f} s"
                      f"  (cpu {cpu:6.2f} s, load {os.getloadavg()[0]:.1f})",
                      flush=True)
        q.execute("quit")
    finally:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return res


def timed_pipe_copy(src, out, reps, pipe_size=1 << 20):
    """`cat src | cat > out` through a pipe of pipe_size: the pipe's ceiling."""
    ts = []
    for _ in range(reps + 1):
        if os.path.exists(out):
            os.unlink(out)
        os.sync()
        r, w = os.pipe()
        try:
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, pipe_size)
        except OSError:
            pass
        t0 = time.monotonic()
        with open(out, "wb") as fo:
            reader = subprocess.Popen(["cat"], stdin=r, stdout=fo)
        writer = subprocess.Popen(["cat", src], stdout=w)
        os.close(r)
        os.close(w)
        rc = writer.wait() | reader.wait()
        ts.append(time.monotonic() - t0)
        if rc:
            return None
    return statistics.median(ts[1:])


def timed_cmd(cmd, reps, out=None, stdin=None):
    ts = []
    for _ in range(reps + 1):
        if out and os.path.exists(out):
            os.unlink(out)
        os.sync()
        fi = open(stdin, "rb") if stdin else None
        fo = open(out, "wb") if out and cmd[0] == "cat" else None
        t0 = time.monotonic()
        r = subprocess.run(cmd, stdin=fi, stdout=fo or subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        ts.append(time.monotonic() - t0)
        for f in (fi, fo):
            if f:
                f.close()
        if r.returncode:
            return None
    return statistics.median(ts[1:])


def print_markdown(report, formats, mb):
    """The same figures as Markdown tables, MB/s and (seconds), CPU seconds."""
    def rate(m, tool, fmt):
        r = report["runs"][m]["tools"].get(tool, {}).get(fmt, {})
        return (mb / r["median_s"], r["median_s"]) if r.get("median_s") else None

    def cell(v, secs=True):
        if not v:
            return "–"
        return f"{v[0]:.0f} ({v[1]:.2f} s)" if secs else f"{v[0]:.0f}"

    def ratio(a, b):
        return f"{a[0] / b[0]:.2f}×" if a and b else "–"

    modes = report["modes"]
    for m in modes:
        tools = report["runs"][m]["tools"]
        extra = " | pipe/file" if m == "pipe" and "file" in modes else ""
        print(f"\n{m}, {report['size'] >> 20} MiB, mix {report['mix']}:\n")
        print("| format | guestdump | QEMU 7.2 | cat | vs QEMU | cat/gd |"
              f" CPU s (gd / QEMU){extra} |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |" +
              (" ---: |" if extra else ""))
        for fmt in formats:
            g, q, c = (rate(m, t, fmt) for t in ("guestdump", "qemu", "cat"))
            cpu = " / ".join(f"{tools[t][fmt]['cpu_s']:.2f}"
                             if tools.get(t, {}).get(fmt, {}).get("cpu_s") is not None
                             else "–" for t in ("guestdump", "qemu"))
            line = (f"| {fmt} | {cell(g)} | {cell(q)} | {cell(c, False)} |"
                    f" {ratio(g, q)} | {ratio(c, g)} | {cpu} |")
            if extra:
                line += f" {ratio(g, rate('file', 'guestdump', fmt))} |"
            print(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--size", default="2G")
    ap.add_argument("--mix", default="demo", choices=("demo", "zero", "random"))
    ap.add_argument("--formats",
                    default="elf,kdump-zlib,kdump-lzo,kdump-snappy,kdump-zstd")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--pipe", action="store_true", help="fd: into a pipe only")
    ap.add_argument("--both", action="store_true",
                    help="file and pipe in the same run, from the same processes")
    ap.add_argument("--qemu", default=os.environ.get("QEMU", "qemu-system-x86_64"))
    ap.add_argument("--no-qemu", action="store_true")
    ap.add_argument("--no-makedumpfile", action="store_true")
    ap.add_argument("--single-thread", action="store_true",
                    help="also time guestdump with -dump-threads 1")
    ap.add_argument("--out")
    ap.add_argument("--json")
    ap.add_argument("--markdown", action="store_true",
                    help="also print the tables as Markdown (docs/performance.md)")
    args = ap.parse_args()

    size = parse_size(args.size)
    if size > 3 << 30:
        # Above that the pc machine moves RAM past the PCI hole, and one
        # image loaded at address 0 no longer maps onto it the same way.
        ap.error("--size up to 3G")
    work = args.out or tempfile.mkdtemp(prefix="kdump-bench-", dir="/var/tmp")
    os.makedirs(work, exist_ok=True)
    formats = args.formats.split(",")
    img = os.path.join(work, f"ram-{args.mix}-{size}.img")
    if not os.path.exists(img):
        print(f"making {img} ...", flush=True)
        counts = make_ram(img, size, args.mix)
        print(f"  pages: {counts}")
    mb = size / 1e6
    modes = ["file", "pipe"] if args.both else ["pipe"] if args.pipe else ["file"]
    report = {"size": size, "mix": args.mix, "modes": modes,
              "runs": {m: {"tools": {}} for m in modes}}

    def store(tool, res):
        for m in modes:
            report["runs"][m]["tools"][tool] = res[m]

    gd = [os.path.join(args.build, "guestdump"), "-m", str(size >> 20), "-S",
          "-device", f"loader,file={img},addr=0,force-raw=on",
          "-qmp", f"unix:{work}/gd.sock,server=on,wait=off"]
    if args.threads:
        gd += ["-dump-threads", str(args.threads)]
    print("guestdump:", flush=True)
    store("guestdump", run_tool("guestdump", gd, f"{work}/gd.sock", formats, work,
                                args.reps, modes))
    if args.single_thread:
        # QEMU's algorithm on one core without QEMU's overheads: where QEMU
        # cannot be timed (a build without lzo/snappy), a same-run stand-in
        # that is faster than QEMU itself.
        gd1 = [a.replace("gd.sock", "gd1.sock") for a in gd] + ["-dump-threads", "1"]
        print("guestdump, one thread:", flush=True)
        store("guestdump-1t", run_tool(
            "gd-1t", gd1, f"{work}/gd1.sock",
            [f for f in formats if f.startswith("kdump")], work, args.reps, modes))
    qemu = shutil.which(args.qemu)
    if qemu and not args.no_qemu:
        q = [qemu, "-nodefaults", "-display", "none", "-no-user-config", "-machine",
             "pc,memory-backend=ram", "-accel", "tcg", "-cpu", "qemu64",
             "-m", str(size >> 20), "-S", "-object",
             f"memory-backend-file,id=ram,size={size},mem-path={img},"
             "share=off,prealloc=on",
             "-qmp", f"unix:{work}/q.sock,server=on,wait=off"]
        print("QEMU:", flush=True)
        store("qemu", run_tool("qemu", q, f"{work}/q.sock", formats, work,
                               args.reps, modes))
    mdf = shutil.which("makedumpfile")
    gd_runs = report["runs"][modes[0]]["tools"]["guestdump"]
    elf = gd_runs.get("elf", {}).get("file")
    if mdf and elf and not args.no_makedumpfile:
        # A makedumpfile built without a codec silently writes pages raw.
        built = subprocess.run([mdf, "-v"], capture_output=True, text=True).stdout
        mres = {}
        for opt, fmt in (("-c", "kdump-zlib"), ("-l", "kdump-lzo"),
                         ("-p", "kdump-snappy")):
            codec = fmt.split("-")[1]
            if codec != "zlib" and f"{codec}\tenabled" not in built:
                mres[fmt] = {"skipped": f"no {codec}"}
                continue
            out = os.path.join(work, f"mdf{opt}.dump")
            t = timed_cmd([mdf, opt, "-d", "0", elf, out], args.reps, out=out)
            mres[fmt] = ({"median_s": t} if t else
                         {"skipped": f"makedumpfile {opt} failed"})
        for m in modes:
            report["runs"][m]["tools"]["makedumpfile"] = mres
    for m in modes:
        cres = report["runs"][m]["tools"]["cat"] = {}
        for fmt, r in report["runs"][m]["tools"]["guestdump"].items():
            if "file" in r:
                copy = os.path.join(work, "cat.copy")
                if m == "pipe":
                    t = timed_pipe_copy(r["file"], copy, args.reps)
                else:
                    t = timed_cmd(["cat", r["file"]], args.reps, out=copy)
                cres[fmt] = {"median_s": t}
                os.unlink(copy)

    def cell(v, w):
        return f"{v:{w}.0f}" if v else f"{'-':>{w}}"

    def ratio(a, b, w):
        return f"{a / b:{w - 1}.2f}x" if a and b else f"{'-':>{w}}"

    def rate(m, tool, fmt):
        r = report["runs"].get(m, {}).get("tools", {}).get(tool, {}).get(fmt, {})
        return mb / r["median_s"] if r.get("median_s") else None

    for m in modes:
        tools = report["runs"][m]["tools"]
        print(f"\n{size >> 20} MiB guest, mix {args.mix}, "
              f"{'pipe (fd:)' if m == 'pipe' else 'file'}; MB/s of guest RAM"
              f" (load {os.getloadavg()[0]:.1f})")
        print(f"{'format':14} {'guestdump':>10} {'1 thread':>9} {'QEMU 7.2':>9}"
              f" {'makedumpfile':>13} {'cat':>7} {'vs QEMU':>8} {'vs 1t':>6}"
              f" {'cat/gd':>7}" + (f" {'pipe/file':>10}" if m == "pipe" and
                                   "file" in modes else ""))
        for fmt in formats:
            g, g1, q = (rate(m, t, fmt) for t in ("guestdump", "guestdump-1t", "qemu"))
            mk, c = rate(m, "makedumpfile", fmt), rate(m, "cat", fmt)
            line = (f"{fmt:14} {cell(g, 10)} {cell(g1, 9)} {cell(q, 9)} {cell(mk, 13)}"
                    f" {cell(c, 7)} {ratio(g, q, 8)} {ratio(g, g1, 6)} {ratio(c, g, 7)}")
            if m == "pipe" and "file" in modes:
                # guestdump's pipe throughput as a share of its file throughput
                line += f" {ratio(g, rate('file', 'guestdump', fmt), 10)}"
            print(line)
        print("\nCPU seconds per dump (user + system of the dumping process; on a busy"
              "\nmachine this shows the work done, which wall time cannot):")
        for fmt in formats:
            cpus = []
            for tool in ("guestdump", "guestdump-1t", "qemu"):
                r = tools.get(tool, {}).get(fmt, {})
                if r.get("cpu_s") is not None:
                    cpus.append(f"{tool} {r['cpu_s']:.2f}")
            print(f"  {fmt:14} " + ", ".join(cpus))
    if args.markdown:
        print_markdown(report, formats, mb)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if not args.out:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
