/* The synthetic Linux guest of the dump-level tests (linux-mm-guest.h). */
#include <elf.h>
#include <string.h>

#include "linux-mm-guest.h"

void lg_set64(uint8_t *p, unsigned off, uint64_t v)
{
    v = GUINT64_TO_LE(v);
    memcpy(p + off, &v, 8);
}

void lg_set32(uint8_t *p, unsigned off, uint32_t v)
{
    v = GUINT32_TO_LE(v);
    memcpy(p + off, &v, 4);
}

uint8_t *lg_page(LinuxMmGuest *g, uint64_t pfn)
{
    g_assert_cmpuint(pfn, <, LG_PAGES);
    return g->ram + LG_MEMMAP_PA + pfn * LG_PAGE_SIZE;
}

LinuxMmGuest *lg_new(void)
{
    LinuxMmGuest *g = g_new0(LinuxMmGuest, 1);
    unsigned pml4_index = (LG_DIRECT >> 39) & 511;
    uint64_t nr_roots;

    g->ram = g_malloc0(LG_RAM_SIZE);
    /* The direct map: one 1 GiB page at LG_DIRECT for guest-physical 0. */
    lg_set64(g->ram + LG_PGD_PA, pml4_index * 8, LG_PUD_PA | 0x3);
    lg_set64(g->ram + LG_PUD_PA, 0, 0x0 | 0x83);
    /* Both sections present with a mem_map; vmemmap coded as Linux codes it. */
    lg_set64(g->ram + LG_ROOTS_PA, 0, LG_DIRECT + LG_SECTIONS_PA);
    for (unsigned nr = 0; nr < LG_RAM_SIZE >> LG_SECTION_BITS; nr++) {
        lg_set64(g->ram + LG_SECTIONS_PA, nr * 16, (LG_DIRECT + LG_MEMMAP_PA) | 0x3);
    }
    nr_roots = ((1ull << (46 - LG_SECTION_BITS)) + 255) / 256;
    g->vmcoreinfo = g_string_new(NULL);
    g_string_append_printf(g->vmcoreinfo,
        "OSRELEASE=6.1.0-synthetic\n"
        "PAGESIZE=4096\n"
        "SYMBOL(init_top_pgt)=%llx\n"
        "SYMBOL(mem_section)=%llx\n"
        "LENGTH(mem_section)=%llu\n"
        "SIZE(mem_section)=16\n"
        "OFFSET(mem_section.section_mem_map)=0\n"
        "SIZE(page)=%u\n"
        "OFFSET(page.flags)=%u\n"
        "OFFSET(page._refcount)=%u\n"
        "OFFSET(page.mapping)=%u\n"
        "OFFSET(page.lru)=8\n"
        "OFFSET(page._mapcount)=%u\n"
        "OFFSET(page.private)=%u\n"
        "OFFSET(page.compound_dtor)=%u\n"
        "OFFSET(page.compound_order)=%u\n"
        "OFFSET(page.compound_head)=%u\n"
        "LENGTH(zone.free_area)=%u\n"
        "NUMBER(SECTION_SIZE_BITS)=%u\n"
        "NUMBER(MAX_PHYSMEM_BITS)=46\n"
        "NUMBER(PG_lru)=%u\n"
        "NUMBER(PG_private)=%u\n"
        "NUMBER(PG_swapcache)=%u\n"
        "NUMBER(PG_swapbacked)=%u\n"
        "NUMBER(PG_slab)=%u\n"
        "NUMBER(PG_hwpoison)=%u\n"
        "NUMBER(PG_head_mask)=%u\n"
        "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=%d\n"
        "NUMBER(HUGETLB_PAGE_DTOR)=%u\n"
        "NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=%d\n"
        "NUMBER(phys_base)=0\n"
        "NUMBER(pgtable_l5_enabled)=0\n"
        "KERNELOFFSET=0\n",
        0xffffffff80000000ull + LG_PGD_PA, LG_DIRECT + LG_ROOTS_PA,
        (unsigned long long)nr_roots, LG_PAGE_SIZE, LG_OFF_FLAGS,
        LG_OFF_REFCOUNT, LG_OFF_MAPPING, LG_OFF_MAPCOUNT, LG_OFF_PRIVATE,
        LG_OFF_DTOR, LG_OFF_ORDER, LG_OFF_HEAD, LG_FREE_AREA, LG_SECTION_BITS,
        LG_PG_LRU, LG_PG_PRIVATE, LG_PG_SWAPCACHE, LG_PG_SWAPBACKED, LG_PG_SLAB,
        LG_PG_HWPOISON, 1u << LG_PG_HEAD, LG_BUDDY, LG_HUGETLB_DTOR, LG_OFFLINE);
    /* Every page starts as an ordinary kernel page: _mapcount -1. */
    for (uint64_t pfn = 0; pfn < LG_PAGES; pfn++) {
        lg_set32(lg_page(g, pfn), LG_OFF_MAPCOUNT, 0xffffffffu);
    }
    return g;
}

void lg_free(LinuxMmGuest *g)
{
    g_free(g->ram);
    g_free(g->plan.guest_phys_blocks.blocks);
    g_free(g->note);
    g_string_free(g->vmcoreinfo, TRUE);
    g_free(g);
}

void lg_drop_key(LinuxMmGuest *g, const char *key)
{
    char *at = strstr(g->vmcoreinfo->str, key);

    if (at && (at == g->vmcoreinfo->str || at[-1] == '\n')) {
        char *nl = strchr(at, '\n');
        size_t pos = at - g->vmcoreinfo->str;

        g_string_erase(g->vmcoreinfo, pos, nl ? nl - at + 1 : -1);
    }
}

void lg_set_key(LinuxMmGuest *g, const char *key, const char *value)
{
    lg_drop_key(g, key);
    g_string_prepend(g->vmcoreinfo, "\n");
    g_string_prepend(g->vmcoreinfo, value);
    g_string_prepend(g->vmcoreinfo, key);
}

const DumpPlan *lg_plan(LinuxMmGuest *g)
{
    DumpPlan *s = &g->plan;
    uint32_t namesz = sizeof("VMCOREINFO"), descsz = g->vmcoreinfo->len, type = 0;
    size_t len = 12 + 12 + ((descsz + 3) & ~3u);

    g_free(s->guest_phys_blocks.blocks);
    g_free(g->note);
    memset(s, 0, sizeof(*s));
    s->guest_phys_blocks.num = 1;
    s->guest_phys_blocks.blocks = g_new0(DumpGuestBlock, 1);
    s->guest_phys_blocks.blocks[0] = (DumpGuestBlock){
        .target_start = 0, .target_end = LG_RAM_SIZE, .host_addr = g->ram,
    };
    s->dump_info = (DumpArchInfo){
        .d_machine = EM_X86_64, .d_endian = ELFDATA2LSB, .d_class = ELFCLASS64,
        .page_size = LG_PS, .phys_base = 0,
    };
    g->note = g_malloc0(len);
    memcpy(g->note, &namesz, 4);
    memcpy(g->note + 4, &descsz, 4);
    memcpy(g->note + 8, &type, 4);
    memcpy(g->note + 12, "VMCOREINFO", sizeof("VMCOREINFO"));
    memcpy(g->note + 24, g->vmcoreinfo->str, descsz);
    s->guest_note = g->note;
    s->guest_note_size = len;
    return s;
}
