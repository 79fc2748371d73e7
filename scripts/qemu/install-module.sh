#!/bin/sh
# Puts guestdump's dump module and its QEMU glue into a QEMU 7.2 source tree.
#   install-module.sh TREE PRISTINE_QEMU_SRC QEMU_SRC
# Every QEMU file it edits is derived from the pristine source again, so a run
# gives the same tree whatever earlier runs did; a file is written only when
# its content changes (ninja rebuilds only what depends on it).
# What it replaces and why: docs/qemu-integration.md.
set -eu
tree=$1
p=$2
q=$3
glue=$tree/scripts/qemu/glue
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

put() {
    mkdir -p "$(dirname "$2")"
    cmp -s "$1" "$2" || cp "$1" "$2"
}

# QEMU's file $2 without the lines matching $1.
drop_lines() {
    grep -v -e "$1" "$p/$2" > "$tmp/edit" || true
    put "$tmp/edit" "$q/$2"
}

# QEMU's own files that earlier versions of this script replaced or edited
# (or a tree of another branch edited in the shared cache: hmp-commands.hx
# and monitor/hmp.h); a later edit below derives its own copy again.
for f in include/sysemu/dump.h include/sysemu/dump-arch.h \
         include/sysemu/memory_mapping.h stubs/meson.build \
         hmp-commands.hx include/monitor/hmp.h; do
    put "$p/$f" "$q/$f"
done

# QEMU's dump code goes; its HMP commands (dump/dump-hmp-cmds.c) stay: they
# call qmp_dump_guest_memory and qmp_query_dump, which the module defines.
rm -f "$q/dump/win_dump.h"
module_c=""
for f in "$tree"/dump/*.c; do
    b=$(basename "$f")
    # guestdump's HMP commands are written for guestdump's monitor.
    [ "$b" = dump-hmp-cmds.c ] && continue
    put "$f" "$q/dump/$b"
    module_c="$module_c 'dump/$b',"
done
for f in "$tree"/dump/*.h; do
    put "$f" "$q/dump/$(basename "$f")"
done
for b in arch_dump.c arch_memory_mapping.c; do
    put "$tree/target/i386/$b" "$q/target/i386/$b"
    module_c="$module_c 'target/i386/$b',"
done
# The module's headers have names QEMU does not use (sysemu/dump-core.h,
# dump-x86.h, dump-memory.h, dump-host.h): QEMU's sysemu/dump.h, dump-arch.h
# and memory_mapping.h stay, for stubs/dump.c and the other targets.
for f in "$tree"/include/sysemu/dump-*.h; do
    put "$f" "$q/include/sysemu/$(basename "$f")"
done

# QEMU's HMP dump-guest-memory calls the generated signature, which has
# guestdump's optional dump-level after format: QEMU's HMP passes it absent
# (QMP's dump-level works in QEMU through the schema).
sed 's/has_length, length, true, dump_format, &err);/has_length, length, true, dump_format, false, 0, \&err);/' \
    "$p/dump/dump-hmp-cmds.c" > "$tmp/hmp"
grep -q 'dump_format, false, 0, &err' "$tmp/hmp" || {
    echo "install-module.sh: QEMU's dump-hmp-cmds.c call not found" >&2; exit 1; }
put "$tmp/hmp" "$q/dump/dump-hmp-cmds.c"

# The dump schema goes through QEMU's own QAPI generator.
put "$tree/qapi/dump.json" "$q/qapi/dump.json"

# The glue: QEMU's implementation of sysemu/dump-host.h, and the headers
# that map the module's generated-QAPI includes to QEMU's generated files.
put "$glue/dump-host-qemu.c" "$q/dump/dump-host-qemu.c"
for f in "$glue"/include/*.h; do
    put "$f" "$q/dump/guestdump-include/$(basename "$f")"
done

# dump/meson.build builds the module as one library, each file with
# QEMU's osdep.h forced in first (QEMU's rule for every .c, which the
# module's files, shared with guestdump, cannot follow by themselves).
sed "s|@MODULE_SOURCES@|$module_c|" "$glue/meson.build.in" > "$tmp/meson.build"
put "$tmp/meson.build" "$q/dump/meson.build"

# The files the module replaces leave QEMU's own lists...
drop_lines "'arch_dump.c',\|'arch_memory_mapping.c'," target/i386/meson.build
# softmmu/memory_mapping.c served QEMU's dump.c (and the TPM PPI and s390
# storage keys, not in this x86 build without TPM); dump/dump-memory.c
# replaces it.
drop_lines "'memory_mapping.c'," softmmu/meson.build
# The x86 CPU's dump hooks (QEMU's per-target ELF note writers and page
# walk) were only called by QEMU's dump.c; the module has its own.
hooks="\.get_memory_mapping = x86_cpu_get_memory_mapping,"
hooks="$hooks\\|\.write_elf\\(32\\|64\\)_\\(qemu\\)\\?note = x86_cpu_write_elf"
drop_lines "$hooks" target/i386/cpu.c
