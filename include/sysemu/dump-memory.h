/* The dump module's guest-physical blocks and the virtual -> physical mappings. */
#ifndef SYSEMU_DUMP_MEMORY_H
#define SYSEMU_DUMP_MEMORY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qapi/error.h"
#include "sysemu/dump-host.h"
#include "sysemu/dump-live.h"

/*
 * The module's names differ from QEMU's sysemu/dump-memory.h
 * (DumpGuestBlockList, DumpMappingList, dump_get_guest_memory_mapping ...)
 * because inside QEMU both exist: QEMU's own code and the glue keep using
 * QEMU's. DumpGuestBlock (sysemu/dump-host.h) is what the host reports.
 */
typedef struct DumpGuestBlockList {
    size_t num;
    DumpGuestBlock *blocks;       /* num entries, ascending */
    /*
     * A live dump's snapshot of the blocks' memory, else NULL. Every read
     * of guest RAM by the module goes through dump_guest_blocks_read (or
     * dump_plan_read_phys/_virt/_ram above it), which reads the snapshot.
     */
    DumpLive *live;
} DumpGuestBlockList;

/* Snapshot of the host's RAM blocks (dump_host_guest_blocks). */
void dump_guest_blocks_collect(DumpGuestBlockList *list);
void dump_guest_blocks_free(DumpGuestBlockList *list);

/* The block holding gpa, or NULL (a hole, MMIO). */
const DumpGuestBlock *dump_guest_blocks_find(const DumpGuestBlockList *list,
                                             uint64_t gpa);
/* Host pointer for [gpa, gpa+len) when it lies inside one block, else NULL. */
uint8_t *dump_guest_blocks_host_ptr(const DumpGuestBlockList *list, uint64_t gpa,
                                    uint64_t len);
/*
 * Guest RAM as the dump sees it: the snapshot's bytes for a live dump, RAM
 * otherwise. True and len bytes in buf when [gpa, gpa+len) is all RAM (it
 * may span blocks), else false and nothing copied.
 */
bool dump_guest_blocks_read(const DumpGuestBlockList *list, uint64_t gpa,
                            void *buf, uint64_t len);

/*
 * Where a writer that reads the blocks in ascending guest-physical order
 * stands: everything below it has been released (live dumps).
 */
typedef struct DumpReleaseCursor {
    size_t block;
    uint64_t addr;
} DumpReleaseCursor;

/*
 * A live dump's writer will read nothing below gpa again (it reads in
 * ascending order): the pages of the blocks between the cursor and gpa
 * lose their write protection and copies. Nothing without a live dump.
 */
void dump_guest_blocks_release_below(const DumpGuestBlockList *list,
                                     DumpReleaseCursor *c, uint64_t gpa);

/*
 * A live dump's writer will read nothing of [gpa, gpa+len) again: the
 * pages wholly inside lose their protection and copies. Nothing otherwise.
 */
void dump_guest_blocks_release(const DumpGuestBlockList *list, uint64_t gpa,
                               uint64_t len);

/* True when [gpa, gpa+len) is entirely in blocks (it may span several). */
bool dump_guest_blocks_is_ram(const DumpGuestBlockList *list, uint64_t gpa,
                              uint64_t len);

typedef struct DumpMapping {
    uint64_t phys_addr;
    uint64_t virt_addr;           /* 0: reported as p_vaddr = p_paddr */
    uint64_t length;
} DumpMapping;

/* Mappings sorted by phys_addr (newest first among equal phys_addr). */
typedef struct DumpMappingList DumpMappingList;

DumpMappingList *dump_mapping_list_new(void);
void dump_mapping_list_free(DumpMappingList *list);
size_t dump_mapping_list_count(const DumpMappingList *list);
/*
 * Iteration in list order: start with NULL, returns NULL after the last.
 */
const DumpMapping *dump_mapping_list_next(const DumpMappingList *list,
                                          const DumpMapping *prev);

/* paging=false: one mapping per block, virt 0. */
void dump_get_guest_simple_memory_mapping(DumpMappingList *list,
                                          const DumpGuestBlockList *blocks);
/*
 * paging=true: walk the page tables of every vCPU from the first with paging
 * enabled; falls back to identity mappings when none has paging on. vCPUs
 * whose walk inputs (X86WalkKey) equal an earlier vCPU's are not walked
 * again: the same tables give the same leaves (docs/compat.md difference 7).
 * Work and memory are bounded per dump whatever the guest's tables claim.
 */
bool dump_get_guest_memory_mapping(DumpMappingList *list,
                                   const DumpGuestBlockList *blocks,
                                   const DumpX86CPUState *cpus, int nr_cpus,
                                   Error **errp);
/*
 * The walk fails with "dump: cancelled" soon after *cancel becomes true
 * (it is checked for every page table), so a signal can end a long walk.
 */
void dump_mapping_list_set_cancel(DumpMappingList *list,
                                    const atomic_bool *cancel);
/*
 * Takes n page-table entries from the dump's walk budget (shared by all
 * vCPUs). False with errp set when the budget is spent or the walk was
 * cancelled.
 */
bool dump_mapping_walk_spend(DumpMappingList *list, uint64_t n, Error **errp);
/*
 * One guest-virtual address through the page tables env describes (its
 * cr0/cr3/cr4/efer select the mode, as for the walk). False when not
 * mapped or a table lies outside RAM. win-dmp reads guest-virtual memory
 * with this, using a copy of vCPU 0's state with the header's cr3.
 */
bool x86_virt_to_phys(const DumpGuestBlockList *blocks, const DumpX86CPUState *env,
                      uint64_t vaddr, uint64_t *paddr);

/*
 * Bounds of the paging=true walk, whatever the guest's tables claim: at most
 * this many separate mappings (each becomes a PT_LOAD; at most ~50 bytes of
 * memory during the walk, so under 64 MiB in all), at most this many merge
 * steps, and at most X86_WALK_MAX_ENTRIES page-table entries read, all for one dump (not per
 * vCPU, so 4096 vCPUs cannot multiply them). Beyond them the dump fails with
 * an error naming the limit.
 */
#define MEMORY_MAPPING_MAX_ENTRIES (1u << 20)
#define MEMORY_MAPPING_MAX_WORK (1ull << 27)
#define X86_WALK_MAX_ENTRIES (1ull << 26)

/*
 * QEMU's add/merge (reference 3.2): extends a mapping the range continues
 * or overlaps with the same virt-phys offset, else inserts a new one.
 * False (errp set) when a bound above is exceeded.
 */
bool dump_mapping_list_add_merge_sorted(DumpMappingList *list, uint64_t phys,
                                          uint64_t virt, uint64_t len,
                                          Error **errp);

/* Adds the leaves of env's page tables (nothing when CR0.PG is clear). */
bool x86_dump_get_memory_mapping(DumpMappingList *list,
                                 const DumpGuestBlockList *blocks,
                                 const DumpX86CPUState *env, Error **errp);

/*
 * Everything of a vCPU's state that the walk reads besides RAM: two vCPUs
 * with equal keys walk the same tables the same way. CR3's low bits (PCID),
 * and any state the walk ignores, are not part of it.
 */
typedef struct X86WalkKey {
    uint64_t root;                /* first table, masked as the walk masks it */
    uint64_t a20;
    uint32_t mode;                /* 0: paging off; else which walk, see .c */
} X86WalkKey;

void x86_dump_walk_key(const DumpX86CPUState *env, X86WalkKey *key);

/* begin/length filter of the ELF writer (reference 3.3). */
void dump_mapping_filter(DumpMappingList *list, int64_t begin, int64_t length);

#endif
