/*
 * dump-level: the page classes makedumpfile's -d bits leave out, decided
 * from a Linux guest's struct pages as makedumpfile 1.7.2 decides them
 * (its __exclude_unnecessary_pages and helpers; facts learnt from its
 * source, code written here). Every address, count and order comes from
 * the guest and is bounded before use.
 */
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysemu/dump-core.h"
#include "sysemu/dump-filter.h"

#define EM_X86_64 62

#define NOT_FOUND INT64_MIN

/* __START_KERNEL_map: __pa_symbol() of a kernel-image address. */
#define START_KERNEL_MAP    0xffffffff80000000ull
/* makedumpfile's is_kvaddr() on x86_64: at least PAGE_OFFSET's lowest value. */
#define KVBASE_L4           0xffff888000000000ull
#define KVBASE_L5           0xff11000000000000ull

/* makedumpfile reads struct pages PGMM_CACHED at a time, aligned to it. */
#define PGMM_CACHED         512
/* SECTION_MAP_LAST_BIT since Linux 4.13 (makedumpfile 1.7.2's value). */
#define SECTION_MAP_MASK    (~((1ull << 5) - 1))
#define SECTION_MARKED_PRESENT 1ull
#define PAGE_MAPPING_ANON   1ull
/*
 * Memory sections looked at, at most (8 bytes of memory and one read each):
 * 2 Mi sections are 256 TiB of RAM in Linux's 128 MiB sections.
 */
#define MAX_SECTIONS        (1u << 21)
/* A buddy order is checked against LENGTH(zone.free_area); never more. */
#define MAX_FREE_ORDER      64

/* The VMCOREINFO keys the classifier reads. */
enum {
    K_OSRELEASE, K_PAGESIZE,
    K_SYM_MEM_SECTION, K_SYM_INIT_LEVEL4_PGT, K_SYM_INIT_TOP_PGT,
    K_SYM_FREE_HUGE_PAGE,
    K_LEN_MEM_SECTION, K_SIZE_MEM_SECTION, K_OFF_SECTION_MEM_MAP,
    K_SIZE_PAGE, K_OFF_FLAGS, K_OFF_REFCOUNT, K_OFF_MAPPING, K_OFF_MAPCOUNT,
    K_OFF_PRIVATE, K_OFF_COMPOUND_DTOR, K_OFF_COMPOUND_ORDER,
    K_OFF_COMPOUND_HEAD, K_LEN_FREE_AREA,
    K_SECTION_SIZE_BITS, K_MAX_PHYSMEM_BITS, K_PGTABLE_L5,
    K_PG_LRU, K_PG_PRIVATE, K_PG_SWAPCACHE, K_PG_SWAPBACKED, K_PG_SLAB,
    K_PG_HWPOISON, K_PG_HEAD_MASK, K_PG_BUDDY, K_BUDDY_MAPCOUNT,
    K_OFFLINE_MAPCOUNT, K_HUGETLB_DTOR,
    K__MAX
};

typedef enum { V_STR, V_HEX, V_DEC } KeyKind;

static const struct {
    const char *name;             /* as VMCOREINFO spells it, without '=' */
    KeyKind kind;
} keys[K__MAX] = {
    [K_OSRELEASE] = { "OSRELEASE", V_STR },
    [K_PAGESIZE] = { "PAGESIZE", V_DEC },
    [K_SYM_MEM_SECTION] = { "SYMBOL(mem_section)", V_HEX },
    [K_SYM_INIT_LEVEL4_PGT] = { "SYMBOL(init_level4_pgt)", V_HEX },
    [K_SYM_INIT_TOP_PGT] = { "SYMBOL(init_top_pgt)", V_HEX },
    [K_SYM_FREE_HUGE_PAGE] = { "SYMBOL(free_huge_page)", V_HEX },
    [K_LEN_MEM_SECTION] = { "LENGTH(mem_section)", V_DEC },
    [K_SIZE_MEM_SECTION] = { "SIZE(mem_section)", V_DEC },
    [K_OFF_SECTION_MEM_MAP] = { "OFFSET(mem_section.section_mem_map)", V_DEC },
    [K_SIZE_PAGE] = { "SIZE(page)", V_DEC },
    [K_OFF_FLAGS] = { "OFFSET(page.flags)", V_DEC },
    [K_OFF_REFCOUNT] = { "OFFSET(page._refcount)", V_DEC },
    [K_OFF_MAPPING] = { "OFFSET(page.mapping)", V_DEC },
    [K_OFF_MAPCOUNT] = { "OFFSET(page._mapcount)", V_DEC },
    [K_OFF_PRIVATE] = { "OFFSET(page.private)", V_DEC },
    [K_OFF_COMPOUND_DTOR] = { "OFFSET(page.compound_dtor)", V_DEC },
    [K_OFF_COMPOUND_ORDER] = { "OFFSET(page.compound_order)", V_DEC },
    [K_OFF_COMPOUND_HEAD] = { "OFFSET(page.compound_head)", V_DEC },
    [K_LEN_FREE_AREA] = { "LENGTH(zone.free_area)", V_DEC },
    [K_SECTION_SIZE_BITS] = { "NUMBER(SECTION_SIZE_BITS)", V_DEC },
    [K_MAX_PHYSMEM_BITS] = { "NUMBER(MAX_PHYSMEM_BITS)", V_DEC },
    [K_PGTABLE_L5] = { "NUMBER(pgtable_l5_enabled)", V_DEC },
    [K_PG_LRU] = { "NUMBER(PG_lru)", V_DEC },
    [K_PG_PRIVATE] = { "NUMBER(PG_private)", V_DEC },
    [K_PG_SWAPCACHE] = { "NUMBER(PG_swapcache)", V_DEC },
    [K_PG_SWAPBACKED] = { "NUMBER(PG_swapbacked)", V_DEC },
    [K_PG_SLAB] = { "NUMBER(PG_slab)", V_DEC },
    [K_PG_HWPOISON] = { "NUMBER(PG_hwpoison)", V_DEC },
    [K_PG_HEAD_MASK] = { "NUMBER(PG_head_mask)", V_DEC },
    [K_PG_BUDDY] = { "NUMBER(PG_buddy)", V_DEC },
    [K_BUDDY_MAPCOUNT] = { "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)", V_DEC },
    [K_OFFLINE_MAPCOUNT] = { "NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)", V_DEC },
    [K_HUGETLB_DTOR] = { "NUMBER(HUGETLB_PAGE_DTOR)", V_DEC },
};

struct DumpLinuxMm {
    int64_t v[K__MAX];            /* NOT_FOUND when absent */
    unsigned kernel_version;      /* major << 16 | minor << 8 | patch */
    uint64_t pgtable;             /* guest-physical top page table */
    bool l5;
    unsigned page_shift;
    unsigned section_size_bits;
    unsigned max_physmem_bits;
    bool extreme;                 /* SPARSEMEM_EXTREME: mem_section is roots */
    uint64_t kvbase;
    bool buddy;                   /* makedumpfile's page_is_buddy is set */
    bool classify;                /* the level (or PG_hwpoison) needs the walk */
    DumpX86CPUState env;          /* long mode with the kernel's tables */
    /* get_mem_map(): each section's mem_map (0: none), below max_pfn. */
    uint64_t num_section;
    uint64_t *maps;
    uint64_t max_pfn;             /* the dump's, trimmed as makedumpfile trims */
};

static bool section_maps(const DumpPlan *plan, const DumpLinuxMm *mm,
                         uint64_t num_section, uint64_t *maps, Error **errp);

#define KV(mm, k) ((mm)->v[K_##k])
#define HAVE(mm, k) ((mm)->v[K_##k] != NOT_FOUND)

#define KERNEL_VERSION(a, b, c) (((a) << 16) | ((b) << 8) | (c))

/* ---------------------------------------------------------------------- */
/* VMCOREINFO                                                              */
/* ---------------------------------------------------------------------- */

/* The descriptor of the plan's guest note when it is VMCOREINFO, else NULL. */
static const char *vmcoreinfo_text(const DumpPlan *plan, size_t *len)
{
    const uint8_t *n = plan->guest_note;
    uint32_t namesz, descsz;
    uint64_t off;

    if (!n || plan->guest_note_size < 12) {
        return NULL;
    }
    memcpy(&namesz, n, 4);
    memcpy(&descsz, n + 4, 4);
    namesz = GUINT32_FROM_LE(namesz);
    descsz = GUINT32_FROM_LE(descsz);
    off = 12 + (((uint64_t)namesz + 3) & ~3ull);
    if (namesz != sizeof("VMCOREINFO") || off > plan->guest_note_size ||
        memcmp(n + 12, "VMCOREINFO", sizeof("VMCOREINFO")) != 0 ||
        descsz > plan->guest_note_size - off) {
        return NULL;
    }
    *len = descsz;
    return (const char *)n + off;
}

/* makedumpfile parses numbers with strtol/strtoul: base 10 or 16, a prefix of digits. */
static bool parse_value(const char *s, size_t len, KeyKind kind, int64_t *out)
{
    char buf[32];
    char *end;

    if (len == 0 || len >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    if (kind == V_HEX) {
        *out = (int64_t)strtoull(buf, &end, 16);
    } else {
        *out = strtoll(buf, &end, 10);
    }
    return end != buf && errno == 0;
}

/* "6.1.0-13-amd64" -> KERNEL_VERSION(6, 1, 0); 0 when it does not parse. */
static unsigned parse_release(const char *s, size_t len)
{
    unsigned part[3] = { 0, 0, 0 };
    size_t i = 0;

    for (int p = 0; p < 3; p++) {
        size_t start = i;

        while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 6) {
            part[p] = part[p] * 10 + (s[i] - '0');
            i++;
        }
        if (i == start) {
            return p >= 2 ? KERNEL_VERSION(part[0], part[1], 0) : 0;
        }
        if (p < 2) {
            if (i >= len || s[i] != '.') {
                return p == 1 ? KERNEL_VERSION(part[0], part[1], 0) : 0;
            }
            i++;
        }
    }
    return KERNEL_VERSION(part[0], MIN(part[1], 255u), MIN(part[2], 255u));
}

/* One pass over the text; the first line of each key wins, as in makedumpfile. */
static void parse_keys(DumpLinuxMm *mm, const char *text, size_t len)
{
    size_t pos = 0;

    for (int k = 0; k < K__MAX; k++) {
        mm->v[k] = NOT_FOUND;
    }
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - line) : len - pos;
        const char *eq = memchr(line, '=', llen);

        pos += llen + 1;
        if (!eq) {
            continue;
        }
        for (int k = 0; k < K__MAX; k++) {
            size_t klen = strlen(keys[k].name);
            const char *val = eq + 1;
            size_t vlen = llen - (val - line);

            if ((size_t)(eq - line) != klen || memcmp(line, keys[k].name, klen) ||
                mm->v[k] != NOT_FOUND) {
                continue;
            }
            if (keys[k].kind == V_STR) {
                mm->kernel_version = parse_release(val, vlen);
                mm->v[k] = mm->kernel_version ? 1 : NOT_FOUND;
            } else if (!parse_value(val, vlen, keys[k].kind, &mm->v[k]) ||
                       mm->v[k] == NOT_FOUND) {
                mm->v[k] = NOT_FOUND;
            }
            break;
        }
    }
}

/* The first required key that is absent, or NULL. */
static const char *first_missing(const DumpLinuxMm *mm, const int *req, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (mm->v[req[i]] == NOT_FOUND) {
            return keys[req[i]].name;
        }
    }
    return NULL;
}

static bool offset_ok(const DumpLinuxMm *mm, int k, int width)
{
    return mm->v[k] == NOT_FOUND ||
           (mm->v[k] >= 0 && mm->v[k] + width <= KV(mm, SIZE_PAGE));
}

/*
 * Everything the walk needs, checked against what a kernel can have; false
 * with *what naming the first problem.
 */
static bool layout_check(DumpLinuxMm *mm, const DumpPlan *plan, char **what)
{
    static const int need[] = {
        K_OSRELEASE, K_SYM_MEM_SECTION, K_SIZE_MEM_SECTION,
        K_OFF_SECTION_MEM_MAP, K_SIZE_PAGE, K_OFF_FLAGS, K_OFF_REFCOUNT,
        K_OFF_MAPPING, K_PG_HEAD_MASK, K_PG_SLAB,
    };
    const char *miss = first_missing(mm, need, G_N_ELEMENTS(need));
    uint64_t top;

    if (miss) {
        *what = g_strdup(miss);
        return false;
    }
    if (!HAVE(mm, SYM_INIT_LEVEL4_PGT) && !HAVE(mm, SYM_INIT_TOP_PGT)) {
        *what = g_strdup("SYMBOL(init_top_pgt)");
        return false;
    }
    if (mm->kernel_version < KERNEL_VERSION(4, 4, 0)) {
        *what = g_strdup("a kernel of 4.4 or later (OSRELEASE)");
        return false;
    }
    if (HAVE(mm, PAGESIZE) && KV(mm, PAGESIZE) != plan->dump_info.page_size) {
        *what = g_strdup_printf("PAGESIZE=%" PRId64 " equal to the dump's page "
                                "size %u", KV(mm, PAGESIZE),
                                plan->dump_info.page_size);
        return false;
    }
    mm->page_shift = __builtin_ctz(plan->dump_info.page_size);
    if (KV(mm, SIZE_PAGE) < 8 || KV(mm, SIZE_PAGE) > 1024 ||
        !offset_ok(mm, K_OFF_FLAGS, 8) || !offset_ok(mm, K_OFF_REFCOUNT, 4) ||
        !offset_ok(mm, K_OFF_MAPPING, 8) || !offset_ok(mm, K_OFF_MAPCOUNT, 4) ||
        !offset_ok(mm, K_OFF_PRIVATE, 8) || !offset_ok(mm, K_OFF_COMPOUND_HEAD, 8) ||
        !offset_ok(mm, K_OFF_COMPOUND_ORDER, 1) ||
        !offset_ok(mm, K_OFF_COMPOUND_DTOR, 1)) {
        *what = g_strdup("SIZE(page) and OFFSET(page.*) that fit in a struct "
                         "page of 8 to 1024 bytes");
        return false;
    }
    if (KV(mm, SIZE_MEM_SECTION) < 8 ||
        KV(mm, SIZE_MEM_SECTION) > plan->dump_info.page_size ||
        KV(mm, OFF_SECTION_MEM_MAP) < 0 ||
        KV(mm, OFF_SECTION_MEM_MAP) + 8 > KV(mm, SIZE_MEM_SECTION)) {
        *what = g_strdup("SIZE(mem_section) and OFFSET(mem_section."
                         "section_mem_map) that fit in a page");
        return false;
    }
    mm->l5 = HAVE(mm, PGTABLE_L5) && KV(mm, PGTABLE_L5) != 0;
    mm->kvbase = mm->l5 ? KVBASE_L5 : KVBASE_L4;
    /* makedumpfile's x86_64 defaults when the kernel does not say. */
    mm->section_size_bits = HAVE(mm, SECTION_SIZE_BITS) ?
                            (unsigned)KV(mm, SECTION_SIZE_BITS) : 27;
    mm->max_physmem_bits = HAVE(mm, MAX_PHYSMEM_BITS) ?
                           (unsigned)KV(mm, MAX_PHYSMEM_BITS) : (mm->l5 ? 52 : 46);
    if ((HAVE(mm, SECTION_SIZE_BITS) &&
         (KV(mm, SECTION_SIZE_BITS) < 0 || KV(mm, SECTION_SIZE_BITS) > 52)) ||
        (HAVE(mm, MAX_PHYSMEM_BITS) &&
         (KV(mm, MAX_PHYSMEM_BITS) < 0 || KV(mm, MAX_PHYSMEM_BITS) > 52)) ||
        mm->section_size_bits <= mm->page_shift ||
        mm->section_size_bits > mm->max_physmem_bits ||
        mm->max_physmem_bits - mm->section_size_bits > 40) {
        *what = g_strdup("NUMBER(SECTION_SIZE_BITS) and NUMBER(MAX_PHYSMEM_BITS) "
                         "that a kernel can have");
        return false;
    }
    {
        uint64_t per_root = plan->dump_info.page_size / KV(mm, SIZE_MEM_SECTION);
        uint64_t nr_sections = 1ull << (mm->max_physmem_bits -
                                        mm->section_size_bits);

        mm->extreme = !HAVE(mm, LEN_MEM_SECTION) ||
                      (uint64_t)KV(mm, LEN_MEM_SECTION) ==
                      (nr_sections + per_root - 1) / per_root;
    }
    top = HAVE(mm, SYM_INIT_LEVEL4_PGT) ? (uint64_t)KV(mm, SYM_INIT_LEVEL4_PGT)
                                        : (uint64_t)KV(mm, SYM_INIT_TOP_PGT);
    if (top < START_KERNEL_MAP) {
        *what = g_strdup("SYMBOL(init_top_pgt) in the kernel image");
        return false;
    }
    mm->pgtable = top - START_KERNEL_MAP + plan->dump_info.phys_base;
    /* A long-mode vCPU whose CR3 is the kernel's own top table. */
    memset(&mm->env, 0, sizeof(mm->env));
    mm->env.cr[0] = DUMP_X86_CR0_PG | 1;
    mm->env.cr[3] = mm->pgtable & ~0xfffull;
    mm->env.cr[4] = DUMP_X86_CR4_PAE | DUMP_X86_CR4_PSE |
                    (mm->l5 ? DUMP_X86_CR4_LA57 : 0);
    mm->env.efer = DUMP_X86_EFER_LMA | (1u << 8);
    mm->env.a20_mask = ~0u;

    /* makedumpfile's setup_page_is_buddy(). */
    mm->buddy = HAVE(mm, OFF_PRIVATE) &&
                (HAVE(mm, PG_BUDDY) ||
                 (HAVE(mm, BUDDY_MAPCOUNT) && HAVE(mm, OFF_MAPCOUNT)));
    return true;
}

/*
 * makedumpfile's get_mem_map() for SPARSEMEM: each section's mem_map, and
 * max_mapnr trimmed to the end of the last section that has one.
 */
static bool find_mem_maps(DumpLinuxMm *mm, const DumpPlan *plan, Error **errp)
{
    const DumpGuestBlockList *blocks = &plan->guest_phys_blocks;
    uint64_t last_end = 0, pps, end = 0;

    for (size_t i = 0; i < blocks->num; i++) {
        last_end = MAX(last_end, blocks->blocks[i].target_end);
    }
    mm->max_pfn = (last_end + plan->dump_info.page_size - 1) >> mm->page_shift;
    pps = 1ull << (mm->section_size_bits - mm->page_shift);
    mm->num_section = (mm->max_pfn + pps - 1) / pps;
    if (!mm->num_section) {
        error_setg(errp, "dump: dump-level: no guest memory");
        return false;
    }
    if (mm->num_section > MAX_SECTIONS) {
        error_setg(errp, "dump: dump-level: RAM ending at pfn 0x%" PRIx64 " spans %"
                   PRIu64 " memory sections of 2^%u bytes, more than %u",
                   mm->max_pfn, mm->num_section, mm->section_size_bits,
                   MAX_SECTIONS);
        return false;
    }
    mm->maps = g_new0(uint64_t, mm->num_section);
    if (!section_maps(plan, mm, mm->num_section, mm->maps, errp)) {
        return false;
    }
    for (uint64_t nr = 0; nr < mm->num_section; nr++) {
        if (mm->maps[nr]) {
            end = MIN((nr + 1) * pps, mm->max_pfn);
        }
    }
    mm->max_pfn = MIN(mm->max_pfn, end);
    return true;
}

bool dump_linux_mm_parse(const DumpPlan *plan, int level, DumpLinuxMm **out,
                         Error **errp)
{
    g_autofree char *what = NULL;
    const char *text;
    size_t len;
    DumpLinuxMm *mm;
    bool needed = level & DUMP_LEVEL_NEEDS_MM;

    *out = NULL;
    text = vmcoreinfo_text(plan, &len);
    if (!text || plan->dump_info.d_machine != EM_X86_64) {
        if (needed) {
            error_setg(errp, "dump: dump-level %d needs the guest's Linux "
                       "VMCOREINFO (vmcoreinfo device) of an x86_64 guest, and "
                       "the guest gave none", level);
            return false;
        }
        return true;
    }
    mm = g_new0(DumpLinuxMm, 1);
    parse_keys(mm, text, len);
    if (!needed) {
        /*
         * Levels 0 and 1: makedumpfile still reads the memory layout (which
         * trims max_mapnr) and drops hwpoison/offline pages when the kernel
         * has PG_hwpoison. A VMCOREINFO without that layout: all pages.
         */
        if (!layout_check(mm, plan, &what) || !find_mem_maps(mm, plan, NULL)) {
            dump_linux_mm_free(mm);
            return true;
        }
        mm->classify = HAVE(mm, PG_HWPOISON);
        *out = mm;
        return true;
    }
    if (!layout_check(mm, plan, &what)) {
        goto missing;
    }
    if (level & (DUMP_LEVEL_CACHE | DUMP_LEVEL_CACHE_PRI)) {
        static const int need[] = { K_PG_LRU, K_PG_PRIVATE, K_PG_SWAPCACHE };
        const char *m = first_missing(mm, need, G_N_ELEMENTS(need));

        if (m) {
            what = g_strdup(m);
            goto missing;
        }
    }
    if (level & DUMP_LEVEL_FREE) {
        if (!mm->buddy) {
            what = g_strdup(!HAVE(mm, OFF_PRIVATE) ? "OFFSET(page.private)" :
                            !HAVE(mm, BUDDY_MAPCOUNT) ?
                            "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)" :
                            "OFFSET(page._mapcount)");
            goto missing;
        }
        if (!HAVE(mm, LEN_FREE_AREA)) {
            what = g_strdup("LENGTH(zone.free_area)");
            goto missing;
        }
    }
    if (!find_mem_maps(mm, plan, errp)) {
        dump_linux_mm_free(mm);
        return false;
    }
    mm->classify = true;
    *out = mm;
    return true;

missing:
    error_setg(errp, "dump: dump-level %d needs %s in the guest's VMCOREINFO",
               level, what);
    dump_linux_mm_free(mm);
    return false;
}

uint64_t dump_linux_mm_max_pfn(const DumpLinuxMm *mm)
{
    return mm ? mm->max_pfn : UINT64_MAX;
}

void dump_linux_mm_free(DumpLinuxMm *mm)
{
    if (mm) {
        g_free(mm->maps);
        g_free(mm);
    }
}

/* ---------------------------------------------------------------------- */
/* The classification                                                       */
/* ---------------------------------------------------------------------- */

/* makedumpfile's test_bit(): an int mask, sign-extended against the flags. */
static bool test_bit(int64_t nr, uint64_t flags)
{
    int32_t mask = (int32_t)(1u << (nr & 0x1f));

    return ((uint64_t)(int64_t)mask & flags) != 0;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return GUINT64_FROM_LE(v);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return GUINT32_FROM_LE(v);
}

/* makedumpfile's is_cache_page(): on an LRU, or in the swap cache. */
static bool is_cache_page(const DumpLinuxMm *mm, uint64_t flags)
{
    if (test_bit(KV(mm, PG_LRU), flags)) {
        return true;
    }
    /* PG_swapcache means it only with PG_swapbacked (or before 4.10). */
    return (!HAVE(mm, PG_SWAPBACKED) || test_bit(KV(mm, PG_SWAPBACKED), flags)) &&
           test_bit(KV(mm, PG_SWAPCACHE), flags);
}

static bool is_kvaddr(const DumpLinuxMm *mm, uint64_t addr)
{
    return addr >= mm->kvbase;
}

typedef struct Walk {
    const DumpPlan *plan;
    const DumpLinuxMm *mm;
    int level;
    DumpPageFilter *f;
    const atomic_bool *cancel;
    /* The last range excluded, so a range is never set twice. */
    uint64_t run_lo, run_hi;
    uint8_t *cache;               /* PGMM_CACHED struct pages */
} Walk;

static void set_range(Walk *w, uint64_t lo, uint64_t hi, uint64_t *counter)
{
    DumpPageFilter *f = w->f;

    hi = MIN(hi, f->max_pfn);
    if (lo >= w->run_lo && lo < w->run_hi) {
        lo = w->run_hi;           /* only what is left of a range already set */
    } else {
        w->run_lo = lo;
    }
    for (uint64_t pfn = lo; pfn < hi; pfn++) {
        uint64_t bit = 1ull << (pfn % 64);

        if (!(f->excluded[pfn / 64] & bit)) {
            f->excluded[pfn / 64] |= bit;
            (*counter)++;
        }
    }
    w->run_hi = MAX(w->run_hi, hi);
}

static bool cancelled(const Walk *w, Error **errp)
{
    if (w->cancel && atomic_load(w->cancel)) {
        error_setg(errp, "dump: cancelled");
        return true;
    }
    return false;
}

/*
 * One section's struct pages, makedumpfile's __exclude_unnecessary_pages()
 * for [pfn_start, pfn_end) with mem_map the address of pfn_start's page.
 */
static bool walk_mem_map(Walk *w, uint64_t mem_map, uint64_t pfn_start,
                         uint64_t pfn_end, Error **errp)
{
    const DumpLinuxMm *mm = w->mm;
    const uint64_t sz = KV(mm, SIZE_PAGE);
    const bool v416 = mm->kernel_version >= KERNEL_VERSION(4, 16, 0);
    uint64_t read_lo = UINT64_MAX, read_hi = 0;   /* cached pfns, inclusive */
    DumpPageFilter *f = w->f;

    for (uint64_t pfn = pfn_start; pfn < pfn_end; pfn++) {
        uint64_t index = pfn % PGMM_CACHED;
        const uint8_t *pc = w->cache + index * sz;
        uint64_t flags, mapping, priv = 0, head = 0, nr = 1;
        uint32_t mapcount = 0;
        unsigned order = 0, dtor = 0;
        uint64_t *counter;

        if (!dump_guest_blocks_find(&w->plan->guest_phys_blocks,
                                    pfn << mm->page_shift)) {
            continue;             /* a hole: not in the dump (is_in_segs) */
        }
        if (pfn < read_lo || pfn > read_hi) {
            uint64_t n = MIN(PGMM_CACHED - index, pfn_end - pfn);
            uint64_t va = mem_map + (pfn - pfn_start) * sz;

            if (cancelled(w, errp)) {
                return false;
            }
            if (!dump_plan_read_virt(w->plan, &mm->env, va, (uint8_t *)pc, n * sz)) {
                error_setg(errp, "dump: dump-level: cannot read the struct pages "
                           "of pfn 0x%" PRIx64 " at 0x%" PRIx64
                           " (not mapped or not RAM)", pfn, va);
                return false;
            }
            read_lo = pfn;
            read_hi = pfn + n - 1;
        }
        flags = get64(pc + KV(mm, OFF_FLAGS));
        mapping = get64(pc + KV(mm, OFF_MAPPING));

        /* A head's order and destructor are in the next struct page. */
        if (index < PGMM_CACHED - 1 && pfn + 1 <= read_hi &&
            (flags & (uint64_t)KV(mm, PG_HEAD_MASK))) {
            const uint8_t *next = pc + sz;

            if (HAVE(mm, OFF_COMPOUND_ORDER)) {
                order = v416 ? next[KV(mm, OFF_COMPOUND_ORDER)]
                             : (next[KV(mm, OFF_COMPOUND_ORDER)] |
                                (KV(mm, OFF_COMPOUND_ORDER) + 2 <= (int64_t)sz ?
                                 next[KV(mm, OFF_COMPOUND_ORDER) + 1] << 8 : 0));
            }
            if (HAVE(mm, OFF_COMPOUND_DTOR)) {
                dtor = v416 ? next[KV(mm, OFF_COMPOUND_DTOR)]
                            : (next[KV(mm, OFF_COMPOUND_DTOR)] |
                               (KV(mm, OFF_COMPOUND_DTOR) + 2 <= (int64_t)sz ?
                                next[KV(mm, OFF_COMPOUND_DTOR) + 1] << 8 : 0));
            }
            if (order >= 64 || (pfn & ((1ull << order) - 1)) != 0) {
                order = 0;        /* an invalid order, as makedumpfile */
            }
        }
        if (HAVE(mm, OFF_COMPOUND_HEAD)) {
            head = get64(pc + KV(mm, OFF_COMPOUND_HEAD));
        }
        if (HAVE(mm, OFF_MAPCOUNT)) {
            mapcount = get32(pc + KV(mm, OFF_MAPCOUNT));
        }
        if (HAVE(mm, OFF_PRIVATE)) {
            priv = get64(pc + KV(mm, OFF_PRIVATE));
        }
        if (order) {
            nr = 1ull << order;
        }

        if (head & 1) {
            continue;             /* a tail: its head decided */
        } else if ((w->level & DUMP_LEVEL_FREE) && mm->buddy &&
                   (HAVE(mm, PG_BUDDY) ?
                    (flags & (1ull << (KV(mm, PG_BUDDY) & 63))) != 0 :
                    (!(flags & (1ull << (KV(mm, PG_SLAB) & 63))) &&
                     (int32_t)mapcount == (int32_t)KV(mm, BUDDY_MAPCOUNT)))) {
            if (priv >= (uint64_t)KV(mm, LEN_FREE_AREA) || priv >= MAX_FREE_ORDER) {
                continue;         /* an invalid free order: kept, as makedumpfile */
            }
            nr = 1ull << priv;
            counter = &f->n_free;
        } else if ((w->level & DUMP_LEVEL_CACHE) && is_cache_page(mm, flags) &&
                   !test_bit(KV(mm, PG_PRIVATE), flags) &&
                   !(mapping & PAGE_MAPPING_ANON)) {
            counter = &f->n_cache;
        } else if ((w->level & DUMP_LEVEL_CACHE_PRI) && is_cache_page(mm, flags) &&
                   !(mapping & PAGE_MAPPING_ANON)) {
            counter = test_bit(KV(mm, PG_PRIVATE), flags) ? &f->n_cache_private
                                                          : &f->n_cache;
        } else if ((w->level & DUMP_LEVEL_USER) &&
                   ((mapping & PAGE_MAPPING_ANON) ||
                    (HAVE(mm, HUGETLB_DTOR) &&
                     (uint64_t)KV(mm, HUGETLB_DTOR) == dtor) ||
                    (HAVE(mm, SYM_FREE_HUGE_PAGE) &&
                     (uint64_t)KV(mm, SYM_FREE_HUGE_PAGE) == dtor))) {
            counter = &f->n_user;
        } else if (HAVE(mm, PG_HWPOISON) && test_bit(KV(mm, PG_HWPOISON), flags)) {
            counter = &f->n_hwpoison;
        } else if (HAVE(mm, OFFLINE_MAPCOUNT) &&
                   !(flags & (1ull << (KV(mm, PG_SLAB) & 63))) &&
                   (int32_t)mapcount == (int32_t)KV(mm, OFFLINE_MAPCOUNT)) {
            counter = &f->n_offline;
        } else {
            continue;
        }
        if (nr == 1) {
            set_range(w, pfn, pfn + 1, counter);
        } else {
            set_range(w, pfn, pfn + nr, counter);
            if (nr - 1 >= pfn_end - pfn) {
                break;
            }
            pfn += nr - 1;
        }
    }
    return true;
}

/* makedumpfile's get_mem_section(): the mem_map of each section, or 0. */
static bool section_maps(const DumpPlan *plan, const DumpLinuxMm *mm,
                         uint64_t num_section, uint64_t *maps, Error **errp)
{
    const uint64_t ms_size = KV(mm, SIZE_MEM_SECTION);
    const uint64_t per_root = mm->extreme ? plan->dump_info.page_size / ms_size : 1;
    const uint64_t roots = (num_section + per_root - 1) / per_root;
    const uint64_t pfn_shift = mm->section_size_bits - mm->page_shift;
    const uint64_t array_size = mm->extreme ? 8 * roots : ms_size * roots;
    g_autofree uint8_t *array = g_malloc(array_size);
    g_autofree uint8_t *ms = g_malloc(ms_size);
    uint64_t ptr = KV(mm, SYM_MEM_SECTION);

    /* First as the array itself, then (EXTREME) as a pointer to it. */
    for (int attempt = 0; attempt < (mm->extreme ? 2 : 1); attempt++) {
        bool any = false, bad = false;

        if (attempt == 1) {
            uint8_t p[8];

            if (!dump_plan_read_virt(plan, &mm->env, KV(mm, SYM_MEM_SECTION),
                                     p, 8)) {
                break;
            }
            ptr = get64(p);
        }
        if (!dump_plan_read_virt(plan, &mm->env, ptr, array, array_size)) {
            continue;
        }
        for (uint64_t nr = 0; nr < num_section && !bad; nr++) {
            uint64_t addr, map;

            maps[nr] = 0;
            if (mm->extreme) {
                uint64_t root = get64(array + 8 * (nr / per_root));

                if (!root) {
                    continue;
                }
                addr = root + (nr % per_root) * ms_size;
            } else {
                addr = (uint64_t)KV(mm, SYM_MEM_SECTION) + nr * ms_size;
            }
            if (!is_kvaddr(mm, addr) ||
                !dump_plan_read_virt(plan, &mm->env, addr, ms, ms_size)) {
                continue;
            }
            map = get64(ms + KV(mm, OFF_SECTION_MEM_MAP));
            if (!(map & SECTION_MARKED_PRESENT)) {
                continue;
            }
            map = (map & SECTION_MAP_MASK) + ((nr << pfn_shift) * KV(mm, SIZE_PAGE));
            if (!is_kvaddr(mm, map)) {
                bad = true;
                break;
            }
            maps[nr] = map;
            any = true;
        }
        if (any && !bad) {
            return true;
        }
    }
    error_setg(errp, "dump: dump-level: cannot read the guest's mem_section "
               "array at 0x%" PRIx64, (uint64_t)KV(mm, SYM_MEM_SECTION));
    return false;
}

DumpPageFilter *dump_filter_classify(const DumpPlan *plan, const DumpLinuxMm *mm,
                                     int level, uint64_t max_pfn,
                                     const atomic_bool *cancel, Error **errp)
{
    DumpPageFilter *f = g_new0(DumpPageFilter, 1);
    Walk w = { .plan = plan, .mm = mm, .level = level, .f = f, .cancel = cancel };
    uint64_t pps;

    f->max_pfn = max_pfn;
    f->excluded = g_new0(uint64_t, (max_pfn + 63) / 64 + 1);
    if (!mm || !mm->classify) {
        return f;                 /* nothing but zero pages, which the writer sees */
    }
    pps = 1ull << (mm->section_size_bits - mm->page_shift);
    w.cache = g_malloc(PGMM_CACHED * KV(mm, SIZE_PAGE));
    for (uint64_t nr = 0; nr < mm->num_section; nr++) {
        uint64_t start = nr * pps, end = MIN(start + pps, max_pfn);

        if (!mm->maps[nr] || start >= end) {
            continue;
        }
        if (!walk_mem_map(&w, mm->maps[nr], start, end, errp)) {
            g_free(w.cache);
            dump_filter_free(f);
            return NULL;
        }
    }
    g_free(w.cache);
    return f;
}

void dump_filter_free(DumpPageFilter *f)
{
    if (f) {
        g_free(f->excluded);
        g_free(f);
    }
}
