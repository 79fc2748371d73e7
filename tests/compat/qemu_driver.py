#!/usr/bin/env python3
"""Drive real QEMU 7.2 to a given guest state and take dumps (standard library only).

    qemu_driver.py --out DIR [--mem 64M] [--smp N] [--machine pc]
                   [--load FILE@ADDR ...] [--reg [CPU:]NAME=VALUE ...]
                   [--vmcoreinfo ADDR,SIZE] [--no-vmcoreinfo-device]
                   [--dump FORMAT[:paging][:begin=N:length=N][:name=F] ...]

Exit status 77 when qemu-system-x86_64 is not installed (the test-suite
"skip" code), 1 on any failure. DIR gets the dumps and result.json: the
command line, `info registers -a`, the registers read back through the
gdbstub, and per dump the QMP arguments, reply and DUMP_COMPLETED event.

As a module: `with QemuGuest(mem='64M', smp=2) as q: q.load(data, addr);
q.start(); q.set_registers(0, {...}); q.set_vmcoreinfo(addr, size);
q.dump(path)`.

How state gets into QEMU 7.2 (its facts, which this relies on):
* RAM and ROM contents: `-device loader,file=F,addr=A,force-raw=on`.
* vCPU registers: the gdbstub, which honours `p`/`P` only after the client
  read target.xml. A selector write loads the descriptor from the GDT
  (GDTR is base 0 limit 0xffff after reset), and GPR/RIP writes keep only
  32 bits unless CS is a 64-bit segment. So a temporary GDT goes to
  guest-physical 0 (0x08: 32-bit code, 0x10: 64-bit code, 0x18: data),
  selectors are loaded with CR0.PE set, the other registers follow, the GDT
  bytes are restored, and CR0 (with PG) and EFER come last.
* etc/vmcoreinfo: the fw_cfg directory is read with HMP port I/O, then a
  FWCfgDmaAccess descriptor placed in RAM is started by writing its address
  to the big-endian DMA port (0x514 high, 0x518 low).
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

SKIP = 77

# gdbstub register numbers of QEMU 7.2's x86_64 target description
GDB_REGS = (["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp"] +
            ["r%d" % i for i in range(8, 16)] +
            ["rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs",
             "fs_base", "gs_base", "k_gs_base",
             "cr0", "cr2", "cr3", "cr4", "cr8", "efer"])
GDB_NUM = {n: i for i, n in enumerate(GDB_REGS)}
FOUR_BYTE = {"eflags", "cs", "ss", "ds", "es", "fs", "gs"}
SELECTORS = ("cs", "ss", "ds", "es", "fs", "gs")
# Names guestdump's x-guestdump-set-registers uses for the same registers.
GUESTDUMP_NAME = {"eflags": "rflags", "fs_base": "fs_base", "gs_base": "gs_base",
                  "k_gs_base": "kernel_gs_base"}

TEMP_GDT = struct.pack("<4Q", 0,
                       0x00cf9a000000ffff,    # 0x08: 32-bit code
                       0x00af9a000000ffff,    # 0x10: 64-bit code
                       0x00cf92000000ffff)    # 0x18: data
CR0_PE, CR0_ET, CR0_PG = 1, 0x10, 1 << 31

FW_CFG_FILE_DIR = 0x19
DMA_SELECT, DMA_WRITE = 0x08, 0x10


class DriverError(Exception):
    pass


def find_qemu(explicit=None):
    q = explicit or os.environ.get("QEMU") or shutil.which("qemu-system-x86_64")
    return q if q and os.access(q, os.X_OK) else None


def connect_unix(path, deadline):
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if time.monotonic() > deadline:
                raise DriverError("QEMU did not open %s" % path)
            time.sleep(0.05)


class Qmp:
    """One QMP session: commands return 'return' or raise; events are kept."""

    def __init__(self, path, timeout=60.0):
        self.sock = connect_unix(path, time.monotonic() + timeout)
        self.sock.settimeout(timeout)
        self.file = self.sock.makefile("rb")
        self.events = []
        self.greeting = self._read()
        self.execute("qmp_capabilities")

    def _read(self):
        line = self.file.readline()
        if not line:
            raise DriverError("QMP connection closed")
        return json.loads(line)

    def command(self, name, fds=(), **args):
        """Runs a command; fds go with it over SCM_RIGHTS (getfd, add-fd)."""
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        data = json.dumps(msg).encode() + b"\n"
        if fds:
            # One message carries the fds; QEMU takes them with its first read.
            n = socket.send_fds(self.sock, [data], list(fds))
            data = data[n:]
        if data:
            self.sock.sendall(data)
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
            else:
                return r

    def execute(self, name, fds=(), **args):
        r = self.command(name, fds, **args)
        if "error" in r:
            raise DriverError("%s: %s" % (name, r["error"].get("desc")))
        return r["return"]

    def hmp(self, line):
        return self.execute("human-monitor-command", **{"command-line": line})

    def wait_event(self, name, timeout=600.0):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    return self.events.pop(i)
            if time.monotonic() > deadline:
                raise DriverError("no %s event" % name)
            self.events.append(self._read())

    def close(self):
        self.sock.close()


class GdbStub:
    """The few gdb remote packets needed: registers, physical memory before paging."""

    def __init__(self, path, timeout=60.0):
        self.sock = connect_unix(path, time.monotonic() + timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.packet("qSupported:xmlRegisters=i386")
        self._xfer("target.xml")     # unlocks p/P

    def _byte(self):
        while not self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise DriverError("gdbstub closed")
            self.buf += d
        b, self.buf = self.buf[:1], self.buf[1:]
        return b

    def packet(self, payload):
        data = payload.encode("latin-1")
        self.sock.sendall(b"$%s#%02x" % (data, sum(data) & 0xff))
        while self._byte() != b"$":
            pass
        body = bytearray()
        while True:
            c = self._byte()
            if c == b"#":
                break
            body += c
        self._byte()
        self._byte()
        self.sock.sendall(b"+")
        out, i = bytearray(), 0
        while i < len(body):          # escapes and run-length encoding
            c = body[i]
            if c == 0x7d:
                i += 1
                out.append(body[i] ^ 0x20)
            elif c == 0x2a and out:
                i += 1
                out += bytes([out[-1]]) * (body[i] - 29)
            else:
                out.append(c)
            i += 1
        return out.decode("latin-1")

    def _xfer(self, annex):
        off, text = 0, ""
        while True:
            r = self.packet("qXfer:features:read:%s:%x,%x" % (annex, off, 0x800))
            if not r or r[0] not in "ml":
                raise DriverError("gdbstub: cannot read %s" % annex)
            text += r[1:]
            off += len(r) - 1
            if r[0] == "l":
                return text

    def select(self, cpu):
        if self.packet("Hg%x" % (cpu + 1)) != "OK":
            raise DriverError("gdbstub: no vCPU %d" % cpu)

    def read_reg(self, name):
        r = self.packet("p%x" % GDB_NUM[name])
        if not r or r[0] == "E":
            raise DriverError("gdbstub: cannot read %s" % name)
        return int.from_bytes(bytes.fromhex(r), "little")

    def write_reg(self, name, value):
        size = 4 if name in FOUR_BYTE else 8
        v = (int(value) & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        if self.packet("P%x=%s" % (GDB_NUM[name], v.hex())) != "OK":
            raise DriverError("gdbstub: cannot write %s" % name)

    def read_mem(self, addr, size):
        out = b""
        while len(out) < size:
            n = min(size - len(out), 0x400)
            r = self.packet("m%x,%x" % (addr + len(out), n))
            if not r or r[0] == "E":
                raise DriverError("gdbstub: cannot read 0x%x" % addr)
            out += bytes.fromhex(r)
        return out

    def write_mem(self, addr, data):
        for i in range(0, len(data), 0x400):
            chunk = data[i:i + 0x400]
            if self.packet("M%x,%x:%s" % (addr + i, len(chunk), chunk.hex())) != "OK":
                raise DriverError("gdbstub: cannot write 0x%x" % (addr + i))

    def close(self):
        self.sock.close()     # never 'D': that would resume the guest


class QemuGuest:
    """A paused QEMU 7.2 guest whose state is set from outside, then dumped."""

    def __init__(self, mem="64M", smp=1, machine="pc", vmcoreinfo_device=True,
                 qemu=None, extra_args=()):
        self.qemu = find_qemu(qemu)
        if not self.qemu:
            raise FileNotFoundError("qemu-system-x86_64 is not installed")
        self.mem, self.smp, self.machine = mem, smp, machine
        self.vmcoreinfo_device = vmcoreinfo_device
        self.extra_args = list(extra_args)
        self.tmp = tempfile.mkdtemp(prefix="qemu-driver-")
        self.blobs = []
        self.proc = self.qmp = self.gdb = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()

    def load(self, data, addr):
        """Bytes to place at a guest-physical address when QEMU starts."""
        path = os.path.join(self.tmp, "blob%d.bin" % len(self.blobs))
        with open(path, "wb") as f:
            f.write(data)
        self.blobs.append((path, addr))

    def load_file(self, path, addr):
        self.blobs.append((os.path.abspath(path), addr))

    def command_line(self):
        qmp = os.path.join(self.tmp, "qmp.sock")
        gdb = os.path.join(self.tmp, "gdb.sock")
        args = [self.qemu, "-S", "-nodefaults", "-display", "none", "-no-user-config",
                "-machine", self.machine, "-accel", "tcg", "-m", str(self.mem),
                "-qmp", "unix:%s,server=on,wait=off" % qmp,
                "-L", "/usr/share/qemu", "-L", "/usr/share/seabios"]
        if self.machine != "none":
            # QEMU refuses a gdbstub on a machine without vCPUs
            args += ["-cpu", "qemu64", "-smp", str(self.smp),
                     "-gdb", "unix:%s,server=on,wait=off" % gdb]
        if self.vmcoreinfo_device:
            args += ["-device", "vmcoreinfo"]
        for path, addr in self.blobs:
            args += ["-device", "loader,file=%s,addr=0x%x,force-raw=on" % (path, addr)]
        return args + self.extra_args

    def start(self):
        self.cmdline = self.command_line()
        self.stderr = open(os.path.join(self.tmp, "qemu.stderr"), "w+b")
        self.proc = subprocess.Popen(self.cmdline, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)
        try:
            self.qmp = Qmp(os.path.join(self.tmp, "qmp.sock"))
            if self.machine != "none":
                self.gdb = GdbStub(os.path.join(self.tmp, "gdb.sock"))
        except Exception:
            self.stderr.seek(0)
            err = self.stderr.read().decode(errors="replace")
            raise DriverError("QEMU failed: %s" % err)

    def set_registers(self, regs_per_cpu):
        """regs_per_cpu: {cpu: {gdb register name: value}} (see GDB_REGS)."""
        g = self.gdb
        saved = None
        if any(set(r) & set(SELECTORS) for r in regs_per_cpu.values()):
            saved = g.read_mem(0, len(TEMP_GDT))
            g.write_mem(0, TEMP_GDT)
        for cpu, regs in sorted(regs_per_cpu.items()):
            unknown = set(regs) - set(GDB_NUM)
            if unknown:
                raise DriverError("unknown registers: %s" % ", ".join(sorted(unknown)))
            g.select(cpu)
            if "efer" in regs:
                g.write_reg("efer", regs["efer"])
            if set(regs) & set(SELECTORS):
                g.write_reg("cr0", CR0_PE | CR0_ET)
            for name in SELECTORS:
                if name in regs:
                    g.write_reg(name, regs[name])
            for name in GDB_REGS:
                if name in regs and name not in SELECTORS and not name.startswith("cr") \
                        and name != "efer":
                    g.write_reg(name, regs[name])
            for name in ("cr4", "cr3", "cr2", "cr8"):
                if name in regs:
                    g.write_reg(name, regs[name])
        if saved is not None:
            g.write_mem(0, saved)     # before paging: address 0 is physical
        for cpu, regs in sorted(regs_per_cpu.items()):
            g.select(cpu)
            if "cr0" in regs:
                g.write_reg("cr0", regs["cr0"] | CR0_ET)
            elif set(regs) & set(SELECTORS):
                g.write_reg("cr0", CR0_ET | 0x60000000)
            if "efer" in regs:
                g.write_reg("efer", regs["efer"])

    def read_registers(self, cpu):
        self.gdb.select(cpu)
        return {n: self.gdb.read_reg(n) for n in GDB_REGS}

    def _port_out(self, size, port, value):
        self.qmp.hmp("o /%s 0x%x 0x%x" % (size, port, value))

    def _port_in_byte(self, port):
        out = self.qmp.hmp("i /b 0x%x" % port)
        return int(out.split("=")[1].strip(), 16) & 0xff   # "portb[0x0511] = 0x00"

    def fw_cfg_files(self):
        self._port_out("h", 0x510, FW_CFG_FILE_DIR)
        data = bytes(self._port_in_byte(0x511) for _ in range(4))
        files = {}
        for _ in range(struct.unpack(">I", data)[0]):
            ent = bytes(self._port_in_byte(0x511) for _ in range(64))
            size, select = struct.unpack(">IH", ent[:6])
            files[ent[8:].split(b"\0")[0].decode()] = (select, size)
        return files

    def set_vmcoreinfo(self, paddr, size, scratch=0x1000):
        """What a guest driver does: DMA-write FWCfgVMCoreInfo into etc/vmcoreinfo."""
        key = self.fw_cfg_files()["etc/vmcoreinfo"][0]
        data_at, desc_at = scratch + 0x20, scratch
        saved = self.gdb.read_mem(scratch, 0x30)
        self.gdb.write_mem(data_at, struct.pack("<HHIQ", 1, 1, size, paddr))
        self.gdb.write_mem(desc_at, struct.pack(">IIQ", key << 16 | DMA_SELECT |
                                                DMA_WRITE, 16, data_at))
        self._port_out("w", 0x514, 0)
        self._port_out("w", 0x518, struct.unpack("<I", struct.pack(">I", desc_at))[0])
        control = struct.unpack(">I", self.gdb.read_mem(desc_at, 4))[0]
        self.gdb.write_mem(scratch, saved)
        if control != 0:
            raise DriverError("fw_cfg DMA write failed (control 0x%x)" % control)
        return key

    def dump(self, path, fmt="elf", paging=False, begin=None, length=None,
             detach=False):
        args = {"paging": paging, "protocol": "file:" + os.path.abspath(path),
                "format": fmt}
        if begin is not None:
            args["begin"], args["length"] = begin, length
        if detach:
            args["detach"] = True
        reply = self.qmp.command("dump-guest-memory", **args)
        event = None
        if "error" not in reply:
            event = self.qmp.wait_event("DUMP_COMPLETED")
        return {"arguments": args, "reply": reply, "event": event}

    def quit(self):
        if self.gdb:
            self.gdb.close()
            self.gdb = None
        if self.qmp:
            try:
                self.qmp.command("quit")
            except (OSError, DriverError):
                pass
            self.qmp.close()
            self.qmp = None
        if self.proc:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---- Booting a real kernel ---------------------------------------------------
# Added for the real Linux guest test (tests/compat/linux-guest/); the rest of
# this file is the machine engineer's and is used as it is.

class BootedGuest(QemuGuest):
    """QEMU 7.2 booting a real kernel instead of waiting paused under -S.

    start() returns once `marker` appears on the serial console (a file, so
    nothing can block on it); stop() pauses the guest; dump() and quit() are
    QemuGuest's. The gdbstub is never connected: attaching halts the vCPUs,
    which would freeze the boot."""

    def __init__(self, kernel, initrd, append, marker, serial_path=None,
                 boot_timeout=300.0, **kwargs):
        super().__init__(**kwargs)
        self.kernel, self.initrd, self.append = kernel, initrd, append
        self.marker = marker.encode()
        self.serial_path = serial_path or os.path.join(self.tmp, "serial.log")
        self.boot_timeout = boot_timeout
        self.boot_seconds = None

    def command_line(self):
        args = [a for a in super().command_line() if a != "-S"]
        return args + ["-kernel", self.kernel, "-initrd", self.initrd,
                       "-append", self.append, "-serial", "file:" + self.serial_path,
                       "-no-reboot"]

    def _qemu_stderr(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def start(self):
        if os.path.exists(self.serial_path):
            os.unlink(self.serial_path)
        t0 = time.monotonic()
        self.cmdline = self.command_line()
        self.stderr = open(os.path.join(self.tmp, "qemu.stderr"), "w+b")
        self.proc = subprocess.Popen(self.cmdline, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)
        try:
            self.qmp = Qmp(os.path.join(self.tmp, "qmp.sock"))
        except Exception:
            raise DriverError("QEMU failed: %s" % self._qemu_stderr())
        while True:
            if os.path.exists(self.serial_path):
                with open(self.serial_path, "rb") as f:
                    if self.marker in f.read():
                        break
            if self.proc.poll() is not None:
                raise DriverError("QEMU exited during boot: %s" % self._qemu_stderr())
            if time.monotonic() - t0 > self.boot_timeout:
                raise DriverError("no %r on the serial console after %.0f s"
                                  % (self.marker.decode(), self.boot_timeout))
            time.sleep(0.1)
        self.boot_seconds = time.monotonic() - t0

    def stop(self):
        self.qmp.execute("stop")


def parse_int(text):
    return int(text, 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--mem", default="64M")
    ap.add_argument("--smp", type=int, default=1)
    ap.add_argument("--machine", default="pc")
    ap.add_argument("--qemu")
    ap.add_argument("--load", action="append", default=[], metavar="FILE@ADDR")
    ap.add_argument("--reg", action="append", default=[], metavar="[CPU:]NAME=VALUE")
    ap.add_argument("--vmcoreinfo", metavar="ADDR,SIZE")
    ap.add_argument("--no-vmcoreinfo-device", action="store_true")
    ap.add_argument("--dump", action="append", default=[], metavar="SPEC")
    opts = ap.parse_args()

    if not find_qemu(opts.qemu):
        print("qemu-system-x86_64 is not installed", file=sys.stderr)
        return SKIP
    os.makedirs(opts.out, exist_ok=True)
    regs = {}
    for r in opts.reg:
        cpu, _, rest = r.rpartition(":")
        name, _, value = rest.partition("=")
        regs.setdefault(int(cpu or 0), {})[name] = parse_int(value)
    result = {"dumps": []}
    try:
        with QemuGuest(opts.mem, opts.smp, opts.machine,
                       not opts.no_vmcoreinfo_device, opts.qemu) as q:
            for spec in opts.load:
                path, _, addr = spec.rpartition("@")
                q.load_file(path, parse_int(addr))
            q.start()
            result["qemu_cmdline"] = q.cmdline
            if opts.vmcoreinfo:
                addr, size = (parse_int(x) for x in opts.vmcoreinfo.split(","))
                result["vmcoreinfo_key"] = q.set_vmcoreinfo(addr, size)
            if regs:
                q.set_registers(regs)
            if q.gdb:
                result["registers"] = {c: q.read_registers(c) for c in range(opts.smp)}
                result["info_registers"] = q.qmp.hmp("info registers -a")
            for spec in opts.dump:
                parts = spec.split(":")
                kw = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
                ext = ".elf" if parts[0] == "elf" else ".dump"
                name = kw.get("name", parts[0] + ext)
                r = q.dump(os.path.join(opts.out, name), parts[0], "paging" in parts,
                           parse_int(kw["begin"]) if "begin" in kw else None,
                           parse_int(kw["length"]) if "length" in kw else None)
                r["file"] = name
                result["dumps"].append(r)
    except (DriverError, OSError) as e:
        print("qemu_driver: %s" % e, file=sys.stderr)
        return 1
    with open(os.path.join(opts.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    failed = [d for d in result["dumps"] if "error" in d["reply"]]
    for d in failed:
        print("qemu_driver: dump %s failed: %s" % (d["file"], d["reply"]["error"]),
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
