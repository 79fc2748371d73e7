/*
 * dump-level: which pages of a Linux guest makedumpfile's -d bits leave
 * out, decided from the guest's own page structures (dump/dump-filter.c).
 */
#ifndef SYSEMU_DUMP_FILTER_H
#define SYSEMU_DUMP_FILTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qapi/error.h"

/* makedumpfile's -d bits. */
#define DUMP_LEVEL_ZERO         1    /* pages filled with zeros */
#define DUMP_LEVEL_CACHE        2    /* cache pages without private data */
#define DUMP_LEVEL_CACHE_PRI    4    /* cache pages with or without private data */
#define DUMP_LEVEL_USER         8    /* anonymous and hugetlbfs pages */
#define DUMP_LEVEL_FREE         16   /* free pages (buddy allocator) */
#define DUMP_LEVEL_MAX          31

/* The bits that need the guest's page structures. */
#define DUMP_LEVEL_NEEDS_MM \
    (DUMP_LEVEL_CACHE | DUMP_LEVEL_CACHE_PRI | DUMP_LEVEL_USER | DUMP_LEVEL_FREE)

typedef struct DumpPlan DumpPlan;

/*
 * What the classifier knows about the guest's memory layout, parsed from
 * its VMCOREINFO note: sizes, offsets, numbers and symbols makedumpfile
 * uses. Built with the guest paused, read-only afterwards.
 */
typedef struct DumpLinuxMm DumpLinuxMm;

/*
 * Parses the plan's guest note for dump-level `level` (0-31).
 * - level has a bit of DUMP_LEVEL_NEEDS_MM: the note must be a Linux
 *   x86_64 VMCOREINFO with every field the level needs, else false with
 *   an error naming what is missing.
 * - otherwise (0, 1): makedumpfile still reads the layout (max_mapnr is
 *   trimmed) and drops hwpoison and offline pages when the kernel has
 *   PG_hwpoison; *mm is set when the note has all it takes for that, NULL
 *   (and true) when not.
 * The mem_section array is read here (the guest is paused); the struct
 * pages later, by dump_filter_classify.
 */
bool dump_linux_mm_parse(const DumpPlan *plan, int level, DumpLinuxMm **mm,
                         Error **errp);
void dump_linux_mm_free(DumpLinuxMm *mm);
/*
 * makedumpfile trims max_mapnr to the end of the last memory section the
 * kernel has a mem_map for (RAM it does not use, e.g. the BIOS ROM at
 * 4 GiB, is then not in the dump): that end, or UINT64_MAX without mm.
 */
uint64_t dump_linux_mm_max_pfn(const DumpLinuxMm *mm);

/*
 * The pfns to leave out: one bit per pfn below max_pfn, set when excluded.
 */
typedef struct DumpPageFilter {
    uint64_t max_pfn;
    uint64_t *excluded;           /* (max_pfn + 63) / 64 words */
    /* What was left out, by makedumpfile's class (for tests and logs). */
    uint64_t n_cache, n_cache_private, n_user, n_free, n_hwpoison, n_offline;
} DumpPageFilter;

/*
 * Walks the guest's struct pages (read through the plan's page source,
 * dump_plan_read_virt, with the kernel's own page tables) and marks what
 * makedumpfile -d level would exclude. Work is O(max_pfn) whatever the
 * guest's data; a mem_section or struct page that cannot be read fails
 * with an error naming it. *cancel (may be NULL) stops it with
 * "dump: cancelled".
 */
DumpPageFilter *dump_filter_classify(const DumpPlan *plan, const DumpLinuxMm *mm,
                                     int level, uint64_t max_pfn,
                                     const atomic_bool *cancel, Error **errp);
void dump_filter_free(DumpPageFilter *f);

static inline bool dump_filter_excluded(const DumpPageFilter *f, uint64_t pfn)
{
    return f && pfn < f->max_pfn && (f->excluded[pfn / 64] >> (pfn % 64)) & 1;
}

#endif
