/* Fuzz target: dump-level's VMCOREINFO parsing and struct page classifier over hostile guest data. */
#include <string.h>

#include <glib.h>

#include "fuzz.h"
#include "sysemu/dump-core.h"
#include "../unit/linux-mm-guest.h"

/*
 * The synthetic Linux guest of tests/unit/linux-mm-guest.c (32 MiB, page
 * tables, mem_section, vmemmap), built once; each input patches it and the
 * patches are undone afterwards.
 */
static LinuxMmGuest *guest;
static uint8_t *pristine;
static char *pristine_text;

/* Where patches land: the structures the classifier follows, or anywhere. */
static const struct {
    uint32_t start, size;
} regions[] = {
    { LG_MEMMAP_PA, LG_PAGES * LG_PAGE_SIZE },   /* struct pages */
    { LG_ROOTS_PA, 0x2000 },                     /* mem_section roots + sections */
    { LG_PGD_PA, 0x2000 },                       /* page tables */
    { 0, LG_RAM_SIZE },                          /* anywhere */
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    guest = lg_new();
    pristine = g_memdup2(guest->ram, LG_RAM_SIZE);
    pristine_text = g_strdup(guest->vmcoreinfo->str);
    return 0;
}

/*
 * Input: level (1 byte, & 31), the length of extra VMCOREINFO text (2
 * bytes) and that text (its lines come first, so they override the
 * guest's), then patches to the guest's RAM until the input ends: region
 * (1 byte, of regions[] modulo 4), offset in it (4 bytes, modulo its size),
 * length (1 byte) and that many bytes.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GArray *undo = g_array_new(FALSE, FALSE, sizeof(uint32_t) * 2);
    int level;
    size_t text_len;
    DumpLinuxMm *mm = NULL;
    DumpPageFilter *f = NULL;
    Error *err = NULL;
    const DumpPlan *s;

    if (!guest) {
        LLVMFuzzerInitialize(NULL, NULL);
    }
    level = fuzz_take(&data, &size, 1) & 31;
    text_len = fuzz_take(&data, &size, 2);
    text_len = MIN(text_len, size);
    g_string_assign(guest->vmcoreinfo, "");
    g_string_append_len(guest->vmcoreinfo, (const char *)data, text_len);
    g_string_append(guest->vmcoreinfo, pristine_text);
    data += text_len;
    size -= text_len;
    while (size >= 6) {
        unsigned r = fuzz_take(&data, &size, 1) % G_N_ELEMENTS(regions);
        uint32_t off = fuzz_take(&data, &size, 4) % regions[r].size;
        uint32_t len = fuzz_take(&data, &size, 1);
        uint32_t at = regions[r].start + off;
        uint32_t span[2];

        len = MIN(len, size);
        len = MIN(len, LG_RAM_SIZE - at);
        memcpy(guest->ram + at, data, len);
        span[0] = at;
        span[1] = len;
        g_array_append_val(undo, span);
        data += len;
        size -= len;
    }

    s = lg_plan(guest);
    if (dump_linux_mm_parse(s, level, &mm, &err)) {
        uint64_t max_pfn = MIN(dump_linux_mm_max_pfn(mm), (uint64_t)LG_PAGES);

        f = dump_filter_classify(s, mm, level, max_pfn, NULL, &err);
        if (f) {
            uint64_t n = 0;

            /* Nothing at or past max_pfn, and the counts add up. */
            g_assert(!dump_filter_excluded(f, max_pfn));
            for (uint64_t pfn = 0; pfn < max_pfn; pfn++) {
                n += dump_filter_excluded(f, pfn);
            }
            g_assert_cmpuint(n, ==, f->n_cache + f->n_cache_private + f->n_user +
                             f->n_free + f->n_hwpoison + f->n_offline);
            fuzz_verbose("level %d: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                         " pfns excluded\n", level, n, max_pfn);
        }
    } else {
        /* A refused level never leaves a layout behind. */
        g_assert(mm == NULL);
    }
    if (err) {
        fuzz_verbose("level %d: %s\n", level, error_get_pretty(err));
        error_free(err);
    }
    dump_filter_free(f);
    dump_linux_mm_free(mm);
    for (guint i = 0; i < undo->len; i++) {
        uint32_t *span = &g_array_index(undo, uint32_t, 2 * i);

        memcpy(guest->ram + span[0], pristine + span[0], span[1]);
    }
    g_array_free(undo, TRUE);
    return 0;
}
