"""Boot Debian's kernel under real QEMU and dump it; run guestdump on its vmcore.

Real QEMU is driven by tests/compat/qemu_driver.py (its BootedGuest); guestdump
is started here and spoken to with the same QMP client. Every process started
here is ended through its own handle, never by name.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import qemu_driver  # noqa: E402

DriverError = qemu_driver.DriverError


def qemu_binary():
    return qemu_driver.find_qemu()


def boot_linux_and_dump(kernel, initrd, append, outdir, dumps, mem="96M", smp=2,
                        marker="GUESTDUMP-GUEST-READY", boot_timeout=300.0,
                        extra_args=()):
    """Boot a real kernel under QEMU 7.2 (TCG), wait for `marker` on the serial
    console, stop the guest and take `dumps` [(name, format, paging)] into
    outdir. Returns {"boot_s", "errors": {name: error text or None}}."""
    g = qemu_driver.BootedGuest(kernel, initrd, append, marker,
                                serial_path=os.path.join(outdir, "serial.log"),
                                boot_timeout=boot_timeout, mem=mem, smp=smp,
                                extra_args=extra_args)
    with g:
        g.start()
        g.stop()
        errors = {}
        for name, fmt, paging in dumps:
            r = g.dump(os.path.join(outdir, name), fmt, paging)
            err = r["reply"].get("error")
            if err:
                errors[name] = err.get("desc", "error")
            else:
                errors[name] = (r["event"] or {}).get("data", {}).get("error")
        return {"boot_s": g.boot_seconds, "errors": errors}


class Guestdump:
    """guestdump holding the guest state of a QEMU ELF vmcore (-restore)."""

    def __init__(self, binary, restore, extra=()):
        self.tmp = tempfile.mkdtemp(prefix="gd-linux-guest-")
        qmp_path = os.path.join(self.tmp, "qmp.sock")
        self.log_path = os.path.join(self.tmp, "guestdump.log")
        self.qmp = None
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, "-nodefaults", "-display", "none", "-restore", restore,
                 "-qmp", "unix:%s,server=on,wait=off" % qmp_path] + list(extra),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while not os.path.exists(qmp_path):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise DriverError("guestdump did not start (status %s): %s" % (
                        self.proc.poll(), self.log_text()[-2000:]))
                time.sleep(0.05)
            self.qmp = qemu_driver.Qmp(qmp_path, timeout=300)
        except Exception:
            self.stop()
            raise

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def dump(self, path, fmt, paging=False, **extra):
        """dump-guest-memory to a file; returns the error text or None.
        extra: further arguments, e.g. **{"dump-level": 31}."""
        if os.path.exists(path):
            os.unlink(path)
        r = self.qmp.command("dump-guest-memory", paging=paging,
                             protocol="file:" + path, format=fmt, **extra)
        if "error" in r:
            return r["error"].get("desc", "error")
        return self.qmp.wait_event("DUMP_COMPLETED", 300).get("data", {}).get("error")

    def stop(self):
        """Quit; returns what guestdump printed."""
        if self.qmp:
            try:
                self.qmp.command("quit")
            except (OSError, DriverError, ValueError):
                pass
            self.qmp.close()
            self.qmp = None
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        text = self.log_text()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return text
