/* x86 page-table walk: every leaf mapping of a vCPU, and single address translation. */
#include <glib.h>
#include <string.h>

#include "qemu/bswap.h"
#include "sysemu/dump-x86.h"
#include "sysemu/dump-memory.h"

#define PG_PRESENT (1ull << 0)
#define PG_PSE (1ull << 7)
/* Bits 51:12: next-level tables (QEMU's PLM4_ADDR_MASK). */
#define ADDR_MASK_52 0x000ffffffffff000ull
/*
 * Leaves: QEMU clears only bit 63, so protection keys and software bits
 * (62:52) turn into a bogus physical address and the page silently
 * disappears. MAXPHYADDR is at most 52: we clear 63:52 (docs/compat.md).
 */
#define LEAF_MASK_4K ADDR_MASK_52
#define LEAF_MASK_2M 0x000fffffffe00000ull
#define LEAF_MASK_1G 0x000fffffc0000000ull

typedef struct Walk {
    DumpMappingList *list;
    const DumpGuestBlockList *blocks;
    uint64_t a20;             /* sign-extended, as QEMU's int a20_mask */
    Error **errp;
    bool failed;
    /*
     * A live dump's tables are read from its snapshot into these, one per
     * call site below (no site recurses into itself), so a walk that runs
     * while the guest runs again still sees the tables of the pause.
     */
    uint8_t (*copies)[4096];
} Walk;

#define WALK_TABLE_SITES 8

static uint64_t a20_mask64(const DumpX86CPUState *env)
{
    return (uint64_t)(int64_t)(int32_t)env->a20_mask;
}

/*
 * A whole table as a host pointer, or NULL when it is not in RAM: QEMU's
 * loads of unassigned memory read 0, i.e. "not present", so the caller
 * skips such a table.
 */
static const uint8_t *table_ptr(const Walk *w, uint64_t gpa, size_t size,
                               unsigned site)
{
    const uint8_t *t = dump_guest_blocks_host_ptr(w->blocks, gpa, size);

    if (!t || !w->blocks->live) {
        return t;
    }
    g_assert(site < WALK_TABLE_SITES && size <= 4096);
    dump_guest_blocks_read(w->blocks, gpa, w->copies[site], size);
    return w->copies[site];
}

static uint64_t ld64(const uint8_t *t, unsigned i)
{
    return ldq_le_p(t + i * 8);
}

static uint32_t ld32(const uint8_t *t, unsigned i)
{
    return ldl_le_p(t + i * 4);
}

/* Every table goes through here: the dump's budget, and the cancel check. */
static bool walk_spend(Walk *w, unsigned n)
{
    if (w->failed) {
        return false;
    }
    if (!dump_mapping_walk_spend(w->list, n, w->errp)) {
        w->failed = true;
        return false;
    }
    return true;
}

/* QEMU skips leaves whose first byte is not RAM (MMIO, holes). */
static void walk_leaf(Walk *w, uint64_t phys, uint64_t virt, uint64_t size)
{
    if (w->failed || !dump_guest_blocks_find(w->blocks, phys)) {
        return;
    }
    if (!dump_mapping_list_add_merge_sorted(w->list, phys, virt, size, w->errp)) {
        w->failed = true;
    }
}

/* Page table (PAE / IA-32e): 512 x 4 KiB. */
static void walk_pte64(Walk *w, uint64_t base, uint64_t line)
{
    const uint8_t *t = table_ptr(w, base, 4096, 0);

    if (!t || !walk_spend(w, 512)) {
        return;
    }
    for (unsigned i = 0; i < 512 && !w->failed; i++) {
        uint64_t e = ld64(t, i);

        if (e & PG_PRESENT) {
            walk_leaf(w, e & LEAF_MASK_4K, line | ((uint64_t)i << 12), 4096);
        }
    }
}

static void walk_pde64(Walk *w, uint64_t base, uint64_t line)
{
    const uint8_t *t = table_ptr(w, base, 4096, 1);

    if (!t || !walk_spend(w, 512)) {
        return;
    }
    for (unsigned i = 0; i < 512 && !w->failed; i++) {
        uint64_t e = ld64(t, i);
        uint64_t va = line | ((uint64_t)i << 21);

        if (!(e & PG_PRESENT)) {
            continue;
        }
        if (e & PG_PSE) {
            walk_leaf(w, e & LEAF_MASK_2M, va, 1ull << 21);
        } else {
            walk_pte64(w, (e & ADDR_MASK_52) & w->a20, va);
        }
    }
}

static void walk_pdpe64(Walk *w, uint64_t base, uint64_t line)
{
    const uint8_t *t = table_ptr(w, base, 4096, 2);

    if (!t || !walk_spend(w, 512)) {
        return;
    }
    for (unsigned i = 0; i < 512 && !w->failed; i++) {
        uint64_t e = ld64(t, i);
        uint64_t va = line | ((uint64_t)i << 30);

        if (!(e & PG_PRESENT)) {
            continue;
        }
        if (e & PG_PSE) {
            walk_leaf(w, e & LEAF_MASK_1G, va, 1ull << 30);
        } else {
            walk_pde64(w, (e & ADDR_MASK_52) & w->a20, va);
        }
    }
}

/*
 * Canonical form of a 48- or 57-bit address. QEMU ORs the high bits into
 * every address, so user-half addresses come out non-canonical (compat.md).
 */
static uint64_t canonical(uint64_t va, unsigned bits)
{
    return (uint64_t)((int64_t)(va << (64 - bits)) >> (64 - bits));
}

static void walk_pml4e(Walk *w, uint64_t base, uint64_t line, bool la57)
{
    const uint8_t *t = table_ptr(w, base, 4096, 3);

    if (!t || !walk_spend(w, 512)) {
        return;
    }
    for (unsigned i = 0; i < 512 && !w->failed; i++) {
        uint64_t e = ld64(t, i);

        if (e & PG_PRESENT) {
            uint64_t va = line | ((uint64_t)i << 39);

            if (!la57) {
                va = canonical(va, 48);
            }
            walk_pdpe64(w, (e & ADDR_MASK_52) & w->a20, va);
        }
    }
}

static void walk_pml5e(Walk *w, uint64_t base)
{
    const uint8_t *t = table_ptr(w, base, 4096, 4);

    if (!t || !walk_spend(w, 512)) {
        return;
    }
    for (unsigned i = 0; i < 512 && !w->failed; i++) {
        uint64_t e = ld64(t, i);

        if (e & PG_PRESENT) {
            uint64_t va = canonical((uint64_t)i << 48, 57);

            walk_pml4e(w, (e & ADDR_MASK_52) & w->a20, va, true);
        }
    }
}

/* Legacy PAE: 4 PDPTEs, 2 MiB or 4 KiB pages, 32-bit virtual addresses. */
static void walk_pae(Walk *w, uint64_t pdpt)
{
    const uint8_t *t = table_ptr(w, pdpt, 32, 5);

    if (!t || !walk_spend(w, 4)) {
        return;
    }
    for (unsigned i = 0; i < 4 && !w->failed; i++) {
        uint64_t e = ld64(t, i);

        /* QEMU masks only the low bits of the PDPTE's table pointer. */
        if (e & PG_PRESENT) {
            walk_pde64(w, (e & ~0xfffull) & w->a20, (uint64_t)i << 30);
        }
    }
}

/* 32-bit paging: 4 KiB pages, and 4 MiB pages with CR4.PSE (PSE-36 bits). */
static void walk_pte32(Walk *w, uint64_t base, uint32_t line)
{
    const uint8_t *t = table_ptr(w, base, 4096, 6);

    if (!t || !walk_spend(w, 1024)) {
        return;
    }
    for (unsigned i = 0; i < 1024 && !w->failed; i++) {
        uint32_t e = ld32(t, i);

        if (e & PG_PRESENT) {
            walk_leaf(w, e & ~0xfffu, line | (i << 12), 4096);
        }
    }
}

static void walk_pde32(Walk *w, uint64_t base, bool pse)
{
    const uint8_t *t = table_ptr(w, base, 4096, 7);

    if (!t || !walk_spend(w, 1024)) {
        return;
    }
    for (unsigned i = 0; i < 1024 && !w->failed; i++) {
        uint32_t e = ld32(t, i);
        uint32_t va = i << 22;

        if (!(e & PG_PRESENT)) {
            continue;
        }
        if ((e & PG_PSE) && pse) {
            uint64_t phys = (e & 0xffc00000u) | ((uint64_t)(e & 0x1fe000u) << 19);

            walk_leaf(w, phys, va, 1u << 22);
        } else {
            walk_pte32(w, (e & ~0xfffu) & w->a20, va);
        }
    }
}

enum {
    WALK_OFF,
    WALK_32,                  /* 2-level, 4 KiB pages only */
    WALK_32_PSE,              /* 2-level with 4 MiB pages */
    WALK_PAE,
    WALK_4LEVEL,
    WALK_5LEVEL,
};

void x86_dump_walk_key(const DumpX86CPUState *env, X86WalkKey *key)
{
    uint64_t a20 = a20_mask64(env);

    *key = (X86WalkKey){ .a20 = a20, .mode = WALK_OFF };
    if (!dump_x86_paging_enabled(env)) {
        return;
    }
    if (env->cr[4] & DUMP_X86_CR4_PAE) {
        if (env->efer & DUMP_X86_EFER_LMA) {
            key->root = (env->cr[3] & ADDR_MASK_52) & a20;
            key->mode = env->cr[4] & DUMP_X86_CR4_LA57 ? WALK_5LEVEL : WALK_4LEVEL;
        } else {
            key->root = (env->cr[3] & ~0x1full) & a20;
            key->mode = WALK_PAE;
        }
    } else {
        key->root = (env->cr[3] & ~0xfffull) & a20;
        key->mode = env->cr[4] & DUMP_X86_CR4_PSE ? WALK_32_PSE : WALK_32;
    }
}

bool x86_dump_get_memory_mapping(DumpMappingList *list,
                                 const DumpGuestBlockList *blocks,
                                 const DumpX86CPUState *env, Error **errp)
{
    X86WalkKey key;
    g_autofree uint8_t (*copies)[4096] = blocks->live ?
        g_malloc(WALK_TABLE_SITES * 4096) : NULL;
    Walk w = {
        .list = list,
        .blocks = blocks,
        .errp = errp,
        .copies = copies,
    };

    x86_dump_walk_key(env, &key);
    w.a20 = key.a20;
    switch (key.mode) {
    case WALK_5LEVEL:
        walk_pml5e(&w, key.root);
        break;
    case WALK_4LEVEL:
        walk_pml4e(&w, key.root, 0, false);
        break;
    case WALK_PAE:
        walk_pae(&w, key.root);
        break;
    case WALK_32:
    case WALK_32_PSE:
        walk_pde32(&w, key.root, key.mode == WALK_32_PSE);
        break;
    default:
        break;
    }
    return !w.failed;
}

/* ---------------------------------------------------------------------- */
/* Single translation                                                       */
/* ---------------------------------------------------------------------- */

/* Through the dump's page source: a live dump's translations use the snapshot. */
static bool load64(const DumpGuestBlockList *blocks, uint64_t gpa, uint64_t *v)
{
    uint8_t p[8];

    if (!dump_guest_blocks_host_ptr(blocks, gpa, 8) ||
        !dump_guest_blocks_read(blocks, gpa, p, 8)) {
        return false;
    }
    *v = ld64(p, 0);
    return true;
}

static bool load32(const DumpGuestBlockList *blocks, uint64_t gpa, uint32_t *v)
{
    uint8_t p[4];

    if (!dump_guest_blocks_host_ptr(blocks, gpa, 4) ||
        !dump_guest_blocks_read(blocks, gpa, p, 4)) {
        return false;
    }
    *v = ld32(p, 0);
    return true;
}

/* The same rules as the walk, one path down the tree. */
bool x86_virt_to_phys(const DumpGuestBlockList *blocks, const DumpX86CPUState *env,
                      uint64_t vaddr, uint64_t *paddr)
{
    uint64_t a20 = a20_mask64(env);
    uint64_t e, base;
    int level;

    if (!dump_x86_paging_enabled(env)) {
        *paddr = vaddr & a20;
        return true;
    }
    if (!(env->cr[4] & DUMP_X86_CR4_PAE)) {
        uint32_t e32, va = (uint32_t)vaddr;

        if (vaddr >> 32 ||
            !load32(blocks,
                    ((env->cr[3] & ~0xfffull) & a20) + ((va >> 22) & 0x3ff) * 4,
                    &e32) || !(e32 & PG_PRESENT)) {
            return false;
        }
        if ((e32 & PG_PSE) && (env->cr[4] & DUMP_X86_CR4_PSE)) {
            *paddr = ((e32 & 0xffc00000u) | ((uint64_t)(e32 & 0x1fe000u) << 19)) +
                     (va & 0x3fffff);
            return true;
        }
        if (!load32(blocks, ((e32 & ~0xfffu) & a20) + ((va >> 12) & 0x3ff) * 4,
                    &e32) ||
            !(e32 & PG_PRESENT)) {
            return false;
        }
        *paddr = (e32 & ~0xfffu) + (va & 0xfff);
        return true;
    }
    if (env->efer & DUMP_X86_EFER_LMA) {
        bool la57 = env->cr[4] & DUMP_X86_CR4_LA57;

        level = la57 ? 5 : 4;
        if (canonical(vaddr, la57 ? 57 : 48) != vaddr) {
            return false;
        }
        base = (env->cr[3] & ADDR_MASK_52) & a20;
    } else {
        if (vaddr >> 32 ||
            !load64(blocks, ((env->cr[3] & ~0x1full) & a20) + ((vaddr >> 30) & 3) * 8,
                    &e) ||
            !(e & PG_PRESENT)) {
            return false;
        }
        level = 2;
        base = (e & ~0xfffull) & a20;
    }
    for (; level >= 1; level--) {
        unsigned shift = 12 + 9 * (level - 1);

        if (!load64(blocks, base + ((vaddr >> shift) & 0x1ff) * 8, &e) ||
            !(e & PG_PRESENT)) {
            return false;
        }
        if (level == 1) {
            *paddr = (e & LEAF_MASK_4K) + (vaddr & 0xfff);
            return true;
        }
        if ((level == 2 || level == 3) && (e & PG_PSE)) {
            uint64_t mask = level == 2 ? LEAF_MASK_2M : LEAF_MASK_1G;

            *paddr = (e & mask) + (vaddr & ((1ull << shift) - 1));
            return true;
        }
        base = (e & ADDR_MASK_52) & a20;
    }
    return false;
}
