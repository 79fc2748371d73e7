#!/bin/sh
# Builds Debian 12's QEMU 7.2 with guestdump's dump module in place of QEMU's dump code.
#   build.sh DESTDIR            DESTDIR/qemu-system-x86_64 (x86_64-softmmu, TCG + KVM)
#   build.sh --qtests DESTDIR   that, then QEMU's own qtests of this area against it
#   build.sh --stock DESTDIR    QEMU's own dump code (a reference build; warms ccache)
# Source, build tree and ccache live under $GUESTDUMP_CACHE/qemu
# (default /var/cache/guestdump/qemu) so a second run only recompiles what changed;
# the module's files are copied from this tree into the source on every run.
set -eu

mode=module
qtests=no
while [ $# -gt 0 ]; do
    case "$1" in
    --qtests) qtests=yes; shift ;;
    --stock) mode=stock; shift ;;
    -*) echo "usage: $0 [--qtests] [--stock] DESTDIR" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -eq 1 ] || { echo "usage: $0 [--qtests] [--stock] DESTDIR" >&2; exit 2; }
dest=$1
tree=$(cd "$(dirname "$0")/../.." && pwd)
cache=${GUESTDUMP_CACHE:-/var/cache/guestdump}/qemu
# The source of the installed qemu-system-x86 (the QEMU the compat tests compare
# with), else the one this was written against.
srcver=$(dpkg-query -W -f='${source:Version}' qemu-system-x86 2>/dev/null) || srcver=""
[ -n "$srcver" ] || srcver=1:7.2+dfsg-7+deb12u18
pristine=$cache/src/qemu-7.2+dfsg
# The stock build uses the pristine source; the module build a copy of it.
# Both keep their build tree at ../src/qemu-7.2+dfsg from the build tree,
# so with CCACHE_BASEDIR the same compile lines hit the same ccache entries.
if [ "$mode" = stock ]; then
    srcdir=$pristine
    builddir=$cache/build-stock
else
    srcdir=$cache/module/src/qemu-7.2+dfsg
    builddir=$cache/module/build
fi

step_start=0
step() {
    now=$(date +%s)
    [ "$step_start" -gt 0 ] && echo "build.sh: $step_name took $((now - step_start)) s"
    step_name=$1
    step_start=$now
    [ -n "$1" ] && echo "build.sh: $1..."
    return 0
}

step "installing build dependencies"
sh "$tree/scripts/deps.sh" qemu
mkdir -p "$cache"
# One build at a time per cache: other worktrees on the machine share it.
exec 9>"$cache/.lock"
if ! flock -n 9; then
    echo "build.sh: waiting for another build.sh using $cache" >&2
    flock 9
fi

# apt-get source with a private sources list and private apt state, derived from
# the machine's own Debian entries: the system's apt configuration is not touched.
if [ "$(cat "$pristine/.guestdump-unpacked" 2>/dev/null)" != "$srcver" ]; then
    step "fetching QEMU's Debian source package ($srcver)"
    apt=$cache/apt
    rm -rf "$apt" "$cache/src" "$cache/module"
    mkdir -p "$apt/parts" "$apt/lists/partial" "$apt/cache/archives/partial" "$cache/src"
    found=no
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822 stanzas: the binary entries become source entries.
        sed -n '/^Types:/s/^Types:.*/Types: deb-src/p;/^Types:/!p' "$f" \
            > "$apt/parts/$(basename "$f")"
        found=yes
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -n 's/^deb \(.*\)/deb-src \1/p' "$f" >> "$apt/parts/from-lists.list"
        found=yes
    done
    [ "$found" = yes ] || { echo "build.sh: no apt sources configured" >&2; exit 1; }
    set -- -o Dir::Etc::sourcelist=/dev/null -o "Dir::Etc::sourceparts=$apt/parts" \
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" \
        -o Debug::NoLocking=1 -o APT::Sandbox::User=root
    apt-get "$@" -qq update
    # apt-get source unpacks and applies Debian's patches (dpkg-source -x).
    # A mirror keeps only the newest revision: fall back to that.
    (cd "$cache/src" && apt-get "$@" -qq source "qemu=$srcver" >/dev/null) || {
        echo "build.sh: qemu $srcver is not available; taking the newest 7.2" >&2
        (cd "$cache/src" && apt-get "$@" -qq source qemu >/dev/null)
    }
    if [ ! -d "$pristine" ]; then
        echo "build.sh: no $pristine after apt-get source" >&2
        exit 1
    fi
    echo "$srcver" > "$pristine/.guestdump-unpacked"
fi
if [ "$mode" = module ] && [ ! -f "$srcdir/.guestdump-copied" ]; then
    step "copying the source for the module build"
    rm -rf "$cache/module"
    mkdir -p "$cache/module/src"
    cp -a "$pristine" "$srcdir"
    touch "$srcdir/.guestdump-copied"
fi

# Copies $1 to $2 only when it differs, so unchanged files keep their mtime
# and ninja does not rebuild what depends on them.
put() {
    mkdir -p "$(dirname "$2")"
    cmp -s "$1" "$2" || cp "$1" "$2"
}

if [ "$mode" = module ]; then
    step "putting guestdump's module into the QEMU source"
    sh "$tree/scripts/qemu/install-module.sh" "$tree" "$pristine" "$srcdir"
fi

export CCACHE_DIR="$cache/ccache" CCACHE_BASEDIR="$cache" CCACHE_MAXSIZE=3G \
    CCACHE_NOHASHDIR=1
if command -v ccache >/dev/null; then
    # Debian's ccache wrappers: configure and meson find "gcc" there.
    export PATH="/usr/lib/ccache:$PATH"
fi

# Only what x86 machine types and libvirt's probing need: no UI, audio, network
# back ends or storage protocols. The compression libraries match the module's
# CONFIG_LZO/SNAPPY/ZSTD; the firmware path is Debian's, so Debian's
# seabios/ipxe/qemu-system-data blobs are found without -L.
opts="--prefix=/usr --sysconfdir=/etc --libexecdir=/usr/lib/qemu --localstatedir=/var
--firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
--target-list=x86_64-softmmu --without-default-features --disable-docs --disable-user
--disable-tools --disable-werror --disable-install-blobs --disable-debug-info
--enable-system --enable-tcg --enable-kvm --enable-lzo --enable-snappy --enable-zstd
--audio-drv-list="
stamp="$builddir/.guestdump-configure-opts"
if [ ! -f "$builddir/build.ninja" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$opts" ]; then
    step "configuring QEMU ($mode)"
    rm -rf "$builddir"
    mkdir -p "$builddir"
    # shellcheck disable=SC2086
    (cd "$builddir" && "$srcdir/configure" $opts >configure.log 2>&1) || {
        tail -n 30 "$builddir/configure.log" >&2
        echo "build.sh: configure failed (log: $builddir/configure.log)" >&2
        exit 1
    }
    echo "$opts" > "$stamp"
fi

step "compiling QEMU ($mode)"
# Zeroed so the summary below counts this run's hits and misses only.
command -v ccache >/dev/null && ccache -z >/dev/null
ninja -C "$builddir" qemu-system-x86_64
mkdir -p "$dest"
put "$builddir/qemu-system-x86_64" "$dest/qemu-system-x86_64"
# QEMU 7.2 relocates its configured paths (firmware, data) relative to the
# executable: from DESTDIR/qemu-system-x86_64, /usr/share/qemu would become
# DESTDIR/../share/qemu. A "qemu-bundle" next to the executable is its install
# root instead; pointing it at / makes the binary use Debian's firmware paths
# exactly as configured, as if it were installed in /usr/bin.
if [ ! -e "$dest/qemu-bundle" ] || [ -L "$dest/qemu-bundle" ]; then
    ln -sfn / "$dest/qemu-bundle"
fi
# For the qemu-qtests test, which builds and runs QEMU's qtests in that tree.
echo "$builddir" > "$dest/qemu-build-dir"
if command -v ccache >/dev/null; then
    ccache -s | grep -E 'Hits|Misses' || true
fi

if [ "$qtests" = yes ]; then
    step "running QEMU's qtests of this area"
    # The lock is held already (fd 9, inherited).
    GUESTDUMP_QEMU_LOCKED=1 sh "$tree/scripts/qemu/qtests.sh" "$builddir" \
        "$dest/qemu-system-x86_64"
fi
step ""
echo "build.sh: $dest/qemu-system-x86_64"
