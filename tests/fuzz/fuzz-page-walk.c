/* Fuzz target: x86 page-table walk over hostile guest RAM and control registers. */
#include <string.h>

#include <glib.h>

#include "fuzz.h"
#include "sysemu/dump-memory.h"
#include "sysemu/physmem.h"
#include "target/i386/cpu.h"

/*
 * RAM the tables may live in. Small, so most fuzzed pointers land inside it;
 * a second block above 4 GiB makes PAE/long-mode pointers there meaningful.
 */
#define WALK_LOW_RAM (256u << 10)
#define WALK_HIGH_GPA (4ull << 30)
#define WALK_HIGH_RAM (64u << 10)

/*
 * Input: flags (1 byte), cr0, cr3, cr4, efer (8 bytes each), begin and
 * length for the filter (8 each), then the image of low RAM from 0; bytes
 * past WALK_LOW_RAM go to the high block.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CPUX86State env = { 0 };
    DumpGuestBlockList blocks;
    DumpMappingList *list;
    const DumpMapping *m = NULL;
    Error *err = NULL;
    uint8_t flags;
    int64_t begin, length;
    size_t low;

    flags = fuzz_take(&data, &size, 1);
    env.cr[0] = fuzz_take(&data, &size, 8) | (flags & 1 ? CR0_PG_MASK : 0);
    env.cr[3] = fuzz_take(&data, &size, 8);
    env.cr[4] = fuzz_take(&data, &size, 8);
    env.efer = fuzz_take(&data, &size, 8);
    env.a20_mask = flags & 2 ? ~0u : ~(1u << 20);
    begin = fuzz_take(&data, &size, 8);
    length = fuzz_take(&data, &size, 8);

    physmem_reset();
    g_assert(physmem_add_block("pc.ram", 0, WALK_LOW_RAM, NULL, false, 0, NULL));
    g_assert(physmem_add_block("pc.ram", WALK_HIGH_GPA, WALK_HIGH_RAM, NULL, false, 0,
                               NULL));
    low = MIN(size, WALK_LOW_RAM);
    g_assert(physmem_write(0, data, low, NULL));
    g_assert(physmem_write(WALK_HIGH_GPA, data + low, MIN(size - low, WALK_HIGH_RAM),
                           NULL));

    dump_guest_blocks_collect(&blocks);
    list = dump_mapping_list_new();
    if (!x86_dump_get_memory_mapping(list, &blocks, &env, &err)) {
        /* Only a bound may stop the walk, and it must say which. */
        g_assert(err && strstr(error_get_pretty(err), "use paging=false"));
        error_free(err);
        err = NULL;
    }
    /* The list's promises: sorted by phys_addr, no empty mapping. */
    while ((m = dump_mapping_list_next(list, m))) {
        const DumpMapping *next = dump_mapping_list_next(list, m);

        g_assert(m->length);
        g_assert(!next || next->phys_addr >= m->phys_addr);
    }
    if (flags & 4) {
        dump_mapping_filter(list, begin, length);
    }
    /*
     * The walker and the single translation read the same tables: where the
     * walk says a virtual address starts a mapping, translation must agree.
     */
    m = NULL;
    for (int i = 0; i < 64 && (m = dump_mapping_list_next(list, m)); i++) {
        uint64_t pa;

        if (m->virt_addr) {
            g_assert(x86_virt_to_phys(&blocks, &env, m->virt_addr, &pa));
            g_assert(pa == m->phys_addr);
        }
    }
    {
        uint64_t pa;

        x86_virt_to_phys(&blocks, &env, (uint64_t)begin, &pa);
        x86_virt_to_phys(&blocks, &env, (uint64_t)length, &pa);
    }
    dump_mapping_list_free(list);
    dump_guest_blocks_free(&blocks);
    physmem_reset();
    return 0;
}
