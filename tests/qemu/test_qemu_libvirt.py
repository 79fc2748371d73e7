#!/usr/bin/env python3
"""libvirt drives the QEMU under test as in production: virsh dump of a live guest.

    test_qemu_libvirt.py --build BUILD --cache DIR [--keep]

Starts Debian's libvirtd itself, in the foreground, in a private mount
namespace whose /etc/libvirt, /run, /var/lib/libvirt, /var/cache/libvirt and
/var/log/libvirt are its own (so the host's libvirt is left alone; the socket
is in a private folder outside them). Its qemu.conf runs QEMU as root without
security drivers, cgroups or namespaces, and without virtlogd. A domain
(type qemu, TCG) whose <emulator> is $GUESTDUMP_QEMU (default
BUILD/qemu/qemu-system-x86_64) boots Debian's kernel and the busybox initramfs
with <vmcoreinfo state='on'/>, then: virsh dump --memory-only --format
kdump-zlib (libvirt passes a pipe with getfd, detaches, polls query-dump and
waits for DUMP_COMPLETED) with virsh domjobinfo while it runs; --format elf;
--live; the files open in makedumpfile and crash; the guest still runs; virsh
destroy and undefine. libvirtd is stopped by its own pid.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemu_common as qc  # noqa: E402
import mk_initramfs  # noqa: E402

NAME = "guestdump-qtest"
PRIVATE_DIRS = ("/etc/libvirt", "/run", "/var/lib/libvirt", "/var/cache/libvirt",
                "/var/log/libvirt")

QEMU_CONF = """# Private to the test: QEMU as root, nothing the container may lack.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
stdio_handler = "file"
"""

DOMAIN = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{mem}</memory>
  <vcpu>{smp}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{append}</cmdline>
  </os>
  <features><acpi/><vmcoreinfo state='on'/></features>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{emulator}</emulator>
    <serial type='file'><source path='{serial}'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
"""


class Libvirtd:
    """libvirtd in the foreground in its own mount namespace (unshare execs it, so
    the Popen pid is libvirtd's)."""

    def __init__(self, priv):
        self.priv = priv
        self.sock_dir = os.path.join(priv, "sock")
        etc = os.path.join(priv, "etc")
        os.makedirs(os.path.join(etc, "qemu"), exist_ok=True)
        os.makedirs(self.sock_dir, exist_ok=True)
        with open(os.path.join(etc, "qemu.conf"), "w") as f:
            f.write(QEMU_CONF)
        conf = os.path.join(etc, "libvirtd.conf")
        with open(conf, "w") as f:
            f.write('unix_sock_dir = "%s"\nauth_unix_rw = "none"\n'
                    'auth_unix_ro = "none"\nlog_outputs = "3:stderr"\n'
                    % self.sock_dir)
        mounts = ["mount --bind %s /etc/libvirt" % etc]
        mounts += ["mount -t tmpfs -o mode=0755 guestdump-test %s" % d
                   for d in PRIVATE_DIRS[1:]]
        script = "set -e; %s; exec libvirtd --config %s --pid-file %s" % (
            "; ".join(mounts), conf, os.path.join(priv, "libvirtd.pid"))
        self.log_path = os.path.join(priv, "libvirtd.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self.uri = "qemu:///system?socket=%s/libvirt-sock" % self.sock_dir
        deadline = time.monotonic() + 60
        while True:
            rc, out = self.virsh("version", timeout=30)
            if rc == 0:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise qc.DriverError("libvirtd did not start: %s" % self.log_text())
            time.sleep(0.3)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return qc.tail(f.read().decode(errors="replace"), 15)

    def virsh(self, *args, timeout=300):
        try:
            return qc.run(["virsh", "-c", self.uri] + list(args), timeout=timeout)
        except subprocess.TimeoutExpired:
            return 124, "virsh %s timed out" % " ".join(args)

    def popen_virsh(self, *args, out=None):
        return subprocess.Popen(["virsh", "-c", self.uri] + list(args),
                                stdout=out, stderr=subprocess.STDOUT, env=qc.TOOL_ENV)

    def qemu_pid(self):
        """The domain's QEMU, from the pid file in libvirtd's private /run."""
        p = "/proc/%d/root/run/libvirt/qemu/%s.pid" % (self.proc.pid, NAME)
        try:
            with open(p) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def is_our_qemu(pid):
    """Still the domain's QEMU (libvirt names it guest=NAME), not a reused pid."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return ("guest=%s" % NAME).encode() in f.read()
    except OSError:
        return False


def serial_has(path, text, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                if text.encode() in f.read():
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def check_file(t, kver, path, what, integrated):
    """makedumpfile finds the guest's log in it; crash reads it."""
    have_mdf = shutil.which("makedumpfile") is not None
    if qc.need(t, have_mdf, "makedumpfile reads %s" % what, "makedumpfile not "
               "installed"):
        plain = path
        if qc.flattened(path):
            plain = path + ".raw"
            ok, msg = qc.tlg.reassemble(path, plain)
            if not t.ok(ok, "makedumpfile -R reassembles %s" % what, msg):
                return
        ok, text = qc.tlg.dmesg(plain, os.path.dirname(path))
        if not ok and not integrated and qc.file_magic(path, 4) == b"\x7fELF" and \
                "Can't get the number of PT_LOAD" in text:
            t.ok(True, "makedumpfile cannot read stock 7.2's ELF from %s "
                 "(docs/compat.md)" % what)
        else:
            t.ok(ok and mk_initramfs.KMSG_MARKER in text,
                 "makedumpfile --dump-dmesg finds the guest's log in %s" % what,
                 qc.tail(text))
    desc = "crash runs sys and log on %s" % what
    if not qc.need(t, shutil.which("crash"), desc, "crash not installed"):
        return
    vmlinux = qc.debug_vmlinux(kver)
    if not qc.need(t, vmlinux, desc, "no vmlinux-%s with debug info" % kver):
        return
    rc, out = qc.run(["crash", "-s", vmlinux, path], timeout=600,
                     input="sys\nlog\nquit\n")
    t.ok(rc == 0 and ("RELEASE: " + kver) in out and mk_initramfs.KMSG_MARKER in out,
         desc, qc.tail(out, 15))


def dump_with_jobinfo(t, lv, path):
    """virsh dump --memory-only --format kdump-zlib, virsh domjobinfo meanwhile.
    A fast dump can end between two polls, so up to three dumps are tried."""
    for attempt in range(1, 4):
        with open(path + ".virsh.log", "w+") as log:
            p = lv.popen_virsh("dump", "--memory-only", "--format", "kdump-zlib",
                               NAME, path, out=log)
            seen = []
            deadline = time.monotonic() + 300
            while p.poll() is None and time.monotonic() < deadline:
                rc, out = lv.virsh("domjobinfo", NAME, timeout=30)
                if rc == 0 and "Operation:" in out and "Dump" in out \
                        and "Unbounded" in out:
                    seen.append(out)
                time.sleep(0.02)
            try:
                p.wait(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.seek(0)
            said = log.read()
        ok = p.returncode == 0 and os.path.exists(path) and qc.flattened(path)
        if not ok or seen:
            break
    t.ok(ok, "virsh dump --memory-only --format kdump-zlib (%d bytes)" % (
        os.path.getsize(path) if os.path.exists(path) else 0), said)
    t.ok(bool(seen), "virsh domjobinfo during the dump shows the active dump job "
         "(dump %d, %d polls caught it)" % (attempt, len(seen)))
    if seen:
        t.diag(seen[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    qemu = qc.binary(a.build)
    why = qc.check_binary(qemu)
    if not why:
        for tool in ("libvirtd", "virsh", "unshare"):
            if not shutil.which(tool):
                why = "%s not installed (Debian: libvirt-daemon-system, " \
                      "libvirt-clients)" % tool
    if not why and os.geteuid() != 0:
        why = "libvirtd in a private mount namespace needs root"
    if why:
        return qc.missing_all(why)
    t = qc.Tap()
    kk, why = qc.kernel_and_initrd(a.cache, t)
    if not kk:
        return t.finish() if t.failed else qc.missing_all(why)
    kver, kernel, initrd = kk
    priv = tempfile.mkdtemp(prefix="qemu-libvirt-")
    os.chmod(priv, 0o755)
    serial = os.path.join(priv, "serial.log")
    lv = None
    defined = False
    try:
        lv = Libvirtd(priv)
        t.ok(True, "libvirtd runs in the foreground with a private config and state")
        xml = os.path.join(priv, "domain.xml")
        with open(xml, "w") as f:
            f.write(DOMAIN.format(name=NAME, mem=96, smp=2, kernel=kernel,
                                  initrd=initrd, append=qc.APPEND, emulator=qemu,
                                  serial=serial))
        rc, out = lv.virsh("define", xml)
        defined = rc == 0
        if not t.ok(defined, "virsh define: a type='qemu' domain whose emulator is "
                    "the binary, with <vmcoreinfo state='on'/>", out):
            return t.finish()
        rc, out = lv.virsh("start", NAME, timeout=120)
        if not t.ok(rc == 0, "virsh start", out + "\n" + lv.log_text()):
            return t.finish()
        booted = serial_has(serial, mk_initramfs.READY_MARKER, 300)
        with open(serial, errors="replace") as f:
            console = f.read()
        if not t.ok(booted, "the guest boots (its console, a file, says %s)"
                    % mk_initramfs.READY_MARKER, qc.tail(console)):
            return t.finish()
        rc, caps = lv.virsh("qemu-monitor-command", NAME,
                            '{"execute": "query-dump-guest-memory-capability"}')
        integrated = rc == 0 and qc.is_integrated(caps)
        t.diag("the binary's dump formats: %s" % caps.strip())
        rc, out = lv.virsh("domcapabilities", "--emulatorbin", qemu, "--virttype",
                           "qemu", "--machine", "pc")
        t.ok(rc == 0 and "<vmcoreinfo supported='yes'/>" in out,
             "libvirt probed the binary: domcapabilities has vmcoreinfo", qc.tail(out))

        kd = os.path.join(priv, "virsh.kdump")
        dump_with_jobinfo(t, lv, kd)
        elf = os.path.join(priv, "virsh.elf")
        rc, out = lv.virsh("dump", "--memory-only", "--format", "elf", NAME, elf)
        t.ok(rc == 0 and qc.file_magic(elf, 4) == b"\x7fELF",
             "virsh dump --memory-only --format elf", out)
        live = os.path.join(priv, "virsh-live.kdump")
        rc, out = lv.virsh("dump", "--live", "--memory-only", "--format", "kdump-zlib",
                           NAME, live)
        rc2, state = lv.virsh("domstate", NAME)
        t.ok(rc == 0 and qc.flattened(live) and state.strip() == "running",
             "virsh dump --live --memory-only: the guest is running afterwards",
             out + "\n" + state)
        for path, what in ((kd, "virsh's kdump-zlib"), (elf, "virsh's ELF"),
                           (live, "virsh's --live kdump-zlib")):
            if os.path.exists(path):
                check_file(t, kver, path, what, integrated)
        rc, out = lv.virsh("destroy", NAME)
        t.ok(rc == 0, "virsh destroy", out)
        rc, out = lv.virsh("undefine", NAME)
        defined = rc != 0
        t.ok(rc == 0, "virsh undefine", out)
    except (qc.DriverError, OSError, ValueError) as e:
        t.ok(False, "libvirt drives the binary", str(e))
    finally:
        if lv:
            pid = lv.qemu_pid() if lv.proc.poll() is None else None
            if defined:
                lv.virsh("destroy", NAME)
                lv.virsh("undefine", NAME)
            if pid and is_our_qemu(pid):
                try:
                    os.kill(pid, 15)
                except OSError:
                    pass
            lv.stop()
        if a.keep:
            t.diag("kept " + priv)
        else:
            shutil.rmtree(priv, ignore_errors=True)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
