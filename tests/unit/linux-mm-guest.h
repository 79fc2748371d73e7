/*
 * A small synthetic Linux x86_64 guest for dump-level: 32 MiB of RAM with
 * kernel page tables, a SPARSEMEM_EXTREME mem_section array and a vmemmap
 * of 64-byte struct pages laid out as Linux 6.1 lays them out, described by
 * a VMCOREINFO text. Tests set struct pages and check what is excluded.
 */
#ifndef LINUX_MM_GUEST_H
#define LINUX_MM_GUEST_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "sysemu/dump-core.h"

#define LG_PS           4096u
#define LG_RAM_SIZE     (32u << 20)
#define LG_PAGES        (LG_RAM_SIZE / LG_PS)
#define LG_SECTION_BITS 24            /* 16 MiB sections: 4096 pfns each */
#define LG_DIRECT       0xffff888000000000ull
#define LG_PGD_PA       0x100000u     /* init_top_pgt */
#define LG_PUD_PA       0x101000u
#define LG_MEMMAP_PA    0x200000u     /* struct page of pfn 0 (vmemmap) */
#define LG_ROOTS_PA     0x300000u     /* mem_section: array of root pointers */
#define LG_SECTIONS_PA  0x301000u     /* root 0: struct mem_section[256] */
#define LG_PAGE_SIZE    64u           /* SIZE(page) */

/* Offsets in struct page (6.1's) and the numbers the VMCOREINFO gives. */
#define LG_OFF_FLAGS        0
#define LG_OFF_HEAD         8         /* compound_head (tail pages) */
#define LG_OFF_DTOR         16        /* compound_dtor (first tail) */
#define LG_OFF_ORDER        17        /* compound_order (first tail) */
#define LG_OFF_MAPPING      24
#define LG_OFF_PRIVATE      40
#define LG_OFF_MAPCOUNT     48
#define LG_OFF_REFCOUNT     52
#define LG_PG_SLAB          9
#define LG_PG_SWAPCACHE     10
#define LG_PG_PRIVATE       13
#define LG_PG_LRU           4
#define LG_PG_HEAD          16
#define LG_PG_SWAPBACKED    19
#define LG_PG_HWPOISON      22
#define LG_BUDDY            (-129)
#define LG_OFFLINE          (-257)
#define LG_HUGETLB_DTOR     2
#define LG_FREE_AREA        11

typedef struct LinuxMmGuest {
    uint8_t *ram;                     /* LG_RAM_SIZE bytes at guest-physical 0 */
    GString *vmcoreinfo;
    DumpPlan plan;
    uint8_t *note;
} LinuxMmGuest;

/* The guest with every struct page zero (kept at every level). */
LinuxMmGuest *lg_new(void);
void lg_free(LinuxMmGuest *g);
/* The struct page of pfn (in RAM). */
uint8_t *lg_page(LinuxMmGuest *g, uint64_t pfn);
void lg_set64(uint8_t *p, unsigned off, uint64_t v);
void lg_set32(uint8_t *p, unsigned off, uint32_t v);
/* Drops the VMCOREINFO line starting with key (e.g. "NUMBER(PG_lru)="). */
void lg_drop_key(LinuxMmGuest *g, const char *key);
/* Replaces (or adds) a VMCOREINFO line. */
void lg_set_key(LinuxMmGuest *g, const char *key, const char *value);
/* Builds g->plan (blocks, guest note) from the RAM and text as they are now. */
const DumpPlan *lg_plan(LinuxMmGuest *g);

#endif
