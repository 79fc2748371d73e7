#!/usr/bin/env python3
"""Prints one 'N passed, N failed, N skipped' over meson testlog.json files (one line per test).

A log that does not exist stands for a build that failed before its tests ran:
it counts as one failed test, so a broken build never reads as all passed.

Skips are listed (a whole test meson marked SKIP, and each TAP subtest
reported `ok N ... # SKIP reason`, which meson counts as a pass of its test).
With CI=true in the environment any skip is an error: CI installs every tool
the tests use, so a skip there means a test did not run. Exit status: 0, or 1
when a log is missing or, under CI, something was skipped.
"""
import json
import os
import re
import sys

# TAP: "ok 3 /elf/elf64-simple # SKIP readelf not installed" (directive is
# case-insensitive; "not ok ... # SKIP" does not occur in what we run).
TAP_SKIP = re.compile(r"^ok\b[^#]*#\s*skip\b\s*(.*)$", re.IGNORECASE)


def main():
    passed = failed = skipped = 0
    skips = []          # (test, subtest or None, reason)
    missing_log = False
    for path in sys.argv[1:]:
        try:
            log = open(path)
        except OSError as e:
            print("test-summary: %s: %s (counted as a failure)" % (path, e.strerror),
                  file=sys.stderr)
            failed += 1
            missing_log = True
            continue
        with log:
            for line in log:
                entry = json.loads(line)
                name = entry.get("name", "?")
                result = entry.get("result")
                if result in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif result == "SKIP":
                    skipped += 1
                    skips.append((name, None, last_line(entry.get("stdout", "")) or
                                  last_line(entry.get("stderr", ""))))
                else:
                    failed += 1
                if result == "SKIP":
                    continue
                for out in (entry.get("stdout") or "").splitlines():
                    m = TAP_SKIP.match(out.strip())
                    if m:
                        # "ok 3 /elf/filter " or "ok 3 - name ": the subtest's name
                        sub = re.sub(r"^ok\s+\d*\s*-?\s*", "",
                                     out.strip().split("#", 1)[0]).strip()
                        skips.append((name, sub, m.group(1).strip()))
    ci = os.environ.get("CI", "").lower() == "true"
    for name, sub, why in skips:
        print("test-summary: %s: %s%s%s" % ("error, skipped under CI" if ci
                                            else "skipped", name,
                                            " (%s)" % sub if sub else "",
                                            ": " + why if why else ""),
              file=sys.stderr)
    subs = sum(1 for _, sub, _ in skips if sub)
    print("%d passed, %d failed, %d skipped%s" % (
        passed, failed, skipped, " (and %d skipped subtests)" % subs if subs else ""))
    if ci and skips:
        print("test-summary: CI=true and %d test(s) or subtest(s) skipped; CI installs "
              "every tool (scripts/deps.sh test), so nothing may skip" % len(skips),
              file=sys.stderr)
        return 1
    return 1 if missing_log else 0


def last_line(text):
    lines = [x for x in (text or "").splitlines() if x.strip()]
    return lines[-1].strip()[:200] if lines else ""


if __name__ == "__main__":
    sys.exit(main())
