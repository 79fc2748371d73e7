/* Builds the synthetic Windows-like guest of win-guest.h in a sparse RAM image. */
#include <string.h>

#include "win-guest.h"

#define PG 4096u

void win_guest_default_options(WinGuestOptions *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->mode = WIN_GUEST_LONG4;
    opt->smp = 1;
    opt->ram_size = 64ull << 20;
    opt->number_processors = -1;
    opt->seed = 1;
}

static uint8_t *page_of(WinGuest *g, uint64_t pfn)
{
    uint8_t *p = g_hash_table_lookup(g->pages, &pfn);

    if (!p) {
        uint64_t *key = g_new(uint64_t, 1);

        *key = pfn;
        p = g_malloc0(PG);
        g_hash_table_insert(g->pages, key, p);
    }
    return p;
}

void win_guest_write(WinGuest *g, uint64_t pa, const void *buf, size_t len)
{
    const uint8_t *src = buf;

    while (len) {
        size_t off = pa & (PG - 1);
        size_t n = MIN(len, PG - off);

        memcpy(page_of(g, pa / PG) + off, src, n);
        pa += n;
        src += n;
        len -= n;
    }
}

void win_guest_read(const WinGuest *g, uint64_t pa, void *buf, size_t len)
{
    uint8_t *dst = buf;

    while (len) {
        uint64_t pfn = pa / PG;
        size_t off = pa & (PG - 1);
        size_t n = MIN(len, PG - off);
        const uint8_t *p = g_hash_table_lookup(g->pages, &pfn);

        if (p) {
            memcpy(dst, p + off, n);
        } else {
            memset(dst, 0, n);
        }
        pa += n;
        dst += n;
        len -= n;
    }
}

static void w64(WinGuest *g, uint64_t pa, uint64_t v)
{
    uint64_t le = GUINT64_TO_LE(v);

    win_guest_write(g, pa, &le, 8);
}

static void w32(WinGuest *g, uint64_t pa, uint32_t v)
{
    uint32_t le = GUINT32_TO_LE(v);

    win_guest_write(g, pa, &le, 4);
}

/* A pointer-sized field at a kernel-area virtual address. */
static void wptr(WinGuest *g, uint64_t va, uint64_t v)
{
    if (g->x64) {
        w64(g, win_guest_kva_to_pa(g, va), v);
    } else {
        w32(g, win_guest_kva_to_pa(g, va), v);
    }
}

uint64_t win_guest_va(const WinGuest *g, uint64_t off)
{
    return g->kva + off;
}

/* Reverse page order: virtual page k of the area is physical page 15 - k. */
uint64_t win_guest_kva_to_pa(const WinGuest *g, uint64_t va)
{
    uint64_t off = va - g->kva;
    uint64_t k = off / PG;

    g_assert(off < WIN_GUEST_KPAGES * PG);
    return WIN_GUEST_KPA + (WIN_GUEST_KPAGES - 1 - k) * PG + (off & (PG - 1));
}

uint64_t win_guest_header_pa(const WinGuest *g)
{
    return g->note_pa + 24;
}

uint8_t *win_guest_header(WinGuest *g)
{
    /* The note sits in consecutive pages; callers edit it through a copy. */
    static __thread uint8_t copy[8192];

    win_guest_read(g, win_guest_header_pa(g), copy, g->x64 ? 8192 : 4096);
    return copy;
}

static void map_kernel_area(WinGuest *g)
{
    uint64_t pt = WIN_GUEST_PT_PA;

    for (unsigned k = 0; k < WIN_GUEST_KPAGES; k++) {
        uint64_t pa = win_guest_kva_to_pa(g, g->kva + k * PG) & ~(uint64_t)(PG - 1);
        uint64_t va = g->kva + k * PG;

        switch (g->opt.mode) {
        case WIN_GUEST_LONG4:
            /* PML4 @pt, PDPT @pt+1p, PD @pt+2p, PT @pt+3p */
            w64(g, pt + ((va >> 39) & 0x1ff) * 8, (pt + PG) | 3);
            w64(g, pt + PG + ((va >> 30) & 0x1ff) * 8, (pt + 2 * PG) | 3);
            w64(g, pt + 2 * PG + ((va >> 21) & 0x1ff) * 8, (pt + 3 * PG) | 3);
            w64(g, pt + 3 * PG + ((va >> 12) & 0x1ff) * 8, pa | 3);
            break;
        case WIN_GUEST_PAE:
            /* PDPT @pt (PDPTEs take no RW bit), PD @pt+1p, PT @pt+2p */
            w64(g, pt + ((va >> 30) & 3) * 8, (pt + PG) | 1);
            w64(g, pt + PG + ((va >> 21) & 0x1ff) * 8, (pt + 2 * PG) | 3);
            w64(g, pt + 2 * PG + ((va >> 12) & 0x1ff) * 8, pa | 3);
            break;
        case WIN_GUEST_X86:
            w32(g, pt + ((va >> 22) & 0x3ff) * 4, (pt + PG) | 3);
            w32(g, pt + PG + ((va >> 12) & 0x3ff) * 4, pa | 3);
            break;
        }
    }
    g->cr3 = pt;
}

static void add_reg(WinGuest *g, int cpu, size_t *n, const char *name, uint64_t v)
{
    g_assert(*n < G_N_ELEMENTS(g->regs[cpu]));
    g->regs[cpu][*n].name = name;
    g->regs[cpu][*n].value = v;
    (*n)++;
}

static void set_registers(WinGuest *g)
{
    static const char *const gpr[] = {
        "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    };

    for (int i = 0; i < g->opt.smp; i++) {
        size_t n = 0;

        if (g->x64) {
            add_reg(g, i, &n, "efer", 0xd01);
            add_reg(g, i, &n, "cr4", 0x6a0);
            add_reg(g, i, &n, "cr0", 0x80050033);
            add_reg(g, i, &n, "cs", 0x10);
            add_reg(g, i, &n, "cs_flags", 0x209b00);  /* present, code, L */
            add_reg(g, i, &n, "rip", 0xfffff80000401000ull + 0x10 * i);
            add_reg(g, i, &n, "rsp", 0xfffff80000403f00ull - 0x100 * i);
            for (size_t k = 0; k < G_N_ELEMENTS(gpr); k++) {
                add_reg(g, i, &n, gpr[k], 0x0101010101010101ull * (k + 1) + i);
            }
        } else {
            add_reg(g, i, &n, "efer", 0);
            add_reg(g, i, &n, "cr4", g->opt.mode == WIN_GUEST_PAE ? 0x20 : 0);
            add_reg(g, i, &n, "cr0", 0x80000011);
            add_reg(g, i, &n, "cs", 0x08);
            add_reg(g, i, &n, "cs_flags", 0xc09b00);   /* present, code, 32-bit */
            add_reg(g, i, &n, "rip", 0x82401000u + 0x10 * i);
            add_reg(g, i, &n, "rsp", 0x82403f00u - 0x100 * i);
            for (size_t k = 0; k < 7; k++) {
                add_reg(g, i, &n, gpr[k], 0x01010101u * (k + 1) + i);
            }
        }
        /*
         * One data descriptor (GDT slot 3) under four selectors, so each
         * CONTEXT field shows which register it came from. Real QEMU loads
         * descriptors from a GDT when its gdbstub sets a selector.
         */
        add_reg(g, i, &n, "ss", 0x18);
        add_reg(g, i, &n, "ds", 0x1b);
        add_reg(g, i, &n, "es", 0x1a);
        add_reg(g, i, &n, "fs", 0x19);
        add_reg(g, i, &n, "gs", 0);
        add_reg(g, i, &n, "rflags", 0x246);
        /* Each vCPU's own CR3 is a user process's; win-dmp must use the header's. */
        add_reg(g, i, &n, "cr3", 0x7000 + i * 0x1000);
        g->nregs = n;
    }
}

static void build_kernel_structures(WinGuest *g)
{
    uint64_t kdbg = win_guest_va(g, WIN_GUEST_KDBG_OFF);
    uint64_t kdbg2 = win_guest_va(g, WIN_GUEST_KDBG_COPY_OFF);
    uint64_t bugcheck = win_guest_va(g, WIN_GUEST_BUGCHECK_OFF);
    uint64_t kpb = win_guest_va(g, WIN_GUEST_KPB_OFF);
    size_t psz = g->x64 ? 8 : 4;
    size_t ctx_size = g->x64 ? 1232 : 720;
    uint8_t kd[0x400] = { 0 };

    /* KDDEBUGGER_DATA64: 64-bit offsets for both kinds, as QEMU reads them. */
    memcpy(kd + 0x10, "KDBG", 4);
    if (g->x64) {
        uint64_t v[2] = { GUINT64_TO_LE(bugcheck), GUINT64_TO_LE(kpb) };

        memcpy(kd + 0x88, &v[0], 8);
        memcpy(kd + 0x218, &v[1], 8);
        v[0] = GUINT64_TO_LE(0xfffffa8000000000ull);
        memcpy(kd + 0xc0, &v[0], 8);
    } else {
        uint32_t v[3] = { GUINT32_TO_LE(bugcheck), GUINT32_TO_LE(kpb),
                          GUINT32_TO_LE(0x84000000u) };

        memcpy(kd + 0x88, &v[0], 4);
        memcpy(kd + 0x218, &v[1], 4);
        memcpy(kd + 0xc0, &v[2], 4);
    }
    kd[0x338] = WIN_GUEST_PRCB_CONTEXT & 0xff;
    kd[0x339] = WIN_GUEST_PRCB_CONTEXT >> 8;
    /* The decrypted copy the fwcfg driver hands over in BugcheckParameter1. */
    win_guest_write(g, win_guest_kva_to_pa(g, kdbg2), kd, sizeof(kd));
    if (g->opt.kdbg_encrypted) {
        for (size_t i = 0x10; i < sizeof(kd); i++) {
            kd[i] ^= 0x5a + i;
        }
    }
    win_guest_write(g, win_guest_kva_to_pa(g, kdbg), kd, sizeof(kd));

    /* KiBugCheckData: code, then four parameters. */
    if (g->x64) {
        w32(g, win_guest_kva_to_pa(g, bugcheck), g->opt.bugcheck_code);
        for (int k = 0; k < 4; k++) {
            w64(g, win_guest_kva_to_pa(g, bugcheck + 8 + 8 * k), 0x1111ull * (k + 1));
        }
    } else {
        w32(g, win_guest_kva_to_pa(g, bugcheck), g->opt.bugcheck_code);
        for (int k = 0; k < 4; k++) {
            w32(g, win_guest_kva_to_pa(g, bugcheck + 4 + 4 * k), 0x1111u * (k + 1));
        }
    }

    for (int i = 0; i < g->opt.smp; i++) {
        uint64_t prcb = win_guest_va(g, WIN_GUEST_PRCB_OFF(i));
        uint64_t ctx = win_guest_va(g, WIN_GUEST_CTX_OFF(i));
        g_autofree uint8_t *old = g_malloc(ctx_size);

        wptr(g, kpb + psz * i, prcb);
        wptr(g, prcb + WIN_GUEST_PRCB_CONTEXT, ctx);
        /* What Windows saved: the dump must show the vCPU's state instead. */
        for (size_t k = 0; k < ctx_size; k++) {
            old[k] = "OLDCTX"[k % 6] + (k % 6 == 5 ? i : 0);
        }
        for (size_t done = 0; done < ctx_size;) {
            uint64_t va = ctx + done;
            size_t n = MIN(ctx_size - done, PG - (va & (PG - 1)));

            win_guest_write(g, win_guest_kva_to_pa(g, va), old + done, n);
            done += n;
        }
    }
}

static uint64_t reg_value(const WinGuest *g, int cpu, const char *name)
{
    for (size_t k = 0; k < g->nregs; k++) {
        if (!strcmp(g->regs[cpu][k].name, name)) {
            return g->regs[cpu][k].value;
        }
    }
    return 0;
}

/*
 * Windows puts the bugchecking CPU's CONTEXT in the header (QEMU leaves it
 * alone); a reader shows it, so make it vCPU 0's registers.
 */
static void header_context(const WinGuest *g, uint8_t *h)
{
    static const char *const gpr64[16] = {
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    };
    static const char *const gpr32[6] = { "rdi", "rsi", "rbx", "rdx", "rcx", "rax" };
    uint8_t *c = h + (g->x64 ? 0x348 : 0x320);
    uint32_t v32;
    uint64_t v64;

#define C32(off, v) (v32 = GUINT32_TO_LE(v), memcpy(c + (off), &v32, 4))
#define C64(off, v) (v64 = GUINT64_TO_LE(v), memcpy(c + (off), &v64, 8))
    if (g->x64) {
        uint16_t sel[6];
        static const char *const segs[6] = { "cs", "ds", "es", "fs", "gs", "ss" };

        memset(c, 0, 1232);
        C32(0x30, 0x0010001f);
        C32(0x34, 0x1f80);
        for (int i = 0; i < 6; i++) {
            sel[i] = GUINT16_TO_LE(reg_value(g, 0, segs[i]));
        }
        memcpy(c + 0x38, sel, sizeof(sel));
        C32(0x44, reg_value(g, 0, "rflags"));
        for (int i = 0; i < 16; i++) {
            C64(0x78 + 8 * i, reg_value(g, 0, gpr64[i]));
        }
        C64(0xf8, reg_value(g, 0, "rip"));
        C32(0x118, 0x1f80);
    } else {
        memset(c, 0, 716);
        C32(0x00, 0x00010017);
        C32(0x8c, reg_value(g, 0, "gs"));
        C32(0x90, reg_value(g, 0, "fs"));
        C32(0x94, reg_value(g, 0, "es"));
        C32(0x98, reg_value(g, 0, "ds"));
        for (int i = 0; i < 6; i++) {
            C32(0x9c + 4 * i, reg_value(g, 0, gpr32[i]));
        }
        C32(0xb4, reg_value(g, 0, "rbp"));
        C32(0xb8, reg_value(g, 0, "rip"));
        C32(0xbc, reg_value(g, 0, "cs"));
        C32(0xc0, reg_value(g, 0, "rflags"));
        C32(0xc4, reg_value(g, 0, "rsp"));
        C32(0xc8, reg_value(g, 0, "ss"));
    }
#undef C32
#undef C64
}

static void build_header(WinGuest *g)
{
    uint64_t ram_pages = g->opt.ram_size / PG;
    size_t hsize = g->x64 ? 8192 : 4096;
    g_autofree uint8_t *h = g_malloc(hsize);
    uint64_t pages = 0;
    uint32_t nhdr[3] = { GUINT32_TO_LE(11), GUINT32_TO_LE(hsize), 0 };
    uint32_t nproc = g->opt.number_processors < 0 ? (uint32_t)g->opt.smp
                                                  : (uint32_t)g->opt.number_processors;

    g->runs[0] = (WinGuestRun){ 1, 0x9f };
    g->runs[1] = (WinGuestRun){ 0x100, 0x700 };
    g->runs[2] = (WinGuestRun){ 0x900, ram_pages - 0x900 };
    g->nruns = 3;
    for (size_t i = 0; i < g->nruns; i++) {
        pages += g->runs[i].page_count;
    }

    /* KeInitializeCrashDumpHeader fills unused space with "PAGE". */
    for (size_t i = 0; i < hsize; i += 4) {
        memcpy(h + i, "PAGE", 4);
    }
#define PUT32(off, v) \
    do { uint32_t le_ = GUINT32_TO_LE(v); memcpy(h + (off), &le_, 4); } while (0)
#define PUT64(off, v) \
    do { uint64_t le_ = GUINT64_TO_LE(v); memcpy(h + (off), &le_, 8); } while (0)
    if (g->x64) {
        memcpy(h + 4, "DU64", 4);
        PUT32(0x08, 15);
        PUT32(0x0c, 19041);
        PUT64(0x10, g->cr3);
        PUT64(0x18, 0);
        PUT64(0x20, g->kva + 0x40000);
        PUT64(0x28, g->kva + 0x50000);
        PUT32(0x30, 0x8664);
        PUT32(0x34, nproc);
        PUT32(0x38, 0);
        PUT32(0x3c, 0);
        PUT64(0x40, win_guest_va(g, WIN_GUEST_KDBG_COPY_OFF));
        PUT64(0x48, 0);
        PUT64(0x50, 0);
        PUT64(0x58, 0);
        memset(h + 0x60, 0, 32);
        memcpy(h + 0x60, "guestdump-win-guest", 19);
        PUT64(0x80, win_guest_va(g, WIN_GUEST_KDBG_OFF));
        PUT32(0x88, g->nruns);
        PUT32(0x8c, 0x12345678);      /* QEMU clears it */
        PUT64(0x90, pages);
        for (size_t i = 0; i < g->nruns; i++) {
            PUT64(0x98 + 16 * i, g->runs[i].base_page);
            PUT64(0xa0 + 16 * i, g->runs[i].page_count);
        }
        PUT32(0xf98, 1);              /* DumpType: full */
        PUT32(0xf9c, 0x12345678);     /* QEMU clears it */
        PUT64(0xfa0, 0);
        PUT64(0xfa8, 0x01d9c0ffee000000ull);
    } else {
        memcpy(h + 4, "DUMP", 4);
        PUT32(0x08, 15);
        PUT32(0x0c, 2600);
        PUT32(0x10, g->cr3);
        PUT32(0x14, 0);
        PUT32(0x18, g->kva + 0x40000);
        PUT32(0x1c, g->kva + 0x50000);
        PUT32(0x20, 0x14c);
        PUT32(0x24, nproc);
        PUT32(0x28, 0);
        PUT32(0x2c, win_guest_va(g, WIN_GUEST_KDBG_COPY_OFF));
        PUT32(0x30, 0);
        PUT32(0x34, 0);
        PUT32(0x38, 0);
        memset(h + 0x3c, 0, 32);
        memcpy(h + 0x3c, "guestdump-win-guest", 19);
        PUT32(0x60, win_guest_va(g, WIN_GUEST_KDBG_OFF));
        PUT32(0x64, g->nruns);
        PUT32(0x68, pages);
        for (size_t i = 0; i < g->nruns; i++) {
            PUT32(0x6c + 8 * i, g->runs[i].base_page);
            PUT32(0x70 + 8 * i, g->runs[i].page_count);
        }
        /* Windows' fields inside what QEMU calls reserved: PaeEnabled, DumpType. */
        h[0x5c] = g->opt.mode == WIN_GUEST_PAE;
        h[0x5d] = h[0x5e] = h[0x5f] = 0;
        PUT32(0xf88, 1);
        PUT32(0xfa0, 0);              /* QEMU sets the low half only */
    }
#undef PUT32
#undef PUT64
    header_context(g, h);
    g->note_pa = WIN_GUEST_NOTE_PA;
    g->note_size = 24 + hsize;
    win_guest_write(g, g->note_pa, nhdr, 12);
    win_guest_write(g, g->note_pa + 12, "VMCOREINFO\0\0", 12);
    win_guest_write(g, g->note_pa + 24, h, hsize);
}

static void fill_data(WinGuest *g)
{
    guint32 x = g->opt.seed * 2654435761u + 1;
    g_autofree uint8_t *page = g_malloc(PG);

    for (uint64_t pa = WIN_GUEST_DATA_PA; pa < WIN_GUEST_DATA_PA + WIN_GUEST_DATA_SIZE;
         pa += PG) {
        /* Every 4th page is zero, as in a real guest. */
        if ((pa / PG) % 4 == 3) {
            memset(page, 0, PG);
            win_guest_write(g, pa, page, PG);
            continue;
        }
        for (size_t k = 0; k < PG; k += 4) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            memcpy(page + k, &x, 4);
        }
        memcpy(page, "WINGUEST", 8);
        win_guest_write(g, pa, page, PG);
    }
}

WinGuest *win_guest_new(const WinGuestOptions *opt)
{
    WinGuest *g = g_new0(WinGuest, 1);

    g_assert(opt->smp >= 1 && opt->smp <= WIN_GUEST_MAX_CPUS);
    g_assert(opt->ram_size >= (32ull << 20) && opt->ram_size <= (3ull << 30));
    g->opt = *opt;
    g->x64 = opt->mode == WIN_GUEST_LONG4;
    g->kva = g->x64 ? WIN_GUEST_KVA64 : WIN_GUEST_KVA32;
    g->pages = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    map_kernel_area(g);
    set_registers(g);
    build_kernel_structures(g);
    build_header(g);
    fill_data(g);
    return g;
}

void win_guest_free(WinGuest *g)
{
    if (g) {
        g_hash_table_destroy(g->pages);
        g_free(g);
    }
}

static int pfn_cmp(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

void win_guest_foreach_range(const WinGuest *g,
                             void (*fn)(uint64_t pa, const uint8_t *data, size_t len,
                                        void *opaque),
                             void *opaque)
{
    g_autoptr(GArray) pfns = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    GHashTableIter it;
    gpointer key;

    g_hash_table_iter_init(&it, g->pages);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        g_array_append_val(pfns, *(uint64_t *)key);
    }
    g_array_sort(pfns, pfn_cmp);
    for (size_t i = 0; i < pfns->len;) {
        uint64_t first = g_array_index(pfns, uint64_t, i);
        size_t j = i + 1;
        g_autofree uint8_t *buf = NULL;

        while (j < pfns->len && g_array_index(pfns, uint64_t, j) == first + (j - i)) {
            j++;
        }
        buf = g_malloc((j - i) * PG);
        win_guest_read(g, first * PG, buf, (j - i) * PG);
        fn(first * PG, buf, (j - i) * PG, opaque);
        i = j;
    }
}
