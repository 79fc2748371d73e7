/* The built-in demo guest: a seeded long-mode Linux-like guest (docs/demo-guest.md). */
#include <string.h>

#include <glib.h>

#include "hw/fw_cfg.h"
#include "hw/vmcoreinfo.h"
#include "sysemu/cpus.h"
#include "sysemu/physmem.h"
#include "sysemu/runstate.h"
#include "system/demo.h"
#include "system/machine-internal.h"

#define PAGE_SIZE 4096ULL
#define PAGE_2M   (2ULL << 20)
#define PAGE_1G   (1ULL << 30)

/* Page-table entry bits. */
#define PTE_P   (1ULL << 0)
#define PTE_RW  (1ULL << 1)
#define PTE_US  (1ULL << 2)
#define PTE_A   (1ULL << 5)
#define PTE_D   (1ULL << 6)
#define PTE_PS  (1ULL << 7)
#define PTE_G   (1ULL << 8)
#define PTE_NX  (1ULL << 63)
#define KERN_TABLE (PTE_P | PTE_RW | PTE_A | PTE_D)
#define USER_TABLE (KERN_TABLE | PTE_US)

/* Only the first DEMO_FILL_MAX bytes of RAM get content; see docs/demo-guest.md. */
#define DEMO_FILL_MAX (4ULL << 30)
#define DEMO_TEXT_POOL (256u << 10)
#define DEMO_TICK_MS 10

typedef struct DemoGuest {
    uint64_t seed;
    uint64_t pt_next;           /* bump allocator inside the page-table area */
    uint64_t ticks;
    guint timer;
    char *text_pool;
} DemoGuest;

static DemoGuest *demo;
static bool handler_added;

/* splitmix64: seeds every stream from (seed, purpose, index), so order never matters. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t stream_seed(uint64_t seed, uint64_t purpose, uint64_t index)
{
    return mix64(mix64(seed ^ mix64(purpose)) ^ index);
}

/* xorshift64*: fast enough to fill random pages at several GB/s. */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* Everything the demo writes lies in low RAM, checked once in demo_guest_init(). */
static void put_bytes(uint64_t gpa, const void *data, size_t len)
{
    bool ok = physmem_write(gpa, data, len, NULL);

    g_assert(ok);
}

static void put_u64(uint64_t gpa, uint64_t v)
{
    uint64_t le = GUINT64_TO_LE(v);

    put_bytes(gpa, &le, sizeof(le));
}

/* Text-like bytes: words and log lines, which compress as real page cache does. */
static char *make_text_pool(uint64_t seed)
{
    static const char *const words[] = {
        "the", "kernel", "page", "memory", "guest", "dump", "buffer", "process",
        "thread", "lock", "queue", "device", "driver", "block", "inode", "file",
        "system", "network", "packet", "socket", "timer", "interrupt", "cpu",
        "cache", "mapping", "virtual", "physical", "address", "table", "entry",
        "error", "warning", "info", "debug", "read", "write", "open", "close",
        "start", "stop", "request", "response", "value", "count", "size",
        "offset", "length", "struct", "int", "return", "if", "else", "for",
        "while", "static", "void", "const", "char", "unsigned", "long", "NULL",
        "{", "}", ";",
    };
    uint64_t s = stream_seed(seed, 1, 0) | 1;
    GString *str = g_string_sized_new(DEMO_TEXT_POOL + 128);
    unsigned col = 0;

    while (str->len < DEMO_TEXT_POOL) {
        uint64_t r = rng_next(&s);
        if (r % 17 == 0) {
            g_string_append_printf(str, "\n[%6u.%06u] ", (unsigned)(r >> 40) % 100000,
                                   (unsigned)(r >> 20) % 1000000);
            col = 0;
        }
        g_string_append(str, words[(r >> 8) % G_N_ELEMENTS(words)]);
        g_string_append_c(str, ++col % 12 ? ' ' : '\n');
    }
    return g_string_free(str, FALSE);
}

/*
 * Fills the pages of [start, end) (inside one block) that belong to the 2 MiB
 * chunk at chunk_gpa. Each chunk draws its runs from its own stream, so the
 * content of a page depends only on the seed and its address.
 */
static void fill_chunk(const RAMBlock *rb, uint64_t chunk_gpa, uint64_t start,
                       uint64_t end, uint64_t seed, const char *pool)
{
    uint64_t s = stream_seed(seed, 2, chunk_gpa) | 1;
    uint64_t page = chunk_gpa;

    while (page < chunk_gpa + PAGE_2M) {
        uint64_t r = rng_next(&s);
        unsigned kind = r % 100;            /* <40 zero, <80 text, else random */
        uint64_t run = 1 + (r >> 32) % 32;

        for (; run > 0 && page < chunk_gpa + PAGE_2M; run--, page += PAGE_SIZE) {
            uint64_t pr = rng_next(&s);
            uint8_t *host;

            if (page < start || page + PAGE_SIZE > end || kind < 40) {
                continue;
            }
            host = rb->host + (page - rb->gpa);
            if (kind < 80) {
                memcpy(host, pool + pr % (DEMO_TEXT_POOL - PAGE_SIZE), PAGE_SIZE);
            } else {
                uint64_t *q = (uint64_t *)host;
                uint64_t ps = pr | 1;
                for (size_t i = 0; i < PAGE_SIZE / 8; i++) {
                    q[i] = rng_next(&ps);
                }
            }
        }
    }
}

typedef struct FillJob {
    uint64_t seed;
    const char *pool;
    unsigned part, parts;
} FillJob;

/* Fills every writable block chunk by chunk; part/parts split chunks among threads. */
static gpointer fill_ram_part(gpointer opaque)
{
    FillJob *job = opaque;
    uint64_t budget = DEMO_FILL_MAX;
    uint64_t n = 0;

    for (size_t i = 0; i < physmem_block_count() && budget; i++) {
        const RAMBlock *rb = physmem_block(i);
        uint64_t end, c;

        if (rb->readonly) {
            continue;
        }
        end = rb->gpa + MIN(rb->size, budget);
        budget -= MIN(rb->size, budget);
        for (c = rb->gpa & ~(PAGE_2M - 1); c < end; c += PAGE_2M, n++) {
            if (n % job->parts == job->part) {
                fill_chunk(rb, c, rb->gpa, end, job->seed, job->pool);
            }
        }
    }
    return NULL;
}

static void fill_ram(uint64_t seed, const char *pool)
{
    FillJob jobs[2];
    GThread *helper;

    /* Two halves interleaved by chunk: page faults are the cost, and they scale. */
    for (unsigned i = 0; i < 2; i++) {
        jobs[i] = (FillJob) { seed, pool, i, 2 };
    }
    helper = g_thread_new("demo-fill", fill_ram_part, &jobs[1]);
    fill_ram_part(&jobs[0]);
    g_thread_join(helper);
}

/* One zeroed page from the page-table area of the kernel image. */
static uint64_t pt_alloc(void)
{
    uint64_t pa = demo->pt_next;
    static const uint8_t zero[PAGE_SIZE];

    g_assert(pa + PAGE_SIZE <= DEMO_KERNEL_PHYS + DEMO_PT_OFF + DEMO_PT_SIZE);
    demo->pt_next += PAGE_SIZE;
    put_bytes(pa, zero, PAGE_SIZE);
    return pa;
}

static uint64_t get_u64(uint64_t gpa)
{
    uint64_t le = 0;
    bool ok = physmem_read(gpa, &le, sizeof(le), NULL);

    g_assert(ok);
    return GUINT64_FROM_LE(le);
}

/* The table that entry idx of table_pa points to, created on first use. */
static uint64_t pt_next_level(uint64_t table_pa, unsigned idx, uint64_t flags)
{
    uint64_t e = get_u64(table_pa + idx * 8);

    if (!(e & PTE_P)) {
        e = pt_alloc() | flags;
        put_u64(table_pa + idx * 8, e);
    } else if (flags & PTE_US) {
        put_u64(table_pa + idx * 8, e | PTE_US);
    }
    return e & 0x000ffffffffff000ULL;
}

/* Maps one page of size psize (4 KiB, 2 MiB or 1 GiB) at va to pa. */
static void map_page(uint64_t va, uint64_t pa, uint64_t psize, uint64_t flags)
{
    uint64_t tflags = (flags & PTE_US) ? USER_TABLE : KERN_TABLE;
    uint64_t t = DEMO_CR3;
    unsigned shift = 39;

    for (;;) {
        unsigned idx = (va >> shift) & 511;
        uint64_t level_size = 1ULL << shift;

        if (level_size == psize) {
            put_u64(t + idx * 8, pa | flags | (psize > PAGE_SIZE ? PTE_PS : 0));
            return;
        }
        t = pt_next_level(t, idx, tflags);
        shift -= 9;
    }
}

/* The direct map: every RAM page at DEMO_DIRECT_MAP + gpa, largest pages that fit. */
static void map_direct(void)
{
    uint64_t flags = PTE_P | PTE_RW | PTE_A | PTE_D | PTE_G | PTE_NX;

    for (size_t i = 0; i < physmem_block_count(); i++) {
        const RAMBlock *rb = physmem_block(i);
        uint64_t a = rb->gpa, end = rb->gpa + (rb->size & ~(PAGE_SIZE - 1));

        if (rb->readonly) {
            continue;
        }
        while (a < end) {
            uint64_t ps = PAGE_SIZE;
            if (!(a & (PAGE_1G - 1)) && end - a >= PAGE_1G) {
                ps = PAGE_1G;
            } else if (!(a & (PAGE_2M - 1)) && end - a >= PAGE_2M) {
                ps = PAGE_2M;
            }
            map_page(DEMO_DIRECT_MAP + a, a, ps, flags);
            a += ps;
        }
    }
}

static void map_kernel(void)
{
    for (uint64_t off = 0; off < DEMO_KERNEL_SIZE; off += PAGE_2M) {
        /* text is read-only and executable; the rest is data */
        uint64_t flags = off < DEMO_PT_OFF ? PTE_P | PTE_A | PTE_G
                                          : PTE_P | PTE_RW | PTE_A | PTE_D | PTE_G |
                                            PTE_NX;
        map_page(DEMO_KERNEL_VIRT + off, DEMO_KERNEL_PHYS + off, PAGE_2M, flags);
    }
}

/* A page tag like ptgen's: tests find each user page by its text. */
static void tag_page(uint64_t pa, uint64_t va)
{
    char tag[32] = "DEMOUSER";

    memcpy(tag + 8, &(uint64_t){ GUINT64_TO_LE(va) }, 8);
    memcpy(tag + 16, &(uint64_t){ GUINT64_TO_LE(pa) }, 8);
    put_bytes(pa, tag, 24);
}

static void map_user(void)
{
    const uint64_t ro = PTE_P | PTE_US | PTE_A;
    const uint64_t rw = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D | PTE_NX;

    for (const DemoUserPage *u = demo_user_pages; u->va; u++) {
        map_page(u->va, u->pa, PAGE_SIZE, u->writable ? rw : ro);
        tag_page(u->pa, u->va);
    }
}

/* A segment descriptor from base, 20-bit limit, access byte and flag nibble. */
static uint64_t make_desc(uint32_t base, uint32_t limit, unsigned access, unsigned fl)
{
    return (limit & 0xffffULL) | ((uint64_t)(base & 0xffffff) << 16) |
           ((uint64_t)access << 40) | ((uint64_t)((limit >> 16) & 0xf) << 48) |
           ((uint64_t)fl << 52) | ((uint64_t)(base >> 24) << 56);
}

static uint64_t cpu_percpu_phys(int i)
{
    return DEMO_PERCPU_PHYS + (uint64_t)i * DEMO_PERCPU_SIZE;
}

static void write_gdt_idt(int ncpus)
{
    for (int i = 0; i < ncpus; i++) {
        uint64_t g = DEMO_KERNEL_PHYS + DEMO_GDT_OFF + (uint64_t)i * DEMO_GDT_SIZE;
        uint64_t tss = DEMO_DIRECT_MAP + cpu_percpu_phys(i) + DEMO_TSS_OFF;

        put_u64(g + 0x00, 0);
        put_u64(g + 0x08, make_desc(0, 0xfffff, 0x9b, 0xc));  /* 32-bit kernel CS */
        put_u64(g + 0x10, make_desc(0, 0xfffff, 0x9b, 0xa));  /* __KERNEL_CS */
        put_u64(g + 0x18, make_desc(0, 0xfffff, 0x93, 0xc));  /* __KERNEL_DS */
        put_u64(g + 0x20, make_desc(0, 0xfffff, 0xfb, 0xc));  /* __USER32_CS */
        put_u64(g + 0x28, make_desc(0, 0xfffff, 0xf3, 0xc));  /* __USER_DS */
        put_u64(g + 0x30, make_desc(0, 0xfffff, 0xfb, 0xa));  /* __USER_CS */
        /* 0x40: the 16-byte TSS descriptor, busy */
        put_u64(g + 0x40, make_desc(tss, DEMO_TSS_LIMIT, 0x8b, 0));
        put_u64(g + 0x48, tss >> 32);
    }
    for (int v = 0; v < 256; v++) {
        uint64_t off = DEMO_KERNEL_VIRT + 0x2000 + v * 16;
        uint64_t lo = (off & 0xffff) | (0x10ULL << 16) | (0x8eULL << 40) |
                      ((off >> 16) & 0xffff) << 48;
        put_u64(DEMO_KERNEL_PHYS + DEMO_IDT_OFF + v * 16, lo);
        put_u64(DEMO_KERNEL_PHYS + DEMO_IDT_OFF + v * 16 + 8, off >> 32);
    }
}

/* struct uts_namespace starts with struct new_utsname: six 65-byte strings. */
static void write_uts(void)
{
    static const char *const fields[] = {
        "Linux", "guestdump-demo", DEMO_OSRELEASE,
        "#1 SMP PREEMPT_DYNAMIC guestdump demo guest", "x86_64", "(none)",
    };
    char uts[6 * 65] = { 0 };

    for (int i = 0; i < 6; i++) {
        g_strlcpy(uts + i * 65, fields[i], 65);
    }
    put_bytes(DEMO_KERNEL_PHYS + DEMO_UTS_OFF, uts, sizeof(uts));
}

char *demo_vmcoreinfo_text(void)
{
    return g_strdup_printf(
        "OSRELEASE=%s\n"
        "PAGESIZE=4096\n"
        "SYMBOL(init_uts_ns)=%llx\n"
        "OFFSET(uts_namespace.name)=0\n"
        "SYMBOL(swapper_pg_dir)=%llx\n"
        "SYMBOL(_stext)=%llx\n"
        "NUMBER(phys_base)=%lld\n"
        "SYMBOL(init_top_pgt)=%llx\n"
        "NUMBER(KERNEL_IMAGE_SIZE)=%llu\n"
        "NUMBER(pgtable_l5_enabled)=0\n"
        "KERNELOFFSET=%llx\n",
        DEMO_OSRELEASE, DEMO_KERNEL_VIRT + DEMO_UTS_OFF,
        DEMO_KERNEL_VIRT + DEMO_PT_OFF, DEMO_KERNEL_VIRT,
        (long long)DEMO_PHYS_BASE, DEMO_KERNEL_VIRT + DEMO_PT_OFF, 1ULL << 30,
        (unsigned long long)DEMO_KERNEL_OFFSET);
}

/* The note as Linux lays it out: header, name, text, then an empty terminating note. */
static void write_vmcoreinfo_note(void)
{
    g_autofree char *text = demo_vmcoreinfo_text();
    uint8_t note[DEMO_NOTE_SIZE] = { 0 };
    uint32_t hdr[3] = { GUINT32_TO_LE(11), GUINT32_TO_LE(strlen(text)), 0 };

    g_assert(24 + strlen(text) + 12 <= sizeof(note));
    memcpy(note, hdr, 12);
    memcpy(note + 12, "VMCOREINFO", 11);
    memcpy(note + 24, text, strlen(text));
    put_bytes(DEMO_KERNEL_PHYS + DEMO_NOTE_OFF, note, sizeof(note));
}

static uint32_t port_inb_be32(void)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++) {
        v = v << 8 | ioport_read(FW_CFG_IO_BASE + 1, 1);
    }
    return v;
}

/*
 * What Linux's qemu_fw_cfg driver does at probe: find etc/vmcoreinfo in the
 * file directory by port I/O, then DMA-write {guest_format, size, paddr}.
 */
static bool hand_over_vmcoreinfo(Error **errp)
{
    uint64_t data_pa = DEMO_KERNEL_PHYS + DEMO_FWCFG_OFF;
    uint64_t desc_pa = data_pa + 0x40;
    uint16_t key = FW_CFG_INVALID;
    uint32_t count, control;
    uint8_t info[16] = { 0 };
    uint8_t desc[16];

    ioport_write(FW_CFG_IO_BASE, FW_CFG_FILE_DIR, 2);
    count = port_inb_be32();
    for (uint32_t i = 0; i < count && i < FW_CFG_FILE_SLOTS; i++) {
        uint8_t ent[64];
        for (int b = 0; b < 64; b++) {
            ent[b] = ioport_read(FW_CFG_IO_BASE + 1, 1);
        }
        ent[63] = 0;
        if (!strcmp((char *)ent + 8, FW_CFG_VMCOREINFO_FILENAME)) {
            key = ent[4] << 8 | ent[5];
        }
    }
    if (key == FW_CFG_INVALID) {
        error_setg(errp, "demo guest: fw_cfg has no %s", FW_CFG_VMCOREINFO_FILENAME);
        return false;
    }
    /* host_format is left 0, as Linux writes it */
    info[2] = FW_CFG_VMCOREINFO_FORMAT_ELF;
    memcpy(info + 4, &(uint32_t){ GUINT32_TO_LE(DEMO_NOTE_SIZE) }, 4);
    memcpy(info + 8,
           &(uint64_t){ GUINT64_TO_LE(DEMO_KERNEL_PHYS + DEMO_NOTE_OFF) }, 8);
    put_bytes(data_pa, info, sizeof(info));
    memcpy(desc, &(uint32_t){ GUINT32_TO_BE((uint32_t)key << 16 |
                                            FW_CFG_DMA_CTL_SELECT |
                                            FW_CFG_DMA_CTL_WRITE) }, 4);
    memcpy(desc + 4, &(uint32_t){ GUINT32_TO_BE(sizeof(info)) }, 4);
    memcpy(desc + 8, &(uint64_t){ GUINT64_TO_BE(data_pa) }, 8);
    put_bytes(desc_pa, desc, sizeof(desc));
    /* iowrite32be() on x86: the bytes of the big-endian value, as outl sees them */
    ioport_write(FW_CFG_DMA_IO_BASE, GUINT32_SWAP_LE_BE((uint32_t)(desc_pa >> 32)), 4);
    ioport_write(FW_CFG_DMA_IO_BASE + 4, GUINT32_SWAP_LE_BE((uint32_t)desc_pa), 4);
    if (!physmem_read(desc_pa, &control, 4, NULL) || GUINT32_FROM_BE(control) != 0) {
        error_setg(errp, "demo guest: fw_cfg DMA write of %s failed",
                   FW_CFG_VMCOREINFO_FILENAME);
        return false;
    }
    return true;
}

static void set_seg(SegmentCache *sc, uint32_t sel, uint64_t base, uint32_t limit,
                    uint32_t flags)
{
    *sc = (SegmentCache) { sel, base, limit, flags };
}

static void setup_cpu(X86CPU *cpu, uint64_t seed)
{
    CPUX86State *env = &cpu->env;
    int i = cpu->cpu_index;
    uint64_t percpu = DEMO_DIRECT_MAP + cpu_percpu_phys(i);

    for (int r = 0; r < CPU_NB_REGS; r++) {
        env->regs[r] = stream_seed(seed, 3, (uint64_t)i << 8 | r);
    }
    env->regs[R_ESP] = percpu + DEMO_STACK_TOP;
    env->regs[R_EBP] = percpu + DEMO_STACK_TOP + 0x40;
    env->eip = DEMO_KERNEL_VIRT + DEMO_IDLE_OFF + (uint64_t)i * 0x40;
    env->eflags = 0x246;
    set_seg(&env->segs[R_CS], 0x10, 0, 0xffffffff, 0x00af9b00);
    set_seg(&env->segs[R_SS], 0x18, 0, 0xffffffff, 0x00cf9300);
    set_seg(&env->segs[R_DS], 0x18, 0, 0xffffffff, 0x00cf9300);
    set_seg(&env->segs[R_ES], 0x18, 0, 0xffffffff, 0x00cf9300);
    set_seg(&env->segs[R_FS], 0, 0, 0, 0);
    set_seg(&env->segs[R_GS], 0, percpu, 0, 0);
    set_seg(&env->ldt, 0, 0, 0, 0);
    set_seg(&env->tr, 0x40, percpu + DEMO_TSS_OFF, DEMO_TSS_LIMIT, 0x8b00);
    set_seg(&env->gdt, 0, DEMO_KERNEL_VIRT + DEMO_GDT_OFF + (uint64_t)i * DEMO_GDT_SIZE,
            DEMO_GDT_SIZE - 1, 0);
    set_seg(&env->idt, 0, DEMO_KERNEL_VIRT + DEMO_IDT_OFF, 0xfff, 0);
    env->cr[0] = 0x80050033;
    env->cr[2] = 0x7ffffffde000ULL + (uint64_t)i * 8;
    env->cr[3] = DEMO_CR3;
    env->cr[4] = 0x6a0;
    env->cr8 = 0;
    env->efer = 0xd01;
    env->kernelgsbase = 0;
    env->a20_mask = ~0u;
}

/* One tick of guest activity: the counter page, then a line in the log ring. */
static gboolean demo_tick(gpointer opaque)
{
    uint64_t page[PAGE_SIZE / 8];
    char line[DEMO_LOG_SLOT] = { 0 };
    uint64_t slot;

    demo->ticks++;
    memcpy(page, "GDTICK01", 8);
    for (size_t i = 1; i < G_N_ELEMENTS(page); i++) {
        page[i] = GUINT64_TO_LE(demo->ticks);
    }
    put_bytes(DEMO_TICK_PHYS, page, sizeof(page));

    slot = (demo->ticks - 1) % DEMO_LOG_SLOTS;
    g_snprintf(line, sizeof(line), "tick %" G_GUINT64_FORMAT " cpu %d: all is well",
               demo->ticks, (int)(demo->ticks % MAX(machine_cpu_count(), 1)));
    put_bytes(DEMO_LOG_PHYS + DEMO_LOG_HDR + slot * DEMO_LOG_SLOT, line, sizeof(line));
    put_u64(DEMO_LOG_PHYS + 8, slot + 1 == DEMO_LOG_SLOTS ? 0 : slot + 1);
    put_u64(DEMO_LOG_PHYS + 16, demo->ticks);
    return G_SOURCE_CONTINUE;
}

static void demo_runstate_changed(void *opaque, bool running, RunState state)
{
    if (!demo) {
        return;
    }
    if (running && !demo->timer) {
        demo->timer = g_timeout_add(DEMO_TICK_MS, demo_tick, NULL);
    } else if (!running && demo->timer) {
        g_source_remove(demo->timer);
        demo->timer = 0;
    }
}

/* The main loop may start the guest without a transition; look once it runs. */
static gboolean demo_first_look(gpointer opaque)
{
    demo_runstate_changed(NULL, runstate_is_running(), runstate_get());
    return G_SOURCE_REMOVE;
}

static void write_log_header(void)
{
    g_autofree uint8_t *zero = g_malloc0(DEMO_LOG_SIZE);

    put_bytes(DEMO_LOG_PHYS, zero, DEMO_LOG_SIZE);
    put_bytes(DEMO_TICK_PHYS, zero, PAGE_SIZE);
    put_bytes(DEMO_TICK_PHYS, "GDTICK01", 8);
    put_bytes(DEMO_LOG_PHYS, "GDLOGRNG", 8);
    put_u64(DEMO_LOG_PHYS + 24, DEMO_LOG_SLOT);
    put_u64(DEMO_LOG_PHYS + 32, DEMO_LOG_SLOTS);
}

bool demo_guest_init(uint64_t seed, Error **errp)
{
    uint64_t low_ram = 0;
    /* Everything the demo places lies below DEMO_MIN_RAM, in one RAM block. */
    const RAMBlock *rb = physmem_find(0x100000);

    if (rb && !rb->readonly) {
        low_ram = rb->gpa + rb->size;
    }
    if (low_ram < DEMO_MIN_RAM || machine_cpu_count() < 1) {
        error_setg(errp, "the demo guest needs a pc or q35 machine with at least "
                   "%llu MiB of RAM", DEMO_MIN_RAM >> 20);
        return false;
    }
    if ((uint64_t)machine_cpu_count() * DEMO_PERCPU_SIZE >
        DEMO_USER_PHYS - DEMO_PERCPU_PHYS) {
        error_setg(errp, "the demo guest supports at most %llu vCPUs",
                   (DEMO_USER_PHYS - DEMO_PERCPU_PHYS) / DEMO_PERCPU_SIZE);
        return false;
    }
    demo = g_new0(DemoGuest, 1);
    demo->seed = seed;
    demo->text_pool = make_text_pool(seed);
    fill_ram(seed, demo->text_pool);

    demo->pt_next = DEMO_KERNEL_PHYS + DEMO_PT_OFF;
    g_assert(pt_alloc() == DEMO_CR3);
    map_kernel();
    map_direct();
    map_user();
    write_gdt_idt(machine_cpu_count());
    write_uts();
    write_vmcoreinfo_note();
    put_bytes(DEMO_KERNEL_PHYS, "DEMOKERN", 8);
    write_log_header();
    for (int i = 0; i < machine_cpu_count(); i++) {
        setup_cpu(machine_cpu(i), seed);
    }
    if (!vmcoreinfo_find() && !vmcoreinfo_realize(errp)) {
        return false;
    }
    if (!hand_over_vmcoreinfo(errp)) {
        return false;
    }
    if (!handler_added) {
        /* handlers cannot be removed; one serves every demo guest of the process */
        runstate_add_change_handler(demo_runstate_changed, NULL);
        handler_added = true;
    }
    g_idle_add(demo_first_look, NULL);
    return true;
}

void demo_guest_cleanup(void)
{
    if (!demo) {
        return;
    }
    if (demo->timer) {
        g_source_remove(demo->timer);
    }
    g_free(demo->text_pool);
    g_clear_pointer(&demo, g_free);
}

uint64_t demo_guest_ticks(void)
{
    return demo ? demo->ticks : 0;
}
