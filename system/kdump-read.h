/*
 * Reading kdump-compressed files (makedumpfile's diskdump format, raw or
 * flattened) for -restore and guestdump-convert.
 *
 * The reader is a front end of restore: it yields what an ELF vmcore's
 * PT_LOADs and PT_NOTEs give (runs of guest-physical pages, the ELF note
 * chunk) and the page contents, streamed. Memory stays bounded whatever the
 * file claims: bitmaps, descriptors and page data are read in windows of at
 * most KDUMP_READ_WINDOW bytes; only the runs (at most max_runs) and the
 * notes (at most KDUMP_READ_MAX_NOTES) are kept.
 */
#ifndef SYSTEM_KDUMP_READ_H
#define SYSTEM_KDUMP_READ_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "qapi/error.h"

#define KDUMP_READ_PAGE_SIZE 4096
#define KDUMP_READ_WINDOW    (1u << 20)
#define KDUMP_READ_MAX_NOTES (64u << 20)
/* Flattened records may place data up to here (the machine's RAM limit). */
#define KDUMP_READ_MAX_FLAT_SIZE (16ULL << 40)

/* Pages pfn .. pfn+count-1 are in the file (set in the second bitmap). */
typedef struct KdumpRun {
    uint64_t pfn;
    uint64_t count;
    uint64_t index;             /* the page descriptor of its first page */
} KdumpRun;

typedef struct KdumpReader KdumpReader;

/*
 * Validates a kdump file: the disk_dump_header and its sub header, every
 * offset and size against the file, both bitmaps (streamed), and that the
 * file holds a page descriptor for every page of the second bitmap. fd is
 * a regular file, not owned; a flattened file is reassembled first (into an
 * unlinked temporary file under g_get_tmp_dir()). Runs are split at the PC's
 * ISA ROM boundaries when that area is still ROM (see split_isa_rom() and
 * docs/machine.md); there may be at most max_runs of them.
 */
KdumpReader *kdump_reader_open(int fd, uint64_t max_runs, Error **errp);
void kdump_reader_free(KdumpReader *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdumpReader, kdump_reader_free)

/* True for the x86_64 header layout, false for the i386 one. */
bool kdump_reader_class64(const KdumpReader *r);
uint64_t kdump_reader_phys_base(const KdumpReader *r);
uint32_t kdump_reader_dump_level(const KdumpReader *r);
/* The page runs, sorted by pfn; their pages add up to *pages. */
const KdumpRun *kdump_reader_runs(const KdumpReader *r, size_t *count, uint64_t *pages);
/*
 * The ELF note chunk (CORE/QEMU notes per vCPU, then the guest's note), or
 * NULL with *len 0. A file whose notes lack VMCOREINFO but whose header
 * carries the VMCOREINFO text gets a "VMCOREINFO" note built from it.
 */
const uint8_t *kdump_reader_notes(const KdumpReader *r, size_t *len);

/* Called for each page holding a non-zero byte, in pfn order. */
typedef bool (*KdumpPageFn)(void *opaque, uint64_t pfn, const uint8_t *page,
                            Error **errp);
/* Reads and decompresses every page of the second bitmap. */
bool kdump_reader_read_pages(KdumpReader *r, KdumpPageFn fn, void *opaque,
                             Error **errp);

#endif
