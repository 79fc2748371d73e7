/* Guest-physical blocks to dump and the (virtual -> physical) mapping list built from them. */
#ifndef SYSEMU_MEMORY_MAPPING_H
#define SYSEMU_MEMORY_MAPPING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qapi/error.h"

/*
 * A guest-physically contiguous run of RAM with one host mapping. Blocks
 * are sorted, never overlap, and may start or end mid-page.
 */
typedef struct GuestPhysBlock {
    uint64_t target_start;
    uint64_t target_end;          /* exclusive */
    uint8_t *host_addr;           /* host address of target_start */
} GuestPhysBlock;

typedef struct GuestPhysBlockList {
    size_t num;
    GuestPhysBlock *blocks;       /* num entries, ascending */
} GuestPhysBlockList;

/* Snapshot of the machine's RAM blocks, merged as QEMU 7.2 merges them. */
void guest_phys_blocks_collect(GuestPhysBlockList *list);
void guest_phys_blocks_free(GuestPhysBlockList *list);

typedef struct MemoryMapping {
    uint64_t phys_addr;
    uint64_t virt_addr;           /* 0: reported as p_vaddr = p_paddr */
    uint64_t length;
} MemoryMapping;

/* Mappings sorted by phys_addr (newest first among equal phys_addr). */
typedef struct MemoryMappingList MemoryMappingList;

MemoryMappingList *memory_mapping_list_new(void);
void memory_mapping_list_free(MemoryMappingList *list);
size_t memory_mapping_list_count(const MemoryMappingList *list);
/*
 * Iteration in list order: start with NULL, returns NULL after the last.
 */
const MemoryMapping *memory_mapping_list_next(const MemoryMappingList *list,
                                              const MemoryMapping *prev);

/* paging=false: one mapping per block, virt 0. */
void qemu_get_guest_simple_memory_mapping(MemoryMappingList *list,
                                          const GuestPhysBlockList *blocks);
/*
 * paging=true: walk the page tables of every vCPU from the first with paging
 * enabled; falls back to identity mappings when none has paging on. Work and
 * memory are bounded whatever the guest's tables claim (see the walker).
 */
bool qemu_get_guest_memory_mapping(MemoryMappingList *list,
                                   const GuestPhysBlockList *blocks,
                                   Error **errp);
/*
 * One guest-virtual address through the page tables env describes (its
 * cr0/cr3/cr4/efer select the mode, as for the walk). False when not
 * mapped or a table lies outside RAM. win-dmp reads guest-virtual memory
 * with this, using a copy of vCPU 0's state with the header's cr3.
 */
struct CPUX86State;
bool x86_virt_to_phys(const struct CPUX86State *env, uint64_t vaddr, uint64_t *paddr);

/* begin/length filter of the ELF writer (reference 3.3). */
void memory_mapping_filter(MemoryMappingList *list, int64_t begin, int64_t length);

#endif
