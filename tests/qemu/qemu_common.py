"""Shared parts of the suite-`qemu` tests: the QEMU under test, CI rules, the live guest.

The binary under test is $GUESTDUMP_QEMU, else BUILD/qemu/qemu-system-x86_64
(what scripts/qemu/build.sh writes in CI). Debian's stock 7.2 is accepted
too, so the tests can be run against it: the checks that only the
integrated QEMU (guestdump's module inside) can pass are chosen by what
`query-dump-guest-memory-capability` lists. A missing binary or tool fails
under CI=true and skips, with the reason, anywhere else.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
COMPAT = os.path.join(TESTS, "compat")
LINUX = os.path.join(COMPAT, "linux-guest")
sys.dont_write_bytecode = True      # keep the source tree clean when meson runs us
for _p in (COMPAT, LINUX):
    if _p not in sys.path:
        sys.path.insert(0, _p)
import qemu_driver  # noqa: E402
import test_linux_guest as tlg  # noqa: E402
import mk_initramfs  # noqa: E402

DriverError = qemu_driver.DriverError
STOCK = "/usr/bin/qemu-system-x86_64"
# Everything guestdump's module offers; the integrated QEMU must list all of it.
ALL_FORMATS = ["elf", "kdump-zlib", "kdump-lzo", "kdump-snappy", "kdump-zstd",
               "kdump-raw-zlib", "kdump-raw-lzo", "kdump-raw-snappy",
               "kdump-raw-zstd", "win-dmp"]
MEM = "96M"
SMP = 2
APPEND = "console=ttyS0 nokaslr panic=-1"


def in_ci():
    return os.environ.get("CI") == "true"


def binary(build_root):
    return os.environ.get("GUESTDUMP_QEMU") or os.path.join(
        build_root, "qemu", "qemu-system-x86_64")


def is_integrated(formats):
    """The integrated QEMU lists the formats stock 7.2 cannot have."""
    return "kdump-zstd" in formats or any(f.startswith("kdump-raw-") for f in formats)


Tap = tlg.Tap
run = tlg.run
tail = tlg.tail
sha256_file = tlg.sha256_file
TOOL_ENV = tlg.TOOL_ENV


def missing_all(reason):
    """Nothing can run: a failure in CI, a skip elsewhere. Returns the exit status."""
    if in_ci():
        print("1..1\nnot ok 1 - %s (CI=true: required)" % reason, flush=True)
        return 1
    print("1..0 # SKIP %s" % reason, flush=True)
    return 0


def need(t, cond, desc, reason):
    """A check that needs a tool: False and a skip (a failure in CI) without it."""
    if cond:
        return True
    if in_ci():
        t.ok(False, desc, "%s (CI=true: required)" % reason)
    else:
        t.skip(desc, reason)
    return False


def check_binary(path):
    """The reason the binary cannot be used, or None."""
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        return "no QEMU binary at %s (build it: scripts/qemu/build.sh, or set " \
               "GUESTDUMP_QEMU)" % path
    return None


def check_formats(t, formats):
    """The integrated QEMU must list every format; stock 7.2 lists what it was built
    with, which the tests then exercise."""
    if is_integrated(formats):
        miss = [f for f in ALL_FORMATS if f not in formats]
        t.ok(not miss, "the integrated QEMU lists every dump format",
             "missing: %s" % ", ".join(miss))
    else:
        t.diag("stock QEMU (no kdump-zstd / kdump-raw-*): exercising what it lists: "
               + ", ".join(formats))


def kernel_and_initrd(cache, t):
    """(kver, kernel, initrd) of Debian's kernel and our busybox initramfs, cached;
    or (None, reason)."""
    cache = os.path.abspath(os.environ.get("GUESTDUMP_TEST_CACHE") or cache)
    os.makedirs(cache, exist_ok=True)
    k, why = tlg.prepare_kernel(cache, t)
    if not k:
        return None, why or "the kernel package could not be unpacked"
    kver, root = k
    initrd, why = tlg.prepare_initrd(cache, kver, root)
    if not initrd:
        return None, why
    return (kver, os.path.join(root, "boot", "vmlinuz-" + kver), initrd), None


def debug_vmlinux(kver):
    """The vmlinux with debug info crash needs: installed, or fetched once into
    the shared cache by tests/compat/linux-guest's get-kernel-dbg.sh."""
    installed = "/usr/lib/debug/boot/vmlinux-" + kver
    if os.path.isfile(installed):
        return installed
    p = subprocess.run(["sh", os.path.join(LINUX, "get-kernel-dbg.sh"), kver],
                       capture_output=True, text=True, timeout=1800)
    path = p.stdout.strip()
    if p.returncode == 0 and os.path.isfile(path):
        return path
    sys.stderr.write(p.stderr)
    return None


class LiveGuest:
    """The binary booting the Linux guest, its serial console on a unix socket
    (read by a thread into a buffer, written to by send()), QMP on another."""

    def __init__(self, qemu, kernel, initrd, mem=MEM, smp=SMP, extra=()):
        self.tmp = tempfile.mkdtemp(prefix="qemu-live-")
        self.qmp_path = os.path.join(self.tmp, "qmp.sock")
        self.ser_path = os.path.join(self.tmp, "serial.sock")
        self.cmd = [qemu, "-nodefaults", "-no-user-config", "-display", "none",
                    "-machine", "pc", "-accel", "tcg", "-cpu", "qemu64",
                    "-m", mem, "-smp", str(smp), "-device", "vmcoreinfo",
                    "-L", "/usr/share/qemu", "-L", "/usr/share/seabios",
                    "-kernel", kernel, "-initrd", initrd, "-append", APPEND,
                    "-chardev", "socket,id=ser0,path=%s,server=on,wait=on" %
                    self.ser_path, "-serial", "chardev:ser0",
                    "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
                    "-no-reboot"] + list(extra)
        self.err = open(os.path.join(self.tmp, "qemu.stderr"), "w+b")
        self.serial = b""
        self.lock = threading.Lock()
        self.qmp = self.ser = None
        self.boot_s = None
        # wait=on: QEMU starts the guest only once the console is connected,
        # so no boot message is lost.
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.err)
        self.t0 = time.monotonic()
        try:
            self.ser = qemu_driver.connect_unix(self.ser_path, self.t0 + 60)
            threading.Thread(target=self._reader, daemon=True).start()
            self.qmp = qemu_driver.Qmp(self.qmp_path, timeout=300)
        except Exception:
            self.close()
            raise DriverError("QEMU did not start: %s" % self.stderr())

    def _reader(self):
        while True:
            try:
                d = self.ser.recv(65536)
            except OSError:
                return
            if not d:
                return
            with self.lock:
                self.serial += d

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def wait_serial(self, text, timeout, start=0):
        """Waits for text on the console after offset start; True when it came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if text.encode() in self.serial[start:]:
                    return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def boot(self, timeout=300):
        if not self.wait_serial(mk_initramfs.READY_MARKER, timeout):
            raise DriverError("no %s on the console after %.0f s: %s / %s" % (
                mk_initramfs.READY_MARKER, timeout, self.serial[-300:], self.stderr()))
        self.boot_s = time.monotonic() - self.t0

    def shell(self, line, expect, timeout=60):
        """Types a line on the guest's console; True when expect comes back."""
        with self.lock:
            start = len(self.serial)
        self.ser.sendall(line.encode() + b"\n")
        return self.wait_serial(expect, timeout, start)

    def status(self):
        return self.qmp.execute("query-status")

    def close(self):
        if self.qmp:
            try:
                self.qmp.command("quit")
            except (OSError, DriverError, ValueError):
                pass
            self.qmp.close()
            self.qmp = None
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.ser:
            self.ser.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def file_magic(path, n=16):
    with open(path, "rb") as f:
        return f.read(n)


def flattened(path):
    return file_magic(path, 12) == b"makedumpfile"


def send_pipe_fd(qmp, command, **args):
    """(read end, reply): a pipe's write end passed with command (getfd, add-fd)."""
    r, w = os.pipe()
    try:
        reply = qmp.command(command, fds=[w], **args)
    finally:
        os.close(w)
    return r, reply
