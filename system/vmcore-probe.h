/* What an input file is, by its first bytes: the formats restore reads, and the others. */
#ifndef SYSTEM_VMCORE_PROBE_H
#define SYSTEM_VMCORE_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qapi/error.h"

typedef enum VmcoreKind {
    VMCORE_KIND_ELF_CORE,       /* ELF ET_CORE: QEMU's, guestdump's, /proc/vmcore */
    VMCORE_KIND_KDUMP_RAW,      /* makedumpfile's "KDUMP   " disk_dump_header */
    VMCORE_KIND_KDUMP_FLAT,     /* the same in makedumpfile's flattened records */
    VMCORE_KIND_ELF_OTHER,      /* an ELF file that is not a core (program, object) */
    VMCORE_KIND_QEMU_MIGRATION, /* "QEVM": a migration stream or savevm state */
    VMCORE_KIND_WINDOWS_DUMP,   /* "PAGEDUMP" / "PAGEDU64" */
    VMCORE_KIND_EMPTY,
    VMCORE_KIND_NOT_REGULAR,    /* a FIFO, device, directory, socket */
    VMCORE_KIND_UNKNOWN,
} VmcoreKind;

/* Bytes vmcore_probe_bytes() looks at (fewer are fine: a short file). */
#define VMCORE_PROBE_BYTES 64

/* The kind of a file whose first len bytes are buf (len 0: empty). */
VmcoreKind vmcore_probe_bytes(const uint8_t *buf, size_t len);
/*
 * The kind of an open file: fstat, then its first bytes by pread (the
 * file offset is not moved). A read error is reported as UNKNOWN.
 */
VmcoreKind vmcore_probe_fd(int fd);
/*
 * One line saying what a file of this kind is and, for kinds that cannot
 * be read, what to do instead ("a QEMU migration stream or savevm file ...").
 */
const char *vmcore_kind_message(VmcoreKind kind);
/* True for the kinds restore (and so guestdump-convert) reads. */
bool vmcore_kind_readable(VmcoreKind kind);

/*
 * Reads len bytes at off of an input file of size bytes (both readers'
 * one bounds check): "<name> is truncated: <what> at offset ... is past
 * the end of the file" when the range leaves the file, "cannot read <what>
 * of the <name>: <strerror>" when the read fails. name: "vmcore", "kdump
 * file".
 */
/*
 * An unlinked temporary file in $TMPDIR (g_get_tmp_dir) for a reader's
 * scratch data; -1 and "cannot create a temporary file in DIR to <why>".
 */
int vmcore_tmpfile(const char *why, Error **errp);

bool vmcore_pread(int fd, uint64_t size, uint64_t off, void *buf, uint64_t len,
                  const char *name, const char *what, Error **errp);

#endif
