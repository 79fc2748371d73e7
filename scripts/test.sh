#!/bin/sh
# Builds guestdump from scratch in ./build and runs every test; ends with "N passed, N failed".
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh test
rm -rf build
meson setup build >/dev/null
ninja -C build
status=0
meson test -C build --num-processes 2 --print-errorlogs "$@" || status=$?
python3 scripts/test-summary.py build/meson-logs/testlog.json
exit $status
