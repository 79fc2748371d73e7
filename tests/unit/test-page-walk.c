/* Unit tests: x86 page-table walk, mapping merge/order rules, bounds. */
#include <fcntl.h>
#include <glib.h>
#include <malloc.h>
#include <string.h>
#include <unistd.h>

#include "sysemu/dump-core.h"
#include "sysemu/dump-memory.h"
#include "sysemu/physmem.h"
#include "target/i386/cpu.h"
#include "sysemu/cpus.h"
#include "system/machine-internal.h"

#define P 0x1ull
#define PS 0x80ull
#define MiB (1ull << 20)

typedef struct Expect {
    uint64_t phys, virt, len;
} Expect;

static void setup_ram(uint64_t size)
{
    Error *err = NULL;

    physmem_reset();
    g_assert_nonnull(physmem_add_block("pc.ram", 0, size, NULL, false, 0, &err));
    g_assert_null(err);
}

static void put64(uint64_t gpa, uint64_t v)
{
    g_assert_true(physmem_write(gpa, &v, 8, NULL));
}

static void put32(uint64_t gpa, uint32_t v)
{
    g_assert_true(physmem_write(gpa, &v, 4, NULL));
}

static void init_env(CPUX86State *env, uint64_t cr0, uint64_t cr3, uint64_t cr4,
                     uint64_t efer)
{
    memset(env, 0, sizeof(*env));
    env->cr[0] = cr0;
    env->cr[3] = cr3;
    env->cr[4] = cr4;
    env->efer = efer;
    env->a20_mask = ~0u;
}

/* The walker reads guest RAM through a block snapshot, as a dump does. */
static bool virt_to_phys(const CPUX86State *env, uint64_t va, uint64_t *pa)
{
    DumpGuestBlockList blocks;
    bool ok;

    dump_guest_blocks_collect(&blocks);
    ok = x86_virt_to_phys(&blocks, env, va, pa);
    dump_guest_blocks_free(&blocks);
    return ok;
}

static bool get_mapping(DumpMappingList *list, const CPUX86State *env, Error **errp)
{
    DumpGuestBlockList blocks;
    bool ok;

    dump_guest_blocks_collect(&blocks);
    ok = x86_dump_get_memory_mapping(list, &blocks, env, errp);
    dump_guest_blocks_free(&blocks);
    return ok;
}

static void check_list(DumpMappingList *list, const Expect *exp, size_t n)
{
    const DumpMapping *m = NULL;
    size_t i = 0;

    while ((m = dump_mapping_list_next(list, m))) {
        g_assert_cmpuint(i, <, n);
        if (m->phys_addr != exp[i].phys || m->virt_addr != exp[i].virt ||
            m->length != exp[i].len) {
            g_test_message("mapping %zu: phys 0x%" G_GINT64_MODIFIER "x virt 0x%"
                           G_GINT64_MODIFIER "x len 0x%" G_GINT64_MODIFIER "x",
                           i, m->phys_addr, m->virt_addr, m->length);
        }
        g_assert_cmphex(m->phys_addr, ==, exp[i].phys);
        g_assert_cmphex(m->virt_addr, ==, exp[i].virt);
        g_assert_cmphex(m->length, ==, exp[i].len);
        i++;
    }
    g_assert_cmpuint(i, ==, n);
    g_assert_cmpuint(dump_mapping_list_count(list), ==, n);
}

static DumpMappingList *walk(const CPUX86State *env)
{
    DumpMappingList *list = dump_mapping_list_new();
    Error *err = NULL;

    g_assert_true(get_mapping(list, env, &err));
    g_assert_null(err);
    return list;
}

/*
 * 4-level: one PDPT shared by PML4[0] and PML4[511], with 4 KiB, 2 MiB and
 * 1 GiB leaves; a PKEY-tagged PTE, an MMIO PTE and a non-present PTE.
 */
static void test_4level(void)
{
    CPUX86State env;
    DumpMappingList *list;
    uint64_t va;
    uint64_t pa;
    static const Expect exp[] = {
        /* phys ascending; the newest (PML4[511]) first among equal phys */
        { 0, 0xffffff8040000000ull, 1ull << 30 },
        { 0, 0x40000000ull, 1ull << 30 },
        { 0x100000, 0xffffff8000000000ull, 0x5000 },
        { 0x100000, 0, 0x5000 },
        { 0x200000, 0xffffff8000200000ull, 2 * MiB },
        { 0x200000, 0x200000, 2 * MiB },
    };

    setup_ram(64 * MiB);
    put64(0x1000 + 0 * 8, 0x2000 | P);
    put64(0x1000 + 511 * 8, 0x2000 | P | (1ull << 63));
    put64(0x2000 + 0 * 8, 0x3000 | P);
    put64(0x2000 + 1 * 8, 0x0 | P | PS);                 /* 1 GiB at 0 */
    put64(0x3000 + 0 * 8, 0x4000 | P);
    put64(0x3000 + 1 * 8, 0x200000 | P | PS);            /* 2 MiB */
    for (int i = 0; i < 4; i++) {
        put64(0x4000 + i * 8, (0x100000 + i * 0x1000) | P);
    }
    /* Protection key 5 and software bit 52: still physical 0x104000. */
    put64(0x4000 + 4 * 8, 0x104000 | P | (5ull << 59) | (1ull << 52) | (1ull << 63));
    put64(0x4000 + 5 * 8, 0xfee00000ull | P);           /* LAPIC: not RAM */
    put64(0x4000 + 6 * 8, 0x106000);                     /* not present */

    init_env(&env, CR0_PG_MASK | CR0_PE_MASK, 0x1000, CR4_PAE_MASK,
             MSR_EFER_LME | MSR_EFER_LMA);
    list = walk(&env);
    check_list(list, exp, G_N_ELEMENTS(exp));
    dump_mapping_list_free(list);

    /* Single translation follows the same rules. */
    g_assert_true(virt_to_phys(&env, 0x4123, &pa));
    g_assert_cmphex(pa, ==, 0x104123);
    g_assert_true(virt_to_phys(&env, 0xffffff8000201234ull, &pa));
    g_assert_cmphex(pa, ==, 0x201234);
    g_assert_true(virt_to_phys(&env, 0x40000000ull + 0x345678, &pa));
    g_assert_cmphex(pa, ==, 0x345678);
    g_assert_false(virt_to_phys(&env, 0x6000, &pa));
    va = 0x0000800000000000ull;     /* non-canonical */
    g_assert_false(virt_to_phys(&env, va, &pa));
}

/* 5-level: PML5[0] and PML5[1]; the upper half is sign-extended from bit 56. */
static void test_5level(void)
{
    CPUX86State env;
    DumpMappingList *list;
    uint64_t pa;
    static const Expect exp[] = {
        { 0x100000, 0xff00000000000000ull, 0x1000 },
        { 0x100000, 0x0001000000000000ull, 0x1000 },
        { 0x100000, 0, 0x1000 },
    };

    setup_ram(16 * MiB);
    put64(0x1000 + 0 * 8, 0x2000 | P);
    put64(0x1000 + 1 * 8, 0x2000 | P);
    put64(0x1000 + 256 * 8, 0x2000 | P);
    put64(0x2000, 0x3000 | P);       /* PML4[0] */
    put64(0x3000, 0x4000 | P);       /* PDPT[0] */
    put64(0x4000, 0x5000 | P);       /* PD[0] */
    put64(0x5000, 0x100000 | P);     /* PT[0] */
    init_env(&env, CR0_PG_MASK | CR0_PE_MASK, 0x1000,
             CR4_PAE_MASK | CR4_LA57_MASK, MSR_EFER_LME | MSR_EFER_LMA);
    list = walk(&env);
    check_list(list, exp, G_N_ELEMENTS(exp));
    dump_mapping_list_free(list);
    g_assert_true(virt_to_phys(&env, 0xff00000000000042ull, &pa));
    g_assert_cmphex(pa, ==, 0x100042);
}

/* Legacy PAE: 32-byte aligned PDPT, 2 MiB and 4 KiB pages, 32-bit addresses. */
static void test_pae(void)
{
    CPUX86State env;
    DumpMappingList *list;
    uint64_t pa;
    static const Expect exp[] = {
        { 0x200000, 0xc0000000ull, 2 * MiB },
        { 0x400000, 0x40001000ull, 0x2000 },
    };

    setup_ram(16 * MiB);
    put64(0x1020 + 1 * 8, 0x2000 | P);          /* 1 GiB region 1 */
    put64(0x1020 + 3 * 8, 0x3000 | P);          /* region 3 */
    put64(0x2000 + 0 * 8, 0x4000 | P);          /* PD[0] -> PT */
    put64(0x4000 + 1 * 8, 0x400000 | P);
    put64(0x4000 + 2 * 8, 0x401000 | P);
    put64(0x3000 + 0 * 8, 0x200000 | P | PS);   /* 2 MiB */
    init_env(&env, CR0_PG_MASK | CR0_PE_MASK, 0x1020, CR4_PAE_MASK, 0);
    list = walk(&env);
    check_list(list, exp, G_N_ELEMENTS(exp));
    dump_mapping_list_free(list);
    g_assert_true(virt_to_phys(&env, 0x40001010, &pa));
    g_assert_cmphex(pa, ==, 0x400010);
    g_assert_true(virt_to_phys(&env, 0xc0123456, &pa));
    g_assert_cmphex(pa, ==, 0x323456);
}

/* 32-bit paging: a PS entry is a 4 MiB page only with CR4.PSE. */
static void test_32bit(void)
{
    CPUX86State env;
    DumpMappingList *list;
    uint64_t pa;
    static const Expect with_pse[] = {
        { 0x400000, 0x800000, 4 * MiB },
        { 0x500000, 0xc0000000ull, 0x1000 },
    };
    /* Without PSE the 4 MiB entry is a PT at 0x400000 (zeros: nothing). */
    static const Expect without_pse[] = {
        { 0x500000, 0xc0000000ull, 0x1000 },
    };

    setup_ram(16 * MiB);
    put32(0x1000 + 2 * 4, 0x400000 | P | PS);
    put32(0x1000 + 768 * 4, 0x2000 | P);
    put32(0x2000 + 0 * 4, 0x500000 | P);
    init_env(&env, CR0_PG_MASK | CR0_PE_MASK, 0x1000, CR4_PSE_MASK, 0);
    list = walk(&env);
    check_list(list, with_pse, G_N_ELEMENTS(with_pse));
    dump_mapping_list_free(list);
    g_assert_true(virt_to_phys(&env, 0x812345, &pa));
    g_assert_cmphex(pa, ==, 0x412345);

    init_env(&env, CR0_PG_MASK | CR0_PE_MASK, 0x1000, 0, 0);
    list = walk(&env);
    check_list(list, without_pse, G_N_ELEMENTS(without_pse));
    dump_mapping_list_free(list);

    /* PSE-36: entry bits 20:13 are physical bits 39:32 (not RAM: dropped). */
    put32(0x1000 + 2 * 4, 0x400000 | P | PS | (1u << 13));
    init_env(&env, CR0_PG_MASK | CR0_PE_MASK, 0x1000, CR4_PSE_MASK, 0);
    g_assert_true(virt_to_phys(&env, 0x800000, &pa));
    g_assert_cmphex(pa, ==, 0x100400000ull);
    list = walk(&env);
    check_list(list, without_pse, G_N_ELEMENTS(without_pse));
    dump_mapping_list_free(list);
}

/*
 * A20 disabled: QEMU ANDs every table address with the vCPU's a20 mask
 * (sign-extended from 32 bits), so CR3 0x101000 reads the tables at 0x1000.
 */
static void test_a20(void)
{
    CPUX86State env;
    DumpMappingList *list;
    static const Expect exp[] = { { 0x300000, 0xc0000000ull, 0x1000 } };

    setup_ram(16 * MiB);
    put32(0x1000 + 768 * 4, 0x2000 | P);
    put32(0x2000, 0x300000 | P);
    init_env(&env, CR0_PG_MASK | CR0_PE_MASK, 0x101000, 0, 0);
    env.a20_mask = ~(1u << 20);
    list = walk(&env);
    check_list(list, exp, G_N_ELEMENTS(exp));
    dump_mapping_list_free(list);
}

/* CR0.PG clear: the vCPU adds nothing. */
static void test_no_paging(void)
{
    CPUX86State env;
    DumpMappingList *list;

    setup_ram(1 * MiB);
    init_env(&env, CR0_PE_MASK, 0x1000, CR4_PAE_MASK, 0);
    list = walk(&env);
    g_assert_cmpuint(dump_mapping_list_count(list), ==, 0);
    dump_mapping_list_free(list);
}

/*
 * QEMU grows a mapping downwards without lowering its phys_addr; ours keeps
 * phys and virt consistent (docs/compat.md).
 */
static void test_merge_downward(void)
{
    DumpMappingList *list = dump_mapping_list_new();
    static const Expect exp[] = {
        { 0x10000, 0xffff800000010000ull, 0x3000 },
        { 0x20000, 0x5000, 0x1000 },
    };

    g_assert_true(dump_mapping_list_add_merge_sorted(list, 0x11000,
                  0xffff800000011000ull, 0x1000, NULL));
    g_assert_true(dump_mapping_list_add_merge_sorted(list, 0x20000, 0x5000,
                                                       0x1000, NULL));
    g_assert_true(dump_mapping_list_add_merge_sorted(list, 0x10000,
                  0xffff800000010000ull, 0x1000, NULL));
    /* Overlapping, same offset: merged by virtual range. */
    g_assert_true(dump_mapping_list_add_merge_sorted(list, 0x11000,
                  0xffff800000011000ull, 0x2000, NULL));
    check_list(list, exp, G_N_ELEMENTS(exp));
    dump_mapping_list_free(list);
}

/* Simple mappings and the begin/length filter (reference 3.3). */
static void test_filter(void)
{
    DumpMappingList *list = dump_mapping_list_new();
    DumpGuestBlock blocks[] = {
        { 0, 0xa0000, NULL },
        { 0xc0000, 0x100000, NULL },
        { 0x100000, 0x4000000, NULL },
    };
    DumpGuestBlockList bl = { 3, blocks };
    static const Expect exp[] = {
        { 0x9f000, 0, 0x1000 },
        { 0xc0000, 0, 0x40000 },
    };

    dump_get_guest_simple_memory_mapping(list, &bl);
    g_assert_cmpuint(dump_mapping_list_count(list), ==, 3);
    dump_mapping_filter(list, 0x9f000, 0x61000);
    check_list(list, exp, G_N_ELEMENTS(exp));
    dump_mapping_list_free(list);

    list = dump_mapping_list_new();
    g_assert_true(dump_mapping_list_add_merge_sorted(list, 0x1000, 0x7000,
                                                       0x4000, NULL));
    dump_mapping_filter(list, 0x2000, 0x1000);
    {
        static const Expect e2[] = { { 0x2000, 0x8000, 0x1000 } };
        check_list(list, e2, 1);
    }
    dump_mapping_list_free(list);
}

/* Every table entry points at the next table, all leaves at one page. */
static void test_hostile_aliases(void)
{
    CPUX86State env;
    DumpMappingList *list = dump_mapping_list_new();
    Error *err = NULL;
    gint64 t0 = g_get_monotonic_time();

    setup_ram(1 * MiB);
    for (int i = 0; i < 512; i++) {
        put64(0x1000 + i * 8, 0x2000 | P);
        put64(0x2000 + i * 8, 0x3000 | P);
        put64(0x3000 + i * 8, 0x4000 | P);
        put64(0x4000 + i * 8, 0x5000 | P);
    }
    init_env(&env, CR0_PG_MASK | CR0_PE_MASK, 0x1000, CR4_PAE_MASK,
             MSR_EFER_LME | MSR_EFER_LMA);
    g_assert_false(get_mapping(list, &env, &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(error_get_pretty(err), "separate ranges"));
    g_test_message("%s (%.2f s)", error_get_pretty(err),
                   (g_get_monotonic_time() - t0) / 1e6);
    g_assert_cmpuint(dump_mapping_list_count(list), <=,
                     MEMORY_MAPPING_MAX_ENTRIES);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 30 * G_USEC_PER_SEC);
    error_free(err);
    dump_mapping_list_free(list);
}

/* A table that points to itself at every level and leaves outside RAM. */
static void test_hostile_walk(void)
{
    CPUX86State env;
    DumpMappingList *list = dump_mapping_list_new();
    Error *err = NULL;
    gint64 t0 = g_get_monotonic_time();

    setup_ram(1 * MiB);
    for (int i = 0; i < 512; i++) {
        put64(0x1000 + i * 8, 0x1000 | P);          /* itself at every level */
    }
    init_env(&env, CR0_PG_MASK | CR0_PE_MASK, 0x1000, CR4_PAE_MASK,
             MSR_EFER_LME | MSR_EFER_LMA);
    /* Whatever the outcome, it is quick and the list stays bounded. */
    if (!get_mapping(list, &env, &err)) {
        g_test_message("%s", error_get_pretty(err));
        g_clear_pointer(&err, error_free);
    }
    g_assert_cmpuint(dump_mapping_list_count(list), <=,
                     MEMORY_MAPPING_MAX_ENTRIES);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 30 * G_USEC_PER_SEC);
    dump_mapping_list_free(list);

    /* A 4-deep chain of full tables whose leaves are all MMIO: 512^4 reads. */
    list = dump_mapping_list_new();
    for (int i = 0; i < 512; i++) {
        put64(0x1000 + i * 8, 0x2000 | P);
        put64(0x2000 + i * 8, 0x3000 | P);
        put64(0x3000 + i * 8, 0x4000 | P);
        put64(0x4000 + i * 8, 0xfee00000ull | P);
    }
    t0 = g_get_monotonic_time();
    g_assert_false(get_mapping(list, &env, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "entries to walk"));
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 30 * G_USEC_PER_SEC);
    error_free(err);
    dump_mapping_list_free(list);
}

/* Many separate mappings stay fast (not O(n^2)) and keep QEMU's order. */
static void test_many_mappings(void)
{
    DumpMappingList *list = dump_mapping_list_new();
    const DumpMapping *m = NULL;
    uint64_t prev = 0;
    gint64 t0 = g_get_monotonic_time();
    const uint64_t n = 200000;

    for (uint64_t i = 0; i < n; i++) {
        /* Descending physical pages, each its own mapping. */
        uint64_t phys = (n - i) * 0x2000;

        g_assert_true(dump_mapping_list_add_merge_sorted(list, phys,
                      0x100000000ull + i * 0x3000, 0x1000, NULL));
    }
    g_assert_cmpuint(dump_mapping_list_count(list), ==, n);
    while ((m = dump_mapping_list_next(list, m))) {
        g_assert_cmphex(m->phys_addr, >, prev);
        prev = m->phys_addr;
    }
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * G_USEC_PER_SEC);
    dump_mapping_list_free(list);
}

/*
 * Fills root k's 32-bit tables. Normal: PDE 0 points at a page table every
 * root shares (a kernel's half), PDE 1 at one of its own (a process), with
 * random leaves. Dense: both tables its own, leaves on neighbouring pages at
 * one of four offsets, so that the roots fill each other's gaps.
 */
static void fill_tables(GRand *r, int k, bool dense)
{
    static const int offs[] = { 0, 16, 17, 32 };
    uint64_t pd = 0x100000 + k * 0x10000;
    uint64_t pt[2] = { dense ? pd + 0x2000 : 0xf0000, pd + 0x1000 };

    for (int i = 0; i < 1024; i++) {
        put32(pd + i * 4, 0);
    }
    for (int t = 0; t < 2; t++) {
        put32(pd + t * 4, (uint32_t)pt[t] | P);
        if (t == 0 && !dense && k > 0) {
            continue;                   /* the shared table is filled once */
        }
        for (int i = 0; i < 1024; i++) {
            uint32_t page = dense ? t * 1024 + i + offs[g_rand_int_range(r, 0, 4)] :
                            g_rand_int_range(r, 0, 2048);

            put32(pt[t] + i * 4, g_rand_boolean(r) ?
                  (uint32_t)(0x400000 + page * 4096) | P : 0);
        }
    }
}

/* How many of rounds differ between one walk per key and QEMU's walk per vCPU. */
static int dedup_rounds(GRand *r, int rounds, int nroots, bool dense)
{
    const int ncpu = 8;
    int diffs = 0;

    for (int round = 0; round < rounds; round++) {
        DumpMappingList *dedup = dump_mapping_list_new();
        DumpMappingList *all = dump_mapping_list_new();
        const DumpMapping *a = NULL, *b = NULL;
        DumpGuestBlockList blocks;
        DumpX86CPUState *st;
        int nst;
        bool same = true;

        for (int k = 0; k < nroots; k++) {
            fill_tables(r, k, dense);
        }
        machine_cpus_destroy();
        machine_cpus_create(ncpu);
        for (int c = 0; c < ncpu; c++) {
            CPUX86State *env = &machine_cpu(c)->env;
            uint64_t root = 0x100000 + g_rand_int_range(r, 0, nroots) * 0x10000;

            /* PCID-like low bits and CR4 bits the walk ignores do not matter. */
            init_env(env, CR0_PG_MASK | CR0_PE_MASK, root | g_rand_int_range(r, 0, 4096),
                     g_rand_boolean(r) ? 1u << 9 : 0, 0);     /* OSFXSR */
        }
        dump_guest_blocks_collect(&blocks);
        st = dump_host_cpu_states(&nst);
        g_assert_true(dump_get_guest_memory_mapping(dedup, &blocks, st, nst, NULL));
        for (int c = 0; c < nst; c++) {
            g_assert_true(x86_dump_get_memory_mapping(all, &blocks, &st[c], NULL));
        }
        g_free(st);
        for (;;) {
            a = dump_mapping_list_next(dedup, a);
            b = dump_mapping_list_next(all, b);
            if (!a || !b) {
                same = same && !a && !b;
                break;
            }
            same = same && !memcmp(a, b, sizeof(*a));
        }
        diffs += !same;
        dump_guest_blocks_free(&blocks);
        dump_mapping_list_free(dedup);
        dump_mapping_list_free(all);
    }
    machine_cpus_destroy();
    return diffs;
}

/*
 * Walking each distinct set of tables once gives QEMU's list (a walk per
 * vCPU) for guests whose address spaces share a kernel half and map their
 * own pages: random tables, 8 vCPUs on 1 to 3 roots in random order. Only
 * tables built so that another root's leaves fill the gaps between
 * same-offset mappings make QEMU's repeated walk grow one mapping over its
 * neighbour (compat.md); that case is measured, not asserted.
 */
static void test_dedup_same_result(void)
{
    GRand *r = g_rand_new_with_seed(0x5eed);

    setup_ram(8 * MiB);
    g_assert_cmpint(dedup_rounds(r, 100, 1, true), ==, 0);
    g_assert_cmpint(dedup_rounds(r, 100, 3, false), ==, 0);
    g_test_message("interleaved same-offset leaves: %d of 100 rounds differ",
                   dedup_rounds(r, 100, 3, true));
    g_rand_free(r);
}

/* A cancelled dump's walk stops at the next table with "dump: cancelled". */
static void test_walk_cancel(void)
{
    CPUX86State env;
    DumpMappingList *list = dump_mapping_list_new();
    atomic_bool cancel = false;
    Error *err = NULL;

    setup_ram(1 * MiB);
    for (int i = 0; i < 512; i++) {
        put64(0x1000 + i * 8, 0x1000 | P);
    }
    init_env(&env, CR0_PG_MASK | CR0_PE_MASK, 0x1000, CR4_PAE_MASK,
             MSR_EFER_LME | MSR_EFER_LMA);
    dump_mapping_list_set_cancel(list, &cancel);
    g_assert_true(dump_mapping_walk_spend(list, 1, &err));
    atomic_store(&cancel, true);
    g_assert_false(get_mapping(list, &env, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "dump: cancelled");
    g_assert_cmpuint(dump_mapping_list_count(list), ==, 0);
    error_free(err);
    dump_mapping_list_free(list);
}

/* A field of /proc/self/status in KiB, or -1. */
static long status_kib(const char *field)
{
    g_autofree char *text = NULL;
    const char *p;

    if (!g_file_get_contents("/proc/self/status", &text, NULL, NULL) ||
        !(p = strstr(text, field))) {
        return -1;
    }
    return strtol(p + strlen(field) + 1, NULL, 10);
}

static bool running_under_asan(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return true;
#endif
#endif
    return false;
}

/* "5" to clear_refs sets VmHWM back to the current RSS (Linux 4.0). */
static bool reset_peak_rss(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    bool ok = fd >= 0 && write(fd, "5", 1) == 1;

    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

/*
 * The list's peak memory at its bound, for the shapes that cost most per
 * entry: every mapping its own offset (the 2^36-alias guest), and offsets
 * shared by two or three mappings (a group each). The peak RSS is reset
 * through clear_refs, then read from VmHWM. Includes reading the list,
 * which sorts it.
 */
static void test_list_peak_memory(void)
{
    static const unsigned per_delta[] = { 1, 2, 3 };

    for (size_t s = 0; s < G_N_ELEMENTS(per_delta); s++) {
        DumpMappingList *list = dump_mapping_list_new();
        const DumpMapping *m = NULL;
        Error *err = NULL;
        long before, peak;
        uint64_t i = 0, n = 0;

        malloc_trim(0);             /* earlier tests' freed memory goes back */
        before = status_kib("VmRSS:");
        if (!reset_peak_rss() || before < 0) {
            g_test_skip("cannot reset the peak RSS through /proc/self/clear_refs");
            dump_mapping_list_free(list);
            return;
        }
        /* Mapping i: delta i / k, phys far apart, so nothing merges. */
        while (dump_mapping_list_add_merge_sorted(list, i * 0x10000,
                   i * 0x10000 + (i / per_delta[s]) * 0x1000000000ull, 0x1000, &err)) {
            i++;
        }
        g_assert_nonnull(strstr(error_get_pretty(err), "separate ranges"));
        g_clear_pointer(&err, error_free);
        while ((m = dump_mapping_list_next(list, m))) {
            n++;
        }
        g_assert_cmpuint(n, ==, MEMORY_MAPPING_MAX_ENTRIES);
        peak = status_kib("VmHWM:");
        dump_mapping_list_free(list);
        g_test_message("%u mappings per offset: %" G_GUINT64_FORMAT " mappings, "
                       "peak %.1f MiB over the start", per_delta[s], n,
                       (peak - before) / 1024.0);
        g_assert_cmpint(peak - before, <, 64 * 1024);
    }
}

/*
 * The merge-step bound is what ends the costliest merge pattern found: one
 * mapping 1 TiB long, then mappings of the same offset above it, each of
 * which must look at every earlier one within that length (QEMU: O(n^2)).
 * Ascending mappings of one offset (a direct map with holes) stay cheap.
 */
static void test_merge_work_bound(void)
{
    DumpMappingList *list = dump_mapping_list_new();
    Error *err = NULL;
    const uint64_t n = 1000000, top = n * 0x2000;
    uint64_t adds = 0;
    gint64 t0 = g_get_monotonic_time();

    for (uint64_t i = 0; i < n; i++) {
        g_assert_true(dump_mapping_list_add_merge_sorted(list, i * 0x2000,
                      i * 0x2000, 0x1000, NULL));
    }
    g_test_message("%" G_GUINT64_FORMAT " ascending mappings of one offset: %.2f s",
                   n, (g_get_monotonic_time() - t0) / 1e6);
    g_assert_true(dump_mapping_list_add_merge_sorted(list, top, top, 1ull << 40,
                                                       NULL));
    t0 = g_get_monotonic_time();
    while (dump_mapping_list_add_merge_sorted(list, top + (1ull << 41) + adds * 0x2000,
                                                top + (1ull << 41) + adds * 0x2000,
                                                0x1000, &err)) {
        adds++;
    }
    g_test_message("%s after %" G_GUINT64_FORMAT " more, %.2f s",
                   error_get_pretty(err), adds, (g_get_monotonic_time() - t0) / 1e6);
    g_assert_nonnull(strstr(error_get_pretty(err), "merge steps"));
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 20 * G_USEC_PER_SEC);
    error_free(err);
    dump_mapping_list_free(list);
}

/*
 * The plan's reads: guest-physical ones may span blocks but not holes, and
 * guest-virtual ones go page by page through the tables, so a buffer that
 * is contiguous in virtual space comes from two blocks.
 */
static void test_plan_reads(void)
{
    DumpPlan plan = { 0 };
    CPUX86State env;
    uint8_t buf[0x1000], want[0x1000];
    Error *err = NULL;

    physmem_reset();
    g_assert_nonnull(physmem_add_block("a", 0, MiB, NULL, false, 0, &err));
    g_assert_nonnull(physmem_add_block("b", MiB, MiB, NULL, false, 1, &err));
    g_assert_null(err);
    for (unsigned i = 0; i < sizeof(want); i++) {
        want[i] = i * 7 + 3;
    }
    g_assert_true(physmem_write(MiB - 0x800, want, sizeof(want), NULL));
    put64(0x1000, 0x2000 | P);
    put64(0x2000, 0x3000 | P);
    put64(0x3000, 0x4000 | P);
    put64(0x4000 + 0 * 8, (MiB - 0x1000) | P);       /* last page of "a" */
    put64(0x4000 + 1 * 8, MiB | P);                  /* first page of "b" */
    put64(0x4000 + 2 * 8, (3 * MiB) | P);            /* a hole */
    init_env(&env, CR0_PG_MASK | CR0_PE_MASK, 0x1000, CR4_PAE_MASK,
             MSR_EFER_LME | MSR_EFER_LMA);
    dump_guest_blocks_collect(&plan.guest_phys_blocks);
    g_assert_cmpuint(plan.guest_phys_blocks.num, ==, 2);

    memset(buf, 0, sizeof(buf));
    g_assert_true(dump_plan_read_phys(&plan, MiB - 0x800, buf, sizeof(buf)));
    g_assert_cmpmem(buf, sizeof(buf), want, sizeof(want));
    memset(buf, 0, sizeof(buf));
    g_assert_true(dump_plan_read_virt(&plan, &env, 0x800, buf, sizeof(buf)));
    g_assert_cmpmem(buf, sizeof(buf), want, sizeof(want));

    /* Nothing is copied from a range that ends in a hole. */
    memset(buf, 0xaa, sizeof(buf));
    g_assert_false(dump_plan_read_phys(&plan, 2 * MiB - 0x800, buf, sizeof(buf)));
    g_assert_cmpuint(buf[0], ==, 0xaa);
    g_assert_false(dump_plan_read_phys(&plan, UINT64_MAX - 0x10, buf, 0x20));
    g_assert_false(dump_plan_read_virt(&plan, &env, 0x1800, buf, sizeof(buf)));
    g_assert_false(dump_plan_read_virt(&plan, &env, 0x3000, buf, 1));
    dump_guest_blocks_free(&plan.guest_phys_blocks);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/page-walk/4level", test_4level);
    g_test_add_func("/page-walk/5level", test_5level);
    g_test_add_func("/page-walk/pae", test_pae);
    g_test_add_func("/page-walk/32bit", test_32bit);
    g_test_add_func("/page-walk/no-paging", test_no_paging);
    g_test_add_func("/page-walk/a20", test_a20);
    g_test_add_func("/mapping/merge-downward", test_merge_downward);
    g_test_add_func("/mapping/filter", test_filter);
    g_test_add_func("/mapping/many", test_many_mappings);
    g_test_add_func("/mapping/merge-work-bound", test_merge_work_bound);
    g_test_add_func("/page-walk/hostile-aliases", test_hostile_aliases);
    g_test_add_func("/page-walk/hostile-walk", test_hostile_walk);
    g_test_add_func("/page-walk/dedup-same-result", test_dedup_same_result);
    g_test_add_func("/page-walk/cancel", test_walk_cancel);
    /*
     * ASan's redzones and quarantine inflate RSS, so the bound is a fact of
     * the plain build only: the sanitizer build does not register it (a skip
     * would read as a missing tool).
     */
    if (!running_under_asan()) {
        g_test_add_func("/mapping/peak-memory", test_list_peak_memory);
    }
    g_test_add_func("/page-walk/plan-reads", test_plan_reads);
    return g_test_run();
}
