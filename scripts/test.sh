#!/bin/sh
# Builds guestdump from scratch and runs every test; ends with one "N passed, N failed, N skipped".
#   build            gcc, every suite ("$@" goes to this meson test)
#   build-asan       gcc with ASan+UBSan: the unit suite (malformed vmcores included) and
#                    the fuzz corpus replays
#   build-libfuzzer  clang: each libFuzzer harness for a bounded time from its seeds
#                    (skipped when clang's libFuzzer is missing); FUZZ_TIME=N seconds each
# Before the tests, scripts/qemu/build.sh builds QEMU 7.2 with the module into build/qemu
# (suite qemu tests it; incremental from /var/cache/guestdump/qemu after the first run).
# A build that fails counts as one failed test in the summary.
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh test
rm -rf build build-asan build-libfuzzer
status=0

meson setup build >/dev/null
ninja -C build
logs=""
if ! sh scripts/qemu/build.sh build/qemu; then
    echo "test.sh: the QEMU build failed" >&2
    status=1
    # A log that does not exist: test-summary.py counts one failure.
    logs="build/qemu/build-failed"
fi
meson test -C build --num-processes 2 --print-errorlogs "$@" || status=$?
logs="$logs build/meson-logs/testlog.json"

# Sanitizers over everything that parses untrusted input in-process.
if meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null &&
   ninja -C build-asan; then
    meson test -C build-asan --num-processes 2 --print-errorlogs --suite unit \
        --suite fuzz || status=$?
else
    echo "test.sh: the ASan/UBSan build failed" >&2
    status=1
fi
logs="$logs build-asan/meson-logs/testlog.json"

if printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' |
   clang -x c -fsanitize=fuzzer,address,undefined -o /dev/null - 2>/dev/null; then
    # Only the harnesses: -Werror under clang is not what this build checks.
    targets=$(grep -l LLVMFuzzerTestOneInput tests/fuzz/fuzz-*.c | sed 's|\.c$||')
    # shellcheck disable=SC2086
    if CC=clang meson setup build-libfuzzer -Dfuzzing=true -Dwerror=false \
           -Dfuzz_time="${FUZZ_TIME:-20}" -Db_sanitize=address,undefined \
           -Db_lundef=false \
           -Dc_args="-fsanitize=fuzzer-no-link -Wno-unknown-warning-option" >/dev/null &&
       ninja -C build-libfuzzer $targets; then
        meson test -C build-libfuzzer --no-rebuild --num-processes 2 --print-errorlogs \
            --suite libfuzzer || status=$?
    else
        echo "test.sh: the libFuzzer build failed" >&2
        status=1
    fi
    logs="$logs build-libfuzzer/meson-logs/testlog.json"
else
    echo "test.sh: clang with libFuzzer not found: libFuzzer runs skipped" >&2
fi

# shellcheck disable=SC2086
python3 scripts/test-summary.py $logs
exit $status
