#!/usr/bin/env python3
"""A small QMP client (standard library only) for scripts and people.

  qmp-client.py SOCKET COMMAND ['{"json": "arguments"}'] [--wait-event NAME]
  qmp-client.py SOCKET --hmp 'info status'
"""
import argparse
import json
import socket
import sys
import time


class QMPError(Exception):
    pass


class QMP:
    def __init__(self, path, timeout=600.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.events = []
        self.greeting = self._read()
        self.execute("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise QMPError("connection closed by the host")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, arguments=None):
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise QMPError("%s: %s" % (reply["error"]["class"],
                                           reply["error"]["desc"]))
            return reply["return"]

    def hmp(self, line):
        return self.execute("human-monitor-command", {"command-line": line})

    def wait_event(self, name, timeout=600.0):
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name:
                    return self.events.pop(i)
            if time.monotonic() > deadline:
                raise QMPError("timed out waiting for event %s" % name)
            self.events.append(self._read())


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("socket")
    ap.add_argument("command", nargs="?")
    ap.add_argument("arguments", nargs="?", default=None)
    ap.add_argument("--hmp", metavar="LINE")
    ap.add_argument("--wait-event", metavar="NAME")
    args = ap.parse_args()
    try:
        qmp = QMP(args.socket)
        if args.hmp:
            sys.stdout.write(qmp.hmp(args.hmp))
        elif args.command:
            arguments = json.loads(args.arguments) if args.arguments else None
            print(json.dumps(qmp.execute(args.command, arguments)))
        if args.wait_event:
            print(json.dumps(qmp.wait_event(args.wait_event)))
    except (QMPError, OSError) as err:
        print("qmp-client: %s" % err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
