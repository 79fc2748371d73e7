/*
 * dump-level: the classifier over a synthetic Linux guest's struct pages
 * (each makedumpfile class, compound pages, buddy orders, hostile data,
 * missing VMCOREINFO fields) and the kdump writer's bitmaps and header.
 */
#include <elf.h>
#include <string.h>
#include <unistd.h>

#include "dump/dump-compress.h"
#include "linux-mm-guest.h"
#include "test-kdump-util.h"

#define FLAG(bit) (1ull << (bit))

/* No error expected: a set one fails the test where it is checked. */
static Error *err_abort;

/* Pages of each class, set by setup_classes(). */
enum {
    P_CACHE = 100,              /* LRU, file mapping: levels 2, 4 */
    P_CACHE_PRIV = 101,         /* LRU + PG_private: level 4 only */
    P_SWAPCACHE = 102,          /* swapcache + swapbacked, file mapping: 2, 4 */
    P_SWAPCACHE_NOBACK = 103,   /* swapcache without swapbacked: kept */
    P_ANON = 110,               /* mapping | 1, LRU: 8 (not 2/4: anonymous) */
    P_BUDDY = 120,              /* order 2 free block 120..123: 16 */
    P_BUDDY_SLAB = 130,         /* _mapcount says buddy, but PG_slab: kept */
    P_BUDDY_BAD = 131,          /* buddy order 40 >= LENGTH(free_area): kept */
    P_HWPOISON = 140,           /* every level */
    P_OFFLINE = 141,            /* every level */
    P_COMPOUND = 256,           /* anon head of order 3, 256..263: 8 */
    P_HUGETLB = 272,            /* hugetlb head order 1 (not anon): 8, 2 pages */
    P_EDGE = 1023,              /* head bits at index 511: order ignored */
    P_BADORDER = 1280,          /* head with order 70: as order 0 */
    P_TAIL_KEEP = 1536,         /* a kept compound page: tails stay */
    P_BUDDY_BIG = 4000,         /* order 10 free block crossing section 0's end */
};

static void setup_classes(LinuxMmGuest *g)
{
    uint8_t *p;

    lg_set64(lg_page(g, P_CACHE), LG_OFF_FLAGS, FLAG(LG_PG_LRU));
    lg_set64(lg_page(g, P_CACHE), LG_OFF_MAPPING, LG_DIRECT + 0x5000);
    lg_set64(lg_page(g, P_CACHE_PRIV), LG_OFF_FLAGS,
             FLAG(LG_PG_LRU) | FLAG(LG_PG_PRIVATE));
    lg_set64(lg_page(g, P_SWAPCACHE), LG_OFF_FLAGS,
             FLAG(LG_PG_SWAPCACHE) | FLAG(LG_PG_SWAPBACKED));
    lg_set64(lg_page(g, P_SWAPCACHE_NOBACK), LG_OFF_FLAGS, FLAG(LG_PG_SWAPCACHE));
    lg_set64(lg_page(g, P_ANON), LG_OFF_FLAGS, FLAG(LG_PG_LRU) | FLAG(LG_PG_SWAPBACKED));
    lg_set64(lg_page(g, P_ANON), LG_OFF_MAPPING, LG_DIRECT + 0x6001);

    lg_set32(lg_page(g, P_BUDDY), LG_OFF_MAPCOUNT, (uint32_t)LG_BUDDY);
    lg_set64(lg_page(g, P_BUDDY), LG_OFF_PRIVATE, 2);
    lg_set64(lg_page(g, P_BUDDY_SLAB), LG_OFF_FLAGS, FLAG(LG_PG_SLAB));
    lg_set32(lg_page(g, P_BUDDY_SLAB), LG_OFF_MAPCOUNT, (uint32_t)LG_BUDDY);
    lg_set32(lg_page(g, P_BUDDY_BAD), LG_OFF_MAPCOUNT, (uint32_t)LG_BUDDY);
    lg_set64(lg_page(g, P_BUDDY_BAD), LG_OFF_PRIVATE, 40);

    lg_set64(lg_page(g, P_HWPOISON), LG_OFF_FLAGS, FLAG(LG_PG_HWPOISON));
    lg_set32(lg_page(g, P_OFFLINE), LG_OFF_MAPCOUNT, (uint32_t)LG_OFFLINE);

    /* An anonymous compound page: the order is in the first tail. */
    lg_set64(lg_page(g, P_COMPOUND), LG_OFF_FLAGS, FLAG(LG_PG_HEAD));
    lg_set64(lg_page(g, P_COMPOUND), LG_OFF_MAPPING, LG_DIRECT + 0x7001);
    for (unsigned i = 1; i < 8; i++) {
        lg_set64(lg_page(g, P_COMPOUND + i), LG_OFF_HEAD,
                 (LG_DIRECT + LG_MEMMAP_PA + P_COMPOUND * 64) | 1);
    }
    lg_page(g, P_COMPOUND + 1)[LG_OFF_ORDER] = 3;

    lg_set64(lg_page(g, P_HUGETLB), LG_OFF_FLAGS, FLAG(LG_PG_HEAD));
    p = lg_page(g, P_HUGETLB + 1);
    lg_set64(p, LG_OFF_HEAD, 1);
    p[LG_OFF_ORDER] = 1;
    p[LG_OFF_DTOR] = LG_HUGETLB_DTOR;

    /* Index 511 of a 512-page chunk: makedumpfile does not look at the next one. */
    lg_set64(lg_page(g, P_EDGE), LG_OFF_FLAGS, FLAG(LG_PG_HEAD));
    lg_set64(lg_page(g, P_EDGE), LG_OFF_MAPPING, 1);
    lg_page(g, P_EDGE + 1)[LG_OFF_ORDER] = 1;

    lg_set64(lg_page(g, P_BADORDER), LG_OFF_FLAGS, FLAG(LG_PG_HEAD));
    lg_set64(lg_page(g, P_BADORDER), LG_OFF_MAPPING, 1);
    lg_page(g, P_BADORDER + 1)[LG_OFF_ORDER] = 70;

    /* A kept compound page (kernel): tails (compound_head & 1) are not looked at. */
    lg_set64(lg_page(g, P_TAIL_KEEP), LG_OFF_FLAGS, FLAG(LG_PG_HEAD));
    lg_page(g, P_TAIL_KEEP + 1)[LG_OFF_ORDER] = 1;
    lg_set64(lg_page(g, P_TAIL_KEEP + 1), LG_OFF_HEAD, 1);
    lg_set64(lg_page(g, P_TAIL_KEEP + 1), LG_OFF_MAPPING, 1);

    /* 4000 is not aligned to 1024: an odd buddy, excluded as the kernel says. */
    lg_set32(lg_page(g, P_BUDDY_BIG), LG_OFF_MAPCOUNT, (uint32_t)LG_BUDDY);
    lg_set64(lg_page(g, P_BUDDY_BIG), LG_OFF_PRIVATE, 10);
}

/* What makedumpfile -d level excludes in setup_classes()' guest. */
static bool expect_excluded(int level, uint64_t pfn)
{
    bool cache = level & 2, cache_pri = level & 4, user = level & 8, free = level & 16;

    switch (pfn) {
    case P_CACHE:
    case P_SWAPCACHE:
        return cache || cache_pri;
    case P_CACHE_PRIV:
        return cache_pri;
    case P_ANON:
    case P_EDGE:
    case P_BADORDER:
        return user;
    case P_HWPOISON:
    case P_OFFLINE:
        return true;
    }
    if (pfn >= P_BUDDY && pfn < P_BUDDY + 4) {
        return free;
    }
    if (pfn >= P_COMPOUND && pfn < P_COMPOUND + 8) {
        return user;
    }
    if (pfn >= P_HUGETLB && pfn < P_HUGETLB + 2) {
        return user;
    }
    if (pfn >= P_BUDDY_BIG && pfn < P_BUDDY_BIG + 1024) {
        return free;
    }
    return false;
}

static void test_levels(void)
{
    static const int levels[] = { 0, 1, 2, 4, 6, 8, 16, 31 };
    LinuxMmGuest *g = lg_new();

    setup_classes(g);
    for (size_t i = 0; i < G_N_ELEMENTS(levels); i++) {
        int level = levels[i];
        const DumpPlan *s = lg_plan(g);
        DumpLinuxMm *mm = NULL;
        DumpPageFilter *f;
        Error *err = NULL;
        uint64_t n = 0, want = 0;

        g_assert_true(dump_linux_mm_parse(s, level, &mm, &err));
        g_assert_null(err);
        g_assert_nonnull(mm);
        g_assert_cmpuint(dump_linux_mm_max_pfn(mm), ==, LG_PAGES);
        f = dump_filter_classify(s, mm, level, LG_PAGES, NULL, &err);
        g_assert_null(err);
        g_assert_nonnull(f);
        for (uint64_t pfn = 0; pfn < LG_PAGES; pfn++) {
            bool got = dump_filter_excluded(f, pfn), exp = expect_excluded(level, pfn);

            if (got != exp) {
                g_test_message("level %d pfn %" G_GUINT64_FORMAT ": excluded %d, "
                               "expected %d", level, pfn, got, exp);
            }
            g_assert_cmpint(got, ==, exp);
            n += got;
            want += exp;
        }
        g_assert_cmpuint(n, ==, want);
        g_assert_cmpuint(f->n_hwpoison, ==, 1);
        g_assert_cmpuint(f->n_offline, ==, 1);
        g_assert_cmpuint(f->n_free, ==, (level & 16) ? 4 + 1024 : 0);
        g_assert_cmpuint(f->n_cache_private, ==,
                         (level & 4) ? 1 : 0);
        dump_filter_free(f);
        dump_linux_mm_free(mm);
    }
    lg_free(g);
}

static void expect_error(LinuxMmGuest *g, int level, const char *text)
{
    const DumpPlan *s = lg_plan(g);
    DumpLinuxMm *mm = NULL;
    Error *err = NULL;
    DumpPageFilter *f = NULL;

    if (dump_linux_mm_parse(s, level, &mm, &err)) {
        f = dump_filter_classify(s, mm, level, LG_PAGES, NULL, &err);
        g_assert_null(f);
    }
    g_assert_nonnull(err);
    g_test_message("level %d: %s", level, error_get_pretty(err));
    g_assert_nonnull(strstr(error_get_pretty(err), text));
    error_free(err);
    dump_linux_mm_free(mm);
}

/* A level that needs struct pages names the first VMCOREINFO field it lacks. */
static void test_missing(void)
{
    static const struct {
        const char *key;
        int level;
    } cases[] = {
        { "SYMBOL(mem_section)", 2 },
        { "SIZE(page)", 8 },
        { "OFFSET(page.flags)", 16 },
        { "NUMBER(PG_head_mask)", 31 },
        { "NUMBER(PG_slab)", 8 },
        { "NUMBER(PG_lru)", 2 },
        { "NUMBER(PG_private)", 4 },
        { "NUMBER(PG_swapcache)", 6 },
        { "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)", 16 },
        { "OFFSET(page.private)", 16 },
        { "LENGTH(zone.free_area)", 16 },
        { "OSRELEASE", 31 },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        LinuxMmGuest *g = lg_new();
        g_autofree char *key = g_strconcat(cases[i].key, "=", NULL);
        g_autofree char *text = g_strdup_printf("dump-level %d needs %s",
                                                cases[i].level, cases[i].key);

        lg_drop_key(g, key);
        expect_error(g, cases[i].level, text);
        /* Levels 0 and 1 need nothing: every page, no error. */
        {
            DumpLinuxMm *mm = NULL;
            Error *err = NULL;

            g_assert_true(dump_linux_mm_parse(lg_plan(g), 1, &mm, &err));
            dump_linux_mm_free(mm);
        }
        lg_free(g);
    }
}

/* No VMCOREINFO (or not Linux's): levels 0-1 dump everything, the rest refuse. */
static void test_no_vmcoreinfo(void)
{
    LinuxMmGuest *g = lg_new();
    DumpPlan s = *lg_plan(g);
    DumpLinuxMm *mm = NULL;
    Error *err = NULL;

    s.guest_note = NULL;
    s.guest_note_size = 0;
    g_assert_true(dump_linux_mm_parse(&s, 1, &mm, &err));
    g_assert_null(mm);
    g_assert_false(dump_linux_mm_parse(&s, 2, &mm, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "dump: dump-level 2 needs the guest's Linux VMCOREINFO "
                    "(vmcoreinfo device) of an x86_64 guest, and the guest gave none");
    error_free(err);
    lg_free(g);
}

/* Guest data that points nowhere is refused, or bounded, never followed. */
static void test_hostile(void)
{
    LinuxMmGuest *g;

    /* mem_map of section 1 outside RAM (a kernel address nothing maps). */
    g = lg_new();
    lg_set64(g->ram + LG_SECTIONS_PA, 16, (LG_DIRECT + 0x7f000000ull) | 3);
    expect_error(g, 31, "cannot read the struct pages of pfn 0x1000");
    lg_free(g);

    /* mem_map not a kernel address: the array does not validate. */
    g = lg_new();
    lg_set64(g->ram + LG_SECTIONS_PA, 0, 0x1000 | 3);
    expect_error(g, 31, "cannot read the guest's mem_section array");
    lg_free(g);

    /* The root pointer outside RAM: no section at all. */
    g = lg_new();
    lg_set64(g->ram + LG_ROOTS_PA, 0, LG_DIRECT + 0x40000000ull);
    expect_error(g, 16, "cannot read the guest's mem_section array");
    lg_free(g);

    /* Top page table outside RAM. */
    g = lg_new();
    lg_set_key(g, "SYMBOL(init_top_pgt)=", "ffffffffc0000000");
    expect_error(g, 8, "cannot read the guest's mem_section array");
    lg_free(g);

    /* Absurd sizes and bits. */
    g = lg_new();
    lg_set_key(g, "SIZE(page)=", "100000");
    expect_error(g, 8, "SIZE(page)");
    lg_free(g);
    g = lg_new();
    lg_set_key(g, "NUMBER(SECTION_SIZE_BITS)=", "60");
    expect_error(g, 8, "NUMBER(SECTION_SIZE_BITS)");
    lg_free(g);
    g = lg_new();
    lg_set_key(g, "OFFSET(page.mapping)=", "-8");
    expect_error(g, 8, "OFFSET(page.*)");
    lg_free(g);
    g = lg_new();
    lg_set_key(g, "OSRELEASE=", "3.10.0");
    expect_error(g, 8, "4.4 or later");
    lg_free(g);

    /* RAM far up with tiny sections: refused before any table is allocated. */
    g = lg_new();
    lg_set_key(g, "NUMBER(SECTION_SIZE_BITS)=", "13");
    {
        DumpPlan s = *lg_plan(g);
        static uint8_t high[4096];
        DumpGuestBlock blocks[2] = {
            s.guest_phys_blocks.blocks[0],
            { .target_start = 1ull << 45, .target_end = (1ull << 45) + 4096,
              .host_addr = high },
        };
        DumpLinuxMm *mm = NULL;
        Error *err = NULL;

        s.guest_phys_blocks.blocks = blocks;
        s.guest_phys_blocks.num = 2;
        g_assert_false(dump_linux_mm_parse(&s, 31, &mm, &err));
        g_assert_nonnull(strstr(error_get_pretty(err), "memory sections of 2^13 bytes, "
                                "more than 2097152"));
        error_free(err);
        /* Level 1 needs no sections: every page, no error. */
        g_assert_true(dump_linux_mm_parse(&s, 1, &mm, &err));
        g_assert_null(mm);
    }
    lg_free(g);

    /*
     * Every struct page a free block of order 10 and every compound head
     * of order 63: the work stays one pass, nothing outside [0, max_pfn).
     */
    g = lg_new();
    for (uint64_t pfn = 0; pfn < LG_PAGES; pfn++) {
        uint8_t *p = lg_page(g, pfn);

        lg_set64(p, LG_OFF_FLAGS, FLAG(LG_PG_HEAD));
        lg_set32(p, LG_OFF_MAPCOUNT, (uint32_t)LG_BUDDY);
        lg_set64(p, LG_OFF_PRIVATE, 10);
        p[LG_OFF_ORDER] = 63;
        lg_set64(p, LG_OFF_MAPPING, 1);
    }
    {
        const DumpPlan *s = lg_plan(g);
        DumpLinuxMm *mm = NULL;
        DumpPageFilter *f;

        g_assert_true(dump_linux_mm_parse(s, 31, &mm, &err_abort));
        f = dump_filter_classify(s, mm, 31, LG_PAGES, NULL, &err_abort);
        for (uint64_t pfn = 0; pfn < LG_PAGES; pfn++) {
            g_assert_true(dump_filter_excluded(f, pfn));
        }
        g_assert_false(dump_filter_excluded(f, LG_PAGES));
        g_assert_cmpuint(f->n_free, ==, LG_PAGES);
        dump_filter_free(f);
        /* User pages only: pfn 0's order 63 covers all, clipped at max_pfn. */
        f = dump_filter_classify(s, mm, 8, LG_PAGES, NULL, &err_abort);
        g_assert_null(err_abort);
        g_assert_cmpuint(f->n_user, ==, LG_PAGES);
        dump_filter_free(f);
        dump_linux_mm_free(mm);
    }
    lg_free(g);
}

/* A cancelled dump stops the walk with the dump's text. */
static void test_cancel(void)
{
    LinuxMmGuest *g = lg_new();
    const DumpPlan *s = lg_plan(g);
    DumpLinuxMm *mm = NULL;
    atomic_bool cancel = true;
    Error *err = NULL;

    g_assert_true(dump_linux_mm_parse(s, 31, &mm, &err_abort));
    g_assert_null(dump_filter_classify(s, mm, 31, LG_PAGES, &cancel, &err));
    g_assert_null(err_abort);
    g_assert_cmpstr(error_get_pretty(err), ==, "dump: cancelled");
    error_free(err);
    dump_linux_mm_free(mm);
    lg_free(g);
}

static uint32_t le32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return GUINT32_FROM_LE(v);
}

static bool bit(const uint8_t *map, uint64_t pfn)
{
    return (map[pfn / 8] >> (pfn % 8)) & 1;
}

/*
 * The kdump writer with dump-level: the 1st bitmap has every pfn below the
 * kernel's last section, the 2nd leaves out what was classified, one page
 * descriptor per pfn the 2nd keeps, and the sub-header says the level.
 * RAM past the last section with a mem_map (like the BIOS ROM) is outside
 * max_mapnr, as makedumpfile trims it.
 */
static void test_kdump(gconstpointer data)
{
    int level = GPOINTER_TO_INT(data);
    LinuxMmGuest *g = lg_new();
    KdumpTestGuest *kg = kdump_test_guest_new();
    g_autofree char *dir = g_dir_make_tmp("test-filter-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "f.kdump", NULL);
    g_autofree char *msg = NULL;
    g_autofree gchar *file = NULL;
    gsize len;
    uint32_t sub_hdr, bitmap_blocks, max_mapnr;
    const uint8_t *b1, *b2;
    uint64_t kept = 0;
    uint8_t *rom;

    setup_classes(g);
    lg_plan(g);
    memcpy(kdump_test_guest_add_block(kg, 0, LG_RAM_SIZE), g->ram, LG_RAM_SIZE);
    rom = kdump_test_guest_add_block(kg, 0xfffc0000, 0x40000);
    memset(rom, 0xaa, 0x40000);
    kdump_test_guest_add_note(kg, "VMCOREINFO", 0, g->vmcoreinfo->str,
                              g->vmcoreinfo->len, true);
    kdump_test_dump_level = level;
    g_assert_true(kdump_test_write(kg, DUMP_DH_COMPRESSED_ZLIB, true, 2, path, &msg));
    kdump_test_dump_level = -1;
    g_assert_true(g_file_get_contents(path, &file, &len, NULL));
    max_mapnr = le32((uint8_t *)file + 440);
    sub_hdr = le32((uint8_t *)file + 432);
    bitmap_blocks = le32((uint8_t *)file + 436);
    g_assert_cmpuint(max_mapnr, ==, LG_PAGES);
    g_assert_cmpuint(le32((uint8_t *)file + LG_PS + 8), ==, level);
    b1 = (uint8_t *)file + (1 + sub_hdr) * LG_PS;
    b2 = b1 + bitmap_blocks / 2 * LG_PS;
    for (uint64_t pfn = 0; pfn < LG_PAGES; pfn++) {
        g_assert_true(bit(b1, pfn));
        g_assert_cmpint(bit(b2, pfn), ==, !expect_excluded(level, pfn));
        kept += bit(b2, pfn);
    }
    for (uint64_t pfn = LG_PAGES; pfn < bitmap_blocks / 2 * LG_PS * 8; pfn++) {
        g_assert_false(bit(b1, pfn));
        g_assert_false(bit(b2, pfn));
    }
    /* Each kept pfn has a descriptor; the first data byte follows them. */
    {
        const uint8_t *desc = b1 + bitmap_blocks * LG_PS;
        uint64_t first_data;

        memcpy(&first_data, desc, 8);
        first_data = GUINT64_FROM_LE(first_data);
        g_assert_cmpuint(first_data, >=,
                         (uint64_t)(desc - (uint8_t *)file) + kept * 24);
        g_assert_cmpuint(first_data, <=,
                         (uint64_t)(desc - (uint8_t *)file) + kept * 24 +
                         ((level & 1) ? LG_PS : 0));
    }
    unlink(path);
    rmdir(dir);
    kdump_test_guest_free(kg);
    lg_free(g);
}

int main(int argc, char **argv)
{
    static const int kdump_levels[] = { 0, 1, 2, 4, 8, 16, 31 };

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/filter/levels", test_levels);
    g_test_add_func("/filter/missing", test_missing);
    g_test_add_func("/filter/no-vmcoreinfo", test_no_vmcoreinfo);
    g_test_add_func("/filter/hostile", test_hostile);
    g_test_add_func("/filter/cancel", test_cancel);
    for (size_t i = 0; i < G_N_ELEMENTS(kdump_levels); i++) {
        g_autofree char *name = g_strdup_printf("/filter/kdump/level-%d",
                                                kdump_levels[i]);

        g_test_add_data_func(name, GINT_TO_POINTER(kdump_levels[i]), test_kdump);
    }
    return g_test_run();
}
