#!/bin/sh
# Builds guestdump, starts the demo guest and dumps it over QMP in several formats.
#   scripts/demo.sh [OUTDIR]      (default: ./demo-dumps)
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-demo-dumps}" && cd "${1:-demo-dumps}" && pwd)
cd "$top"
sh scripts/deps.sh build
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

run=$(mktemp -d)
pid=
# The trap must keep the script's exit status: under set -e a failing kill
# (the host has usually exited already) would otherwise become the status,
# and the temporary directory must go in every case.
cleanup() {
    st=$?
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    rm -rf "$run"
    exit "$st"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
build/guestdump -demo -m 512M -smp 2 -qmp "unix:$run/qmp.sock,server=on,wait=off" &
pid=$!
i=0
until [ -S "$run/qmp.sock" ]; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "demo: host did not start" >&2; exit 1; }
    sleep 0.1
done

failed=0
qmp() { python3 scripts/qmp-client.py "$run/qmp.sock" "$@"; }
echo "formats: $(qmp query-dump-guest-memory-capability)"
for spec in elf:false elf:true kdump-zlib:false kdump-snappy:false kdump-lzo:false; do
    fmt=${spec%%:*}; paging=${spec##*:}
    name=$fmt; [ "$paging" = true ] && name=$fmt-paging
    vmcore=$out/$name.vmcore
    rm -f "$vmcore"
    args="{\"paging\": $paging, \"protocol\": \"file:$vmcore\", \"format\": \"$fmt\"}"
    if qmp dump-guest-memory "$args" >/dev/null && [ -s "$vmcore" ]; then
        echo "$name: $(stat -c %s "$vmcore") bytes, query-dump $(qmp query-dump)"
    else
        echo "demo: $name dump failed" >&2
        failed=$((failed + 1))
    fi
done
qmp quit >/dev/null
# The host has been asked to quit: its own status tells whether it went cleanly.
hst=0
wait "$pid" || hst=$?
pid=
if [ "$hst" -ne 0 ]; then
    echo "demo: host exited with status $hst" >&2
    failed=$((failed + 1))
fi
if command -v readelf >/dev/null; then
    echo "readelf -l $out/elf-paging.vmcore (first lines):"
    readelf -l "$out/elf-paging.vmcore" | head -n 20
fi
echo "dumps are in $out"
[ "$failed" -eq 0 ] || { echo "demo: $failed step(s) failed" >&2; exit 1; }
