/* Helpers of the kdump tests: guests in memory or from an ELF vmcore; writer runs. */
#ifndef TEST_KDUMP_UTIL_H
#define TEST_KDUMP_UTIL_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "sysemu/dump-core.h"

typedef struct KdumpTestGuest {
    DumpGuestBlockList blocks;
    GPtrArray *mem;                 /* owned host memory of the blocks */
    GByteArray *notes;              /* CORE.., QEMU.., guest note */
    size_t guest_note_offset;       /* in notes; size 0 when none */
    size_t guest_note_size;
    int nr_cpus;
    int d_class;                    /* ELFCLASS64 / ELFCLASS32 */
    uint64_t phys_base;
} KdumpTestGuest;

KdumpTestGuest *kdump_test_guest_new(void);
void kdump_test_guest_free(KdumpTestGuest *g);
/* Appends a block of size bytes at gpa; returns its (zeroed) memory. */
uint8_t *kdump_test_guest_add_block(KdumpTestGuest *g, uint64_t gpa, uint64_t size);
/* Appends an ELF note; guest=true marks it as the guest (vmcoreinfo) note. */
void kdump_test_guest_add_note(KdumpTestGuest *g, const char *name, uint32_t type,
                               const void *desc, size_t descsz, bool guest);
/*
 * The guest state a paging=false ELF vmcore records: its PT_LOADs become
 * blocks, its PT_NOTE the notes (the last note not named CORE or QEMU is
 * the guest note), its CORE notes the vCPU count.
 */
KdumpTestGuest *kdump_test_guest_from_elf(const char *path, GError **gerr);

/* Fills text-like, random and zero pages from seed (deterministic). */
void kdump_test_fill_mix(uint8_t *mem, size_t size, size_t page_size, uint32_t seed);

/*
 * Runs the kdump writer over g into path: flag selects the codec, raw the
 * non-flattened file. Returns false with the writer's error in *msg.
 */
bool kdump_test_write(KdumpTestGuest *g, uint32_t flag, bool raw, int threads,
                      const char *path, char **msg);
/* >= 0: the next writes use this dump-level (the plan's VMCOREINFO parsed). */
extern int kdump_test_dump_level;
/* Set: the next write starts with DumpJob.cancel set (as quit does). */
extern bool kdump_test_cancel;
/* Same, into an already open fd (a pipe, say) for a flattened dump. */
bool kdump_test_write_fd(KdumpTestGuest *g, uint32_t flag, bool raw, int threads,
                         int fd, bool seekable, char **msg);

/* A flattened file reassembled as makedumpfile -R does; NULL if malformed. */
GByteArray *kdump_test_reassemble(const uint8_t *flat, size_t len);

/* The positioned writes in a flattened file, as (offset, size) pairs. */
GArray *kdump_test_flat_records(const uint8_t *flat, size_t len);

/* argv[0] found in PATH (or an absolute path that exists); else NULL. */
char *kdump_test_find_program(const char *name);

#endif
