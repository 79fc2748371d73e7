#!/bin/sh
# A long libFuzzer run of every harness under ASan+UBSan: sh tests/fuzz/long-run.sh [SECONDS]
#   SECONDS      total time, split evenly between the harnesses, run one after
#                another on one core (default 3600)
#   FUZZ_BUILD   the clang build directory (default build-fuzz-long; set up if absent)
#   FUZZ_WORK    new inputs, logs and findings (default /tmp/guestdump-fuzz-long);
#                the committed seeds are read, never written
# Prints one line per harness (seconds, executions, new inputs, findings) and exits 1
# if any harness found a crash, leak, timeout or out-of-memory input.
set -e
cd "$(dirname "$0")/../.."
total=${1:-3600}
build=${FUZZ_BUILD:-build-fuzz-long}
work=${FUZZ_WORK:-/tmp/guestdump-fuzz-long}

case $total in
    ''|*[!0-9]*) echo "usage: sh tests/fuzz/long-run.sh [SECONDS]" >&2; exit 2 ;;
esac
if ! printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' |
     clang -x c -fsanitize=fuzzer,address,undefined -o /dev/null - 2>/dev/null; then
    echo "long-run.sh: clang with libFuzzer is needed (sh scripts/deps.sh test)" >&2
    exit 1
fi
targets=$(grep -l LLVMFuzzerTestOneInput tests/fuzz/fuzz-*.c | sed 's|\.c$||')
if [ ! -d "$build" ]; then
    # The same configuration as scripts/test.sh's build-libfuzzer.
    CC=clang meson setup "$build" -Dfuzzing=true -Dwerror=false \
        -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args="-fsanitize=fuzzer-no-link -Wno-unknown-warning-option" >/dev/null
fi
# shellcheck disable=SC2086
ninja -C "$build" $targets >/dev/null

count=$(echo "$targets" | wc -w)
each=$((total / count))
[ "$each" -ge 1 ] || each=1
mkdir -p "$work"
status=0
printf '%-18s %8s %12s %10s %9s\n' harness seconds executions new-inputs findings
for t in $targets; do
    name=$(basename "$t")
    seeds="tests/fuzz/corpus/${name#fuzz-}"
    mkdir -p "$work/$name"
    before=$(find "$work/$name" -type f | wc -l)
    start=$(date +%s)
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$build/tests/fuzz/$name" -max_total_time="$each" -timeout=60 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/$name-" \
        "$work/$name" "$seeds" >"$work/$name.log" 2>&1 || status=1
    secs=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log")
    after=$(find "$work/$name" -type f | wc -l)
    found=$(find "$work" -maxdepth 1 -name "$name-*" \( -name '*crash-*' -o \
            -name '*leak-*' -o -name '*timeout-*' -o -name '*oom-*' \) | wc -l)
    printf '%-18s %8s %12s %10s %9s\n' "$name" "$secs" "${execs:-?}" \
        $((after - before)) "$found"
    [ "$found" -eq 0 ] || status=1
done
echo "logs, new inputs and findings: $work"
exit $status
