"""Boot Debian's kernel under real QEMU and dump it; run guestdump on its vmcore.

Standard library only. Both emulators are driven over QMP on unix sockets in a
private temporary folder; every process started here is killed by its own
handle, never by name.
"""
import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import time


class QmpError(Exception):
    pass


class Qmp:
    """Enough QMP for dumps: commands, their errors, and the events between."""

    def __init__(self, path, timeout=60.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise QmpError("no QMP socket at %s after %.0f s" % (path, timeout))
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.events = []
        self.greeting = self._read()
        self.execute("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise QmpError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute_raw(self, cmd, args=None, timeout=None):
        msg = {"execute": cmd}
        if args is not None:
            msg["arguments"] = args
        if timeout is not None:
            self.sock.settimeout(timeout)
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
                continue
            return r

    def execute(self, cmd, args=None, timeout=None):
        r = self.execute_raw(cmd, args, timeout)
        if "error" in r:
            raise QmpError("%s: %s: %s" % (cmd, r["error"].get("class"),
                                           r["error"].get("desc")))
        return r.get("return")

    def wait_event(self, name, timeout=60.0):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("event") == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise QmpError("no %s event within %.0f s" % (name, timeout))
            self.sock.settimeout(left)
            self.events.append(self._read())

    def close(self):
        self.sock.close()


class Emulator:
    """A child process with a QMP socket; stopped with quit, then by its pid."""

    def __init__(self, argv, tmp, log_name):
        self.tmp = tmp
        self.qmp_path = os.path.join(tmp, "qmp.sock")
        self.log_path = os.path.join(tmp, log_name)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            argv + ["-qmp", "unix:%s,server=on,wait=off" % self.qmp_path],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self.qmp = None
        try:
            self.qmp = self._connect()
        except Exception:
            self.stop()
            raise

    def _connect(self):
        deadline = time.monotonic() + 60
        while not os.path.exists(self.qmp_path):
            if self.proc.poll() is not None:
                raise QmpError("%s exited with %d before its QMP socket appeared: %s"
                               % (os.path.basename(self.argv0()), self.proc.returncode,
                                  self.log_text()[-2000:]))
            if time.monotonic() > deadline:
                raise QmpError("no QMP socket after 60 s")
            time.sleep(0.05)
        return Qmp(self.qmp_path)

    def argv0(self):
        return self.proc.args[0]

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def dump(self, path, fmt, paging=False, timeout=300.0):
        """dump-guest-memory to a file; returns the error text or None."""
        if os.path.exists(path):
            os.unlink(path)
        args = {"paging": paging, "protocol": "file:" + path, "format": fmt}
        r = self.qmp.execute_raw("dump-guest-memory", args, timeout=timeout)
        if "error" in r:
            return r["error"].get("desc", "error")
        ev = self.qmp.wait_event("DUMP_COMPLETED", timeout)
        return ev.get("data", {}).get("error")

    def stop(self):
        if self.qmp:
            try:
                self.qmp.execute_raw("quit", timeout=10)
            except (OSError, QmpError, ValueError):
                pass
            self.qmp.close()
            self.qmp = None
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def qemu_binary():
    return os.environ.get("QEMU") or shutil.which("qemu-system-x86_64")


def boot_linux_and_dump(kernel, initrd, append, outdir, dumps, mem="96M", smp=2,
                        marker="GUESTDUMP-GUEST-READY", boot_timeout=300.0):
    """Boot a real kernel under QEMU 7.2 (TCG), wait for `marker` on the serial
    console, stop the guest and take `dumps` [(name, format, paging)] into
    outdir. Returns {"boot_s", "serial", "errors": {name: text}}."""
    tmp = tempfile.mkdtemp(prefix="gd-linux-qemu-")
    serial = os.path.join(outdir, "serial.log")
    argv = [qemu_binary(), "-nodefaults", "-display", "none", "-machine", "pc",
            "-accel", "tcg", "-cpu", "qemu64", "-m", mem, "-smp", str(smp),
            "-device", "vmcoreinfo", "-no-reboot",
            "-kernel", kernel, "-initrd", initrd, "-append", append,
            "-serial", "file:" + serial]
    for d in ("/usr/share/qemu", "/usr/share/seabios"):
        if os.path.isdir(d):
            argv += ["-L", d]
    t0 = time.monotonic()
    emu = Emulator(argv, tmp, "qemu.log")
    try:
        want = re.compile(re.escape(marker).encode())
        while True:
            if os.path.exists(serial):
                with open(serial, "rb") as f:
                    if want.search(f.read()):
                        break
            if emu.proc.poll() is not None:
                raise QmpError("QEMU exited during boot: %s" % emu.log_text()[-2000:])
            if time.monotonic() - t0 > boot_timeout:
                raise QmpError("no %r on the serial console after %.0f s"
                               % (marker, boot_timeout))
            select.select([], [], [], 0.1)
        boot_s = time.monotonic() - t0
        emu.qmp.execute("stop")
        errors = {}
        for name, fmt, paging in dumps:
            errors[name] = emu.dump(os.path.join(outdir, name), fmt, paging)
        return {"boot_s": boot_s, "serial": serial, "errors": errors}
    finally:
        emu.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def start_guestdump(binary, restore, extra=()):
    """guestdump holding the guest state of a QEMU ELF vmcore."""
    tmp = tempfile.mkdtemp(prefix="gd-linux-ours-")
    argv = [binary, "-nodefaults", "-display", "none", "-restore", restore] + list(extra)
    try:
        return Emulator(argv, tmp, "guestdump.log")
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def stop_guestdump(emu):
    """Quit guestdump; returns what it printed."""
    emu.stop()
    text = emu.log_text()
    shutil.rmtree(emu.tmp, ignore_errors=True)
    return text
