#!/usr/bin/env python3
"""The monitor on an inherited socket (-chardev socket,fd=N), as QEMUMachine and libvirt.

  inherited_fd_test.py GUESTDUMP

TAP output. QEMU's python QEMUMachine hands the child one end of a socketpair
(connected, no server=); libvirt a listening unix socket with server=on,wait=off.
A bad fd gets QEMU 7.2's texts; when qemu-system-x86_64 is installed the same
options are also given to it and its texts must be the same.
"""
import array
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

TIMEOUT = 20
COMMON = ["-S", "-nodefaults", "-display", "none", "-machine", "none"]

results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail, None))


def skip(name, why):
    results.append((name, True, "", why))


class Client:
    """QMP over a connected socket, with SCM_RIGHTS for add-fd."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(TIMEOUT)
        self.buf = b""

    def read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed by the host")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, command, args=None, fds=()):
        msg = {"execute": command}
        if args is not None:
            msg["arguments"] = args
        data = json.dumps(msg).encode() + b"\n"
        if fds:
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
            self.sock.sendmsg([data], anc)
        else:
            self.sock.sendall(data)
        while True:
            reply = self.read()
            if "event" not in reply:
                return reply


def start(args, pass_fds=()):
    return subprocess.Popen(args, pass_fds=pass_fds, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc):
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return None, err.decode(errors="replace")
    return proc.returncode, err.decode(errors="replace")


def session(client, tag):
    """Negotiate, run commands (one with an fd passed), quit; check every answer."""
    greeting = client.read()
    check(tag + ": greeting", "QMP" in greeting, greeting)
    check(tag + ": qmp_capabilities", client.cmd("qmp_capabilities") == {"return": {}})
    st = client.cmd("query-status")
    check(tag + ": query-status", st.get("return", {}).get("status") == "prelaunch", st)
    # The fd travels over the inherited socket: it must be a unix one we can use.
    r, w = os.pipe()
    try:
        added = client.cmd("add-fd", {"fdset-id": 7}, fds=[w])
    finally:
        os.close(r)
        os.close(w)
    check(tag + ": add-fd over the inherited socket",
          added.get("return", {}).get("fdset-id") == 7, added)
    check(tag + ": quit", client.cmd("quit") == {"return": {}})


def test_socketpair(guestdump):
    """QEMUMachine: socketpair, child's end by pass_fds, -chardev socket,fd=N."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fd = theirs.fileno()
    proc = start([guestdump] + COMMON +
                 ["-chardev", "socket,id=mon,fd=%d" % fd,
                  "-mon", "chardev=mon,mode=control"], pass_fds=[fd])
    theirs.close()
    try:
        session(Client(ours), "socketpair")
    except (OSError, EOFError, ValueError) as e:
        check("socketpair: session", False, repr(e))
    ours.close()
    rc, err = finish(proc)
    check("socketpair: host exits 0", rc == 0, "rc=%s stderr=%r" % (rc, err))


def test_listening(guestdump, tmp):
    """libvirt: a listening unix socket, server=on,wait=off; two clients in turn."""
    path = os.path.join(tmp, "lv.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(4)
    fd = lsock.fileno()
    proc = start([guestdump] + COMMON +
                 ["-chardev", "socket,id=charmonitor,fd=%d,server=on,wait=off" % fd,
                  "-mon", "chardev=charmonitor,id=monitor,mode=control"],
                 pass_fds=[fd])
    lsock.close()
    try:
        first = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        first.settimeout(TIMEOUT)
        first.connect(path)
        c = Client(first)
        check("listening: first client greeted", "QMP" in c.read())
        first.close()
        second = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        second.settimeout(TIMEOUT)
        second.connect(path)
        session(Client(second), "listening")
        second.close()
    except (OSError, EOFError, ValueError) as e:
        check("listening: session", False, repr(e))
    rc, err = finish(proc)
    check("listening: host exits 0", rc == 0, "rc=%s stderr=%r" % (rc, err))
    # docs/compat.md M11: the socket file is the parent's; 7.2 would unlink it.
    check("listening: the parent's socket file is left alone", os.path.exists(path))


def test_bound_not_listening(guestdump, tmp):
    """A bound socket not yet listening: put into listening state, as QEMU does."""
    path = os.path.join(tmp, "bound.sock")
    bsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bsock.bind(path)
    fd = bsock.fileno()
    proc = start([guestdump] + COMMON +
                 ["-chardev", "socket,id=m,fd=%d,server=on,wait=off" % fd,
                  "-mon", "chardev=m,mode=control"], pass_fds=[fd])
    bsock.close()
    ok = False
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(TIMEOUT)
            try:
                c.connect(path)
                break
            except ConnectionRefusedError:
                c.close()
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        client = Client(c)
        ok = "QMP" in client.read() and \
            client.cmd("qmp_capabilities") == {"return": {}} and \
            client.cmd("quit") == {"return": {}}
        c.close()
    except (OSError, EOFError, ValueError) as e:
        check("bound: session", False, repr(e))
    check("bound socket: listens and serves", ok)
    rc, err = finish(proc)
    check("bound socket: host exits 0", rc == 0, "rc=%s stderr=%r" % (rc, err))


def closed_fd():
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    return fd


def bad_cases(tmp):
    """(name, options, fds to pass, QEMU 7.2's text)."""
    f = open(os.path.join(tmp, "not-a-socket"), "w")
    nf = closed_fd()
    r, w = os.pipe()
    cases = []
    for extra in ("", ",server=on,wait=off"):
        cases += [
            ("not open" + extra, ["-chardev", "socket,id=mon,fd=%d%s" % (nf, extra)], [],
             "File descriptor '%d' is not a socket" % nf),
            ("a file" + extra,
             ["-chardev", "socket,id=mon,fd=%d%s" % (f.fileno(), extra)],
             [f.fileno()], "File descriptor '%d' is not a socket" % f.fileno()),
            ("a pipe" + extra, ["-chardev", "socket,id=mon,fd=%d%s" % (r, extra)], [r],
             "File descriptor '%d' is not a socket" % r),
        ]
    cases += [
        ("negative", ["-chardev", "socket,id=mon,fd=-1"], [],
         "File descriptor '-1' is not a socket"),
        ("not a number", ["-chardev", "socket,id=mon,fd=abc"], [],
         "Unable to parse FD number abc"),
        ("trailing junk", ["-chardev", "socket,id=mon,fd=3x"], [],
         "Unable to parse FD number 3x"),
        ("out of range", ["-chardev", "socket,id=mon,fd=99999999999"], [],
         "Unable to parse FD number 99999999999: Numerical result out of range"),
        ("fd and path", ["-chardev", "socket,id=mon,fd=3,path=%s/x" % tmp], [],
         "None or one of 'path', 'fd' or 'host' option required."),
        ("-qmp unix:,fd=", ["-qmp", "unix:,fd=%d" % r], [r],
         "None or one of 'path', 'fd' or 'host' option required."),
    ]
    for c in cases:
        if c[1][0] == "-chardev":
            c[1].extend(["-mon", "chardev=mon,mode=control"])
    return cases, [f, r, w]


def error_text(stderr):
    """The message after the program's and the option's prefixes."""
    line = stderr.strip().splitlines()[0] if stderr.strip() else ""
    for marker in ("File descriptor", "Unable to parse", "None or one"):
        i = line.find(": " + marker)
        if i >= 0:
            return line[i + 2:]
    return line


def test_bad_fds(guestdump, tmp):
    cases, keep = bad_cases(tmp)
    qemu = shutil.which("qemu-system-x86_64")
    for name, opts, fds, want in cases:
        rc, err = finish(start([guestdump] + COMMON + opts, pass_fds=fds))
        check("bad fd (%s): exit 1" % name, rc == 1, "rc=%s" % rc)
        got = err.strip().splitlines()[-1] if err.strip() else ""
        check("bad fd (%s): text" % name, got == "guestdump: " + want,
              "got %r want %r" % (got, want))
        if not qemu:
            skip("bad fd (%s): same as QEMU 7.2" % name,
                 "qemu-system-x86_64 not installed")
            continue
        qrc, qerr = finish(start([qemu] + COMMON + opts, pass_fds=fds))
        check("bad fd (%s): same as QEMU 7.2" % name,
              qrc == 1 and error_text(qerr) == want,
              "qemu rc=%s stderr=%r" % (qrc, qerr))
    for k in keep:
        k.close() if hasattr(k, "close") else os.close(k)


def main():
    guestdump = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="gd-inherited-fd-") as tmp:
        test_socketpair(guestdump)
        test_listening(guestdump, tmp)
        test_bound_not_listening(guestdump, tmp)
        test_bad_fds(guestdump, tmp)
    print("1..%d" % len(results))
    failed = 0
    for i, (name, ok, detail, why) in enumerate(results, 1):
        if why:
            print("ok %d - %s # SKIP %s" % (i, name, why))
        elif ok:
            print("ok %d - %s" % (i, name))
        else:
            failed += 1
            print("not ok %d - %s" % (i, name))
            print("# %s" % str(detail).replace("\n", "\n# "))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
