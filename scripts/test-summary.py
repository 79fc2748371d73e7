#!/usr/bin/env python3
"""Prints one 'N passed, N failed, N skipped' over meson testlog.json files (one line per test).

A log that does not exist stands for a build that failed before its tests ran:
it counts as one failed test, so a broken build never reads as all passed.
"""
import json
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        log = open(path)
    except OSError as e:
        print("test-summary: %s: %s (counted as a failure)" % (path, e.strerror),
              file=sys.stderr)
        failed += 1
        continue
    with log:
        for line in log:
            result = json.loads(line).get("result")
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                failed += 1
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
