#!/usr/bin/env python3
"""A real Linux guest in the QEMU under test, dumped while it runs, as TAP.

    test_qemu_linux.py --build BUILD --guestdump BUILD/guestdump --cache DIR [--keep]

Boots Debian's kernel and the busybox initramfs (tests/compat/linux-guest)
once under TCG with -device vmcoreinfo in $GUESTDUMP_QEMU (default
BUILD/qemu/qemu-system-x86_64), then over QMP:
* dumps the running guest in every ELF/kdump format the binary lists: the
  guest stops (STOP), the dump completes (DUMP_COMPLETED) and it runs again
  (RESUME, query-status); detached with query-dump polling; into a pipe passed
  with getfd and read by another process (libvirt's way) while query-dump and
  HMP `info dump` report it active; into /dev/fdset/N (add-fd); HMP
  dump-guest-memory with each flag 7.2's HMP has;
* the console still answers a command afterwards;
* makedumpfile --dump-dmesg finds the guest's boot messages in the ELF and
  kdump-zlib files, crash with the -dbg vmlinux runs sys, bt -a and log;
* stopped (integrated QEMU): dump-level 31 keeps the pfns and data
  makedumpfile -c -d 31 keeps from the same state's ELF;
* stopped: every format of one guest state reads the same pages through
  libkdumpfile and drgn (page digests), and guestdump -restore of the binary's
  ELF dumps the same bytes again (byte-identical for the integrated QEMU; for
  stock 7.2 equal except docs/compat.md's corrections).
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemu_common as qc  # noqa: E402
from qemu_common import DriverError, tail  # noqa: E402
import guests  # noqa: E402
import mk_initramfs  # noqa: E402

SYS_PY = "/usr/bin/python3"
MARK = mk_initramfs.KMSG_MARKER
NO_MDF = "makedumpfile not installed"


def events_until(qmp, name, timeout=120.0):
    """Every event, in order, up to and including the first `name`."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        while qmp.events:
            e = qmp.events.pop(0)
            seen.append(e)
            if e["event"] == name:
                return seen
        if time.monotonic() > deadline:
            raise DriverError("no %s event; saw %s" % (
                name, [e["event"] for e in seen]))
        qmp.events.append(qmp._read())


def run_states(events):
    return [e["event"] for e in events if e["event"] in
            ("STOP", "RESUME", "DUMP_COMPLETED")]


def completed_ok(events):
    for e in events:
        if e["event"] == "DUMP_COMPLETED":
            d = e.get("data", {})
            return d.get("result", {}).get("status") == "completed" and "error" not in d
    return False


def dump_name(fmt, paging=False):
    return fmt + ("-paging" if paging else "") + (".elf" if fmt == "elf" else ".kdump")


def reassemble(path):
    """A plain kdump file for a flattened one (makedumpfile -R), else the file."""
    if not qc.flattened(path):
        return path, None
    out = path + ".raw"
    ok, msg = tlg_reassemble(path, out)
    return (out, None) if ok else (None, msg)


def tlg_reassemble(flat, out):
    return qc.tlg.reassemble(flat, out)


def dmesg_check(t, path, what, integrated):
    """makedumpfile --dump-dmesg finds the guest's own boot messages."""
    plain, err = reassemble(path)
    if not plain:
        t.ok(False, "makedumpfile -R reassembles %s" % what, err)
        return
    ok, text = qc.tlg.dmesg(plain, os.path.dirname(path))
    if what.startswith("ELF") and not integrated and not ok and \
            "Can't get the number of PT_LOAD" in text:
        # QEMU 7.2 writes the section header first; docs/compat.md corrects it.
        t.ok(True, "makedumpfile cannot read stock 7.2's %s (docs/compat.md: "
             "'Can't get the number of PT_LOAD')" % what)
        return
    t.ok(ok and MARK in text and "Linux version" in text,
         "makedumpfile --dump-dmesg shows the guest's boot messages in %s" % what,
         tail(text))


def live_dumps(t, g, work, fmts):
    """Each format of the running guest: STOP, DUMP_COMPLETED, RESUME, running."""
    plan = [("elf", False), ("elf", True)] + [
        (f, False) for f in fmts if f.startswith("kdump")]
    outs = {}
    for fmt, paging in plan:
        path = os.path.join(work, "live-" + dump_name(fmt, paging))
        what = "%s%s" % (fmt, " paging=true" if paging else "")
        t1 = time.monotonic()
        try:
            r = g.qmp.command("dump-guest-memory", paging=paging,
                              protocol="file:" + path, format=fmt)
            if "error" in r:
                raise DriverError(r["error"].get("desc"))
            ev = events_until(g.qmp, "RESUME")
            st = g.status()
        except (DriverError, OSError, ValueError) as e:
            t.ok(False, "the running guest dumps as %s" % what, str(e))
            continue
        states = run_states(ev)
        t.ok(states == ["STOP", "DUMP_COMPLETED", "RESUME"] and completed_ok(ev)
             and st.get("running") and st.get("status") == "running"
             and os.path.getsize(path) > 0,
             "the running guest dumps as %s: STOP, DUMP_COMPLETED, RESUME, running "
             "again (%.1f s)" % (what, time.monotonic() - t1),
             "events %s, query-status %s" % (states, st))
        outs[(fmt, paging)] = path
    # Detached, with query-dump polling.
    path = os.path.join(work, "live-detached.kdump")
    try:
        r = g.qmp.execute("dump-guest-memory", paging=False, protocol="file:" + path,
                          format="kdump-zlib", detach=True)
        seen = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            s = g.qmp.execute("query-dump")
            if not seen or seen[-1] != s["status"]:
                seen.append(s["status"])
            if s["status"] in ("completed", "failed"):
                break
            time.sleep(0.02)
        ev = events_until(g.qmp, "RESUME")
        st = g.status()
        t.ok(r == {} and seen[-1] == "completed" and set(seen) <= {"active", "completed"}
             and completed_ok(ev) and "RESUME" in run_states(ev) and st.get("running"),
             "a detached kdump-zlib dump of the running guest: query-dump %s, "
             "DUMP_COMPLETED, RESUME" % " -> ".join(seen),
             "reply %s, events %s, status %s" % (r, run_states(ev), st))
    except (DriverError, OSError, ValueError) as e:
        t.ok(False, "a detached dump of the running guest", str(e))
    return outs


def pipe_dump(t, g, work, fmt):
    """A detached dump into a pipe passed with getfd (libvirt's way) that nobody
    reads yet, so it is surely still active when query-dump, query-status and
    HMP `info dump` look; then another process (cat) drains it."""
    out = os.path.join(work, "pipe-" + dump_name(fmt))
    what = "%s into a getfd pipe" % fmt
    reader = None
    r = None
    try:
        r, rep = qc.send_pipe_fd(g.qmp, "getfd", fdname="dumppipe")
        if "error" in rep:
            raise DriverError("getfd: %s" % rep["error"].get("desc"))
        g.qmp.execute("dump-guest-memory", paging=False, protocol="fd:dumppipe",
                      format=fmt, detach=True)
        qd = g.qmp.execute("query-dump")
        qs = g.status()
        info = g.qmp.hmp("info dump")
        t.ok(qd["status"] == "active" and 0 <= qd["completed"] < qd["total"]
             and not qs["running"] and qs["status"] == "save-vm",
             "while %s waits for its reader: query-dump active (%d/%d), "
             "query-status %s" % (what, qd["completed"], qd["total"], qs["status"]),
             "query-dump %s, query-status %s" % (qd, qs))
        m = re.match(r"Status: active\r?\nFinished: (\d+\.\d\d) %\r?\n$", info)
        t.ok(m is not None, "HMP info dump during %s: %r" % (what, info[:40]),
             repr(info))
        with open(out, "wb") as f:
            reader = subprocess.Popen(["cat"], stdin=r, stdout=f)
        os.close(r)
        r = None
        ev = events_until(g.qmp, "RESUME", 300)
        reader.wait(timeout=120)
        st = g.status()
        after = g.qmp.hmp("info dump")
        t.ok(completed_ok(ev) and reader.returncode == 0 and st["running"]
             and re.match(r"Status: completed\r?\n$", after) is not None,
             "%s: completed, read by another process (%d bytes), guest running, "
             "info dump %r" % (what, os.path.getsize(out), after.strip()),
             "events %s, cat %s, status %s" % (ev, reader.returncode, st))
        return out
    except (DriverError, OSError, ValueError, subprocess.TimeoutExpired) as e:
        t.ok(False, "a detached dump of %s" % what, str(e))
        return None
    finally:
        if r is not None:
            os.close(r)
        if reader and reader.poll() is None:
            reader.kill()
            reader.wait()


def fdset_pipe_refused(t, g):
    """7.2 opens file: targets with O_TRUNC, which a pipe in an fd set fails
    (ftruncate: EINVAL); the integrated QEMU must say the same."""
    r, rep = qc.send_pipe_fd(g.qmp, "add-fd", **{"fdset-id": 9})
    try:
        if "error" in rep:
            t.ok(False, "add-fd of a pipe", rep["error"].get("desc"))
            return
        rep = g.qmp.command("dump-guest-memory", paging=False,
                            protocol="file:/dev/fdset/9", format="elf")
        g.qmp.execute("remove-fd", **{"fdset-id": 9})
        st = g.status()
        want = "Could not open '/dev/fdset/9': Invalid argument"
        t.ok(rep.get("error", {}).get("desc") == want and st["running"],
             "a pipe in an fd set is refused as by 7.2: %s" % want,
             "reply %s, status %s" % (rep, st))
    finally:
        os.close(r)


def fdset_hmp_dump(t, g, work):
    """HMP cannot name an fd, but /dev/fdset/N works: a detached kdump-zlib into
    a file passed with add-fd, `info dump` while it runs."""
    out = os.path.join(work, "fdset-hmp.kdump")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        rep = g.qmp.command("add-fd", fds=[fd], **{"fdset-id": 7})
    finally:
        os.close(fd)
    try:
        if "error" in rep:
            raise DriverError("add-fd: %s" % rep["error"].get("desc"))
        said = g.qmp.hmp("dump-guest-memory -d -z /dev/fdset/7")
        info = g.qmp.hmp("info dump")
        ev = events_until(g.qmp, "RESUME", 300)
        g.qmp.execute("remove-fd", **{"fdset-id": 7})
        ok = re.match(r"Status: (active\r?\nFinished: \d+\.\d\d %|completed)\r?\n$",
                      info) is not None
        t.ok(said.strip() == "" and ok and completed_ok(ev) and qc.flattened(out),
             "HMP dump-guest-memory -d -z /dev/fdset/7 (add-fd), info dump %r"
             % info.strip()[:40], "HMP said %r, info %r, events %s" % (said, info, ev))
        return out
    except (DriverError, OSError, ValueError) as e:
        t.ok(False, "HMP dump into /dev/fdset/7", str(e))
        return None


def fdset_file_dump(t, g, work):
    """QMP file:/dev/fdset/N into a regular file passed with add-fd."""
    out = os.path.join(work, "fdset-file.elf")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        rep = g.qmp.command("add-fd", fds=[fd], **{"fdset-id": 3})
    finally:
        os.close(fd)
    try:
        if "error" in rep:
            raise DriverError("add-fd: %s" % rep["error"].get("desc"))
        g.qmp.execute("dump-guest-memory", paging=False,
                      protocol="file:/dev/fdset/3", format="elf")
        ev = events_until(g.qmp, "RESUME")
        g.qmp.execute("remove-fd", **{"fdset-id": 3})
        t.ok(completed_ok(ev) and qc.file_magic(out, 4) == b"\x7fELF",
             "an ELF dump of the running guest into file:/dev/fdset/3 (add-fd)",
             "events %s" % ev)
        return out
    except (DriverError, OSError, ValueError) as e:
        t.ok(False, "an ELF dump into file:/dev/fdset/3", str(e))
        return None


def hmp_dumps(t, g, work, fmts):
    """7.2's HMP dump-guest-memory flags, on the running guest."""
    usage = g.qmp.hmp("help dump-guest-memory")
    has_raw = "-R" in usage
    t.diag("HMP usage: " + usage.strip().splitlines()[0])
    cases = [("", "elf"), ("-p", "elf"), ("-z", "kdump-zlib")]
    if "kdump-lzo" in fmts:
        cases.append(("-l", "kdump-lzo"))
    if "kdump-snappy" in fmts:
        cases.append(("-s", "kdump-snappy"))
    if has_raw:
        cases.append(("-z -R", "kdump-raw-zlib"))
    for flags, fmt in cases:
        path = os.path.join(work, "hmp%s.%s" % (flags.replace(" ", ""), fmt))
        try:
            out = g.qmp.hmp(" ".join(["dump-guest-memory"] + flags.split() + [path]))
            ev = events_until(g.qmp, "RESUME")
            magic = qc.file_magic(path, 12) if os.path.exists(path) else b""
            want = {"elf": b"\x7fELF", "kdump-raw-zlib": b"KDUMP   "}.get(
                fmt, b"makedumpfile")
            t.ok(out.strip() == "" and completed_ok(ev) and magic.startswith(want),
                 "HMP dump-guest-memory %s writes %s" % (flags or "(no flag)", fmt),
                 "HMP said %r, events %s, magic %r" % (out, run_states(ev), magic))
        except (DriverError, OSError, ValueError) as e:
            t.ok(False, "HMP dump-guest-memory %s" % flags, str(e))
    # begin/length: only that range, one PT_LOAD of exactly that size.
    path = os.path.join(work, "hmp-range.elf")
    try:
        out = g.qmp.hmp("dump-guest-memory %s 0x100000 0x200000" % path)
        events_until(g.qmp, "RESUME")
        loads = qc.tlg.elf_load_layout(path)
        t.ok(out.strip() == "" and loads == [(0x100000, 0x200000)],
             "HMP dump-guest-memory FILE 0x100000 0x200000 dumps only that range",
             "HMP said %r, PT_LOADs %s" % (out, loads))
    except (DriverError, OSError, ValueError) as e:
        t.ok(False, "HMP dump-guest-memory with begin and length", str(e))
    # Refusals, with 7.2's texts; no dump runs, so no event is awaited.
    for line, want in (
            ("dump-guest-memory -z -l %s/x" % work,
             "Error: only one of '-z|-l|-s|-w' can be set"),
            ("dump-guest-memory -z -p %s/x" % work,
             "dump-guest-memory: unsupported option -p")):
        out = g.qmp.hmp(line)
        t.ok(out.startswith(want) and not os.path.exists(work + "/x"),
             "HMP refuses %r: %s" % (line.replace(work + "/", ""), want), repr(out))


def stopped_dumps(t, g, work, fmts):
    """One stopped guest state in every ELF/kdump format; the guest stays paused."""
    g.qmp.execute("stop")
    events_until(g.qmp, "STOP")
    plan = [("elf", False), ("elf", True)] + [
        (f, False) for f in fmts if f.startswith("kdump")]
    outs = {}
    for fmt, paging in plan:
        path = os.path.join(work, "stopped-" + dump_name(fmt, paging))
        try:
            g.qmp.execute("dump-guest-memory", paging=paging,
                          protocol="file:" + path, format=fmt)
            ev = events_until(g.qmp, "DUMP_COMPLETED")
            if completed_ok(ev):
                outs[(fmt, paging)] = path
        except (DriverError, OSError, ValueError) as e:
            t.diag("stopped %s: %s" % (fmt, e))
    st = g.status()
    t.ok(len(outs) == len(plan) and st["status"] == "paused"
         and not [e for e in g.qmp.events if e["event"] == "RESUME"],
         "the stopped guest dumps in %d formats and stays paused" % len(plan),
         "written %s of %s, status %s" % (sorted(outs), plan, st))
    return outs


def kdump_pages(path):
    """A plain kdump file's kept pfns (2nd bitmap) -> sha256 of each page,
    the sub-header's dump_level and the number of pfns in the 1st bitmap."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"KDUMP   ":
        raise ValueError("%s: not a plain kdump file" % path)
    bs, sub, blocks = struct.unpack_from("<III", data, 428)
    level = struct.unpack_from("<I", data, bs + 8)[0]
    half = blocks // 2 * bs
    b1 = data[(1 + sub) * bs:(1 + sub) * bs + half]
    b2 = data[(1 + sub) * bs + half:(1 + sub) * bs + 2 * half]
    ram = sum(bin(x).count("1") for x in b1)
    desc = (1 + sub + blocks) * bs
    pages = {}
    for byte_i, byte in enumerate(b2):
        for bit in range(8):
            if not byte >> bit & 1:
                continue
            off, size, flags = struct.unpack_from("<QII", data, desc)
            desc += 24
            page = data[off:off + size]
            if flags & 1:
                page = zlib.decompress(page)
            elif flags:
                raise ValueError("%s: page codec 0x%x" % (path, flags))
            pages[byte_i * 8 + bit] = hashlib.sha256(page).hexdigest()
    return pages, level, ram


def filtered_dump(t, g, work, outs, integrated, have_mdf):
    """dump-level 31 of the stopped guest keeps the pages makedumpfile -d 31
    keeps from the same state's ELF, with the same data (the integrated
    QEMU only: stock 7.2 has no dump-level)."""
    elf = outs.get(("elf", False))
    desc = ("dump-level 31 (kdump-raw-zlib) keeps exactly the pages, with the "
            "same data, that makedumpfile -c -d 31 keeps from the ELF")
    if not integrated or not elf or not qc.need(t, have_mdf, desc, NO_MDF):
        return
    ours = os.path.join(work, "stopped-level31.kdump")
    ref = os.path.join(work, "stopped-mdf-d31.kdump")
    try:
        g.qmp.execute("dump-guest-memory", paging=False, protocol="file:" + ours,
                      format="kdump-raw-zlib", **{"dump-level": 31})
        events_until(g.qmp, "DUMP_COMPLETED")
        rc, out = qc.run(["makedumpfile", "-c", "-d", "31", elf, ref], timeout=600)
        if rc != 0:
            t.ok(False, desc, tail(out))
            return
        a, alevel, _ = kdump_pages(ref)
        b, blevel, ram = kdump_pages(ours)
        differ = [p for p in set(a) & set(b) if a[p] != b[p]]
        t.ok(set(a) == set(b) and not differ and alevel == blevel == 31
             and 0 < len(b) < ram,
             desc + " (%d of %d pfns)" % (len(b), ram),
             "only makedumpfile %s, only ours %s, data differ %s, levels %d/%d" % (
                 sorted(set(a) - set(b))[:8], sorted(set(b) - set(a))[:8],
                 sorted(differ)[:8], alevel, blevel))
    except (DriverError, OSError, ValueError, zlib.error) as e:
        t.ok(False, desc, str(e))


def page_digests(t, outs, integrated, have_mdf):
    """Every page of every kdump file, through libkdumpfile and drgn, equals the
    ELF's pages: one digest for all readers and formats."""
    ref = outs.get(("elf", False))
    if not ref:
        return
    have_kdf = qc.tlg.have_module("kdumpfile")
    have_drgn = qc.tlg.have_module("drgn")
    script = os.path.join(qc.HERE, "page_digests.py")

    def digest(kind, path):
        rc, out = qc.run([SYS_PY, script, kind, path, ref], timeout=600)
        try:
            return json.loads(out.splitlines()[-1]), out
        except (ValueError, IndexError):
            return None, out
    want, out = digest("elf", ref)
    if not t.ok(want is not None and want["pages"] > 0,
                "page digest of the stopped guest's ELF", tail(out)):
        return
    t.diag("%d pages, sha256 %s" % (want["pages"], want["sha256"][:16]))
    for (fmt, paging), path in sorted(outs.items()):
        if not fmt.startswith("kdump"):
            continue
        if qc.flattened(path):
            if not qc.need(t, have_mdf, "pages of %s" % fmt, NO_MDF):
                continue
            plain, err = reassemble(path)
            if not plain:
                t.ok(False, "makedumpfile -R reassembles %s" % fmt, err)
                continue
        else:
            plain = path
        for kind, have, pkg in (("kdumpfile", have_kdf, "python3-libkdumpfile"),
                                ("drgn", have_drgn, "python3-drgn")):
            desc = "%s reads every page of the stopped guest's %s as in its ELF" % (
                kind, fmt)
            if not qc.need(t, have, desc, pkg + " not installed"):
                continue
            got, out = digest(kind, plain)
            if kind == "drgn" and not integrated and got is None and \
                    ("machine" in out.lower() or "ARCH_NAME" in out):
                t.skip(desc, "stock 7.2 leaves utsname.machine empty, drgn refuses "
                       "the file (docs/compat.md K1)")
                continue
            t.ok(got is not None and got["sha256"] == want["sha256"]
                 and got["pages"] == want["pages"], desc,
                 json.dumps(got) if got else tail(out))


def restore_compare(t, gd_bin, work, outs, fmts, integrated, have_mdf):
    """guestdump -restore of the binary's paging=false ELF dumps the same bytes."""
    ref = outs.get(("elf", False))
    if not ref:
        return
    try:
        emu = guests.Guestdump(gd_bin, ref)
    except (DriverError, OSError, ValueError) as e:
        t.ok(False, "guestdump -restore of the binary's ELF", str(e))
        return
    mine = {}
    try:
        for (fmt, paging) in sorted(outs):
            path = os.path.join(work, "restored-" + dump_name(fmt, paging))
            err = emu.dump(path, fmt, paging)
            if err is None:
                mine[(fmt, paging)] = path
            else:
                t.ok(False, "guestdump dumps the restored guest as %s" % fmt, err)
    finally:
        emu.stop()
    cmp_tool = os.path.join(qc.COMPAT, "elf_compare.py")
    for key, path in sorted(mine.items()):
        fmt, paging = key
        what = "%s%s" % (fmt, " paging=true" if paging else "")
        same = qc.sha256_file(path) == qc.sha256_file(outs[key])
        if integrated:
            t.ok(same, "guestdump -restore of the binary's ELF dumps %s byte-identical "
                 "to the binary's" % what)
        elif fmt == "elf":
            rc, msg = qc.run([sys.executable, cmp_tool, outs[key], path])
            t.ok(rc == 0, "stock 7.2's %s of the stopped Linux guest equals guestdump's "
                 "after -restore except docs/compat.md's corrections" % what, tail(msg))
        elif fmt == "kdump-zlib" and have_mdf:
            q, e1 = reassemble(outs[key])
            o, e2 = reassemble(path)
            if q and o:
                qc.tlg.check_kdump_vs_qemu(t, q, o, open_kver(outs))
            else:
                t.ok(False, "makedumpfile -R of both kdump-zlib files", e1 or e2)


def open_kver(outs):
    vmci = qc.tlg.elf_vmcoreinfo(outs[("elf", False)])
    return vmci.get("OSRELEASE", "")


def crash_check(t, kver, path):
    desc = "crash runs sys, bt -a and log on the kdump-zlib file"
    if not qc.need(t, shutil.which("crash"), desc, "crash not installed"):
        return
    vmlinux = qc.debug_vmlinux(kver)
    if not qc.need(t, vmlinux, desc, "no vmlinux-%s with debug info "
                   "(linux-image-amd64-dbg)" % kver):
        return
    rc, out = qc.run(["crash", "-s", vmlinux, path], timeout=600,
                     input="sys\nbt -a\nlog\nquit\n")
    t.ok(rc == 0 and ("RELEASE: " + kver) in out and "PID: " in out
         and "CPU: 1" in out and MARK in out, desc + " (both vCPUs, the guest's log)",
         tail(out, 20))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--guestdump", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    qemu = qc.binary(a.build)
    why = qc.check_binary(qemu)
    if why:
        return qc.missing_all(why)
    t = qc.Tap()
    kk, why = qc.kernel_and_initrd(a.cache, t)
    if not kk:
        return t.finish() if t.failed else qc.missing_all(why)
    kver, kernel, initrd = kk
    have_mdf = shutil.which("makedumpfile") is not None
    work = tempfile.mkdtemp(prefix="qemu-linux-")
    t.diag("QEMU under test: %s" % qemu)
    g = None
    try:
        g = qc.LiveGuest(qemu, kernel, initrd)
        g.boot()
        t.ok(True, "the guest boots under TCG with -device vmcoreinfo (%.1f s)"
             % g.boot_s)
        fmts = g.qmp.execute("query-dump-guest-memory-capability")["formats"]
        integrated = qc.is_integrated(fmts)
        qc.check_formats(t, fmts)
        live = live_dumps(t, g, work, fmts)
        pipes = [pipe_dump(t, g, work, "kdump-zlib"), pipe_dump(t, g, work, "elf"),
                 fdset_hmp_dump(t, g, work)]
        fdset_elf = fdset_file_dump(t, g, work)
        fdset_pipe_refused(t, g)
        hmp_dumps(t, g, work, fmts)
        t.ok(g.shell("echo gd-$((6*7))-alive", "gd-42-alive"),
             "after all the dumps the guest's console still answers a command",
             tail(g.serial.decode(errors="replace")))
        if qc.need(t, have_mdf, "makedumpfile reads the live dumps", NO_MDF):
            for key, what in ((("elf", False), "ELF"), (("kdump-zlib", False),
                                                        "kdump-zlib")):
                if key in live:
                    dmesg_check(t, live[key], what + " (live)", integrated)
            for p, what in ((pipes[0], "kdump-zlib read from a getfd pipe"),
                            (pipes[1], "ELF read from a getfd pipe"),
                            (pipes[2], "kdump-zlib written to /dev/fdset/7 by HMP"),
                            (fdset_elf, "ELF written to /dev/fdset/3")):
                if p:
                    dmesg_check(t, p, what, integrated)
        if ("kdump-zlib", False) in live:
            crash_check(t, kver, live[("kdump-zlib", False)])
        stopped = stopped_dumps(t, g, work, fmts)
        page_digests(t, stopped, integrated, have_mdf)
        filtered_dump(t, g, work, stopped, integrated, have_mdf)
        restore_compare(t, a.guestdump, work, stopped, fmts, integrated, have_mdf)
    except (DriverError, OSError, ValueError) as e:
        t.ok(False, "the Linux guest in the QEMU under test", str(e))
    finally:
        if g:
            g.close()
        if a.keep:
            t.diag("outputs kept in " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
