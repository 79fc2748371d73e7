/* Unit tests of the machine: memory maps as QEMU 7.2, accessors, fw_cfg, regs, demo. */
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "hw/fw_cfg.h"
#include "hw/vmcoreinfo.h"
#include "sysemu/cpus.h"
#include "sysemu/dump-host.h"
#include "sysemu/machine.h"
#include "sysemu/physmem.h"
#include "system/demo.h"
#include "system/machine-internal.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

typedef struct ExpBlock {
    const char *name;
    uint64_t start, end;
    bool readonly;
} ExpBlock;

static void start_machine(const char *type, uint64_t ram, int smp, bool demo,
                          uint64_t seed, const char *const *devices)
{
    g_autoptr(Error) err = NULL;
    MachineOptions o = { 0 };

    o.machine_type = (char *)type;
    o.ram_size = ram;
    o.smp = smp;
    o.demo = demo;
    o.demo_seed = seed;
    o.devices = g_ptr_array_new();
    for (int i = 0; devices && devices[i]; i++) {
        g_ptr_array_add(o.devices, (char *)devices[i]);
    }
    if (!machine_init(&o, &err)) {
        g_error("machine_init: %s", error_get_pretty(err));
    }
    g_ptr_array_free(o.devices, TRUE);
}

static char *machine_error(const char *type, uint64_t ram, int smp,
                           const char *const *devices)
{
    Error *err = NULL;
    MachineOptions o = { 0 };
    char *msg;

    o.machine_type = (char *)type;
    o.ram_size = ram;
    o.smp = smp;
    o.devices = g_ptr_array_new();
    for (int i = 0; devices && devices[i]; i++) {
        g_ptr_array_add(o.devices, (char *)devices[i]);
    }
    g_assert_false(machine_init(&o, &err));
    g_ptr_array_free(o.devices, TRUE);
    g_assert_nonnull(err);
    msg = g_strdup(error_get_pretty(err));
    error_free(err);
    return msg;
}

static void check_blocks(const ExpBlock *exp, size_t n)
{
    g_assert_cmpuint(physmem_block_count(), ==, n);
    for (size_t i = 0; i < n; i++) {
        const RAMBlock *rb = physmem_block(i);
        g_assert_cmpstr(rb->name, ==, exp[i].name);
        g_assert_cmphex(rb->gpa, ==, exp[i].start);
        g_assert_cmphex(rb->gpa + rb->size, ==, exp[i].end);
        g_assert_cmpint(rb->readonly, ==, exp[i].readonly);
    }
}

/* The -S layouts below are what `info mtree -f` of QEMU 7.2 shows (oracle runs). */
#define LOW_BLOCKS \
    { "pc.ram", 0, 0xc0000, false }, \
    { "pc.rom", 0xc0000, 0xe0000, true }, \
    { "pc.bios", 0xe0000, 0x100000, true }
#define BIOS_BLOCK { "pc.bios", 0xfffc0000, 0x100000000, true }

static void test_map_pc_64m(void)
{
    static const ExpBlock exp[] = {
        LOW_BLOCKS, { "pc.ram", 0x100000, 0x4000000, false }, BIOS_BLOCK,
    };
    start_machine("pc", 64 * MiB, 1, false, 0, NULL);
    check_blocks(exp, G_N_ELEMENTS(exp));
    /* low and high RAM are one host mapping, as QEMU's pc.ram */
    g_assert(physmem_block(0)->host + MiB == physmem_block(3)->host);
    g_assert_cmpuint(physmem_block(0)->region, ==, physmem_block(3)->region);
    g_assert_cmpuint(physmem_block(2)->region, ==, physmem_block(4)->region);
    g_assert_cmpuint(physmem_block(1)->region, !=, physmem_block(4)->region);
    machine_cleanup();
}

static void test_map_pc_sizes(void)
{
    static const ExpBlock e3583[] = {
        LOW_BLOCKS, { "pc.ram", 0x100000, 0xdff00000, false }, BIOS_BLOCK,
    };
    static const ExpBlock e3584[] = {
        LOW_BLOCKS, { "pc.ram", 0x100000, 0xc0000000, false }, BIOS_BLOCK,
        { "pc.ram", 0x100000000, 0x120000000, false },
    };
    static const ExpBlock e4g[] = {
        LOW_BLOCKS, { "pc.ram", 0x100000, 0xc0000000, false }, BIOS_BLOCK,
        { "pc.ram", 0x100000000, 0x140000000, false },
    };

    start_machine("pc", 3583 * MiB, 1, false, 0, NULL);
    check_blocks(e3583, G_N_ELEMENTS(e3583));
    machine_cleanup();
    start_machine("pc", 3584 * MiB, 1, false, 0, NULL);
    check_blocks(e3584, G_N_ELEMENTS(e3584));
    /* RAM above 4 GiB continues pc.ram's host memory where low RAM ends */
    g_assert(physmem_block(5)->host == physmem_block(0)->host + 0xc0000000);
    machine_cleanup();
    start_machine(NULL, 4 * GiB, 1, false, 0, NULL);
    check_blocks(e4g, G_N_ELEMENTS(e4g));
    machine_cleanup();
}

static void test_map_q35_sizes(void)
{
    static const ExpBlock e64[] = {
        LOW_BLOCKS, { "pc.ram", 0x100000, 0x4000000, false }, BIOS_BLOCK,
    };
    static const ExpBlock e2815[] = {
        LOW_BLOCKS, { "pc.ram", 0x100000, 0xaff00000, false }, BIOS_BLOCK,
    };
    static const ExpBlock e2816[] = {
        LOW_BLOCKS, { "pc.ram", 0x100000, 0x80000000, false }, BIOS_BLOCK,
        { "pc.ram", 0x100000000, 0x130000000, false },
    };
    static const ExpBlock e3g[] = {
        LOW_BLOCKS, { "pc.ram", 0x100000, 0x80000000, false }, BIOS_BLOCK,
        { "pc.ram", 0x100000000, 0x140000000, false },
    };

    start_machine("q35", 64 * MiB, 1, false, 0, NULL);
    check_blocks(e64, G_N_ELEMENTS(e64));
    machine_cleanup();
    /* -device VGA: QEMU maps vga-lowmem over 0xa0000-0xbffff */
    {
        static const char *const vga[] = { "VGA", NULL };
        static const ExpBlock ev[] = {
            { "pc.ram", 0, 0xa0000, false }, { "pc.rom", 0xc0000, 0xe0000, true },
            { "pc.bios", 0xe0000, 0x100000, true },
            { "pc.ram", 0x100000, 0x4000000, false }, BIOS_BLOCK,
        };
        start_machine("q35", 64 * MiB, 1, false, 0, vga);
        check_blocks(ev, G_N_ELEMENTS(ev));
        machine_cleanup();
    }
    start_machine("q35", 2815 * MiB, 1, false, 0, NULL);
    check_blocks(e2815, G_N_ELEMENTS(e2815));
    machine_cleanup();
    start_machine("q35", 2816 * MiB, 1, false, 0, NULL);
    check_blocks(e2816, G_N_ELEMENTS(e2816));
    machine_cleanup();
    start_machine("q35", 3 * GiB, 1, false, 0, NULL);
    check_blocks(e3g, G_N_ELEMENTS(e3g));
    machine_cleanup();
}

static void test_map_none(void)
{
    static const ExpBlock e2[] = { { "ram", 0, 0x200000, false } };
    static const char *const vmci[] = { "vmcoreinfo", NULL };
    g_autofree char *msg = NULL;

    start_machine("none", 2 * MiB, 1, false, 0, NULL);
    check_blocks(e2, 1);
    g_assert_cmpint(machine_cpu_count(), ==, 0);
    g_assert_false(fw_cfg_present());
    machine_cleanup();

    start_machine("none", 0, 1, false, 0, NULL);
    g_assert_cmpuint(physmem_block_count(), ==, 0);
    machine_cleanup();

    msg = machine_error("none", 2 * MiB, 1, vmci);
    g_assert_cmpstr(msg, ==, "vmcoreinfo device requires fw_cfg with DMA");
}

/* The BIOS image fills pc.bios, and the ISA window shows its top 128 KiB. */
static void test_bios_contents(void)
{
    const char *path = "/usr/share/seabios/bios-256k.bin";
    g_autofree char *bios = NULL;
    gsize len;
    const RAMBlock *isa, *top;

    start_machine("pc", 64 * MiB, 1, false, 0, NULL);
    isa = physmem_find(0xe0000);
    top = physmem_find(0xfffc0000);
    g_assert(isa->host == top->host + 0x20000);
    g_assert_true(physmem_find(0xc0000)->readonly);
    if (g_file_get_contents(path, &bios, &len, NULL)) {
        g_assert_cmpuint(len, ==, top->size);
        g_assert(memcmp(top->host, bios, len) == 0);
    } else {
        for (uint64_t i = 0; i < top->size; i++) {
            g_assert_cmpuint(top->host[i], ==, 0);
        }
    }
    machine_cleanup();
}

static void test_machine_errors(void)
{
    static const char *const two[] = { "vmcoreinfo", "vmcoreinfo", NULL };
    static const char *const bad[] = { "e1000", NULL };
    static const char *const outside[] = { "loader,data=1,data-len=4,addr=0xa0000000",
                                           NULL };
    g_autofree char *m1 = machine_error("pc", 64 * MiB, 1, two);
    g_autofree char *m2 = machine_error("pc", 64 * MiB, 1, bad);
    g_autofree char *m3 = machine_error("isapc", 64 * MiB, 1, NULL);
    g_autofree char *m4 = machine_error("pc", 64 * MiB, 256, NULL);
    g_autofree char *m6 = machine_error("q35", 64 * MiB, 289, NULL);
    g_autofree char *m5 = machine_error("pc", 64 * MiB, 1, outside);

    g_assert_cmpstr(m1, ==, "at most one vmcoreinfo device is permitted");
    g_assert_cmpstr(m2, ==, "'e1000' is not a valid device model name");
    g_assert_nonnull(strstr(m3, "isapc"));
    /* QEMU 7.2's texts */
    g_assert_cmpstr(m4, ==, "Invalid SMP CPUs 256. The max CPUs supported by machine "
                    "'pc-i440fx-7.2' is 255");
    g_assert_cmpstr(m6, ==, "Invalid SMP CPUs 289. The max CPUs supported by machine "
                    "'pc-q35-7.2' is 288");
    g_assert_nonnull(strstr(m5, "outside RAM"));
    /* a failed init leaves nothing behind */
    g_assert_cmpuint(physmem_block_count(), ==, 0);
    g_assert_null(vmcoreinfo_find());
}

/* Untouched RAM costs nothing: a 64 GiB guest maps instantly. */
static void test_huge_ram(void)
{
    uint8_t b = 0x5a;

    start_machine("pc", 64 * GiB, 2, false, 0, NULL);
    g_assert_cmphex(physmem_block(physmem_block_count() - 1)->gpa +
                    physmem_block(physmem_block_count() - 1)->size, ==,
                    0x100000000ULL + 61 * GiB);
    g_assert_true(physmem_write(0x100000000ULL + 60 * GiB, &b, 1, NULL));
    b = 0;
    g_assert_true(physmem_read(0x100000000ULL + 60 * GiB, &b, 1, NULL));
    g_assert_cmpuint(b, ==, 0x5a);
    machine_cleanup();
}

static void test_accessors(void)
{
    g_autoptr(Error) err = NULL;
    uint8_t buf[64], big[0x3000];
    const RAMBlock *a, *b;

    a = physmem_add_block("a", 0x1000, 0x2000, NULL, false, 1, NULL);
    g_assert_nonnull(a);
    b = physmem_add_block("b", 0x3000, 0x1000, NULL, true, 2, NULL);
    g_assert_nonnull(b);
    /* a's pointer survives adding another block */
    g_assert_nonnull(physmem_add_block("c", 0x0, 0x1000, NULL, false, 3, NULL));
    g_assert_cmpstr(a->name, ==, "a");
    g_assert_cmpstr(physmem_block(0)->name, ==, "c");
    g_assert_null(physmem_add_block("d", 0x2fff, 2, NULL, false, 4, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "overlaps"));
    g_clear_pointer(&err, error_free);
    g_assert_null(physmem_add_block("e", ~0ULL - 10, 100, NULL, false, 4, NULL));

    memset(buf, 0xab, sizeof(buf));
    /* writes spanning two blocks work; reads come back */
    g_assert_true(physmem_write(0x2ff0, buf, 32, NULL) == false);  /* b is ROM */
    g_assert_true(physmem_write_rom(0x2ff0, buf, 32, NULL));
    memset(buf, 0, sizeof(buf));
    g_assert_true(physmem_read(0x2ff0, buf, 32, NULL));
    g_assert_cmpuint(buf[0], ==, 0xab);
    g_assert_cmpuint(buf[31], ==, 0xab);
    g_assert_true(physmem_read(0, big, sizeof(big), NULL));
    g_assert_true(physmem_is_ram(0, 0x4000));
    g_assert_false(physmem_is_ram(0, 0x4001));
    g_assert_false(physmem_is_ram(~0ULL, 2));
    g_assert_false(physmem_read(0x3ff0, buf, 32, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "guest-physical range 0x3ff0+0x20 is outside RAM");
    g_assert_null(physmem_host_ptr(0x2ff0, 0x20));
    g_assert(physmem_host_ptr(0x1ff0, 0x20) == a->host + 0xff0);
    g_assert(physmem_find(0x3fff) == b);
    g_assert_null(physmem_find(0x4000));

    /* bus semantics: holes read zero, writes to holes and ROM vanish */
    memset(buf, 0x11, sizeof(buf));
    guest_bus_write(0x3ff0, buf, 32);
    guest_bus_read(0x3ff0, buf, 32);
    g_assert_cmpuint(buf[0], ==, 0);    /* ROM kept its zero */
    g_assert_cmpuint(buf[31], ==, 0);   /* hole */
    physmem_reset();
    g_assert_cmpuint(physmem_block_count(), ==, 0);
}

static void test_cpu_reset_and_regs(void)
{
    const char *const *names = x86_cpu_reg_names();
    g_autoptr(Error) err = NULL;
    X86CPU *cpu;
    uint64_t v;
    int n = 0;

    start_machine("pc", 64 * MiB, 3, false, 0, NULL);
    g_assert_cmpint(machine_cpu_count(), ==, 3);
    g_assert_null(machine_cpu(3));
    g_assert_null(machine_cpu(-1));
    cpu = machine_cpu(2);
    g_assert_cmpint(cpu->cpu_index, ==, 2);
    /* QEMU 7.2 `info registers` of a fresh qemu64 vCPU */
    g_assert_cmphex(cpu->env.regs[R_EDX], ==, 0x60fb1);
    g_assert_cmphex(cpu->env.eip, ==, 0xfff0);
    g_assert_cmphex(cpu->env.eflags, ==, 2);
    g_assert_cmphex(cpu->env.cr[0], ==, 0x60000010);
    g_assert_cmphex(cpu->env.segs[R_CS].selector, ==, 0xf000);
    g_assert_cmphex(cpu->env.segs[R_CS].base, ==, 0xffff0000);
    g_assert_cmphex(cpu->env.segs[R_CS].limit, ==, 0xffff);
    g_assert_cmphex(cpu->env.segs[R_CS].flags, ==, 0x9b00);
    g_assert_cmphex(cpu->env.segs[R_SS].flags, ==, 0x9300);
    g_assert_cmphex(cpu->env.ldt.flags, ==, 0x8200);
    g_assert_cmphex(cpu->env.tr.flags, ==, 0x8b00);
    g_assert_cmphex(cpu->env.gdt.limit, ==, 0xffff);
    g_assert_cmphex(cpu->env.idt.limit, ==, 0xffff);
    g_assert_cmphex(cpu->env.a20_mask, ==, 0xffffffff);
    g_assert_cmphex(cpu->env.mxcsr, ==, 0x1f80);
    g_assert_cmphex(cpu->env.dr[0], ==, 0);
    g_assert_cmphex(cpu->env.dr[6], ==, 0xffff0ff0);
    g_assert_cmphex(cpu->env.dr[7], ==, 0x400);

    for (; names[n]; n++) {
        uint64_t val = strstr(names[n], "_limit") || strstr(names[n], "_flags")
                       ? 0x12345u + (uint64_t)n : (uint64_t)n * 0x1111 + 1;
        if (!strcmp(names[n], "a20")) {
            val = 0;
        } else if (!strchr(names[n], '_') && strlen(names[n]) == 2 &&
                   names[n][1] == 's') {
            val = 0x10 + n;       /* a selector */
        } else if (!strcmp(names[n], "ldt") || !strcmp(names[n], "tr")) {
            val = 0x40;
        }
        g_assert_true(x86_cpu_set_reg(cpu, names[n], val, NULL));
        g_assert_true(x86_cpu_get_reg(cpu, names[n], &v, NULL));
        g_assert_cmphex(v, ==, val);
    }
    g_assert_cmpint(n, >=, 60);
    g_assert_cmphex(cpu->env.a20_mask, ==, ~(1u << 20));
    g_assert_true(x86_cpu_get_reg(cpu, "cr3", &v, NULL));
    g_assert_cmphex(cpu->env.cr[3], ==, v);
    g_assert_false(x86_cpu_set_reg(cpu, "xmm0", 1, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "unknown x86 register 'xmm0'");
    g_clear_pointer(&err, error_free);
    g_assert_false(x86_cpu_set_reg(cpu, "cs", 0x10000, NULL));
    g_assert_false(x86_cpu_set_reg(cpu, "cs_limit", 0x100000000ULL, NULL));
    g_assert_false(x86_cpu_set_reg(cpu, "a20", 2, NULL));
    g_assert_false(x86_cpu_set_reg(cpu, "mxcsr", 0x100000000ULL, NULL));
    /* 64-bit values keep all their bits */
    g_assert_true(x86_cpu_set_reg(cpu, "r15", 0xfedcba9876543210ULL, NULL));
    g_assert_cmphex(cpu->env.regs[R_R15], ==, 0xfedcba9876543210ULL);
    machine_cleanup();
}

static uint8_t fw_inb(void)
{
    return ioport_read(FW_CFG_IO_BASE + 1, 1);
}

/* Writes a DMA descriptor at desc and triggers it the way a guest's outl does. */
static uint32_t fw_dma(uint64_t desc, uint32_t control, uint32_t len, uint64_t addr)
{
    uint8_t d[16];
    uint32_t c;

    memcpy(d, &(uint32_t){ GUINT32_TO_BE(control) }, 4);
    memcpy(d + 4, &(uint32_t){ GUINT32_TO_BE(len) }, 4);
    memcpy(d + 8, &(uint64_t){ GUINT64_TO_BE(addr) }, 8);
    g_assert_true(physmem_write(desc, d, 16, NULL));
    ioport_write(FW_CFG_DMA_IO_BASE, GUINT32_SWAP_LE_BE((uint32_t)(desc >> 32)), 4);
    ioport_write(FW_CFG_DMA_IO_BASE + 4, GUINT32_SWAP_LE_BE((uint32_t)desc), 4);
    g_assert_true(physmem_read(desc, &c, 4, NULL));
    return GUINT32_FROM_BE(c);
}

static void test_fw_cfg_ports(void)
{
    static const char *const vmci[] = { "vmcoreinfo", NULL };
    char sig[5] = { 0 };
    uint32_t id = 0, count = 0;
    uint8_t dir[4 + 64];
    uint16_t key;

    start_machine("pc", 64 * MiB, 1, false, 0, vmci);
    ioport_write(FW_CFG_IO_BASE, FW_CFG_SIGNATURE, 2);
    for (int i = 0; i < 4; i++) {
        sig[i] = fw_inb();
    }
    g_assert_cmpstr(sig, ==, "QEMU");
    ioport_write(FW_CFG_IO_BASE, FW_CFG_ID, 2);
    for (int i = 0; i < 4; i++) {
        id |= (uint32_t)fw_inb() << (8 * i);
    }
    g_assert_cmphex(id, ==, 3);     /* traditional interface + DMA */
    /* the DMA register reads back "QEMU CFG" */
    g_assert_cmphex(GUINT32_SWAP_LE_BE(ioport_read(FW_CFG_DMA_IO_BASE, 4)), ==,
                    0x51454d55);
    g_assert_cmphex(GUINT32_SWAP_LE_BE(ioport_read(FW_CFG_DMA_IO_BASE + 4, 4)), ==,
                    0x20434647);
    /* unassigned ports float high */
    g_assert_cmphex(ioport_read(0x3000, 1), ==, 0xff);
    g_assert_cmphex(ioport_read(0x3000, 4), ==, 0xffffffff);
    /* splits and widths exactly as QEMU 7.2 answers HMP `i` (oracle run) */
    ioport_write(FW_CFG_IO_BASE, FW_CFG_SIGNATURE, 2);
    g_assert_cmphex(ioport_read(0x510, 2), ==, 0);        /* consumes nothing */
    g_assert_cmphex(ioport_read(0x511, 2), ==, 0xff51);   /* 'Q', then a hole */
    g_assert_cmphex(ioport_read(0x510, 1), ==, 'E');      /* data at 0x510 too */
    ioport_write(FW_CFG_IO_BASE, 1, 1);                   /* byte writes: ignored */
    g_assert_cmphex(ioport_read(0x511, 1), ==, 'M');
    g_assert_cmphex(ioport_read(0x50f, 4), ==, 0xff0000ff);
    g_assert_cmphex(ioport_read(0x514, 2), ==, 0x4551);
    g_assert_cmphex(ioport_read(0x51a, 2), ==, 0x4746);
    g_assert_cmphex(ioport_read(0x51b, 2), ==, 0xff47);

    ioport_write(FW_CFG_IO_BASE, FW_CFG_FILE_DIR, 2);
    for (size_t i = 0; i < sizeof(dir); i++) {
        dir[i] = fw_inb();
    }
    memcpy(&count, dir, 4);
    g_assert_cmpuint(GUINT32_FROM_BE(count), ==, 1);
    g_assert_cmpstr((char *)dir + 4 + 8, ==, "etc/vmcoreinfo");
    g_assert_cmphex(GUINT32_FROM_BE(*(uint32_t *)(dir + 4)), ==, 16);
    key = dir[4 + 4] << 8 | dir[4 + 5];
    g_assert_cmphex(key, ==, fw_cfg_file_key("etc/vmcoreinfo"));
    /* reading past the end gives zeros */
    g_assert_cmpuint(fw_inb(), ==, 0);

    /* DMA read of the directory into RAM */
    g_assert_cmphex(fw_dma(0x1000, FW_CFG_FILE_DIR << 16 | FW_CFG_DMA_CTL_SELECT |
                           FW_CFG_DMA_CTL_READ, 68 + 8, 0x2000), ==, 0);
    {
        uint8_t got[76];
        g_assert_true(physmem_read(0x2000, got, sizeof(got), NULL));
        g_assert(memcmp(got, dir, sizeof(dir)) == 0);
        for (int i = 68; i < 76; i++) {
            g_assert_cmpuint(got[i], ==, 0);   /* past the end: zero filled */
        }
    }
    /* writing a read-only item fails; so does a descriptor outside RAM */
    g_assert_cmphex(fw_dma(0x1000, FW_CFG_SIGNATURE << 16 | FW_CFG_DMA_CTL_SELECT |
                           FW_CFG_DMA_CTL_WRITE, 4, 0x2000), ==, FW_CFG_DMA_CTL_ERROR);
    ioport_write(FW_CFG_DMA_IO_BASE, 0, 4);
    ioport_write(FW_CFG_DMA_IO_BASE + 4, GUINT32_SWAP_LE_BE(0xa0000000u), 4);
    /* a DMA read aimed at a hole or ROM is an error and changes nothing */
    g_assert_cmphex(fw_dma(0x1000, FW_CFG_FILE_DIR << 16 | FW_CFG_DMA_CTL_SELECT |
                           FW_CFG_DMA_CTL_READ, 68, 0xfffffff0), ==,
                    FW_CFG_DMA_CTL_ERROR);
    /* a huge length over a missing item must stay bounded and fail cleanly */
    g_assert_cmphex(fw_dma(0x1000, 0x3000 << 16 | FW_CFG_DMA_CTL_SELECT |
                           FW_CFG_DMA_CTL_READ, 0xffffffff, 0x2000), ==,
                    FW_CFG_DMA_CTL_ERROR);
    g_assert_cmphex(fw_dma(0x1000, FW_CFG_DMA_CTL_SKIP, 100, 0), ==, 0);
    machine_cleanup();
}

static void write_vmci(uint16_t key, uint16_t host, uint16_t guest, uint32_t size,
                       uint64_t paddr, uint32_t len, uint32_t expect)
{
    uint8_t d[16];

    memcpy(d, &(uint16_t){ GUINT16_TO_LE(host) }, 2);
    memcpy(d + 2, &(uint16_t){ GUINT16_TO_LE(guest) }, 2);
    memcpy(d + 4, &(uint32_t){ GUINT32_TO_LE(size) }, 4);
    memcpy(d + 8, &(uint64_t){ GUINT64_TO_LE(paddr) }, 8);
    g_assert_true(physmem_write(0x3000, d, 16, NULL));
    g_assert_cmphex(fw_dma(0x1000, (uint32_t)key << 16 | FW_CFG_DMA_CTL_SELECT |
                           FW_CFG_DMA_CTL_WRITE, len, 0x3000), ==, expect);
}

static void test_vmcoreinfo_device(void)
{
    static const char *const vmci[] = { "vmcoreinfo", NULL };
    const VMCoreInfoState *s;
    uint16_t key;

    start_machine("pc", 64 * MiB, 1, false, 0, NULL);
    g_assert_null(vmcoreinfo_find());
    machine_cleanup();

    start_machine("pc", 64 * MiB, 1, false, 0, vmci);
    s = vmcoreinfo_find();
    g_assert_nonnull(s);
    g_assert_false(s->has_vmcoreinfo);
    g_assert_cmpuint(s->host_format, ==, FW_CFG_VMCOREINFO_FORMAT_ELF);
    key = fw_cfg_file_key(FW_CFG_VMCOREINFO_FILENAME);

    /* what Linux writes */
    write_vmci(key, 0, 1, 4132, 0x123000, 16, 0);
    g_assert_true(s->has_vmcoreinfo);
    g_assert_cmpuint(s->guest_format, ==, 1);
    g_assert_cmpuint(s->host_format, ==, 0);
    g_assert_cmpuint(s->size, ==, 4132);
    g_assert_cmphex(s->paddr, ==, 0x123000);
    /* format NONE withdraws the note */
    write_vmci(key, 1, 0, 4132, 0x123000, 16, 0);
    g_assert_false(s->has_vmcoreinfo);
    /* a partial write does not count, even with a format */
    write_vmci(key, 1, 1, 4132, 0x123000, 16, 0);
    g_assert_true(s->has_vmcoreinfo);
    write_vmci(key, 1, 1, 64, 0x5000, 8, 0);
    g_assert_false(s->has_vmcoreinfo);
    /* a write past the end of the file is refused, nothing stored */
    write_vmci(key, 1, 2, 64, 0x5000, 17, FW_CFG_DMA_CTL_ERROR);
    g_assert_cmpuint(s->guest_format, !=, 2);
    /* values the dump must reject later (size, format, address) are stored as given */
    write_vmci(key, 1, 7, 1u << 30, 0xfffffffff000ULL, 16, 0);
    g_assert_true(s->has_vmcoreinfo);
    g_assert_cmpuint(s->guest_format, ==, 7);
    g_assert_cmpuint(s->size, ==, 1u << 30);
    machine_cleanup();
    g_assert_null(vmcoreinfo_find());
}

/* A 4-level walk in the test itself, independent of the dump's walker. */
static bool walk(uint64_t cr3, uint64_t va, uint64_t *pa, uint64_t *psize)
{
    uint64_t t = cr3 & ~0xfffULL;

    for (int shift = 39; shift >= 12; shift -= 9) {
        uint64_t e;
        if (!physmem_read(t + ((va >> shift) & 511) * 8, &e, 8, NULL)) {
            return false;
        }
        e = GUINT64_FROM_LE(e);
        if (!(e & 1)) {
            return false;
        }
        if (shift == 12 || (shift <= 30 && (e & 0x80))) {
            uint64_t mask = (1ULL << shift) - 1;
            *pa = (e & 0x000ffffffffff000ULL & ~mask) | (va & mask);
            *psize = 1ULL << shift;
            return true;
        }
        t = e & 0x000ffffffffff000ULL;
    }
    return false;
}

static GChecksum *ram_digest(void)
{
    GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);

    for (size_t i = 0; i < physmem_block_count(); i++) {
        const RAMBlock *rb = physmem_block(i);
        g_checksum_update(c, rb->host, rb->size);
    }
    return c;
}

static void test_demo_guest(void)
{
    const VMCoreInfoState *vi;
    uint64_t pa, ps, cr3;
    X86CPU *cpu;
    char buf[64];
    uint32_t hdr[3];
    g_autofree char *text = NULL;
    g_autofree char *note_text = NULL;
    unsigned zero = 0, other = 0;

    start_machine("pc", 256 * MiB, 2, true, 7, NULL);
    g_assert_cmpint(machine_cpu_count(), ==, 2);
    for (int i = 0; i < 2; i++) {
        cpu = machine_cpu(i);
        g_assert_true(x86_cpu_long_mode(&cpu->env));
        g_assert_true(x86_cpu_paging_enabled(&cpu->env));
        g_assert_cmphex(cpu->env.efer, ==, 0xd01);
        g_assert_cmphex(cpu->env.cr[0], ==, 0x80050033);
        g_assert_cmphex(cpu->env.cr[4], ==, 0x6a0);
        g_assert_cmphex(cpu->env.segs[R_CS].flags & DESC_L_MASK, !=, 0);
        g_assert_cmphex(cpu->env.cr[3], ==, DEMO_CR3);
        /* rip, rsp, gs base, gdt and idt are mapped */
        g_assert_true(walk(cpu->env.cr[3], cpu->env.eip, &pa, &ps));
        g_assert_true(walk(cpu->env.cr[3], cpu->env.regs[R_ESP], &pa, &ps));
        g_assert_true(walk(cpu->env.cr[3], cpu->env.segs[R_GS].base, &pa, &ps));
        g_assert_true(walk(cpu->env.cr[3], cpu->env.gdt.base, &pa, &ps));
        g_assert_true(walk(cpu->env.cr[3], cpu->env.idt.base, &pa, &ps));
    }
    cr3 = DEMO_CR3;
    /* kernel image: 2 MiB pages from phys 16 MiB */
    for (uint64_t off = 0; off < DEMO_KERNEL_SIZE; off += 0x100000) {
        g_assert_true(walk(cr3, DEMO_KERNEL_VIRT + off + 0x123, &pa, &ps));
        g_assert_cmphex(pa, ==, DEMO_KERNEL_PHYS + off + 0x123);
        g_assert_cmphex(ps, ==, 2 * MiB);
    }
    g_assert_false(walk(cr3, DEMO_KERNEL_VIRT + DEMO_KERNEL_SIZE, &pa, &ps));
    g_assert_true(physmem_read(DEMO_KERNEL_PHYS, buf, 8, NULL));
    g_assert(memcmp(buf, "DEMOKERN", 8) == 0);
    /* direct map: 4 KiB below 2 MiB, 2 MiB pages after (256 MiB has no full GiB) */
    g_assert_true(walk(cr3, DEMO_DIRECT_MAP + 0x5000, &pa, &ps));
    g_assert_cmphex(pa, ==, 0x5000);
    g_assert_cmphex(ps, ==, 4096);
    g_assert_false(walk(cr3, DEMO_DIRECT_MAP + 0xd0000, &pa, &ps));   /* ROM */
    g_assert_true(walk(cr3, DEMO_DIRECT_MAP + 0x100000, &pa, &ps));
    g_assert_cmphex(ps, ==, 4096);
    g_assert_true(walk(cr3, DEMO_DIRECT_MAP + 0x200000 + 77, &pa, &ps));
    g_assert_cmphex(pa, ==, 0x200000 + 77);
    g_assert_cmphex(ps, ==, 2 * MiB);
    g_assert_true(walk(cr3, DEMO_DIRECT_MAP + 256 * MiB - 1, &pa, &ps));
    g_assert_false(walk(cr3, DEMO_DIRECT_MAP + 256 * MiB, &pa, &ps));
    /* user pages, tagged with their addresses */
    for (const DemoUserPage *u = demo_user_pages; u->va; u++) {
        uint64_t tag[3];
        g_assert_true(walk(cr3, u->va, &pa, &ps));
        g_assert_cmphex(pa, ==, u->pa);
        g_assert_cmphex(ps, ==, 4096);
        g_assert_true(physmem_read(pa, tag, sizeof(tag), NULL));
        g_assert(memcmp(tag, "DEMOUSER", 8) == 0);
        g_assert_cmphex(GUINT64_FROM_LE(tag[1]), ==, u->va);
        g_assert_cmphex(GUINT64_FROM_LE(tag[2]), ==, u->pa);
    }
    /* VMCOREINFO: note in the kernel image, announced through fw_cfg */
    vi = vmcoreinfo_find();
    g_assert_nonnull(vi);
    g_assert_true(vi->has_vmcoreinfo);
    g_assert_cmpuint(vi->guest_format, ==, FW_CFG_VMCOREINFO_FORMAT_ELF);
    g_assert_cmpuint(vi->size, ==, DEMO_NOTE_SIZE);
    g_assert_cmphex(vi->paddr, ==, DEMO_KERNEL_PHYS + DEMO_NOTE_OFF);
    g_assert_true(physmem_read(vi->paddr, hdr, 12, NULL));
    g_assert_cmpuint(GUINT32_FROM_LE(hdr[0]), ==, 11);
    g_assert_cmpuint(GUINT32_FROM_LE(hdr[2]), ==, 0);
    text = demo_vmcoreinfo_text();
    g_assert_cmpuint(GUINT32_FROM_LE(hdr[1]), ==, strlen(text));
    note_text = g_malloc0(strlen(text) + 1);
    g_assert_true(physmem_read(vi->paddr + 24, note_text, strlen(text), NULL));
    g_assert_cmpstr(note_text, ==, text);
    g_assert_nonnull(strstr(text, "OSRELEASE=" DEMO_OSRELEASE "\n"));
    g_assert_nonnull(strstr(text, "PAGESIZE=4096\n"));
    g_assert_nonnull(strstr(text, "NUMBER(phys_base)=0\n"));
    g_assert_nonnull(strstr(text, "SYMBOL(init_uts_ns)=ffffffff81c02000\n"));
    g_assert_nonnull(strstr(text, "KERNELOFFSET=0\n"));
    /* init_uts_ns holds the release the note names */
    g_assert_true(walk(cr3, DEMO_KERNEL_VIRT + DEMO_UTS_OFF + 2 * 65, &pa, &ps));
    g_assert_true(physmem_read(pa, buf, sizeof(DEMO_OSRELEASE), NULL));
    g_assert_cmpstr(buf, ==, DEMO_OSRELEASE);

    /* the fill: roughly 40% zero pages over ordinary RAM */
    for (uint64_t p = 0x4000000; p < 0x8000000; p += 4096) {
        uint8_t *h = physmem_host_ptr(p, 4096);
        bool z = true;
        for (int i = 0; i < 4096 && z; i += 8) {
            z = *(uint64_t *)(h + i) == 0;
        }
        z ? zero++ : other++;
    }
    g_assert_cmpuint(zero * 100 / (zero + other), >=, 30);
    g_assert_cmpuint(zero * 100 / (zero + other), <=, 50);
    machine_cleanup();
}

static void test_demo_deterministic(void)
{
    g_autoptr(GChecksum) a = NULL, b = NULL, c = NULL;

    start_machine("pc", 128 * MiB, 2, true, 42, NULL);
    a = ram_digest();
    machine_cleanup();
    start_machine("pc", 128 * MiB, 2, true, 42, NULL);
    b = ram_digest();
    machine_cleanup();
    start_machine("pc", 128 * MiB, 2, true, 43, NULL);
    c = ram_digest();
    machine_cleanup();
    g_assert_cmpstr(g_checksum_get_string(a), ==, g_checksum_get_string(b));
    g_assert_cmpstr(g_checksum_get_string(a), !=, g_checksum_get_string(c));
}

static void test_demo_small_ram(void)
{
    g_autoptr(Error) err = NULL;
    MachineOptions o = { .machine_type = (char *)"pc", .ram_size = 32 * MiB,
                         .smp = 1, .demo = true };

    g_assert_false(machine_init(&o, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "at least 64 MiB"));
    g_assert_cmpuint(physmem_block_count(), ==, 0);
}

static void test_loader(void)
{
    g_autofree char *dir = g_dir_make_tmp("physmem-XXXXXX", NULL);
    g_autofree char *file = g_build_filename(dir, "blob", NULL);
    g_autofree char *ok = g_strdup_printf("loader,file=%s,addr=0x123456,force-raw=on",
                                          file);
    g_autofree char *rom = g_strdup_printf("loader,file=%s,addr=0xfffc0000", file);
    g_autofree char *bad = g_strdup_printf("loader,file=%s,addr=0x4000000", file);
    const char *devs[] = { ok, rom, "loader,data=0x11223344,data-len=4,addr=0x5000",
                           "loader,addr=0x7c00,cpu-num=1", NULL };
    const char *bad_devs[] = { bad, NULL };
    g_autofree char *msg = NULL;
    uint8_t got[8];

    g_assert_true(g_file_set_contents(file, "RAWBLOB!", 8, NULL));
    start_machine("pc", 64 * MiB, 2, false, 0, devs);
    g_assert_true(physmem_read(0x123456, got, 8, NULL));
    g_assert(memcmp(got, "RAWBLOB!", 8) == 0);
    g_assert_true(physmem_read(0xfffc0000, got, 8, NULL));
    g_assert(memcmp(got, "RAWBLOB!", 8) == 0);   /* loaders may fill ROM */
    g_assert_true(physmem_read(0x5000, got, 4, NULL));
    g_assert_cmphex(*(uint32_t *)got, ==, GUINT32_TO_LE(0x11223344));
    g_assert_cmphex(machine_cpu(1)->env.eip, ==, 0x7c00);
    machine_cleanup();

    msg = machine_error("pc", 64 * MiB, 1, bad_devs);
    g_assert_nonnull(strstr(msg, "outside RAM"));
    g_assert_nonnull(strstr(msg, file));
    unlink(file);
    rmdir(dir);
}

/*
 * What the dump module gets from this host: blocks merged as QEMU merges
 * them (adjacent in both address spaces and one region), vCPU copies.
 */
/*
 * guestdump-convert's RAM: a file mapped private. Trimming drops the pages
 * from the page tables and they read back as the file's; once RAM was
 * written through physmem, trimming refuses (the write would be lost).
 */
static void test_file_ram_trim(void)
{
    g_autofree char *path = g_build_filename(g_get_tmp_dir(), "physmem-map-XXXXXX", NULL);
    int fd = g_mkstemp(path);
    g_autofree uint8_t *want = g_malloc(1 << 20);
    uint8_t *base, got[4096];
    uint8_t one = 0xaa;
    Error *err = NULL;

    g_assert_cmpint(fd, >=, 0);
    unlink(path);
    for (size_t i = 0; i < (1 << 20); i++) {
        want[i] = (uint8_t)(i * 7 + (i >> 12));
    }
    g_assert_cmpint(write(fd, want, 1 << 20), ==, 1 << 20);
    physmem_reset();
    base = physmem_map_file(fd, 1 << 20, &err);
    g_assert_nonnull(base);
    g_assert_nonnull(physmem_add_block("ram", 0x100000, 1 << 20, base, false, 16, &err));
    g_assert_null(err);
    g_assert_true(physmem_read(0x100000 + 8192, got, sizeof(got), NULL));
    g_assert_cmpmem(got, sizeof(got), want + 8192, sizeof(got));
    g_assert_true(physmem_trim_file_ram());
    g_assert_cmpmem(base, 1 << 20, want, 1 << 20);
    g_assert_true(physmem_write(0x100000, &one, 1, NULL));
    g_assert_false(physmem_trim_file_ram());
    g_assert_cmpint(base[0], ==, 0xaa);
    physmem_reset();
    close(fd);
}

static void test_dump_host(void)
{
    g_autoptr(Error) err = NULL;
    uint8_t *mem = g_malloc0(4 * MiB);
    g_autofree DumpGuestBlock *b = NULL;
    g_autofree DumpX86CPUState *st = NULL;
    DumpVmcoreinfo vmci;
    size_t n;
    int ncpu;

    physmem_reset();
    g_assert_nonnull(physmem_add_block("a", 0, MiB, mem, false, 0, &err));
    g_assert_nonnull(physmem_add_block("b", MiB, MiB, mem + MiB, false, 0, &err));
    /* Contiguous too, but another region: QEMU keeps it apart. */
    g_assert_nonnull(physmem_add_block("c", 2 * MiB, MiB, mem + 2 * MiB, false, 1,
                                       &err));
    /* Same region, not adjacent in host memory. */
    g_assert_nonnull(physmem_add_block("d", 3 * MiB, MiB, NULL, false, 1, &err));
    b = dump_host_guest_blocks(&n);
    g_assert_cmpuint(n, ==, 3);
    g_assert_cmphex(b[0].target_start, ==, 0);
    g_assert_cmphex(b[0].target_end, ==, 2 * MiB);
    g_assert_true(b[0].host_addr == mem);
    g_assert_cmphex(b[1].target_start, ==, 2 * MiB);
    g_assert_cmphex(b[1].target_end, ==, 3 * MiB);
    g_assert_cmphex(b[2].target_start, ==, 3 * MiB);
    g_assert_true(b[2].host_addr != mem + 3 * MiB);
    physmem_reset();
    g_free(mem);

    machine_cpus_create(2);
    g_assert_true(x86_cpu_set_reg(machine_cpu(1), "rax", 0x1234, NULL));
    st = dump_host_cpu_states(&ncpu);
    g_assert_cmpint(ncpu, ==, 2);
    g_assert_cmpint(st[0].cpu_index, ==, 0);
    g_assert_cmpint(st[1].cpu_index, ==, 1);
    g_assert_cmphex(st[1].regs[DUMP_R_EAX], ==, 0x1234);
    g_assert_cmphex(st[1].eip, ==, 0xfff0);
    machine_cpus_destroy();

    /* No vmcoreinfo device: no guest note at all (not a warning). */
    g_assert_false(dump_host_vmcoreinfo(&vmci));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/physmem/accessors", test_accessors);
    g_test_add_func("/physmem/dump-host", test_dump_host);
    g_test_add_func("/physmem/file-ram-trim", test_file_ram_trim);
    g_test_add_func("/machine/map/pc-64m", test_map_pc_64m);
    g_test_add_func("/machine/map/pc-sizes", test_map_pc_sizes);
    g_test_add_func("/machine/map/q35-sizes", test_map_q35_sizes);
    g_test_add_func("/machine/map/none", test_map_none);
    g_test_add_func("/machine/bios", test_bios_contents);
    g_test_add_func("/machine/errors", test_machine_errors);
    g_test_add_func("/machine/huge-ram", test_huge_ram);
    g_test_add_func("/machine/loader", test_loader);
    g_test_add_func("/cpu/reset-and-regs", test_cpu_reset_and_regs);
    g_test_add_func("/fw_cfg/ports-and-dma", test_fw_cfg_ports);
    g_test_add_func("/vmcoreinfo/device", test_vmcoreinfo_device);
    g_test_add_func("/demo/layout", test_demo_guest);
    g_test_add_func("/demo/deterministic", test_demo_deterministic);
    g_test_add_func("/demo/small-ram", test_demo_small_ram);
    return g_test_run();
}
